"""mmbench: a benchmark suite and leaderboard for multimodal variational autoencoders.

The public API an outside model package needs is re-exported here: the model base class, the
registries with their decorators, and the dataset description a model factory receives.
"""
__version__ = "0.1.0"

from mmbench.api import MultimodalVAE
from mmbench.data.base import DatasetSpec, ModalitySpec, MultimodalDataset, MultimodalSplit
from mmbench.errors import MMBenchError
from mmbench.registry import (
    create_model,
    get_dataset,
    list_datasets,
    list_models,
    register_dataset,
    register_model,
)

__all__ = [
    "__version__",
    "MultimodalVAE",
    "DatasetSpec",
    "ModalitySpec",
    "MultimodalDataset",
    "MultimodalSplit",
    "MMBenchError",
    "create_model",
    "get_dataset",
    "list_datasets",
    "list_models",
    "register_dataset",
    "register_model",
]
