"""SuperViT (DeiT-S and LV-ViT-S trunks) as a dense-prediction backbone.

SuperViT (Lin et al., "Super Vision Transformer") trains one ViT to work at
several input sizes (128/160/192/224 px, one learned position table each) and
several token keeping rates (tokens pruned inside blocks 3, 6 and 9 by the
class token's attention). This module re-implements both official variants
(``super_deit_s`` and ``super_lvvit_s``) so that

* the official checkpoints load as they are (:func:`convert_supervit`),
* :meth:`SuperViT.forward_tokens` reproduces the official token sequences,
  including the kept-token order after pruning, and
* :meth:`SuperViT.forward` turns the trunk into a backbone for mmseg/mmdet:
  any input size, full dense stride-16 maps even when tokens are pruned (a
  pruned token keeps the value it had when it was pruned and is put back at
  its grid position), and an input-scale option that maps the multi-size
  training to dense inputs.
"""
import math
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from timm.layers import DropPath, Mlp, resample_abs_pos_embed, trunc_normal_

from mmsupervit.models.utils.checkpoint import CheckpointError, StateDict
from mmsupervit.models.utils.init import init_linear_and_norm
from mmsupervit.registry import MODELS
from .base import DenseBackbone, InitCfg, ShapeSpec, StageMember

#: Trained input sizes of the official models, one position table each
#: (``pos_embed_list.{0..3}``).
POS_EMBED_SIZES: Tuple[int, ...] = (128, 160, 192, 224)

#: Blocks that prune tokens. Hard-coded in the official forward (independent
#: of depth, so the 16-block LV-ViT-S also prunes only there).
PRUNE_BLOCKS: Tuple[int, ...] = (3, 6, 9)

#: Key prefixes of official checkpoints that the backbone does not use.
_DROPPED_PREFIXES = ('head.', 'aux_head.', 'pre_logits.')


#: Official variants (``super_deit_s``, ``super_lvvit_s``).
_DEIT_S = dict(
    embed_dims=384,
    depth=12,
    num_heads=6,
    mlp_ratio=4.,
    qkv_bias=True,
    norm_eps=1e-6,
    skip_lam=1.,
    scale_q=False,
    stem='patch',
    stem_channels=64)
_LVVIT_S = dict(
    embed_dims=384,
    depth=16,
    num_heads=6,
    mlp_ratio=3.,
    qkv_bias=False,
    norm_eps=1e-5,
    skip_lam=2.,
    scale_q=True,
    stem='conv',
    stem_channels=64)


def _tables_from_pos_embed(pos_embed: torch.Tensor,
                           patch_size: int = 16) -> StateDict:
    """``pos_embed_list.{0..3}`` from a plain ViT's single position table.

    This is our choice, not the official code's: the official SuperViT is
    trained from scratch, and its leftover DeiT ``--finetune`` branch reads a
    ``pos_embed`` this model does not have. Fine-tuning from the common
    ImageNet checkpoints (DeiT, LV-ViT) needs every trained-size table
    filled, so each one is the checkpoint's table resampled to that size's
    grid with timm's ``resample_abs_pos_embed`` and its defaults (bicubic,
    antialiased, class-token entry kept), the convention timm uses to load
    a ViT at another image size and the one :meth:`SuperViT._pos_embed` uses
    at run time. (DeiT's own fine-tuning code resizes with plain bicubic,
    ``align_corners=False``, without antialiasing, which gives slightly
    different values.) A table whose grid equals the checkpoint's (224 px
    for a 224 px checkpoint) is the checkpoint's, unchanged.

    Args:
        pos_embed (Tensor): (1, 1 + n * n, C): class token, then an n x n
            grid.
        patch_size (int): Patch size of the model. Defaults to 16.

    Returns:
        dict: ``{'pos_embed_list.i': (1, 1 + (s // patch_size) ** 2, C)}``
        for the sizes ``s`` of :data:`POS_EMBED_SIZES`.

    Raises:
        CheckpointError: If the table is not one class token plus a square
            grid (e.g. a distilled DeiT with two prefix tokens).
    """
    shape = tuple(pos_embed.shape)
    side = math.isqrt(shape[1] - 1) if len(shape) == 3 and shape[1] > 1 \
        else 0
    if len(shape) != 3 or shape[0] != 1 or side * side != shape[1] - 1:
        raise CheckpointError(
            f"'pos_embed' has shape {shape}; expected (1, 1 + n * n, C): "
            'one class token and a square grid, as in DeiT and LV-ViT')
    return {
        f'pos_embed_list.{i}': resample_abs_pos_embed(
            pos_embed,
            new_size=[size // patch_size] * 2,
            old_size=[side, side],
            num_prefix_tokens=1)
        for i, size in enumerate(POS_EMBED_SIZES)
    }


def convert_supervit(state_dict: StateDict) -> StateDict:
    """Convert an official SuperViT (or plain DeiT / LV-ViT) state dict to
    this backbone's keys.

    The backbone keeps the official parameter names (``cls_token``,
    ``pos_embed_list.{0..3}``, ``patch_embed.*``, ``blocks.i.*``, ``norm.*``),
    so the conversion strips a ``module.`` (DataParallel) prefix and drops
    the classification heads (``head``, LV-ViT's ``aux_head``). A plain ViT
    checkpoint of the same layout with a single ``pos_embed`` (timm/DeiT
    ``deit_small_patch16_224``, LV-ViT ``lvvit_s``) gets every
    ``pos_embed_list`` table from it, resampled to each trained size (see
    :func:`_tables_from_pos_embed`: our choice, the official code has none).
    The conversion is idempotent: an already converted state dict comes back
    unchanged.

    Args:
        state_dict (dict): Official weights (``checkpoint['model']`` for
            DeiT, ``checkpoint['state_dict_ema']``/``['state_dict']`` for
            LV-ViT) or already converted ones.

    Returns:
        dict: The weights under this backbone's key names.

    Raises:
        CheckpointError: If the state dict has both ``pos_embed`` and
            ``pos_embed_list`` tables, or a ``pos_embed`` that is not one
            class token plus a square grid.
    """
    if state_dict and all(k.startswith('module.') for k in state_dict):
        state_dict = {k[len('module.'):]: v for k, v in state_dict.items()}
    converted = {
        k: v
        for k, v in state_dict.items()
        if not k.startswith(_DROPPED_PREFIXES) and k != 'pos_embed'
    }
    if 'pos_embed' in state_dict:
        tables = sorted(k for k in state_dict
                        if k.startswith('pos_embed_list.'))
        if tables:
            raise CheckpointError(
                f"the state dict has both 'pos_embed' and {tables}: it is "
                'neither a plain ViT nor a SuperViT checkpoint')
        converted.update(_tables_from_pos_embed(state_dict['pos_embed']))
    return converted


class SuperViTAttention(nn.Module):
    """Multi-head self-attention that can also return the class token's
    head-averaged attention row (the pruning score).

    Args:
        embed_dims (int): Token width.
        num_heads (int): Number of heads.
        qkv_bias (bool): Bias in the qkv projection.
        scale_q (bool): Apply the ``head_dim ** -0.5`` scale to ``q`` before
            the product (LV-ViT) instead of to the product (DeiT). Only the
            order of floating-point operations differs.
    """

    def __init__(self, embed_dims: int, num_heads: int, qkv_bias: bool,
                 scale_q: bool) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} is not divisible by '
                             f'num_heads {num_heads}')
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.scale = self.head_dims**-0.5
        self.scale_q = scale_q
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x: torch.Tensor, with_cls_score: bool = False
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Attend.

        Args:
            x (Tensor): (B, N, C) tokens, class token first.
            with_cls_score (bool): Also return the pruning score.
                Defaults to False.

        Returns:
            tuple: The attention output (B, N, C) and, if asked, the
            softmax attention of the class query over the patch keys averaged
            over heads (B, N - 1); otherwise None.
        """
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads,
                                  self.head_dims).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        out = self.proj(out.transpose(1, 2).reshape(B, N, C))
        score = None
        if with_cls_score:
            # Only the class query's row is needed: O(N) instead of the
            # O(N^2) attention matrix. The operation order follows the
            # official code so the kept set and order reproduce exactly.
            q_cls = q[:, :, :1]
            if self.scale_q:
                logits = (q_cls * self.scale) @ k.transpose(-2, -1)
            else:
                logits = (q_cls @ k.transpose(-2, -1)) * self.scale
            score = logits.softmax(dim=-1).mean(dim=1)[:, 0, 1:]
        return out, score


class SuperViTBlock(nn.Module):
    """Pre-norm transformer block with optional token pruning after the
    attention (official SuperViT order: attention, prune, MLP).

    Args:
        embed_dims (int): Token width.
        num_heads (int): Number of attention heads.
        mlp_ratio (float): MLP hidden width / ``embed_dims``.
        qkv_bias (bool): Bias in the qkv projection.
        norm_eps (float): LayerNorm epsilon.
        skip_lam (float): Residual branches are divided by it (LV-ViT: 2).
        scale_q (bool): See :class:`SuperViTAttention`.
        drop_path (float): Stochastic depth rate. Defaults to 0.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 mlp_ratio: float,
                 qkv_bias: bool,
                 norm_eps: float,
                 skip_lam: float,
                 scale_q: bool,
                 drop_path: float = 0.) -> None:
        super().__init__()
        self.skip_lam = skip_lam
        self.norm1 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.attn = SuperViTAttention(embed_dims, num_heads, qkv_bias,
                                      scale_q)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else \
            nn.Identity()
        self.norm2 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio))

    def forward(
        self,
        x: torch.Tensor,
        keep_rate: float = 1.0
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Run the block.

        Args:
            x (Tensor): (B, N, C) tokens, class token first.
            keep_rate (float): Prune to ``1 + ceil(keep_rate * N)`` tokens
                when < 1. Defaults to 1.0 (no pruning).

        Returns:
            tuple: ``(out, keep_index, x_at_prune)``. ``keep_index`` (B, N')
            indexes the block's input sequence (column 0 is the class token,
            then descending score) and ``x_at_prune`` (B, N, C) is the whole
            sequence at the moment of pruning (after the attention
            residual); both are None when nothing is pruned.
        """
        prune = keep_rate < 1
        attn_out, score = self.attn(self.norm1(x), with_cls_score=prune)
        x = x + self._residual(attn_out)
        keep_index = x_at_prune = None
        if prune:
            B, N, C = (int(v) for v in x.shape)
            # N includes the class token, as in the official code.
            num_keep = min(math.ceil(keep_rate * N), N - 1)
            order = torch.argsort(score, dim=1, descending=True)[:, :num_keep]
            keep_index = torch.cat(
                [order.new_zeros(B, 1), order + 1], dim=1)
            x_at_prune = x
            x = torch.gather(x, 1,
                             keep_index.unsqueeze(-1).expand(-1, -1, C))
        x = x + self._residual(self.mlp(self.norm2(x)))
        return x, keep_index, x_at_prune

    def _residual(self, branch: torch.Tensor) -> torch.Tensor:
        """Drop path, then LV-ViT's division by ``skip_lam``. DeiT's
        ``skip_lam`` is 1 and x / 1 is exact, so the division (a full pass
        over the tokens, twice per block) is skipped there."""
        branch = self.drop_path(branch)
        return branch if self.skip_lam == 1 else branch / self.skip_lam


class _PatchEmbed(nn.Module):
    """DeiT patch embedding: one conv with kernel = stride = patch size."""

    def __init__(self, in_channels: int, embed_dims: int,
                 patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(
            in_channels, embed_dims, kernel_size=patch_size,
            stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class _ConvStemPatchEmbed(nn.Module):
    """LV-ViT ``PatchEmbed4_2`` stem: conv7x7/2 - BN - ReLU - (conv3x3 - BN -
    ReLU) x 2 - conv(patch/2, stride patch/2); total stride = patch size."""

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int,
                 stem_channels: int, norm_cfg: dict) -> None:
        super().__init__()
        c = stem_channels
        self.conv1 = nn.Conv2d(in_channels, c, 7, 2, 3, bias=False)
        self.bn1 = build_norm_layer(norm_cfg, c)[1]
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = build_norm_layer(norm_cfg, c)[1]
        self.conv3 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn3 = build_norm_layer(norm_cfg, c)[1]
        self.proj = nn.Conv2d(
            c, embed_dims, kernel_size=patch_size // 2,
            stride=patch_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.relu(self.bn3(self.conv3(x)))
        return self.proj(x)


@MODELS.register_module()
class SuperViT(DenseBackbone):
    """SuperViT backbone (official ``super_deit_s`` / ``super_lvvit_s``).

    A plain ViT column: every output is an NCHW map at stride 16 with
    ``embed_dims`` channels (declared by :meth:`output_shape`); a neck turns
    them into a pyramid.

    **Any input size.** H and W need not be square or multiples of 16: the
    input is zero-padded at the right/bottom to a multiple of 16, so the
    output maps have ``ceil(H / 16) x ceil(W / 16)`` pixels and cover the
    *padded* input: output pixel ``(i, j)`` corresponds to input region
    ``[16i, 16i + 16) x [16j, 16j + 16)``. The position table trained at
    ``pos_embed_size`` is resampled (bicubic, timm's
    ``resample_abs_pos_embed``) to the feature grid. Padding patches are
    ordinary tokens (they attend and can be kept or pruned), as in mmseg's
    ViT.

    **Token keeping** (``keep_rate`` < 1). Blocks 3, 6 and 9 prune tokens
    exactly like the official model: after the attention and before the MLP,
    ``ceil(keep_rate * N)`` patch tokens (N counts the class token) with the
    highest head-averaged class-token attention are kept, ordered by
    descending score. Pruned tokens are not lost: each keeps the value it had
    at the moment it was pruned (after that block's attention residual) and
    is scattered back to its grid position whenever an output map is formed,
    so every output is a full dense map while the blocks after a pruning
    point only process the kept tokens. ``keep_rate=1.0`` is exactly the
    unpruned network.

    **Input scale** (``input_scale`` != 1). The trunk runs on the input
    resized by ``input_scale`` (bilinear with ``align_corners=True``, as the
    official model resizes its input to a trained size). Its position table
    is the one trained at ``224 * input_scale`` when that is a trained size
    (scales 128/224, 160/224, 192/224 and 1 select the 128/160/192/224 px
    tables), otherwise the ``pos_embed_size`` table (e.g. for 0.5 or 0.75),
    resampled to the grid. The maps are then bilinearly resampled to the
    stride-16 grid of the original padded input, each cell read where the
    resized input shows its centre (:meth:`_to_nominal_grid`), so heads and
    anchors see the nominal stride and the same map sizes as at scale 1.

    Budgets are plain config values, so one model serves several budgets at
    test time, e.g. ``--cfg-options model.backbone.keep_rate=0.7``. With
    ``train_keep_rates`` / ``train_input_scales`` a budget is sampled per
    forward pass in training mode.

    Args:
        arch (str | dict): ``'deit-s'`` or ``'lvvit-s'``, or a dict with
            ``embed_dims``, ``depth``, ``num_heads`` (the other settings of
            ``deit-s`` stay), or ``base=<name>`` and the settings that differ
            from it: ``mlp_ratio``, ``qkv_bias``, ``norm_eps``,
            ``skip_lam``, ``scale_q``, ``stem`` (``'patch'`` or ``'conv'``),
            ``stem_channels``. Defaults to ``'deit-s'``.
        in_channels (int): Input channels. Defaults to 3.
        out_indices (Sequence[int], optional): Blocks whose outputs are
            returned. Defaults to None (four evenly spaced blocks, e.g.
            (2, 5, 8, 11) for depth 12 and (3, 7, 11, 15) for depth 16).
        final_norm (bool): Apply the final LayerNorm to the output of the
            last block, as the official model applies ``norm`` after its last
            block. It only takes effect when the last block is in
            ``out_indices`` (wherever it is listed); the outputs of earlier
            blocks are never normalised. Defaults to True.
        keep_rate (float): Token keeping rate in (0, 1]. Defaults to 1.0.
        input_scale (float): Trunk input scale in (0, 4]. Defaults to 1.0.
        pos_embed_size (int): Trained size (128/160/192/224) whose position
            table is used. Defaults to 224.
        train_keep_rates (Sequence[float], optional): Sample the keep rate
            from these per forward in training mode. Defaults to None (off).
        train_input_scales (Sequence[float], optional): Same for the input
            scale. Defaults to None (off).
        drop_path_rate (float): Stochastic depth rate of the last block
            (linear rule from 0). Defaults to 0.
        frozen_stages (int): -1 freezes nothing; 0 freezes the patch
            embedding, position tables and class token; i > 0 also freezes
            blocks ``< i``. Defaults to -1.
        norm_eval (bool): Keep the stem BatchNorms (LV-ViT) in eval mode
            during training. Defaults to False.
        norm_cfg (dict): Norm of the LV-ViT conv stem. Defaults to
            ``dict(type='BN')``.
        with_cp (bool): Gradient checkpointing per block. Defaults to False.
        out_type (str): ``'featmap'``: the dense maps above.
            ``'cls_token'``: the official classifier's image embedding, the
            class token after the last block and the final norm, as one
            (B, embed_dims) tensor in a tuple (the input of the official
            linear head; for mmpretrain's ``LinearClsHead``). It runs every
            block with the same budget (keep rate, input scale) as the dense
            path; ``out_indices`` and ``final_norm`` do not apply. Defaults
            to ``'featmap'``.
        init_cfg (dict | list[dict], optional): A ``Pretrained`` entry
            (``checkpoint``, optional ``prefix``) loads an official SuperViT,
            a plain DeiT/LV-ViT (see :func:`convert_supervit`) or a
            converted checkpoint; it must hold every weight of the backbone
            and no other (heads are dropped by the conversion) unless the
            entry says ``strict=False`` or ``min_loaded=<fraction>``.
            Defaults to None.
    """

    arch_zoo = {'deit-s': _DEIT_S, 'lvvit-s': _LVVIT_S}
    arch_required_keys = ('embed_dims', 'depth', 'num_heads')
    arch_defaults = _DEIT_S
    patch_size = 16
    min_input_size = patch_size
    no_weight_decay_keywords = ('cls_token', 'pos_embed')
    out_types = ('featmap', 'cls_token')

    def __init__(self,
                 arch: Union[str, dict] = 'deit-s',
                 in_channels: int = 3,
                 out_indices: Optional[Sequence[int]] = None,
                 final_norm: bool = True,
                 keep_rate: float = 1.0,
                 input_scale: float = 1.0,
                 pos_embed_size: int = 224,
                 train_keep_rates: Optional[Sequence[float]] = None,
                 train_input_scales: Optional[Sequence[float]] = None,
                 drop_path_rate: float = 0.,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 norm_cfg: dict = dict(type='BN'),
                 with_cp: bool = False,
                 out_type: str = 'featmap',
                 init_cfg: InitCfg = None) -> None:
        super().__init__(arch, frozen_stages, norm_eval, with_cp, init_cfg)
        self.in_channels = in_channels
        s = self.arch_settings
        self.embed_dims = s['embed_dims']
        self.depth = s['depth']
        self.num_heads = s['num_heads']
        self.out_type = self._check_out_type(out_type)
        if out_type == 'cls_token':
            if out_indices is not None or not final_norm:
                raise ValueError(
                    "out_type='cls_token' reads the class token after the "
                    'last block and the final norm; leave out_indices and '
                    'final_norm at their defaults')
            out_indices = (self.depth - 1, )
        self.out_indices: Tuple[int, ...] = self._check_out_indices(
            self._evenly_spaced(self.depth)
            if out_indices is None else out_indices, self.depth)
        self.final_norm = final_norm
        self.keep_rate = keep_rate
        self.input_scale = input_scale
        self.pos_embed_size = self._check_pos_embed_size(pos_embed_size)
        self.train_keep_rates = self._check_choices(
            train_keep_rates, self._check_keep_rate, 'train_keep_rates')
        self.train_input_scales = self._check_choices(
            train_input_scales, self._check_input_scale,
            'train_input_scales')

        if s['stem'] == 'conv':
            self.patch_embed = _ConvStemPatchEmbed(
                in_channels, self.embed_dims, self.patch_size,
                s['stem_channels'], norm_cfg)
        else:
            self.patch_embed = _PatchEmbed(in_channels, self.embed_dims,
                                           self.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))
        self.pos_embed_list = nn.ParameterList([
            nn.Parameter(
                torch.zeros(1, (size // self.patch_size)**2 + 1,
                            self.embed_dims)) for size in POS_EMBED_SIZES
        ])
        # on the CPU even under a `torch.device('meta')` context
        dpr = torch.linspace(
            0, drop_path_rate, self.depth, device='cpu').tolist()
        self.blocks = nn.ModuleList([
            SuperViTBlock(
                self.embed_dims,
                self.num_heads,
                mlp_ratio=s['mlp_ratio'],
                qkv_bias=s['qkv_bias'],
                norm_eps=s['norm_eps'],
                skip_lam=s['skip_lam'],
                scale_q=s['scale_q'],
                drop_path=dpr[i]) for i in range(self.depth)
        ])
        self.norm = nn.LayerNorm(self.embed_dims, eps=s['norm_eps'])
        # Resampled position tables of inference calls (see _pos_embed).
        self._pos_embed_cache: Dict[tuple, torch.Tensor] = {}
        self._post_init()

    # ------------------------------------------------------------------
    # configuration
    # ------------------------------------------------------------------
    @classmethod
    def _check_arch(cls, settings: dict) -> None:
        if settings['stem'] not in ('patch', 'conv'):
            raise ValueError(f"stem must be 'patch' or 'conv', got "
                             f"{settings['stem']!r}")

    @staticmethod
    def _check_keep_rate(value: float) -> float:
        if not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise ValueError(f'keep_rate must be in (0, 1], got {value!r}')
        return float(value)

    @staticmethod
    def _check_input_scale(value: float) -> float:
        if not isinstance(value, (int, float)) or not 0 < value <= 4:
            raise ValueError(
                f'input_scale must be in (0, 4], got {value!r}')
        return float(value)

    @staticmethod
    def _check_pos_embed_size(value: int) -> int:
        if value not in POS_EMBED_SIZES:
            raise ValueError(f'pos_embed_size must be one of the trained '
                             f'sizes {POS_EMBED_SIZES}, got {value!r}')
        return int(value)

    @staticmethod
    def _check_choices(values: Optional[Sequence[float]], check,
                       name: str) -> Optional[Tuple[float, ...]]:
        if values is None:
            return None
        values = tuple(values)
        if not values:
            raise ValueError(f'{name} must be None or non-empty')
        return tuple(check(v) for v in values)

    @property
    def keep_rate(self) -> float:
        """Token keeping rate used outside training sampling."""
        return self._keep_rate

    @keep_rate.setter
    def keep_rate(self, value: float) -> None:
        self._keep_rate = self._check_keep_rate(value)

    @property
    def input_scale(self) -> float:
        """Trunk input scale used outside training sampling."""
        return self._input_scale

    @input_scale.setter
    def input_scale(self, value: float) -> None:
        self._input_scale = self._check_input_scale(value)

    # ------------------------------------------------------------------
    # DenseBackbone hooks
    # ------------------------------------------------------------------
    def init_default_weights(self) -> None:
        """The official initialisation (timm ViT style)."""
        for pos_embed in self.pos_embed_list:
            trunc_normal_(pos_embed, std=.02)
        trunc_normal_(self.cls_token, std=.02)
        init_linear_and_norm(self)

    def convert_checkpoint(self, state_dict: StateDict) -> StateDict:
        return convert_supervit(state_dict)

    @classmethod
    def identify_arch(cls, state_dict: StateDict
                      ) -> Optional[Union[str, dict]]:
        """Width, depth, stem, MLP ratio and qkv bias from the keys (the
        number of heads is not visible in the shapes). A plain DeiT/LV-ViT
        checkpoint is recognised as the SuperViT arch it converts to."""
        try:
            sd = convert_supervit(state_dict)
        except CheckpointError:  # a position table of another model
            return None
        if not {'cls_token', 'pos_embed_list.0', 'blocks.0.attn.qkv.weight',
                'blocks.0.mlp.fc1.weight'} <= set(sd):
            return None
        embed_dims = sd['cls_token'].shape[-1]
        return cls._zoo_name(
            dict(
                embed_dims=embed_dims,
                depth=1 + max(
                    int(k.split('.')[1]) for k in sd
                    if re.match(r'blocks\.\d+\.', k)),
                mlp_ratio=sd['blocks.0.mlp.fc1.weight'].shape[0] /
                embed_dims,
                qkv_bias='blocks.0.attn.qkv.bias' in sd,
                stem='conv' if 'patch_embed.conv1.weight' in sd else 'patch'))

    @property
    def num_stages(self) -> int:
        return self.arch_settings['depth']

    def stage_members(self, stage: int) -> List[StageMember]:
        """Stage 0: patch embedding, class token and position tables;
        stage i: block i - 1."""
        if stage == 0:
            return [self.patch_embed, self.cls_token, self.pos_embed_list]
        return [self.blocks[stage - 1]]

    @property
    def num_layers(self) -> int:
        return self.depth + 2

    def layer_id(self, name: str) -> Optional[int]:
        """Embeddings 0, block i -> i + 1, the final norm on top."""
        if name.startswith(('cls_token', 'pos_embed', 'patch_embed')):
            return 0
        if name.startswith('blocks.'):
            return int(name.split('.')[1]) + 1
        return None

    def output_shape(self) -> Dict[str, ShapeSpec]:
        # The maps of a scaled trunk are resampled to the nominal grid, so
        # the stride is the patch size at every input_scale.
        return self._named_outputs(
            [(self.embed_dims, self.patch_size)] * len(self.out_indices))

    def unused_parameter_names(self) -> Tuple[str, ...]:
        """The position tables other than the one ``input_scale`` selects,
        the blocks after the last output, and the final norm unless
        ``final_norm`` is set and the last block is an output. (With
        ``train_input_scales`` the table changes from one training step to
        the next.)"""
        used = POS_EMBED_SIZES.index(
            self.pos_embed_size_for_scale(self.input_scale))
        last = max(self.out_indices)
        norm_used = self.final_norm and last == self.depth - 1
        names = []
        for name, _ in self.named_parameters():
            module, index = (name.split('.') + [''])[:2]
            if (module == 'pos_embed_list' and int(index) != used) or (
                    module == 'blocks' and int(index) > last) or (
                        module == 'norm' and not norm_used):
                names.append(name)
        return tuple(names)

    # ------------------------------------------------------------------
    # trunk
    # ------------------------------------------------------------------
    def _pos_embed(self, pos_embed_size: int,
                   grid: Tuple[int, int]) -> torch.Tensor:
        """The ``pos_embed_size`` table resampled to ``grid``.

        The resampling does not depend on the input, so without autograd it
        is done once per (table state, grid) and reused: at small budgets
        the bicubic antialiased resize is a visible share of a forward and
        is not compute the budget should pay. The key holds the table's
        storage and version counter, so loading weights, moving the model
        or an optimizer step (all of them write the parameter or replace
        it) start a new entry; only the latest entry per grid is kept.
        """
        table = self.pos_embed_list[POS_EMBED_SIZES.index(pos_embed_size)]
        side = pos_embed_size // self.patch_size
        grid = (int(grid[0]), int(grid[1]))
        if grid == (side, side):
            return table
        if torch.is_grad_enabled() and table.requires_grad:
            return self._resample_pos_embed(table, grid, side)
        slot = (pos_embed_size, grid)
        state = (table.device, table.dtype, table.data_ptr(), table._version)
        cached = self._pos_embed_cache.get(slot)
        if cached is None or cached[0] != state:
            cached = (state, self._resample_pos_embed(table, grid, side))
            self._pos_embed_cache[slot] = cached
        return cached[1]

    @staticmethod
    def _resample_pos_embed(table: torch.Tensor, grid: Tuple[int, int],
                            side: int) -> torch.Tensor:
        return resample_abs_pos_embed(
            table, new_size=list(grid), old_size=[side, side],
            num_prefix_tokens=1)

    def _embed(self, x: torch.Tensor, pos_embed_size: int
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Pad, embed patches, add the class token and position table.

        Returns:
            tuple: The stem map (B, C, h, w) and the tokens (B, 1 + h*w, C).
        """
        if x.dim() != 4:
            raise ValueError(
                f'expected an NCHW input, got shape {tuple(x.shape)}')
        H, W = x.shape[-2:]
        pad_h = -H % self.patch_size
        pad_w = -W % self.patch_size
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        stem = self.patch_embed(x)
        tokens = stem.flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1)
        tokens = tokens + self._pos_embed(pos_embed_size, stem.shape[-2:])
        return stem, tokens

    def _trunk(self,
               x: torch.Tensor,
               pos_embed_size: int,
               keep_rate: float,
               dense_indices: Sequence[int],
               record: bool = False) -> dict:
        """Run the column.

        Args:
            x (Tensor): (B, 3, H, W) image.
            pos_embed_size (int): Trained size of the position table.
            keep_rate (float): Token keeping rate for blocks 3, 6, 9.
            dense_indices (Sequence[int]): Blocks whose full dense token
                sequence (pruned tokens restored) is wanted.
            record (bool): Run every block and record its raw output and
                the kept indices. Defaults to False (stop after the last
                block of ``dense_indices``).

        Returns:
            dict: ``stem``, ``tokens_in``, ``dense`` ({block: (B, 1 + h*w,
            C)}), ``last`` (token sequence of the last block run) and, with
            ``record``, ``blocks``, ``keep_index``, ``orig_index``.
        """
        stem, x = self._embed(x, pos_embed_size)
        out = dict(stem=stem, tokens_in=x, dense={})
        if record:
            out.update(blocks=[], keep_index={}, orig_index={})
        dense_indices = set(dense_indices)
        # orig: original position of each current token (0 = cls, 1 + p =
        # patch p); canvas: the last known value of every original token.
        orig = canvas = None
        num_run = len(self.blocks) if record else max(dense_indices) + 1
        for i, block in enumerate(self.blocks[:num_run]):
            rate = keep_rate if i in PRUNE_BLOCKS else 1.0
            x, keep_index, x_at_prune = self._run_block(block, x, rate)
            if keep_index is not None:
                if orig is None:
                    canvas = x_at_prune  # still in the original order
                    orig = keep_index
                else:
                    canvas = canvas.scatter(
                        1,
                        orig.unsqueeze(-1).expand_as(x_at_prune), x_at_prune)
                    orig = torch.gather(orig, 1, keep_index)
                if record:
                    out['keep_index'][i] = keep_index
                    out['orig_index'][i] = orig
            if record:
                out['blocks'].append(x)
            if i in dense_indices:
                if orig is None:
                    out['dense'][i] = x
                else:
                    out['dense'][i] = canvas.scatter(
                        1, orig.unsqueeze(-1).expand_as(x), x)
        out['last'] = x
        return out

    def forward_tokens(self,
                       x: torch.Tensor,
                       pos_embed_size: Optional[int] = None,
                       keep_rate: Optional[float] = None,
                       resize_input: bool = False) -> dict:
        """Token-level (classification-style) forward, as the official model.

        Args:
            x (Tensor): (B, 3, H, W) images.
            pos_embed_size (int, optional): Trained size of the position
                table. Defaults to None (``self.pos_embed_size``).
            keep_rate (float, optional): Defaults to None
                (``self.keep_rate``).
            resize_input (bool): Resize the input to ``pos_embed_size``
                squared with bilinear ``align_corners=True`` first, like the
                official ``forward(x, img_size, keep_ratio)``. Defaults to
                False.

        Returns:
            dict: ``patch_embed`` (stem map B, C, h, w), ``tokens_in``
            (input of block 0), ``blocks`` (list of each block's output in
            the official token order: class token first, kept tokens by
            descending score), ``keep_index`` / ``orig_index`` ({block: (B,
            N')}: indices into the block's input / into the original
            sequence, 0 = class token, 1 + p = patch p in row-major order)
            and ``norm`` (final LayerNorm of the last sequence).
        """
        size = self.pos_embed_size if pos_embed_size is None else \
            self._check_pos_embed_size(pos_embed_size)
        rate = self.keep_rate if keep_rate is None else \
            self._check_keep_rate(keep_rate)
        if resize_input:
            x = F.interpolate(
                x, (size, size), mode='bilinear', align_corners=True)
        self.check_input(x)
        out = self._trunk(x, size, rate, (), record=True)
        return dict(
            patch_embed=out['stem'],
            tokens_in=out['tokens_in'],
            blocks=out['blocks'],
            keep_index=out['keep_index'],
            orig_index=out['orig_index'],
            norm=self.norm(out['last']))

    # ------------------------------------------------------------------
    # dense forward
    # ------------------------------------------------------------------
    def batch_norm_stride(self) -> Optional[int]:
        """None: the only batch norms (LV-ViT stem) run at stride 2 on the
        trunk input padded to at least 16x16, so they always see 8x8
        values or more."""
        return None

    def _budget(self) -> Tuple[float, float]:
        keep_rate, input_scale = self.keep_rate, self.input_scale
        if self.training:
            if self.train_keep_rates is not None:
                i = int(torch.randint(len(self.train_keep_rates), ()))
                keep_rate = self.train_keep_rates[i]
            if self.train_input_scales is not None:
                i = int(torch.randint(len(self.train_input_scales), ()))
                input_scale = self.train_input_scales[i]
        return keep_rate, input_scale

    def pos_embed_size_for_scale(self, input_scale: float) -> int:
        """Position table used at an input scale: the trained size equal to
        ``224 * input_scale`` if there is one, else ``pos_embed_size``."""
        for size in POS_EMBED_SIZES:
            if math.isclose(224 * input_scale, size):
                return size
        return self.pos_embed_size

    def _nominal_sampling_grid(self, grid_hw: Tuple[int, int],
                               scaled_hw: Tuple[int, int],
                               input_hw: Tuple[int, int],
                               like: torch.Tensor) -> torch.Tensor:
        """``grid_sample`` grid (1, ceil(H/16), ceil(W/16), 2) that takes
        (h, w) trunk maps to the stride-16 grid of the original input.

        Each output cell reads the trunk map where the resized input shows
        the cell's centre. The input resize (bilinear, ``align_corners=True``
        as in the official model) maps original pixel index p to scaled
        index ``p * (hs - 1) / (H - 1)``, so the centre of output cell i,
        original coordinate ``16i + 8`` (pixel index ``16i + 7.5``), is at
        scaled coordinate ``(16i + 7.5) * (hs - 1) / (H - 1) + 0.5``, i.e.
        trunk-map coordinate that / 16.
        """
        hs, ws = (int(v) for v in scaled_hw)
        H, W = (int(v) for v in input_hw)

        def trunk_coords(n_out: int, n_scaled: int, n_orig: int,
                         n_grid: int) -> torch.Tensor:
            """Normalised trunk-map coordinates of the output cell centres
            along one axis (``grid_sample``, ``align_corners=False``)."""
            index = torch.arange(
                n_out, dtype=like.dtype,
                device=like.device) * self.patch_size + (
                    self.patch_size / 2 - 0.5)
            # n_orig >= 16 (check_input); n_scaled == 1 reads pixel 0 only
            scaled = index * ((n_scaled - 1) / (n_orig - 1)) + 0.5
            return 2 * scaled / (n_grid * self.patch_size) - 1

        ys = trunk_coords(math.ceil(H / self.patch_size), hs, H,
                          int(grid_hw[0]))
        xs = trunk_coords(math.ceil(W / self.patch_size), ws, W,
                          int(grid_hw[1]))
        return torch.stack(
            torch.meshgrid(ys, xs, indexing='ij')[::-1], -1).unsqueeze(0)

    def _to_nominal_grid(self,
                         maps: torch.Tensor,
                         scaled_hw: Tuple[int, int],
                         input_hw: Tuple[int, int],
                         grid: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Resample (B, C, h, w) maps of the scaled trunk to the stride-16
        grid of the original (padded) input (bilinear at the points of
        :meth:`_nominal_sampling_grid`; outside the trunk map's cell centres
        the border cells are repeated).

        Args:
            maps (Tensor): (B, C, h, w) trunk maps.
            scaled_hw (tuple): Size of the resized trunk input.
            input_hw (tuple): Size of the original input.
            grid (Tensor, optional): :meth:`_nominal_sampling_grid` of these
                sizes, shared by the outputs of one forward. Defaults to None
                (built here).
        """
        if grid is None:
            grid = self._nominal_sampling_grid(maps.shape[-2:], scaled_hw,
                                               input_hw, maps)
        return F.grid_sample(
            maps, grid.expand(maps.shape[0], -1, -1, -1), mode='bilinear',
            padding_mode='border', align_corners=False)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Dense forward (or, with ``out_type='cls_token'``, the official
        image embedding).

        Args:
            x (Tensor): (B, 3, H, W) images, H and W >= 16.

        Returns:
            tuple[Tensor]: One (B, embed_dims, ceil(H/16), ceil(W/16)) map per
            ``out_indices`` entry, covering the right/bottom zero-padded
            input (output pixel (i, j) <-> input [16i, 16i+16) x [16j,
            16j+16)); with ``out_type='cls_token'`` one (B, embed_dims)
            tensor: the normalised class token.
        """
        self.check_input(x)
        keep_rate, input_scale = self._budget()
        H, W = (int(v) for v in x.shape[-2:])
        trunk_in = x
        if input_scale != 1:
            size = (max(1, round(H * input_scale)),
                    max(1, round(W * input_scale)))
            # as the official forward resizes to its trained sizes
            trunk_in = F.interpolate(
                x, size, mode='bilinear', align_corners=True)
        out = self._trunk(trunk_in, self.pos_embed_size_for_scale(input_scale),
                          keep_rate, self.out_indices)
        if self.out_type == 'cls_token':
            # the official head reads norm(tokens)[:, 0]; the norm is per
            # token, so normalising the class token alone is the same
            return (self.norm(out['last'][:, 0]), )
        h, w = out['stem'].shape[-2:]
        grid = None
        if input_scale != 1:  # one sampling grid for all outputs
            grid = self._nominal_sampling_grid(
                (h, w), trunk_in.shape[-2:], (H, W), out['last'])
        maps = []
        for i in self.out_indices:
            tokens = out['dense'][i]
            if i == self.depth - 1 and self.final_norm:
                tokens = self.norm(tokens)
            B, _, C = tokens.shape
            m = tokens[:, 1:].transpose(1, 2).reshape(B, C, h, w)
            if input_scale != 1:
                m = self._to_nominal_grid(m, trunk_in.shape[-2:], (H, W),
                                          grid)
            maps.append(m.contiguous())
        return tuple(maps)
