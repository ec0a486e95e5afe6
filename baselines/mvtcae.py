"""MVTCAE (Hwang et al., NeurIPS 2021): a product-of-experts VAE trained with a total-correlation
objective, the information the joint posterior keeps about every view.

Reference: gr8joo/MVTCAE (commit 8a0e23c, `METHOD='tc'` in main_mmnist.py; run_epochs.py, the
'tc' branch of the loss; utils/BaseMMVae.py `ivw_fusion`). Per data point, with q(z | X) the
product of the M unimodal experts (no N(0, I) expert) and one sample z ~ q(z | X):

    objective = (M - alpha)/M * sum_m log p(x_m | z)
                - beta * [(1 - alpha) KL(q(z|X) || p(z)) + alpha/M * sum_m KL(q(z|X) || q(z|x_m))]

PolyMNIST defaults as shipped there: latent 512, beta 2.5, alpha 5/6, and its training recipe
(batch 256, Adam lr 1e-3, 325 epochs; it evaluates at epoch 300), which the `full` tier uses. Conditioning on a subset S uses the product of S's experts, again without a prior expert.
Not a mixture model: its one reconstruction term decodes from the joint posterior, so it does not
sub-sample modalities and declares no `mixture_subsets`.

Known deviations: the reference adds 1e-8 to each expert's variance inside the product (mmbench
multiplies precisions directly; relative difference below 1e-6); none in the loss otherwise,
pinned by tests/test_golden_losses.py.
"""
from __future__ import annotations

import torch
from torch.distributions import Independent, Normal

from mmbench import ConfigError, DatasetSpec, ExpertsVAE, register_model
from mmbench.objectives import joint_subset, kl_normal, kl_standard_normal, product_of_experts, reparameterize


class MVTCAE(ExpertsVAE):
    """q(z | x_S) = prod_{m in S} q(z | x_m); objective the total-correlation bound above."""

    def __init__(self, spec: DatasetSpec, latent_dim: int, beta: float, alpha: float):
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"mvtcae alpha must lie in [0, 1], not {alpha}")
        super().__init__(spec, latent_dim, beta)
        self.alpha = alpha
        self.register_buffer("joint", joint_subset(spec.num_modalities), persistent=False)

    def encode(self, xs, subsets):
        mu, logvar = product_of_experts(*self.experts(xs), subsets.to(self.joint.device))
        return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)

    def objective(self, xs):
        mu, logvar = self.experts(xs)  # (M, B, D)
        mu_joint, logvar_joint = product_of_experts(mu, logvar, self.joint)  # (1, B, D)
        reconstruction = self.log_likelihood(reparameterize(mu_joint, logvar_joint), xs)[0]
        views = self.num_modalities
        to_prior = kl_standard_normal(mu_joint[0], logvar_joint[0])
        to_views = kl_normal(mu_joint, logvar_joint, mu, logvar).sum(0)  # sum_m KL(q(z|X) || q(z|x_m))
        regulariser = (1.0 - self.alpha) * to_prior + self.alpha / views * to_views
        return (views - self.alpha) / views * reconstruction - self.beta * regulariser


@register_model("mvtcae", recipe={"batch_size": 256, "lr": 1e-3, "epochs": 325},
                recipe_source="gr8joo/MVTCAE 8a0e23c main_mmnist.py, utils/BaseFlags.py: batch 256, Adam lr 1e-3, 325 epochs")
def mvtcae(spec: DatasetSpec, *, latent_dim: int = 512, beta: float = 2.5, alpha: float = 5 / 6) -> MVTCAE:
    """`alpha` weighs the conditional (view-to-joint) terms against the KL to the prior, as the paper varies it."""
    return MVTCAE(spec, latent_dim, beta, alpha)
