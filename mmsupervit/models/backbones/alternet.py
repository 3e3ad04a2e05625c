"""AlterNet: a pre-activation ResNet whose late blocks are window MSAs.

Park & Kim, *How Do Vision Transformers Work?* (ICLR 2022); official code in
``xxxnell/how-do-vits-work``, branch ``transformer``, ``models/alternet.py``.

This re-implementation keeps the official structure and parameter layout so
that checkpoints written by the official training script load after a few
key renames (:func:`convert_alternet`). What is new for dense prediction:

* any input size: each MSA block pads its map to a multiple of the window and
  masks the padding out of attention, so outputs equal the official ones
  wherever the official code runs (every MSA-stage map a multiple of 7) and
  stay correct elsewhere;
* four stage outputs (strides 4/8/16/32), each with its own norm + ReLU,
  because the stages end pre-activation.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from timm.layers import DropPath, trunc_normal_
from torch.nn.modules.batchnorm import _BatchNorm

from mmsupervit.registry import MODELS
from ..utils.checkpoint import StateDict
from .base import DenseBackbone, InitCfg, ShapeSpec, StageMember

#: Stage widths are hard-coded in the official model (before expansion).
_STAGE_WIDTHS = (64, 128, 256, 512)
_STEM_WIDTH = 64


def convert_alternet(state_dict: StateDict) -> StateDict:
    """Convert an official AlterNet state dict to this implementation's keys.

    Renames (all other keys are kept as they are):

    * ``layer0.layer0.0.*`` (stem conv) -> ``stem.conv.*``;
    * ``*.shortcut.0.*`` -> ``*.shortcut.*``;
    * ``*.attn.attn.*`` -> ``*.attn.*`` and ``*.to_out.0.*`` -> ``*.to_out.*``;
    * ``classifier.0.bn.*`` -> ``norm3.*``: the classifier's BN+ReLU is
      exactly the output norm of the last stage;
    * every other ``classifier.*`` key (the linear head) is dropped.

    The function is idempotent: an already converted dict is returned
    unchanged (as a new dict).

    Args:
        state_dict (dict): Official (or already converted) state dict.

    Returns:
        dict: The converted state dict.
    """
    converted = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('classifier.'):
            if key.startswith('classifier.0.bn.'):
                converted['norm3.' + key[len('classifier.0.bn.'):]] = value
            continue
        if key.startswith('layer0.layer0.0.'):
            key = 'stem.conv.' + key[len('layer0.layer0.0.'):]
        key = key.replace('.shortcut.0.', '.shortcut.')
        key = key.replace('.attn.attn.', '.attn.')
        key = key.replace('.to_out.0.', '.to_out.')
        converted[key] = value
    return converted


#: Our keys of a window-attention projection: ``<block>.attn.to_*``.
_ATTN_PROJ = re.compile(r'^(.*\.attn\.)(to_q|to_kv|to_out)\.(.*)$')


def alternet_to_official(state_dict: StateDict) -> StateDict:
    """The inverse of :func:`convert_alternet` for the backbone's keys.

    ``norm3.*`` (the last stage's output norm) becomes the official
    classifier's BN ``classifier.0.bn.*``; the output norms of stages 0-2
    have no official counterpart and are dropped. The official linear head
    is not in a backbone's state dict (see
    :func:`mmsupervit.models.classification.classifier_to_official`).

    Args:
        state_dict (dict): Keys of :class:`AlterNet`.

    Returns:
        dict: Official keys (``models/alternet.py``).
    """
    official = OrderedDict()
    for key, value in state_dict.items():
        if re.match(r'^norm[0-2]\.', key):
            continue
        if key.startswith('norm3.'):
            key = 'classifier.0.bn.' + key[len('norm3.'):]
        elif key.startswith('stem.conv.'):
            key = 'layer0.layer0.0.' + key[len('stem.conv.'):]
        else:
            key = key.replace('.shortcut.', '.shortcut.0.')
            match = _ATTN_PROJ.match(key)
            if match:
                proj = match.group(2) + ('.0' if match.group(2) == 'to_out'
                                         else '')
                key = f'{match.group(1)}attn.{proj}.{match.group(3)}'
        official[key] = value
    return official


def _norm(norm_cfg: dict, channels: int) -> nn.Module:
    return build_norm_layer(norm_cfg, channels)[1]


def _conv(in_channels: int,
          out_channels: int,
          kernel_size: int,
          stride: int = 1,
          bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=kernel_size // 2,
        bias=bias)


class _PreActBlock(nn.Module):
    """Shared skip logic of the official pre-activation blocks.

    With a projection shortcut, the shortcut sees the *activated* input;
    otherwise the identity skip is the *raw* input (official behaviour).
    Subclasses build their input norm (``bn_in``), ``act`` and
    :meth:`residual`; the skip, drop path and sum are here.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the block.
        drop_path (float): Drop-path rate of the residual branch.
    """

    expansion = 1
    act: nn.Module

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 drop_path: float) -> None:
        super().__init__()
        self.shortcut: Optional[nn.Module] = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = _conv(in_channels, out_channels, 1, stride)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else \
            nn.Identity()

    def _pre(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.shortcut is not None:
            x = self.act(self.bn_in(x))
            return x, self.shortcut(x)
        return self.act(self.bn_in(x)), x

    @property
    def bn_in(self) -> nn.Module:
        raise NotImplementedError

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch on the activated input."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, skip = self._pre(x)
        x = self.drop_path(self.residual(x))
        x += skip  # in place: the branch output is a fresh tensor
        return x


class BasicBlock(_PreActBlock):
    """Pre-activation basic block: BN-ReLU-conv3x3-BN-ReLU-conv3x3 + skip.

    Args:
        in_channels (int): Input channels.
        channels (int): Output channels (expansion 1).
        stride (int): Stride of the first 3x3 conv. Defaults to 1.
        drop_path (float): Drop-path rate of the residual branch.
            Defaults to 0.
        norm_cfg (dict): Norm config. Defaults to ``dict(type='BN')``.
    """

    expansion = 1

    def __init__(self,
                 in_channels: int,
                 channels: int,
                 stride: int = 1,
                 drop_path: float = 0.,
                 norm_cfg: dict = dict(type='BN')) -> None:
        out_channels = channels * self.expansion
        super().__init__(in_channels, out_channels, stride, drop_path)
        self.bn = _norm(norm_cfg, in_channels)
        self.act = nn.ReLU(inplace=True)
        self.conv1 = _conv(in_channels, channels, 3, stride)
        self.conv2 = nn.Sequential(
            _norm(norm_cfg, channels), nn.ReLU(inplace=True),
            _conv(channels, out_channels, 3))

    @property
    def bn_in(self) -> nn.Module:
        return self.bn

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class Bottleneck(_PreActBlock):
    """Pre-activation bottleneck: 1x1 -> 3x3 (stride) -> 1x1 (x4) + skip.

    Args:
        in_channels (int): Input channels.
        channels (int): Bottleneck width; output is ``4 * channels``.
        stride (int): Stride of the 3x3 conv. Defaults to 1.
        drop_path (float): Drop-path rate of the residual branch.
            Defaults to 0.
        norm_cfg (dict): Norm config. Defaults to ``dict(type='BN')``.
    """

    expansion = 4

    def __init__(self,
                 in_channels: int,
                 channels: int,
                 stride: int = 1,
                 drop_path: float = 0.,
                 norm_cfg: dict = dict(type='BN')) -> None:
        out_channels = channels * self.expansion
        super().__init__(in_channels, out_channels, stride, drop_path)
        self.bn = _norm(norm_cfg, in_channels)
        self.act = nn.ReLU(inplace=True)
        self.conv1 = _conv(in_channels, channels, 1)
        self.conv2 = nn.Sequential(
            _norm(norm_cfg, channels), nn.ReLU(inplace=True),
            _conv(channels, channels, 3, stride))
        self.conv3 = nn.Sequential(
            _norm(norm_cfg, channels), nn.ReLU(inplace=True),
            _conv(channels, out_channels, 1))

    @property
    def bn_in(self) -> nn.Module:
        return self.bn

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.conv2(self.conv1(x)))


class WindowAttention(nn.Module):
    """Non-overlapping window MSA with the official relative position bias.

    Works on any ``H x W``: the map is zero-padded at the bottom/right to a
    multiple of ``window_size``, padded keys get an additive ``-inf`` bias and
    padded query rows are cropped away. Each window holds at least one real
    token (its top-left one), so no softmax row is fully masked.

    The bias for query ``a`` and key ``b`` of a window is
    ``pos_embedding[b_row - a_row + w - 1, b_col - a_col + w - 1]`` (key minus
    query, the opposite sign of Swin), as in the official code.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels (after ``to_out``).
        num_heads (int): Number of heads.
        head_dim (int): Channels per head. Defaults to 64.
        window_size (int): Window side. Defaults to 7.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 num_heads: int,
                 head_dim: int = 64,
                 window_size: int = 7) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.window_size = window_size
        self.scale = head_dim**-0.5
        inner = num_heads * head_dim
        self.to_q = nn.Conv2d(in_channels, inner, 1, bias=False)
        self.to_kv = nn.Conv2d(in_channels, 2 * inner, 1, bias=False)
        self.to_out = nn.Conv2d(inner, out_channels, 1)
        side = 2 * window_size - 1
        self.pos_embedding = nn.Parameter(torch.zeros(side, side))
        trunc_normal_(self.pos_embedding, std=.02)
        coords = torch.stack(
            torch.meshgrid(
                torch.arange(window_size),
                torch.arange(window_size),
                indexing='ij'), -1).reshape(-1, 2)
        rel = coords[None, :, :] - coords[:, None, :] + window_size - 1
        # Flat index into pos_embedding, (query, key); not in the state dict.
        self.register_buffer(
            'rel_index', rel[..., 0] * side + rel[..., 1], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        p, heads, d = self.window_size, self.num_heads, self.head_dim
        inner = heads * d
        pad_h, pad_w = (-h) % p, (-w) % p
        if pad_h or pad_w:
            # Zero tokens give zero q/k/v (the projections have no bias); the
            # mask below removes them as keys, the crop as queries.
            x = F.pad(x, (0, pad_w, 0, pad_h))
        n1, n2 = (h + pad_h) // p, (w + pad_w) // p
        # Partition the (narrow) input into windows of row-major tokens and
        # project there: the wide q/k/v never need a transposing copy.
        x = x.reshape(b, -1, n1, p, n2, p).permute(0, 2, 4, 3, 5, 1).reshape(
            b * n1 * n2, p * p, -1)
        weight = torch.cat([self.to_q.weight, self.to_kv.weight]).flatten(1)
        # channels are (qkv, head, dim)
        qkv = F.linear(x, weight).reshape(b * n1 * n2, p * p, 3, heads, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)

        bias = self.pos_embedding.flatten()[self.rel_index].to(q.dtype)
        if pad_h or pad_w:
            valid = torch.zeros((h + pad_h, w + pad_w),
                                dtype=torch.bool,
                                device=x.device)
            valid[:h, :w] = True
            valid = valid.reshape(n1, p, n2, p).permute(0, 2, 1, 3).reshape(
                n1 * n2, 1, 1, p * p)
            key_bias = torch.zeros(
                valid.shape, dtype=q.dtype, device=q.device).masked_fill(
                    ~valid, float('-inf'))
            mask = (bias + key_bias).expand(b, -1, -1, -1, -1).reshape(
                b * n1 * n2, 1, p * p, p * p)
        else:
            mask = bias
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, scale=self.scale)
        out = out.reshape(b, n1, n2, heads, p, p, d).permute(
            0, 1, 4, 2, 5, 3, 6).reshape(b, n1 * p, n2 * p, inner)
        if pad_h or pad_w:
            out = out[:, :h, :w]
        out = F.linear(out, self.to_out.weight.flatten(1), self.to_out.bias)
        # A channels-last NCHW view: no transposing copy here; the following
        # ops accept it, and the backbone outputs are made contiguous.
        return out.permute(0, 3, 1, 2)


class AttentionBlock(_PreActBlock):
    """Official pre-activation MSA block (``AttentionBlockB``), no FFN.

    ``norm1 -> GELU -> conv1x1 (in -> in // expansion) -> norm2 -> window
    attention (-> channels * expansion) -> + skip``.

    Args:
        in_channels (int): Input channels.
        channels (int): Output is ``channels * expansion``.
        num_heads (int): Attention heads.
        head_dim (int): Channels per head. Defaults to 64.
        window_size (int): Window side. Defaults to 7.
        expansion (int): 1 (basic variants) or 4 (bottleneck variants).
            Defaults to 1.
        drop_path (float): Drop-path rate. Defaults to 0.
        norm_cfg (dict): Norm config. Defaults to ``dict(type='BN')``.
    """

    def __init__(self,
                 in_channels: int,
                 channels: int,
                 num_heads: int,
                 head_dim: int = 64,
                 window_size: int = 7,
                 expansion: int = 1,
                 drop_path: float = 0.,
                 norm_cfg: dict = dict(type='BN')) -> None:
        out_channels = channels * expansion
        # A projection shortcut is never built by the official layouts (an
        # MSA block is never first in a stage) but is kept for dict archs
        # with a width change.
        super().__init__(in_channels, out_channels, 1, drop_path)
        self.expansion = expansion
        width = in_channels // expansion
        self.norm1 = _norm(norm_cfg, in_channels)
        self.act = nn.GELU()
        self.conv = nn.Conv2d(in_channels, width, 1, bias=False)
        self.norm2 = _norm(norm_cfg, width)
        self.attn = WindowAttention(width, out_channels, num_heads, head_dim,
                                    window_size)

    @property
    def bn_in(self) -> nn.Module:
        return self.norm1

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(self.norm2(self.conv(x)))


#: Named archs: block type, blocks per stage, MSA blocks per stage (the last
#: ``2 * num_msa`` blocks alternate conv, MSA), heads per stage.
_ARCHS = {
    18: dict(block='basic', num_blocks=(2, 2, 2, 2), num_msa=(0, 1, 1, 1)),
    34: dict(block='basic', num_blocks=(3, 4, 6, 4), num_msa=(0, 1, 3, 2)),
    50: dict(block='bottleneck', num_blocks=(3, 4, 6, 4),
             num_msa=(0, 1, 3, 2)),
    101: dict(block='bottleneck', num_blocks=(3, 4, 23, 4),
              num_msa=(0, 1, 3, 2)),
    152: dict(block='bottleneck', num_blocks=(3, 8, 36, 4),
              num_msa=(0, 1, 3, 2)),
}


@MODELS.register_module()
class AlterNet(DenseBackbone):
    """AlterNet backbone for dense prediction (mmseg and mmdet).

    A pre-activation ResNet (ImageNet stem: conv 7x7/2 + max-pool 3x3/2, no
    norm) in which the last blocks of stages 2-4 alternate with local-window
    MSA blocks, following the rule ``[conv] * (n - 2 * m) + [conv, msa] * m``
    for a stage of ``n`` blocks with ``m`` MSA blocks.

    **Weights.** No ImageNet AlterNet weights are public (the official
    maintainer says so in issue #37 of ``xxxnell/how-do-vits-work``), so the
    default is training from scratch (kaiming-normal convs, unit/zero norms,
    truncated-normal relative position tables). Checkpoints in the official
    layout (``{'name', 'state_dict'}``, official key names) load with
    ``init_cfg=dict(type='Pretrained', checkpoint=...)``; the classifier's BN
    becomes the last output norm (``norm3``) and the linear head is dropped.

    **Outputs.** One map per entry of ``out_indices`` at strides 4/8/16/32.
    The stages end pre-activation, so each output passes through its own
    ``norm{i}`` (built from ``norm_cfg``) and ReLU. Any input size works: MSA
    blocks pad to a multiple of the window and mask the padding.

    Args:
        arch (int | str | dict): 18, 34, 50, 101 or 152 (int, ``'50'`` or
            ``'alternet-50'``), or a dict with keys ``block`` (``'basic'`` or
            ``'bottleneck'``), ``num_blocks`` and ``num_msa`` (4 ints each,
            ``2 * num_msa[i] <= num_blocks[i]``) and optionally ``heads``
            (4 ints, defaults to ``(3, 6, 12, 24)``) and ``head_dim``
            (defaults to 64). Defaults to 50.
        out_indices (Sequence[int]): Stages to return, from 0..3 (negative
            values count from the end); returned in stage order.
            Defaults to ``(0, 1, 2, 3)``.
        frozen_stages (int): -1 freezes nothing, 0 the stem, ``i`` the stem
            and stages ``1..i`` (parameters without grad, norms in eval
            mode). Output norms are never frozen. Defaults to -1.
        norm_eval (bool): Keep every BN layer in eval mode while training.
            Defaults to False.
        with_cp (bool): Gradient checkpointing per block. Defaults to False.
        drop_path_rate (float): Stochastic depth, linear over all blocks from
            0 (first) to this value (last). Defaults to 0.
        window_size (int): Attention window side. Defaults to 7.
        norm_cfg (dict): Norm of the blocks and of the outputs (e.g. BN,
            SyncBN, GN). Defaults to ``dict(type='BN', requires_grad=True)``.
        init_cfg (dict | list[dict], optional): A ``Pretrained`` entry
            (``checkpoint``, optional ``prefix``) loads a checkpoint
            (official layout or ours); it must hold every weight except the
            output norms (warned about when missing) unless the entry says
            ``strict=False`` or ``min_loaded=<fraction>``. Other mmengine
            init configs are applied after the from-scratch init. Defaults
            to None.
    """

    arch_zoo = {
        **{str(depth): dict(settings, heads=(3, 6, 12, 24), head_dim=64)
           for depth, settings in _ARCHS.items()},
        **{f'alternet-{depth}': str(depth) for depth in _ARCHS},
    }
    arch_required_keys = ('block', 'num_blocks', 'num_msa')
    arch_defaults = dict(heads=(3, 6, 12, 24), head_dim=64)
    _BLOCKS = {'basic': BasicBlock, 'bottleneck': Bottleneck}
    no_weight_decay_keywords = ('pos_embedding', )

    def __init__(self,
                 arch: Union[int, str, dict] = 50,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 drop_path_rate: float = 0.,
                 window_size: int = 7,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 init_cfg: InitCfg = None) -> None:
        super().__init__(arch, frozen_stages, norm_eval, with_cp, init_cfg)
        self.in_channels = 3  # the official stem takes RGB
        arch = self.arch_settings
        block_cls = self._BLOCKS[arch['block']]
        expansion = block_cls.expansion
        if not 0 <= drop_path_rate < 1:
            raise ValueError(
                f'drop_path_rate must be in [0, 1), got {drop_path_rate}')
        self.out_indices = tuple(sorted(self._check_out_indices(
            out_indices, 4)))
        self.num_blocks = tuple(arch['num_blocks'])

        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(3, _STEM_WIDTH, 7, 2, 3, bias=False),
                pool=nn.MaxPool2d(3, 2, 1)))
        total = sum(self.num_blocks)
        rates = [
            drop_path_rate * k / max(total - 1, 1) for k in range(total)
        ]
        in_channels, k = _STEM_WIDTH, 0
        self.stage_channels: Tuple[int, ...] = tuple(
            w * expansion for w in _STAGE_WIDTHS)
        for s, (n, m) in enumerate(zip(self.num_blocks, arch['num_msa'])):
            width = _STAGE_WIDTHS[s]
            is_msa = [False] * (n - 2 * m) + [False, True] * m
            blocks = []
            for j, msa in enumerate(is_msa):
                if msa:
                    block = AttentionBlock(
                        in_channels, width, arch['heads'][s],
                        arch['head_dim'], window_size, expansion, rates[k],
                        norm_cfg)
                else:
                    block = block_cls(in_channels, width,
                                      2 if (j == 0 and s > 0) else 1,
                                      rates[k], norm_cfg)
                blocks.append(block)
                in_channels = width * expansion
                k += 1
            self.add_module(f'layer{s + 1}', nn.Sequential(*blocks))
        for i in self.out_indices:
            self.add_module(f'norm{i}',
                            _norm(norm_cfg, self.stage_channels[i]))
        self.out_act = nn.ReLU(inplace=True)
        self._post_init()

    @classmethod
    def _check_arch(cls, arch: dict) -> None:
        if arch['block'] not in cls._BLOCKS:
            raise ValueError(
                f"arch['block'] must be one of {tuple(cls._BLOCKS)}, "
                f"got {arch['block']!r}")
        for key in ('num_blocks', 'num_msa', 'heads'):
            if len(arch[key]) != 4:
                raise ValueError(f"arch['{key}'] needs 4 entries, got "
                                 f'{arch[key]}')
        for n, m in zip(arch['num_blocks'], arch['num_msa']):
            if n < 1 or m < 0 or 2 * m > n:
                raise ValueError(
                    'each stage needs num_blocks >= 1 and 0 <= 2 * '
                    f"num_msa <= num_blocks, got {arch['num_blocks']} / "
                    f"{arch['num_msa']}")

    # ------------------------------------------------------ DenseBackbone
    def init_default_weights(self) -> None:
        """From-scratch init: kaiming-normal (fan-out) convs with zero bias,
        unit/zero norms, truncated-normal relative position tables."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode='fan_out', nonlinearity='relu')
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (_BatchNorm, nn.GroupNorm, nn.LayerNorm)):
                if m.weight is not None:
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
            elif isinstance(m, WindowAttention):
                trunc_normal_(m.pos_embedding, std=.02)

    def convert_checkpoint(self, state_dict: StateDict) -> StateDict:
        return convert_alternet(state_dict)

    @classmethod
    def identify_arch(cls, state_dict: StateDict
                      ) -> Optional[Union[str, dict]]:
        """Block type, blocks and MSA blocks per stage, and heads (read as
        attention width / 64, the official ``head_dim``)."""
        sd = convert_alternet(state_dict)
        if 'stem.conv.weight' not in sd or not any(
                k.startswith('layer1.0.') for k in sd):
            return None
        blocks: List[set] = [set() for _ in range(4)]
        msa: List[set] = [set() for _ in range(4)]
        width: List[Optional[int]] = [None] * 4
        for key, value in sd.items():
            match = re.match(r'layer([1-4])\.(\d+)\.', key)
            if match:
                s, j = int(match.group(1)) - 1, int(match.group(2))
                blocks[s].add(j)
                if key.endswith('.attn.to_q.weight'):
                    msa[s].add(j)
                    width[s] = value.shape[0]
        heads = tuple(
            w // 64 if w is not None and w % 64 == 0 else default
            for w, default in zip(width, cls.arch_defaults['heads']))
        return cls._zoo_name(
            dict(
                block='bottleneck' if 'layer1.0.conv3.2.weight' in sd else
                'basic',
                num_blocks=tuple(len(b) for b in blocks),
                num_msa=tuple(len(m) for m in msa),
                heads=heads))

    def tolerated_missing_keys(self) -> Tuple[str, ...]:
        """The output norms: official checkpoints only have the last one
        (the classifier's BN)."""
        return ('norm[0-3].*', )

    def tolerated_unexpected_keys(self) -> Tuple[str, ...]:
        """Output norms of stages not in ``out_indices`` (e.g. the
        classifier BN, ``norm3``, when stage 3 is not returned)."""
        return tuple(f'norm{i}.*' for i in range(4)
                     if i not in self.out_indices)

    @property
    def num_stages(self) -> int:
        return 4

    def stage_members(self, stage: int) -> List[StageMember]:
        """Stage 0: the stem; stage i: ``layer{i}`` (output norms are never
        frozen)."""
        return [self.stem if stage == 0 else getattr(self, f'layer{stage}')]

    @property
    def num_layers(self) -> int:
        return sum(self.num_blocks) + 2

    def layer_id(self, name: str) -> Optional[int]:
        """The stem is layer 0, the k-th block over the whole network
        (0-based) layer ``k + 1``, the output norms the top."""
        if name.startswith('stem.'):
            return 0
        parts = name.split('.')
        if len(parts) > 2 and parts[0] in ('layer1', 'layer2', 'layer3',
                                           'layer4') and parts[1].isdigit():
            stage = int(parts[0][-1]) - 1
            return sum(self.num_blocks[:stage]) + int(parts[1]) + 1
        return None

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return self._named_outputs([(self.stage_channels[i], 4 * 2**i)
                                    for i in self.out_indices])

    def unused_parameter_names(self) -> Tuple[str, ...]:
        """The stages after the last output (``forward`` stops there)."""
        late = tuple(f'layer{s + 1}.'
                     for s in range(self.out_indices[-1] + 1, 4))
        return tuple(n for n, _ in self.named_parameters()
                     if n.startswith(late)) if late else ()

    # --------------------------------------------------------------- forward
    def _stages(self, x: torch.Tensor, num_stages: int) -> List[torch.Tensor]:
        self.check_input(x)
        x = self.stem(x)
        outs = []
        for s in range(num_stages):
            for block in getattr(self, f'layer{s + 1}'):
                x = self._run_block(block, x)
            outs.append(x)
        return outs

    def forward_stages(self,
                       x: torch.Tensor,
                       num_stages: int = 4) -> List[torch.Tensor]:
        """Raw (pre-activation) outputs of the first ``num_stages`` stages.

        These are the tensors the official model produces after
        ``layer1`` ... ``layer4``.

        Args:
            x (Tensor): ``(B, 3, H, W)`` images.
            num_stages (int): How many stages to run. Defaults to 4.

        Returns:
            list[Tensor]: One map per stage, strides 4, 8, 16, 32.
        """
        return [o.contiguous() for o in self._stages(x, num_stages)]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Normalised, activated maps of the stages in ``out_indices``.

        Args:
            x (Tensor): ``(B, 3, H, W)`` images, any ``H`` and ``W``.

        Returns:
            tuple[Tensor]: ``(B, out_channels[i], ceil(H / s), ceil(W / s))``
            for each ``s`` in ``out_strides``.
        """
        stages = self._stages(x, self.out_indices[-1] + 1)
        return tuple(
            self.out_act(getattr(self, f'norm{i}')(stages[i])).contiguous()
            for i in self.out_indices)
