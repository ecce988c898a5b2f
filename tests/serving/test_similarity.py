"""The similarity contract: the scorer reads what the run was trained for (manifest ``similarity``
and ``normalized``) and refuses a setting that contradicts it unless told to override."""
import logging

import numpy as np
import pytest

from serving.run import LoadedRun, RunLoadError, resolve_similarity
from tests.serving.serving_helpers import make_client

UNNORMALISED = {"run_id": "r", "similarity": "dot", "normalized": False}
NORMALISED = {"run_id": "r", "similarity": "dot", "normalized": True}


def test_the_published_record_carries_the_manifest_contract(published):
    _, record, run_dir, _ = published
    import json
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert record["similarity"] == manifest["similarity"] == "dot"
    assert record["normalized"] is manifest["normalized"] is True  # the default towers end in L2Norm


@pytest.mark.parametrize("record, setting, expected", [
    (NORMALISED, None, "cosine"),      # unset: the contract's default, equal to dot on unit vectors
    (NORMALISED, "cosine", "cosine"),
    (NORMALISED, "dot", "dot"),
    (UNNORMALISED, None, "dot"),       # unset: served as trained
    (UNNORMALISED, "dot", "dot"),
])
def test_settings_that_agree_with_the_run_are_served_without_a_warning(record, setting, expected):
    assert resolve_similarity(record, setting) == (expected, None)


def test_cosine_on_an_unnormalised_dot_run_is_refused_naming_both():
    with pytest.raises(RunLoadError) as refused:
        resolve_similarity(UNNORMALISED, "cosine")
    message = str(refused.value)
    assert "'cosine'" in message and "'dot'" in message and "normalized=false" in message
    assert "similarity_override" in message  # and how to serve it anyway


def _unnormalised(store, record):
    """The published run as if trained without L2 normalisation (its vectors scaled per row)."""
    table = store.item_table(record["run_id"])
    scale = np.linspace(0.5, 3.0, len(table.offers))[:, None]
    store.put_item_embeddings(record["run_id"], list(table.offers), table.vectors * scale, table.attributes)
    store.put_run({**record, "normalized": False})


def test_the_scorer_refuses_the_contradiction_at_load_and_serves_it_when_overridden(published, caplog):
    store, record, run_dir, _ = published
    _unnormalised(store, record)
    with make_client(store, run_dir, similarity="cosine") as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert "contradicts run" in str(ready.json())
    with caplog.at_level(logging.WARNING, logger="serving.run"):
        with make_client(store, run_dir, similarity="cosine", similarity_override=True) as client:
            answer = client.post("/invocations", json={"customer": 1, "numberoffers": 3})
            assert answer.status_code == 200 and answer.json()["final_result"]
    assert any("served anyway" in r.getMessage() for r in caplog.records)
    with make_client(store, run_dir) as client:  # unset: served as trained, by dot
        assert client.get("/health/ready").status_code == 200
        assert client.app.state.service.run.similarity == "dot"


def test_dot_and_cosine_rank_an_unnormalised_run_differently(published):
    """Why the contradiction matters: the two rankings differ on the same vectors."""
    store, record, _, _ = published
    _unnormalised(store, record)
    record = {**record, "normalized": False}
    dot = LoadedRun(store, record, "dot", live_user_tower=False)
    cosine = LoadedRun(store, record, "cosine", live_user_tower=False, similarity_override=True)
    user = store.user_vector(record["run_id"], 1)
    assert not np.array_equal(np.argsort(-(dot.item_matrix @ user)), np.argsort(-(cosine.item_matrix @ user)))
