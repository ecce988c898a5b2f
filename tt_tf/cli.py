"""The ``tt-tf`` command line: train, embed, evaluate, report, demo, hitrate, publish, load-whitelist,
load-customers, flatten, serve."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

USAGE_ERRORS = (ValueError, KeyError, FileNotFoundError, NotADirectoryError, PermissionError)


def concat_tables(frames):
    from tt_tf.data.tables import concat_tables as concat
    return concat(frames)


def _usage_errors():
    from tt_tf.stores.base import StoreError
    return USAGE_ERRORS + (StoreError,)


def _read(path, name):
    from tt_tf.data.tables import read_table
    return read_table(path, name) if path else None


def _print_metrics(title, metrics):
    shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
    print(f"{title}: {shown}", flush=True)


def cmd_train(args):
    from tt_tf.training.config import TrainConfig
    from tt_tf.training.run import train_run
    config = TrainConfig.from_file(args.config) if args.config else TrainConfig()
    # the flags override the file, and the result is checked again before any data is read
    flags = {name: getattr(args, name) for name in ("seed", "epochs", "distribute") if getattr(args, name) is not None}
    config = dataclasses.replace(config, **flags)
    from tt_tf.data.log_input import choose_path, open_log
    from tt_tf.training.run import work_folder
    from tt_tf.training.train import columns_of
    if not (args.interactions or args.impressions):
        raise ValueError("give --interactions, --impressions (the output of tt-tf flatten), or both")
    if config.alignment is not None and not args.impressions:
        raise ValueError("the config's alignment section trains on the scorer's impressions: add --impressions FILE")
    interactions, choice = None, None
    started = time.perf_counter()
    if args.interactions:
        choice = choose_path(args.interactions, args.streaming)
        print(f"interactions: {choice}", flush=True)
        interactions = open_log(args.interactions, choice, work_folder(args.out), columns_of(config),
                                config.label_column)
    impressions = _read(args.impressions, "impressions")
    if impressions is not None:
        steps = config.alignment_section().steps() if config.alignment is not None else []
        print(f"impressions: {len(impressions)} rows; alignment steps: "
              f"{', '.join(steps) or 'none (the taken offers train)'}", flush=True)
    print(f"read the log in {time.perf_counter() - started:.1f}s", flush=True)
    users, items, valid = _read(args.users, "users"), _read(args.items, "items"), _read(args.valid, "valid")
    info = {"data": {"interactions": args.interactions, "impressions": args.impressions, "users": args.users,
                     "items": args.items, "valid": args.valid, "config": args.config,
                     "input": str(choice) if choice else None}}
    manifest, result = train_run(interactions, users, items, valid, config, args.out,
                                 verbose=0 if args.quiet else 2, run_info=info, impressions=impressions)
    if manifest is None:  # a non-chief worker of a multi-worker run
        print("worker done: the chief task writes the bundle")
        return 0
    print(f"exported in {result.export_seconds:.1f}s", flush=True)
    if "valid_masked" in manifest["metrics"]:
        _print_metrics("valid (masked, full catalogue)", manifest["metrics"]["valid_masked"])
    print(f"trained {result.epochs_run} epochs in {result.train_seconds:.0f}s "
          f"({result.examples_per_second:.0f} examples/s); run_id {manifest['run_id']}")
    print(f"bundle written to {Path(args.out).resolve()}")
    return 0


def _history(args, bundle, work_dir):
    """The ``--history`` log: a DataFrame, or a ``StoreLog`` when it takes the streaming path."""
    from tt_tf.data.log_input import choose_path, open_log, read_log
    from tt_tf.training.log_data import StoreLog
    specs = args.history or []
    if len(specs) == 1:
        choice = choose_path(specs[0], args.streaming)
        print(f"history: {choice}", flush=True)
        if choice.streaming:
            return StoreLog(open_log(specs[0], choice, work_dir, bundle.columns))
    return concat_tables([read_log(p, "history") for p in specs])


def _embed(args, only_test_users=False):
    """``(bundle, history, (user_ids, user_vecs, item_ids, item_vecs))``; a streamed history is
    read user chunk by user chunk (``only_test_users``: just the users of ``--test``)."""
    import tempfile

    from tt_tf.bundle.reader import Bundle
    bundle = Bundle(args.run_dir)
    users, items = _read(args.users, "users"), _read(args.items, "items")
    with tempfile.TemporaryDirectory(prefix="tt-tf-history-") as work_dir:
        history = _history(args, bundle, work_dir)
        if not hasattr(history, "store"):
            return bundle, history, bundle.embed(users, items, history)
        if only_test_users:
            test_users = set(_read(args.test, "test")[bundle.columns.user_id])
            users = users[users[bundle.columns.user_id].isin(test_users)]
        from tt_tf.training.log_data import user_chunks
        chunks = user_chunks(history.user_counts(users[bundle.columns.user_id]))
        vectors = bundle.embed_chunks(users, items, history.history, chunks)
        known = history.history(users[bundle.columns.user_id].unique()) if only_test_users else None
    return bundle, known, vectors


def cmd_embed(args):
    from tt_tf.bundle.reader import save_vectors
    if Path(args.out).suffix not in (".npz", ".parquet"):
        raise ValueError(f"--out must end in .npz or .parquet, got {Path(args.out).name!r}")
    if args.num_shards < 1 or not 0 <= args.shard_index < args.num_shards:
        raise ValueError(f"--shard-index must be in [0, --num-shards), got {args.shard_index} of {args.num_shards}")
    if args.num_shards > 1:
        return _embed_shard(args)
    _, _, (user_ids, user_vecs, item_ids, item_vecs) = _embed(args)
    save_vectors(args.out, user_ids, user_vecs, item_ids, item_vecs)
    print(f"wrote {len(user_ids)} user and {len(item_ids)} item vectors (dim {user_vecs.shape[1]}) to {args.out}")
    return 0


def _embed_shard(args):
    import numpy as np

    from tt_tf.bundle.reader import Bundle
    if Path(args.out).suffix != ".npz":
        raise ValueError(f"a shard (--num-shards > 1) is written as .npz, got {Path(args.out).name!r}")
    history = concat_tables([_read(p, "history") for p in (args.history or [])])
    shard = Bundle(args.run_dir).embed_shard(_read(args.users, "users"), _read(args.items, "items"), history,
                                             args.num_shards, args.shard_index)
    np.savez(args.out, **shard)
    print(f"wrote shard {args.shard_index + 1}/{args.num_shards}: {len(shard['user_ids'])} user and "
          f"{len(shard['item_ids'])} item vectors to {args.out}")
    return 0


def cmd_merge_embeddings(args):
    import numpy as np

    from tt_tf.bundle.reader import merge_vector_shards, save_vectors
    shards = [np.load(path, allow_pickle=False) for path in args.shards]
    missing = [str(path) for path, shard in zip(args.shards, shards) if "user_positions" not in shard]
    if missing:
        raise ValueError(f"not shards of `tt-tf embed --num-shards`: {missing}")
    user_ids, user_vecs, item_ids, item_vecs = merge_vector_shards(shards)
    save_vectors(args.out, user_ids, user_vecs, item_ids, item_vecs)
    print(f"merged {len(shards)} shards: {len(user_ids)} user and {len(item_ids)} item vectors to {args.out}")
    return 0


def cmd_evaluate(args):
    from tt_tf.evaluation.full_catalogue import FullCatalogueEvaluator
    ks = [int(k) for k in args.ks.split(",")]
    bundle, history, (user_ids, user_vecs, item_ids, item_vecs) = _embed(args, only_test_users=True)
    test = _read(args.test, "test")
    from tt_tf.data.tables import require_columns
    cols = bundle.columns
    require_columns(test, [cols.user_id, cols.item_id], "test")
    known = None if args.unmasked else history
    evaluator = FullCatalogueEvaluator(item_ids, item_vecs, ks)
    metrics = evaluator.evaluate(user_ids, user_vecs, test, known=known, columns=cols)
    metrics["mode"] = "unmasked" if known is None else "masked"
    _print_metrics(f"test ({metrics['mode']}, full catalogue, {metrics['rows']} rows)", metrics)
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=1))
    return 0


def cmd_report(args):
    from tt_tf.data.tables import require_columns
    from tt_tf.evaluation.report import report_data, write_report
    if args.k < 1 or args.k > 100:
        raise ValueError(f"--k must be between 1 and 100, got {args.k}")
    bundle, history, (user_ids, user_vecs, item_ids, item_vecs) = _embed(args)
    test = _read(args.test, "test")
    require_columns(test, [bundle.columns.user_id, bundle.columns.item_id], "test")
    history = history if history is not None else test.iloc[:0]
    data = report_data(user_ids, user_vecs, item_ids, item_vecs, history, test, bundle.columns, args.k)
    page = write_report(args.out, data, bundle.manifest)
    print(f"recall@{args.k} {data['recall_curve'][args.k - 1]:.4f} over {data['rows']} test rows; wrote {page}")
    return 0


def cmd_demo(args):
    from tt_tf.training.run import demo_run
    args.out = args.out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}"
    result = demo_run(args.out, seed=args.seed, epochs=args.epochs, verbose=0 if args.quiet else 2)
    print(f"synthetic data: {result['users']} users, {result['items']} items, {result['interactions']} "
          f"interactions (train {result['train']}, valid {result['valid']}, test {result['test']})")
    _print_metrics("two-tower  test (masked)", result["model"])
    _print_metrics("popularity test (masked)", result["popularity"])
    lift = result["model"]["recall@10"] / max(result["popularity"]["recall@10"], 1e-9)
    print(f"recall@10 lift over popularity: {lift:.2f}x")
    print(f"run_id {result['manifest']['run_id']}; bundle at {Path(args.out).resolve()}; "
          f"total {result['seconds']:.0f}s")
    return 0


def cmd_hitrate(args):
    import numpy as np

    from tt_tf.evaluation.hitrate import exclude_new, hit_rate, temporal_split
    if args.vectors:
        data = np.load(args.vectors, allow_pickle=False)
        user_ids, user_vecs, item_ids, item_vecs = (data[key]
                                                    for key in ("user_ids", "user_vecs", "item_ids", "item_vecs"))
        truth = _read(args.ground_truth, "ground truth")
        if truth is None:
            raise ValueError("--vectors needs --ground-truth (user_id, item_id rows)")
        mode = "given vectors"
    else:
        if not (args.run_dir and args.users and args.items and args.interactions and args.at):
            raise ValueError("give --vectors and --ground-truth, or RUN_DIR with --users, --items, --interactions "
                             "and --at (temporal mode)")
        from tt_tf.bundle.reader import Bundle
        bundle = Bundle(args.run_dir)
        interactions = _read(args.interactions, "interactions")
        history, truth = temporal_split(interactions, args.at, args.days, bundle.columns.timestamp)
        truth, new = exclude_new(history, truth, bundle.columns.user_id, bundle.columns.item_id)
        user_ids, user_vecs, item_ids, item_vecs = bundle.embed(_read(args.users, "users"), _read(args.items, "items"),
                                                                history)
        mode = (f"temporal: vectors from data up to {args.at}, ground truth from the next {args.days:g} day(s); "
                f"{new['new_users']} new users and {new['new_items']} new items of the window excluded")
    result = hit_rate(item_ids, item_vecs, user_ids, user_vecs, truth, k=args.k, user_id=args.user_column,
                      item_id=args.item_column, compare_faiss=args.compare_faiss)
    counts = result.counts
    print(f"hit_rate@{counts['k']} = {result.total:.4f} over {counts['users_evaluated']} users ({mode}); excluded: "
          f"{counts['users_without_vector']} users without a vector, {counts['ground_truth_items_without_vector']} "
          f"ground-truth items without a vector, {counts['users_with_empty_ground_truth']} users with empty "
          "ground truth")
    if result.approximate:
        a = result.approximate
        print(f"{a['index']}: mean top-K overlap with exact {a['mean_top_k_overlap']:.4f}, "
              f"hit_rate {a['hit_rate']:.4f}")
    if args.details:
        out = Path(args.details)
        if out.suffix == ".parquet":
            result.details.to_parquet(out, index=False)
        elif out.suffix in (".json", ".jsonl"):
            result.details.to_json(out, orient="records", lines=out.suffix == ".jsonl")
        else:
            raise ValueError(f"--details must end in .parquet, .json or .jsonl, got {out.name!r}")
    if args.json:
        Path(args.json).write_text(json.dumps(result.summary(), indent=1))
    return 0


def default_store(run_dir, store=None) -> str:
    """Where ``publish`` and ``serve`` put a run directory's run: ``--store``, else ``TT_TF_STORE``,
    else ``tt_tf_store`` beside the run directory (one rule for both commands)."""
    return store or os.environ.get("TT_TF_STORE") or str(Path(run_dir).resolve().parent / "tt_tf_store")


def cmd_publish(args):
    from tt_tf.bundle.publish import publish
    from tt_tf.stores import open_store
    store = open_store(default_store(args.run_dir, args.store))
    items = _read(args.items, "items")
    record = publish(args.run_dir, store, items)
    print(f"published run {record['run_id']} ({record['row_count']['items']} items, "
          f"{record['row_count']['users']} users) to {store!r}")
    return 0


def _store_table(args, name, *columns):
    """The table of a load command, its named columns checked (one line when one is missing)."""
    frame = _read(args.file, name)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{args.file} has no column {missing[0]!r} (columns: {list(frame.columns)}); "
                         f"name it with --{'id' if missing[0] == columns[0] else 'offer'}-column")
    if frame[columns[0]].isna().any():
        raise ValueError(f"{args.file}: column {columns[0]!r} has empty values (row "
                         f"{int(frame[columns[0]].isna().to_numpy().argmax()) + 2} of the file)")
    return frame


def cmd_load_whitelist(args):
    """Whitelists from a table: one row per (customer, offer name), or the names as ``A|B|C``."""
    from tt_tf.stores import open_store
    frame = _store_table(args, "whitelist", args.id_column, args.offer_column)
    store = open_store(args.store)
    offers = {}
    for key, names in zip(frame[args.id_column].astype(str), frame[args.offer_column]):
        parts = [] if pd_isna(names) else [n.strip() for n in str(names).split("|") if n.strip()]
        offers.setdefault(key, []).extend(parts)
    for key, names in offers.items():
        store.put_whitelist(key, list(dict.fromkeys(names)))
    print(f"loaded whitelists of {len(offers)} customers ({sum(map(len, offers.values()))} offers) into {store!r}")
    return 0


def cmd_load_customers(args):
    """Customer features from a table: one row per customer, every other column a feature."""
    from tt_tf.stores import open_store
    frame = _store_table(args, "customers", args.id_column)
    if frame[args.id_column].astype(str).duplicated().any():
        first = frame[args.id_column][frame[args.id_column].astype(str).duplicated()].iloc[0]
        raise ValueError(f"{args.file}: customer {first!r} has more than one row")
    store = open_store(args.store)
    features = [c for c in frame.columns if c != args.id_column]
    for record in frame.to_dict("records"):
        store.put_customer(str(record[args.id_column]),
                           {c: record[c] for c in features if not pd_isna(record[c])})
    print(f"loaded features ({', '.join(features)}) of {len(frame)} customers into {store!r}")
    return 0


def pd_isna(value) -> bool:
    import pandas as pd
    return value is None or (not isinstance(value, (list, tuple)) and bool(pd.isna(value)))


def cmd_flatten(args):
    from tt_tf.stores import open_store
    from tt_tf.stores.flatten import flatten_store
    frame = flatten_store(open_store(args.store))
    out = Path(args.out)
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    elif out.suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        raise ValueError(f"--out must end in .csv or .parquet, got {out.name!r}")
    print(f"wrote {len(frame)} rows ({int(frame['accepted'].sum())} accepted) to {out}")
    return 0


def serve_settings(args):
    """The scorer's settings for ``tt-tf serve``: a run directory is published into a local store
    and served as the store's newest run (``--pin`` keeps serving it whatever is published
    later); a store folder or URI serves its newest run (or ``TT_TF_RUN_ID``). A path that is
    neither a run nor a store is refused before anything is created."""
    from serving.settings import Settings
    from tt_tf.bundle.format import load_manifest
    from tt_tf.bundle.publish import publish
    from tt_tf.stores import open_store
    target = Path(args.run_or_store)
    is_run = (target / "manifest.json").exists()
    if "://" not in args.run_or_store and not is_run and not (target / "store.sqlite").exists():
        # nothing is created: a wrong path would otherwise become an empty store that is never ready
        raise ValueError(f"{args.run_or_store} is neither a run directory (no manifest.json) nor a local store (no "
                         "store.sqlite): give a run directory, a store folder or a mongodb:// URI")
    if args.pin and not is_run:
        raise ValueError("--pin takes a run directory; to pin a run of a store set TT_TF_RUN_ID")
    if not is_run:
        return Settings.from_env(store=args.store or args.run_or_store)
    # a run directory: published into the local store first, unless it is there already (with its
    # offers' names and prices: served as it is)
    store_uri = default_store(target, args.store)
    store, items = open_store(store_uri), _read(args.items, "items")
    published = store.get_run(load_manifest(target)["run_id"]) if items is None else None
    record = published or publish(target, store, items)
    overrides = {"store": store_uri, "model_roots": tuple(os.environ["TT_TF_MODEL_ROOTS"].split(os.pathsep))
                 if os.environ.get("TT_TF_MODEL_ROOTS") else (str(target.resolve().parent),)}
    if args.pin:
        overrides["run_id"] = record["run_id"]
    return Settings.from_env(**overrides)


def cmd_serve(args):
    import uvicorn

    from serving.app import create_app
    from tt_tf.stores import StoreError, open_store, redacted
    settings = serve_settings(args)
    try:  # an unreachable store is one line and exit 2, before any server starts
        store = open_store(settings.store, settings.store_timeout_ms, **settings.store_layout())
        store.ping()
    except StoreError as error:
        reason = redacted(str(error).split(" (configured")[0])[:200]
        raise StoreError(f"store {redacted(settings.store)} does not answer: {reason}") from None
    pinned = f", pinned to run {settings.run_id}" if settings.run_id else ", following the store's newest run"
    print(f"serving {redacted(settings.store)}{pinned} on http://{args.host}:{args.port} (docs at /docs)", flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, store=store), host=args.host, port=args.port,
                                           log_level=args.log_level, access_log=args.access_log,
                                           timeout_graceful_shutdown=settings.shutdown_grace_seconds))
    # uvicorn drains in-flight requests on SIGTERM/SIGINT, then re-raises the signal; after a
    # graceful shutdown that re-raise must not turn a clean exit into "killed by signal"
    import signal
    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, lambda *_: None)
    server.run()
    return 0


def port_number(text) -> int:
    """A TCP port, 1-65535 (argparse turns the ValueError into one line and exit 2)."""
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(f"{text} is not a TCP port (1-65535)")
    return port


def add_streaming_flags(command) -> None:
    from tt_tf.data.log_input import STREAMING_ROWS
    group = command.add_mutually_exclusive_group()
    group.add_argument("--streaming", dest="streaming", action="store_const", const=True, default=None,
                       help=f"stream a Parquet log through an on-disk history store (default: above "
                       f"{STREAMING_ROWS:,} rows)")
    group.add_argument("--in-memory", dest="streaming", action="store_const", const=False,
                       help="read the whole log into memory whatever its size")


def build_parser():
    parser = argparse.ArgumentParser(prog="tt-tf", description="Two-tower retrieval: train, embed, evaluate.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a two-tower model and export a bundle")
    train.add_argument("--interactions", help="training interactions: a .csv or .parquet file, a "
                       "folder of .parquet files or a glob of them")
    train.add_argument("--impressions", help="the scorer's logged offers (the output of tt-tf flatten, .csv or "
                       ".parquet), trained with the config's alignment steps; without an alignment section the "
                       "taken offers train as interactions")
    train.add_argument("--users", help="user table")
    train.add_argument("--items", help="item table")
    train.add_argument("--valid", help="validation interactions (full-catalogue early stopping)")
    train.add_argument("--config", help="YAML or JSON mapping of TrainConfig options")
    train.add_argument("--out", required=True, help="run directory to create")
    train.add_argument("--seed", type=int, help="random seed (overrides the config)")
    train.add_argument("--epochs", type=int, help="maximum epochs (overrides the config)")
    train.add_argument("--distribute", choices=["default", "mirrored", "multi_worker"],
                       help="tf.distribute strategy (overrides the config); multi_worker reads TF_CONFIG")
    train.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    add_streaming_flags(train)
    train.set_defaults(func=cmd_train)

    for name, helptext in (("embed", "write user and item vectors from a bundle"),
                           ("evaluate", "full-catalogue evaluation of a bundle"),
                           ("report", "HTML report with plots: recall@K, popularity bias, coverage, segments")):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("run_dir", help="a run directory written by `tt-tf train`")
        cmd.add_argument("--users", required=True, help="user table")
        cmd.add_argument("--items", required=True, help="item table (the catalogue)")
        cmd.add_argument("--history", nargs="*", help="interactions the query side may see (one or more files, or "
                         "one Parquet folder or glob)")
        add_streaming_flags(cmd)
        if name != "embed":
            cmd.add_argument("--test", required=True, help="held-out interactions")
        if name == "embed":
            cmd.add_argument("--out", required=True, help="output .npz or .parquet")
            cmd.add_argument("--num-shards", type=int, default=1, help="workers sharing the job (default 1)")
            cmd.add_argument("--shard-index", type=int, default=0,
                             help="this worker's share, 0..num-shards-1 (a .npz shard for merge-embeddings)")
            cmd.set_defaults(func=cmd_embed)
        elif name == "report":
            cmd.add_argument("--out", required=True, help="folder for report.html and its PNGs")
            cmd.add_argument("--k", type=int, default=10, help="list length for hit rate, coverage, bias")
            cmd.set_defaults(func=cmd_report)
        else:
            cmd.add_argument("--unmasked", action="store_true", help="do not remove the history from the ranking")
            cmd.add_argument("--ks", default="10,50,100", help="comma-separated K values")
            cmd.add_argument("--json", help="also write the metrics to this JSON file")
            cmd.set_defaults(func=cmd_evaluate)

    merge = sub.add_parser("merge-embeddings", help="merge `embed --num-shards` shards into one vector file")
    merge.add_argument("shards", nargs="+", help="every shard's .npz, once each")
    merge.add_argument("--out", required=True, help="output .npz or .parquet")
    merge.set_defaults(func=cmd_merge_embeddings)

    demo = sub.add_parser("demo", help="synthetic data -> train -> evaluate vs popularity -> export")
    demo.add_argument("--out", help="run directory to create (default: runs/demo-<time>)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--epochs", type=int, default=8)
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(func=cmd_demo)

    hr = sub.add_parser("hitrate", help="hit_rate@K (DSSM style) from vectors and a ground-truth table")
    hr.add_argument("run_dir", nargs="?", help="run directory (temporal mode)")
    hr.add_argument("--vectors", help=".npz from `tt-tf embed` (user_ids, user_vecs, item_ids, item_vecs)")
    hr.add_argument("--ground-truth", help="rows of user_id, item_id (or A|B|C item lists)")
    hr.add_argument("--users", help="user table (temporal mode)")
    hr.add_argument("--items", help="item table (temporal mode)")
    hr.add_argument("--interactions", help="all interactions (temporal mode)")
    hr.add_argument("--at", help="cut-off date/time T (temporal mode): vectors see data up to T")
    hr.add_argument("--days", type=float, default=1.0, help="ground truth: the days after T (default 1)")
    hr.add_argument("--k", type=int, default=200)
    hr.add_argument("--user-column", default="user_id")
    hr.add_argument("--item-column", default="item_id")
    hr.add_argument("--compare-faiss", action="store_true", help="also report a faiss HNSW index against exact")
    hr.add_argument("--details", help="per-user details (.parquet, .json or .jsonl)")
    hr.add_argument("--json", help="write the summary here")
    hr.set_defaults(func=cmd_hitrate)

    pub = sub.add_parser("publish", help="write a run's embeddings and run record to a store")
    pub.add_argument("run_dir", help="a run directory written by `tt-tf train`")
    pub.add_argument("--store", help="mongodb://host/db or a local store directory (default: $TT_TF_STORE, else "
                     "tt_tf_store beside the run directory, as serve)")
    pub.add_argument("--items", help="item table with offer attributes (offer_name/title, price, cost, offer_value)")
    pub.set_defaults(func=cmd_publish)

    whitelist = sub.add_parser("load-whitelist", help="load customers' whitelists (offer names) into a store")
    whitelist.add_argument("file", help=".csv or .parquet: one row per customer and offer name (or names as A|B|C)")
    whitelist.add_argument("--store", required=True, help="mongodb://host/db or a local store directory")
    whitelist.add_argument("--id-column", default="customer_key", help="the customer column (default customer_key)")
    whitelist.add_argument("--offer-column", default="offer_name", help="the offer-name column (default offer_name)")
    whitelist.set_defaults(func=cmd_load_whitelist)

    customers = sub.add_parser("load-customers", help="load customer features (the live tower's lookup) into a store")
    customers.add_argument("file", help=".csv or .parquet: one row per customer, every other column a feature")
    customers.add_argument("--store", required=True, help="mongodb://host/db or a local store directory")
    customers.add_argument("--id-column", default="customer_id", help="the customer column (default customer_id)")
    customers.set_defaults(func=cmd_load_customers)

    flat = sub.add_parser("flatten", help="join invocation and response logs into training rows")
    flat.add_argument("--store", required=True, help="the scorer's store (mongodb://... or a directory)")
    flat.add_argument("--out", required=True, help="output .csv or .parquet")
    flat.set_defaults(func=cmd_flatten)

    serve = sub.add_parser("serve", help="run the scorer over a run directory or a store")
    serve.add_argument("run_or_store", help="a run directory (published to a local store first) or a store URI")
    serve.add_argument("--store", help="store to publish a run directory into (default: <run>/../tt_tf_store)")
    serve.add_argument("--items", help="item table with offer attributes, published with a run directory (as "
                       "publish --items): offer names and prices in the answers")
    serve.add_argument("--pin", action="store_true", help="keep serving this run directory's run: /refresh then "
                       "ignores runs published later (by default the newest published run is served)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=port_number, default=8080)
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action="store_true", help="log every request line (the request log "
                       "in the store records every invocation either way)")
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except _usage_errors() as error:
        from tt_tf.stores import redacted
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"tt-tf {args.command}: error: {redacted(message)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
