"""What every dense backbone of mmsupervit shares, implemented once.

:class:`DenseBackbone` owns the parts of a backbone that are the same for
SuperViT, AlterNet and PatchConvNet, so each of them only describes its own
layers:

* ``arch``: a name from the class's :attr:`~DenseBackbone.arch_zoo` (aliases
  and case-insensitive names allowed) or a dict of settings;
* ``init_cfg``: the backbone's official initialisation, then mmengine's
  initialisers, then a ``Pretrained`` checkpoint (given alone or inside a
  list) that always goes through the backbone's own converter;
* ``frozen_stages``, ``norm_eval`` and ``with_cp``;
* ``get_layer_depth`` for :class:`LayerDecayOptimWrapperConstructor`;
* the output contract: :meth:`~DenseBackbone.output_shape` declares the
  channels and stride of every output.
"""
from abc import abstractmethod
from typing import (Any, Callable, ClassVar, Dict, List, NamedTuple,
                    Optional, Sequence, Tuple, Union)

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.model.weight_init import PretrainedInit
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint

from ..utils.checkpoint import StateDict, load_pretrained

InitCfg = Optional[Union[dict, List[dict]]]
StageMember = Union[nn.Module, nn.Parameter]

#: Keys of a ``Pretrained`` init_cfg entry: those of mmengine's
#: ``PretrainedInit``, and ``hint``, a sentence added to the error when a local
#: checkpoint file is missing (how to make or download it).
_PRETRAINED_KEYS = ('type', 'checkpoint', 'prefix', 'map_location', 'hint')


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
    return cfg, others


class DenseBackbone(BaseModule):
    """Base class of the dense-prediction backbones.

    A subclass calls ``super().__init__(arch, frozen_stages, norm_eval,
    with_cp, init_cfg)`` first (after which :attr:`arch_settings` holds the
    resolved arch), builds its layers, and calls :meth:`_post_init` last
    (official initialisation and freezing). It implements the abstract hooks:
    :meth:`init_default_weights`, :meth:`convert_checkpoint`,
    :attr:`num_stages`, :meth:`stage_members`, :attr:`num_layers`,
    :meth:`layer_id`, :meth:`output_shape` and ``forward``.

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
            Defaults to None.
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
    #: Parameter-name substrings without weight decay (read by
    #: ``LayerDecayOptimWrapperConstructor``).
    no_weight_decay_keywords: ClassVar[Tuple[str, ...]] = ()

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
        """Load a ``Pretrained`` init_cfg entry.

        Reads the checkpoint (path or URL, through mmengine's
        ``CheckpointLoader``), unwraps it, keeps the keys under
        ``cfg['prefix']`` (stripped), converts them with
        :meth:`convert_checkpoint` and loads them with shape checks
        (:func:`~mmsupervit.models.utils.checkpoint.load_pretrained`).

        Args:
            cfg (dict): ``dict(type='Pretrained', checkpoint=...,
                prefix=None, map_location='cpu', hint=None)``.

        Returns:
            tuple[list[str], list[str]]: Missing and unexpected keys.

        Raises:
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
                map_location=cfg.get('map_location', 'cpu'))
        except FileNotFoundError as err:
            if not cfg.get('hint'):
                raise
            raise FileNotFoundError(f"{err} ({cfg['hint']})") from err

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
