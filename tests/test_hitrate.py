"""hit_rate@K against a hand-computed example, exclusions, and the faiss comparison."""
import numpy as np
import pandas as pd
import pytest

from tt_tf.evaluation.hitrate import hit_rate, temporal_split

ITEMS = ["A", "B", "C", "D"]
ITEM_VECTORS = np.array([[1, 0], [0, 1], [0.7, 0.7], [-1, 0]], np.float32)


def test_hand_computed_three_user_example():
    # k = 2. Scores by inner product:
    #   u1 (1, .1):  A 1.00, C .77, B .10, D -1   -> top {A, C}; truth {A}        -> 1 hit / 1
    #   u2 (0, 1):   B 1.00, C .70                 -> {B, C}
    #   u2 (1, 0):   A 1.00, C .70                 -> {A, C}; union {A, B, C}
    #      truth {C, D, X}: X has no vector (excluded) -> {C, D}; C recalled twice counts once -> 1 / 2
    #   u3 truth {Y}: no item vector -> empty after exclusion -> skipped
    #   u4 truth {A} but no user vector -> skipped
    # micro = (1 + 1) / (1 + 2) = 0.6667 (the per-user mean would be 0.75)
    users = ["u1", "u2", "u2", "u3"]
    user_vectors = np.array([[1, .1], [0, 1], [1, 0], [1, 1]], np.float32)
    truth = pd.DataFrame({"user_id": ["u1", "u2", "u2", "u2", "u3", "u4"], "item_id": ["A", "C", "D", "X", "Y", "A"]})
    result = hit_rate(ITEMS, ITEM_VECTORS, users, user_vectors, truth, k=2)
    assert result.total == pytest.approx(2 / 3)
    assert result.counts == {"users_in_ground_truth": 4, "users_without_vector": 1,
                             "ground_truth_items_without_vector": 2, "users_with_empty_ground_truth": 1,
                             "users_evaluated": 2, "k": 2}
    details = result.details.set_index("user_id")
    assert details.loc["u1", "top_ids"] == ["A", "C"] and details.loc["u1", "missed"] == ["C"]
    np.testing.assert_allclose(details.loc["u1", "top_scores"], [1.0, 0.77], atol=1e-6)
    assert details.loc["u1", "hit_rate"] == 1.0
    assert (details.loc["u2", "hits"], details.loc["u2", "ground_truth"]) == (1, 2)
    assert set(details.loc["u2", "top_ids"]) == {"A", "B", "C"} and details.loc["u2", "hit_rate"] == 0.5


def test_list_and_pipe_ground_truth_rows_mean_the_same():
    vectors = np.array([[1, .1]], np.float32)
    long = hit_rate(ITEMS, ITEM_VECTORS, ["u"], vectors, pd.DataFrame({"user_id": ["u", "u"], "item_id": ["A", "B"]}),
                    k=1)
    piped = hit_rate(ITEMS, ITEM_VECTORS, ["u"], vectors, pd.DataFrame({"user_id": ["u"], "item_id": ["A|B"]}), k=1)
    listed = hit_rate(ITEMS, ITEM_VECTORS, ["u"], vectors, pd.DataFrame({"user_id": ["u"], "item_id": [["A", "B"]]}),
                      k=1)
    assert long.total == piped.total == listed.total == 0.5


def test_bad_inputs_raise_value_errors():
    truth = pd.DataFrame({"user_id": ["u"], "item_id": ["A"]})
    with pytest.raises(ValueError, match="k must be"):
        hit_rate(ITEMS, ITEM_VECTORS, ["u"], np.ones((1, 2)), truth, k=0)
    with pytest.raises(ValueError, match="dim"):
        hit_rate(ITEMS, ITEM_VECTORS, ["u"], np.ones((1, 3)), truth)
    with pytest.raises(ValueError, match="no 'item_id' column"):
        hit_rate(ITEMS, ITEM_VECTORS, ["u"], np.ones((1, 2)), truth.rename(columns={"item_id": "x"}))


def test_faiss_comparison_reports_agreement_with_exact(rng):
    pytest.importorskip("faiss")
    items = rng.normal(size=(500, 16)).astype(np.float32)
    users = rng.normal(size=(50, 16)).astype(np.float32)
    ids = [str(i) for i in range(500)]
    truth = pd.DataFrame({"user_id": [str(u) for u in range(50) for _ in range(3)],
                          "item_id": [str(i) for i in rng.integers(0, 500, 150)]})
    result = hit_rate(ids, items, [str(u) for u in range(50)], users, truth, k=20, compare_faiss=True)
    assert 0.9 <= result.approximate["mean_top_k_overlap"] <= 1.0
    assert abs(result.approximate["hit_rate"] - result.total) <= 0.05


def test_temporal_split_by_day():
    frame = pd.DataFrame({"user_id": [1, 1, 1, 2], "item_id": [1, 2, 3, 4],
                          "timestamp": pd.to_datetime(["2026-01-01 00:00", "2026-01-02 10:00", "2026-01-03 01:00",
                                                       "2026-01-02 00:00"]).astype("datetime64[s]").astype("int64")})
    history, truth = temporal_split(frame, "2026-01-02", days=1)
    assert history.item_id.tolist() == [1, 4] and truth.item_id.tolist() == [2]


def test_cli_vectors_mode_matches_the_library(tmp_path, capsys):
    from tt_tf.cli import main
    users = np.array(["u1", "u2", "u2", "u3"])
    np.savez(tmp_path / "v.npz", user_ids=users, user_vecs=np.array([[1, .1], [0, 1], [1, 0], [1, 1]], np.float32),
             item_ids=np.array(ITEMS), item_vecs=ITEM_VECTORS)
    pd.DataFrame({"user_id": ["u1", "u2", "u2", "u2", "u3", "u4"], "item_id": ["A", "C", "D", "X", "Y", "A"]}
                 ).to_csv(tmp_path / "gt.csv", index=False)
    code = main(["hitrate", "--vectors", str(tmp_path / "v.npz"), "--ground-truth", str(tmp_path / "gt.csv"),
                 "--k", "2", "--details", str(tmp_path / "d.jsonl"), "--json", str(tmp_path / "s.json")])
    assert code == 0
    out = capsys.readouterr().out
    assert "hit_rate@2 = 0.6667 over 2 users" in out and "1 users without a vector" in out
    assert len(pd.read_json(tmp_path / "d.jsonl", lines=True)) == 2


def test_cli_temporal_mode_on_a_bundle(tiny_bundle, tiny_tables, tmp_path, capsys):
    from tt_tf.cli import main
    train, valid, test, users, items = tiny_tables
    everything = pd.concat([train, valid, test])
    for name, frame in (("all", everything), ("users", users), ("items", items)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    at = int(everything.timestamp.quantile(0.8))
    code = main(["hitrate", str(tiny_bundle[0]), "--users", str(tmp_path / "users.csv"), "--items",
                 str(tmp_path / "items.csv"), "--interactions", str(tmp_path / "all.csv"), "--at", str(at),
                 "--days", "30", "--k", "10", "--json", str(tmp_path / "s.json")])
    assert code == 0, capsys.readouterr().err
    import json
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["users_evaluated"] > 0 and 0.0 <= summary["hit_rate"] <= 1.0
    assert "temporal" in capsys.readouterr().out


def test_ids_first_seen_in_the_window_are_excluded_and_counted(tiny_bundle, tiny_tables, tmp_path, capsys):
    """The DSSM rule (pipeline-eval.md): users and items new on the evaluation days are left out
    and counted; before, only ids without a vector were, and new ids with vectors were scored."""
    from tt_tf.cli import main
    from tt_tf.evaluation.hitrate import exclude_new
    train, valid, test, users, items = tiny_tables
    everything = pd.concat([train, valid, test])
    at = int(everything.timestamp.quantile(0.8))
    history, truth = temporal_split(everything, at, days=30)
    new_users = set(truth.user_id) - set(history.user_id)
    new_items = set(truth.item_id) - set(history.item_id)
    kept, counts = exclude_new(history, truth)
    assert counts == {"new_users": len(new_users), "new_items": len(new_items)}
    assert not set(kept.user_id) & new_users and not set(kept.item_id) & new_items
    assert len(kept) == (~truth.user_id.isin(new_users) & ~truth.item_id.isin(new_items)).sum()
    for name, frame in (("all", everything), ("users", users), ("items", items)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    code = main(["hitrate", str(tiny_bundle[0]), "--users", str(tmp_path / "users.csv"), "--items",
                 str(tmp_path / "items.csv"), "--interactions", str(tmp_path / "all.csv"), "--at", str(at),
                 "--days", "30", "--k", "10"])
    assert code == 0 and f"{len(new_users)} new users and {len(new_items)} new items" in capsys.readouterr().out


def test_a_window_that_selects_nothing_is_an_error_naming_it(tiny_bundle, tiny_tables, tmp_path, capsys):
    from tt_tf.cli import main
    train, valid, test, users, items = tiny_tables
    for name, frame in (("all", pd.concat([train, valid, test])), ("users", users), ("items", items)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    code = main(["hitrate", str(tiny_bundle[0]), "--users", str(tmp_path / "users.csv"), "--items",
                 str(tmp_path / "items.csv"), "--interactions", str(tmp_path / "all.csv"), "--at", "2030-01-01",
                 "--days", "7"])
    err = capsys.readouterr().err
    assert code == 2 and "selects nothing" in err and "2030-01-01" in err and len(err.strip().splitlines()) == 1
