"""CUB Image-Captions: a tiny release in the official MMVAE layout, its vocabulary, tokens and
pairing, the caption networks, the CCA coherence, every baseline end to end, and the
checksum-verified resumable downloader against a local HTTP server."""
from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mmbench.data import cub as cub_module
from mmbench.data import download as download_module
from mmbench.data.cub import EOS, EXC, PAD, cub, decode_captions, tokenize
from mmbench.data.download import Release, download, fetch_release
from mmbench.errors import DataError
from mmbench.evaluation.cca import asset_dir, evaluate_cca_coherence, load_or_fit_cca
from mmbench.nn import build_decoder
from mmbench.nn.cub import MaskedCategorical
from mmbench.api.registry import create_model
from mmbench.training.loop import train

TRAIN_CLASSES = ("002.Laysan_Albatross", "003.Sooty_Albatross", "010.Red_winged_Blackbird")
TEST_CLASSES = ("001.Black_footed_Albatross", "004.Groove_billed_Ani")
COLOURS = {"red": (200, 30, 30), "blue": (30, 30, 200), "green": (30, 180, 30), "yellow": (220, 210, 40)}
PARTS = ("wing", "beak", "belly", "tail")
IMAGES_PER_CLASS = 6


def _caption(colour: str, k: int, j: int, rng: np.random.Generator) -> str:
    """`imgK` marks the image a caption belongs to; the colour word matches the image."""
    size = ("small", "large")[j % 2]
    return f"this {size} bird has a {colour} {PARTS[rng.integers(len(PARTS))]}, img{k}."


def make_release(root: Path, seed: int = 0) -> dict[str, list[Path]]:
    """A small CUB in the official layout; returns each split's images in ImageFolder order."""
    rng = np.random.default_rng(seed)
    folder = root / "cub"
    order = {}
    for split, classes, text in (("train", TRAIN_CLASSES, "text_trainvalclasses.txt"), ("test", TEST_CLASSES, "text_testclasses.txt")):
        paths = []
        for name in classes:
            (folder / split / name).mkdir(parents=True)
            stems = sorted(f"{name.split('.')[1]}_{rng.integers(10**6):06d}" for _ in range(IMAGES_PER_CLASS))
            paths += [folder / split / name / f"{stem}.jpg" for stem in stems]
        (folder / split / classes[0] / "notes.txt").write_text("not an image")
        lines = []
        for k, path in enumerate(paths):
            colour = list(COLOURS)[k % len(COLOURS)]
            pixels = np.clip(np.array(COLOURS[colour]) + rng.integers(-20, 21, size=(70 + k, 90, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(path, quality=95)
            lines += [_caption(colour, k, j, rng) for j in range(10)]
        if split == "train":
            lines[0] = " ".join(["very"] * 40)  # truncated to 31 words + <eos>
            for i in (1, 2, 3):
                lines[i] += " rareword"  # 3 occurrences: not in the vocabulary
            for i in (4, 5, 6, 7):
                lines[i] += " fourword"  # 4 occurrences: in the vocabulary
        else:
            lines[0] += " testonlyword"
        (folder / text).write_text("\n".join(lines) + "\n")
        order[split] = paths
    return order


@pytest.fixture(autouse=True)
def _few_threads():
    """Overrides conftest's: these batches are tiny, and on a small shared CPU syncing two
    threads cost up to 10x the work."""
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, dict[str, list[Path]]]:
    root = tmp_path_factory.mktemp("data")
    return root, make_release(root)


@pytest.fixture(scope="module")
def dataset(release):
    return cub(release[0], tier="full")


@pytest.fixture(scope="module")
def small(release):
    """3 images (30 pairs) per split: enough to run every code path, cheap on a small CPU."""
    return cub(release[0], tier="full", max_images=3)


def test_spec_shapes_and_vocabulary_rule(release, dataset):
    root, order = release
    image, caption = dataset.spec.modalities
    assert (image.kind, image.shape, caption.kind, caption.shape) == ("image", (3, 64, 64), "text", (32,))
    vocab = dataset.info["vocab"]
    assert caption.vocab_size == len(vocab) and vocab[:3] == ["<exc>", "<pad>", "<eos>"]
    counts = Counter(w for line in (root / "cub/text_trainvalclasses.txt").read_text().splitlines() for w in tokenize(line))
    assert set(vocab[3:]) == {w for w, c in counts.items() if c > 3}
    assert "fourword" in vocab and "rareword" not in vocab and "testonlyword" not in vocab
    assert dataset.spec.num_classes is None and dataset.train.labels is None and dataset.test.labels is None
    for split, paths in (("train", order["train"]), ("test", order["test"])):
        images, captions = getattr(dataset, split).modalities
        assert images.dtype == torch.uint8 and images.shape == (10 * len(paths), 3, 64, 64)
        assert captions.dtype == torch.int64 and captions.shape == (10 * len(paths), 32)


def test_token_layout(dataset):
    captions = torch.cat([dataset.train.modalities[1], dataset.test.modalities[1]])
    is_eos = captions == EOS
    assert (is_eos.sum(1) == 1).all()
    end = is_eos.int().argmax(1)
    positions = torch.arange(32)
    assert ((captions == PAD) == (positions > end.unsqueeze(1))).all()  # pad exactly after <eos>
    assert end[0] == 31 and decode_captions(captions[:1], dataset.info["vocab"]) == [" ".join(["very"] * 31)]
    assert (dataset.test.modalities[1][0] == EXC).sum() == 1  # the test-only word


def test_pairing_follows_image_folder_order(release, dataset):
    _, order = release
    for split, paths in order.items():
        images, captions = getattr(dataset, split).modalities
        texts = decode_captions(captions, dataset.info["vocab"])
        for j, text in enumerate(texts):  # train caption 0 is the long one without a marker
            assert (split, j) == ("train", 0) or f"img{j // 10}" in text.split()
        for k, path in enumerate(paths):
            with Image.open(path) as im:
                expected = np.asarray(im.convert("RGB").resize((64, 64), Image.BILINEAR)).transpose(2, 0, 1)
            for j in range(10 * k, 10 * k + 10):
                np.testing.assert_array_equal(images[j].numpy(), expected)


def test_splits_are_class_disjoint(dataset, tmp_path):
    assert dataset.info["train_classes"] == list(TRAIN_CLASSES)
    assert dataset.info["test_classes"] == list(TEST_CLASSES)
    make_release(tmp_path)
    (tmp_path / "cub/test" / TRAIN_CLASSES[0]).mkdir()
    with pytest.raises(DataError, match="class-disjoint"):
        cub(tmp_path, tier="full")


def test_missing_data_is_one_line_naming_files(tmp_path):
    with pytest.raises(DataError) as info:
        cub(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    for part in (str(tmp_path / "cub"), "text_trainvalclasses.txt", "text_testclasses.txt", "train/<class>/*.jpg", "mmbench data download cub", "cub.zip"):
        assert part in message


def test_caption_count_must_be_ten_per_image(tmp_path):
    make_release(tmp_path)
    text = tmp_path / "cub/text_testclasses.txt"
    text.write_text("\n".join(text.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(DataError, match="expected 10 per image"):
        cub(tmp_path, tier="full")


def test_cache_and_seeded_subsets(release, dataset, monkeypatch):
    monkeypatch.setattr(cub_module, "load_release", lambda folder: pytest.fail("cache not used"))
    again = cub(release[0], tier="full")
    assert again.checksum == dataset.checksum
    small = cub(release[0], tier="full", max_images=4, seed=1)
    assert (small.info["n_train_images"], small.info["n_train"], len(small.train), len(small.test)) == (4, 40, 40, 40)
    assert cub(release[0], tier="full", max_images=4, seed=1).checksum == small.checksum
    assert cub(release[0], tier="full", max_images=4, seed=2).checksum != small.checksum
    texts = decode_captions(small.train.modalities[1], dataset.info["vocab"])
    for i in range(0, len(texts), 10):  # the 10 captions of one image stay together
        assert len({w for t in texts[i:i + 10] for w in t.split() if w.startswith("img")}) == 1


def test_masked_categorical_ignores_padding(dataset):
    torch.manual_seed(0)
    logits = torch.randn(2, 32, 20)
    x = torch.full((2, 32), PAD)
    x[:, :5] = torch.tensor([5, 6, 7, 8, EOS])
    base = MaskedCategorical(logits).log_prob(x)
    changed = logits.clone()
    changed[:, 10] += torch.randn(20) * 5  # position 10 is padding
    torch.testing.assert_close(MaskedCategorical(changed).log_prob(x), base)
    changed[:, 2] += torch.randn(20) * 5  # position 2 is a word
    assert not torch.allclose(MaskedCategorical(changed).log_prob(x), base)
    manual = torch.log_softmax(logits, -1).gather(-1, x.unsqueeze(-1)).squeeze(-1)[:, :5].sum(1)
    torch.testing.assert_close(base, manual)
    decoder = build_decoder(dataset.spec.modalities[1], 4)
    generated = decoder(torch.randn(3, 4)).mean
    assert generated.shape == (3, 32) and generated.dtype == torch.int64
    peaked = torch.zeros(1, 32, 20)
    peaked[0, :, 9] = 1
    peaked[0, 3, EOS] = 5
    assert MaskedCategorical(peaked).mean.tolist() == [[9, 9, 9, EOS] + [PAD] * 28]


@pytest.mark.parametrize("name", ["unimodal", "mvae", "mmvae", "mopoe"])
def test_every_baseline_trains_and_is_scored(name, release, small, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, small.spec, latent_dim=8)
    result = train(model, small.train, epochs=1, batch_size=15, lr=1e-3, seed=0, run_dir=tmp_path, device=torch.device("cpu"), progress=False)
    assert len(result.history) == 1 and np.isfinite(result.history[0]["loss"])
    scores = evaluate_cca_coherence(model, small, batch_size=30, seed=0, device=torch.device("cpu"), data_root=release[0])
    assert set(scores) == {"coherence/cca/ground_truth", "coherence/cca/image->caption", "coherence/cca/caption->image"}
    assert all(-1 <= v <= 1 for v in scores.values())


def test_cca_separates_matched_from_shuffled_pairs(release, dataset):
    projection, manifest = load_or_fit_cca(dataset, release[0], progress=False)
    assert manifest["dataset_checksum"] == dataset.checksum
    images, captions = dataset.test.batch(slice(None))
    u, v = projection.project(images, captions)
    matched = torch.nn.functional.cosine_similarity(u, v).mean()
    shuffled = torch.nn.functional.cosine_similarity(u, v.roll(20, 0)).mean()  # image k vs caption of k+2: other colour
    assert matched > 0.25 and matched > shuffled + 0.2


def test_cca_asset_is_reused_and_verified(release, dataset):
    _, first = load_or_fit_cca(dataset, release[0], progress=False)
    _, second = load_or_fit_cca(dataset, release[0], progress=False)
    assert first == second
    asset = asset_dir(release[0], dataset) / first["file"]
    original = asset.read_bytes()
    asset.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        with pytest.raises(DataError, match="sha256"):
            load_or_fit_cca(dataset, release[0], progress=False)
    finally:
        asset.write_bytes(original)


# `mmbench run --model mmvae --dataset cub` end to end: label-free data is scored by CCA coherence.
@pytest.mark.slow
def test_runner_end_to_end(release, tmp_path):
    from mmbench.experiments.runner import RunRequest, run

    overrides = ("epochs=1", "latent_dim=8", "train.batch_size=30", "eval.batch_size=30", "max_test_samples=30", "unconditional_samples=8", "max_images=3")
    record = run(RunRequest(model="mmvae", dataset="cub", data_root=release[0], out=tmp_path / "run", overrides=overrides, device="cpu", progress=False))
    assert "coherence/cca/image->caption" in record["metrics"]


# --- downloader -------------------------------------------------------------------------------

PAYLOAD = bytes(np.random.default_rng(0).integers(0, 256, size=300_000, dtype=np.uint8))


class _Server:
    """A local HTTP server for one file, honouring Range unless told not to, optionally cutting
    a response short after `cut` bytes; records the Range header of every request."""

    def __init__(self, payload: bytes):
        self.payload, self.honour_range, self.cut, self.ranges = payload, True, None, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                header = self.headers.get("Range")
                server.ranges.append(header)
                start = int(header[6:].split("-")[0]) if header and server.honour_range else 0
                if start >= len(server.payload) and header:
                    self.send_response(416)
                    self.end_headers()
                    return
                body = server.payload[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body if server.cut is None else body[: server.cut])

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file.bin"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_download_verifies_and_resumes_a_cut_transfer(tmp_path):
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    dest = tmp_path / "file.bin"
    with _Server(PAYLOAD) as server:
        server.cut = 100_000
        with pytest.raises(DataError, match="run again to resume"):
            download(server.url, dest, sha256=digest)
        part = tmp_path / "file.bin.part"
        assert part.stat().st_size == 100_000 and not dest.exists()
        server.cut = None
        assert download(server.url, dest, sha256=digest) == digest
        assert server.ranges[-1] == "bytes=100000-"
        assert dest.read_bytes() == PAYLOAD and not part.exists()
        requests = len(server.ranges)
        assert download(server.url, dest, sha256=digest) == digest  # present: no request
        assert len(server.ranges) == requests


def test_download_restarts_when_the_server_ignores_range(tmp_path):
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(b"garbage that is not a prefix")
    with _Server(PAYLOAD) as server:
        server.honour_range = False
        download(server.url, dest, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert dest.read_bytes() == PAYLOAD


def test_download_checksum_mismatch_deletes_the_partial(tmp_path):
    dest = tmp_path / "file.bin"
    with _Server(PAYLOAD) as server:
        with pytest.raises(DataError, match="expected 0{64}"):
            download(server.url, dest, sha256="0" * 64)
    assert not dest.exists() and not (tmp_path / "file.bin.part").exists()


def test_download_offline_says_where_to_put_the_file(tmp_path):
    with _Server(PAYLOAD) as server:
        url = server.url  # the port is closed once the server is gone
    with pytest.raises(DataError) as info:
        download(url, tmp_path / "file.bin", timeout=5)
    assert "\n" not in str(info.value) and str(tmp_path / "file.bin") in str(info.value)


def test_fetch_release_unpacks_into_the_data_root(tmp_path, monkeypatch, capsys):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("cub/text_testclasses.txt", "a caption\n")
    archive = buffer.getvalue()
    with _Server(archive) as server:
        monkeypatch.setitem(download_module.RELEASES, "cub", Release(server.url, "cub.zip", None, "cub"))
        folder = fetch_release("cub", tmp_path / "data", progress=False)
    assert folder == tmp_path / "data" / "cub" and (folder / "text_testclasses.txt").read_text() == "a caption\n"
    assert hashlib.sha256(archive).hexdigest() in capsys.readouterr().err  # unpinned: digest printed
    assert fetch_release("cub", tmp_path / "data", progress=False) == folder  # present: no download
