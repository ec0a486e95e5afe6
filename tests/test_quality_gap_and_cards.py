import json

from click.testing import CliRunner
from record_factory import make_record, write

from mmbench import register_dataset
from mmbench.data.cards import label_classes, pinned_checksums
from mmbench.metrics.quality_gap import quality_gap
from mmbench.results.records import find_reference


def _record(model, metrics, seed=0):
    return {"model": model, "dataset": "polymnist", "tier": "quick", "seed": seed,
            "config": {"dataset": {"n_train": 10}}, "metrics": metrics}


def test_quality_gap_is_difference_and_ratio_per_modality():
    own = _record("mopoe", {"feature_distance/m0": 3.0, "feature_distance/m1": 5.0, "fid/m0": 40.0, "coherence/conditional": 0.5})
    ref = _record("unimodal", {"feature_distance/m0": 2.0, "feature_distance/m1": 5.0, "fid/m0": 20.0})
    gap = quality_gap(own, ref)
    assert gap == {
        "quality_gap/fid/m0": 20.0, "quality_gap/fid/ratio/m0": 2.0,
        "quality_gap/feature_distance/m0": 1.0, "quality_gap/feature_distance/ratio/m0": 1.5,
        "quality_gap/feature_distance/m1": 0.0, "quality_gap/feature_distance/ratio/m1": 1.0,
    }


def test_reference_must_share_dataset_tier_seed_and_data_config_and_be_a_record(tmp_path):
    own = make_record("mopoe", 0)
    other_data = make_record("unimodal", 0)
    other_data["config"]["dataset"]["n_train"] = 99
    write(tmp_path, make_record("unimodal", 1), "a")
    write(tmp_path, other_data, "b")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "result.json").write_text(json.dumps({**make_record("unimodal", 0), "config": None}))  # no record
    assert find_reference(tmp_path / "own", own) is None
    write(tmp_path, make_record("unimodal", 0, metrics={"fid/m0": 1.0}), "d")
    assert find_reference(tmp_path / "own", own)["metrics"]["fid/m0"] == 1.0


def test_reference_must_be_scored_alike(tmp_path):
    versions = {"score_versions": {"networks": 2, "tier:quick": 2, "model:mopoe": 1}, "metric_versions": {"feature_distance": 2}}
    own = make_record("mopoe", 0, **versions)
    unimodal = make_record("unimodal", 0, metrics={"feature_distance/m0": 1.0},
                           score_versions={"networks": 2, "tier:quick": 2, "model:unimodal": 3},
                           metric_versions={"feature_distance": 2, "coherence/unconditional": 1})
    for change, found in [({}, True), ({"score_versions": {"networks": 2, "tier:quick": 1, "model:unimodal": 3}}, False),
                          ({"score_versions": {**unimodal["score_versions"], "judge:official": 1}}, False),
                          ({"metric_versions": {"feature_distance": 1}}, False)]:
        write(tmp_path, {**unimodal, **change}, "u")
        assert (find_reference(tmp_path / "own", own) is not None) == found, change


def test_card_lines_are_parsed_and_a_mismatch_fails_verify(tmp_path):
    from mmbench.cli import cli

    @register_dataset("card_probe")
    def card_probe(data_root, tier="quick", seed=0):  # a dataset whose rebuild always hashes to 1...1
        return type("Built", (), {"checksum": "1" * 64})()

    (tmp_path / "card_probe.md").write_text("# card\n\nchecksum-quick-seed0: " + "0" * 64 + "\n")
    assert pinned_checksums("card_probe", tmp_path) == {("quick", 0, None): "0" * 64}
    result = CliRunner().invoke(cli, ["data", "verify", "card_probe", "--cards", str(tmp_path)], standalone_mode=False)
    assert "does not match its dataset card" in str(result.exception)
    (tmp_path / "card_probe.md").write_text("checksum-quick-seed0: " + "1" * 64 + "\n")
    result = CliRunner().invoke(cli, ["data", "verify", "card_probe", "--cards", str(tmp_path)], standalone_mode=False)
    assert result.exception is None and result.output.endswith("ok\n")
    # the cpu run tier trains on the quick data, so its data is checked against the quick pin
    result = CliRunner().invoke(cli, ["data", "verify", "card_probe", "--tier", "cpu", "--cards", str(tmp_path)], standalone_mode=False)
    assert result.exception is None and result.output.endswith("ok\n")


def test_committed_cards_pin_the_offline_builds():
    for name in ("polymnist", "translated_polymnist"):
        assert ("quick", 0, None) in pinned_checksums(name)
        assert ("quick", 0, 40000) in pinned_checksums(name)  # what the cpu40k tier trains on
        assert label_classes(name) == 10


def test_a_cards_label_count_is_read_from_its_own_line(tmp_path):
    (tmp_path / "a.md").write_text("# a\n\nclasses of ten kinds\n\nclasses: 12\n")
    (tmp_path / "b.md").write_text("# b\n\nsome classes: 3\nclasses: 0\n")
    assert (label_classes("a", tmp_path), label_classes("b", tmp_path), label_classes("missing", tmp_path)) == (12, None, None)


def test_data_build_builds_what_a_run_of_the_tier_trains_on(monkeypatch, tmp_path):
    """`mmbench data build --tier T` applies T's own settings for the dataset (cpu40k's 40,000
    tuples), so a prebuilt cache is the one the tier's runs load."""
    from mmbench.cli import cli
    from mmbench.training import config

    built = []

    @register_dataset("build_probe")
    def build_probe(data_root, tier="quick", seed=0, n_train=None):
        built.append({"tier": tier, "seed": seed, "n_train": n_train})
        split = type("Split", (), {"__len__": lambda self: n_train or 5})()
        return type("Built", (), {"checksum": "2" * 64, "train": split, "test": split})()

    monkeypatch.setitem(config.DATASET_TIER_SETTINGS, ("cpu40k", "build_probe"), ("dataset.n_train=40000",))
    for tier in ("cpu", "cpu40k"):
        result = CliRunner().invoke(cli, ["data", "build", "build_probe", "--tier", tier, "--seed", "3",
                                          "--data-root", str(tmp_path)], standalone_mode=False)
        assert result.exception is None, result.output
    assert built == [{"tier": "quick", "seed": 3, "n_train": None}, {"tier": "quick", "seed": 3, "n_train": 40000}]
    assert result.output.startswith("build_probe for tier cpu40k, seed 3: train 40000")


def test_verify_checks_the_build_a_tier_trains_on_against_its_own_pin(monkeypatch, tmp_path):
    """A tier that builds another size (cpu40k's 40,000 tuples) is verified against the card's
    sized line, not the default build's, and a card without that line says so."""
    from mmbench.cli import cli
    from mmbench.training import config

    @register_dataset("sized_probe")
    def sized_probe(data_root, tier="quick", seed=0, n_train=None):  # the checksum names the size built
        return type("Built", (), {"checksum": str(n_train or 1)[0] * 64})()

    monkeypatch.setitem(config.DATASET_TIER_SETTINGS, ("cpu40k", "sized_probe"), ("dataset.n_train=40000",))
    (tmp_path / "sized_probe.md").write_text("checksum-quick-seed0: " + "1" * 64 + "\n")

    def verify(tier):
        return CliRunner().invoke(cli, ["data", "verify", "sized_probe", "--tier", tier, "--cards", str(tmp_path)],
                                  standalone_mode=False)

    assert verify("cpu").output.endswith("ok\n")
    assert "pins no checksum for tier 'quick', seed 0 and 40000 train tuples" in str(verify("cpu40k").exception)
    (tmp_path / "sized_probe.md").write_text("checksum-quick-seed0: " + "1" * 64 + "\nchecksum-quick-seed0-n40000: " + "4" * 64 + "\n")
    assert pinned_checksums("sized_probe", tmp_path) == {("quick", 0, None): "1" * 64, ("quick", 0, 40000): "4" * 64}
    assert verify("cpu40k").output.endswith("ok\n") and verify("cpu").output.endswith("ok\n")
