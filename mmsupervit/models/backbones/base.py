"""What every dense backbone of mmsupervit shares, implemented once.

:class:`DenseBackbone` owns the parts of a backbone that are the same for
SuperViT, AlterNet and PatchConvNet, so each of them only describes its own
layers:

* ``arch``: a name from the class's :attr:`~DenseBackbone.arch_zoo` (aliases
  and case-insensitive names allowed) or a dict of settings;
* ``init_cfg``: the backbone's official initialisation, then mmengine's
  initialisers, then a ``Pretrained`` checkpoint (given alone or inside a
  list) that always goes through the backbone's own converter and is
  refused when it does not fit (:meth:`DenseBackbone.init_from_pretrained`);
* recognising a checkpoint's family and arch from its keys
  (:meth:`DenseBackbone.identify_arch`, :func:`identify_checkpoint`), so that
  a wrong checkpoint is named in the error;
* ``frozen_stages``, ``norm_eval`` and ``with_cp``;
* ``get_layer_depth`` for :class:`LayerDecayOptimWrapperConstructor`;
* the output contract: :meth:`~DenseBackbone.output_shape` declares the
  channels and stride of every output.
"""
import inspect
import math
from abc import abstractmethod
from typing import (Any, Callable, ClassVar, Dict, List, NamedTuple,
                    Optional, Sequence, Tuple, Union)

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.model.weight_init import PretrainedInit
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint

from ..utils.checkpoint import (CheckpointError, StateDict,
                                check_key_report, compare_state_dict,
                                load_pretrained)

InitCfg = Optional[Union[dict, List[dict]]]
StageMember = Union[nn.Module, nn.Parameter]
Arch = Union[str, Dict[str, Any]]

#: Keys of a ``Pretrained`` init_cfg entry: those of mmengine's
#: ``PretrainedInit`` plus ``strict`` and ``min_loaded`` (see
#: :meth:`DenseBackbone.init_from_pretrained`), and ``hint``, a sentence added
#: to the error when a local checkpoint file is missing (how to make or
#: download it).
_PRETRAINED_KEYS = ('type', 'checkpoint', 'prefix', 'map_location', 'strict',
                    'min_loaded', 'hint')

#: Top-level modules that tell what kind of whole model a checkpoint holds.
_MODEL_KINDS = (
    (('decode_head', ), 'an mmseg segmentor'),
    (('rpn_head', 'roi_head', 'bbox_head', 'mask_head'), 'an mmdet detector'),
    (('head', ), 'an mmpretrain classifier'),
)


class ShapeSpec(NamedTuple):
    """Channels and stride (input pixels per output pixel) of one output."""
    channels: int
    stride: int


def split_init_cfg(init_cfg: InitCfg) -> Tuple[Optional[dict], List[dict]]:
    """Separate the ``Pretrained`` entry of an ``init_cfg`` from the others.

    Args:
        init_cfg (dict | list[dict], optional): As given to a backbone.

    Returns:
        tuple: The ``Pretrained`` entry (or None) and the other entries.

    Raises:
        TypeError: If ``init_cfg`` is not None, a dict or a list of dicts.
        ValueError: On more than one ``Pretrained`` entry, one without
            ``checkpoint`` or one with keys ``PretrainedInit`` does not take.
    """
    if init_cfg is None:
        return None, []
    cfgs = [init_cfg] if isinstance(init_cfg, dict) else init_cfg
    if not isinstance(cfgs, (list, tuple)) or not all(
            isinstance(c, dict) for c in cfgs):
        raise TypeError('init_cfg must be None, a dict or a list of dicts, '
                        f'got {init_cfg!r}')
    pretrained = [
        c for c in cfgs if c.get('type') in ('Pretrained', PretrainedInit)
    ]
    others = [c for c in cfgs if not any(c is p for p in pretrained)]
    if len(pretrained) > 1:
        raise ValueError(
            f'init_cfg has {len(pretrained)} Pretrained entries; give one')
    if not pretrained:
        return None, others
    cfg = pretrained[0]
    unknown = sorted(set(cfg) - set(_PRETRAINED_KEYS))
    if unknown or 'checkpoint' not in cfg:
        raise ValueError(
            f'init_cfg of type Pretrained takes the keys {_PRETRAINED_KEYS} '
            f"and needs 'checkpoint'; got unknown keys {unknown} in {cfg}")
    if not isinstance(cfg.get('strict', True), bool):
        raise ValueError(f"Pretrained 'strict' must be True or False, got "
                         f"{cfg['strict']!r}")
    min_loaded = cfg.get('min_loaded', 1.0)
    if isinstance(min_loaded, bool) or not isinstance(
            min_loaded, (int, float)) or not 0 < min_loaded <= 1:
        raise ValueError(f"Pretrained 'min_loaded' must be a fraction in "
                         f'(0, 1], got {min_loaded!r}')
    return cfg, others


def _backbone_families() -> List[type]:
    """Every concrete :class:`DenseBackbone` subclass, by name."""
    found, todo = [], list(DenseBackbone.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if not inspect.isabstract(cls):
            found.append(cls)
    return sorted(found, key=lambda c: c.__name__)


def _describe(cls: type, arch: Arch) -> str:
    article = 'an' if cls.__name__[0] in 'AEIOU' else 'a'
    if isinstance(arch, str):
        return f'{article} {cls.__name__} checkpoint (arch={arch!r})'
    settings = ', '.join(f'{k}={v!r}' for k, v in arch.items())
    return (f'{article} {cls.__name__} checkpoint of an arch outside its zoo '
            f'(arch=dict({settings}))')


def _identify_backbone(state_dict: StateDict) -> Optional[str]:
    for cls in _backbone_families():
        arch = cls.identify_arch(state_dict)
        if arch is not None:
            return _describe(cls, arch)
    return None


def model_kind(keys: Sequence[str]) -> str:
    """What kind of whole model a state dict's keys come from, e.g.
    ``"an mmdet detector (modules backbone, neck, rpn_head, roi_head)"``."""
    tops = list(dict.fromkeys(k.split('.')[0] for k in keys))
    kind = next((name for heads, name in _MODEL_KINDS
                 if any(h in tops for h in heads)), 'a model')
    return f"{kind} (modules {', '.join(tops[:8])})"


def identify_checkpoint(state_dict: StateDict) -> Optional[str]:
    """Say which backbone family and arch a state dict looks like.

    Tries every :class:`DenseBackbone` family's :meth:`identify_arch`, on the
    keys as given and, for a whole mmseg/mmdet/mmpretrain model, on the keys
    under ``backbone.``.

    Args:
        state_dict (dict): Unwrapped weights, official or converted layout.

    Returns:
        str | None: E.g. ``"an AlterNet checkpoint (arch='50')"`` or ``"a
        whole-model checkpoint of an mmdet detector (...) whose 'backbone.'
        keys are ...; load it with prefix='backbone.'"``; None when nothing
        is recognised.
    """
    found = _identify_backbone(state_dict)
    if found is not None:
        return found
    inner = {
        k[len('backbone.'):]: v
        for k, v in state_dict.items() if k.startswith('backbone.')
    }
    if not inner:
        return None
    backbone = _identify_backbone(inner) or 'a backbone of unknown kind'
    return (f'a whole-model checkpoint of {model_kind(list(state_dict))} '
            f"whose 'backbone.' keys are {backbone}; load its backbone with "
            "prefix='backbone.'")


class DenseBackbone(BaseModule):
    """Base class of the dense-prediction backbones.

    A subclass calls ``super().__init__(arch, frozen_stages, norm_eval,
    with_cp, init_cfg)`` first (after which :attr:`arch_settings` holds the
    resolved arch), builds its layers, and calls :meth:`_post_init` last
    (official initialisation and freezing). It implements the abstract hooks:
    :meth:`init_default_weights`, :meth:`convert_checkpoint`,
    :attr:`num_stages`, :meth:`stage_members`, :attr:`num_layers`,
    :meth:`layer_id`, :meth:`output_shape` and ``forward``, which starts
    with :meth:`check_input` (a bad input fails with a message that names
    it, not deep inside torch).

    Args:
        arch (str | int | dict): A name (or alias) of :attr:`arch_zoo`, case
            insensitive, or a dict of settings: either all of
            :attr:`arch_required_keys` (the other keys default to
            :attr:`arch_defaults`), or ``base=<name>`` plus the keys that
            differ from that named arch.
        frozen_stages (int): Freeze stages ``0..frozen_stages`` (parameters
            without gradient, modules in eval mode); -1 freezes nothing.
            Stage 0 is the stem, see :meth:`stage_members`. Defaults to -1.
        norm_eval (bool): Keep every batch norm (BN, SyncBN) in eval mode
            while training (frozen statistics), as in mmdet/mmpretrain.
            Defaults to False.
        with_cp (bool): Gradient checkpointing per block (less activation
            memory, one more forward per block). Defaults to False.
        init_cfg (dict | list[dict], optional): mmengine initialisers; a
            ``dict(type='Pretrained', checkpoint=..., prefix=...)`` entry,
            alone or in a list, loads an official or converted checkpoint.
            It is refused when it does not fit (another family or arch, a
            whole model without ``prefix='backbone.'``, too few weights);
            ``strict=False`` in the entry loads whatever fits, and
            ``min_loaded=0.8`` accepts 80% of the weights (see
            :meth:`init_from_pretrained`). Defaults to None.
    """

    #: Named archs: name -> settings dict, or name -> another name (alias).
    #: Names are lower case; lookups are case-insensitive.
    arch_zoo: ClassVar[Dict[str, Union[dict, str]]] = {}
    #: Keys an arch dict must give unless it names a ``base`` arch.
    arch_required_keys: ClassVar[Tuple[str, ...]] = ()
    #: Values of the other settings for an arch dict without ``base``.
    arch_defaults: ClassVar[Dict[str, Any]] = {}
    #: Smallest input height and width the backbone accepts.
    min_input_size: ClassVar[int] = 1
    #: Channels of the input (set by the subclass; checked by
    #: :meth:`check_input`).
    in_channels: int = 3
    #: Parameter-name substrings without weight decay (read by
    #: ``LayerDecayOptimWrapperConstructor``).
    no_weight_decay_keywords: ClassVar[Tuple[str, ...]] = ()
    #: What ``forward`` can return (the ``out_type`` argument of families
    #: that take one): ``'featmap'``, the dense maps, and for some families
    #: ``'cls_token'``, the official classifier's pooled image embedding
    #: (B, C) that its linear head reads (mmpretrain classification).
    out_types: ClassVar[Tuple[str, ...]] = ('featmap', )

    def __init__(self,
                 arch: Union[str, int, dict],
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 init_cfg: InitCfg = None) -> None:
        split_init_cfg(init_cfg)  # fail at build time, not at init time
        super().__init__(init_cfg=init_cfg)
        self.arch_settings: Dict[str, Any] = self.resolve_arch(arch)
        if isinstance(frozen_stages, bool) or not isinstance(
                frozen_stages, int) or not \
                -1 <= frozen_stages <= self.num_stages:
            raise ValueError(
                f'frozen_stages must be an int in [-1, {self.num_stages}] '
                f'for this {type(self).__name__}, got {frozen_stages!r}')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp

    def _post_init(self) -> None:
        """Finish construction: official initialisation, then freezing."""
        with torch.no_grad():
            self.init_default_weights()
        self._freeze_stages()

    # ------------------------------------------------------------------
    # arch
    # ------------------------------------------------------------------
    @classmethod
    def arch_names(cls) -> Tuple[str, ...]:
        """The named archs (without aliases)."""
        return tuple(k for k, v in cls.arch_zoo.items() if isinstance(v, dict))

    @classmethod
    def _arch_by_name(cls, arch: Union[str, int]) -> dict:
        if isinstance(arch, bool) or not isinstance(arch, (str, int)):
            raise TypeError(f'{cls.__name__} arch must be a name (str or int) '
                            f'or a dict, got {arch!r}')
        settings = cls.arch_zoo.get(str(arch).lower())
        if isinstance(settings, str):  # an alias
            settings = cls.arch_zoo.get(settings)
        if not isinstance(settings, dict):
            aliases = sorted(
                k for k, v in cls.arch_zoo.items() if isinstance(v, str))
            raise ValueError(
                f'unknown {cls.__name__} arch {arch!r}; valid names are '
                f"{', '.join(cls.arch_names())}"
                + (f" (aliases: {', '.join(aliases)})" if aliases else '')
                + ', or a dict')
        return dict(settings)

    @classmethod
    def resolve_arch(cls, arch: Union[str, int, dict]) -> Dict[str, Any]:
        """Turn an ``arch`` argument into a complete settings dict.

        Args:
            arch (str | int | dict): See the class docstring.

        Returns:
            dict: Every setting of the arch (a new dict).

        Raises:
            ValueError: For an unknown name, or a dict with unknown or
                missing keys (the message lists the valid ones), or settings
                rejected by :meth:`_check_arch`.
        """
        if not isinstance(arch, dict):
            settings = cls._arch_by_name(arch)
        else:
            arch = dict(arch)
            base = arch.pop('base', None)
            required = () if base is not None else cls.arch_required_keys
            optional = tuple(k for k in cls.arch_defaults
                             if k not in cls.arch_required_keys)
            unknown = sorted(
                set(arch) - set(cls.arch_required_keys) - set(optional))
            missing = [k for k in required if k not in arch]
            if unknown or missing:
                raise ValueError(
                    f'{cls.__name__} arch dict: unknown keys {unknown}, '
                    f'missing keys {missing}; required keys are '
                    f'{list(cls.arch_required_keys)}, optional keys are '
                    f"{list(optional) + ['base']} (base=<name> starts from "
                    f"a named arch: {', '.join(cls.arch_names())})")
            settings = cls._arch_by_name(base) if base is not None else dict(
                cls.arch_defaults)
            settings.update(arch)
        cls._check_arch(settings)
        return settings

    @classmethod
    def _check_out_type(cls, out_type: str) -> str:
        """Refuse an ``out_type`` outside :attr:`out_types`."""
        if out_type not in cls.out_types:
            raise ValueError(f'{cls.__name__} out_type must be one of '
                             f'{cls.out_types}, got {out_type!r}')
        return out_type

    @classmethod
    def _check_arch(cls, settings: Dict[str, Any]) -> None:
        """Reject invalid values in resolved settings (override to check).

        Raises:
            ValueError: With a message naming the setting.
        """

    # ------------------------------------------------------------------
    # initialisation
    # ------------------------------------------------------------------
    @abstractmethod
    def init_default_weights(self) -> None:
        """The official initialisation of a backbone built from scratch
        (runs under ``torch.no_grad``)."""

    @abstractmethod
    def convert_checkpoint(self, state_dict: StateDict) -> StateDict:
        """Official (or already converted) keys -> this backbone's keys.

        Must be idempotent on already converted state dicts.
        """

    def init_weights(self) -> None:
        """Official initialisation, then ``init_cfg``.

        Order: :meth:`init_default_weights`; the non-``Pretrained`` entries
        of ``init_cfg`` through mmengine (``BaseModule.init_weights``); last
        the ``Pretrained`` entry (dict or list item) through
        :meth:`init_from_pretrained`, so the checkpoint wins where it has a
        key. A second call only warns, as in mmengine.
        """
        if self.is_init:
            super().init_weights()  # mmengine warns and changes nothing
            return
        pretrained, others = split_init_cfg(self.init_cfg)
        with torch.no_grad():
            self.init_default_weights()
        given, self.init_cfg = self.init_cfg, (others or None)
        try:
            super().init_weights()
        finally:
            self.init_cfg = given
        if pretrained is not None:
            self.init_from_pretrained(pretrained)

    def init_from_pretrained(self,
                             cfg: dict) -> Tuple[List[str], List[str]]:
        """Load a ``Pretrained`` init_cfg entry, refusing one that does not
        fit.

        Reads the checkpoint (path or URL, through mmengine's
        ``CheckpointLoader``), unwraps it, keeps the keys under
        ``cfg['prefix']`` (stripped), converts them with
        :meth:`convert_checkpoint`, checks and loads them
        (:func:`~mmsupervit.models.utils.checkpoint.load_pretrained`):

        * a shape mismatch fails, naming the key and both shapes;
        * unless ``strict=False``, loading fails when less than
          ``min_loaded`` of the backbone's weights (counted in elements)
          would be filled, or when the checkpoint has keys the backbone does
          not have. Keys of :meth:`tolerated_missing_keys` and
          :meth:`tolerated_unexpected_keys` are not counted; missing ones are
          logged as warnings. The error says what the checkpoint looks like
          (:func:`identify_checkpoint`: another family or arch, or a whole
          segmentor/detector that needs ``prefix='backbone.'``) and lists
          the first matched, missing and unexpected keys.

        Args:
            cfg (dict): ``dict(type='Pretrained', checkpoint=...,
                prefix=None, map_location='cpu', strict=True,
                min_loaded=1.0, hint=None)``.

        Returns:
            tuple[list[str], list[str]]: Missing and unexpected keys.

        Raises:
            CheckpointError: If the checkpoint does not fit.
            FileNotFoundError: If a local checkpoint file is missing (never
                a silent start from scratch); the message ends with
                ``cfg['hint']`` when given.
        """
        try:
            return load_pretrained(
                self,
                cfg['checkpoint'],
                convert=self.convert_checkpoint,
                prefix=cfg.get('prefix'),
                map_location=cfg.get('map_location', 'cpu'),
                strict=cfg.get('strict', True),
                min_loaded=cfg.get('min_loaded', 1.0),
                tolerated_missing=self.tolerated_missing_keys(),
                tolerated_unexpected=self.tolerated_unexpected_keys(),
                identify=self._identify_against_self)
        except FileNotFoundError as err:
            if not cfg.get('hint'):
                raise
            raise FileNotFoundError(f"{err} ({cfg['hint']})") from err

    def _identify_against_self(self, state_dict: StateDict) -> Optional[str]:
        found = identify_checkpoint(state_dict)
        if found is None:
            return None
        name = next((n for n in self.arch_names()
                     if self.resolve_arch(n) == self.arch_settings), None)
        own = _describe(type(self), self.arch_settings if name is None
                        else name).replace(' checkpoint', '', 1)
        return f'{found}, while this backbone is {own}'

    # ------------------------------------------------------------------
    # checkpoint recognition
    # ------------------------------------------------------------------
    @classmethod
    def identify_arch(cls, state_dict: StateDict) -> Optional[Arch]:
        """The arch of this family a state dict has, read from its keys and
        shapes (official or converted layout).

        Args:
            state_dict (dict): Unwrapped weights.

        Returns:
            str | dict | None: The :attr:`arch_zoo` name when the settings
            that can be read match a named arch, else those settings; None
            when the keys are not of this family. Defaults to None (a family
            that does not implement recognition).
        """
        return None

    @classmethod
    def _zoo_name(cls, settings: Dict[str, Any]) -> Arch:
        """The named arch whose settings include ``settings``, else
        ``settings``."""
        for name in cls.arch_names():
            named = cls.resolve_arch(name)
            if all(named.get(k) == v for k, v in settings.items()):
                return name
        return settings

    @classmethod
    def check_converted_checkpoint(cls,
                                   original: StateDict,
                                   converted: StateDict,
                                   source: str,
                                   arch: Optional[Union[str, int]] = None,
                                   build_cfg: Optional[dict] = None) -> Arch:
        """Refuse a checkpoint that is not of this family (or not of
        ``arch``), for ``tools/model_converters`` (no model is loaded).

        Args:
            original (dict): The weights as read (unwrapped): the family is
                recognised on them, since another family's keys may not
                survive this family's conversion.
            converted (dict): The converted weights, checked against
                ``arch``.
            source (str): Name of the file in messages.
            arch (str | int, optional): Also check keys and shapes against a
                backbone of this arch (built on the ``meta`` device), with
                the rules of :meth:`init_from_pretrained`. Defaults to None
                (only the family is checked).
            build_cfg (dict, optional): Other constructor arguments of that
                backbone (e.g. ``with_attn_pool=True``). Defaults to None.

        Returns:
            str | dict: The recognised arch (see :meth:`identify_arch`).

        Raises:
            CheckpointError: If the keys are of another family or of none,
                or do not fit ``arch``.
        """
        found = cls.identify_arch(original)
        if found is None:
            other = identify_checkpoint(original)
            raise CheckpointError(
                f'{source} is not a {cls.__name__} checkpoint: ' +
                (f'it looks like {other}' if other else
                 f'its keys match no known layout (first keys: '
                 f'{list(original)[:5]})'))
        if arch is not None:
            with torch.device('meta'):
                model = cls(arch=arch, **(build_cfg or {}))
            report = compare_state_dict(model.state_dict(), converted,
                                        model.tolerated_missing_keys(),
                                        model.tolerated_unexpected_keys())
            check_key_report(
                report, f'{cls.__name__}(arch={arch!r})', source,
                identify=lambda: _describe(cls, found),
                hint='converted for another arch?')
        return found

    # ------------------------------------------------------------------
    # freezing and train mode
    # ------------------------------------------------------------------
    @property
    @abstractmethod
    def num_stages(self) -> int:
        """Stages after the stem: ``frozen_stages`` goes up to it."""

    @abstractmethod
    def stage_members(self, stage: int) -> List[StageMember]:
        """Modules and parameters of a stage (0 = stem/embeddings,
        ``1..num_stages`` after it) that ``frozen_stages`` freezes."""

    def _frozen_members(self) -> List[StageMember]:
        return [
            member for stage in range(self.frozen_stages + 1)
            for member in self.stage_members(stage)
        ]

    def _freeze_stages(self) -> None:
        for member in self._frozen_members():
            if isinstance(member, nn.Parameter):
                member.requires_grad_(False)
            else:
                member.eval()
                for param in member.parameters():
                    param.requires_grad_(False)

    def train(self, mode: bool = True) -> 'DenseBackbone':
        """Set the mode, keeping frozen stages (and, with ``norm_eval``,
        batch norms) in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def _run_block(self, block: Callable[..., Any], x: torch.Tensor,
                   *args: Any) -> Any:
        """``block(x, *args)``, checkpointed when ``with_cp`` and a gradient
        is needed (non-reentrant, so outputs may be tuples and dropout/drop
        path replay the same random numbers)."""
        if self.with_cp and x.requires_grad:
            return checkpoint(block, x, *args, use_reentrant=False)
        return block(x, *args)

    # ------------------------------------------------------------------
    # layer-wise lr decay
    # ------------------------------------------------------------------
    @property
    @abstractmethod
    def num_layers(self) -> int:
        """Layers for lr decay: the stem, one per block, and the top."""

    @abstractmethod
    def layer_id(self, name: str) -> Optional[int]:
        """Layer of a backbone parameter (name without prefix): 0 for the
        stem, ``k + 1`` for the k-th block in forward order, None for the top
        layer (norms after the last block, unused heads)."""

    def get_layer_depth(self, param_name: str,
                        prefix: str = '') -> Tuple[int, int]:
        """Layer id of a parameter for layer-wise lr decay.

        Args:
            param_name (str): Parameter name in the whole model, e.g.
                ``'backbone.blocks.3.attn.qkv.weight'``.
            prefix (str): Prefix of the backbone's parameters in the whole
                model, e.g. ``'backbone.'``. Defaults to ``''``.

        Returns:
            tuple[int, int]: ``(layer_id, num_layers)``; parameters outside
            ``prefix`` (necks, heads) are at the top, ``num_layers - 1``.
        """
        num_layers = self.num_layers
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        layer = self.layer_id(param_name[len(prefix):])
        return (num_layers - 1 if layer is None else layer), num_layers

    # ------------------------------------------------------------------
    # output contract
    # ------------------------------------------------------------------
    @abstractmethod
    def output_shape(self) -> Dict[str, ShapeSpec]:
        """Channels and stride of each output, in ``forward`` order, named
        ``out0``, ``out1``, ... An H x W input (at least
        :attr:`min_input_size`) gives ``ceil(H / stride) x ceil(W /
        stride)`` maps."""

    def batch_norm_stride(self) -> Optional[int]:
        """The largest stride at which a batch norm of this backbone runs
        (None if none can ever see a single value per channel): in training
        mode a batch norm needs more than one. Defaults to the largest output
        stride."""
        return max(self.out_strides)

    def check_input(self, x: torch.Tensor) -> None:
        """Refuse, with a message naming the problem, an input ``forward``
        cannot take (instead of an error from deep inside torch).

        Args:
            x (Tensor): The ``forward`` input.

        Raises:
            ValueError: If ``x`` is not an NCHW tensor with
                :attr:`in_channels` channels and sides of at least
                :attr:`min_input_size`, or if, in training mode, a batch norm
                would see a single value per channel (a batch of one image
                whose map at :meth:`batch_norm_stride` is 1x1).
        """
        name = type(self).__name__
        if not torch.is_tensor(x) or x.dim() != 4:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f'{name} expects an NCHW tensor, got {shape}')
        B, C, H, W = (int(v) for v in x.shape)
        if C != self.in_channels:
            raise ValueError(
                f'{name} expects {self.in_channels} input channels '
                f'(in_channels), got {C} (input shape {tuple(x.shape)})')
        m = self.min_input_size
        if H < m or W < m:
            raise ValueError(
                f'{name} needs inputs of at least {m}x{m}, got {H}x{W}')
        stride = self.batch_norm_stride() if self.training else None
        if stride is not None and B * math.ceil(H / stride) * math.ceil(
                W / stride) == 1 and any(
                    isinstance(mod, _BatchNorm) and mod.training
                    for mod in self.modules()):
            raise ValueError(
                f'{name} in training mode: a batch of one {H}x{W} input '
                f'gives 1x1 maps at stride {stride}, where batch norm needs '
                'more than one value per channel; train on a batch of 2 or '
                f'more, on inputs larger than {stride}x{stride}, or with '
                'norm_eval=True')

    @staticmethod
    def _named_outputs(specs: Sequence[Tuple[int, int]]
                       ) -> Dict[str, ShapeSpec]:
        return {f'out{k}': ShapeSpec(*s) for k, s in enumerate(specs)}

    @property
    def out_channels(self) -> Tuple[int, ...]:
        """Channels of each output (from :meth:`output_shape`)."""
        return tuple(s.channels for s in self.output_shape().values())

    @property
    def out_strides(self) -> Tuple[int, ...]:
        """Stride of each output (from :meth:`output_shape`)."""
        return tuple(s.stride for s in self.output_shape().values())

    def unused_parameter_names(self) -> Tuple[str, ...]:
        """Trainable parameters ``forward`` does not use with the current
        settings (they get no gradient; DDP then needs
        ``find_unused_parameters=True``). Defaults to none."""
        return ()

    def tolerated_missing_keys(self) -> Tuple[str, ...]:
        """``fnmatch`` patterns of this backbone's state-dict keys that a
        (converted) checkpoint may legitimately lack: parts that are ours,
        not the official network's (output norms), or only used outside
        ``forward``. They are not counted by the strict check; a missing one
        is logged as a warning and keeps its initialisation. Batch-norm
        ``num_batches_tracked`` counters are always tolerated. Defaults to
        none."""
        return ()

    def tolerated_unexpected_keys(self) -> Tuple[str, ...]:
        """``fnmatch`` patterns of converted checkpoint keys this backbone
        ignores with the current settings (e.g. the norm of an output it
        does not return). Defaults to none."""
        return ()

    @staticmethod
    def _check_out_indices(out_indices: Union[int, Sequence[int]],
                           num: int) -> Tuple[int, ...]:
        """Validate output indices into ``num`` blocks/stages; negative ones
        count from the end. Returns them non-negative, in the given order."""
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        given = tuple(out_indices)
        if not given or any(
                isinstance(i, bool) or not isinstance(i, int)
                or not -num <= i < num for i in given):
            raise ValueError(f'out_indices must be ints in [-{num}, '
                             f'{num - 1}], got {given}')
        indices = tuple(i % num for i in given)
        if len(set(indices)) != len(indices):
            raise ValueError(f'out_indices {given} has duplicates')
        return indices

    @staticmethod
    def _evenly_spaced(depth: int, num: int = 4) -> Tuple[int, ...]:
        """``num`` evenly spaced block indices ending at the last block
        (fewer for a column shorter than ``num``)."""
        return tuple(
            sorted({max(depth * k // num - 1, 0)
                    for k in range(1, num + 1)}))
