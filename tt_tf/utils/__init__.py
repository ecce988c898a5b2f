"""Merlin's ``merlin.models.utils`` namespace."""
