"""The official PolyMNIST judges: the per-modality digit classifiers released with MoPoE.

Published PolyMNIST coherences (MoPoE, MMVAE+, MVTCAE, ...) are judged by these classifiers
(thomassutter/MoPoE 0ad2d56, mmnist/networks/ConvNetworkImgClfCMNIST.py `ClfImg`, files
`trained_clfs_polyMNIST/pretrained_img_to_digit_clf_m<k>` of the release), so only scores judged
by them can be set beside the literature. `eval.judge=official` uses them instead of mmbench's own
classifiers, for coherence and the classifier feature distance; every file must match a sha256
pinned in the dataset card (`official-classifier-m<k>: <sha256>`) or given in
`eval.official_sha256`, and loads with `weights_only=True`. The record's score versions name the
judge, so boards never pool scores of different judges.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch
from torch import nn

from mmbench.data.base import MultimodalDataset, to_model_input
from mmbench.errors import DataError

FILE = "pretrained_img_to_digit_clf_m{m}"
RELEASE_DIR = Path("polymnist") / "official" / "trained_clfs_polyMNIST"
"""Where, under the data root, the release's classifier folder is looked for by default."""


class MoPoEDigitClassifier(nn.Module):
    """`ClfImg` of the MoPoE release, layer for layer (so its state_dict keys load unchanged):
    conv 3->10->20 (k4 s2 p1) with Dropout2d, Linear(980 -> 128), Linear(128 -> 10)."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 10, kernel_size=4, stride=2, padding=1), nn.Dropout2d(0.5), nn.ReLU(),
            nn.Conv2d(10, 20, kernel_size=4, stride=2, padding=1), nn.Dropout2d(0.5), nn.ReLU(),
            nn.Flatten(), nn.Linear(980, 128), nn.Dropout(0.5), nn.ReLU(), nn.Linear(128, 10),
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 128 penultimate activations (used by the classifier feature distance)."""
        return self.encoder[:-1](x)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.encoder[-1](features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


def load_official_classifiers(folder: Path, num_modalities: int, pins: dict[str, str]) -> tuple[list[MoPoEDigitClassifier], list[str]]:
    """The release's classifiers in `folder` and their sha256, each checked against `pins`."""
    nets, digests = [], []
    for m in range(num_modalities):
        path = Path(folder) / FILE.format(m=m)
        if not path.is_file():
            raise DataError(f"official classifier {path} not found (unpack the MoPoE release's trained_clfs_polyMNIST there, "
                            "or set eval.official_classifiers)")
        pinned = pins.get(f"m{m}")
        if pinned is None:
            raise DataError(f"no sha256 pinned for the official classifier m{m}: add `official-classifier-m{m}: <sha256>` "
                            "to the dataset card, or give eval.official_sha256, after checking where the file came from")
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != pinned:
            raise DataError(f"official classifier {path} has sha256 {digest}, not the pinned {pinned}")
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            net = MoPoEDigitClassifier()
            net.load_state_dict(state)
        except Exception as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise DataError(f"official classifier {path} is not a state_dict of MoPoE's ClfImg ({reason})") from None
        nets.append(net.eval())
        digests.append(digest)
    return nets, digests


@torch.no_grad()
def test_accuracy(classifier: nn.Module, dataset: MultimodalDataset, m: int, device: torch.device, batch_size: int = 500) -> float:
    """The classifier's digit accuracy on modality m of the test split (how well it judges this data)."""
    test = dataset.test
    correct = 0
    for start in range(0, len(test), batch_size):
        rows = slice(start, start + batch_size)
        x = to_model_input(test.modalities[m][rows]).to(device)
        correct += (classifier(x).argmax(1).cpu() == test.labels[rows]).sum().item()
    return correct / len(test)


def official_judges(dataset: MultimodalDataset, data_root: Path, options: dict, pins: dict[str, str],
                    device: torch.device) -> tuple[list[MoPoEDigitClassifier], dict]:
    """Classifiers and a manifest shaped like `load_or_train_classifiers`' (sha256, test accuracy)."""
    folder = Path(options.get("official_classifiers") or Path(data_root) / RELEASE_DIR)
    nets, digests = load_official_classifiers(folder, dataset.spec.num_modalities, {**pins, **(options.get("official_sha256") or {})})
    nets = [net.to(device) for net in nets]
    modalities = [{"sha256": d, "test_accuracy": test_accuracy(net, dataset, m, device)} for m, (net, d) in enumerate(zip(nets, digests))]
    return nets, {"judge": "official", "modalities": modalities}
