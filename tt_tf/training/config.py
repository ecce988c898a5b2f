"""Training configuration: every knob of ``tt-tf train``, with defaults that reach the
quality bar on MovieLens without tuning. A ``--config`` file (YAML or JSON) maps onto these
fields, which are named after the constructor arguments they feed."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

from tt_tf.training import alignment_config
from tt_tf.training.options import from_known_options


@dataclasses.dataclass
class TrainConfig:
    # columns of the input tables
    user_id: str = "user_id"
    item_id: str = "item_id"
    timestamp: str = "timestamp"
    # rows whose label is <= 0 are not positives (e.g. "accepted" in `tt-tf flatten` output)
    label_column: Optional[str] = None
    # schema inference (infer_schema)
    schema_overrides: dict = dataclasses.field(default_factory=dict)
    exclude_columns: list = dataclasses.field(default_factory=list)
    num_buckets: int = 10  # quantile buckets of each continuous feature column
    max_vocabulary_size: Optional[int] = None  # top-N ids per id vocabulary; the rest hash to oov_buckets
    oov_buckets: int = 1  # embedding rows shared by ids outside the vocabulary
    use_history: bool = True
    max_history_length: Optional[int] = None
    history_mode: str = "auto"
    share_history_table: bool = True
    # without --valid, hold out one interaction of up to this many users for early stopping
    auto_validation_users: int = 1000
    # InputBlock
    embedding_dims: dict = dataclasses.field(default_factory=dict)
    id_embedding_dim: int = 64
    embedding_dim_multiplier: float = 2.0
    max_embedding_dim: int = 64
    sequence_combiner: str = "mean"
    continuous_encoding: str = "bucketize"
    list_dropout: float = 0.0
    embeddings_l2: float = 0.0
    # history encoder: mean (pooled), attention (mean + masked self-attention, HistoryEncoder) or
    # auto: attention when the history is ordered in time (history_mode before), mean otherwise
    history_encoder: str = "auto"
    history_attention_length: Optional[int] = 20  # newest items the attention sees
    history_num_heads: int = 2
    history_num_layers: int = 1
    history_positional_encoding: bool = True
    history_dropout: float = 0.0
    # MLPBlock (towers)
    query_dimensions: list = dataclasses.field(default_factory=lambda: [256, 64])
    candidate_dimensions: list = dataclasses.field(default_factory=lambda: [256, 64])
    activation: str = "relu"
    dropout: Optional[float] = None
    normalization: Optional[str] = None
    l2_normalize: bool = True
    # TwoTowerModel
    logits_temperature: float = 0.2
    logq_correction: bool = True
    downscore_false_negatives: bool = True
    # mask a user's other training items out of its rows' negatives; auto: for a random
    # hold-out (history_mode all), where they sit in the query's history and are masked when scoring
    mask_known_positives: bool | str = "auto"
    # score each distinct positive of a batch once, weighted by its count (same loss, fewer scores)
    unique_candidates: bool = True
    # negatives: a list of "in-batch", {"catalogue": {num_negatives, num_eval_negatives,
    # distribution: uniform|weighted|log_uniform}}, {"memory": {memory_size, warmup_steps}}
    negative_samplers: list = dataclasses.field(default_factory=lambda: ["in-batch"])
    num_hard_negatives: Optional[int] = None
    # where log q comes from: "static" (training counts) or "streaming" (Yi et al. estimator)
    item_frequency: str = "static"
    streaming_frequency: dict = dataclasses.field(default_factory=dict)  # num_buckets, num_hashes, alpha
    # fit
    optimizer: str = "lazy_adam"  # lazy_adam (updates only the embedding rows a batch used), adam, adagrad, sgd...
    learning_rate: float = 1e-3
    batch_size: int = 1024
    epochs: int = 30
    steps_per_epoch: Optional[int] = None  # batches per epoch (None: the whole log); each epoch draws a new order
    # the stop rule (tt_tf/training/stopping.py): a gain of the monitored validation metric counts
    # when it beats the last counted one by stop_noise_floor standard errors; "auto" patience and
    # minimum are set from the steps per epoch; the best epoch's weights are kept
    early_stopping: bool = True
    early_stopping_patience: int | str = "auto"
    min_epochs: int | str = "auto"
    stop_noise_floor: float = 0.5
    # after a patience without a counted gain, the learning rate is multiplied by lr_reduction_factor
    # (up to lr_reductions times, each followed by a fresh patience) before the run stops
    lr_reductions: int = 0
    lr_reduction_factor: float = 0.2
    monitor: str = "val_mrr"  # chosen by benchmarks/stopping.py: the finest signal of the logged metrics
    seed: int = 42
    # tf.distribute: default (one device) | mirrored (local GPUs, or logical_cpus CPU replicas)
    # | multi_worker (TF_CONFIG); batch_size is the global batch, split over the replicas
    distribute: str = "default"
    logical_cpus: Optional[int] = None
    backup_dir: Optional[str] = None  # BackupAndRestore: a killed run resumes from its last epoch
    eval_ks: list = dataclasses.field(default_factory=lambda: [10, 50, 100])
    # alignment steps on the scorer's impressions (tt-tf train --impressions): label_features, task_weights,
    # value_feature, cost_feature, debiaser, light_ranker, soft_label_features, distillation_teacher,
    # reward_model, reward_weight... (tt_tf/training/alignment_config.py); null trains on the taken offers only
    alignment: Optional[dict] = None

    def __post_init__(self):
        checks = {
            "logits_temperature": self.logits_temperature > 0,
            "learning_rate": self.learning_rate > 0,
            "batch_size": self.batch_size >= 2,
            "epochs": self.epochs >= 1,
            "steps_per_epoch": self.steps_per_epoch is None or int(self.steps_per_epoch) >= 1,
            "early_stopping_patience": self.early_stopping_patience == "auto"
            or (isinstance(self.early_stopping_patience, int) and self.early_stopping_patience >= 1),
            "min_epochs": self.min_epochs == "auto" or (isinstance(self.min_epochs, int) and self.min_epochs >= 1),
            "stop_noise_floor": isinstance(self.stop_noise_floor, (int, float)) and self.stop_noise_floor >= 0,
            "lr_reductions": isinstance(self.lr_reductions, int) and self.lr_reductions >= 0,
            "lr_reduction_factor": isinstance(self.lr_reduction_factor, float) and 0 < self.lr_reduction_factor < 1,
            "id_embedding_dim": self.id_embedding_dim >= 1,
            "num_buckets": self.num_buckets >= 1,
            "max_vocabulary_size": self.max_vocabulary_size is None or int(self.max_vocabulary_size) >= 1,
            "oov_buckets": isinstance(self.oov_buckets, int) and self.oov_buckets >= 1,
            "query_dimensions": bool(self.query_dimensions) and all(int(d) > 0 for d in self.query_dimensions),
            "candidate_dimensions": bool(self.candidate_dimensions)
            and all(int(d) > 0 for d in self.candidate_dimensions),
            "item_frequency": self.item_frequency in ("static", "streaming"),
            "negative_samplers": isinstance(self.negative_samplers, (list, str)) and bool(self.negative_samplers),
            "num_hard_negatives": self.num_hard_negatives is None or int(self.num_hard_negatives) >= 1,
            "history_encoder": self.history_encoder in ("auto", "mean", "attention"),
            "mask_known_positives": self.mask_known_positives in ("auto", True, False),
            "distribute": self.distribute in ("default", "mirrored", "multi_worker"),
            "logical_cpus": self.logical_cpus is None or int(self.logical_cpus) >= 1,
        }
        self.alignment_section()  # a bad alignment section is refused before anything loads
        checks["monitor"] = self.monitor in self.monitorable()
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            hint = f" (monitor may be one of {self.monitorable()})" if "monitor" in bad else ""
            raise ValueError(f"invalid config value(s) for {bad}: " +
                             ", ".join(f"{n}={getattr(self, n)!r}" for n in bad) + hint)
        if self.query_dimensions[-1] != self.candidate_dimensions[-1]:
            raise ValueError("query_dimensions and candidate_dimensions must end in the same size "
                             f"(the embedding dim), got {self.query_dimensions[-1]} and "
                             f"{self.candidate_dimensions[-1]}")

    def alignment_section(self):
        """The ``alignment`` section parsed (``AlignmentConfig``), None without one."""
        if self.alignment is None:
            return None
        return alignment_config.AlignmentConfig.from_mapping(self.alignment)

    def monitorable(self) -> list:
        """The validation metrics a run logs each epoch (what ``monitor`` may name)."""
        return ["val_mrr"] + [f"val_{name}_at_{int(k)}" for k in self.eval_ks for name in ("recall", "ndcg")]

    @classmethod
    def from_mapping(cls, mapping: dict) -> "TrainConfig":
        return from_known_options(cls, mapping, "config")

    @classmethod
    def from_file(cls, path) -> "TrainConfig":
        path = Path(path)
        if not path.exists():
            raise ValueError(f"config file not found: {path}")
        text = path.read_text()
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml
            try:
                mapping = yaml.safe_load(text)
            except yaml.YAMLError as error:
                raise ValueError(f"config file {path} is not valid YAML: {str(error).splitlines()[0]}") from None
        else:
            try:
                mapping = json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(f"config file {path} is not valid JSON: {error}") from None
        return cls.from_mapping(mapping or {})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def reference_markdown() -> str:
    """The configuration reference (docs/configuration.md), generated from this class: every
    field with its type and default, under the comment that heads its group."""
    import inspect
    import re

    lines = ["# Configuration reference", "",
             "Generated from `tt_tf/training/config.py` by `python -m tt_tf.training.config > docs/configuration.md`; "
             "every key is",
             "accepted by `tt-tf train --config FILE` (YAML or JSON).", ""]
    defaults = TrainConfig()
    heading: list = []
    field_line = re.compile(r"^    (\w+): ([^=]+?) = .*?(?:#\s*(.*))?$")
    for line in inspect.getsource(TrainConfig).splitlines():
        if line.startswith("    def ") or line.startswith("    @"):
            break
        stripped = line.strip()
        if stripped.startswith("#"):
            heading.append(stripped.lstrip("# "))
            continue
        match = field_line.match(line)
        if not match:
            continue
        if heading:
            lines += ["", f"**{' '.join(heading)}**", "", "| option | type | default | note |", "|---|---|---|---|"]
            heading = []
        name, kind, note = match.group(1), match.group(2).strip().replace("|", "\\|"), match.group(3) or ""
        default = json.dumps(getattr(defaults, name))
        lines.append(f"| `{name}` | `{kind}` | `{default}` | {note} |")
    return "\n".join(lines + alignment_reference()) + "\n"


def alignment_reference() -> list:
    """The ``alignment`` section's options, and those of its sub-sections."""
    section = alignment_config
    defaults = section.AlignmentConfig()
    lines = ["", "## The `alignment` section", "", section.__doc__.strip().split("\n\n")[0], "",
             "| option | default |", "|---|---|"]
    lines += [f"| `{f.name}` | `{json.dumps(getattr(defaults, f.name))}` |"
              for f in dataclasses.fields(section.AlignmentConfig)]
    for name, keys in (("debiaser", section.DEBIASER_KEYS), ("light_ranker", section.LIGHT_RANKER_KEYS),
                       ("distillation_teacher / reward_model (a SavedModel)", section.SAVED_RANKER_KEYS)):
        lines += ["", f"`{name}`: " + ", ".join(f"`{k}` (default `{json.dumps(v)}`)" for k, v in keys.items())]
    return lines


if __name__ == "__main__":
    print(reference_markdown(), end="")
