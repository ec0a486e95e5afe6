"""Run configuration: tier defaults, the model's and dataset's own options, and `--set` overrides.

`train.curve_every` = N > 0 scores a learning-curve point (`evaluation.curve_point` on
`eval.curve_samples` test tuples) every N epochs and after the last; the points join the record's
`train_history`. A tier may also set model options (its "model" section) for every model that has them, so the
models of one tier share one recipe; the full tier keeps each model's own defaults.

`train.amsgrad` trains with Adam's AMSGrad variant (Shi et al.'s MMVAE optimizer).

A resolved config has four sections (model, dataset, train, eval). `--set key=value` names a key
as `section.key`, or by its bare name when exactly one section has it; values are parsed as JSON
literals (so `beta=1`, `subsample=false`, `objective=dreg` all work) and must keep the type of
the default.
"""
from __future__ import annotations

import copy
import json
from typing import Any

from mmbench.api.options import parse_assignment
from mmbench.api.registry import dataset_options, model_options, model_recipe
from mmbench.errors import ConfigError
from mmbench.training.loop import check_precision


JUDGE = {"judge": "mmbench", "official_classifiers": None, "official_sha256": None}
"""Who judges coherence: mmbench's own classifiers, or `official` (the classifiers released with
PolyMNIST, from `official_classifiers` or <data root>/polymnist/official/trained_clfs_polyMNIST,
pinned by the dataset card or `official_sha256`; see mmbench.evaluation.official)."""


def _offline_tier(epochs: int, curve_every: int, cooldown_epochs: int = 0) -> dict[str, dict[str, Any]]:
    """The offline-data recipe chosen from the learning curves (benchmarks/curves/), the same for
    every model: latent 64, beta 1, batch 64, Adam lr 3e-3 after 300 warm-up steps (decaying
    linearly over the last `cooldown_epochs`)."""
    return {
        "model": {"latent_dim": 64, "beta": 1.0},
        "dataset": {"tier": "quick"},
        "train": {"epochs": epochs, "batch_size": 64, "lr": 3e-3, "max_train_samples": None, "compile": False,
                  "precision": "fp32", "warmup_steps": 300, "cooldown_epochs": cooldown_epochs, "curve_every": curve_every,
                  "amsgrad": False},
        "eval": {"metrics": None, "batch_size": 250, "max_test_samples": 1000, "unconditional_samples": 1000,
                 "fid_samples": 0, "fid_mode": "pytorch-fid", "iwae_k": 8, "likelihood_test_samples": 100,
                 "probe_train_samples": 1000, "curve_samples": 250, **JUDGE},
    }


TIERS: dict[str, dict[str, dict[str, Any]]] = {
    # 15 epochs: the synthetic set learns in far fewer (the CI gate cuts it to 3); Translated-PolyMNIST
    # stays at chance even on the cpu tier. PolyMNIST's shared digit needs more steps than 15 epochs'
    # 2,355: DATASET_TIER_SETTINGS gives it its own schedule.
    "quick": _offline_tier(epochs=15, curve_every=0),
    # 100 epochs (15,700 steps), the last 40 with a decaying lr: MoPoE about 45 minutes on 2 CPU
    # cores (26 s per epoch alone), the unimodal VAEs about as long. Under a constant lr MoPoE's coherence k=1 plateaus
    # near 0.42 from epoch 70 (benchmarks/curves/cpu-tier-schedule); a curve point every 10 epochs.
    "cpu": _offline_tier(epochs=100, curve_every=10, cooldown_epochs=40),
    # The cpu recipe on four times the tuples for 32 epochs (20,000 steps), the last 13 with a
    # decaying lr: MoPoE above 0.5 with one given modality in about 30 minutes on 2 CPU cores,
    # where the cpu tier's 10,000 tuples plateau near 0.43 (benchmarks/curves/cpu-tier-tuples).
    # A tier of its own, not cpu v3, so the cpu board and its reproduction (31 runs) stand.
    "cpu40k": _offline_tier(epochs=32, curve_every=4, cooldown_epochs=13),
    # The paper's settings (60k/10k PolyMNIST, 300 epochs, batch 256), meant for a GPU.
    "full": {
        "model": {},
        "dataset": {"tier": "full"},
        "train": {"epochs": 300, "batch_size": 256, "lr": 5e-4, "max_train_samples": None, "compile": False,
                  "precision": "fp32", "warmup_steps": 0, "cooldown_epochs": 0, "curve_every": 0, "amsgrad": False},
        "eval": {"metrics": None, "batch_size": 500, "max_test_samples": None, "unconditional_samples": 10000,
                 "fid_samples": 10000, "fid_mode": "pytorch-fid", "iwae_k": 1000, "likelihood_test_samples": 1000,
                 "probe_train_samples": 1000, "curve_samples": 250, **JUDGE},
    },
}

DATASET_TIER_SETTINGS: dict[tuple[str, str], tuple[str, ...]] = {
    # 50 epochs (7,850 steps), the last 20 with a decaying lr: a fresh clone builds its judges,
    # trains and scores MoPoE in about 15 minutes on 2 CPU cores, coherence k=1 about 0.215
    # (benchmarks/curves/quick-budget; near chance, 0.1, at v2's 15 epochs).
    ("quick", "polymnist"): ("train.epochs=50", "train.cooldown_epochs=20"),
    ("cpu40k", "polymnist"): ("dataset.n_train=40000",),
    ("cpu40k", "translated_polymnist"): ("dataset.n_train=40000",),
}
"""Settings a tier gives one dataset, applied after the tier's and before the model recipe and
`--set`; written in every record's config like any other setting. Each names its section
(`dataset.n_train=...`): `dataset_config` applies the dataset ones alone."""

TIER_VERSIONS = {"quick": 3, "cpu": 2, "cpu40k": 1, "full": 2}
"""Carried by every record; bump a tier's when its recipe changes. quick 2: the recipe chosen
from the learning curves in benchmarks/curves/; quick 3: PolyMNIST trains 50 epochs, the last
20 annealing the lr (one version per tier, so the tier's other datasets' records carry 3 too). cpu 2: 100 epochs instead of 60, the last 40 annealing the lr. cpu40k 1:
the first. full 2: models train with their own recipes."""

MODEL_RECIPE_TIERS = ("full",)
"""Tiers where a model's declared training recipe (`register_model(recipe=...)`) replaces the
tier's train settings; the smaller tiers train every model alike."""

SECTIONS = ("model", "dataset", "train", "eval")

ADDED_SETTINGS = {("train", "amsgrad"): False, ("train", "cooldown_epochs"): 0, ("eval", "judge"): "mmbench",
                  ("eval", "official_classifiers"): None, ("eval", "official_sha256"): None}
"""Settings added after runs had been recorded, each with the value every run made before it had."""
ADDED_MODEL_OPTIONS = {"mmvae": {"posterior": "normal", "learn_prior": False}}
"""Likewise for options a model gained later, per model (its records' `model_name`)."""


def with_added_settings(config: dict[str, Any]) -> dict[str, Any]:
    """A recorded config as today's mmbench writes it: settings it predates take their old value,
    so a resumed or compared run is not refused for a key it could not have had."""
    out = copy.deepcopy(config)
    for (section, key), value in ADDED_SETTINGS.items():
        if isinstance(out.get(section), dict):
            out[section].setdefault(key, value)
    for key, value in ADDED_MODEL_OPTIONS.get(out.get("model_name"), {}).items():
        if isinstance(out.get("model"), dict):
            out["model"].setdefault(key, value)
    return out


def resolve_config(model: str, dataset: str, tier: str, overrides: list[str]) -> dict[str, dict[str, Any]]:
    """The full config of one run: defaults of the model, dataset and tier, then overrides."""
    _check_tier(tier)
    config = {
        "model": _model_defaults(model, tier),
        "dataset": dataset_config(dataset, tier),
        "train": copy.deepcopy(TIERS[tier]["train"]),
        "eval": copy.deepcopy(TIERS[tier]["eval"]),
    }
    _apply(config, [item for item in DATASET_TIER_SETTINGS.get((tier, dataset), ()) if not item.startswith("dataset.")])
    recipe = applied_recipe(model, tier)
    for key, value in (recipe or {}).get("settings", {}).items():
        if key not in config["train"]:
            raise ConfigError(f"model {model!r} declares a recipe with unknown train setting {key!r} "
                              f"(known: {', '.join(config['train'])})")
        config["train"][key] = _coerce(f"train.{key}", value, config["train"][key])
    _apply(config, overrides)
    check_precision(config["train"]["precision"])
    if config["train"]["cooldown_epochs"] < 0:
        raise ConfigError(f"train.cooldown_epochs must be >= 0, not {config['train']['cooldown_epochs']}")
    if config["eval"]["judge"] not in ("mmbench", "official"):
        raise ConfigError(f"eval.judge must be mmbench or official, not {config['eval']['judge']!r}")
    return config


def dataset_config(dataset: str, tier: str) -> dict[str, Any]:
    """The options a run of `tier` builds `dataset` with (what `mmbench data build` prebuilds)."""
    _check_tier(tier)
    config = {"dataset": {**dataset_options(dataset), **TIERS[tier]["dataset"]}}
    _apply(config, [item for item in DATASET_TIER_SETTINGS.get((tier, dataset), ()) if item.startswith("dataset.")])
    return config["dataset"]


def _check_tier(tier: str) -> None:
    if tier not in TIERS:
        raise ConfigError(f"unknown tier {tier!r} (known: {', '.join(TIERS)})")


def _apply(config: dict, items) -> None:
    """Set each `section.key=value` of `items` in `config` (a bare `key=value` where one section of
    `config` has that key), type-checked."""
    for item in items:
        section, key, value = _parse_override(item, config)
        config[section][key] = _coerce(f"{section}.{key}", value, config[section][key])


def applied_recipe(model: str, tier: str) -> dict[str, Any] | None:
    """The model's own training recipe where `tier` uses model recipes, else None (the tier's)."""
    return model_recipe(model) if tier in MODEL_RECIPE_TIERS else None


def _model_defaults(model: str, tier: str) -> dict[str, Any]:
    """The model's own options, with the tier's model recipe applied to those it has."""
    options = dict(model_options(model))
    options.update({k: v for k, v in TIERS[tier]["model"].items() if k in options})
    return options


def _parse_override(item: str, config: dict) -> tuple[str, str, Any]:
    key, value = parse_assignment(item)
    if "." in key:
        section, name = key.split(".", 1)
        if section not in config or name not in config[section]:
            raise ConfigError(f"unknown config key {key!r} (known: {', '.join(_all_keys(config))})")
    else:
        matches = [s for s in SECTIONS if key in config[s]]
        if not matches:
            raise ConfigError(f"unknown config key {key!r} (known: {', '.join(_all_keys(config))})")
        if len(matches) > 1:
            raise ConfigError(f"config key {key!r} is ambiguous: write one of {', '.join(f'{s}.{key}' for s in matches)}")
        section, name = matches[0], key
    return section, name, value


NULLABLE = {f"{section}.{key}" for tier in TIERS.values() for section, settings in tier.items()
            for key, value in settings.items() if value is None}
"""Settings some tier leaves unset (null: no cap, the default list, ...), so `--set KEY=null` is
meaningful in every tier; any other setting refuses null rather than crash on it later."""


def _coerce(key: str, value: Any, default: Any) -> Any:
    if default is None or (value is None and key in NULLABLE):
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        return str(value)
    else:
        return value
    raise ConfigError(f"--set {key}={json.dumps(value)}: expected a {type(default).__name__}")


def _all_keys(config: dict) -> list[str]:
    return [f"{s}.{k}" for s in SECTIONS for k in config[s]]
