"""A synthetic interaction data set with real structure, for the demo and tests.

Users and items have latent preference vectors; users pick items with probability
proportional to ``exp(user . item / tau + popularity)``, where popularity is Zipf-skewed.
User features (age, gender-like and occupation-like codes) and item features (genres from
the item's strongest latent directions, a release year) are noisy functions of the latent
vectors, so features carry signal and ids carry more. Timestamps increase per user.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def make_synthetic(num_users: int = 1500, num_items: int = 800, latent_dim: int = 8,
                   mean_interactions: int = 30, zipf_exponent: float = 0.7, temperature: float = 0.15,
                   seed: int = 0):
    """Return ``(interactions, users, items)`` DataFrames.

    Args:
        num_users, num_items: table sizes.
        latent_dim: size of the latent preference space.
        mean_interactions: average interactions per user (at least 5 each).
        zipf_exponent: popularity skew; item k gets log-popularity ``-exponent * log(k)``.
        temperature: sharpness of preferences (smaller = more personal).
        seed: random seed.

    Example:
        >>> interactions, users, items = make_synthetic(num_users=200, num_items=100)
        >>> len(users), len(items)
        (200, 100)
    """
    if num_users < 2 or num_items < 10:
        raise ValueError("num_users must be >= 2 and num_items >= 10")
    if mean_interactions < 5:
        raise ValueError("mean_interactions must be >= 5")
    rng = np.random.default_rng(seed)
    user_latent = rng.normal(size=(num_users, latent_dim)) / np.sqrt(latent_dim)
    item_latent = rng.normal(size=(num_items, latent_dim)) / np.sqrt(latent_dim)
    popularity = -zipf_exponent * np.log(rng.permutation(num_items) + 1.0)

    genres = [f"g{k}" for k in range(2 * latent_dim)]
    item_genres = []
    for vector in item_latent:
        strongest = np.argsort(-np.abs(vector))[:2]
        names = [genres[2 * d + int(vector[d] > 0)] for d in strongest if rng.random() > 0.15]
        item_genres.append("|".join(names))
    items = pd.DataFrame({
        "item_id": np.arange(1, num_items + 1),
        "genres": item_genres,
        "year": np.round(1990 + 15 * (1 / (1 + np.exp(-item_latent[:, 0] * 3))) + rng.normal(0, 2, num_items)),
    })
    users = pd.DataFrame({
        "user_id": np.arange(1, num_users + 1),
        "age": np.clip(np.round(35 + 25 * user_latent[:, 1] + rng.normal(0, 5, num_users)), 15, 80).astype(int),
        "segment": np.where(user_latent[:, 2] + rng.normal(0, 0.2, num_users) > 0, "a", "b"),
        "occupation": [f"job{int(k)}" for k in np.argmax(user_latent[:, 3:6], axis=1) * 2
                       + (rng.random(num_users) > 0.5)],
    })

    counts = np.maximum(5, rng.poisson(mean_interactions, num_users))
    logits = user_latent @ item_latent.T / temperature + popularity[None, :]
    rows = []
    start = 880_000_000
    for user in range(num_users):
        p = np.exp(logits[user] - logits[user].max())
        p /= p.sum()
        chosen = rng.choice(num_items, size=min(counts[user], num_items // 2), replace=False, p=p)
        times = start + np.sort(rng.integers(0, 10_000_000, len(chosen)))
        rows.append(pd.DataFrame({"user_id": user + 1, "item_id": chosen + 1, "timestamp": times}))
    interactions = pd.concat(rows, ignore_index=True)
    return interactions, users, items


def leave_last_out(interactions: pd.DataFrame, user_id="user_id", item_id="item_id", timestamp="timestamp"):
    """Split into train / valid / test: per user the last interaction is test, the one before
    valid (order by timestamp then item id), as ``../shared/data/PROTOCOL.md`` does."""
    ordered = interactions.sort_values([user_id, timestamp, item_id], kind="stable")
    position_from_end = ordered.groupby(user_id).cumcount(ascending=False)
    test = ordered[position_from_end == 0]
    valid = ordered[position_from_end == 1]
    train = ordered[position_from_end >= 2]
    return train.reset_index(drop=True), valid.reset_index(drop=True), test.reset_index(drop=True)


GROUPLENS_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                    "War", "Western"]


def write_grouplens_100k(folder, num_users: int = 80, num_items: int = 60, seed: int = 0):
    """Synthetic data in the raw MovieLens 100K file format (``u.data``, ``u.user``, ``u.item``):
    what tests and examples read through ``get_movielens`` where the real files may be absent.
    Ratings are 1-5, higher for the user's likelier items. Returns the folder.

    Example:
        >>> sorted(p.name for p in write_grouplens_100k(store_dir / "ml").iterdir())
        ['u.data', 'u.item', 'u.user']
    """
    from pathlib import Path
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    interactions, users, items = make_synthetic(num_users=num_users, num_items=num_items, mean_interactions=20,
                                                seed=seed)
    rng = np.random.default_rng(seed)
    ratings = np.clip(np.round(3.5 + rng.normal(0, 1.0, len(interactions))), 1, 5).astype(int)
    pd.DataFrame({"user": interactions.user_id, "item": interactions.item_id, "rating": ratings,
                  "timestamp": interactions.timestamp}).to_csv(folder / "u.data", sep="\t", header=False, index=False)
    pd.DataFrame({"user": users.user_id, "age": users.age, "gender": np.where(users.segment == "a", "F", "M"),
                  "occupation": users.occupation, "zip": [f"{10000 + 7 * int(u) % 90:05d}" for u in users.user_id]}
                 ).to_csv(folder / "u.user", sep="|", header=False, index=False)
    lines = []
    for item, genres in zip(items.item_id, items.genres):
        flags = ["0"] * len(GROUPLENS_GENRES)
        for token in filter(None, genres.split("|")):
            flags[1 + int(token[1:]) % (len(GROUPLENS_GENRES) - 1)] = "1"
        lines.append("|".join([str(item), f"Movie {item} (1995)", "01-Jan-1995", "", "http://x", *flags]))
    (folder / "u.item").write_text("\n".join(lines) + "\n", encoding="latin-1")
    return folder

