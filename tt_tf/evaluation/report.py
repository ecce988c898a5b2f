"""``tt-tf report``: an HTML page with PNG plots on how a run ranks the whole catalogue.

Recall@K curve against popularity, the popularity of what it recommends against the
catalogue's, coverage, hit rate per user-activity segment, and the training curves kept in
the run's manifest. Plots are written with matplotlib's Agg backend (no display needed)."""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from tt_tf.data.tables import Columns
from tt_tf.evaluation.full_catalogue import FullCatalogueEvaluator, list_diversity, popularity_ranks
from tt_tf.evaluation.topk import top_k_by_dot

MAX_K = 100


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def popularity_percentiles(counts: np.ndarray) -> np.ndarray:
    """Rank of every catalogue item by its count as a percentile (0 = most popular)."""
    order = np.argsort(-counts, kind="stable")
    percentile = np.empty(len(counts))
    percentile[order] = 100.0 * np.arange(len(counts)) / max(len(counts) - 1, 1)
    return percentile


def report_data(user_ids, user_vectors, item_ids, item_vectors, history: pd.DataFrame, test: pd.DataFrame,
                columns: Columns = Columns(), k: int = 10) -> dict:
    """Every number the report shows (masked mode: ``history`` items are not recommended)."""
    evaluator = FullCatalogueEvaluator(item_ids, item_vectors, ks=(k,))
    ranks = evaluator.ranks(user_ids, user_vectors, test, known=history, columns=columns)
    item_index = pd.Index(pd.Series(item_ids).astype(str))
    counts = history[columns.item_id].astype(str).value_counts().reindex(item_index).fillna(0).to_numpy()
    test_users = pd.Series(test[columns.user_id].astype(str).unique())
    user_position = pd.Index(pd.Series(user_ids).astype(str)).get_indexer(test_users)
    test_users, user_position = test_users[user_position >= 0], user_position[user_position >= 0]
    vectors = np.asarray(user_vectors)[user_position]
    lists, _ = top_k_by_dot(vectors, item_vectors, k, evaluator.known_rows(test_users, history, columns))
    popular_ranks = popularity_ranks(history, item_ids, test, known=history, columns=columns)
    activity = history.groupby(history[columns.user_id].astype(str)).size()
    test_activity = test[columns.user_id].astype(str).map(activity).fillna(0).to_numpy()
    segments = pd.qcut(test_activity, 4, duplicates="drop") if len(np.unique(test_activity)) > 1 \
        else pd.Categorical(["all"] * len(test_activity))
    segment_hits = pd.Series(ranks <= k).groupby(np.asarray(segments.astype(str))).agg(["mean", "size"])
    percentile = popularity_percentiles(counts)
    return {
        "k": k, "rows": int(len(ranks)), "users": int(len(test_users)),
        "recall_curve": [float((ranks <= cut).mean()) for cut in range(1, MAX_K + 1)],
        "popularity_curve": [float((popular_ranks <= cut).mean()) for cut in range(1, MAX_K + 1)],
        **list_diversity(lists, counts, k),
        "recommended_popularity_percentiles": percentile[lists.ravel()].tolist(),
        "catalogue_popularity_percentiles": percentile.tolist(),
        "segments": {name: {"hit_rate": float(row["mean"]), "rows": int(row["size"])}
                     for name, row in segment_hits.iterrows()},
    }


def write_report(out_dir, data: dict, manifest: dict) -> Path:
    """``out_dir/report.html`` and its PNGs; returns the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    cuts = np.arange(1, MAX_K + 1)
    figure, axis = plt.subplots(figsize=(6, 3.6))
    axis.plot(cuts, data["recall_curve"], label="two-tower")
    axis.plot(cuts, data["popularity_curve"], label="popularity", linestyle="--")
    axis.set(xlabel="K", ylabel="recall@K (masked)", title="Recall@K over the full catalogue")
    axis.legend()
    figure.tight_layout()
    figure.savefig(out / "recall_at_k.png", dpi=110)
    figure, axis = plt.subplots(figsize=(6, 3.6))
    bins = np.linspace(0, 100, 21)
    axis.hist(data["catalogue_popularity_percentiles"], bins=bins, density=True, alpha=0.5, label="catalogue")
    axis.hist(data["recommended_popularity_percentiles"], bins=bins, density=True, alpha=0.5,
              label=f"top-{data['k']} recommendations")
    axis.set(xlabel="popularity percentile (0 = most popular)", ylabel="density", title="Popularity bias")
    axis.legend()
    figure.tight_layout()
    figure.savefig(out / "popularity_bias.png", dpi=110)
    figure, axis = plt.subplots(figsize=(6, 3.6))
    names = list(data["segments"])
    axis.bar(range(len(names)), [data["segments"][n]["hit_rate"] for n in names])
    axis.set_xticks(range(len(names)), names, rotation=15, fontsize=8)
    axis.set(xlabel="user activity (history length, quartiles)", ylabel=f"hit rate@{data['k']}",
             title="Hit rate per user segment")
    figure.tight_layout()
    figure.savefig(out / "segments.png", dpi=110)
    curves = manifest.get("metrics", {}).get("training_curves", {})
    plots = ["recall_at_k.png", "popularity_bias.png", "segments.png"]
    if curves:
        figure, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        axes[0].plot(range(1, len(curves["loss"]) + 1), curves["loss"])
        axes[0].set(xlabel="epoch", ylabel="loss", title="Training loss")
        for name, values in curves.items():
            if name.startswith("val_recall"):
                axes[1].plot(range(1, len(values) + 1), values, label=name)
        axes[1].set(xlabel="epoch", title="Validation (full catalogue)")
        if axes[1].lines:
            axes[1].legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(out / "training_curves.png", dpi=110)
        plots.append("training_curves.png")
    plt.close("all")
    summary = {"run_id": manifest.get("run_id"), "users": data["users"], "test rows": data["rows"],
               f"recall@{data['k']}": round(data["recall_curve"][data["k"] - 1], 4),
               f"popularity recall@{data['k']}": round(data["popularity_curve"][data["k"] - 1], 4),
               "recall@100": round(data["recall_curve"][-1], 4),
               f"coverage@{data['k']}": round(data[f"coverage@{data['k']}"], 4),
               f"long-tail share@{data['k']}": round(data[f"long_tail_share@{data['k']}"], 4)}
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in summary.items())
    images = "".join(f'<figure><img src="{name}" alt="{name[:-4]}"><figcaption>{name[:-4].replace("_", " ")}'
                     "</figcaption></figure>" for name in plots)
    page = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>tt_tf report "
            f"{html.escape(str(manifest.get('run_id')))}</title><style>body{{font-family:sans-serif;margin:2em}}"
            "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:4px 10px;text-align:left}"
            "figure{display:inline-block;margin:1em}</style></head><body>"
            f"<h1>Run {html.escape(str(manifest.get('run_id')))}</h1><table>{rows}</table>{images}"
            "</body></html>")
    (out / "report.html").write_text(page)
    (out / "report.json").write_text(json.dumps({**summary, "segments": data["segments"]}, indent=1))
    return out / "report.html"
