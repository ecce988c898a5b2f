"""Merlin's data, schema, metric and output surface at the depth Merlin's own tests check
(issue 33): each behaviour against a hand-computed or numpy reference."""
import json

import numpy as np
import pandas as pd
import pytest

import tt_tf as mm
from tt_tf._keras import tf
from tt_tf.data.merlin_schema import read_merlin_schema
from tt_tf.datasets.synthetic import generate_data
from tt_tf.io import Dataset
from tt_tf.metrics.topk import TopKMetricsAggregator, extract_topk
from tt_tf.schema import ColumnSchema, Schema, Tags, TagSet


def test_tags_any_case_free_form_and_compound():
    tags = TagSet(["ITEM_ID", "Categorical", "bias"])
    assert tags == {"item", "id", "categorical", "bias"}
    assert Tags.ITEM_ID in tags and "item_id" in tags and "ID" in tags and "Bias" not in tags
    assert (tags + "target") - ["bias"] == {"item", "id", "categorical", "target"}
    schema = Schema([ColumnSchema("item_id", tags=["ID", "item"]), ColumnSchema("x", tags=["a"])])
    assert schema.select_by_tag("ITEM_ID").column_names == ["item_id"]
    assert schema.select_by_tag(["a", "b"], all).column_names == []


def test_schema_from_names_without_item_assignment_and_shape():
    schema = Schema(["a", "b", "c"])
    assert schema.column_names == ["a", "b", "c"] and schema.without(["b"]).column_names == ["a", "c"]
    schema["a"] = schema["a"].with_tags([Tags.TARGET]).with_shape(((0, None), (4, 4)))
    assert schema["a"].has(Tags.TARGET) and schema["a"].is_list and not schema["a"].is_ragged
    assert schema["a"].shape.dims[1] == (4, 4) and schema["a"].with_shape(((0, None),)).is_list is False
    with pytest.raises(TypeError, match="column_schemas"):
        Schema(12345)
    assert list(schema.to_pandas().columns) == ["name", "dtype", "tags"]


def test_reads_schema_pbtxt_and_tensorflow_metadata_json(tmp_path):
    (tmp_path / "schema.pbtxt").write_text('''
feature {
  name: "genres"
  value_count { min: 1 max: 4 }
  type: INT
  int_domain { name: "genre" min: 1 max: 18 is_categorical: true }
  annotation { tag: "categorical" tag: "item" extra_metadata { type_url: "x" value: "\\n\\021" } }
}
feature { name: "rating" type: FLOAT annotation { tag: "regression" tag: "target" } }
''')
    schema = read_merlin_schema(tmp_path / "schema.pbtxt")
    genres = schema["genres"]
    assert genres.int_domain == (1, 18, "genre") and genres.value_count == (1, 4, None) and genres.is_list
    assert genres.embedding_table == "genre" and schema["rating"].dtype == "float32"
    (tmp_path / "merlin.json").write_text(json.dumps({"feature": [
        {"name": "item_id", "type": "INT", "intDomain": {"name": "item_id", "max": "99", "isCategorical": True},
         "annotation": {"tag": ["item_id", "categorical"]}}]}))
    assert read_merlin_schema(tmp_path / "merlin.json")["item_id"].int_domain.max == 99
    frame = pd.DataFrame({"genres": [[1, 2], [3]], "rating": [4.0, 3.0]})
    frame.to_parquet(tmp_path / "part_0.parquet")
    assert Dataset(tmp_path).schema["genres"].int_domain.max == 18  # the schema beside the data


@pytest.mark.parametrize("name, columns", [("e-commerce", 25), ("music-streaming", 13), ("social", 19),
                                           ("testing", 11), ("sequence-testing", 11), ("movielens-100k", 11),
                                           ("movielens-1m", 16), ("movielens-25m", 8)])
def test_generate_data_named_schemas(name, columns):
    data = generate_data(name, num_rows=60, seed=0)
    frame = data.compute()
    assert data.num_rows == 60 and len(data.schema) == columns
    for column in data.schema:
        domain = column.int_domain
        values = np.concatenate(frame[column.name].to_numpy()) if column.is_list else frame[column.name].to_numpy()
        if domain is not None and column.has(Tags.CATEGORICAL):
            assert values.min() >= domain.min and values.max() <= domain.max, column.name


def test_generate_data_entity_features_follow_their_id_and_splits():
    frame = generate_data("e-commerce", num_rows=400, seed=1).compute()
    # a user's categorical features are the same on every row of that user
    assert (frame.groupby("user_id")["user_age"].nunique() == 1).all()
    assert (frame.groupby("item_id")["item_brand"].nunique() == 1).all()
    train, valid = generate_data("music-streaming", 100, set_sizes=(0.8, 0.2))
    assert (train.num_rows, valid.num_rows) == (80, 20)
    assert all(len(genres) == 4 for genres in train.compute()["user_genres"])  # value_count min 4
    with pytest.raises(ValueError, match="Did you mean 'e-commerce'"):
        generate_data("e-comerce", 10)


def test_extract_topk_and_metrics_against_numpy():
    labels = np.array([[0, 1, 0, 1, 0], [1, 0, 0, 1, 0], [0, 0, 0, 0, 1]], np.float32)
    scores = np.array([[10, 9, 8, 7, 6], [1, 4, 3, 2, 5], [10, 9, 8, 7, 6]], np.float32)
    top_scores, top_labels, relevant = extract_topk(4, scores, labels)
    order = np.argsort(-scores, axis=1)[:, :4]
    np.testing.assert_array_equal(top_labels.numpy(), np.take_along_axis(labels, order, 1))
    np.testing.assert_array_equal(relevant.numpy(), labels.sum(1))
    # recall@4 by hand: row 0 finds 2 of 2, row 1 finds 1 of 2 (ranks 4 and 5), row 2 none: mean 0.5
    aggregator = TopKMetricsAggregator(mm.RecallAt(4), mm.MRRAt(4))
    aggregator.update_state(labels, scores)
    assert {k: round(float(v), 6) for k, v in aggregator.result().items()} == {"recall_at_4": 0.5,
                                                                              "mrr_at_4": 0.25}
    # 3-D (batch, positions, columns) with position weights: rows weighted 0/1
    metric = mm.RecallAt(4)
    metric.update_state(np.stack([labels, labels]), np.stack([scores, scores]),
                        sample_weight=np.array([[0, 1, 0], [1, 0, 0]], np.float32))
    assert float(metric.result()) == pytest.approx((0.5 + 1.0) / 2)
    with pytest.raises(ValueError, match="label_relevant_counts"):
        mm.RecallAt(4, pre_sorted=True).update_state(labels, scores)


def test_loader_named_columns_from_a_path(tmp_path):
    pd.DataFrame({"cat": [1, 2, 3, 4], "cont": [0.5, 1.5, 2.5, 3.5], "label": [0, 1, 0, 1],
                  "other": [9, 9, 9, 9]}).to_parquet(tmp_path / "data.parquet")
    loader = mm.Loader(str(tmp_path / "data.parquet"), batch_size=4, shuffle=False, cat_names=["cat"],
                       cont_names=["cont"], label_names=["label"])
    features, label = next(iter(loader))
    assert sorted(features) == ["cat", "cont"] and label.numpy().tolist() == [0, 1, 0, 1]
    weighted = loader.map(lambda x, y: (x, y, tf.cast(x["cat"] > 2, tf.float32)))
    assert next(iter(weighted))[2].numpy().tolist() == [0.0, 0.0, 1.0, 1.0]


def test_contrastive_output_scores_and_masks_false_negatives():
    query = tf.constant([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    candidate = tf.constant([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0]])
    output = mm.ContrastiveOutput(Schema([ColumnSchema("item_id", tags=[Tags.ITEM_ID])]), "in-batch",
                                  false_negative_score=-1e9)
    positive = output({"query": query, "candidate": candidate})
    np.testing.assert_allclose(positive.numpy(), [[2.0], [3.0], [1.0]])
    # rows 0 and 2 hold the same item 7: each masks the other's column and its own
    scores = output({"query": query, "candidate": candidate}, features={"item_id": tf.constant([7, 8, 7])},
                    training=True).outputs.numpy()
    expected = np.concatenate([[[2.0], [3.0], [1.0]], query.numpy() @ candidate.numpy().T], axis=1)
    expected[[0, 0, 1, 2, 2], [1, 3, 2, 1, 3]] = -1e9
    np.testing.assert_allclose(scores, expected)
    with pytest.raises(ValueError, match="At least one sampler"):
        mm.ContrastiveOutput(DotProduct := mm.DotProduct(), negative_samplers=[])
    assert DotProduct is not None


def test_retrieval_model_v2_and_merlin_serving_keys():
    data = generate_data("music-streaming", num_rows=100, seed=3)
    schema = data.schema.select_by_name(["user_id", "user_genres", "item_id"])
    query = mm.Encoder(schema.select_by_tag(Tags.USER), mm.MLPBlock([4]))
    candidate = mm.Encoder(schema.select_by_tag(Tags.ITEM), mm.MLPBlock([4]))
    model = mm.RetrievalModelV2(query=query, candidate=candidate,
                                output=mm.ContrastiveOutput(schema.select_by_tag(Tags.ITEM_ID), "in-batch"))
    model.compile(optimizer="adam")
    history = model.fit(Dataset(data.compute(), schema=schema), batch_size=50, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert set(query.serving_spec()) == {"user_id", "user_genres__values", "user_genres__offsets"}
    with pytest.raises(ValueError, match="not meant to be trained by itself"):
        query.fit(data)
