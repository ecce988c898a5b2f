"""POST /response + `tt-tf flatten` give training rows with the right accepted flags, and
`tt-tf train` accepts them."""
import pandas as pd
import pytest

from tt_tf.cli import main
from tt_tf.stores.flatten import FLAT_COLUMNS, flatten_logs


def test_response_and_flatten_mark_accepted_offers(client, published, tmp_path, capsys):
    store = published[0]
    first = client.post("/invocations", json={"customer": 1, "numberoffers": 3, "campaign": "spring"}).json()
    second = client.post("/invocations", json={"customer": 2, "numberoffers": 2, "campaign": "spring"}).json()
    taken = first["final_result"][1]["result"]["offer_name"]
    answer = client.post("/response", json={"uuid": first["uuid"], "offers_accepted": [{"offer_name": taken.upper()}],
                                            "channel_name": "app"})
    assert answer.status_code == 200 and answer.json()["success"] is True
    assert client.post("/response", json={"offers_accepted": []}).status_code == 422
    assert client.post("/response", json={"uuid": "x", "offers_accepted": [{"name": 1}]}).status_code == 422
    service = client.app.state.service
    service.invocation_log.flush()
    service.response_log.flush()
    out = tmp_path / "flat.csv"
    assert main(["flatten", "--store", str(store.root), "--out", str(out)]) == 0
    flat = pd.read_csv(out)
    assert list(flat.columns) == FLAT_COLUMNS and len(flat) == 5
    accepted = flat[flat.accepted == 1]
    assert len(accepted) == 1
    assert accepted.iloc[0].uuid == first["uuid"] and str(accepted.iloc[0].offer) == taken
    assert accepted.iloc[0]["rank"] == 2 and accepted.iloc[0].predictor == "spring"
    assert set(flat[flat.uuid == second["uuid"]].accepted) == {0}
    assert "1 accepted" in capsys.readouterr().out


def test_flatten_logs_matches_by_offer_id_or_name():
    invocations = [{"uuid": "a", "customer": "c", "campaign": "p", "datetime": "2026-01-01T00:00:00+00:00",
                    "offers": [{"offer": "10", "offer_name": "Ten", "rank": 1, "score": 0.5, "price": 3.0},
                               {"offer": "11", "offer_name": "Eleven", "rank": 2, "score": 0.4, "price": None}]}]
    flat = flatten_logs(invocations, [{"uuid": "a", "offers_accepted": [{"offer_name": "eleven"}]},
                                      {"uuid": "zzz", "offers_accepted": [{"offer_name": "Ten"}]}])
    assert flat.accepted.tolist() == [0, 1]


@pytest.mark.slow  # trains from flattened rows (about 13 s)
def test_train_accepts_flattened_rows(tmp_path, tiny_tables):
    """Flattened rows with customer_id/offer/accepted train with a config mapping the columns."""
    train, _, _, _, items = tiny_tables
    rows = train.rename(columns={"user_id": "customer_id", "item_id": "offer"}).head(600).copy()
    rows["accepted"] = [1, 1, 0] * (len(rows) // 3)
    rows["datetime"] = pd.to_datetime(rows.pop("timestamp"), unit="s", utc=True)
    rows.to_csv(tmp_path / "flat.csv", index=False)
    items.rename(columns={"item_id": "offer"}).to_csv(tmp_path / "items.csv", index=False)
    (tmp_path / "flat.yaml").write_text("user_id: customer_id\nitem_id: offer\ntimestamp: datetime\n"
                                        "label_column: accepted\nepochs: 1\nbatch_size: 64\nid_embedding_dim: 8\n"
                                        "query_dimensions: [8]\ncandidate_dimensions: [8]\n")
    code = main(["train", "--interactions", str(tmp_path / "flat.csv"), "--items", str(tmp_path / "items.csv"),
                 "--config", str(tmp_path / "flat.yaml"), "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 0
    record = pd.read_parquet(tmp_path / "run" / "user_embeddings.parquet")
    assert "customer_id" in record.columns
