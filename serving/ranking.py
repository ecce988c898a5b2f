"""Offer selection for ``/invocations``: eligibility, similarity ranking, value sort and
epsilon-exploration. Pure numpy over a ``LoadedRun``; no I/O."""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from tt_tf.evaluation.topk import top_k


@dataclasses.dataclass
class Ranked:
    offers: list          # [(offer, score, modified_offer_score)] in rank order
    explore: int
    skipped: list         # eligible offers with no vector (cold start)
    eligible: int


@dataclasses.dataclass(frozen=True)
class OfferSet:
    """Eligible offers split once into those with a vector (``scorable``, their item ``rows``
    and ``margins`` = price - cost) and those without (``skipped``, cold start)."""
    scorable: list
    rows: np.ndarray
    margins: np.ndarray
    skipped: list
    matrix: np.ndarray | None = None  # the rows' item vectors, gathered once (None: gather per call)

    def __len__(self) -> int:
        return len(self.scorable) + len(self.skipped)


def offer_set(run, offers, gather: bool = False) -> OfferSet:
    """``gather``: keep a contiguous copy of the offers' item vectors (for a set scored on
    every request: 10,000 offers are a 2.5 MB gather per request otherwise)."""
    scorable = [o for o in offers if o in run.row_of]
    rows = np.fromiter((run.row_of[o] for o in scorable), dtype=np.int64, count=len(scorable))
    margins = np.array([_number(run.offer_info.get(o, {}), "price") - _number(run.offer_info.get(o, {}), "cost")
                        for o in scorable], np.float32)
    return OfferSet(scorable, rows, margins, [o for o in offers if o not in run.row_of],
                    run.item_matrix[rows] if gather else None)


def eligible_offers(run, white_list) -> OfferSet:
    """Campaign offers the customer may get: all of them (split once per run, since that
    costs a dict lookup per offer), or those whose name or id is on the (case-insensitive)
    whitelist."""
    if white_list is None:
        return run.campaign_set
    allowed = []
    seen = set()
    for name in white_list:
        for offer in run.by_name.get(str(name).lower(), []):
            if offer not in seen:
                seen.add(offer)
                allowed.append(offer)
    return offer_set(run, allowed)


def _number(info: dict, name: str) -> float:
    value = info.get(name)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) else 0.0


def rank_offers(run, user_vector, offers, number: int, value_sort: bool = False,
                epsilon: float = 0.0, rng: np.random.Generator | None = None,
                rerank_retrieved: int | None = None) -> Ranked:
    """Score ``offers`` (skipping those without a vector), take the best ``number``.

    ``rerank_retrieved`` = N: keep the N most similar offers and order them by the run's light
    ranker value instead (``score`` stays the similarity, ``final_score`` is the value).
    With probability ``epsilon`` the offers are a uniform random draw from the scorable
    eligible set instead (``explore=1``); their scores are still the model's.
    """
    offers = offers if isinstance(offers, OfferSet) else offer_set(run, offers)
    scorable, rows, margins, skipped = offers.scorable, offers.rows, offers.margins, offers.skipped
    if not scorable or number <= 0:
        return Ranked([], 0, skipped, len(offers))
    scores = run.scores(user_vector, rows, offers.matrix)
    if rerank_retrieved:
        kept = top_k(scores, min(max(int(rerank_retrieved), number), len(scorable)))
        scorable, rows, scores, margins = [scorable[i] for i in kept], rows[kept], scores[kept], margins[kept]
        ranking_scores = run.rerank(user_vector, rows)[0].astype(np.float32)
    else:
        ranking_scores = scores
    modified = ranking_scores * margins if value_sort else ranking_scores
    count = min(number, len(scorable))
    explore = 0
    rng = rng if rng is not None else np.random.default_rng()
    if epsilon > 0 and rng.random() < epsilon:
        explore = 1
        chosen = rng.choice(len(scorable), size=count, replace=False)
    else:
        chosen = top_k(modified, count)
    return Ranked([(scorable[i], float(scores[i]), float(modified[i])) for i in chosen], explore, skipped,
                  len(offers))


def final_result(run, ranked: Ranked) -> list:
    """The contract's ``final_result`` entries, rank 1..n; non-finite numbers become null."""
    out = []
    for rank, (offer, score, modified) in enumerate(ranked.offers, 1):
        static = run.offer_payloads.get(offer)
        if static is None:
            static = run.offer_payloads[offer] = offer_payload(run, offer)
        modified = _finite(modified)
        scores = {"score": _finite(score), "final_score": modified, "modified_offer_score": modified}
        out.append({"rank": rank, "result": {**static[0], **scores}, "result_full": {**static[1], **scores}})
    return out


def offer_payload(run, offer: str) -> tuple:
    """``(result, result_full)`` of an offer without its scores: the same on every request of
    a run, so built once per offer (it was a fifth of the handler's time at 10 offers)."""
    info = run.offer_info.get(offer, {})
    result = {
        "offer": offer,
        "offer_name": info.get("offer_name", offer),
        "score": None,
        "final_score": None,
        "modified_offer_score": None,
        "offer_value": _finite(info.get("offer_value")),
        "price": _finite(info.get("price")),
        "cost": _finite(info.get("cost")),
    }
    full = {**{k: _finite(v) if isinstance(v, (int, float)) else v for k, v in info.items()}, **result,
            "run_id": run.run_id, "similarity": run.similarity}
    return result, full


def _finite(value):
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
