import sys

import pytest
from distribution_factory import write_distribution

from mmbench.errors import MMBenchError, PluginError
from mmbench.api.registry import MODELS, Registry


def test_baselines_come_from_entry_points():
    assert {"unimodal", "mvae", "mmvae", "mopoe"} <= set(Registry("model", "mmbench.models").names())


def test_unknown_name_suggests_close_names():
    with pytest.raises(MMBenchError, match="did you mean mopoe"):
        MODELS.get("mopeo")


def test_decorator_registers_by_function_name_and_rejects_clashes():
    reg = Registry("model", "mmbench.nothing")

    @reg.register()
    def tiny(spec):
        return spec

    assert reg.get("tiny") is tiny
    with pytest.raises(PluginError, match="registered twice"):
        reg.add("tiny", lambda spec: spec)


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """An installed distribution on sys.path with one working and one broken entry point."""
    write_distribution(tmp_path, "fakeplugin", {"mmbench.models": {
        "good": "fake_good_plugin:factory", "broken": "fake_missing_dependency:factory"}})
    (tmp_path / "fake_good_plugin.py").write_text("def factory(spec):\n    return spec\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("fake_good_plugin", None)


def test_broken_plugin_is_reported_and_others_still_load(fake_distribution):
    reg = Registry("model", "mmbench.models")
    names = reg.names()
    assert "good" in names and "mopoe" in names and "broken" not in names
    assert "fake_missing_dependency" in reg.broken["broken"]
    with pytest.raises(PluginError, match="broken"):
        reg.get("broken")


def test_a_factory_that_cannot_build_a_model_is_refused_at_registration():
    from torch import nn

    from mmbench import MultimodalVAE, register_model
    from mmbench_baselines.mopoe import MoPoE

    reg = Registry("model", "mmbench.nothing", product=MultimodalVAE)
    with pytest.raises(PluginError, match="builds Linear, not a subclass of mmbench.MultimodalVAE"):
        reg.add("linear", nn.Linear)
    with pytest.raises(PluginError, match="builds Module"):

        @reg.register()
        def annotated(spec, latent_dim: int = 8) -> nn.Module:
            return nn.Module()

    with pytest.raises(PluginError, match="must take the DatasetSpec as its first argument"):
        reg.add("keywords_only", lambda *, latent_dim=8: None)
    reg.add("subclass", MoPoE)  # a MultimodalVAE subclass is a factory by itself
    assert reg.get("subclass") is MoPoE
    with pytest.raises(PluginError, match="not a subclass"):
        register_model("public_decorator_checks_too")(nn.Linear)
