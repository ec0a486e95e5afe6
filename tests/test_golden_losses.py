"""Golden losses: each baseline's loss on seeded weights, a fixed batch and fixed noise equals the
value of its reference implementation's formula, to 1e-6 relative: float32 sums over 7,056
pixels agree to 1e-7 here, and a looser 1e-4 would not notice the MoPoE prior expert (3e-5).

Where the numbers come from: tests/golden/reference_losses.py writes out each reference formula
(repository, file, function and commit are in its docstring) with torch.distributions, sharing
only the networks' forward passes with mmbench, and printed these values with torch 2.14.1 on
CPU (`python tests/golden/reference_losses.py`). The test also recomputes them live, so a change
to the networks shows up as a mismatch of the stored numbers, and a change to an objective as a
mismatch of both.
"""
import pytest
import torch

from golden.reference_losses import CASES, reference_loss, setting

GOLDEN = {
    "unimodal": 7708.80322265625,
    "mvae": 15427.5732421875,
    "mvae-joint": 7712.220703125,
    "mmvae": 7706.265625,
    "mmvae-iwae": 7705.15087890625,
    "mopoe": 7707.19140625,
    "mmvae-shi": 7704.57666015625,
    "mmvaeplus": 7300.59912109375,
    "mmvaeplus-iwae": 7246.5,
    "mvtcae": 5569.77001953125,
    "mmjsd": 7705.998046875,
    "mmvm": 7709.4296875,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_equals_the_reference_formula(case):
    options, _ = CASES[case]
    model, batch = setting(case.split("-")[0], **options)
    torch.manual_seed(1)
    with torch.no_grad():
        loss = model.loss(batch).item()
    assert loss == pytest.approx(GOLDEN[case], rel=1e-6)
    assert reference_loss(case) == pytest.approx(GOLDEN[case], rel=1e-6)


def test_mopoe_without_the_prior_expert_misses_the_golden_value():
    """The golden MoPoE number is sensitive to the full-set prior expert the reference adds."""
    from golden.reference_losses import subsets_by_size, mixture_loss

    model, batch = setting("mopoe")
    torch.manual_seed(1)
    with torch.no_grad():
        without = mixture_loss(model, batch, subsets_by_size(), prior_on_full=False).item()
    assert without != pytest.approx(GOLDEN["mopoe"], rel=1e-6)


def test_polymnist_networks_have_the_reference_layers(image_spec):
    """Layer shapes of thomassutter/MoPoE's EncoderImg / DecoderImg (class_dim = latent, no style)."""
    model, _ = setting("mopoe")
    latent = model.latent_dim
    encoder = [tuple(p.shape) for p in model.encoders[0].parameters()]
    decoder = [tuple(p.shape) for p in model.decoders[0].parameters()]
    assert encoder == [(32, 3, 3, 3), (32,), (64, 32, 3, 3), (64,), (128, 64, 3, 3), (128,), (latent, 2048), (latent,),
                       (latent, latent), (latent,), (latent, latent), (latent,)]
    assert decoder == [(2048, latent), (2048,), (128, 64, 3, 3), (64,), (64, 32, 3, 3), (32,), (32, 3, 3, 3), (3,)]
    z = torch.full((2, latent), 50.0)
    assert model.decoders[0](z).mean.abs().max() > 1  # no output sigmoid: the loc is unbounded
    assert model.sample(4)[0].min() >= 0 and model.sample(4)[0].max() <= 1  # generated images are clamped
