"""The feedback loop end to end (issue 25): retrain from the scorer's own logs, round after round,
through the same commands and processes a team would use.

A simulated population (fixed by ``--population-seed``) has planted preferences, prices and a
planted examination curve (a customer looks at the offer at rank r with probability
``r ** -examination_exponent``). Each seed redraws everything else: run 0's history, the
training seeds, the scorer's exploration draws and the customers' coins. Per seed:

1. run 0 is trained (``tt-tf train``) on a synthetic history that mixes preference with a
   planted popularity unrelated to it, so run 0 is a biased start;
2. for each variant, run 0 is published into the variant's own store and served by the real
   ``tt-tf serve`` on loopback with epsilon-exploration;
3. each round, every customer asks ``/invocations`` for 10 offers ``requests_per_customer``
   times, looks at each shown offer with the examination probability of its rank, takes it
   with its planted acceptance probability and posts ``/response``;
4. ``tt-tf flatten`` joins the store's logs, ``tt-tf train --impressions`` trains the next run
   with the variant's config, ``tt-tf publish`` and ``POST /refresh`` put it in service.

Variants: naive (no alignment section: the taken offers train), debiased (a position
debiaser fit on the exploration rows), value-weighted + debiased (the row value is
accepted x price). Per round and variant: value@10 (the planted value, acceptance probability
x price, of each customer's top 10 over the best possible 10) and overlap@10 with the planted
best 10; for the debiased runs the learned examination curve against the planted one.

    python benchmarks/feedback_loop.py                      # 3 seeds, 3 rounds (about 20 min on 2 cores)
    python benchmarks/feedback_loop.py --seeds 0 --rounds 1 --customers 60   # a quick look
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NUM_SHOWN = 10
ADMIN_KEY = "feedback-loop"
BASE_CONFIG = {"use_history": False, "query_dimensions": [64, 32], "candidate_dimensions": [64, 32],
               "id_embedding_dim": 32, "epochs": 8, "early_stopping": False, "batch_size": 512,
               "learning_rate": 0.003, "auto_validation_users": 0}
DEBIASER = {"fit_rows": "explore"}
VARIANTS = {
    "naive": {},
    "debiased": {"alignment": {"debiaser": DEBIASER}},
    "value_debiased": {"alignment": {"value_feature": "price", "debiaser": DEBIASER}},
}


@dataclasses.dataclass
class Population:
    """The planted truth: who likes what, what it costs, and how far down customers look."""

    user_latent: np.ndarray      # [U, k]
    offer_latent: np.ndarray     # [I, k]
    popularity: np.ndarray       # [I] the history's pull, unrelated to preference
    price: np.ndarray            # [I]
    examination: np.ndarray      # [NUM_SHOWN] P(look at rank r), r = 1..NUM_SHOWN
    acceptance_scale: float = 3.0
    acceptance_offset: float = 0.0

    @property
    def num_customers(self) -> int:
        return len(self.user_latent)

    def acceptance(self, users=None) -> np.ndarray:
        """P(take | looked at) for every (customer, offer): [U, I]."""
        latent = self.user_latent if users is None else self.user_latent[users]
        logits = self.acceptance_scale * latent @ self.offer_latent.T + self.acceptance_offset
        return 1.0 / (1.0 + np.exp(-logits))

    def value(self) -> np.ndarray:
        """The planted value of showing each offer to each customer: acceptance x price."""
        return self.acceptance() * self.price


def make_population(num_customers: int = 300, num_offers: int = 60, latent_dim: int = 8,
                    examination_exponent: float = 1.0, seed: int = 0) -> Population:
    rng = np.random.default_rng(seed)
    return Population(
        user_latent=rng.normal(size=(num_customers, latent_dim)) / np.sqrt(latent_dim),
        offer_latent=rng.normal(size=(num_offers, latent_dim)) / np.sqrt(latent_dim) * 1.5,
        popularity=rng.normal(size=num_offers) * 1.5, price=rng.uniform(1.0, 2.0, num_offers).round(2),
        examination=np.arange(1, NUM_SHOWN + 1, dtype=np.float64) ** -examination_exponent)


def write_tables(population: Population, folder: Path, seed: int, history_per_customer: int = 8) -> dict:
    """users.csv, items.csv (offer names and prices for the scorer's answers) and the run-0
    history: each customer's items drawn by popularity and, more weakly, preference."""
    rng = np.random.default_rng(seed + 1000)
    folder.mkdir(parents=True, exist_ok=True)
    preference = np.log(population.acceptance())
    rows = []
    for user in range(population.num_customers):
        logits = 1.5 * population.popularity + 0.5 * preference[user]
        weights = np.exp(logits - logits.max())
        chosen = rng.choice(len(weights), size=history_per_customer, replace=False, p=weights / weights.sum())
        rows += [(user + 1, item + 1, step) for step, item in enumerate(chosen)]
    history = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    offers = np.arange(1, len(population.price) + 1)
    paths = {"history": folder / "history.csv", "users": folder / "users.csv", "items": folder / "items.csv"}
    history.to_csv(paths["history"], index=False)
    pd.DataFrame({"user_id": np.arange(1, population.num_customers + 1)}).to_csv(paths["users"], index=False)
    pd.DataFrame({"item_id": offers, "offer_name": [f"offer-{i}" for i in offers],
                  "price": population.price}).to_csv(paths["items"], index=False)
    return paths


def cli(*args, cwd=None) -> str:
    """Run ``tt-tf`` as a process; its output (it must succeed)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "tt_tf.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f"tt-tf {args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


class Scorer:
    """``tt-tf serve`` on loopback over ``store``, into which the run directory is published first,
    with exploration (``benchmarks/serving.py`` starts it)."""

    def __init__(self, run_dir: Path, store: Path, items: Path, epsilon: float, seed: int):
        import httpx

        from benchmarks.serving import start_scorer
        cli("publish", run_dir, "--store", store, "--items", items)
        self.process, self.base, _ = start_scorer(store, {
            "PYTHONPATH": str(ROOT), "TT_TF_MODEL_ROOTS": str(Path(run_dir).resolve().parent),
            "TT_TF_EXPLORE_EPSILON": str(epsilon), "TT_TF_EXPLORE_SEED": str(seed), "TT_TF_ADMIN_API_KEY": ADMIN_KEY,
            "TT_TF_LOG_FLUSH_SECONDS": "0.2"})
        self.client = httpx.Client(base_url=self.base, timeout=30)

    def refresh(self) -> dict:
        answer = self.client.post("/refresh", headers={"X-API-Key": ADMIN_KEY})
        answer.raise_for_status()
        return answer.json()

    def close(self) -> None:
        self.client.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def simulate_round(scorer: Scorer, population: Population, requests_per_customer: int, rng) -> dict:
    """Every customer asks for offers ``requests_per_customer`` times, looks at each by its rank's
    examination probability, takes it by its planted acceptance and posts what was taken."""
    acceptance = population.acceptance()
    counts = {"invocations": 0, "responses": 0, "taken": 0, "explore": 0}
    for _ in range(requests_per_customer):
        for user in rng.permutation(population.num_customers):
            answer = scorer.client.post("/invocations", json={"customer": str(user + 1), "numberoffers": NUM_SHOWN})
            answer.raise_for_status()
            body = answer.json()
            counts["invocations"] += 1
            counts["explore"] += int(body["explore"])
            taken = []
            for entry in body["final_result"]:
                offer = int(entry["result"]["offer"]) - 1
                looked = rng.random() < population.examination[entry["rank"] - 1]
                if looked and rng.random() < acceptance[user, offer]:
                    taken.append({"offer_name": entry["result"]["offer_name"]})
            if taken:
                posted = scorer.client.post("/response", json={"uuid": body["uuid"], "offers_accepted": taken})
                posted.raise_for_status()
                counts["responses"] += 1
                counts["taken"] += len(taken)
    return counts


def wait_for_logs(store: Path, invocations: int, responses: int, timeout: float = 60) -> None:
    """Until the scorer's log writer has stored every answer and response of the round."""
    from tt_tf.stores import open_store
    deadline = time.time() + timeout
    while True:
        opened = open_store(str(store))
        if len(opened.invocation_logs()) >= invocations and len(opened.response_logs()) >= responses:
            return
        if time.time() > deadline:
            raise RuntimeError(f"the request log holds fewer than {invocations} invocations after {timeout}s")
        time.sleep(0.3)


def run_quality(run_dir: Path, population: Population) -> dict:
    """value@10 and overlap@10 of the run's exported vectors against the planted values."""
    users = pd.read_parquet(run_dir / "user_embeddings.parquet")
    items = pd.read_parquet(run_dir / "item_embeddings.parquet")
    user_rows = users["user_id"].astype(int).to_numpy() - 1
    item_rows = items["item_id"].astype(int).to_numpy() - 1
    scores = np.stack(users["embedding"].to_numpy()) @ np.stack(items["embedding"].to_numpy()).T
    value = population.value()[user_rows][:, item_rows]
    top = np.argsort(-scores, axis=1)[:, :NUM_SHOWN]
    best = np.argsort(-value, axis=1)[:, :NUM_SHOWN]
    rows = np.arange(len(user_rows))[:, None]
    overlap = np.mean([len(set(a) & set(b)) / NUM_SHOWN for a, b in zip(top, best)])
    return {"value@10": float(np.mean(value[rows, top].sum(1) / value[rows, best].sum(1))),
            "overlap@10": float(overlap), "customers": int(len(user_rows))}


def examination_gap(run_dir: Path, population: Population) -> dict | None:
    """The debiaser's learned position curve, relative to rank 1, against the planted one."""
    alignment = json.loads((run_dir / "manifest.json").read_text())["metrics"].get("alignment") or {}
    effects = alignment.get("position_effects")
    if not effects:
        return None
    learned = np.asarray(effects[:NUM_SHOWN]) / effects[0]
    planted = population.examination[:len(learned)] / population.examination[0]
    return {"learned": learned.round(4).tolist(), "planted": planted.round(4).tolist(),
            "max_gap": float(np.abs(learned - planted).max()), "explore_rows": alignment.get("explore_rows")}


def run_loop(work: Path, seed: int, rounds: int, customers: int, requests_per_customer: int, epsilon: float,
             variants=tuple(VARIANTS), config_overrides: dict | None = None, log=print,
             population_seed: int = 0) -> dict:
    """Every variant's loop for one seed: ``{variant: [round 0 .. rounds]}`` of measurements."""
    population = make_population(num_customers=customers, seed=population_seed)
    tables = write_tables(population, work / "data", seed)
    base = {**BASE_CONFIG, "seed": seed, **(config_overrides or {})}
    (work / "base.json").write_text(json.dumps(base))
    started = time.perf_counter()
    cli("train", "--interactions", tables["history"], "--users", tables["users"], "--items", tables["items"],
        "--config", work / "base.json", "--out", work / "runs" / "run0", "--quiet")
    log(f"seed {seed}: run 0 trained in {time.perf_counter() - started:.0f}s")
    start = {"round": 0, **run_quality(work / "runs" / "run0", population)}
    results = {}
    for variant in variants:
        config = work / f"{variant}.json"
        config.write_text(json.dumps({**base, **VARIANTS[variant]}))
        store = work / variant / "store"
        scorer = Scorer(work / "runs" / "run0", store, tables["items"], epsilon, seed)
        rng = np.random.default_rng(seed * 7919 + 1)  # the same customers' coins for every variant
        rounds_out = [dict(start)]
        logged = {"invocations": 0, "responses": 0}
        try:
            for round_number in range(1, rounds + 1):
                clock = time.perf_counter()
                counts = simulate_round(scorer, population, requests_per_customer, rng)
                logged = {key: logged[key] + counts[key] for key in logged}
                wait_for_logs(store, logged["invocations"], logged["responses"])
                flat = work / variant / f"flat-{round_number}.parquet"
                cli("flatten", "--store", store, "--out", flat)
                run_dir = work / "runs" / f"{variant}-{round_number}"
                cli("train", "--impressions", flat, "--users", tables["users"], "--items", tables["items"],
                    "--config", config, "--out", run_dir, "--quiet")
                cli("publish", run_dir, "--store", store, "--items", tables["items"])
                refreshed = scorer.refresh()
                if not refreshed.get("changed"):
                    raise RuntimeError(f"/refresh did not load the new run: {refreshed}")
                measured = {"round": round_number, **counts, **run_quality(run_dir, population),
                            "served_run": refreshed["run_id"], "seconds": round(time.perf_counter() - clock, 1)}
                gap = examination_gap(run_dir, population)
                if gap:
                    measured["examination"] = gap
                rounds_out.append(measured)
                log(f"seed {seed} {variant} round {round_number}: value@10 {measured['value@10']:.4f} "
                    f"overlap@10 {measured['overlap@10']:.3f}"
                    + (f" examination gap {gap['max_gap']:.3f}" if gap else "") + f" ({measured['seconds']}s)")
        finally:
            scorer.close()
        results[variant] = rounds_out
    return results


def summarise(per_seed: dict, rounds: int) -> dict:
    """Per variant and round: mean and spread (max - min) over seeds; the acceptance checks."""
    variants = list(next(iter(per_seed.values())))
    summary = {}
    for variant in variants:
        summary[variant] = []
        for round_number in range(rounds + 1):
            points = [per_seed[seed][variant][round_number] for seed in per_seed]
            entry = {"round": round_number}
            for metric in ("value@10", "overlap@10"):
                values = np.array([p[metric] for p in points])
                entry[metric] = {"mean": float(values.mean()), "spread": float(values.max() - values.min()),
                                 "values": values.round(4).tolist()}
            gaps = [p["examination"]["max_gap"] for p in points if "examination" in p]
            if gaps:
                entry["examination_max_gap"] = {"mean": float(np.mean(gaps)), "max": float(np.max(gaps))}
            summary[variant].append(entry)
    final = {v: summary[v][rounds]["value@10"] for v in variants}
    checks = {}
    if "naive" in final and "debiased" in final:
        lead = final["debiased"]["mean"] - final["naive"]["mean"]
        spread = max(final["debiased"]["spread"], final["naive"]["spread"])
        paired = [per_seed[seed]["debiased"][rounds]["value@10"] - per_seed[seed]["naive"][rounds]["value@10"]
                  for seed in per_seed]
        checks["debiased_lead_over_naive"] = {"lead": lead, "largest_spread": spread, "passed": lead > spread,
                                              "lead_per_seed": [round(x, 4) for x in paired]}
    gaps = [summary[v][rounds].get("examination_max_gap", {}).get("max") for v in variants]
    gaps = [g for g in gaps if g is not None]
    if gaps:
        checks["examination_recovered"] = {"largest_gap": max(gaps), "limit": 0.05, "passed": max(gaps) <= 0.05}
    return {"rounds": summary, "checks": checks}


def plot(report: dict, path) -> None:
    """value@10 and overlap@10 per round, one line per variant (mean over seeds, the bars the
    spread), and the learned examination curves of the last round against the planted one."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for variant, rounds in report["summary"]["rounds"].items():
        x = [r["round"] for r in rounds]
        for axis, metric in zip(axes[:2], ("value@10", "overlap@10")):
            means = np.array([r[metric]["mean"] for r in rounds])
            spread = np.array([r[metric]["spread"] for r in rounds]) / 2
            axis.errorbar(x, means, yerr=spread, marker="o", capsize=3, label=variant)
            axis.set(xlabel="round (0: run 0)", ylabel=metric, xticks=x)
    axes[0].legend()
    axes[0].set_title(f"value@10, {len(report['seeds'])} seeds (bars: spread)")
    axes[1].set_title("overlap@10 with the planted best 10")
    last = report["rounds"]
    for seed, variants in report["per_seed"].items():
        for variant, rounds in variants.items():
            curve = rounds[last].get("examination")
            if curve:
                axes[2].plot(range(1, len(curve["learned"]) + 1), curve["learned"], alpha=0.5,
                             label=f"{variant}, seed {seed}")
                planted = curve["planted"]
    axes[2].plot(range(1, len(planted) + 1), planted, "k--", linewidth=2, label="planted")
    axes[2].set(xlabel="rank", ylabel="examination relative to rank 1",
                title=f"learned examination curves, round {last}")
    axes[2].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None) -> int:
    from benchmarks.provenance import write_results
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--requests-per-customer", type=int, default=16)
    parser.add_argument("--epsilon", type=float, default=0.3)
    parser.add_argument("--population-seed", type=int, default=0, help="the planted truth (fixed over seeds)")
    parser.add_argument("--work", default="/tmp/tt_tf_feedback_loop")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "feedback_loop.json"))
    args = parser.parse_args(argv)
    per_seed = {}
    started = time.perf_counter()
    for seed in args.seeds:
        work = Path(args.work) / f"seed-{seed}"
        if work.exists():
            import shutil
            shutil.rmtree(work)
        per_seed[seed] = run_loop(work, seed, args.rounds, args.customers, args.requests_per_customer, args.epsilon,
                                  population_seed=args.population_seed)
    summary = summarise(per_seed, args.rounds)
    command = "python benchmarks/feedback_loop.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])
                                                      if (argv if argv is not None else sys.argv[1:]) else "")
    report = write_results(args.out, {
        "command": command.strip(), "seeds": args.seeds, "rounds": args.rounds, "customers": args.customers,
        "requests_per_customer": args.requests_per_customer, "epsilon": args.epsilon, "offers_shown": NUM_SHOWN,
        "population_seed": args.population_seed,
        "variants": VARIANTS, "base_config": BASE_CONFIG, "seconds": round(time.perf_counter() - started, 1),
        "summary": summary, "per_seed": {str(k): v for k, v in per_seed.items()}})
    plot(report, Path(args.out).with_suffix(".png"))
    print(json.dumps(report["summary"]["checks"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
