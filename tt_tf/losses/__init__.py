"""Losses over retrieval logits (Merlin's loss names)."""
