"""Frozen per-modality label classifiers: the judges of coherence, stored as hashed assets.

They are trained once per built dataset with a pinned recipe and saved with a sha256 manifest;
later runs reuse them and refuse a file whose hash no longer matches, so every coherence number of
one dataset build is judged by the same bytes. A small residual network copes with the translated
digits of Translated-PolyMNIST as well as with centred ones.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from mmbench.data.base import MultimodalDataset, to_model_input
from mmbench.errors import DataError
from mmbench.evaluation.assets import load_asset, save_asset
from mmbench.random_state import private_rng

RECIPE = {"version": 3, "epochs": 3, "batch_size": 128, "lr": 4e-3, "weight_decay": 1e-4, "seed": 0, "width": 24, "max_shift": 2}
"""Version 3: 3 epochs instead of 8, so that training the five PolyMNIST judges on a fresh data root
takes about 3 minutes of the quick tier's 15 on 2 CPU cores instead of 8 (their test accuracy is in every record
and the README)."""


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


class ImageClassifier(nn.Module):
    """Small ResNet: stem, two strided residual blocks, global average pool, linear head."""

    def __init__(self, channels: int, num_classes: int, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            ResidualBlock(width, 2 * width, 2),
            ResidualBlock(2 * width, 4 * width, 2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(4 * width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (used by the classifier feature distance)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def asset_dir(data_root: Path, dataset: MultimodalDataset) -> Path:
    return Path(data_root) / "assets" / "classifiers" / f"{dataset.spec.name}-v{RECIPE['version']}"


def modality_key(dataset: MultimodalDataset, m: int) -> str:
    """Content hash of what classifier m learns from and is tested on: the same modality in two
    builds (e.g. the first M modalities of a 5-modality build) shares one asset."""
    digest = hashlib.sha256()
    for split in (dataset.train, dataset.test):
        for t in (split.modalities[m], split.labels):
            digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def load_or_train_classifiers(
    dataset: MultimodalDataset, data_root: Path, device: torch.device, progress: bool = True
) -> tuple[list[ImageClassifier], dict]:
    """The dataset's frozen classifiers and their manifest (sha256 and test accuracy per modality).

    A classifier is trained (announced, never silently) only when no asset exists for its
    modality's content; an asset whose bytes no longer match its recorded sha256 is refused.
    """
    if dataset.train.labels is None:
        raise DataError(f"dataset {dataset.spec.name!r} has no labels, so it has no coherence classifiers")
    folder = asset_dir(data_root, dataset)
    classifiers, entries = [], []
    for m in range(dataset.spec.num_modalities):
        stem = f"m{m}-{modality_key(dataset, m)}"
        if not (folder / f"{stem}.json").exists():
            if progress:
                tqdm.write(f"training coherence classifier m{m} for {dataset.spec.name} (once; saved to {folder})")
            _train(dataset, m, folder, stem, device, progress)
        state, entry = load_asset(folder, f"{stem}.json", "classifier", delete=f"{folder / stem}.*", redo="retrain it")
        net = _new_classifier(dataset, m)
        net.load_state_dict(state)
        classifiers.append(net.to(device).eval())
        entries.append(entry)
    return classifiers, {"dataset": dataset.spec.name, "recipe": RECIPE, "modalities": entries}


def _new_classifier(dataset: MultimodalDataset, m: int) -> ImageClassifier:
    spec = dataset.spec.modalities[m]
    if spec.kind != "image":
        raise DataError(f"no label classifier recipe for {spec.kind} modality {spec.name!r}")
    return ImageClassifier(spec.shape[0], dataset.spec.num_classes, RECIPE["width"])


def _train(dataset: MultimodalDataset, m: int, folder: Path, stem: str, device: torch.device, progress: bool) -> None:
    with private_rng(device):
        torch.manual_seed(RECIPE["seed"] + m)
        net = _new_classifier(dataset, m).to(device)
        _fit(net, dataset.train.modalities[m], dataset.train.labels, device, progress, f"classifier m{m}")
    accuracy = classifier_accuracy(net, dataset.test.modalities[m], dataset.test.labels, device)
    save_asset(
        folder, stem, {k: v.cpu() for k, v in net.state_dict().items()},
        test_accuracy=accuracy, dataset=dataset.spec.name, modality=m, recipe=RECIPE,
    )
    if progress:
        tqdm.write(f"classifier m{m}: test accuracy {accuracy:.4f}")


@torch.enable_grad()
def _fit(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, device, progress: bool, desc: str) -> None:
    optimizer = torch.optim.AdamW(net.parameters(), lr=RECIPE["lr"], weight_decay=RECIPE["weight_decay"])
    steps_per_epoch = -(-len(images) // RECIPE["batch_size"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, RECIPE["lr"], total_steps=RECIPE["epochs"] * steps_per_epoch)
    shuffle = torch.Generator().manual_seed(RECIPE["seed"])
    net.train()
    bar = tqdm(total=RECIPE["epochs"] * steps_per_epoch, desc=desc, disable=not progress, leave=False)
    for _ in range(RECIPE["epochs"]):
        order = torch.randperm(len(images), generator=shuffle)
        for i in range(steps_per_epoch):
            idx = order[i * RECIPE["batch_size"]:(i + 1) * RECIPE["batch_size"]]
            x, y = to_model_input(images[idx]).to(device), labels[idx].to(device)
            loss = nn.functional.cross_entropy(net(random_shift(x, RECIPE["max_shift"], shuffle)), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.update()
    bar.close()
    net.eval()


def random_shift(x: torch.Tensor, pixels: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to `pixels` (edge pixels repeat): cheap augmentation that
    keeps a classifier trained on a few thousand digits from overfitting their positions."""
    n, _, h, w = x.shape
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * pixels * 2 / torch.tensor([w, h])
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = shift
    grid = nn.functional.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return nn.functional.grid_sample(x, grid, padding_mode="border", align_corners=False)


@torch.no_grad()
def classifier_accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, device, batch_size: int = 500) -> float:
    net.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        x = to_model_input(images[i:i + batch_size]).to(device)
        correct += (net(x).argmax(1).cpu() == labels[i:i + batch_size]).sum().item()
    return correct / len(images)
