import dataclasses
from pathlib import Path

from tt_tf.training.config import TrainConfig, reference_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_configuration_reference_is_generated_from_the_code():
    generated = reference_markdown()
    assert all(f"| `{field.name}` |" in generated for field in dataclasses.fields(TrainConfig))
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == generated, \
        "docs/configuration.md is stale: python -m tt_tf.training.config > docs/configuration.md"
