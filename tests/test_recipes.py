"""Per-model training recipes: a model declares the training its paper used; the full tier uses
it, `--set` still wins, the record says where its settings came from, and a board of models
trained with different recipes says so."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from record_factory import make_record, write

from mmbench import ConfigError, PluginError, register_model
from mmbench.cli.leaderboard import leaderboard
from mmbench.experiments.runner import recipe_provenance
from mmbench.training.config import resolve_config


def test_the_full_tier_trains_a_model_with_its_own_recipe_and_set_still_wins():
    full = resolve_config("mvtcae", "polymnist", "full", [])["train"]
    assert (full["lr"], full["epochs"], full["batch_size"]) == (1e-3, 325, 256)
    assert resolve_config("mvtcae", "polymnist", "full", ["train.lr=0.01"])["train"]["lr"] == 0.01
    assert resolve_config("mopoe", "polymnist", "full", [])["train"]["lr"] == 5e-4  # the tier's (MoPoE's) recipe
    assert resolve_config("mvtcae", "polymnist", "quick", [])["train"]["lr"] == 3e-3  # small tiers: one recipe for all


def test_the_record_names_the_recipe_and_what_set_replaced():
    provenance = recipe_provenance("mmvm", "full", ("lr=0.001",))
    assert provenance["source"].startswith("thomassutter/mmvmvae") and provenance["overridden"] == ["lr"]
    assert provenance["settings"] == {"batch_size": 128, "lr": 5e-4, "epochs": 400}
    assert recipe_provenance("mmvm", "cpu", ()) == {"source": "tier cpu", "settings": {}}


def test_malformed_recipes_are_refused():
    with pytest.raises(PluginError, match="recipe_source"):
        register_model("recipe_without_source", recipe={"lr": 1.0})

    @register_model("recipe_with_a_typo", recipe={"learning_rate": 1.0}, recipe_source="nowhere")
    def factory(spec, *, latent_dim: int = 4):
        raise AssertionError("never built")

    with pytest.raises(ConfigError, match="unknown train setting 'learning_rate'"):
        resolve_config("recipe_with_a_typo", "polymnist", "full", [])


def test_a_board_of_models_trained_with_different_recipes_says_so(tmp_path):
    write(tmp_path, make_record("mopoe", 0, tier="full", recipe={"source": "tier full", "settings": {}}))
    write(tmp_path, make_record("mvae", 0, tier="full"))  # records from before recipes: the tier's
    shown = CliRunner().invoke(leaderboard, ["--results", str(tmp_path), "--format", "markdown"])
    assert shown.exit_code == 0 and "different recipes" not in shown.output
    write(tmp_path, make_record("mvtcae", 0, tier="full", recipe={"source": "gr8joo/MVTCAE", "settings": {"lr": 1e-3}}))
    shown = CliRunner().invoke(leaderboard, ["--results", str(tmp_path), "--format", "markdown"])
    assert "Trained with different recipes: " in shown.output and "mvtcae: gr8joo/MVTCAE" in shown.output
