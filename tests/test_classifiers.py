"""Coherence classifiers: frozen assets, reproducible bytes, refused when tampered with."""

import pytest
import torch

from mmbench.data.base import DatasetSpec, ModalitySpec, MultimodalDataset, MultimodalSplit
from mmbench.errors import DataError
from mmbench.evaluation import classifiers as C


def _dataset(n=64, m=2):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    images = [(torch.rand(n, 3, 28, 28, generator=g) * 60).to(torch.uint8) for _ in range(m)]
    for x in images:  # class 1 is bright in the top-left corner: learnable in a few steps
        x[labels == 1, :, :14, :14] = 250
    split = MultimodalSplit(images, labels)
    spec = DatasetSpec("toy", tuple(ModalitySpec(f"m{k}", "image", (3, 28, 28)) for k in range(m)), 2)
    return MultimodalDataset(spec, split, split)


@pytest.fixture
def fast_recipe(monkeypatch):
    monkeypatch.setitem(C.RECIPE, "epochs", 6)
    monkeypatch.setitem(C.RECIPE, "width", 8)
    monkeypatch.setitem(C.RECIPE, "batch_size", 16)


def test_assets_are_reused_reproducible_and_shared_by_content(tmp_path, fast_recipe):
    dataset = _dataset()
    nets, manifest = C.load_or_train_classifiers(dataset, tmp_path / "a", torch.device("cpu"), progress=False)
    assert len(nets) == 2 and all(0.0 <= e["test_accuracy"] <= 1.0 for e in manifest["modalities"])
    again, manifest_again = C.load_or_train_classifiers(dataset, tmp_path / "a", torch.device("cpu"), progress=False)
    assert manifest_again == manifest  # reused, not retrained
    _, fresh = C.load_or_train_classifiers(dataset, tmp_path / "b", torch.device("cpu"), progress=False)
    assert [e["sha256"] for e in fresh["modalities"]] == [e["sha256"] for e in manifest["modalities"]]
    one = MultimodalDataset(DatasetSpec("toy", dataset.spec.modalities[:1], 2),
                            MultimodalSplit(dataset.train.modalities[:1], dataset.train.labels),
                            MultimodalSplit(dataset.test.modalities[:1], dataset.test.labels))
    assert C.modality_key(one, 0) == C.modality_key(dataset, 0) != C.modality_key(dataset, 1)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU"))])
def test_training_the_judges_moves_the_callers_random_streams_as_loading_them_does(tmp_path, fast_recipe, device):
    """A run that trains its judges on first use draws the same samples afterwards as one that
    loads them (on an H200 training reseeded the CUDA stream, and a run's first scores differed
    from its repeat's)."""
    device, dataset = torch.device(device), _dataset()

    def streams_after_judges():
        torch.manual_seed(3)
        C.load_or_train_classifiers(dataset, tmp_path, device, progress=False)
        return [torch.get_rng_state()] + ([torch.cuda.get_rng_state(device)] if device.type == "cuda" else [])

    trained, loaded = streams_after_judges(), streams_after_judges()
    assert all(torch.equal(a, b) for a, b in zip(trained, loaded, strict=True))


def test_tampered_asset_is_refused(tmp_path, fast_recipe):
    dataset = _dataset()
    C.load_or_train_classifiers(dataset, tmp_path, torch.device("cpu"), progress=False)
    (weights,) = C.asset_dir(tmp_path, dataset).glob("m0-*.pt")
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(DataError, match="does not match its sha256"):
        C.load_or_train_classifiers(dataset, tmp_path, torch.device("cpu"), progress=False)


def test_random_shift_moves_content_by_at_most_the_budget():
    x = torch.zeros(50, 1, 28, 28)
    x[:, :, 14, 14] = 1.0
    shifted = C.random_shift(x, 2, torch.Generator().manual_seed(0))
    peaks = shifted.flatten(1).argmax(1)
    rows, cols = peaks // 28, peaks % 28
    assert (rows - 14).abs().max() <= 2 and (cols - 14).abs().max() <= 2
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 1
