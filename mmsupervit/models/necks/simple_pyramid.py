"""A four-level pyramid from the single stride-16 map of a column backbone."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer
from mmengine.model import BaseModule
from torch import Tensor

from mmsupervit.models.backbones.base import ShapeSpec
from mmsupervit.models.utils.norm import build_channel_norm
from mmsupervit.registry import MODELS


@MODELS.register_module()
class SimplePyramidNeck(BaseModule):
    """Build strides 4/8/16/32 (and coarser) from ONE stride-16 map.

    For backbones whose dense output is a single map, such as the default
    :class:`~mmsupervit.models.backbones.PatchConvNet` (its last block, as in
    the paper). It follows ViTDet's ``SimpleFeaturePyramid`` (Li et al.,
    "Exploring Plain Vision Transformer Backbones for Object Detection",
    2022; detectron2 ``modeling/backbone/vit.py``), which was designed for
    exactly this input, rather than XCiT's adapter: XCiT resamples maps from
    four *different* depths and keeps them otherwise untouched, so from one
    map its stride-16 level would be the input itself and the other levels
    mere resamplings of it. ViTDet gives every level its own learned 1x1 and
    3x3 convolutions with norms, so the levels can specialise, and needs no
    FPN after it. Per scale factor:

    * ``4``: transposed conv 2x2 (to C/2) -> norm -> activation -> transposed
      conv 2x2 (to C/4);
    * ``2``: transposed conv 2x2 (to C/2);
    * ``1``: identity;
    * ``0.5``: 2x2 max-pool, stride 2;

    then per level a 1x1 conv to ``out_channels`` -> norm and a 3x3 conv ->
    norm (convolutions without bias when a norm follows, as in ViTDet).
    Levels beyond the scale factors (``num_outs``) are 1x1 max-pools with
    stride 2 of the previous level (ViTDet's ``LastLevelMaxPool``, mmdet
    FPN's extra outputs), e.g. the stride-64 level of Mask R-CNN's RPN.

    Differences from ViTDet: ``norm_cfg`` is configurable (ViTDet: layer
    norm); the 2x2 max-pool uses ``ceil_mode`` so a map with an odd side
    keeps its last row/column (ViTDet pads inputs to a square of 1024 and
    never meets odd sides; even sides give identical results).

    Args:
        in_channels (int): Channels of the input map (the backbone's
            ``output_shape()['out0'].channels``).
        out_channels (int): Channels of every output. Defaults to 256.
        scale_factors (Sequence[float]): Resampling of each level, taken in
            decreasing order from ``(4, 2, 1, 0.5)``. Defaults to all four.
        num_outs (int, optional): Outputs in total, at least
            ``len(scale_factors)``. Defaults to None: one per scale factor.
        in_stride (int): Stride of the input map, used to declare
            :meth:`output_shape`. Defaults to 16.
        norm_cfg (dict, optional): Norm after the first transposed conv of
            the 4x branch and after each per-level conv. ``LN``/``LN2d`` mean
            a layer norm over channels (eps defaults to 1e-6, as in ViTDet);
            other types are built by mmcv (``BN``, ``SyncBN``, ``GN``, ...).
            None: no norms, convolutions with bias. Defaults to
            ``dict(type='LN2d', eps=1e-6)``.
        act_cfg (dict): Activation of the 4x branch.
            Defaults to ``dict(type='GELU')``.
        init_cfg (dict | list[dict], optional): Defaults to the convolution
            init of ViTDet's pyramid (detectron2's ``c2_xavier_fill``: Kaiming
            uniform with ``a=1``, fan-in, zero bias) on the ``Conv2d`` layers;
            transposed convolutions keep PyTorch's default, as in ViTDet.

    Raises:
        ValueError: For scale factors, ``num_outs`` or channels that do not
            fit (at build time), and for inputs other than one
            ``(B, in_channels, H, W)`` map (in forward).
    """

    _SCALES = (4, 2, 1, 0.5)

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        scale_factors: Sequence[float] = (4, 2, 1, 0.5),
        num_outs: Optional[int] = None,
        in_stride: int = 16,
        norm_cfg: Optional[dict] = dict(type='LN2d', eps=1e-6),
        act_cfg: dict = dict(type='GELU'),
        init_cfg: Optional[Union[dict, List[dict]]] = dict(
            type='Kaiming',
            layer='Conv2d',
            a=1,
            mode='fan_in',
            nonlinearity='leaky_relu',
            distribution='uniform')
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        scales = tuple(scale_factors)
        if (not scales or any(s not in self._SCALES for s in scales)
                or list(scales) != sorted(set(scales), reverse=True)):
            raise ValueError('scale_factors must be distinct values from '
                             f'{self._SCALES} in decreasing order, got '
                             f'{scales}')
        if isinstance(in_channels, bool) or not isinstance(
                in_channels, int) or in_channels < (4 if 4 in scales else 1):
            raise ValueError(
                'in_channels must be an int (at least 4 with scale factor 4, '
                f'which works on in_channels // 4 channels), got '
                f'{in_channels!r}')
        num_outs = len(scales) if num_outs is None else num_outs
        if num_outs < len(scales):
            raise ValueError(f'num_outs ({num_outs}) must be at least the '
                             f'number of scale factors ({len(scales)})')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.scale_factors = scales
        self.num_outs = num_outs
        strides = [int(in_stride / s) for s in scales]
        strides += [strides[-1] * 2**k for k in range(1, num_outs -
                                                       len(scales) + 1)]
        self.out_strides = tuple(strides)

        self.resamplers = nn.ModuleList()
        self.lateral_convs = nn.ModuleList()
        self.output_convs = nn.ModuleList()
        for scale in scales:
            resampler, channels = self._resampler(scale, in_channels,
                                                  norm_cfg, act_cfg)
            self.resamplers.append(resampler)
            self.lateral_convs.append(
                self._conv_norm(channels, out_channels, 1, norm_cfg))
            self.output_convs.append(
                self._conv_norm(out_channels, out_channels, 3, norm_cfg))

    @staticmethod
    def _resampler(scale: float, channels: int, norm_cfg: Optional[dict],
                   act_cfg: dict) -> Tuple[nn.Module, int]:
        """The resampling of one level and its output channels."""
        if scale == 4:
            layers = [nn.ConvTranspose2d(channels, channels // 2, 2, 2)]
            if norm_cfg is not None:
                layers.append(build_channel_norm(norm_cfg, channels // 2))
            layers += [
                build_activation_layer(act_cfg),
                nn.ConvTranspose2d(channels // 2, channels // 4, 2, 2)
            ]
            return nn.Sequential(*layers), channels // 4
        if scale == 2:
            return nn.ConvTranspose2d(channels, channels // 2, 2, 2), \
                channels // 2
        if scale == 1:
            return nn.Identity(), channels
        # ceil_mode: an odd side keeps its last row/column
        return nn.MaxPool2d(2, 2, ceil_mode=True), channels

    @staticmethod
    def _conv_norm(in_channels: int, out_channels: int, kernel_size: int,
                   norm_cfg: Optional[dict]) -> nn.Sequential:
        """Conv (bias only without a norm) followed by the norm."""
        conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=kernel_size // 2,
            bias=norm_cfg is None)
        if norm_cfg is None:
            return nn.Sequential(conv)
        return nn.Sequential(conv, build_channel_norm(norm_cfg,
                                                      out_channels))

    def output_shape(self) -> Dict[str, ShapeSpec]:
        """Channels and stride of each output (finest first), named like a
        backbone's: ``out0``, ``out1``, ..."""
        return {
            f'out{k}': ShapeSpec(self.out_channels, s)
            for k, s in enumerate(self.out_strides)
        }

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Build the pyramid.

        Args:
            inputs (Sequence[Tensor]): The backbone's outputs: exactly one
                (B, in_channels, h, w) map.

        Returns:
            tuple[Tensor]: ``num_outs`` maps, finest first; a level with
            scale factor ``s >= 1`` is ``(s*h, s*w)``, the 0.5 level and each
            extra level halve the previous size, rounding up.
        """
        if len(inputs) != 1:
            raise ValueError(
                f'{type(self).__name__} builds the pyramid from one map, got '
                f'{len(inputs)}; make the backbone return one map (e.g. '
                "PatchConvNet's default out_indices=(-1,)) or use "
                'ColumnPyramidNeck for one map per level')
        x = inputs[0]
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} expects a (B, {self.in_channels}, H, '
                f'W) map, got {tuple(x.shape)}')
        outs = [
            out(lat(res(x))) for res, lat, out in zip(
                self.resamplers, self.lateral_convs, self.output_convs)
        ]
        for _ in range(self.num_outs - len(outs)):
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)
