"""Turn the same-stride maps of a column backbone into a 4-scale pyramid."""
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor

from mmsupervit.registry import MODELS


@MODELS.register_module()
class ColumnPyramidNeck(BaseModule):
    """Rescale stride-16 maps of a non-hierarchical backbone to 4/8/16/32.

    The recipe of XCiT and BEiT for dense prediction with a plain column:
    the i-th input map is resampled by ``scales[i]``:

    * ``4``: transposed conv (2x) -> norm -> activation -> transposed conv (2x)
    * ``2``: one transposed conv (2x)
    * ``1``: identity
    * ``0.5``: 2x2 max-pool

    so a column at stride 16 yields strides 4, 8, 16 and 32 for UperNet
    (mmseg) or FPN (mmdet). With ``out_channels`` set, each level ends with a
    1x1 :class:`~mmcv.cnn.ConvModule` (conv + norm) to that width.

    Args:
        in_channels (int): Channels of every input map. In a config,
            ``'auto'`` takes them from the backbone's ``output_shape()``
            (resolved by :class:`mmsupervit.EncoderDecoder` and
            :class:`mmsupervit.MaskRCNN` before this neck is built).
        out_channels (int | Sequence[int], optional): Output channels, one
            for all levels or one per level. Defaults to None (keep
            ``in_channels``, no projection).
        scales (Sequence[float]): Resampling factor per input map; each one of
            4, 2, 1, 0.5. Defaults to ``(4, 2, 1, 0.5)``.
        in_stride (int): Stride of the input maps, only used to declare
            ``out_strides``. Defaults to 16.
        norm_cfg (dict): Norm layer of the 4x branch and of the projections.
            Use ``dict(type='SyncBN')`` for multi-GPU training.
            Defaults to ``dict(type='BN', requires_grad=True)``.
        act_cfg (dict): Activation of the 4x branch.
            Defaults to ``dict(type='GELU')``.
        init_cfg (dict | list[dict], optional): Defaults to None.

    Attributes:
        out_channels (tuple[int]): Channels of each output.
        out_strides (tuple[int]): Stride of each output.
    """

    _SCALES = (4, 2, 1, 0.5)

    def __init__(self,
                 in_channels: int,
                 out_channels: Optional[Union[int, Sequence[int]]] = None,
                 scales: Sequence[float] = (4, 2, 1, 0.5),
                 in_stride: int = 16,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 act_cfg: dict = dict(type='GELU'),
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(in_channels, bool) or not isinstance(in_channels, int):
            raise TypeError(
                f'{type(self).__name__} in_channels must be an int, got '
                f"{in_channels!r}. in_channels='auto' is filled from the "
                "backbone's output_shape() by the model types "
                "'mmsupervit.EncoderDecoder' and 'mmsupervit.MaskRCNN': use "
                'one of them as model.type, or give the width')
        bad = [s for s in scales if s not in self._SCALES]
        if bad or not scales:
            raise ValueError(f'scales must be taken from {self._SCALES}, '
                             f'got {tuple(scales)}')
        self.scales = tuple(scales)
        self.in_channels = in_channels
        if out_channels is None:
            outs: Tuple[int, ...] = (in_channels, ) * len(scales)
        elif isinstance(out_channels, int):
            outs = (out_channels, ) * len(scales)
        else:
            outs = tuple(out_channels)
            if len(outs) != len(scales):
                raise ValueError(
                    f'out_channels has {len(outs)} entries but there are '
                    f'{len(scales)} scales')
        self.out_channels = outs
        self.out_strides = tuple(int(in_stride / s) for s in self.scales)

        self.resamplers = nn.ModuleList(
            self._make_resampler(s, in_channels, norm_cfg, act_cfg)
            for s in self.scales)
        if out_channels is None:
            self.projections = None
        else:
            self.projections = nn.ModuleList(
                ConvModule(in_channels, c, 1, norm_cfg=norm_cfg, act_cfg=None)
                for c in outs)

    @staticmethod
    def _make_resampler(scale: float, channels: int, norm_cfg: dict,
                        act_cfg: dict) -> nn.Module:

        def up2x() -> nn.Module:
            return nn.ConvTranspose2d(channels, channels, 2, stride=2)

        if scale == 4:
            return nn.Sequential(up2x(),
                                 build_norm_layer(norm_cfg, channels)[1],
                                 build_activation_layer(act_cfg), up2x())
        if scale == 2:
            return up2x()
        if scale == 1:
            return nn.Identity()
        return nn.MaxPool2d(kernel_size=2, stride=2)

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Resample each map.

        Args:
            inputs (Sequence[Tensor]): One (B, C, H, W) map per scale, or a
                single map used for every scale.

        Returns:
            tuple[Tensor]: One map per scale, finest first.
        """
        inputs = list(inputs)
        if len(inputs) == 1:
            inputs = inputs * len(self.scales)
        if len(inputs) != len(self.scales):
            raise ValueError(
                f'{type(self).__name__} got {len(inputs)} maps for '
                f'{len(self.scales)} scales {self.scales}: give one map per '
                'scale (set the backbone out_indices accordingly) or one map')
        for x in inputs:
            if x.dim() != 4 or x.shape[1] != self.in_channels:
                raise ValueError(
                    f'{type(self).__name__} expects (B, {self.in_channels}, '
                    f'H, W) maps, got {tuple(x.shape)}')
        outs = [m(x) for m, x in zip(self.resamplers, inputs)]
        if self.projections is not None:
            outs = [p(x) for p, x in zip(self.projections, outs)]
        return tuple(outs)
