"""Norm layers for NCHW maps, built from an mmcv-style ``norm_cfg``."""
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from timm.layers import LayerNorm2d

#: Default epsilon of a channel layer norm (the value of PatchConvNet's and
#: ViTDet's layer norms).
LN_EPS = 1e-6


def build_channel_norm(norm_cfg: dict, channels: int) -> nn.Module:
    """A norm over the channels of an NCHW map.

    ``type='LN'`` or ``'LN2d'`` gives a layer norm over the channels of each
    position (timm's ``LayerNorm2d``; mmcv's ``LN`` would normalise the last,
    spatial, axis of an NCHW map), with ``eps`` defaulting to
    :data:`LN_EPS`. Any other type goes to mmcv's ``build_norm_layer``
    (``BN``, ``SyncBN``, ``GN``, ...).

    Args:
        norm_cfg (dict): ``type`` plus the layer's arguments; ``LN``/``LN2d``
            take only ``eps`` and ``requires_grad``.
        channels (int): Channels of the map.

    Returns:
        nn.Module: The norm layer.

    Raises:
        TypeError: For keys a layer norm does not take.
    """
    cfg = dict(norm_cfg)
    norm_type = cfg.pop('type', None)
    if norm_type not in ('LN', 'LN2d'):
        return build_norm_layer(norm_cfg, channels)[1]
    eps = cfg.pop('eps', LN_EPS)
    requires_grad = cfg.pop('requires_grad', True)
    if cfg:
        raise TypeError(f'unexpected keys {sorted(cfg)} in norm_cfg of type '
                        f'{norm_type!r} (allowed: eps, requires_grad)')
    norm = LayerNorm2d(channels, eps=eps)
    norm.requires_grad_(requires_grad)
    return norm
