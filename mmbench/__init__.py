"""mmbench: a benchmark suite and leaderboard for multimodal variational autoencoders.

Everything an outside model package needs is exported here: the model contract and the experts
base class, the registries with their decorators, the dataset description a factory receives,
the standard networks, the error types, and `mmbench.objectives` (subsets, products of experts,
ELBO pieces). The flow and the folder of each stage: docs/architecture.md.
"""
__version__ = "0.1.0"

from mmbench import objectives
from mmbench.api.model import MultimodalVAE
from mmbench.api.registry import create_model, get_dataset, list_datasets, list_models, register_dataset, register_model
from mmbench.data.base import DatasetSpec, ModalitySpec, MultimodalDataset, MultimodalSplit
from mmbench.errors import ConfigError, DataError, MMBenchError, PluginError
from mmbench.nn import build_decoder, build_encoder
from mmbench.objectives import ExpertsVAE

__all__ = [
    "__version__",
    "ConfigError",
    "DataError",
    "DatasetSpec",
    "ExpertsVAE",
    "MMBenchError",
    "ModalitySpec",
    "MultimodalDataset",
    "MultimodalSplit",
    "MultimodalVAE",
    "PluginError",
    "build_decoder",
    "build_encoder",
    "create_model",
    "get_dataset",
    "list_datasets",
    "list_models",
    "objectives",
    "register_dataset",
    "register_model",
]
