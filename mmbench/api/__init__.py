"""The contract between mmbench and a model or dataset package: the model base class, the
registries with their decorators, and the one-line error types."""
from mmbench.api.model import MultimodalVAE
from mmbench.api.registry import (
    create_model,
    get_dataset,
    list_datasets,
    list_models,
    register_dataset,
    register_model,
)

__all__ = ["MultimodalVAE", "create_model", "get_dataset", "list_datasets", "list_models",
           "register_dataset", "register_model"]
