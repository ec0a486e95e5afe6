"""Shared layers and the standard per-modality networks. Importing this package registers the
networks of every modality kind (image, text, binary); it imports nothing above `mmbench.data.base`."""
from mmbench.nn import cub, image, vector  # noqa: F401  (each registers its networks)
from mmbench.nn.layers import LAPLACE_SCALE, GaussianHeads, LaplaceDecoder
from mmbench.nn.registry import ANY_SHAPE, NETWORKS_VERSION, build_decoder, build_encoder, register_networks

__all__ = ["ANY_SHAPE", "LAPLACE_SCALE", "NETWORKS_VERSION", "GaussianHeads", "LaplaceDecoder",
           "build_decoder", "build_encoder", "register_networks"]
