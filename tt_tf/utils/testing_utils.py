"""Merlin's ``merlin.models.tf.utils.testing_utils``: the checks Merlin users' own tests call
(``model_test``, ``mark_run_eagerly_modes``, ``test_model_signature``, ...), over tt_tf's models."""
from __future__ import annotations

import pathlib
import tempfile

import numpy as np
from tf_keras.src.saving.serialization_lib import SafeModeScope

from tt_tf._keras import keras, tf


def mark_run_eagerly_modes(*args, **kwargs):
    """``pytest.mark.parametrize("run_eagerly", [True, False])``."""
    import pytest
    return pytest.mark.parametrize("run_eagerly", [True, False])(*args, **kwargs)


def assert_serialization(layer):
    """A layer rebuilt from its ``get_config``, of the same class."""
    copy = layer.__class__.from_config(layer.get_config())
    assert isinstance(copy, layer.__class__)
    return copy


def _saved_and_loaded(model, **save_kwargs):
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "model"
        model.save(path, **save_kwargs)
        return keras.models.load_model(path)


def model_test(model, dataset_or_loader, run_eagerly: bool = True, optimizer="adam", epochs: int = 1,
               reload_model: bool = False, fit_kwargs=None, **compile_kwargs):
    """Compile and fit ``model`` one step per epoch; with ``reload_model`` also save it, load it in
    Keras, check the two predict alike and that the loaded one trains. Returns ``(model, history)``
    (the loaded model with ``reload_model``)."""
    from tt_tf.data.loader import Loader, sample_batch
    from tt_tf.io.dataset import Dataset
    model.compile(run_eagerly=run_eagerly, optimizer=optimizer, **compile_kwargs)
    loader = Loader(dataset_or_loader, batch_size=50) if isinstance(dataset_or_loader, Dataset) \
        else dataset_or_loader
    history = model.fit(loader, epochs=epochs, steps_per_epoch=1, **(fit_kwargs or {}))
    if not reload_model:
        # the user's own model rebuilt in its own process: its Lambda layers are no foreign code
        with SafeModeScope(safe_mode=False):
            assert isinstance(model.from_config(model.get_config()), type(model))
        return model, history
    loaded = _saved_and_loaded(model)
    assert isinstance(loaded, type(model)), f"loaded a {type(loaded).__name__}, saved a {type(model).__name__}"
    batch = [sample_batch(loader, batch_size=50, include_targets=True, prepare_features=False)]
    expected, got = model.predict(iter(batch)), loaded.predict(iter(batch))
    for want, have in zip(tf.nest.flatten(expected), tf.nest.flatten(got)):
        np.testing.assert_allclose(want, have, atol=1e-4)
    loaded.compile(run_eagerly=run_eagerly, optimizer=optimizer, **compile_kwargs)
    loaded.fit(iter(batch))
    return loaded, history


def test_model_signature(model, input_names, output_names):
    """The serving signature of ``model`` (saved and loaded when it has none) takes exactly
    ``input_names`` and gives ``output_names``."""
    signature = (getattr(model, "signatures", None) or {}).get("serving_default")
    if signature is None:
        signature = _saved_and_loaded(model, include_optimizer=False).signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == set(input_names)
    assert set(signature.structured_outputs) == set(output_names)


test_model_signature.__test__ = False  # a helper that pytest must not collect


def layer_test(layer_cls, args=None, kwargs=None, input_data=None, expected_output_shape=None,
               expected_output_dtype=None, supports_masking=None, **unused):
    """Build ``layer_cls(*args, **kwargs)``, call it on ``input_data`` and check the output's shape
    (``None`` dims match anything) and dtype, ``supports_masking``, and that the layer rebuilt
    from its config gives the same shape. Returns the output."""
    layer = layer_cls(*(args or []), **(kwargs or {}))
    output = layer(input_data)
    if expected_output_shape is not None:
        assert tf.TensorShape(expected_output_shape).is_compatible_with(output.shape), \
            f"output shape {output.shape}, expected {expected_output_shape}"
    if expected_output_dtype is not None:
        assert output.dtype == tf.as_dtype(expected_output_dtype), f"output dtype {output.dtype}"
    if supports_masking is not None:
        assert layer.supports_masking == supports_masking
    copy = layer_cls.from_config(layer.get_config())
    assert copy(input_data).shape == output.shape
    return output


def assert_output_shape(output, expected_output_shape):
    """``output``'s shape (a tensor's, a shape, or a dict of them) equals ``expected_output_shape``."""
    if isinstance(expected_output_shape, dict):
        for key, expected in expected_output_shape.items():
            assert_output_shape(output[key], expected)
        return
    shape = output.shape if hasattr(output, "shape") else output
    assert list(shape) == list(expected_output_shape), f"shape {list(shape)}, expected {list(expected_output_shape)}"


def loader_for_last_item_prediction(sequence_data, to_one_hot: bool = True, batch_size: int = 50):
    """``(loader, schema)`` for next-item prediction on sequence data: the categorical columns,
    every list column cut before its last item, that last item of the item-id list the target
    (one-hot over the item ids with ``to_one_hot``)."""
    from tt_tf.data.loader import Loader
    from tt_tf.data.schema import Tags
    schema = sequence_data.schema.select_by_tag(Tags.CATEGORICAL)
    item_ids = schema.select_by_tag(Tags.ITEM_ID)
    if not len(item_ids) or not item_ids.first.is_list:
        raise ValueError("loader_for_last_item_prediction needs a list column tagged Tags.ITEM_ID (the sequence)")
    item_id = item_ids.first
    num_items = item_id.int_domain.max + 1

    def last_item_as_target(features, targets=None):
        sequences = {name: value for name, value in features.items() if isinstance(value, tf.RaggedTensor)}
        items = sequences[item_id.name]
        target = tf.gather(items.values, items.row_limits() - 1)
        cut = {name: tf.RaggedTensor.from_row_lengths(
            tf.gather(value.values, tf.where(tf.not_equal(
                tf.range(tf.shape(value.values, out_type=tf.int64)[0]),
                tf.repeat(value.row_limits() - 1, value.row_lengths())))[:, 0]),
            tf.maximum(value.row_lengths() - 1, 0)) for name, value in sequences.items()}
        features = {**features, **cut}
        return features, (tf.one_hot(target, num_items) if to_one_hot else target)

    return Loader(sequence_data, batch_size=batch_size, schema=schema).map(last_item_as_target), schema


def string_test(actual, expected):
    np.testing.assert_array_equal(actual, expected)


def numeric_test(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-3, atol=1e-6)


__all__ = ["assert_output_shape", "assert_serialization", "layer_test", "loader_for_last_item_prediction",
           "mark_run_eagerly_modes", "model_test",
           "numeric_test", "string_test", "test_model_signature"]
