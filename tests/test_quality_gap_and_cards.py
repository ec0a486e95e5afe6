import json

from click.testing import CliRunner

from mmbench import register_dataset
from mmbench.data.cards import pinned_checksums
from mmbench.metrics.quality_gap import find_reference, quality_gap


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


def test_reference_must_share_dataset_tier_seed_and_data_config(tmp_path):
    own = _record("mopoe", {})
    for name, rec in {"a": _record("unimodal", {}, seed=1), "b": {**_record("unimodal", {}), "config": {"dataset": {"n_train": 99}}}}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(json.dumps(rec))
    assert find_reference(tmp_path / "own", own) is None
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "result.json").write_text(json.dumps(_record("unimodal", {"fid/m0": 1.0})))
    assert find_reference(tmp_path / "own", own)["metrics"] == {"fid/m0": 1.0}


def test_reference_must_be_scored_alike(tmp_path):
    versions = {"score_versions": {"networks": 2, "tier:cpu": 2, "model:mopoe": 1}, "metric_versions": {"feature_distance": 2}}
    own = {**_record("mopoe", {}), **versions}
    unimodal = {**_record("unimodal", {"feature_distance/m0": 1.0}), "score_versions": {"networks": 2, "tier:cpu": 2, "model:unimodal": 3},
                "metric_versions": {"feature_distance": 2, "coherence/unconditional": 1}}
    (tmp_path / "u").mkdir()
    for change, found in [({}, True), ({"score_versions": {"networks": 2, "tier:cpu": 1, "model:unimodal": 3}}, False),
                          ({"score_versions": {**unimodal["score_versions"], "judge:official": 1}}, False),
                          ({"metric_versions": {"feature_distance": 1}}, False)]:
        (tmp_path / "u" / "result.json").write_text(json.dumps({**unimodal, **change}))
        assert (find_reference(tmp_path / "own", own) is not None) == found, change


def test_card_lines_are_parsed_and_a_mismatch_fails_verify(tmp_path):
    from mmbench.cli import cli

    @register_dataset("card_probe")
    def card_probe(data_root, tier="quick", seed=0):  # a dataset whose rebuild always hashes to 1...1
        return type("Built", (), {"checksum": "1" * 64})()

    (tmp_path / "card_probe.md").write_text("# card\n\nchecksum-quick-seed0: " + "0" * 64 + "\n")
    assert pinned_checksums("card_probe", tmp_path) == {("quick", 0): "0" * 64}
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
        assert ("quick", 0) in pinned_checksums(name)
