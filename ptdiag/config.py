"""Analysis configuration: budgets, config files and flags resolved into one frozen `AnalyzeConfig`.

Precedence: budget defaults < `--config FILE` (TOML or YAML, keys equal the flag names) < flags given on the
command line. The resolved config is saved in the run directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ptdiag.errors import UsageError

STRATEGIES = ("lp", "ft", "lpft")


@dataclass(frozen=True)
class AnalyzeConfig:
    """Every knob of `ptdiag analyze`; field names equal the long flags (dashes become underscores)."""

    train: str = ""
    shift: str = ""
    out: str | None = None
    name: str | None = None
    format: str | None = None
    budget: str = "quick"
    # Hugging Face datasets / WebDataset shards: split and columns (None: the features or defaults decide)
    train_split: str | None = None
    shift_split: str | None = None
    image_column: str | None = None
    label_column: str | None = None
    label_map: str | None = None  # file renaming raw labels to class names (ptdiag.data.label_map)
    # data
    image_size: int = 64
    max_reference: int | None = 4000  # subsample the reference set (stratified) to bound CPU time; None = all
    max_shift: int | None = 2000
    val_fraction: float = 0.15
    test_fraction: float = 0.2
    min_per_class: int = 10
    strict: bool = False
    cache_dir: str | None = None
    # baselines (from scratch)
    baseline_arch: str = "ptdiag_smallcnn"
    baseline_width: int = 16
    baseline_image_size: int = 32
    baseline_fractions: tuple[float, ...] = (0.25, 0.5, 1.0)
    baseline_seeds: tuple[int, ...] = (0,)
    baseline_epochs: int = 6
    baseline_eval_epochs: tuple[int, ...] = (2, 3, 4, 5, 6)
    baseline_lr: float = 3e-3
    scratch_same_arch: bool = False  # also train the pre-trained architecture from scratch (a baseline point set)
    # pre-trained candidates
    model: tuple[str, ...] = ("tf_efficientnet_lite0",)
    weights: tuple[str, ...] = ()
    strategies: tuple[str, ...] = ("lp", "lpft")
    probe_cs: tuple[float, ...] = (0.01, 0.1, 1.0)
    ft_epochs: int = 3
    ft_lrs: tuple[float, ...] = (1e-3, 3e-4)
    ft_seeds: int = 3
    ft_from_block: int = 0  # > 0: fine-tune only blocks K.. on cached activations of the frozen lower blocks
    freeze_bn: bool = True
    batch_size: int = 32
    # support split and statistics
    epsilon: float = 0.2
    folds: int = 10
    support_max_reference: int = 20000
    scale: str = "probit"
    bootstrap: int = 1000
    # verdict thresholds (defaults of ptdiag.stats.thresholds.VerdictConfig): an effect is material when its interval
    # clears `material_points` accuracy points; `material_share` only words the advice ("a little of" the gap)
    material_points: float = 2.0
    material_share: float = 0.25
    min_r2: float = 0.8
    # run
    seed: int = 0
    device: str = "auto"
    fail_on: tuple[str, ...] = ()
    save_checkpoints: bool = False
    remedies: bool = True  # measure last-layer retraining and reweighting next to pre-training
    executor: str = "local"  # local | ray (ptdiag.engine.executors)
    ray_address: str | None = None  # Ray cluster to join; default $RAY_ADDRESS, else a local Ray instance

    def validate(self) -> AnalyzeConfig:
        """Check cross-field rules; raise UsageError naming the flag."""
        if self.budget not in BUDGETS:
            raise UsageError(f"--budget must be one of {', '.join(BUDGETS)}. Got {self.budget!r}.")
        bad = [s for s in self.strategies if s not in STRATEGIES]
        if bad:
            raise UsageError(f"--strategies: unknown {bad[0]!r}; choose from {', '.join(STRATEGIES)}")
        if not 0 < self.epsilon < 1:
            raise UsageError(f"--epsilon must be in (0, 1). Got {self.epsilon}. Try 0.2.")
        if self.scale not in ("probit", "logit"):
            raise UsageError(f"--scale must be probit or logit. Got {self.scale!r}.")
        fractions = (self.val_fraction, self.test_fraction)
        if any(not 0 < f < 1 for f in fractions) or sum(fractions) >= 1:
            raise UsageError("--val-fraction and --test-fraction must be in (0, 1) and sum to less than 1")
        if self.image_size < 16 or self.baseline_image_size < 8:
            raise UsageError(f"--image-size {self.image_size} is too small (use 32 or more)")
        if any(not 0 < f <= 1 for f in self.baseline_fractions):
            raise UsageError("--baseline-fractions must lie in (0, 1]")
        if not self.baseline_eval_epochs or max(self.baseline_eval_epochs) > self.baseline_epochs:
            raise UsageError("--baseline-eval-epochs must be non-empty and at most --baseline-epochs")
        if self.weights and len(self.weights) != len(self.model):
            raise UsageError("--weights: give one file per --model (same order)")
        if not 0 <= self.material_points <= 100 or not 0 <= self.material_share <= 1 or not 0 <= self.min_r2 <= 1:
            raise UsageError("--material-points must be in [0, 100], --material-share and --min-r2 in [0, 1]")
        if self.executor not in ("local", "ray"):
            raise UsageError(f"--executor must be local or ray. Got {self.executor!r}.")
        if self.ft_from_block < 0 or self.ft_seeds < 1:
            raise UsageError("--ft-from-block must be 0 (end to end) or more, and --ft-seeds at least 1")
        if self.folds < 2:
            raise UsageError("--folds must be at least 2")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def source_options(self) -> dict[str, Any]:
        """The split, column and label-map settings, as keyword arguments of ``ptdiag.data.ingest.load_pair``."""
        from ptdiag.data.label_map import read_label_map

        keys = ("train_split", "shift_split", "image_column", "label_column")
        options: dict[str, Any] = {k: getattr(self, k) for k in keys}
        options["label_map"] = read_label_map(self.label_map) if self.label_map else None
        return options


# Settings that do not change an analysis' numbers: where it is written, its name, the gate, and the device (jobs
# are not keyed on it either).
_NOT_RESULT_DECIDING = ("out", "name", "fail_on", "device", "executor", "ray_address")


def result_identity(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings (a config dict, e.g. a saved config.json) that decide the results, JSON-normalised."""
    data = {k: v for k, v in settings.items() if k not in _NOT_RESULT_DECIDING}
    for key in ("train", "shift"):
        if data.get(key):
            data[key] = str(Path(data[key]).resolve())
    return json.loads(json.dumps(data))


# Budget defaults. `quick` fits a 2-core CPU; `standard` a single GPU; `full` approaches the paper's recipe (§6).
BUDGETS: dict[str, dict[str, Any]] = {
    # quick: LP-FT of the top blocks on cached activations of the frozen lower ones (the end-to-end fine-tune's
    # backward through the early, high-resolution blocks is most of a CPU step); docs/VALIDATION.md compares the two.
    "quick": dict(ft_from_block=6),
    "standard": dict(
        image_size=128, max_reference=None, max_shift=None, baseline_width=32, baseline_image_size=64,
        baseline_fractions=(0.25, 0.5, 0.75, 1.0), baseline_seeds=(0, 1), baseline_epochs=12,
        baseline_eval_epochs=(4, 6, 8, 10, 12), scratch_same_arch=True, strategies=("lp", "ft", "lpft"),
        ft_epochs=8, ft_lrs=(3e-4, 1e-4, 3e-5), ft_seeds=3, batch_size=64,
    ),
    "full": dict(
        image_size=224, max_reference=None, max_shift=None, baseline_width=64, baseline_image_size=96,
        baseline_fractions=(0.25, 0.5, 0.75, 1.0), baseline_seeds=(0, 1, 2), baseline_epochs=24,
        baseline_eval_epochs=(8, 10, 12, 14, 16, 18, 20, 22, 24), scratch_same_arch=True,
        strategies=("lp", "ft", "lpft"), ft_epochs=8, ft_lrs=(3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6), ft_seeds=4,
        batch_size=64, bootstrap=2000,
    ),
}

_FIELDS = {f.name: f for f in dataclasses.fields(AnalyzeConfig)}


def setting_types() -> dict[str, str]:
    """Each setting's declared type, as written in AnalyzeConfig (e.g. 'tuple[float, ...]', 'int | None')."""
    return {name: str(f.type) for name, f in _FIELDS.items()}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or YAML config whose keys equal the flag names (dashes or underscores)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a table of flag = value")
    return {_normalize_key(k, str(path)): v for k, v in data.items()}


def _normalize_key(key: str, source: str) -> str:
    name = str(key).lstrip("-").replace("-", "_")
    if name not in _FIELDS:
        close = difflib.get_close_matches(name, list(_FIELDS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"{source}: unknown setting {key!r}{hint}")
    return name


def _coerce(name: str, value: Any) -> Any:
    """Lists from files become tuples; scalars given for tuple fields become 1-tuples."""
    default = _FIELDS[name].default
    if isinstance(default, tuple):
        if value is None:
            return ()
        return tuple(value) if isinstance(value, list | tuple) else (value,)
    return value


def resolve_config(flags: dict[str, Any], config_file: str | Path | None = None) -> AnalyzeConfig:
    """Budget defaults < config file < flags (flags whose value is None were not given)."""
    file_values = read_config_file(config_file) if config_file else {}
    budget = flags.get("budget") or file_values.get("budget") or "quick"
    if budget not in BUDGETS:
        raise UsageError(f"--budget must be one of {', '.join(BUDGETS)}. Got {budget!r}.")
    merged: dict[str, Any] = dict(BUDGETS[budget])
    merged.update(file_values)
    merged.update({k: v for k, v in flags.items() if v is not None and v != ()})
    merged["budget"] = budget
    values = {k: _coerce(k, v) for k, v in merged.items()}
    try:
        return AnalyzeConfig(**values).validate()
    except TypeError as exc:
        raise UsageError(f"bad configuration: {exc}") from None


