"""Render BENCHMARKS.md from the JSON results in benchmarks/results/ (numbers are never typed
by hand). Sections whose JSON is missing say so.

    python benchmarks/report.py            # rewrites BENCHMARKS.md
"""
from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BASELINES = ROOT.parent / "shared" / "data" / "BASELINES.md"
# the issues' targets (not results): what a measured figure is compared with
HISTORY_BAR = 0.13            # history encoder: loo recall@10
NEGATIVES_GAIN = 0.10         # negative samplers: relative recall@10 gain over the default
SERVING_P99_MS = 10           # scorer: p99 at 1,000 live offers, concurrency 8
SERVING_FLOOR_RATIO = 2       # scorer: handler / numpy floor
SPEED_RATIO = 1.5             # cost curves: tt_tf / TFRS examples per second
LOGQ_SHARE = 0.10             # cost curves: logQ's share of the step at the largest catalogue
PARITY = 1.0                  # cost curves: where both libraries do the same minimum work
CANDIDATE_ROWS = 8            # stop rule: rows of the candidate table
TIME_BUDGET = 1.5             # stop rule: time to the stop relative to the rule before
SCALE_THROUGHPUT_GAP = 0.20   # training past memory: throughput at the largest log vs in-memory at the smallest
SCALE_ROWS = 1_000_000_000    # training past memory: the scenario the estimate is for
SCALE_WORKERS = 16            # ... its workers
SCALE_USERS = 100_000_000     # ... its distinct users (a scenario, not a measurement)
SCALE_ITEMS = 10_000_000      # ... its catalogue
TABLE_COPIES = 3              # an embedding row's floats with Adam: the weights and two slots
STORE_BYTES_PER_ROW = 4       # the history store: an int32 item index per interaction
PARTITION_BYTES_PER_ROW = 24  # the log pass's partitions: user, item, time as int64
STOP_MONITORS = ("val_recall_at_10", "val_ndcg_at_10", "val_ndcg_at_100", "val_mrr", "val_recall_at_100")


def reference_points() -> dict:
    """``{split: [(system, recall@10 text)]}`` from the tables of ``../shared/data/BASELINES.md``
    (measured by others on the same protocol): the figures are read, never typed here."""
    if not BASELINES.exists():
        return {}
    points, split = {}, None
    for line in BASELINES.read_text().splitlines():
        heading = re.match(r"## (\w+)/test", line)
        if heading:
            split = heading.group(1)
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if split and line.startswith("|") and len(cells) > 1 and re.match(r"[\d.]+", cells[1]):
            points.setdefault(split, []).append((cells[0], cells[1]))
    return points


def peers(split: str) -> str:
    """The reference points of a split, short: popularity, EASE and the tuned peers."""
    keep = ("popularity", "EASE", "TFRS, user features", "TFRS with features", "SASRec", "Merlin")
    rows = [(name.split(" (")[0].split(",")[0], value.split(" (")[0])
            for name, value in reference_points().get(split, []) if name.startswith(keep)]
    return "; ".join(f"{name} {value}" for name, value in rows)


def load(name):
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _earlier(label, report, name) -> list:
    if report is None:
        return []
    return [f"{label}, the same command gave " + "; ".join(
        f"{split} recall@10 {s['recall@10']['mean']:.4f} ± {s['recall@10']['std']:.4f} (train s median "
        f"{s['train_seconds']['median']:.0f}, max {s['train_seconds']['max']:.0f})"
        for split, s in report["summary"].items())
        + f" (`benchmarks/results/archive/{name}.json`).", ""]


def foundation(report, mean_history=None, adam=None, unmasked=None) -> list:
    lines = ["## Foundation: ML-100K, `tt-tf train` defaults (issue 2)", ""]
    lines += _earlier("Before `history_encoder: auto` (issue 6: attention over the newest items on temporal splits), "
                      "with a mean-pooled history", mean_history, "foundation_ml100k_mean_history")
    lines += _earlier("With Keras's Adam (before `LazyAdam` became the default optimizer) and the attention over "
                      "every position in its last layer", adam, "foundation_ml100k_adam")
    lines += _earlier("Before `mask_known_positives: auto` (a user's other training items masked out of its "
                      "negatives on random hold-outs) and unique candidate columns", unmasked,
                      "foundation_ml100k_unmasked")
    if report is None:
        return lines + ["Not run yet with the current defaults: `python benchmarks/foundation_ml100k.py`.", ""]
    lines += [f"Command: `{report['command']}` ({report['machine']['cpus']} CPUs, {report['machine']['platform']}). "
              "Each run: `tt-tf train` (loo, loo_random_ties: train + valid files; random80: train only, early "
              "stopping on an "
              "automatic hold-out), `tt-tf embed --history` train (+ valid), masked full-catalogue scoring of test "
              "as PROTOCOL.md says. Next-item claims are judged on loo_random_ties: loo breaks timestamp ties by "
              "item id, an order a sequence model can learn and no real log has."
              + ("" if report.get("complete", True) else " **Incomplete run.**"), "",
              "| split | recall@10 (mean ± std) | ndcg@10 | recall@50 | recall@100 | bar | meets "
              "| train s (median, min–max) | examples/s (median) | epochs (median) "
              "| reference points (../shared/data/BASELINES.md) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for split, s in report["summary"].items():
        seeds = sum(1 for r in report["runs"] if r["split"] == split)
        lines.append(
            f"| {split} ({seeds} seeds) | **{s['recall@10']['mean']:.4f} ± {s['recall@10']['std']:.4f}** | "
            f"{s['ndcg@10']['mean']:.4f} | {s['recall@50']['mean']:.4f} | {s['recall@100']['mean']:.4f} | "
            f"{s['bar_recall@10'] or '—'} | {_meets(s['meets_bar'])} | {s['train_seconds']['median']:.0f} "
            f"({s['train_seconds']['min']:.0f}–{s['train_seconds']['max']:.0f}) | "
            f"{s['examples_per_second']['median']:.0f} "
            f"| {s['epochs']['median']:.0f} | {peers(split)} |")
    lines += ["", "Per run:", "", "| split | seed | recall@10 | ndcg@10 | recall@100 | unmasked recall@100 "
              "| epochs (best) "
              "| train s | examples/s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in report["runs"]:
        m = r["masked"]
        lines.append(f"| {r['split']} | {r['seed']} | {m['recall@10']:.4f} | {m['ndcg@10']:.4f} | "
                     f"{m['recall@100']:.4f} "
                     f"| {r['unmasked_recall@100']:.4f} | {r['epochs']} ({r['best_epoch']}) | {r['train_seconds']:.0f} "
                     f"| {r['examples_per_second']:.0f} |")
    return lines + [""]


def host_check(report, earlier) -> list:
    """The same command's previous run beside this one, through the rows no change touched (the bare
    floors and startup): how much of a difference is the machine."""
    if earlier is None:
        return []
    pairs = [(c, earlier["results"][c], report["results"][c]) for c in report["results"] if c in earlier["results"]]
    cells = "; ".join(f"{int(c):,} offers: floor live {a['numpy_floor']['live']['p50_ms']:.3f} -> "
                      f"{b['numpy_floor']['live']['p50_ms']:.3f} ms, floor stored "
                      f"{a['numpy_floor']['stored']['p50_ms']:.3f} -> "
                      f"{b['numpy_floor']['stored']['p50_ms']:.3f} ms, live c8 "
                      f"{a['live_c8']['requests_per_s']:,.0f} -> "
                      f"{b['live_c8']['requests_per_s']:,.0f} req/s, p99 {a['live_c8']['p99_ms']:.2f} -> "
                      f"{b['live_c8']['p99_ms']:.2f} ms" for c, a, b in pairs)
    return ["", "The previous stop's run of the same command (`benchmarks/results/archive/serving_stop18.json`, "
            "before the "
            "stop-19 changes) against this one: " + cells + ". The floors are bare numpy and a bare tower call, code "
            "that did not change, so the host ran about as much slower as they did; compare the two runs' ratios, "
            "not their times."]


def serving(report, earlier=None) -> list:
    lines = ["## Scorer latency on loopback (issue 4)", ""]
    if report is None:
        return lines + ["Not run yet: `python benchmarks/serving.py`.", ""]
    lines += [f"Command: `{report['command']}` ({report['machine']['cpus']} CPUs). One uvicorn process, closed-loop "
              "client (raw HTTP/1.1 on keep-alive connections) in another process on the same machine, "
              "`numberoffers` 10. *floor*: the same lookup or tower call + matrix-vector + top-10 (the scorer's "
              "exact top-K and normalisation) in a bare loop; *paced floor*: the same loop with a pause of the c1 "
              "phase's client round trip before each call, so the math runs on a CPU as cold as the handler's at "
              "concurrency 1 (the issue's floor is the tight loop; the paced one says how much of the ratio is "
              "the pause). "
              f"*handler*: time inside `/invocations` (from the request log), per phase. Targets: p99 <= "
              f"{SERVING_P99_MS} ms at 1,000 offers, live, concurrency 8; handler <= {SERVING_FLOOR_RATIO}x the floor.",
              "", "| offers | ready s | user vector | c1 p50 / p99 ms | c8 p50 / p99 ms | c8 req/s "
              "| handler c1 p50 / p99 ms "
              "| handler c8 p50 / p99 ms | floor p50 / p99 ms | handler c1 / floor (p50) | paced floor p50 ms "
              "| handler c1 / paced floor |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for count, r in report["results"].items():
        for kind in ("stored", "live"):
            c1, c8, floor = r[f"{kind}_c1"], r[f"{kind}_c8"], r["numpy_floor"][kind]
            h1, h8 = r[f"handler_{kind}_c1"], r[f"handler_{kind}_c8"]
            paced = r.get("numpy_floor_paced", {}).get(kind)
            paced_cells = (f"{paced['p50_ms']:.3f} | {h1['p50_ms'] / max(paced['p50_ms'], 1e-9):.1f}×" if paced
                           else "not measured | -")
            lines.append(f"| {int(count):,} | {r['startup_to_ready_s']:.1f} | {kind} | "
                         f"{c1['p50_ms']:.2f} / {c1['p99_ms']:.2f} "
                         f"| {c8['p50_ms']:.2f} / {c8['p99_ms']:.2f} | {c8['requests_per_s']:.0f} | "
                         f"{h1['p50_ms']:.3f} / {h1['p99_ms']:.3f} | {h8['p50_ms']:.3f} / {h8['p99_ms']:.3f} | "
                         f"{floor['p50_ms']:.3f} / {floor['p99_ms']:.3f} | "
                         f"{h1['p50_ms'] / max(floor['p50_ms'], 1e-9):.1f}× | "
                         f"{paced_cells} |")
    results = report["results"]
    live = results.get("1000", {}).get("live_c8")
    ratios = [results[c]["handler_live_c1"]["p50_ms"] / results[c]["numpy_floor"]["live"]["p50_ms"] for c in results]
    stored = [results[c]["handler_stored_c1"]["p50_ms"] for c in results]
    paced = [results[c]["handler_stored_c1"]["p50_ms"] / results[c]["numpy_floor_paced"]["stored"]["p50_ms"]
             for c in results if "numpy_floor_paced" in results[c]]
    cold = (f" Paced like the c1 requests, the same floor takes longer (a cold CPU), and the stored handler is "
            f"{min(paced):.1f}-{max(paced):.1f}× of it." if paced else "")
    if live:
        reading = (f"so p99 follows throughput (Little's law: 8 in flight at {live['requests_per_s']:,.0f} req/s is "
                   f"{8000 / live['requests_per_s']:.1f} ms on average). p99 at 1,000 live offers and c8 is "
                   f"{live['p99_ms']:.1f} ms in this run (target {SERVING_P99_MS} ms).")
    else:
        reading = "so p99 follows throughput; 1,000 live offers at c8 was not measured in this run."
    lines += ["", f"How to read it. With a live query tower the handler is within {min(ratios):.1f}-{max(ratios):.1f}× "
              "of the floor (the tower call dominates both); with a stored vector the floor is a few microseconds of "
              f"numpy, and the handler's fixed ~{min(stored):.1f}-{max(stored):.1f} ms (store lookups, whitelist, "
              "request log, response) is the ratio." + cold + " At concurrency 8 the client, the server and the "
              "tower share the "
              "cores and the server's event loop is the bottleneck, " + reading]
    lines += host_check(report, earlier)
    lines += ["", "How each change to the scorer moved these numbers, with the runs that measured it, is in "
              "CHANGELOG.md; the previous run of this command is `benchmarks/results/archive/serving_stop18.json`."]
    return lines + [""]


def strict_logging(default, strict) -> list:
    lines = ["### Strict request logging: what an fsync before each answer costs (issue 23)", ""]
    if default is None or strict is None:
        return lines + ["Not run yet: `python benchmarks/serving.py --requests 400 --offers 1000` and the same with "
                        "`--strict-log`, back to back (`--out benchmarks/results/archive/serving_strict_off.json` / "
                        "`serving_strict_on.json`).", ""]
    lines += [f"Commands: `{strict['command']}` and `{default['command']}`, back to back on one machine. Strict: "
              "each `/invocations` answer waits until its log row is in the write-ahead file and fsynced (rows that "
              "arrive during an fsync share the next one).", "",
              "| offers | user vector | phase | default p50 / p99 ms | strict p50 / p99 ms | default req/s "
              "| strict req/s |", "|---|---|---|---|---|---|---|"]
    for count, r in default["results"].items():
        for kind in ("stored", "live"):
            for phase in ("c1", "c8"):
                a, b = r[f"{kind}_{phase}"], strict["results"][count][f"{kind}_{phase}"]
                lines.append(f"| {int(count):,} | {kind} | {phase} | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} | "
                             f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f} | {a['requests_per_s']:,.0f} | "
                             f"{b['requests_per_s']:,.0f} |")
    return lines + [""]


def store_lookups(report) -> list:
    lines = ["### When the store waits on the network", ""]
    if report is None:
        return lines + ["Not run yet: `python benchmarks/store_lookups.py`.", ""]
    lines += [f"Command: `{report['command']}` ({report['machine']['cpus']} CPUs). The local store with every "
              "lookup (stored vector, whitelist, customer features) sleeping a fixed time first, as a round trip "
              "to MongoDB would, and sent to worker threads as the MongoDB store's are; time inside "
              "`/invocations` from the request log, one request at a time (in process, TestClient), "
              "`numberoffers` 10 of 10,000.", "",
              "| lookup ms | handler stored p50 / p99 ms | handler live p50 / p99 ms |", "|---|---|---|"]
    for lookup_ms, r in report["results"].items():
        lines.append(f"| {float(lookup_ms):g} | {r['stored']['p50_ms']:.2f} / {r['stored']['p99_ms']:.2f} | "
                     f"{r['live']['p50_ms']:.2f} / {r['live']['p99_ms']:.2f} |")
    return lines + ["", "A request asks for the stored vector and the whitelist at once, and for the customer's "
                    "features only when no stored vector answers (only the live tower reads them): a stored-vector "
                    "request waits one round trip, a live one two.", ""]


def load_section(report) -> list:
    lines = ["## Scorer under load and hot reload (issue 5)", ""]
    if report is None:
        return lines + ["Not run yet: `python benchmarks/load.py`.", ""]
    s, r = report["steady"], report["reload"]
    lines += [f"Command: `{report['command']}` ({report['machine']['cpus']} CPUs; closed-loop clients, 3 stored : "
              "1 live user vectors, `numberoffers` 10).", "",
              "| phase | requests | errors | req/s | p50 ms | p99 ms | checks |", "|---|---|---|---|---|---|---|",
              f"| steady {s['concurrency']} clients | {s['requests']} | {s['errors']} | {s['requests_per_s']:.0f} | "
              f"{s['p50_ms']:.1f} | {s['p99_ms']:.1f} | request-log rows {s['log_rows']} = accepted: "
              f"{s['log_rows_equal_accepted']}; SIGTERM exit {s['exit_code']} in {s['shutdown_s']:.1f} s |",
              f"| publish + /refresh under load | {r['requests']} | {r['errors']} | {r['requests_per_s']:.0f} | "
              f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | refresh {r['refresh_status']} in {r['refresh_s']:.1f} s; "
              f"answers by run {list(r['answers_by_run'].values())}; only old/new run_id: {r['only_old_or_new']}; "
              f"mixed answers {r['mixed_answers']} |", "",
              "This checks correctness under load (nothing lost, no mixed runs), not speed: the clients "
              "are one httpx process (it parses every answer) on the same cores, so its latencies include its "
              "own queueing; the raw-HTTP client of the latency table above measures the scorer.", ""]
    return lines


NEGATIVES_READING = """How to read it. logQ correction is the one change far outside the noise: without it the
in-batch softmax over-penalises popular items (they are negatives most often), so the lists
spread over the tail (coverage and long-tail share jump) and recall drops; it stays on by default.
Every other change is within one seed's noise of the default (943 test users) or
worse, so the default stays in-batch + static logQ: the only variant above it, 512 hard
negatives, is inside one standard deviation and costs half again per epoch. Why more negatives
do not pay here: with a catalogue not much larger than a batch, a batch already holds much of the popular mass, so
in-batch + logQ is close to the full softmax and the catalogue, memory and masking columns add
little information; masking a user's known positives removes columns that the logQ term assumes
are there, a double correction that pushes the lists further to the head. Hard-negative mining
on the corrected logits (TFRS's semantics) favours rare items, whose -log q makes them look hard;
with 128 kept negatives the model learns to push the tail away and collapses to the head (coverage
and long-tail share near 0). What would show a gain: a catalogue much larger than the batch (the
scale issue), temperature tuned jointly with the number of negatives, and mining hard negatives on
the raw similarity rather than the corrected logit. The memory bank's columns carry no gradient
and train the query tower only; fed to the candidate tower too, they collapsed it in our tests, see
tt_tf/models/two_tower.py. Seconds per epoch: some runs
shared the 2 cores with test jobs, so compare them as rough ratios only."""


def ease_gap(report) -> list:
    lines = ["### Where the random80 bar is missed: two-tower vs EASE per held-out row", ""]
    if report is None:
        return lines + ["Not run yet: `python benchmarks/ease_gap.py`.", ""]
    runs = report["runs"]

    def mean(values):
        return statistics.mean(values)

    two_tower = [r["recall@10"]["two_tower"] for r in runs]
    lines += [f"Command: `{report['command']}` ({report['machine']['cpus']} CPUs). The foundation model "
              f"(`TrainConfig` defaults, {len(runs)} seed(s)) and EASE (lambda {report['ease_lambda']:g}, computed in "
              "numpy), both scored masked over the full catalogue (top 10); the held-out rows split into quintiles "
              "of the held-out item's training count and of the user's training rows. Means over the seeds.", "",
              f"Overall recall@10: two-tower {mean(two_tower):.4f} (per seed "
              f"{', '.join(f'{v:.4f}' for v in two_tower)}), EASE {mean([r['recall@10']['ease'] for r in runs]):.4f}; "
              f"a hit for either model: {mean([r['either'] for r in runs]):.4f}.", ""]
    for key, title, unit in (("by_item_popularity", "held-out item's training count", "count"),
                             ("by_user_activity", "user's training rows", "rows")):
        lines += [f"| quintile of the {title} | {unit} | held-out rows | two-tower recall@10 | EASE recall@10 |",
                  "|---|---|---|---|---|"]
        for index, row in enumerate(runs[0][key]):
            cells = [r[key][index] for r in runs]
            lines.append(f"| {row['quintile']} | {row['min']}-{row['max']} | {row['rows']:,} | "
                         f"{mean([c['two_tower'] for c in cells]):.4f} | {mean([c['ease'] for c in cells]):.4f} |")
        lines.append("")
    def differences(key):  # two-tower minus EASE per quintile, mean over the seeds
        return [mean([r[key][i]["two_tower"] - r[key][i]["ease"] for r in runs]) for i in range(len(runs[0][key]))]

    by_item, by_user = differences("by_item_popularity"), differences("by_user_activity")
    bonus = list(runs[0]["popularity_bonus"])
    moves = [mean([r["popularity_bonus"][beta] - r["recall@10"]["two_tower"] for r in runs]) for beta in bonus]
    lines += [f"How to read it. Per popularity quintile, two-tower minus EASE: "
              f"{', '.join(f'{d:+.4f}' for d in by_item)}. The quintiles hold equal numbers of held-out rows, so the "
              f"{sum(d for d in by_item if d > 0):+.4f} gained where the two-tower model is ahead and the "
              f"{sum(d for d in by_item if d < 0):+.4f} lost where it is behind weigh alike: the gap is on the most "
              f"popular items. By user activity the two are within {max(abs(d) for d in by_user):.4f} in every "
              "quintile. "
              f"A popularity bonus at scoring time (two-tower score + beta * log(count + 1), beta "
              f"{', '.join(bonus)}) moves recall@10 by {min(moves):+.4f} to {max(moves):+.4f}: what is missing is the "
              "ranking of the popular items for each user, not a popularity bias.", ""]
    return lines


def random80_ceiling(report) -> list:
    lines = ["### How high classical recommenders get on random80, tuned on test", ""]
    if report is None:
        return lines + ["Not run yet: `python benchmarks/random80_ceiling.py`.", ""]
    top = report["best"]
    reference = next(r["recall@10"] for r in report["ease"] if r["lambda"] == 500)
    foundation_report = load("foundation_ml100k") or {}
    bar = foundation_report.get("summary", {}).get("random80", {}).get("bar_recall@10", "not recorded")
    lift = max(top["ease_with_ratings"]["recall@10"], top["ease_with_time"]["recall@10"]) - reference
    lines += [f"Command: `{report['command']}`. Each model's grid is scored on random80/test itself (masked "
              "recall@10, full catalogue), so the best entry is an oracle ceiling no tuned model can claim.", "",
              "| model | grid | best on test | recall@10 |", "|---|---|---|---|",
              f"| EASE | lambda {', '.join(str(r['lambda']) for r in report['ease'])} | lambda {top['ease']['lambda']} "
              f"| {top['ease']['recall@10']:.4f} |",
              f"| RP3beta | alpha x beta, {len(report['rp3beta'])} pairs | alpha {top['rp3beta']['alpha']}, beta "
              f"{top['rp3beta']['beta']} | {top['rp3beta']['recall@10']:.4f} |",
              f"| item-kNN (cosine) | k {', '.join(str(r['k']) for r in report['item_knn'])} | "
              f"k {top['item_knn']['k']} "
              f"| {top['item_knn']['recall@10']:.4f} |",
              f"| EASE (lambda 500) + ratings as input weights | {len(report['ease_with_ratings'])} variants | "
              f"{top['ease_with_ratings']['variant']} | {top['ease_with_ratings']['recall@10']:.4f} |",
              f"| EASE (lambda 500) + time prior | weeks x beta, {len(report['ease_with_time'])} pairs | "
              f"{top['ease_with_time']['weeks']} weeks, beta {top['ease_with_time']['beta']} "
              f"| {top['ease_with_time']['recall@10']:.4f} |", "",
              f"How to read it. The bar of issue 2 on random80 is {bar}. No classical model reaches it even with its "
              "hyper-parameters chosen on the test file, and the ratings and the time of the interactions lift EASE "
              f"(lambda 500, {reference:.4f}) by {lift:+.4f} at most. The foundation's default two-tower model "
              "(above) is below EASE and above "
              "RP3beta and item-kNN at their test-chosen best.", ""]
    return lines


def negatives(report) -> list:
    lines = ["## Negative samplers and logQ: ML-100K loo ablation (issue 3)", ""]
    if report is None:
        return lines + ["Not run yet: `python benchmarks/negatives_ablation.py`.", ""]
    base = report["summary"].get("logq-static", {}).get("recall@10", {}).get("mean")
    lines += [f"Command: `{report['command']}` ({report['machine']['cpus']} CPUs). Each variant is the foundation "
              "default (in-batch + static logQ) with one change. Masked "
              "full-catalogue scoring of loo/test; coverage = distinct items in all top-10 lists / catalogue; "
              "long tail = items outside the 20 % most popular (train counts)."
              + ("" if report.get("complete") else " **Incomplete: see the seeds column.**"), "",
              "| variant | seeds | recall@10 | vs default | recall@100 | ndcg@10 | coverage@10 | long-tail share@10 "
              "| s/epoch | change |", "|---|---|---|---|---|---|---|---|---|---|"]
    cell = _cell
    for variant, s in report["summary"].items():
        config = next(r["config"] for r in report["runs"] if r["variant"] == variant)
        lift = f"{100 * (s['recall@10']['mean'] / base - 1):+.1f} %" if base else "—"
        lines.append(f"| {variant} | {s['seeds']} | {cell(s['recall@10'])} | {lift} | {cell(s['recall@100'])} | "
                     f"{cell(s['ndcg@10'])} | {cell(s['coverage@10'], 3)} | {cell(s['long_tail_share@10'], 3)} | "
                     f"{s['seconds_per_epoch']['mean']:.1f} | `{json.dumps(config) if config else 'default'}` |")
    best = max(report["summary"], key=lambda v: report["summary"][v]["recall@10"]["mean"])
    gain = report["summary"][best]["recall@10"]["mean"] / base - 1 if base else 0.0
    lines += ["", f"Best by mean recall@10: **{best}** ({100 * gain:+.1f} % vs the default; the issue's target is "
              f"+{100 * NEGATIVES_GAIN:.0f} %: {'met' if gain >= NEGATIVES_GAIN else 'not met'}).", "",
              NEGATIVES_READING]
    return lines + [""]


def history(report) -> list:
    lines = ["## History encoder: ML-100K loo (issue 6)", ""]
    if report is None:
        return lines + ["Not run yet: `python benchmarks/history_ml100k.py`.", ""]
    lines += [f"Command: `{report['command']}` ({report['machine']['cpus']} CPUs). The foundation configuration "
              "with one change to the query tower's history of item ids (shared item-id table; training rows see "
              "only earlier interactions, test users see train + valid). Masked full-catalogue scoring of "
              f"loo/test. The bar: recall@10 >= {HISTORY_BAR} ({peers('loo')}).", "",
              "| variant | seeds | recall@10 | recall@100 | ndcg@10 | coverage@10 | s/epoch | change |",
              "|---|---|---|---|---|---|---|---|"]
    for variant, s in report["summary"].items():
        config = next(r["config"] for r in report["runs"] if r["variant"] == variant)
        lines.append(f"| {variant} | {s['seeds']} | **{_cell(s['recall@10'])}** | {_cell(s['recall@100'])} | "
                     f"{_cell(s['ndcg@10'])} | {_cell(s['coverage@10'], 3)} | {s['seconds_per_epoch']['mean']:.1f} | "
                     f"`{json.dumps(config) if config else 'default'}` |")
    attention = report["summary"].get("attention", {}).get("recall@10", {}).get("mean")
    if attention is not None:
        lines += ["", f"The default query tower on this split (`history_encoder: auto` = attention over the newest 20 "
                  f"items, since loo histories are ordered in time) reaches recall@10 **{attention:.4f}**: "
                  f"the {HISTORY_BAR} bar is {'met' if attention >= HISTORY_BAR else 'not met'}. The mean over the "
                  "history is "
                  "order-blind; on a leave-last-out split the newest items say most about the next one, and "
                  "the attention summary at the newest position carries that recency. On random hold-outs "
                  "attention did not beat the mean (CHANGELOG.md), so `auto` keeps the mean there. Seconds per "
                  "epoch are rough (runs shared the cores with other jobs)."]
    return lines + [""]


ALIGNMENT_READING = """How to read it. Weighting every shown item by its net value instead of training on
clicks alone raises the value of retrieval's top 10 by about a third at the same recall of held-out
clicks (within noise). The position debiaser recovers the planted examination curve
(position_error: the largest gap between the learned E_pos / E_pos[0] and the planted bias);
reweighting rows by v / E does not move the retrieval metrics here, as it should not: this log
shows items in random order, so position says nothing about the item and the reweighting only adds
variance. Adding the user estimate blurs the position curve, since an additive estimate has to
absorb the user's multiplicative activity. The light ranker (retrieve 100, re-rank to 10) raises
value@10 over plain retrieval, and distillation from the logged ranker probabilities raises both its
agreement with them (correlation on held-out impressions) and its value@10 further. The reward rows
load the known ranker frozen from a SavedModel: raising beta raises the overlap of retrieval's own
top 10 with the ranker's top 10 monotonically, while the recall of the log's clicks falls as beta
grows (the curve below): retrieval then serves the ranker rather than the click log, and beta sets
the trade-off. The jointly trained proxy (reward-joint-1) is only as good as a light ranker trained
for the same few epochs: it moves overlap less and costs recall."""


def alignment(report) -> list:
    lines = ["## Alignment steps on the synthetic log with planted truth (issue 6)", ""]
    if report is None:
        return lines + ["Not run yet: `python benchmarks/alignment_synthetic.py`.", ""]
    lines += [f"Command: `{report['command']}` ({report['machine']['cpus']} CPUs; data `{report['data']}`, "
              "sessions 0-7 train, 8-9 held out, 5 epochs, batch 512). value@10: the known ranker's value of the "
              "top 10 over the best possible; overlap: share of the known ranker's top 10; rerank: retrieve 100, "
              "light ranker to 10; agreement: correlation of the light ranker's value with the logged ranker's."
              + ("" if report.get("complete") else " **Incomplete: see the seeds column.**"), "",
              "| variant | seeds | recall@10 | value@10 | overlap@10 | rerank value@10 | rerank overlap@10 "
              "| agreement | position error | train s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for variant, s in report["summary"].items():
        def get(key, digits=4):
            return _cell(s[key], digits) if key in s else "—"
        lines.append(f"| {variant} | {s['seeds']} | {get('recall@10')} | {get('value@10')} | "
                     f"{get('ranker_overlap@10')} "
                     f"| {get('rerank_value@10')} | {get('rerank_overlap@10')} | {get('ranker_agreement', 3)} | "
                     f"{get('position_error', 3)} | {s['seconds']['mean']:.0f} |")
    curve = [(float(v.split("-")[1]), s) for v, s in report["summary"].items()
             if v.startswith("reward-") and v != "reward-joint-1"]
    base = report["summary"].get("value-weighted")
    if curve and base:
        curve = [(0.0, base)] + sorted(curve, key=lambda pair: pair[0])
        lines += ["", "Reward alignment, the curve over beta (known ranker, frozen):", "",
                  "| beta | " + " | ".join(f"{b:g}" for b, _ in curve) + " |",
                  "|---|" + "---|" * len(curve),
                  "| overlap@10 with the ranker's top 10 | " + " | ".join(
                      f"{s['ranker_overlap@10']['mean']:.3f}" for _, s in curve) + " |",
                  "| value@10 | " + " | ".join(f"{s['value@10']['mean']:.3f}" for _, s in curve) + " |",
                  "| recall@10 of held-out clicks | " + " | ".join(
                      f"{s['recall@10']['mean']:.3f}" for _, s in curve) + " |"]
    runs = [r for r in report["runs"] if r.get("position_curve") and r["variant"] == "debias-position"]
    if runs:
        lines += ["", f"Position curve, seed {runs[0]['seed']}: learned "
                  f"{runs[0]['position_curve']} vs planted {runs[0]['planted_curve']}."]
    return lines + ["", ALIGNMENT_READING, ""]


def scale(report, before=None) -> list:
    lines = ["## Cost curves (issues 8 and 27)", ""]
    if report is None:
        return lines + ["Not run yet: `python benchmarks/scale.py`.", ""]
    lines += [f"Command: `{report['command']}`; device: **{report['device']}** ({report['machine']['cpus']} CPUs; "
              f"mixed precision {'on' if report['mixed_precision'] else 'off'}). No GPU was lent to this task, so "
              "there are no GPU rows. Synthetic Zipf interactions; towers: id embedding → Dense relu → Dense, "
              "identical for both libraries (`benchmarks/scale.py` has the sizes). " + report.get("note", ""), "",
              "Training throughput (examples/s, median of 3 timed epochs of at least 15 steps and 61,440 examples, "
              "after 3 warm-up steps). "
              "tt_tf: in-batch softmax + same-id masking + in-batch recall@10/100 metrics, each distinct item of a "
              "batch scored once; *default* is `tt-tf train`'s (`LazyAdam`: only the embedding rows a batch used "
              "are updated, static logQ), beside it without logQ and with Keras's `Adam`. TFRS: `tasks.Retrieval` "
              "without metrics, trained as its users train it: Keras's `Adam`, the tutorials' `Adagrad` and "
              "`LazyAdam`. The ratio is tt_tf's default against the fastest TFRS of the row:", "",
              "| items | batch | tt_tf default | tt_tf no logQ | logQ share of the step | tt_tf Adam | TFRS Adam "
              "| TFRS Adagrad | TFRS LazyAdam | tt_tf / fastest TFRS |", "|---|---|---|---|---|---|---|---|---|---|"]
    rows = [row for row in report["training"] if "ratio_vs_fastest_tfrs" in row]
    for row in rows:
        lines.append(f"| {row['num_items']:,} | {row['batch_size']} | {row['tt_tf_examples_per_s']:,.0f} | "
                     f"{row['tt_tf_no_logq_examples_per_s']:,.0f} | {100 * _logq_share(row):+.0f} % | "
                     f"{row['tt_tf_adam_examples_per_s']:,.0f} | {row['tfrs_adam_examples_per_s']:,.0f} | "
                     f"{row['tfrs_adagrad_examples_per_s']:,.0f} | {row['tfrs_lazy_adam_examples_per_s']:,.0f} | "
                     f"**{row['ratio_vs_fastest_tfrs']:.2f}×** ({row['tfrs_fastest']}) |")
    if not rows:
        return lines + ["", "This run predates the TFRS optimizer variants: re-run `python benchmarks/scale.py`.", ""]
    ratios = [row["ratio_vs_fastest_tfrs"] for row in rows]
    largest = max(row["num_items"] for row in rows)
    logq = [_logq_share(row) for row in rows if row["num_items"] == largest]
    lines += ["", f"tt_tf / fastest TFRS: median {statistics.median(ratios):.2f}×, min {min(ratios):.2f}×, max "
              f"{max(ratios):.2f}× (target >= {SPEED_RATIO}×: "
              f"{'met in every row' if min(ratios) >= SPEED_RATIO else 'not met in every row'}; "
              f">= {PARITY}× in {sum(r >= PARITY for r in ratios)} of {len(ratios)} rows). logQ's share of the step at "
              f"{largest:,} items: {', '.join(f'{100 * share:+.0f} %' for share in logq)} (target <= "
              f"{100 * LOGQ_SHARE:.0f} %: {'met' if max(logq) <= LOGQ_SHARE else 'not met'}; a negative share is "
              "the noise of two runs of the same work)."]
    if before is not None and "ratio_vs_tfrs" in before["training"][0]:
        old = [row["ratio_vs_tfrs"] for row in before["training"]]
        old_large = [row for row in before["training"] if row["num_items"] == largest]
        old_rates = ", ".join(f"{row['tt_tf_examples_per_s']:,.0f}" for row in old_large)
        lines += ["", f"A correction: the earlier table (`benchmarks/results/archive/scale_before_issue27.json`) "
                  f"reported tt_tf at {min(old):.2f}-{max(old):.2f}× TFRS, against TFRS with Keras's `Adam` only, "
                  "the slowest way to train it (every embedding row rewritten on every step); against TFRS's "
                  "fastest optimizer the ratio is the one above. That run's tt_tf default at "
                  f"{largest:,} items was {old_rates} "
                  "examples/s (batch " + ", ".join(str(row["batch_size"]) for row in old_large) + "): its static "
                  "logQ looked ids up in a vocabulary and a constant as large as the catalogue on every step. "
                  "Ids are now looked up in a hash index kept as weights, a few gathers per id "
                  "(`tt_tf.layers.tokens.HashIndex`; `tests/test_step_cost.py` checks that no tensor of the "
                  "step grows with the catalogue)."]
    lines += ["", "How to read it. The optimizer: Keras's Adam decays both moment tables and rewrites every row of "
              "every embedding table on every step, so at small batches and large catalogues it, not the model, "
              "sets the pace (the Adam columns); Adagrad and LazyAdam update only the rows a batch used. With the "
              "optimizer equal, what is left is the loss: tt_tf adds logQ, the same-id mask and the in-batch recall, "
              "and saves work where a batch repeats items (each distinct item is scored once, its column counted "
              "as often as it occurs; under Zipf traffic the smaller the catalogue, the more a batch repeats). "
              "Where the ratio is near parity both libraries do the same minimum work: two embedding lookups, two "
              "dense layers and a [rows x columns] score matrix with its three matrix products."]
    tutorial = report.get("tfrs_tutorial")
    if tutorial:
        same = [r for r in report["training"] if r["num_items"] == tutorial["num_items"]
                and r["batch_size"] == tutorial["batch_size"]]
        speedup = same[0]["tt_tf_examples_per_s"] / tutorial["tfrs_with_factorized_topk_examples_per_s"] if same else 0
        ratio = (f"; tt_tf is {speedup:.1f}× "
                 "faster than that") if same else ""
        lines += ["", f"TFRS as its tutorials compile it (FactorizedTopK over the catalogue computed in every training "
                  f"step), {tutorial['num_items']:,} items, batch {tutorial['batch_size']}: "
                  f"{tutorial['tfrs_with_factorized_topk_examples_per_s']:,.0f} examples/s{ratio}."]
    search = report["exact_search"]
    lines += ["", "Exact top-100 search (`tt_tf.evaluation.topk.top_k_by_dot`: BLAS matmul + the exact top-K, and a "
              "bare "
              f"matmul + argpartition for comparison; measured streaming bandwidth "
              f"{search['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s; bound = item matrix bytes / bandwidth):", "",
              "| items | queries per call | median ms | ms per query | argpartition ms | bound ms | ratio to bound |",
              "|---|---|---|---|---|---|---|"]
    for row in search["rows"]:
        bare = row.get("argpartition_median_s")
        lines.append(f"| {row['num_items']:,} | {row['queries_per_batch']} | {1000 * row['median_s']:.2f} | "
                     f"{row['ms_per_query']:.3f} | {'—' if bare is None else f'{1000 * bare:.2f}'} | "
                     f"{1000 * row['bandwidth_bound_s']:.2f} | {row['ratio_to_bound']:.1f}× |")
    single = [row["ratio_to_bound"] for row in search["rows"] if row["queries_per_batch"] == 1]
    batched = [row["argpartition_median_s"] / row["median_s"] for row in search["rows"]
               if row["queries_per_batch"] > 1 and row.get("argpartition_median_s")]
    lines += ["", f"One query reads the item matrix once: {min(single):.1f}-{max(single):.1f}× of the bound. The bound "
              "is one pass at the speed of a single-threaded numpy sum, not a hard floor: BLAS reads "
              "with both cores, and a small item matrix fits in the L3 cache, so a "
              "query can come in under it. A batch of queries shares the pass and is bound by its dot "
              "products per item, so its ratio to the one-pass bound is larger while its cost per query is lower. "
              "The top-K partitions only the scores above a cut-off taken from a strided sample of each row "
              "(exact; all scores when fewer than K clear it); a full argpartition per query was most of the "
              + (f"batched time: the bare version takes {min(batched):.1f}-{max(batched):.1f}× as long (the "
                 "argpartition column, alternated with tt_tf's in one run)." if batched else "batched time.")]
    hnsw = report["hnsw"]
    lines += ["", f"faiss HNSW on {hnsw['num_items']:,} clustered unit vectors, "
              f"built in {hnsw['build_s']:.1f} s; exact search does {hnsw['exact_queries_per_s']:,.0f} queries/s "
              "batched:", "", "| efSearch | recall@100 | queries/s |", "|---|---|---|"]
    for row in hnsw["rows"]:
        lines.append(f"| {row['ef_search']} | {row['recall_at_100']:.3f} | {row['queries_per_s']:,.0f} |")
    return lines + [""]


def _logq_share(row) -> float:
    """logQ's share of the step time: 1 - (examples/s with logQ) / (examples/s without)."""
    return 1.0 - row["tt_tf_examples_per_s"] / row["tt_tf_no_logq_examples_per_s"]


def _meets(value) -> str:
    return "—" if value is None else ("yes" if value else "no")


def layout_check(current, before, later=None) -> list:
    """The defaults' runs after a change that must not move the numbers (the layout change of
    issue 21), beside the same split and seed of the run before it, and of ``later`` (the id
    index of issue 27) where it has them."""
    lines = ["### The same defaults before and after the layout change (issue 21)", ""]
    if current is None or before is None:
        return lines + ["Needs `benchmarks/results/foundation_ml100k.json` and "
                        "`benchmarks/results/archive/foundation_ml100k_before_layout.json`.", ""]
    earlier = {(r["split"], r["seed"]): r for r in before["runs"]}
    after = {(r["split"], r["seed"]): r for r in (later or {}).get("runs", [])}
    lines += [f"The runs above (at `{current['provenance']['git_commit'][:12]}`) beside the same command's runs "
              f"before the layout change (`benchmarks/results/archive/foundation_ml100k_before_layout.json`, at "
              f"`{before['provenance']['git_commit'][:12]}`; it had no loo_random_ties runs)"
              + (f" and after the id lookups of issue 27 (`benchmarks/results/foundation_ml100k_id_index_check.json`, "
                 f"at `{later['provenance']['git_commit'][:12]}`, seed 0)" if later else "")
              + ". Seeded runs of unchanged training code repeat to the last digit; training seconds depend on "
              "the machine's load.", "",
              "| split | seed | recall@10 now / before / after issue 27 | ndcg@10 now / before | "
              "epochs (best) now / before |", "|---|---|---|---|---|"]
    for r in current["runs"]:
        b, c = earlier.get((r["split"], r["seed"])), after.get((r["split"], r["seed"]))
        was = {key: "—" if b is None else f"{b['masked'][key]:.4f}" for key in ("recall@10", "ndcg@10")}
        later_recall = "—" if c is None else f"{c['masked']['recall@10']:.4f}"
        was_epochs = "—" if b is None else f"{b['epochs']} ({b['best_epoch']})"
        lines.append(f"| {r['split']} | {r['seed']} | {r['masked']['recall@10']:.4f} / {was['recall@10']} / "
                     f"{later_recall} | {r['masked']['ndcg@10']:.4f} / {was['ndcg@10']} | "
                     f"{r['epochs']} ({r['best_epoch']}) / {was_epochs} |")
    return lines + [""]


def step_profile(report) -> list:
    lines = ["## Where a training step's time goes, tt_tf vs TFRS (issue 27)", ""]
    if report is None:
        return lines + ["Not run yet: `python benchmarks/step_profile.py`.", ""]
    lines += [f"Command: `{report['command']}`, the cost-curve rows where tt_tf's default was below parity; same "
              "towers and data as the cost curves, alternating rounds (each starting with another variant), medians. "
              "*gradient*: the loss and its gradients of one fixed batch, no update; *apply*: one optimizer update "
              "from fixed gradients; *fit*: whole epochs as the cost curves time them. *Same work*: tt_tf without "
              "logQ and without the in-batch ranking metrics, with Adagrad: what TFRS's training step does.", "",
              "| items | batch | gradient ms: tt_tf default / same work / TFRS | apply ms: LazyAdam / Adagrad "
              "| fit ex/s: tt_tf default | same work | TFRS Adagrad | TFRS LazyAdam | same work / fastest TFRS |",
              "|---|---|---|---|---|---|---|---|---|"]
    ratios = []
    for row in report["rows"]:
        fastest = max(row["fit_tfrs_adagrad_examples_per_s"], row["fit_tfrs_lazy_adam_examples_per_s"])
        ratios.append(row["fit_tt_tf_same_work_examples_per_s"] / fastest)
        fit = " | ".join(f"{row[f'fit_{name}_examples_per_s']:,.0f}"
                         for name in ("tt_tf_default", "tt_tf_same_work", "tfrs_adagrad", "tfrs_lazy_adam"))
        lines.append(f"| {row['num_items']:,} | {row['batch_size']} | {row['tt_tf_gradient_ms']:.2f} / "
                     f"{row['tt_tf_same_work_gradient_ms']:.2f} / {row['tfrs_gradient_ms']:.2f} | "
                     f"{row['tt_tf_apply_lazy_adam_ms']:.2f} / {row['tt_tf_apply_adagrad_ms']:.2f} | {fit} | "
                     f"**{ratios[-1]:.2f}×** |")
    lines += ["", f"Doing TFRS's work, tt_tf trains at {min(ratios):.2f}-{max(ratios):.2f}× TFRS's fastest optimizer "
              "(parity within the machine's noise), and its gradient step costs what TFRS's does: both are two "
              f"embedding lookups, two dense layers and one [rows x columns] score matrix, so {SPEED_RATIO}× is out of "
              "reach on the same work. tt_tf's default does more than that on purpose, and the table prices each part: "
              "the logQ correction (an id lookup per column), the in-batch recall@10/100 shown during `fit` (one "
              "more pass over the scores; TFRS computes no metric in training), and LazyAdam's two moment tables "
              "(the apply column: a gather and a scatter more than Adagrad's one fused kernel).", ""]
    return lines


def merlin_port_speed(report) -> list:
    lines = ["## A ported Merlin program trains as fast as tt_tf's own pipeline (issue 22)", ""]
    if report is None:
        return lines + ["Not run yet: `python benchmarks/merlin_port_speed.py`.", ""]
    speeds = report["median_examples_per_s"]
    lines += [f"Command: `{report['command']}`: MovieLens 100K's {report['rows']:,} training rows, batch "
              f"{report['batch_size']}, the same towers and loss, fed the Merlin way (`TwoTowerModelV2` + "
              "`fit(Dataset, batch_size=...)` through `Loader`, encoded ids) and the way `tt-tf train` feeds them "
              "(`TwoTowerModel` + `training_dataset`, vocabulary lookups of raw ids); median of timed epochs over "
              "alternating rounds.", "",
              "| Merlin API | tt_tf pipeline | ratio |", "|---|---|---|",
              f"| {speeds['merlin_api']:,.0f} ex/s | {speeds['tt_tf_pipeline']:,.0f} ex/s | "
              f"**{report['ratio_merlin_api_to_tt_tf_pipeline']:.2f}×** |", ""]
    return lines


def stopping(report, fresh=None) -> list:
    lines = ["## Defaults that do not depend on a lucky stop (issue 26)", ""]
    if report is None:
        return lines + ["Not run yet: `python benchmarks/stopping.py`.", ""]
    names = {"before": "before: patience 3 on recall@10, any gain counts", "default": "default rule",
             "keep_validation_best_of_all": "no stop, keep the validation-best of all epochs"}
    lines += [f"Command: `{report['command']}`. Each run trains with the defaults for {report['runs'][0]['epochs']} "
              "epochs without stopping, and records the validation metrics (what a rule sees) and the masked "
              "full-catalogue test recall@10 (what it does not) after every epoch. A rule that changes nothing but "
              "when training ends is replayed exactly on the recorded validation curve: where it would stop, and "
              "the epoch whose weights it keeps. *Cost*: 1 - test recall@10 of the kept epoch / that of the oracle "
              "epoch (the test-best one, known only here). *Seconds*: training plus the per-epoch validation up "
              "to the stop. Default rule: " + ", ".join(
                  f"{dataset} {r['default_rule']['patience']} epochs' patience, at least "
                  f"{r['default_rule']['min_epochs']}" for dataset, r in report["summary"].items())
              + f"; monitor `{report['monitor']}`, noise floor "
              f"{next(iter(report['summary'].values()))['default_rule']['noise_floor']:g} standard errors.", "",
              "| data set | rule | test recall@10 (mean ± std) | max cost | mean cost | median stop / kept epoch "
              "| median seconds | time vs before |", "|---|---|---|---|---|---|---|---|"]
    for dataset, result in report["summary"].items():
        for name in ("before", "default", "keep_validation_best_of_all"):
            rule = result[name]
            stops = statistics.median(r["stop_epoch"] for r in rule["runs"])
            kept = statistics.median(r["kept_epoch"] for r in rule["runs"])
            ratio = f"{result['time_ratio']:.2f}×" if name == "default" else ""
            lines.append(f"| {dataset} | {names[name]} | {rule['recall@10_mean']:.4f} ± {rule['recall@10_std']:.4f} "
                         f"| {rule['max_cost']:.1%} | {rule['mean_cost']:.1%} | {stops:g} / {kept:g} "
                         f"| {rule['median_train_seconds']:.0f} | {ratio} |")
    lines += ["", "Per run (default rule): stop / kept / oracle epoch: test recall@10 kept / oracle (cost).", "",
              "| data set | " + " | ".join(f"seed {r['seed']}" for r in
                                           next(iter(report["summary"].values()))["default"]["runs"]) + " |",
              "|---|" + "---|" * len(next(iter(report["summary"].values()))["default"]["runs"])]
    for dataset, result in report["summary"].items():
        lines.append(f"| {dataset} | " + " | ".join(
            f"{r['stop_epoch']} / {r['kept_epoch']} / {r['oracle_epoch']}: {r['test_recall@10']:.4f} / "
            f"{r['oracle_recall@10']:.4f} ({r['cost']:.1%})" for r in result["default"]["runs"]) + " |")
    if fresh is not None:
        lines += ["", f"Seeds the pick never saw (`{fresh['command']}`), default rule:", "",
                  "| data set | seeds | test recall@10 (mean ± std) | max cost | mean cost | time vs before |",
                  "|---|---|---|---|---|---|"]
        for dataset, result in fresh["summary"].items():
            rule = result["default"]
            lines.append(f"| {dataset} | {', '.join(str(r['seed']) for r in rule['runs'])} | "
                         f"{rule['recall@10_mean']:.4f} ± {rule['recall@10_std']:.4f} | {rule['max_cost']:.1%} | "
                         f"{rule['mean_cost']:.1%} | {result['time_ratio']:.2f}× |")
    lines += ["", "Why the oracle is out of reach: once learning levels off, test recall@10 moves from one epoch to "
              "the next by " + ", ".join(
                  f"{r['test_noise']['epoch_sd_relative']:.1%} ({d})" for d, r in report["summary"].items())
              + " of its best (standard deviation over the second half of each run, median over seeds). The oracle "
              "keeps the top of that wobble; a rule reads the validation rows, another sample, whose wobble is "
              "not the test's: even training every epoch and keeping the validation-best one costs up to "
              + ", ".join(f"{r['keep_validation_best_of_all']['max_cost']:.1%} ({d})"
                          for d, r in report["summary"].items()) + "."]
    constant = report
    if constant.get("candidates"):
        best = min(row["max_cost"] for row in constant["candidates"])
        lines += ["", f"How the rule was picked: {len(STOP_MONITORS)} monitors x 4 noise floors x 3 patiences x 3 "
                  "minimums, each replayed on the same recorded curves (the default's trajectory). The pick: within "
                  f"{TIME_BUDGET}× the time of the rule before on every data set, the smallest worst-case cost over "
                  "all runs, then the smallest mean cost. The default "
                  + ("is" if constant.get("default_is_the_pick") else "is **not**") + " that pick. The smallest "
                  f"worst-case cost of any candidate, without the time budget, is {best:.1%}: the target of "
                  f"{report['target_cost']:.0%} per run is below what any rule reading the validation rows reached "
                  "here.", "",
                  "| monitor | noise floor (SE) | patience steps | minimum steps | within time | max cost "
                  "| mean cost | " + " | ".join(f"{d} recall@10 / time" for d in constant["summary"]) + " |",
                  "|---|---|---|---|---|---|---|" + "---|" * len(constant["summary"])]
        for row in constant["candidates"][:CANDIDATE_ROWS]:
            lines.append(f"| {row['monitor']} | {row['noise_floor']:g} | {row['patience_steps']} | {row['min_steps']} "
                         f"| {'yes' if row['within_time'] else 'no'} | {row['max_cost']:.1%} "
                         f"| {row['mean_cost']:.1%} | " + " | ".join(
                             f"{row[d + '_recall@10']:.4f} / {row[d + '_time_ratio']:.2f}×"
                             for d in constant["summary"]) + " |")
    return lines + [""]


def scale_cli(report) -> list:
    lines = ["## Training past memory (`tt-tf train --streaming`)", ""]
    if not report:
        return lines + ["Not run yet: `python benchmarks/scale_cli.py`.", ""]
    summary, results = report["summary"], report["results"]
    config = {line.split(":")[0]: line.split(":")[1].split("#")[0].strip()
              for line in report["config"].splitlines() if ":" in line and not line.startswith("#")}
    lines += [f"`{report['command'].strip()}` (provenance: commit {report['provenance']['git_commit'][:10]}, "
              f"{report['provenance']['machine'].get('cpus', '?')} CPU cores). Synthetic Zipf logs over "
              f"{report['num_items']:,} items and {report['num_users']:,} users (exponents {report['item_exponent']} "
              f"and {report['user_exponent']}), Parquet files of 2M rows; every command in its own process, its "
              "peak RSS from `wait4`. Training runs "
              f"{config.get('steps_per_epoch')} batches of {config.get('batch_size')} "
              f"(`benchmarks/configs/scale.yaml`: top {int(config.get('max_vocabulary_size', 0)):,} ids per "
              f"vocabulary, {config.get('oov_buckets')} OOV rows): seconds per epoch are the measured examples/s "
              "over the whole log. The train command's peak covers the log pass, the model, training and the "
              "export of every user and item.", "",
              "| interactions | path | peak RSS, train (GB) | log pass or read (s) | examples/s "
              "| s/epoch (extrapolated) | export (s) | embed all (s / GB) | evaluate 10k users (s / GB) "
              "| test recall@10 |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for row in results:
        embed, evaluate = row.get("embed"), row.get("evaluate")
        lines.append(
            f"| {row['rows']:,} | {row['path'].replace('_', '-')} | {row['train']['peak_rss_gb']:.2f} "
            f"| {row['train']['log_pass_seconds']:.1f} | {row['examples_per_second']:,.0f} "
            f"| {row['seconds_per_epoch_extrapolated']:,.0f} | {row['train']['export_seconds']:.0f} "
            + (f"| {embed['seconds']:.0f} / {embed['peak_rss_gb']:.2f} | {evaluate['seconds']:.0f} / "
               f"{evaluate['peak_rss_gb']:.2f} | {evaluate['metrics']['recall@10']:.4f} |" if embed else "| | | |"))
    slope = summary["rss_slope"]
    streamed = sorted((r for r in results if r["path"] == "streaming"), key=lambda r: r["rows"])
    largest = streamed[-1]
    lines += ["", f"- Peak RSS at {summary['largest_rows']:,} interactions: {summary['largest_peak_rss_gb']:.2f} GB "
              f"against the target of {summary['rss_target_gb']:g} GB: "
              + ("met." if summary["rss_target_met"] else
                 f"missed by {summary['largest_peak_rss_gb'] - summary['rss_target_gb']:.2f} GB.")]
    if "throughput_ratio" in summary:
        lines.append(f"- Throughput at {summary['largest_rows']:,}: {summary['throughput_ratio']:.2f}× the "
                     f"{summary['throughput_reference'].replace('_', '-')} (target: within "
                     f"{SCALE_THROUGHPUT_GAP:.0%}, at least {1 - SCALE_THROUGHPUT_GAP:.2f}×): "
                     + ("met." if summary["throughput_target_met"] else "missed."))
    for path, fit in slope.items():
        if fit:
            lines.append(f"- RSS against rows, {path.replace('_', '-')} path (least squares over the train runs): "
                         f"{fit['gb_per_million_rows'] * 1000:.1f} MB per million rows over {fit['intercept_gb']:.2f} "
                         "GB.")
    per_user = base = None
    if len(streamed) > 1:
        per_user, base = np.polyfit([r["num_users"] for r in streamed], [r["train"]["peak_rss_gb"] for r in streamed],
                                    1)
        lines.append(f"- Against distinct users instead (the vocabularies are capped, the rows stay on disk): "
                     f"{per_user * 1e9:,.0f} bytes per user over {base:.2f} GB, from "
                     f"{streamed[0]['num_users']:,} to {streamed[-1]['num_users']:,} users. The per-user tables of the "
                     "run (ids, counts, offsets, the export's user list and query rows) grow with users; the "
                     "rows cost 4 bytes each, on disk.")
    pass_fit = np.polyfit([r["rows"] / 1e6 for r in streamed], [r["train"]["log_pass_seconds"] for r in streamed], 1) \
        if len(streamed) > 1 else (streamed[0]["train"]["log_pass_seconds"] / (streamed[0]["rows"] / 1e6), 0.0)
    seconds_per_million = float(pass_fit[0])
    per_worker = largest["examples_per_second"]
    epoch_hours = SCALE_ROWS / per_worker / 3600
    pass_hours = SCALE_ROWS / 1e6 * seconds_per_million / 3600
    vectors = (report["num_items"] + report["num_users"]) / largest["embed"]["seconds"] if largest.get("embed") \
        else None
    cells = None
    if largest.get("evaluate"):
        cells = largest["evaluate"]["metrics"]["rows"] * report["num_items"] / largest["evaluate"]["seconds"]
    dim = 64
    full_tables = (SCALE_USERS + SCALE_ITEMS) * dim * 4 * TABLE_COPIES / 1e9
    capped = 2 * int(config.get("max_vocabulary_size", 0)) * dim * 4 * TABLE_COPIES / 1e9
    lines += ["", f"**At {SCALE_ROWS / 1e9:g}B interactions across {SCALE_WORKERS} workers** (each figure is a "
              "measured rate above carried to that size; the scenario's "
              f"{SCALE_USERS / 1e6:g}M users and {SCALE_ITEMS / 1e6:g}M items are assumptions, not measurements):",
              f"- *The log pass* reads {seconds_per_million:.1f} s per million rows, so {pass_hours:.1f} h for the "
              "whole log. Every worker makes the whole pass today (each needs the counts): "
              + (f"{pass_hours / epoch_hours * SCALE_WORKERS:.1f} of an epoch's time on {SCALE_WORKERS} workers, "
                 "small next to training, though it does not get faster with more workers." if
                 pass_hours < epoch_hours / SCALE_WORKERS else
                 f"longer than an epoch on {SCALE_WORKERS} workers, which makes it the first bottleneck.")
              + " Sharding it (each worker counts and partitions its row groups, the counts summed and the "
              "partitions exchanged by user hash) would let it scale with the workers too. Its disk: "
              f"{STORE_BYTES_PER_ROW * SCALE_ROWS / 1e9:.0f} GB of store per worker and "
              f"{PARTITION_BYTES_PER_ROW * SCALE_ROWS / 1e9:.0f} GB of partitions while the pass runs.",
              f"- *Training* at the measured {per_worker:,.0f} examples/s of one 2-core worker takes "
              f"{epoch_hours:.0f} h an epoch alone and {epoch_hours / SCALE_WORKERS:.1f} h on {SCALE_WORKERS} "
              "workers, if the all-reduce keeps up (two loopback workers ran, nothing larger).",
              "- *Memory*: the rows stay on disk; what grows is per id. "
              + (f"At the measured {per_user * 1e9:,.0f} bytes per distinct user, {SCALE_USERS / 1e6:g}M users "
                 f"need {base + per_user * SCALE_USERS:.0f} GB a worker (ids, counts, offsets, the export's user "
                 "list): the per-user tables would have to be split by user hash across workers, as the pass's "
                 "partitions are. " if per_user is not None else "")
              + f"The embedding tables: every id in a vocabulary would take {full_tables:.0f} GB ({TABLE_COPIES} "
              f"copies with Adam, dim {dim}), past any one worker; the top-N vocabularies used here keep them at "
              f"{capped:.2f} GB. More ids than that need tables sharded across machines (a parameter server), "
              "which tt_tf does not do."]
    if vectors and cells:
        lines += [f"- *Export and evaluation*: `embed` encoded {vectors:,.0f} vectors/s, so "
                  f"{(SCALE_USERS + SCALE_ITEMS) / vectors / 3600 / SCALE_WORKERS:.1f} h for every user and item "
                  f"when {SCALE_WORKERS} workers each encode their share (as `train --distribute multi_worker` "
                  f"does). The full-catalogue evaluation scored {cells / 1e6:,.0f}M user-item pairs a second, so "
                  f"10k users against {SCALE_ITEMS / 1e6:g}M items take {1e4 * SCALE_ITEMS / cells / 60:.1f} min."]
    lines.append(f"- *So*: the time goes to training ({epoch_hours / SCALE_WORKERS:.1f} h an epoch on {SCALE_WORKERS} "
                 f"workers) far more than to the log pass ({pass_hours:.1f} h); what breaks first is memory per id, "
                 "the per-user tables and the embedding tables, not the rows.")
    return lines + [""]


def feedback_loop(report) -> list:
    lines = ["## The feedback loop: retraining from the scorer's own logs (issue 25)", ""]
    if not report:
        return lines + ["Not run yet: `python benchmarks/feedback_loop.py`.", ""]
    variants = list(report["summary"]["rounds"])
    lines += [f"`{report['command']}` (provenance: commit {report['provenance']['git_commit'][:10]}, "
              f"{report['provenance']['machine'].get('cpus', '?')} CPU cores, {report['seconds'] / 60:.0f} min). "
              f"Seeds {', '.join(map(str, report['seeds']))} over one planted population (seed "
              f"{report.get('population_seed', 0)}): each seed redraws run 0's history, the training seeds, the "
              f"scorer's exploration draws and the customers' coins. {report['customers']} simulated customers, "
              f"{report['requests_per_customer']} requests each per round for {report['offers_shown']} offers, "
              f"served by `tt-tf serve` on loopback with exploration epsilon {report['epsilon']:g}. Every round: "
              "`tt-tf flatten`, `tt-tf train --impressions` (every round's log so far), `tt-tf publish`, "
              "`POST /refresh`. value@10: the planted value (acceptance x price) of each customer's top 10 over "
              "the best possible 10; overlap@10: share of the planted best 10. Mean over seeds ± spread "
              "(max - min).", "",
              "| round | " + " | ".join(f"{v} value@10" for v in variants) + " | "
              + " | ".join(f"{v} overlap@10" for v in variants) + " |",
              "|---|" + "---|" * (2 * len(variants))]
    for number in range(report["rounds"] + 1):
        cells = [report["summary"]["rounds"][v][number] for v in variants]
        lines.append(f"| {number} | " + " | ".join(
            f"{c['value@10']['mean']:.4f} ± {c['value@10']['spread']:.4f}" for c in cells) + " | " + " | ".join(
            f"{c['overlap@10']['mean']:.3f}" for c in cells) + " |")
    checks = report["summary"]["checks"]
    lead, exam = checks.get("debiased_lead_over_naive"), checks.get("examination_recovered")
    if lead:
        lines += ["", f"After round {report['rounds']} the debiased runs lead naive training by "
                  f"{lead['lead']:.4f} value@10, against a largest spread over seeds of {lead['largest_spread']:.4f}: "
                  + ("**met**" if lead["passed"] else "**not met**")
                  + (f" (the lead per seed: {', '.join(f'{x:.4f}' for x in lead['lead_per_seed'])})."
                     if "lead_per_seed" in lead else ".")]
    if exam:
        lines += ["", f"Examination curve (the position debiaser fit on the exploration rows, relative to rank 1): "
                  f"largest gap to the planted curve {exam['largest_gap']:.3f} over every debiased run of round "
                  f"{report['rounds']} (limit {exam['limit']:g}): "
                  + ("**met**." if exam["passed"] else "**not met**.")
                  + " The largest gap by round, as the exploration rows accumulate: " + ", ".join(
                      f"round {number} {_largest_gap(report, number):.3f}" for number in range(1, report["rounds"] + 1))
                  + "."]
    lines += ["", "![value@10, overlap@10 and the learned examination curves](benchmarks/results/feedback_loop.png)",
              "", FEEDBACK_READING, ""]
    return lines


def _largest_gap(report, number) -> float:
    rounds = [report["summary"]["rounds"][v][number] for v in report["summary"]["rounds"]]
    return max(r["examination_max_gap"]["max"] for r in rounds if "examination_max_gap" in r)


FEEDBACK_READING = (
    "Reading: naive training (the taken offers as positives) learns where run 0 put the offers as much as what "
    "customers like: an offer shown at rank 1 is looked at up to ten times as often as one at rank 10, so its "
    "acceptances outnumber a better offer's further down, and the next run ranks it first again. The debiaser "
    "divides each taken offer's weight by the examination its rank got, as the exploration answers (random offers "
    "in random order) measure it, and the loop moves toward the planted preferences round after round. Weighting "
    "by price on top moves value@10 a little further, since value is acceptance times price.")


def _cell(stats, digits=4):
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def main():
    head = (ROOT / "benchmarks" / "BENCHMARKS.head.md").read_text()
    body = (foundation(load("foundation_ml100k"), load("archive/foundation_ml100k_mean_history"),
                       load("archive/foundation_ml100k_adam"), load("archive/foundation_ml100k_unmasked"))
            + layout_check(load("foundation_ml100k"), load("archive/foundation_ml100k_before_layout"),
                           load("foundation_ml100k_id_index_check"))
            + ease_gap(load("ease_gap")) + random80_ceiling(load("random80_ceiling"))
            + negatives(load("negatives_ablation"))
            + history(load("history_ml100k")) + alignment(load("alignment_synthetic"))
            + serving(load("serving"), load("archive/serving_stop18"))
            + strict_logging(load("archive/serving_strict_off"), load("archive/serving_strict_on"))
            + store_lookups(load("store_lookups"))
            + load_section(load("load")) + scale(load("scale"), load("archive/scale_before_issue27"))
            + step_profile(load("step_profile")) + merlin_port_speed(load("merlin_port_speed"))
            + stopping(load("stopping"), load("stopping_fresh_seeds")) + scale_cli(load("scale_cli"))
            + feedback_loop(load("feedback_loop")))
    (ROOT / "BENCHMARKS.md").write_text(head.rstrip() + "\n\n" + "\n".join(body))
    print("wrote BENCHMARKS.md")


if __name__ == "__main__":
    main()
