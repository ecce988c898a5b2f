"""``tt-tf train --impressions``: the scorer's flattened log as training rows, with the config's
``alignment`` section (issue 25, item 1). Bad sections are one line and exit 2 before anything
loads; each key reaches the model it names; the manifest records what was chosen."""
import json

import numpy as np
import pandas as pd
import pytest

from tests.helpers import flat_impressions
from tests.test_cli import assert_one_line_error, run_cli
from tt_tf.training.alignment_config import AlignmentConfig
from tt_tf.training.config import TrainConfig

TINY = {"epochs": 1, "batch_size": 128, "query_dimensions": [16, 8], "candidate_dimensions": [16, 8],
        "id_embedding_dim": 8, "auto_validation_users": 20}


@pytest.fixture(scope="module")
def flat_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("flat")
    flat, items, truth = flat_impressions()
    flat.to_csv(folder / "flat.csv", index=False)
    items.to_csv(folder / "items.csv", index=False)
    history = flat[flat["accepted"] > 0][["customer_id", "offer"]].rename(
        columns={"customer_id": "user_id", "offer": "item_id"}).head(60)
    history.to_csv(folder / "history.csv", index=False)
    return {"flat": folder / "flat.csv", "items": folder / "items.csv", "history": folder / "history.csv",
            "folder": folder, "frame": flat, "truth": truth}


@pytest.fixture(scope="module")
def known_ranker(flat_files):
    """The log's planted ranker as a SavedModel (``pairwise``: user_id [B], item_id [N])."""
    from tt_tf.alignment.synthetic import export_known_ranker
    path = flat_files["folder"] / "known_ranker"
    export_known_ranker(flat_files["truth"], path)
    return str(path)


def saved_ranker(path):
    return {"path": path, "query_features": ["user_id"], "candidate_features": ["item_id"]}


def write_config(folder, alignment, name="config.json", **extra):
    path = folder / name
    path.write_text(json.dumps({**TINY, **extra, **({"alignment": alignment} if alignment is not None else {})}))
    return path


@pytest.mark.parametrize("alignment, fragment", [
    ({"debiaser": {"num_position": 5}}, "alignment.debiaser: unknown option(s) ['num_position']"),
    ({"label_feature": ["accepted"]}, "unknown alignment option(s) ['label_feature']"),
    ({"label_features": "accepted"}, "alignment.label_features must be a list of column names"),
    ({"task_weights": [1, 2]}, "alignment.task_weights must be 1 non-negative numbers"),
    ({"cost_feature": "cost"}, "alignment.cost_feature needs a value_feature"),
    ({"debiaser": {"fit_rows": "some"}}, "alignment.debiaser.fit_rows must be one of"),
    ({"debiaser": {"num_positions": -1}}, "alignment.debiaser.num_positions must be auto or an integer >= 0"),
    ({"soft_label_features": ["p"]}, "distillation trains the light ranker's soft heads"),
    ({"light_ranker": {}, "soft_label_features": ["p"], "distillation_teacher": {"path": "x"}}, "not both"),
    ({"light_ranker": {}, "distillation_teacher": {"path": "x"}}, "distillation_teacher needs"),
    ({"reward_weight": 0.5}, "reward_weight > 0 needs a reward_model"),
    ({"reward_model": "ranker"}, "alignment.reward_model must be light_ranker or a mapping"),
    ({"reward_model": "light_ranker"}, "needs a light_ranker section"),
    ({"value_floor": 0}, "alignment: invalid value(s) for ['value_floor']"),
    ("debias", "alignment must be a mapping of option -> value, got str"),
])
def test_a_bad_alignment_section_is_one_line_and_exit_2(flat_files, tmp_path, capsys, alignment, fragment):
    config = write_config(tmp_path, alignment)
    code, _, err = run_cli(capsys, "train", "--impressions", flat_files["flat"], "--config", config,
                           "--out", tmp_path / "run")
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "run").exists()


def test_impressions_and_alignment_need_each_other(flat_files, tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--config", write_config(tmp_path, {"debiaser": {}}),
                           "--interactions", flat_files["history"], "--out", tmp_path / "run")
    assert_one_line_error(code, err, "alignment section trains on the scorer's impressions: add --impressions")
    code, _, err = run_cli(capsys, "train", "--out", tmp_path / "run")
    assert_one_line_error(code, err, "give --interactions, --impressions")


def test_bad_impression_rows_are_one_line(flat_files, tmp_path, capsys):
    frame = flat_files["frame"]
    cases = [(frame.drop(columns=["accepted"]), {}, "impressions is missing column(s) ['accepted']"),
             (frame.assign(rank=0), {"debiaser": {}}, "'rank' must be a rank >= first_position (1)"),
             (frame.assign(datetime="soon"), {}, "time value 'soon' is not a date-time"),
             (frame.assign(accepted=0), {}, "no offer was taken"),
             (frame, {"value_feature": "margin"}, "neither the impressions nor the item table have a 'margin'"),
             (frame.assign(ranker_accepted=2.0), {"light_ranker": {}, "soft_label_features": ["ranker_accepted"]},
              "must hold probabilities in [0, 1]")]
    for number, (rows, alignment, fragment) in enumerate(cases):
        rows.to_csv(tmp_path / f"bad{number}.csv", index=False)
        code, _, err = run_cli(capsys, "train", "--impressions", tmp_path / f"bad{number}.csv", "--config",
                               write_config(tmp_path, alignment), "--items", flat_files["items"],
                               "--out", tmp_path / f"run{number}")
        assert_one_line_error(code, err, fragment)


# each key of the section, and the model argument (or resolved value) it must produce
KEY_EFFECTS = {
    "label_features": ({"label_features": ["accepted"]}, lambda k, r: k["label_features"] == ["accepted"]),
    "task_weights": ({"task_weights": [3.0]}, lambda k, r: k["task_weights"] == [3.0]),
    "value_feature": ({"value_feature": "price"}, lambda k, r: k["value_feature"] == "impression_value"),
    "value_weighted": ({"value_weighted": False}, lambda k, r: k["value_weighted"] is False),
    "value_floor": ({"value_floor": 0.01}, lambda k, r: k["value_floor"] == 0.01),
    "debiaser": ({"debiaser": {"use_user": True, "floor": 0.1}},
                 lambda k, r: k["debiaser"].use_user and k["debiaser"].floor == 0.1
                 and k["debiaser"].learn_positions
                 and k["debiaser"].num_positions == 6 and k["debias_fit_feature"] == "impression_explore"),
    "fit_rows": ({"debiaser": {"fit_rows": "all", "num_positions": 4}},
                 lambda k, r: k["debias_fit_feature"] is None and k["debiaser"].num_positions == 4
                 and r["debiaser_choice"] == {"num_positions": 4, "fit_rows": "all", "learn_positions": False}),
    "light_ranker": ({"light_ranker": {"num_user_embeddings": 2, "hidden_dims": [8]}, "ranker_loss_weight": 0.5},
                     lambda k, r: k["light_ranker"].num_user_embeddings == 2 and k["ranker_loss_weight"] == 0.5),
    "soft_label_features": ({"light_ranker": {}, "soft_label_features": ["ranker_accepted"],
                             "distillation_weight": 2.0},
                            lambda k, r: k["soft_label_features"] == ["ranker_accepted"]
                            and k["light_ranker"].num_soft_tasks == 1 and k["distillation_weight"] == 2.0),
    "reward": ({"light_ranker": {}, "reward_model": "light_ranker", "reward_weight": 0.3, "reward_temperature": 0.5},
               lambda k, r: k["reward_model"] == "light_ranker" and k["reward_weight"] == 0.3
               and k["reward_temperature"] == 0.5 and "reward_alignment" in r["steps"]),
}


@pytest.mark.parametrize("key", sorted(KEY_EFFECTS))
def test_each_key_reaches_the_model(flat_files, tmp_path, key):
    from tt_tf.alignment.configured import aligned_model_kwargs
    from tt_tf.alignment.impressions import prepare_impressions
    from tt_tf.data.tables import Columns
    section, effect = KEY_EFFECTS[key]
    alignment = TrainConfig.from_file(write_config(tmp_path, section)).alignment  # through the config file
    alignment = AlignmentConfig.from_mapping(alignment)
    rows, soft = prepare_impressions(flat_files["frame"], Columns(), alignment,
                                     pd.read_csv(flat_files["items"]))
    kwargs, resolved = aligned_model_kwargs(alignment, rows, soft)
    assert effect(kwargs, resolved), (key, kwargs, resolved)
    assert resolved["explore_rows"] == int((flat_files["frame"]["explore"] > 0).sum())


def test_a_teacher_savedmodel_gives_each_row_its_pairs_probabilities(flat_files, known_ranker):
    from tt_tf.alignment.configured import aligned_model_kwargs
    from tt_tf.alignment.impressions import prepare_impressions
    from tt_tf.data.tables import Columns
    flat, truth = flat_files["frame"], flat_files["truth"]
    alignment = AlignmentConfig(light_ranker={}, distillation_teacher=saved_ranker(known_ranker),
                                reward_model={**saved_ranker(known_ranker), "task_weights": [1.0, 2.0, 4.0]},
                                reward_weight=0.2)
    rows, soft = prepare_impressions(flat, Columns(), alignment)
    assert soft == ["teacher_0", "teacher_1", "teacher_2"]  # one per task of the teacher
    users, offers = flat["customer_id"].to_numpy() - 1, flat["offer"].to_numpy() - 1
    logits = (np.einsum("nk,nk->n", truth.user_latent[users], truth.item_latent[offers])[:, None] * truth.task_scales
              + truth.item_quality[offers, None] * truth.task_quality_weights + truth.task_offsets)
    np.testing.assert_allclose(rows[soft].to_numpy(), 1 / (1 + np.exp(-logits)), atol=1e-5)
    kwargs, resolved = aligned_model_kwargs(alignment, rows, soft)
    assert kwargs["light_ranker"].num_soft_tasks == 3 and kwargs["soft_label_features"] == soft
    assert type(kwargs["reward_model"]).__name__ == "SavedModelRanker"
    assert kwargs["reward_model"].task_weights == [1.0, 2.0, 4.0] and kwargs["reward_weight"] == 0.2
    assert resolved["steps"][-2:] == ["distillation", "reward_alignment"]


def test_prepared_rows_follow_the_flatten_schema(flat_files):
    from tt_tf.alignment.impressions import prepare_impressions
    from tt_tf.data.tables import Columns
    flat = flat_files["frame"]
    items = pd.read_csv(flat_files["items"])
    alignment = AlignmentConfig(value_feature="price", cost_feature="cost", debiaser={})
    rows, soft = prepare_impressions(flat, Columns(), alignment, items)
    assert soft == []
    np.testing.assert_array_equal(rows["user_id"], flat["customer_id"])
    np.testing.assert_array_equal(rows["impression_position"], flat["rank"] - 1)
    np.testing.assert_array_equal(rows["impression_explore"], (flat["explore"] > 0).astype(np.float32))
    np.testing.assert_allclose(rows["impression_value"], np.maximum(flat["price"] - 0.5, 0))  # price - cost
    stamps = pd.to_datetime(flat["datetime"], utc=True).astype("int64") // 10 ** 9
    np.testing.assert_array_equal(rows["timestamp"], stamps)


@pytest.mark.slow  # every alignment step through the CLI (about 8 s): the default run stays under its time budget
def test_every_step_through_the_cli_is_in_the_manifest(flat_files, tmp_path, capsys):
    alignment = {"value_feature": "price", "cost_feature": "cost", "debiaser": {"fit_rows": "explore"},
                 "light_ranker": {"hidden_dims": [8]}, "soft_label_features": ["ranker_accepted"],
                 "reward_model": "light_ranker", "reward_weight": 0.1}
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "train", "--impressions", flat_files["flat"], "--interactions",
                                flat_files["history"], "--items", flat_files["items"], "--config",
                                write_config(tmp_path, alignment), "--out", out, "--quiet")
    assert code == 0, err
    assert "alignment steps: value_weighted, value_feature, position_debiaser, light_ranker, distillation, " \
           "reward_alignment" in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    recorded = manifest["metrics"]["alignment"]
    assert recorded["steps"] == ["value_weighted", "value_feature", "position_debiaser", "light_ranker",
                                 "distillation", "reward_alignment"]
    flat = flat_files["frame"]
    assert recorded["impressions"] + manifest["metrics"]["valid_masked"]["rows"] >= len(flat) - 20
    assert recorded["explore_rows"] > 0 and recorded["debiaser_choice"] == {"num_positions": 6, "fit_rows": "explore",
                                                                     "learn_positions": False}
    assert recorded["distillation_targets"] == ["ranker_accepted"]
    assert len(recorded["position_effects"]) == 6 and all(np.isfinite(recorded["position_effects"]))
    assert json.loads((out / "config.json").read_text())["alignment"] == alignment  # the section as given
    assert (out / "light_ranker").is_dir()
    # every customer shown an offer has a vector, whether or not they took one
    users = pd.read_parquet(out / "user_embeddings.parquet")
    assert set(flat["customer_id"]) <= set(users["user_id"])


def test_without_alignment_the_taken_offers_train(flat_files, tmp_path, capsys):
    out = tmp_path / "naive"
    code, stdout, err = run_cli(capsys, "train", "--impressions", flat_files["flat"], "--config",
                                write_config(tmp_path, None), "--out", out, "--quiet")
    assert code == 0, err
    assert "alignment steps: none (the taken offers train)" in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert "alignment" not in manifest["metrics"]
    taken = int((flat_files["frame"]["accepted"] > 0).sum())
    assert manifest["metrics"]["rows"] + manifest["metrics"]["valid_masked"]["rows"] == taken


@pytest.mark.slow
def test_a_teacher_and_a_reward_savedmodel_through_the_cli(flat_files, known_ranker, tmp_path, capsys):
    alignment = {"debiaser": {"use_user": True}, "light_ranker": {"hidden_dims": [8]},
                 "distillation_teacher": saved_ranker(known_ranker), "reward_model": saved_ranker(known_ranker),
                 "reward_weight": 0.5, "reward_temperature": 0.5}
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "train", "--impressions", flat_files["flat"], "--config",
                                write_config(tmp_path, alignment), "--out", out, "--quiet")
    assert code == 0, err
    recorded = json.loads((out / "manifest.json").read_text())["metrics"]["alignment"]
    assert recorded["steps"] == ["value_weighted", "position_user_debiaser", "light_ranker", "distillation",
                                 "reward_alignment"]
    assert recorded["distillation_targets"] == ["teacher_0", "teacher_1", "teacher_2"]
    assert recorded["reward_model"] == "SavedModelRanker" and recorded["reward_weight"] == 0.5


def test_the_debiaser_starts_at_the_per_position_mean_of_the_exploration_rows(flat_files):
    from tt_tf.alignment.configured import aligned_model_kwargs
    from tt_tf.alignment.impressions import prepare_impressions
    from tt_tf.data.tables import Columns
    flat = flat_files["frame"]
    alignment = AlignmentConfig(debiaser={"num_positions": 4})
    rows, soft = prepare_impressions(flat, Columns(), alignment)
    debiaser = aligned_model_kwargs(alignment, rows, soft)[0]["debiaser"]
    explore = flat[flat["explore"] > 0]
    position = np.minimum(explore["rank"] - 1, 3)  # ranks past the table share its last entry
    expected = np.maximum(explore["accepted"], 1e-3).groupby(position).mean().to_numpy()  # accepted: 0/1, max 1
    np.testing.assert_allclose(debiaser.position_effects(), expected, atol=1e-5)
    assert not debiaser.learn_positions and not debiaser.trainable_weights  # the closed-form fit is kept
    with pytest.raises(ValueError, match="one value per position"):
        type(debiaser)(num_positions=3, initial_estimate=[0.1, 0.2])


def test_the_readmes_retrain_commands_and_config_parse():
    """The README's "Retrain from the scorer's logs": its config is a valid section and its
    commands parse (the slow loop test, tests/test_feedback_loop.py, runs the same commands)."""
    import re
    import shlex
    from pathlib import Path

    import yaml

    from tt_tf.cli import build_parser
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Retrain from the scorer's logs")[1].split("\n## ")[0]
    config = TrainConfig.from_mapping(yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1)))
    assert AlignmentConfig.from_mapping(config.alignment).steps() == ["value_weighted", "value_feature",
                                                                      "position_debiaser"]
    commands = [line for line in re.search(r"```bash\n(.*?)```", section, re.S).group(1).splitlines()
                if line.startswith("tt-tf ")]
    assert [c.split()[1] for c in commands] == ["flatten", "train", "publish"]
    for command in commands:
        build_parser().parse_args(shlex.split(command)[1:])


def test_a_flattened_validation_log_gives_its_taken_offers(flat_files):
    from tt_tf.training.train import prepare_log
    flat = flat_files["frame"]
    train, valid = flat[flat["customer_id"] > 20], flat[flat["customer_id"] <= 20]
    config = TrainConfig(**TINY, alignment={"debiaser": {}})
    log, _, _, held = prepare_log(None, None, None, valid, config, impressions=train)
    assert list(held.columns[:2]) == ["user_id", "item_id"] and len(held) == int(valid["accepted"].sum())
    assert log.rows == len(train)  # a given validation log: nothing held out of the training rows
