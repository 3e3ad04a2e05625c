"""Input widths of necks and heads read from the backbone's declaration.

Our backbones declare what they return (:meth:`DenseBackbone.output_shape`:
channels and stride of every output). A neck or decode head whose config says
``in_channels='auto'`` gets its width from that declaration, passed on
through the necks, so a config changes the backbone variant in one line
(``arch='B60'`` instead of ``arch='S60'``) and every width follows.

How the widths are found, without building anything for real:

1. the backbone is built on the ``meta`` device (no memory, no computation)
   and its :meth:`output_shape` read;
2. each neck, in order, gets its ``in_channels`` (an int when its
   constructor annotates ``in_channels: int``, like
   :class:`~mmsupervit.models.necks.ColumnPyramidNeck`; otherwise one width
   per input, like mmdet's ``FPN``), is built on ``meta`` and run on ``meta``
   maps of the declared widths and strides, which gives its output widths;
3. a decode head gets the width(s) its ``in_index`` selects (an int for an
   int index, a list for a list of indices), as mmseg's heads expect.

:class:`EncoderDecoder` (mmseg) and :class:`MaskRCNN` (mmdet) do this before
building their parts; everything else is the upstream class, so state dicts
and checkpoints are the same as mmseg's/mmdet's.
"""
import copy
import inspect
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmengine.registry import Registry

from mmsupervit.registry import MODELS

#: The placeholder for a width read from the backbone's declaration.
AUTO = 'auto'

NeckCfg = Optional[Union[dict, List[dict]]]
InitCfg = Optional[Union[dict, List[dict]]]

# Side of the nominal input for the meta forward through the necks: any size
# works (nothing is computed); this one keeps every level at least 1 pixel.
_NOMINAL_INPUT = 1024


def _is_auto(cfg: Optional[dict]) -> bool:
    return cfg is not None and isinstance(cfg.get('in_channels'), str) and \
        cfg['in_channels'] == AUTO


def _wants_int(registry: Registry, cfg: dict) -> bool:
    """Whether the module of ``cfg`` takes one width (``in_channels: int``)
    rather than one per input."""
    cls = registry.get(cfg['type']) if isinstance(cfg['type'], str) \
        else cfg['type']
    if cls is None:
        raise KeyError(f"{cfg['type']!r} is not registered in "
                       f'{registry.scope}::{registry.name}')
    param = inspect.signature(cls.__init__).parameters.get('in_channels')
    return param is not None and param.annotation in (int, 'int')


def _single_width(channels: Sequence[int], what: str) -> int:
    if len(set(channels)) != 1:
        raise ValueError(
            f"{what} has in_channels='auto' and takes a single width, but "
            f'its inputs have different widths {list(channels)}; give '
            'in_channels explicitly')
    return channels[0]


def _meta_outputs(module: torch.nn.Module, channels: Sequence[int],
                  strides: Sequence[int]) -> Tuple[List[int], List[int]]:
    """Run ``module`` on meta maps of the given widths and strides; return
    the widths and strides of its outputs."""
    maps = [
        torch.empty(1, c, math.ceil(_NOMINAL_INPUT / s),
                    math.ceil(_NOMINAL_INPUT / s), device='meta')
        for c, s in zip(channels, strides)
    ]
    with torch.no_grad():
        outs = module(maps)
    return ([int(o.shape[1]) for o in outs],
            [_NOMINAL_INPUT // int(o.shape[-1]) for o in outs])


def resolve_auto_channels(registry: Registry,
                          backbone: dict,
                          neck: NeckCfg = None,
                          heads: Sequence[Optional[dict]] = ()
                          ) -> Tuple[NeckCfg, List[Optional[dict]]]:
    """Fill every ``in_channels='auto'`` from the backbone's output_shape.

    Args:
        registry (Registry): The registry the model builds its parts from
            (mmseg's or mmdet's ``MODELS``).
        backbone (dict): The backbone config; its class must provide
            ``output_shape()`` (every mmsupervit backbone does).
        neck (dict | list[dict], optional): One neck or a list of necks run
            in order. Defaults to None.
        heads (Sequence[dict | None]): Decode heads reading the last neck's
            (or the backbone's) outputs through their ``in_index``.
            Defaults to ``()``.

    Returns:
        tuple: ``(neck, heads)``: copies with every ``'auto'`` replaced; the
        configs without ``'auto'`` are returned as given.

    Raises:
        TypeError: If a config asks for ``'auto'`` and the backbone does not
            declare its outputs.
        ValueError: If a module that takes one width gets inputs of
            different widths, or an ``in_index`` is out of range.
    """
    necks = neck if isinstance(neck, (list, tuple)) else \
        ([] if neck is None else [neck])
    if not any(_is_auto(c) for c in list(necks) + list(heads)):
        return neck, list(heads)
    necks = [copy.deepcopy(c) for c in necks]
    heads = [copy.deepcopy(c) for c in heads]

    with torch.device('meta'):
        model = registry.build(copy.deepcopy(backbone))
    if not callable(getattr(model, 'output_shape', None)):
        raise TypeError(
            f"in_channels='auto' needs a backbone that declares its outputs "
            f'(output_shape()); {type(model).__name__} does not')
    specs = list(model.output_shape().values())
    channels = [s.channels for s in specs]
    strides = [s.stride for s in specs]

    for cfg in necks:
        if _is_auto(cfg):
            what = f"neck {cfg['type']!r}"
            cfg['in_channels'] = _single_width(channels, what) \
                if _wants_int(registry, cfg) else list(channels)
        with torch.device('meta'):
            module = registry.build(copy.deepcopy(cfg))
        channels, strides = _meta_outputs(module, channels, strides)

    for cfg in heads:
        if not _is_auto(cfg):
            continue
        index = cfg.get('in_index', -1)
        picks = list(index) if isinstance(index, (list, tuple)) else [index]
        if any(not -len(channels) <= i < len(channels) for i in picks):
            raise ValueError(
                f"head {cfg['type']!r}: in_index {index} is out of range for "
                f'{len(channels)} inputs (widths {channels})')
        widths = [channels[i] for i in picks]
        cfg['in_channels'] = widths if isinstance(index,
                                                  (list, tuple)) else widths[0]

    if neck is None:
        resolved_neck: NeckCfg = None
    elif isinstance(neck, (list, tuple)):
        resolved_neck = necks
    else:
        resolved_neck = necks[0]
    return resolved_neck, heads


# mmseg and mmdet are optional extras ('seg', 'det'): each model is defined
# only when its library is installed.
try:
    from mmseg.models.segmentors import EncoderDecoder as _MMSegEncoderDecoder
    from mmseg.registry import MODELS as MMSEG_MODELS
except ImportError:
    _MMSegEncoderDecoder = None

if _MMSegEncoderDecoder is not None:

    @MODELS.register_module()
    class EncoderDecoder(_MMSegEncoderDecoder):
        """mmseg's ``EncoderDecoder`` with ``in_channels='auto'`` support.

        Necks, the decode head and the auxiliary head(s) may say
        ``in_channels='auto'``; see :func:`resolve_auto_channels`. Arguments
        and behaviour are otherwise those of ``mmseg.models.EncoderDecoder``.
        """

        def __init__(self,
                     backbone: dict,
                     decode_head: dict,
                     neck: NeckCfg = None,
                     auxiliary_head: Optional[Union[dict, List[dict]]] = None,
                     train_cfg: Optional[dict] = None,
                     test_cfg: Optional[dict] = None,
                     data_preprocessor: Optional[dict] = None,
                     pretrained: Optional[str] = None,
                     init_cfg: InitCfg = None) -> None:
            aux_list = isinstance(auxiliary_head, (list, tuple))
            auxes = list(auxiliary_head) if aux_list else [auxiliary_head]
            neck, heads = resolve_auto_channels(MMSEG_MODELS, backbone, neck,
                                                [decode_head] + auxes)
            decode_head, auxes = heads[0], heads[1:]
            super().__init__(
                backbone=backbone,
                decode_head=decode_head,
                neck=neck,
                auxiliary_head=auxes if aux_list else auxes[0],
                train_cfg=train_cfg,
                test_cfg=test_cfg,
                data_preprocessor=data_preprocessor,
                pretrained=pretrained,
                init_cfg=init_cfg)


try:
    from mmdet.models.detectors import MaskRCNN as _MMDetMaskRCNN
    from mmdet.registry import MODELS as MMDET_MODELS
except ImportError:
    _MMDetMaskRCNN = None

if _MMDetMaskRCNN is not None:

    @MODELS.register_module()
    class MaskRCNN(_MMDetMaskRCNN):
        """mmdet's ``MaskRCNN`` with ``in_channels='auto'`` support in necks.

        See :func:`resolve_auto_channels`. Arguments and behaviour are
        otherwise those of ``mmdet.models.MaskRCNN``.
        """

        def __init__(self,
                     backbone: dict,
                     rpn_head: dict,
                     roi_head: dict,
                     train_cfg: dict,
                     test_cfg: dict,
                     neck: NeckCfg = None,
                     data_preprocessor: Optional[dict] = None,
                     init_cfg: InitCfg = None) -> None:
            neck, _ = resolve_auto_channels(MMDET_MODELS, backbone, neck)
            super().__init__(
                backbone=backbone,
                rpn_head=rpn_head,
                roi_head=roi_head,
                train_cfg=train_cfg,
                test_cfg=test_cfg,
                neck=neck,
                data_preprocessor=data_preprocessor,
                init_cfg=init_cfg)


__all__ = ['AUTO', 'resolve_auto_channels']

