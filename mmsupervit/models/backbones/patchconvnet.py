"""PatchConvNet (Touvron et al., "Augmenting Convolutional networks with
attention-based aggregation", 2021) as a dense-prediction backbone.

The network is a convolutional stem of stride 16 followed by a column of
identical residual blocks (layer norm over channels, 1x1 conv, depth-wise 3x3
conv, squeeze-excitation, 1x1 conv, layer scale). For classification the
official model pools the column with one class-attention block and a final
layer norm. Dense heads read the column directly: by default the last
block's output with that final norm (the paper's single map, for a pyramid
neck), or, as this project's extension, several depths with new norms. The
pooling block is optional here (``with_attn_pool``) and only used for
:meth:`PatchConvNet.pooled_features` and :meth:`PatchConvNet.attention_map`.

Everything runs on NCHW maps, so inputs of any height and width work (the
official code only accepts square inputs because it turns its token sequence
back into a square map inside every block).
"""
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath, LayerNorm2d, Mlp, trunc_normal_

from mmsupervit.models.utils.checkpoint import StateDict
from mmsupervit.models.utils.init import init_linear_and_norm
from mmsupervit.models.utils.norm import LN_EPS, build_channel_norm
from mmsupervit.registry import MODELS
from .base import DenseBackbone, InitCfg, ShapeSpec, StageMember

# LayerNorm epsilon of every official variant (``partial(nn.LayerNorm,
# eps=1e-6)`` in the official constructors).
_LN_EPS = LN_EPS


class ConvStem(nn.Module):
    """Four 3x3 stride-2 convolutions without bias (stride 16 in total).

    Widths are ``C/8, C/4, C/2, C`` with a GELU between the convolutions and
    none after the last one; no normalisation (as in the official stem).

    Args:
        in_channels (int): Input channels.
        embed_dims (int): Output channels; must be a multiple of 8.
    """

    def __init__(self, in_channels: int, embed_dims: int) -> None:
        super().__init__()
        widths = [in_channels] + [embed_dims // d for d in (8, 4, 2, 1)]
        layers: List[nn.Module] = []
        for i in range(4):
            if i:
                layers.append(nn.GELU())
            layers.append(
                nn.Conv2d(
                    widths[i],
                    widths[i + 1],
                    kernel_size=3,
                    stride=2,
                    padding=1,
                    bias=False))
        # Indices 0, 2, 4, 6 are the convolutions (official ``proj.{i}.0``).
        self.proj = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class SqueezeExcite(nn.Module):
    """The official block's squeeze-excitation (timm 0.3.2's, which the
    official code pins): ``x * sigmoid(conv_expand(relu(conv_reduce(
    mean_hw(x)))))``, reduced to ``make_divisible(C / 4, 1)`` channels.

    timm's public ``timm.layers.SqueezeExcite`` differs (parameters
    ``fc1``/``fc2``, reduced width rounded to a multiple of 8), so the
    official parameter names and width are kept here.

    Args:
        channels (int): Input and output channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        # timm 0.3.2 make_divisible(v, 1): round half up, at least 1, and
        # never below 90% of v.
        reduced = max(1, int(channels / 4 + 0.5))
        reduced += int(reduced < 0.9 * channels / 4)
        self.conv_reduce = nn.Conv2d(channels, reduced, 1)
        self.conv_expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.conv_reduce(x.mean((2, 3), keepdim=True))
        return x * self.conv_expand(F.relu(scale, inplace=True)).sigmoid()


class ConvBlock(nn.Module):
    """One column block: ``x + gamma * branch(LN(x))`` on an NCHW map.

    The branch is ``conv1x1 -> GELU -> dwconv3x3 -> GELU -> SE -> conv1x1``,
    every convolution with bias; the squeeze-excitation
    (:class:`SqueezeExcite`) reduces to ``C / 4`` channels.

    Args:
        embed_dims (int): Channels.
        drop_path (float): Stochastic depth rate of the residual branch.
            Defaults to 0.
        layer_scale_init_value (float): Initial value of ``gamma``.
            Defaults to 1e-4.
    """

    def __init__(self,
                 embed_dims: int,
                 drop_path: float = 0.,
                 layer_scale_init_value: float = 1e-4) -> None:
        super().__init__()
        self.norm = LayerNorm2d(embed_dims, eps=_LN_EPS)
        self.conv1 = nn.Conv2d(embed_dims, embed_dims, kernel_size=1)
        self.act1 = nn.GELU()
        self.dwconv = nn.Conv2d(
            embed_dims, embed_dims, kernel_size=3, padding=1,
            groups=embed_dims)
        self.act2 = nn.GELU()
        self.se = SqueezeExcite(embed_dims)
        self.conv2 = nn.Conv2d(embed_dims, embed_dims, kernel_size=1)
        self.gamma = nn.Parameter(
            torch.full((embed_dims, ), float(layer_scale_init_value)))
        self.drop_path = DropPath(drop_path) if drop_path > 0 \
            else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.conv1(self.norm(x)))
        y = self.se(self.act2(self.dwconv(y)))
        y = self.conv2(y)
        return x + self.drop_path(self.gamma.view(1, -1, 1, 1) * y)


class ClassAttention(nn.Module):
    """Single-query attention of the class token over all tokens.

    Args:
        embed_dims (int): Channels.
        num_heads (int): Heads. Defaults to 1 (every official variant).
    """

    def __init__(self, embed_dims: int, num_heads: int = 1) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} is not divisible by '
                             f'num_heads {num_heads}')
        self.num_heads = num_heads
        self.scale = (embed_dims // num_heads)**-0.5
        self.q = nn.Linear(embed_dims, embed_dims)
        self.k = nn.Linear(embed_dims, embed_dims)
        self.v = nn.Linear(embed_dims, embed_dims)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self,
                tokens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Attend from ``tokens[:, 0]`` to all ``tokens`` (B, N, C).

        Returns:
            tuple[Tensor, Tensor]: The updated query (B, 1, C) and the
            attention weights (B, heads, N).
        """
        B, N, C = tokens.shape
        h = self.num_heads
        q = self.q(tokens[:, :1]).reshape(B, 1, h, C // h).transpose(1, 2)
        k = self.k(tokens).reshape(B, N, h, C // h).transpose(1, 2)
        v = self.v(tokens).reshape(B, N, h, C // h).transpose(1, 2)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(B, 1, C)
        return self.proj(out), attn[:, :, 0]


class AttentionPool(nn.Module):
    """The official class-attention pooling block.

    ``cls = cls + gamma_1 * attn(norm1(cat(cls, x)))``, then
    ``cls = cls + gamma_2 * mlp(norm2(cls))`` (MLP ratio 3). The official
    final layer norm that follows it is :attr:`PatchConvNet.norm`.

    Args:
        embed_dims (int): Channels.
        layer_scale_init_value (float): Initial ``gamma_1``/``gamma_2``.
            Defaults to 1e-4.
        mlp_ratio (float): Hidden width ratio of the MLP. Defaults to 3.
    """

    def __init__(self,
                 embed_dims: int,
                 layer_scale_init_value: float = 1e-4,
                 mlp_ratio: float = 3.) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.norm1 = nn.LayerNorm(embed_dims, eps=_LN_EPS)
        self.attn = ClassAttention(embed_dims)
        self.gamma_1 = nn.Parameter(
            torch.full((embed_dims, ), float(layer_scale_init_value)))
        self.norm2 = nn.LayerNorm(embed_dims, eps=_LN_EPS)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio))
        self.gamma_2 = nn.Parameter(
            torch.full((embed_dims, ), float(layer_scale_init_value)))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Pool a column map (B, C, H, W).

        Returns:
            tuple[Tensor, Tensor]: The class token after the block, before
            the final norm (B, 1, C), and the attention weights of the class
            query over ``[cls] + patches`` in row-major order
            (B, heads, 1 + H*W).
        """
        patches = x.flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        attn_out, weights = self.attn(
            self.norm1(torch.cat((cls, patches), dim=1)))
        cls = cls + self.gamma_1 * attn_out
        cls = cls + self.gamma_2 * self.mlp(self.norm2(cls))
        return cls, weights


_ATTN_POOL_PREFIX = 'attn_pool.'


# Official column-block key prefixes -> ours (``blocks.<i>.<prefix>...``).
_BLOCK_KEYS = {
    'norm1.': 'norm.',
    'gamma_1': 'gamma',
    'attn.qkv_pos.0.': 'conv1.',
    'attn.qkv_pos.2.': 'dwconv.',
    'attn.qkv_pos.4.': 'se.',
    'attn.qkv_pos.5.': 'conv2.',
}
_BLOCK_RE = re.compile(r'^blocks\.(\d+)\.(.*)$')


def _rename_block_key(key: str, prefixes: Dict[str, str]) -> str:
    """``blocks.<i>.<old>rest`` -> ``blocks.<i>.<new>rest`` for the first
    ``old`` of ``prefixes`` that matches; any other key unchanged."""
    match = _BLOCK_RE.match(key)
    if match:
        rest = match.group(2)
        for old, new in prefixes.items():
            if rest.startswith(old):
                return f'blocks.{match.group(1)}.{new}{rest[len(old):]}'
    return key


def convert_patchconvnet(state_dict: StateDict,
                         with_attn_pool: bool = False,
                         with_norm: bool = True) -> StateDict:
    """Convert an official PatchConvNet state dict to this backbone's keys.

    The classification ``head`` is dropped. The class-attention pooling
    weights (``cls_token``, ``blocks_token_only.0.*``) go to ``attn_pool.*``
    when ``with_attn_pool`` is True and are dropped otherwise. The official
    final layer norm ``norm.*`` keeps its name when ``with_norm`` is True and
    is dropped otherwise. Keys already in our layout pass through unchanged
    (so converting twice is harmless), as do unknown keys (the loader
    reports them).

    Args:
        state_dict (dict): Official (``patchconvnet_models.py``) or already
            converted weights, unwrapped.
        with_attn_pool (bool): Keep the pooling block. Defaults to False.
        with_norm (bool): Keep the final norm. Defaults to True.

    Returns:
        dict: Weights for :class:`PatchConvNet`.
    """
    stem_re = re.compile(r'^patch_embed\.proj\.(\d+)\.0\.(.*)$')
    out: StateDict = {}
    for key, value in state_dict.items():
        new_key: Optional[str] = key
        if key.startswith('head.'):
            new_key = None
        elif key == 'cls_token':
            new_key = _ATTN_POOL_PREFIX + key
        elif key.startswith('blocks_token_only.0.'):
            new_key = _ATTN_POOL_PREFIX + key[len('blocks_token_only.0.'):]
        elif key.startswith('norm.') and not with_norm:
            new_key = None
        elif stem_re.match(key):
            new_key = stem_re.sub(r'patch_embed.proj.\1.\2', key)
        else:
            new_key = _rename_block_key(key, _BLOCK_KEYS)
        if new_key is None or (new_key.startswith(_ATTN_POOL_PREFIX)
                               and not with_attn_pool):
            continue
        out[new_key] = value
    return out


def patchconvnet_to_official(state_dict: StateDict) -> StateDict:
    """The inverse of :func:`convert_patchconvnet` for the backbone's keys.

    ``attn_pool.cls_token`` and ``attn_pool.*`` become ``cls_token`` and
    ``blocks_token_only.0.*``; the ``multi_depth`` output norms
    (``out_norms.*``) have no official counterpart and are dropped. The
    official linear head is not in a backbone's state dict (see
    :func:`mmsupervit.models.classification.classifier_to_official`).

    Args:
        state_dict (dict): Keys of :class:`PatchConvNet`.

    Returns:
        dict: Official keys (``patchconvnet_models.py``).
    """
    official_keys = {ours: official for official, ours in _BLOCK_KEYS.items()}
    stem_re = re.compile(r'^patch_embed\.proj\.(\d+)\.(.*)$')
    out: StateDict = {}
    for key, value in state_dict.items():
        if key.startswith('out_norms.'):
            continue
        if key == _ATTN_POOL_PREFIX + 'cls_token':
            key = 'cls_token'
        elif key.startswith(_ATTN_POOL_PREFIX):
            key = 'blocks_token_only.0.' + key[len(_ATTN_POOL_PREFIX):]
        elif stem_re.match(key):
            key = stem_re.sub(r'patch_embed.proj.\1.0.\2', key)
        else:
            key = _rename_block_key(key, official_keys)
        out[key] = value
    return out


@MODELS.register_module()
class PatchConvNet(DenseBackbone):
    """PatchConvNet backbone returning same-stride (16) maps from its column.

    Two ways to read the column:

    * Default, the paper's: the output of the last column block only,
      normalised by the official final layer norm :attr:`norm` (in the
      official model that norm is applied to ``cat(cls, patches)`` after
      the class-attention block, which only updates the class token, so its
      patch rows are exactly the last block's output, normalised per
      position). With official weights nothing is randomly initialised.
      A pyramid neck builds the four levels from this one map, e.g.
      :class:`~mmsupervit.models.necks.SimplePyramidNeck`.
    * ``multi_depth=True``, **this project's extension** (not in the paper):
      four evenly spaced depths, each with a new output norm (``norm_cfg``,
      randomly initialised, trained with the dense task), for a neck that
      resamples one map per level (XCiT's recipe, which the authors point to
      in facebookresearch/deit issue #138), e.g.
      :class:`~mmsupervit.models.necks.ColumnPyramidNeck`.

    Inputs of any size at least 16x16 are padded with zeros at the right and
    bottom to a multiple of 16, so an H x W input gives
    ``ceil(H/16) x ceil(W/16)`` maps that cover the *padded* input (the last
    row/column of cells may include padding). Numerically this is the
    official model wherever the official model runs (square inputs with a
    side that is a multiple of 16).

    Official weights load as published, e.g.
    ``init_cfg=dict(type='Pretrained',
    checkpoint='https://dl.fbaipublicfiles.com/deit/s60_224_1k.pth')``
    (``{'model': ...}``, ``{'state_dict': ...}`` or bare dicts; an optional
    ``prefix`` selects a sub-module of a bigger checkpoint). The conversion
    is :func:`convert_patchconvnet`. Official checkpoints have no
    ``multi_depth`` output norms, so ``out_norms.*`` are reported as missing
    keys and keep their initialisation (weight 1, bias 0 for layer norms).

    Visualisation: with ``with_attn_pool=True`` and official weights,
    :meth:`attention_map` returns where the official class-attention pooling
    looks (one weight per 16x16 patch) and :meth:`pooled_features` the
    official image embedding (the input of the dropped classifier).

    Args:
        arch (str | dict): ``'S60'``, ``'S120'``, ``'B60'``, ``'B120'``,
            ``'L60'`` or ``'L120'`` (case-insensitive), or a dict with
            ``embed_dims`` (a multiple of 8), ``depth`` and optionally
            ``layer_scale_init_value`` (defaults to 1e-6). Defaults to
            ``'S60'``.
        in_channels (int): Input channels. Defaults to 3.
        out_indices (Sequence[int], optional): Column blocks whose outputs
            are returned (negative values count from the end). Defaults to
            None: ``(-1, )`` (the last block), or with ``multi_depth`` four
            evenly spaced depths ending at the last block, e.g.
            ``(14, 29, 44, 59)`` for depth 60.
        multi_depth (bool): This project's multi-depth extension: four
            default taps and a new norm per output. Defaults to False.
        out_norm (bool): Normalise the outputs: without ``multi_depth`` the
            last block's output gets the official final norm and other
            blocks' outputs stay as they are (the official model has no norm
            there); with ``multi_depth`` every output gets a new
            ``norm_cfg`` norm. Defaults to True.
        norm_cfg (dict, optional): The ``multi_depth`` output norms.
            ``LN``/``LN2d`` mean a layer norm over channels; other types are
            built by mmcv. Only valid with ``multi_depth=True``. Defaults to
            None: ``dict(type='LN2d', eps=1e-6)``.
        drop_path_rate (float): Stochastic depth rate. As in the official
            code (``dpr_constant=True``) every block gets this same rate
            (no linear ramp). Defaults to 0.
        frozen_stages (int): -1 freezes nothing, 0 the stem, ``i > 0`` the
            stem and column blocks ``0 .. i-1`` (eval mode, no gradients);
            freezing every block also freezes the final norm. Defaults to -1.
        norm_eval (bool): Keep batch-norm layers (only possible in the
            ``multi_depth`` output norms) in eval mode during training.
            Defaults to False.
        with_cp (bool): Gradient checkpointing per column block (saves
            activation memory, costs one more forward). Defaults to False.
        with_attn_pool (bool): Build the official class-attention pooling
            block (needed by :meth:`pooled_features` and
            :meth:`attention_map`, not by :meth:`forward`). Defaults to False.
        out_type (str): ``'featmap'``: the maps above. ``'cls_token'``: the
            official classifier's image embedding, :meth:`pooled_features`
            (class-attention pooling of the last block's output, then the
            final norm) as one (B, embed_dims) tensor in a tuple, the input
            of the official linear head (for mmpretrain's
            ``LinearClsHead``). Needs ``with_attn_pool=True``, and the
            pooling block is then required in a ``Pretrained`` checkpoint;
            ``out_indices``, ``multi_depth`` and ``out_norm`` do not apply.
            Defaults to ``'featmap'``.
        init_cfg (dict | list[dict], optional): Initialisation config; a
            ``Pretrained`` entry (alone or in a list, with an optional
            ``prefix``) loads an official or converted checkpoint. It must
            hold every column weight (the output norms and the pooling block
            may be missing, with a warning) unless the entry says
            ``strict=False`` or ``min_loaded=<fraction>``. Defaults to None.
    """

    arch_zoo = {
        's60': dict(embed_dims=384, depth=60, layer_scale_init_value=1e-4),
        's120': dict(embed_dims=384, depth=120, layer_scale_init_value=1e-6),
        'b60': dict(embed_dims=768, depth=60, layer_scale_init_value=1e-6),
        'b120': dict(embed_dims=768, depth=120, layer_scale_init_value=1e-6),
        'l60': dict(embed_dims=1024, depth=60, layer_scale_init_value=1e-6),
        'l120': dict(embed_dims=1024, depth=120,
                     layer_scale_init_value=1e-6),
    }
    arch_required_keys = ('embed_dims', 'depth')
    arch_defaults = dict(layer_scale_init_value=1e-6)
    patch_size = 16
    min_input_size = patch_size
    no_weight_decay_keywords = ('gamma', 'cls_token')
    out_types = ('featmap', 'cls_token')

    def __init__(self,
                 arch: Union[str, dict] = 'S60',
                 in_channels: int = 3,
                 out_indices: Optional[Sequence[int]] = None,
                 multi_depth: bool = False,
                 out_norm: bool = True,
                 norm_cfg: Optional[dict] = None,
                 drop_path_rate: float = 0.,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 with_attn_pool: bool = False,
                 out_type: str = 'featmap',
                 init_cfg: InitCfg = None) -> None:
        super().__init__(arch, frozen_stages, norm_eval, with_cp, init_cfg)
        self.in_channels = in_channels
        embed_dims = self.embed_dims = self.arch_settings['embed_dims']
        depth = self.depth = self.arch_settings['depth']
        ls_init = self.arch_settings['layer_scale_init_value']
        self.out_type = self._check_out_type(out_type)
        if out_type == 'cls_token' and (
                not with_attn_pool or out_indices is not None
                or multi_depth or not out_norm):
            raise ValueError(
                "out_type='cls_token' is the official classifier's pooled "
                'embedding: it needs with_attn_pool=True and the defaults of '
                'out_indices, multi_depth and out_norm')
        if out_indices is None:
            out_indices = self._evenly_spaced(depth) if multi_depth else (-1, )
        self.out_indices = self._check_out_indices(out_indices, depth)
        if norm_cfg is not None and not (multi_depth and out_norm):
            raise ValueError(
                'norm_cfg configures the output norms of multi_depth=True '
                '(with out_norm=True); the default path uses the official '
                'final LayerNorm, so leave norm_cfg unset there')
        if drop_path_rate < 0 or drop_path_rate >= 1:
            raise ValueError(
                f'drop_path_rate must be in [0, 1), got {drop_path_rate}')
        self.multi_depth = multi_depth
        self.out_norm = out_norm
        self.with_attn_pool = with_attn_pool
        self.drop_path_rate = drop_path_rate

        self.patch_embed = ConvStem(in_channels, embed_dims)
        self.blocks = nn.ModuleList([
            ConvBlock(embed_dims, drop_path_rate, ls_init)
            for _ in range(depth)
        ])
        self.out_norms: Optional[nn.ModuleList] = None
        if multi_depth and out_norm:
            norm_cfg = norm_cfg or dict(type='LN2d', eps=_LN_EPS)
            self.out_norms = nn.ModuleList([
                build_channel_norm(norm_cfg, embed_dims)
                for _ in self.out_indices
            ])
        # The official final norm: it normalises the last block's output in
        # forward (default path) and the class token in pooled_features.
        self.final_norm_in_forward = (not multi_depth and out_norm
                                      and depth - 1 in self.out_indices)
        self.norm: Optional[nn.LayerNorm] = None
        if self.final_norm_in_forward or with_attn_pool:
            self.norm = nn.LayerNorm(embed_dims, eps=_LN_EPS)
        self.attn_pool = AttentionPool(embed_dims, ls_init) \
            if with_attn_pool else None
        self._post_init()

    @classmethod
    def _check_arch(cls, arch: dict) -> None:
        if arch['embed_dims'] <= 0 or arch['embed_dims'] % 8:
            raise ValueError('embed_dims must be a positive multiple of 8 '
                             f"(stem widths C/8..C), got {arch['embed_dims']}")
        if arch['depth'] <= 0:
            raise ValueError(f"depth must be positive, got {arch['depth']}")

    # ------------------------------------------------------------------
    # DenseBackbone hooks
    # ------------------------------------------------------------------
    def init_default_weights(self) -> None:
        """The official initialisation: linear layers and the class token
        truncated normal (std 0.02), zero bias; layer norms 1/0;
        convolutions keep PyTorch's default."""
        init_linear_and_norm(self)
        if self.attn_pool is not None:
            trunc_normal_(self.attn_pool.cls_token, std=.02)

    def convert_checkpoint(self, state_dict: StateDict) -> StateDict:
        return convert_patchconvnet(
            state_dict,
            with_attn_pool=self.with_attn_pool,
            with_norm=self.norm is not None)

    @classmethod
    def identify_arch(cls, state_dict: StateDict
                      ) -> Optional[Union[str, dict]]:
        """Width and depth of the column from the keys."""
        sd = convert_patchconvnet(state_dict)
        if not {'patch_embed.proj.0.weight', 'blocks.0.dwconv.weight',
                'blocks.0.gamma'} <= set(sd):
            return None
        return cls._zoo_name(
            dict(
                embed_dims=sd['blocks.0.gamma'].shape[0],
                depth=1 + max(
                    int(k.split('.')[1]) for k in sd
                    if re.match(r'blocks\.\d+\.', k))))

    def tolerated_missing_keys(self) -> Tuple[str, ...]:
        """The output norms (ours, not in official checkpoints) and the
        pooling block (visualisation only), unless ``forward`` returns
        the pooled embedding (``out_type='cls_token'``)."""
        if self.out_type == 'cls_token':
            return ('out_norms.*', )
        return ('out_norms.*', 'attn_pool.*')

    @property
    def num_stages(self) -> int:
        return self.arch_settings['depth']

    def stage_members(self, stage: int) -> List[StageMember]:
        """Stage 0: the stem; stage i: column block i - 1; the last stage
        also holds the final norm (it normalises that block's output)."""
        if stage == 0:
            return [self.patch_embed]
        members: List[StageMember] = [self.blocks[stage - 1]]
        if stage == self.depth and self.norm is not None:
            members.append(self.norm)
        return members

    @property
    def num_layers(self) -> int:
        return self.depth + 2

    def layer_id(self, name: str) -> Optional[int]:
        """The stem is layer 0, column block ``i`` layer ``i + 1``; the
        final norm, output norms and the pooling block the top."""
        if name.startswith('patch_embed.'):
            return 0
        if name.startswith('blocks.'):
            return int(name.split('.')[1]) + 1
        return None

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return self._named_outputs(
            [(self.embed_dims, self.patch_size)] * len(self.out_indices))

    def unused_parameter_names(self) -> Tuple[str, ...]:
        """The pooling block (visualisation only), the column blocks after
        the last output and the final norm when forward does not apply it;
        none with ``out_type='cls_token'``."""
        if self.out_type == 'cls_token':
            return ()
        unused = ['attn_pool.'] + [
            f'blocks.{i}.'
            for i in range(max(self.out_indices) + 1, self.depth)
        ]
        if not self.final_norm_in_forward:
            unused.append('norm.')
        return tuple(n for n, _ in self.named_parameters()
                     if n.startswith(tuple(unused)))

    # ------------------------------------------------------------------
    # forward
    # ------------------------------------------------------------------
    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        H, W = x.shape[-2:]
        pad_h = -H % self.patch_size
        pad_w = -W % self.patch_size
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        return x

    def forward_column(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Stem and column without any norm after them.

        Args:
            x (Tensor): Images (B, in_channels, H, W), H and W >= 16.

        Returns:
            list[Tensor]: The stem output followed by the output of every
            column block, each (B, C, ceil(H/16), ceil(W/16)).
        """
        x = self.patch_embed(self._pad(x))
        feats = [x]
        for block in self.blocks:
            x = self._run_block(block, x)
            feats.append(x)
        return feats

    def _last_map(self, x: torch.Tensor) -> torch.Tensor:
        """The output of the last column block (no norm)."""
        x = self.patch_embed(self._pad(x))
        for block in self.blocks:
            x = self._run_block(block, x)
        return x

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Column maps at ``out_indices``.

        Args:
            x (Tensor): Images (B, in_channels, H, W), H and W >= 16.

        Returns:
            tuple[Tensor]: One (B, C, ceil(H/16), ceil(W/16)) map per entry
            of ``out_indices`` (see ``out_norm`` for the norms); with
            ``out_type='cls_token'`` one (B, C) tensor,
            :meth:`pooled_features`.
        """
        if self.out_type == 'cls_token':
            return (self.pooled_features(x), )
        x = self.patch_embed(self._pad(x))
        wanted = set(self.out_indices)
        feats: Dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.blocks[:max(wanted) + 1]):
            x = self._run_block(block, x)
            if i in wanted:
                feats[i] = x
        outs = []
        for k, i in enumerate(self.out_indices):
            feat = feats[i]
            if self.out_norms is not None:
                feat = self.out_norms[k](feat)
            elif self.final_norm_in_forward and i == self.depth - 1:
                feat = self._final_norm(feat)
            outs.append(feat)
        return tuple(outs)

    def _final_norm(self, x: torch.Tensor) -> torch.Tensor:
        """The official final layer norm on a (B, C, H, W) map."""
        assert self.norm is not None
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def _check_attn_pool(self) -> AttentionPool:
        if self.attn_pool is None:
            raise RuntimeError(
                'this PatchConvNet was built without the attention-pooling '
                'block; build it with with_attn_pool=True and load official '
                'weights')
        return self.attn_pool

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """The official image embedding: the normalised class token.

        This is the input of the official classification head.

        Args:
            x (Tensor): Images (B, in_channels, H, W).

        Returns:
            Tensor: (B, C).
        """
        pool = self._check_attn_pool()
        cls, _ = pool(self._last_map(x))
        assert self.norm is not None  # built with the pooling block
        return self.norm(cls)[:, 0]

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """Where the pooling block looks: its class-query attention per patch.

        Runs the whole column and the class-attention block and returns the
        softmax weights of its single head from the class query to every
        patch (the weight on the class token itself is left out, so each map
        sums to one minus that weight). Cells map to 16x16 pixel patches of
        the zero-padded input. Only meaningful with pretrained weights, and
        requires ``with_attn_pool=True``.

        Args:
            x (Tensor): Images (B, in_channels, H, W), H and W >= 16.

        Returns:
            Tensor: (B, ceil(H/16), ceil(W/16)) attention weights.
        """
        pool = self._check_attn_pool()
        feat = self._last_map(x)
        _, weights = pool(feat)
        B, _, h, w = feat.shape
        # Mean over heads (the official model has one head).
        return weights[:, :, 1:].mean(dim=1).reshape(B, h, w)
