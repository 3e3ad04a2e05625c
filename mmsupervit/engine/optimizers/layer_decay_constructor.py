"""One layer-wise learning-rate decay constructor for every backbone."""
from typing import Dict, List, Optional, Tuple

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor

from mmsupervit.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay driven by the backbone's ``get_layer_depth``.

    Unlike mmseg's ``LearningRateDecayOptimizerConstructor`` this does not
    dispatch on class names: any backbone that implements
    ``get_layer_depth(param_name, prefix) -> (layer_id, num_layers)`` works
    (SuperViT, AlterNet and PatchConvNet do). A parameter at ``layer_id`` gets
    ``lr = base_lr * layer_decay_rate ** (num_layers - layer_id - 1)``;
    parameters outside the backbone (neck, heads) are at the top
    (``num_layers - 1``) and keep ``base_lr``.

    No weight decay for: every parameter with at most one dimension (norm
    weights, biases, 1-D layer scales), and parameters whose name contains one
    of the backbone's ``no_weight_decay_keywords`` (position tables, class
    tokens, layer scales) or of ``paramwise_cfg['no_decay_keywords']``.

    Example:
        >>> optim_wrapper = dict(
        ...     type='OptimWrapper',
        ...     constructor='mmsupervit.LayerDecayOptimWrapperConstructor',
        ...     optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        ...     paramwise_cfg=dict(layer_decay_rate=0.9))

    Args:
        optim_wrapper_cfg (dict): The optimizer wrapper config, with an
            ``optimizer`` entry giving ``lr`` and ``weight_decay``.
        paramwise_cfg (dict, optional): Keys:

            - ``layer_decay_rate`` (float): in (0, 1]. Defaults to 1.0
              (no decay; the no-weight-decay rules still apply).
            - ``no_decay_keywords`` (Sequence[str]): extra name substrings
              without weight decay. Defaults to ``()``.
            - ``backbone`` (str): attribute of the model holding the backbone.
              Defaults to ``'backbone'``.
    """

    _KEYS = ('layer_decay_rate', 'no_decay_keywords', 'backbone')

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        paramwise_cfg = dict(paramwise_cfg or {})
        unknown = sorted(set(paramwise_cfg) - set(self._KEYS))
        if unknown:
            raise KeyError(f'{type(self).__name__}: unknown paramwise_cfg '
                           f'keys {unknown}; valid keys are {self._KEYS}')
        rate = paramwise_cfg.setdefault('layer_decay_rate', 1.0)
        if not 0 < rate <= 1:
            raise ValueError(
                f'layer_decay_rate must be in (0, 1], got {rate}')
        paramwise_cfg.setdefault('no_decay_keywords', ())
        paramwise_cfg.setdefault('backbone', 'backbone')
        # Always take the param-wise path of the parent's __call__.
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def _validate_cfg(self) -> None:
        if self.base_lr is None:
            raise ValueError('optimizer config must set lr for layer decay')

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   is_dcn_module=None) -> None:
        """Fill ``params`` with one group per (layer, weight-decay) pair.

        Args:
            params (list[dict]): Filled in place.
            module (nn.Module): The whole model (segmentor/detector).
            prefix (str): Unused (kept for the parent's signature).
            is_dcn_module: Unused.
        """
        cfg = self.paramwise_cfg
        name = cfg['backbone']
        backbone = getattr(module, name, None)
        if backbone is None or not callable(
                getattr(backbone, 'get_layer_depth', None)):
            raise TypeError(
                f'{type(self).__name__} needs model.{name} with a '
                f'get_layer_depth(param_name, prefix) method; got '
                f'{type(backbone).__name__}')
        no_decay_keys = tuple(
            getattr(backbone, 'no_weight_decay_keywords', ())) + tuple(
                cfg['no_decay_keywords'])
        rate = cfg['layer_decay_rate']
        base_wd = self.base_wd or 0.0

        groups: Dict[Tuple[int, bool], dict] = {}
        for pname, param in module.named_parameters():
            if not param.requires_grad:
                continue
            layer_id, num_layers = backbone.get_layer_depth(
                pname, prefix=f'{name}.')
            no_decay = param.ndim <= 1 or any(k in pname
                                               for k in no_decay_keys)
            key = (layer_id, no_decay)
            if key not in groups:
                scale = rate**(num_layers - layer_id - 1)
                groups[key] = dict(
                    params=[],
                    param_names=[],
                    lr=self.base_lr * scale,
                    lr_scale=scale,
                    layer_id=layer_id,
                    weight_decay=0.0 if no_decay else base_wd)
            groups[key]['params'].append(param)
            groups[key]['param_names'].append(pname)
        ordered = [groups[k] for k in sorted(groups)]
        params.extend(ordered)
        print_log(
            f'layer decay {rate}: {len(ordered)} parameter groups over '
            f'{1 + max(k[0] for k in groups)} layers', logger='current')
