import pytest

from mmbench.training.config import resolve_config
from mmbench.errors import ConfigError


def test_defaults_come_from_factory_and_tier():
    """The full tier keeps the factory's defaults; the quick tier's model recipe overrides them, and
    only for the options a model has (mmvaeplus has no latent_dim)."""
    assert resolve_config("mopoe", "polymnist", "full", [])["model"] == {"latent_dim": 512, "beta": 2.5}
    config = resolve_config("mopoe", "polymnist", "quick", [])
    assert config["model"] == {"latent_dim": 64, "beta": 1.0}
    assert config["dataset"]["tier"] == "quick" and config["train"]["batch_size"] == 64
    plus = resolve_config("mmvaeplus", "polymnist", "quick", [])["model"]
    assert "latent_dim" not in plus and plus["beta"] == 1.0
    assert resolve_config("mopoe", "polymnist", "quick", ["latent_dim=8"])["model"]["latent_dim"] == 8


def test_overrides_bare_and_dotted_with_types():
    config = resolve_config("mvae", "polymnist", "quick", ["beta=1", "subsample=false", "train.epochs=2", "dataset.n_train=100"])
    assert config["model"]["beta"] == 1.0 and isinstance(config["model"]["beta"], float)
    assert config["model"]["subsample"] is False
    assert config["train"]["epochs"] == 2 and config["dataset"]["n_train"] == 100


@pytest.mark.parametrize("item, message", [
    ("beta", "malformed"),
    ("gamma=1", "unknown config key"),
    ("model.nope=1", "unknown config key"),
    ("beta=high", "expected a float"),
    ("train.epochs=1.5", "expected a int"),
    ("subsample=1", "expected a bool"),
    ("precision=fp16", "train.precision must be one of fp32, bf16"),
    ("cooldown_epochs=-1", "must be >= 0"),
    ("train.epochs=null", "expected a int"),
    ("cooldown_epochs=null", "expected a int"),
    ("warmup_steps=null", "expected a int"),
    ("latent_dim=null", "expected a int"),
])
def test_malformed_overrides_are_one_line_errors(item, message):
    with pytest.raises(ConfigError, match=message) as info:
        resolve_config("mvae", "polymnist", "quick", [item])
    assert "\n" not in str(info.value)


def test_a_tier_may_give_one_dataset_its_own_schedule_which_set_still_overrides():
    """Quick PolyMNIST trains 50 epochs, the last 20 annealing (benchmarks/curves/quick-budget);
    the tier's other datasets keep its 15 constant-rate epochs."""
    schedule = {dataset: (c["train"]["epochs"], c["train"]["cooldown_epochs"])
                for dataset in ("polymnist", "translated_polymnist", "synthetic")
                for c in [resolve_config("mopoe", dataset, "quick", [])]}
    assert schedule == {"polymnist": (50, 20), "translated_polymnist": (15, 0), "synthetic": (15, 0)}
    cut = resolve_config("mopoe", "polymnist", "quick", ["train.epochs=3"])["train"]
    assert (cut["epochs"], cut["cooldown_epochs"]) == (3, 20)


def test_the_cpu40k_tier_trains_polymnist_on_40000_tuples_and_set_still_overrides():
    """cpu40k is the cpu recipe on 40,000 offline tuples for 32 epochs, the last 13 annealing
    (benchmarks/curves/cpu-tier-tuples); the synthetic set keeps its own size."""
    sizes = {dataset: c["dataset"]["n_train"] for dataset in ("polymnist", "translated_polymnist", "synthetic")
             for c in [resolve_config("mopoe", dataset, "cpu40k", [])]}
    assert sizes == {"polymnist": 40000, "translated_polymnist": 40000, "synthetic": None}
    train = resolve_config("mopoe", "polymnist", "cpu40k", [])["train"]
    assert (train["epochs"], train["cooldown_epochs"]) == (32, 13)
    assert resolve_config("mopoe", "polymnist", "cpu40k", ["dataset.n_train=1000"])["dataset"]["n_train"] == 1000


def test_every_tier_has_a_version_and_a_reproduction_plan_and_dataset_settings_name_their_section():
    from mmbench.experiments.reproduce import TIER_OVERRIDES
    from mmbench.training.config import DATASET_TIER_SETTINGS, TIER_VERSIONS, TIERS

    assert set(TIER_VERSIONS) == set(TIERS) == set(TIER_OVERRIDES)
    for (tier, _), items in DATASET_TIER_SETTINGS.items():
        assert tier in TIERS and all(item.split("=")[0].count(".") == 1 for item in items)


def test_unknown_tier():
    from mmbench.training.config import dataset_config

    with pytest.raises(ConfigError, match="unknown tier"):
        resolve_config("mopoe", "polymnist", "huge", [])
    with pytest.raises(ConfigError, match="unknown tier"):
        dataset_config("polymnist", "huge")


def test_a_config_recorded_before_a_setting_existed_reads_as_having_its_old_value():
    from mmbench.training.config import ADDED_SETTINGS, with_added_settings

    current = resolve_config("mopoe", "polymnist", "cpu", [])
    old = {section: {k: v for k, v in values.items() if (section, k) not in ADDED_SETTINGS} for section, values in current.items()}
    assert old != current
    filled = with_added_settings(old)
    assert all(filled[section][key] == value for (section, key), value in ADDED_SETTINGS.items())
    assert with_added_settings(current) == current  # a recorded value is kept (cpu v2 decays over 40 epochs)
    assert with_added_settings(current)["train"]["cooldown_epochs"] == 40


@pytest.mark.parametrize("tier", ["quick", "cpu", "cpu40k", "full"])
def test_settings_some_tier_leaves_unset_take_null_in_every_tier(tier):
    config = resolve_config("mopoe", "polymnist", tier, ["eval.max_test_samples=null", "train.max_train_samples=null"])
    assert config["eval"]["max_test_samples"] is None and config["train"]["max_train_samples"] is None


def test_a_model_option_added_later_reads_as_its_old_value_in_that_models_records_only():
    from mmbench.training.config import with_added_settings

    def recorded(model):
        config = {"model_name": model, **resolve_config(model, "polymnist", "cpu", [])}
        config["model"] = {k: v for k, v in config["model"].items() if k not in ("posterior", "learn_prior")}
        return config

    assert with_added_settings(recorded("mmvae"))["model"] == {**recorded("mmvae")["model"], "posterior": "normal",
                                                               "learn_prior": False}
    assert with_added_settings(recorded("mopoe")) == recorded("mopoe")
    laplace = {"model_name": "mmvae", **resolve_config("mmvae", "polymnist", "cpu", ["posterior=laplace", "objective=iwae"])}
    assert with_added_settings(laplace)["model"]["posterior"] == "laplace"
