"""History encoder ablation on MovieLens 100K loo (issue 6): the user's past item ids
through the shared item-id table, pooled (mean, the foundation default) or pooled plus
masked self-attention over the newest items (``HistoryEncoder``).

Each run trains with early stopping on loo/valid (histories: only earlier interactions,
``history_mode`` auto -> before), embeds users with train + valid as history (nothing
after the held-out item), and scores loo/test in masked full-catalogue mode.

    python benchmarks/history_ml100k.py                       # every variant, seeds 0 1 2
    python benchmarks/history_ml100k.py --variants attention --seeds 0 --resume
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ablation_driver import main  # noqa: E402

VARIANTS = {
    "no-history": dict(use_history=False),
    "mean": dict(history_encoder="mean"),  # the foundation's query tower
    "attention": dict(),  # the default: attention over the newest 20 items, positional encoding
    "attention-50": dict(history_attention_length=50),
    "attention-no-positions": dict(history_positional_encoding=False),
}

if __name__ == "__main__":
    main(VARIANTS, __doc__, "history_ml100k.py", "history_ml100k.json")
