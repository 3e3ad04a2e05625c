"""Weight initialisation shared by the transformer-style backbones."""
import torch.nn as nn
from timm.layers import trunc_normal_


def init_linear_and_norm(module: nn.Module, std: float = .02) -> None:
    """timm/DeiT initialisation of every sub-module of ``module``.

    Linear weights: truncated normal with ``std``, zero bias; LayerNorm: 1/0.
    Other layers keep their own defaults.

    Args:
        module (nn.Module): Initialised in place.
        std (float): Std of the linear weights. Defaults to 0.02.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
