"""``tt-tf flatten``: join the scorer's invocation and response logs into training rows.

One row per offer shown: customer_id, offer, rank, score, price, accepted (1 when a response
with the invocation's uuid names the offer, case-insensitively by name or id), datetime,
predictor (the campaign). Train on them with::

    tt-tf train --interactions flat.csv --config flat.yaml
    # flat.yaml: {user_id: customer_id, item_id: offer, timestamp: datetime, label_column: accepted}
"""
from __future__ import annotations

import pandas as pd

from tt_tf.stores.base import Store

FLAT_COLUMNS = ["customer_id", "offer", "rank", "score", "price", "accepted", "datetime", "predictor", "uuid",
                "explore", "run_id"]


def flatten_logs(invocations: list, responses: list) -> pd.DataFrame:
    accepted: dict = {}
    for response in responses:
        names = {str(o.get("offer_name", "")).lower() for o in response.get("offers_accepted") or []}
        accepted.setdefault(response.get("uuid"), set()).update(names)
    rows = []
    for invocation in invocations:
        taken = accepted.get(invocation.get("uuid"), set())
        for offer in invocation.get("offers") or []:
            names = {str(offer.get("offer", "")).lower(), str(offer.get("offer_name", "")).lower()}
            rows.append({
                "customer_id": invocation.get("customer"), "offer": offer.get("offer"), "rank": offer.get("rank"),
                "score": offer.get("score"), "price": offer.get("price"), "accepted": int(bool(names & taken)),
                "datetime": invocation.get("datetime"), "predictor": invocation.get("campaign"),
                "uuid": invocation.get("uuid"), "explore": invocation.get("explore", 0),
                "run_id": invocation.get("run_id"),
            })
    frame = pd.DataFrame(rows, columns=FLAT_COLUMNS)
    frame["datetime"] = pd.to_datetime(frame["datetime"], utc=True, errors="coerce")
    return frame


def flatten_store(store: Store) -> pd.DataFrame:
    return flatten_logs(store.invocation_logs(), store.response_logs())
