"""ImageNet classification with mmpretrain: our backbones in its scope.

A classifier is mmpretrain's ``ImageClassifier`` around one of our backbones
(the same classes as in the dense configs, registered a second time, into
mmpretrain's model registry) with the official classifier's head:

* ``SuperViT(out_type='cls_token')`` + ``LinearClsHead``: the class token
  after the final norm, then a linear layer (DeiT's head; LV-ViT's main
  head, without its token-labelling auxiliary head);
* ``PatchConvNet(with_attn_pool=True, out_type='cls_token')`` +
  ``LinearClsHead``: the class-attention pooling block and the final norm,
  then a linear layer;
* ``AlterNet(out_indices=(3, ))`` + ``GlobalAveragePooling`` +
  ``LinearClsHead``: the last stage's output norm and ReLU (the official
  classifier's BN + ReLU, kept by the backbone as ``norm3``), global average
  pooling, a linear layer.

mmpretrain's own neck and head fit every family, so this module adds no
layers; it registers the backbones and converts checkpoints between the
official layout and the classifier's (``backbone.*`` = the backbone's keys,
``head.fc.*`` = the official linear head), which needs no mmpretrain
(``tools/model_converters`` use it).

mmpretrain is optional (``pip install -e .[pretrain]``):
:func:`register_into_mmpretrain` does nothing without it.
"""
import os
import os.path as osp
from typing import Callable, Dict, Tuple

import torch

from mmsupervit.models.utils.checkpoint import (CheckpointError, StateDict,
                                                load_checkpoint_file,
                                                unwrap_state_dict)
from .backbones import AlterNet, PatchConvNet, SuperViT
from .backbones.alternet import alternet_to_official, convert_alternet
from .backbones.patchconvnet import (convert_patchconvnet,
                                     patchconvnet_to_official)
from .backbones.supervit import convert_supervit

#: The backbones registered into mmpretrain's scope (``type='AlterNet'`` in
#: an mmpretrain config; ``'mmsupervit.AlterNet'`` works in any scope).
BACKBONES = (AlterNet, PatchConvNet, SuperViT)


def register_into_mmpretrain() -> bool:
    """Register :data:`BACKBONES` into mmpretrain's model registry.

    Returns:
        bool: False when mmpretrain is not installed (nothing registered),
        True otherwise. Calling it again changes nothing.

    Raises:
        ImportError: If mmpretrain is installed but cannot be imported (one
            of its own dependencies is missing): half an install is
            reported, not silently skipped.
    """
    try:
        from mmpretrain.registry import MODELS
    except ModuleNotFoundError as err:
        if err.name != 'mmpretrain':
            raise ImportError(
                f'mmpretrain is installed but cannot be imported ({err}); '
                'install its runtime dependencies with '
                "`pip install -e '.[pretrain]'`, or uninstall it") from err
        return False
    for cls in BACKBONES:
        # module_dict, not MODELS.get: get() would import all of
        # mmpretrain.models on `import mmsupervit`
        if MODELS.module_dict.get(cls.__name__) is not cls:
            MODELS.register_module(module=cls)
    return True


# ----------------------------------------------------------------------
# checkpoint layouts: official <-> mmpretrain classifier
# ----------------------------------------------------------------------
#: Official key prefix of each family's linear head.
_OFFICIAL_HEAD = {
    'AlterNet': 'classifier.0.dense.',
    'PatchConvNet': 'head.',
    'SuperViT': 'head.',
}
#: Key prefix of the linear layer of mmpretrain's ``LinearClsHead`` in the
#: classifier.
CLASSIFIER_HEAD = 'head.fc.'


def _supervit_to_official(state_dict: StateDict) -> StateDict:
    # our SuperViT keeps the official names
    return dict(state_dict)


#: family -> (official -> backbone keys, backbone keys -> official).
_BACKBONE_LAYOUTS: Dict[str, Tuple[Callable[[StateDict], StateDict],
                                   Callable[[StateDict], StateDict]]] = {
    'AlterNet': (convert_alternet, alternet_to_official),
    'PatchConvNet': (lambda sd: convert_patchconvnet(sd, with_attn_pool=True),
                     patchconvnet_to_official),
    'SuperViT': (convert_supervit, _supervit_to_official),
}


def _check_family(family: str) -> None:
    if family not in _BACKBONE_LAYOUTS:
        raise ValueError(f'unknown family {family!r}; expected one of '
                         f'{sorted(_BACKBONE_LAYOUTS)}')


def official_to_classifier(family: str, state_dict: StateDict) -> StateDict:
    """An official classifier's state dict -> mmpretrain classifier keys.

    The backbone part goes through the family's converter (the one the
    ``Pretrained`` load path uses) under ``backbone.``; the official linear
    head becomes ``head.fc.*`` (``LinearClsHead``).

    Args:
        family (str): ``'AlterNet'``, ``'PatchConvNet'`` or ``'SuperViT'``.
        state_dict (dict): Unwrapped official weights, with the head.

    Returns:
        dict: Keys of an ``ImageClassifier`` of the classification configs.

    Raises:
        CheckpointError: If the official head is missing, or keys other
            than LV-ViT's auxiliary head would be lost.
    """
    _check_family(family)
    head = _OFFICIAL_HEAD[family]
    head_sd = {k[len(head):]: v for k, v in state_dict.items()
               if k.startswith(head)}
    if sorted(head_sd) != ['bias', 'weight']:
        raise CheckpointError(
            f'no official {family} linear head ({head}weight/bias) in the '
            f'state dict; its keys start with {sorted(state_dict)[:5]}')
    to_backbone, to_official = _BACKBONE_LAYOUTS[family]
    backbone = to_backbone(state_dict)
    out = {'backbone.' + k: v for k, v in backbone.items()}
    out.update({CLASSIFIER_HEAD + k: v for k, v in head_sd.items()})
    return out


def classifier_to_official(family: str, state_dict: StateDict) -> StateDict:
    """An mmpretrain classifier's state dict -> the official layout.

    The inverse of :func:`official_to_classifier` (exact for an official
    checkpoint without extra keys: ``classifier_to_official(f,
    official_to_classifier(f, sd))`` has the keys, order aside, and tensors
    of ``sd``).

    Args:
        family (str): ``'AlterNet'``, ``'PatchConvNet'`` or ``'SuperViT'``.
        state_dict (dict): ``backbone.*`` and ``head.fc.*`` keys (as in the
            ``state_dict`` of a checkpoint written by mmpretrain).

    Returns:
        dict: Official keys.

    Raises:
        CheckpointError: If keys other than ``backbone.*``, ``head.fc.*``
            and ``data_preprocessor.*`` are present, or the head is missing.
    """
    _check_family(family)
    other = sorted(k for k in state_dict
                   if not k.startswith(('backbone.', CLASSIFIER_HEAD,
                                        'data_preprocessor.')))
    head_sd = {k[len(CLASSIFIER_HEAD):]: v for k, v in state_dict.items()
               if k.startswith(CLASSIFIER_HEAD)}
    if other or sorted(head_sd) != ['bias', 'weight']:
        raise CheckpointError(
            'expected an mmpretrain classifier of the classification configs '
            "('backbone.*' and 'head.fc.weight/bias'); got "
            f'{len(other)} other keys {other[:5]} and head keys '
            f'{sorted(head_sd)}')
    backbone = {k[len('backbone.'):]: v for k, v in state_dict.items()
                if k.startswith('backbone.')}
    out = _BACKBONE_LAYOUTS[family][1](backbone)
    out.update({_OFFICIAL_HEAD[family] + k: v for k, v in head_sd.items()})
    return out


#: The wrapper each family's official training script writes around its
#: state dict (``tests/data/README.md``): the key holding the weights.
_OFFICIAL_WRAPPER = {
    'AlterNet': 'state_dict',  # models/__init__.py::_save, plus 'name'
    'PatchConvNet': 'model',  # deit main.py
    'SuperViT': 'model',  # main_deit.py (DeiT-S)
}


def _family_class(family: str) -> type:
    _check_family(family)
    return next(cls for cls in BACKBONES if cls.__name__ == family)


def convert_classifier_file(family: str, src: str, dst: str,
                            to_official: bool = False) -> str:
    """Convert a checkpoint file between the official classifier layout and
    the mmpretrain classifier layout of the classification configs.

    ``to_official=False``: an official checkpoint (path or URL, as its
    training script wrote it) -> ``{'state_dict': backbone.* + head.fc.*,
    'meta': ...}``, which ``tools/test.py`` / ``load_from`` take as it is.
    ``to_official=True``: a checkpoint an mmpretrain run wrote
    (``work_dirs/<config>/epoch_*.pth``, or the file above) -> the official
    wrapper of the family (AlterNet ``{'name', 'state_dict'}``, PatchConvNet
    and SuperViT ``{'model'}``), loadable by the official code.

    Args:
        family (str): ``'AlterNet'``, ``'PatchConvNet'`` or ``'SuperViT'``.
        src (str): Input checkpoint, path or URL.
        dst (str): Output path (folders are created).
        to_official (bool): Direction. Defaults to False.

    Returns:
        str: A one-line summary for the tools to print.

    Raises:
        CheckpointError: If the input is not a classifier of ``family`` in
            the expected layout (another family, a backbone-only file, an
            LV-ViT classifier on export: the official LV-ViT has a
            token-labelling head this classifier lacks).
    """
    cls = _family_class(family)
    state_dict = unwrap_state_dict(load_checkpoint_file(src))
    if to_official:
        backbone = {k[len('backbone.'):]: v for k, v in state_dict.items()
                    if k.startswith('backbone.')}
        arch = cls.check_converted_checkpoint(backbone, backbone, repr(src))
        if family == 'SuperViT' and 'patch_embed.conv1.weight' in backbone:
            raise CheckpointError(
                f'{src!r} is an LV-ViT classifier: the official LV-ViT has '
                'a token-labelling head (aux_head) this classifier lacks, '
                'so it cannot be exported to the official layout')
        official = classifier_to_official(family, state_dict)
        out = {_OFFICIAL_WRAPPER[family]: official}
        if family == 'AlterNet':
            out['name'] = f'alternet_{arch}' if isinstance(arch, str) \
                else 'alternet'
        written = official
    else:
        # the family first: another family's file is named as such
        arch = cls.check_converted_checkpoint(state_dict, state_dict,
                                              repr(src))
        converted = official_to_classifier(family, state_dict)
        out = dict(
            state_dict=converted,
            meta=dict(source=src, converter=f'{family} official -> '
                      'mmpretrain classifier', recognised_arch=arch))
        written = converted
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(out, dst)
    layout = 'official' if to_official else 'mmpretrain classifier'
    return (f'saved {len(written)} tensors ({family}, arch {arch!r}) in the '
            f'{layout} layout to {dst}')
