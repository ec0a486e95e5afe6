"""What a model optimises: subsets of modalities and products of experts (`subsets`), ELBO pieces
(`elbo`), and the experts base class most models start from (`experts`)."""
from mmbench.objectives.elbo import (
    kl_normal,
    kl_standard_normal,
    log_mixture_density,
    log_normal,
    log_standard_normal,
    mixture_elbo,
    reparameterize,
    select_component,
)
from mmbench.objectives.experts import ExpertsVAE
from mmbench.objectives.subsets import (
    all_subsets,
    full_precision,
    joint_subset,
    mean_product_kl,
    product_of_experts,
    product_of_experts_per_point,
    subset_name,
    to_full_precision,
    unimodal_subsets,
)

__all__ = ["ExpertsVAE", "all_subsets", "full_precision", "joint_subset", "kl_normal", "kl_standard_normal",
           "log_mixture_density", "log_normal", "log_standard_normal", "mean_product_kl", "mixture_elbo",
           "product_of_experts", "product_of_experts_per_point", "reparameterize", "select_component",
           "subset_name", "to_full_precision", "unimodal_subsets"]
