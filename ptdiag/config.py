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


FORMATS = ("imagefolder", "csv", "parquet", "hf", "webdataset")
BUDGET_NAMES = ("quick", "standard", "full")


def setting(default: Any, help: str, *, unit: str = "", none: str = "", choices: tuple[str, ...] = (),
            repeatable: bool = False, **per_budget: Any) -> Any:
    """Declare one knob of `ptdiag analyze`: its default (the quick budget's), the help text, its unit, what None
    means, its choices, and the defaults of the other budgets (``standard=``, ``full=``). The flags, the config-file
    keys, `--help`, docs/OPTIONS.md and the results' `config` echo are all derived from these declarations."""
    unknown = set(per_budget) - set(BUDGET_NAMES)
    if unknown:
        raise TypeError(f"unknown budget {sorted(unknown)}")
    meta = {"help": help, "unit": unit, "none": none, "choices": choices, "repeatable": repeatable,
            "budgets": per_budget}
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class AnalyzeConfig:
    """Every knob of `ptdiag analyze`, declared once; field names equal the long flags (dashes become
    underscores). Construct it with `resolve_config` to get a budget's defaults."""

    # sources
    train: str = setting("", "Reference (in-distribution) images: ImageFolder tree, CSV/Parquet manifest, Hugging "
                         "Face dataset (save_to_disk folder, Parquet/Arrow file, hf://datasets/ORG/NAME[:split]) or "
                         "WebDataset shards (.tar, {000..009} pattern, folder).")
    shift: str = setting("", "Shifted images, any of the same kinds; classes matched by name (a subset is fine).")
    out: str | None = setting(None, "Run directory.", none="ptdiag-runs/<timestamp>-<name>")
    name: str | None = setting(None, "Run name used in the default run directory.", none="from the folder names")
    format: str | None = setting(None, "Source format of both sets.", choices=FORMATS, none="auto-detect")
    budget: str = setting("quick", "quick (2-core CPU) | standard (one GPU) | full (paper recipe).",
                          choices=BUDGET_NAMES, standard="standard", full="full")
    train_split: str | None = setting(None, "Split of a Hugging Face DatasetDict / hub dataset for --train.",
                                      none="the only split, else train")
    shift_split: str | None = setting(None, "Split of a Hugging Face DatasetDict / hub dataset for --shift.",
                                      none="the only split")
    image_column: str | None = setting(None, "Image column of a Hugging Face dataset.", none="its Image feature")
    label_column: str | None = setting(None, "Label column of a Hugging Face dataset, or WebDataset member/json "
                                       "field.", none="its ClassLabel; cls")
    shift_labels: str | None = setting(None, "CSV of path,label for a random sample of the shifted images (e.g. "
                                       "200) when the rest has no labels: shifted accuracies are then estimated from "
                                       "it and the models' confidence.", none="the shifted set's own labels")
    ignore_shift_labels: bool = setting(False, "Treat the shifted set as unlabelled (only --shift-labels count), to "
                                        "validate the estimates or when its labels are not trusted.")
    label_map: str | None = setting(None, "File renaming raw labels to class names in both sets: CSV of label,name "
                                    "rows, JSON object, or one name per line (line i names label i).")
    # data
    image_size: int = setting(64, "Resolution for pre-trained models.", unit="px", standard=128, full=224)
    max_reference: int | None = setting(4000, "Subsample the reference set (stratified) to this many images.",
                                        none="all", standard=None, full=None)
    max_shift: int | None = setting(2000, "Subsample the shifted set to this many images.", none="all",
                                    standard=None, full=None)
    val_fraction: float = setting(0.15, "Share of the reference held out to choose learning rates and probe "
                                  "strengths.")
    test_fraction: float = setting(0.2, "Share of the reference held out to measure reference accuracy.")
    min_per_class: int = setting(10, "Warn below this many images per class.")
    strict: bool = setting(False, "Corrupt images are fatal.")
    cache_dir: str | None = setting(None, "Decode cache folder.", none="$PTDIAG_CACHE_DIR or ~/.cache/ptdiag")
    # baselines (from scratch)
    baseline_arch: str = setting("ptdiag_smallcnn", "Architecture of the from-scratch baselines (a timm name).")
    baseline_width: int = setting(16, "Width (channels of the first layer) of the default baseline CNN.",
                                  standard=32, full=64)
    baseline_image_size: int = setting(32, "Resolution the baselines train at.", unit="px", standard=64, full=96)
    baseline_fractions: tuple[float, ...] = setting((0.25, 0.5, 1.0), "Comma list of training-data fractions.",
                                                    standard=(0.25, 0.5, 0.75, 1.0), full=(0.25, 0.5, 0.75, 1.0))
    baseline_seeds: tuple[int, ...] = setting((0,), "Comma list of baseline seeds (one training run per seed and "
                                              "fraction).", standard=(0, 1), full=(0, 1, 2))
    baseline_epochs: int = setting(6, "Epochs per baseline run.", standard=12, full=24)
    baseline_eval_epochs: tuple[int, ...] = setting((2, 3, 4, 5, 6), "Comma list of checkpoint epochs.",
                                                    standard=(4, 6, 8, 10, 12),
                                                    full=(8, 10, 12, 14, 16, 18, 20, 22, 24))
    baseline_lr: float = setting(3e-3, "Baselines' learning rate.")
    scratch_same_arch: bool = setting(False, "Also train the pre-trained architecture from scratch.",
                                      standard=True, full=True)
    # pre-trained candidates
    model: tuple[str, ...] = setting(("tf_efficientnet_lite0",), "Pre-trained timm model.", repeatable=True)
    weights: tuple[str, ...] = setting((), "Local checkpoint for each --model (same order).", repeatable=True)
    strategies: tuple[str, ...] = setting(("lp", "lpft"), "Comma list of lp, ft, lpft.",
                                          standard=("lp", "ft", "lpft"), full=("lp", "ft", "lpft"))
    probe_cs: tuple[float, ...] = setting((0.01, 0.1, 1.0), "Comma list: inverse regularisation strengths of the "
                                          "linear probe (chosen on reference val).")
    ft_epochs: int = setting(3, "Fine-tuning epochs.", standard=8, full=8)
    ft_lrs: tuple[float, ...] = setting((1e-3, 3e-4), "Comma list: fine-tuning LR grid (chosen on reference val).",
                                        standard=(3e-4, 1e-4, 3e-5), full=(3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6))
    ft_seeds: int = setting(3, "Fine-tuning seeds at the chosen LR (a count).", full=4)
    # quick: the top blocks on cached activations of the frozen lower ones (the end-to-end backward through the
    # early, high-resolution blocks is most of a CPU step); docs/VALIDATION.md compares the two.
    ft_from_block: int = setting(6, "Fine-tune only blocks K.. (and the head) on cached activations of the frozen "
                                 "lower blocks; 0 = end to end.", standard=0, full=0)
    freeze_bn: bool = setting(True, "Keep the pre-trained BatchNorm statistics frozen while fine-tuning.")
    batch_size: int = setting(32, "Fine-tuning batch size (lower it on out-of-memory).", standard=64, full=64)
    # support split and statistics
    epsilon: float = setting(0.2, "Out-of-support threshold on p_ref/p_shift.")
    folds: int = setting(10, "Cross-fitting folds of the domain classifier.")
    support_max_reference: int = setting(20000, "Reference images the domain classifier is fitted on, at most.")
    scale: str = setting("probit", "Scale of the accuracy line.", choices=("probit", "logit"))
    bootstrap: int = setting(1000, "Resampling replicates for the intervals.", full=2000)
    # verdict thresholds (ptdiag.stats.thresholds.VerdictConfig)
    material_points: float = setting(2.0, "Verdict: smallest material effect.", unit="accuracy points")
    material_share: float = setting(0.25, "Below this share of a gap, the advice says pre-training recovers 'a "
                                    "little of' it; it never decides the verdict.", unit="fraction")
    min_r2: float = setting(0.8, "r² below it: the line-fit check warns (the line is trusted by its prediction "
                            "band at the candidate, not by r²).")
    # run
    seed: int = setting(0, "Seed for splits, subsampling and training.")
    device: str = setting("auto", "auto | cpu | cuda | cuda:N | mps.")
    fail_on: tuple[str, ...] = setting((), "Comma list of verdict kinds that fail (exit 1; 4 for inconclusive).")
    save_checkpoints: bool = setting(False, "Keep fine-tuned weights in RUN/checkpoints/.")
    remedies: bool = setting(True, "Measure last-layer retraining and reweighting next to pre-training.")
    curated_sizes: tuple[int, ...] = setting((), "Comma list of curated-set sizes: fine-tune the pre-trained model "
                                             "on that many curated (and random) labelled shifted images, scored on "
                                             "the other half of the shifted set (docs/REPORTS.md); adds two "
                                             "fine-tunes per size and half.",
                                             standard=(50, 100, 200, 500), full=(50, 100, 200, 500))
    executor: str = setting("local", "local (this process) | ray (a Ray cluster; needs ptdiag[ray], see "
                            "docs/SCALING.md).", choices=("local", "ray"))
    ray_address: str | None = setting(None, "Ray cluster to join.", none="$RAY_ADDRESS, else a local Ray instance")

    def validate(self) -> AnalyzeConfig:
        """Check cross-field rules; raise UsageError naming the flag."""
        for f in dataclasses.fields(self):
            value, choices = getattr(self, f.name), f.metadata.get("choices")
            if choices and value is not None and value not in choices:
                raise UsageError(f"--{f.name.replace('_', '-')} must be one of {', '.join(choices)}. Got {value!r}.")
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
        if any(n < 1 for n in self.curated_sizes):
            raise UsageError(f"--curated-sizes must be positive image counts. Got {list(self.curated_sizes)}.")
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


# Every setting's declaration (type, default, metadata), by name: what the flags, docs and checks derive from.
SETTINGS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(AnalyzeConfig)}

# Budget defaults, derived from the declarations. `quick` fits a 2-core CPU; `standard` a single GPU; `full`
# approaches the paper's recipe (§6).
BUDGETS: dict[str, dict[str, Any]] = {
    budget: {name: f.metadata["budgets"][budget] for name, f in SETTINGS.items() if budget in f.metadata["budgets"]}
    for budget in BUDGET_NAMES
}


def budget_default(name: str, budget: str) -> Any:
    """The default of setting `name` under `budget`."""
    return BUDGETS[budget].get(name, SETTINGS[name].default)


def setting_types() -> dict[str, str]:
    """Each setting's declared type, as written in AnalyzeConfig (e.g. 'tuple[float, ...]', 'int | None')."""
    return {name: str(f.type) for name, f in SETTINGS.items()}


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
    if name not in SETTINGS:
        close = difflib.get_close_matches(name, list(SETTINGS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"{source}: unknown setting {key!r}{hint}")
    return name


def _coerce(name: str, value: Any) -> Any:
    """Lists from files become tuples; scalars given for tuple fields become 1-tuples."""
    default = SETTINGS[name].default
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


