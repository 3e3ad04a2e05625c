"""Loading official checkpoints: one path for ``init_cfg`` and the converters.

Every backbone owns a ``convert_<name>(state_dict) -> state_dict`` function
(official key layout -> ours). This module does everything around it, the
same way for all three backbones:

* :func:`load_checkpoint_file` reads a local path or URL through mmengine's
  ``CheckpointLoader`` (so ``init_cfg`` URLs are downloaded and cached as
  usual) and turns a truncated or corrupt file into a clear error, removing a
  corrupt *downloaded* cache entry so the next run downloads it again.
* :func:`unwrap_state_dict` takes the weights out of the wrapper the official
  training scripts write (``model``, ``state_dict``, ``state_dict_ema``).
* :func:`load_state_dict_checked` loads with shape checks that name the key and
  both shapes, and logs missing/unexpected keys.
"""
import os
import os.path as osp
from typing import Callable, Dict, Iterable, List, Optional, Tuple
from urllib.parse import urlparse

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

StateDict = Dict[str, torch.Tensor]


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used: corrupt file, wrong layout or wrong arch."""


def _hub_cache_path(url: str) -> str:
    """Where ``torch.hub``/mmengine's ``load_url`` caches a downloaded URL."""
    filename = osp.basename(urlparse(url).path)
    return osp.join(torch.hub.get_dir(), 'checkpoints', filename)


def load_checkpoint_file(filename: str,
                         map_location: str = 'cpu',
                         logger: str = 'current') -> dict:
    """Read a checkpoint from a path or URL with a clear error when broken.

    Args:
        filename (str): Local path, ``http(s)://`` URL or any prefix
            mmengine's ``CheckpointLoader`` knows.
        map_location (str): Passed to ``torch.load``. Defaults to ``'cpu'``.
        logger (str): mmengine logger name. Defaults to ``'current'``.

    Returns:
        dict: The object stored in the file.

    Raises:
        FileNotFoundError: If a local file does not exist.
        CheckpointError: If the file is truncated, corrupt or not a checkpoint.
    """
    is_url = filename.startswith(('http://', 'https://'))
    if not is_url and '://' not in filename and not osp.isfile(
            osp.expanduser(filename)):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    try:
        checkpoint = CheckpointLoader.load_checkpoint(
            filename, map_location=map_location, logger=logger)
    except (FileNotFoundError, PermissionError):
        raise
    except Exception as err:  # torch raises several types for bad files
        if is_url:
            cached = _hub_cache_path(filename)
            if osp.exists(cached):
                # Never leave a corrupt download behind: the next run would
                # load the same broken bytes forever.
                os.remove(cached)
                print_log(
                    f'removed corrupt cached download {cached}',
                    logger=logger)
        raise CheckpointError(
            f'could not read checkpoint {filename!r}: the file is truncated, '
            f'corrupt or not a PyTorch checkpoint ({type(err).__name__}: '
            f'{err})') from err
    if not isinstance(checkpoint, dict):
        raise CheckpointError(
            f'checkpoint {filename!r} holds a {type(checkpoint).__name__}, '
            'expected a dict (a state_dict or a wrapper around one)')
    return checkpoint


def unwrap_state_dict(
    checkpoint: dict,
    keys: Iterable[str] = ('state_dict_ema', 'state_dict', 'model')
) -> StateDict:
    """Return the weights stored in an official checkpoint wrapper.

    Args:
        checkpoint (dict): What ``torch.load`` returned.
        keys (Iterable[str]): Wrapper keys in order of preference. The EMA
            weights come first because the published accuracies of timm-style
            checkpoints (LV-ViT) are those of the EMA model. Defaults to
            ``('state_dict_ema', 'state_dict', 'model')``.

    Returns:
        dict: A flat state dict; fp16 tensors are returned as fp32 (exact).
    """
    state_dict = checkpoint
    for key in keys:
        if isinstance(checkpoint.get(key), dict) and checkpoint[key]:
            state_dict = checkpoint[key]
            break
    tensors = {k: v for k, v in state_dict.items() if torch.is_tensor(v)}
    if not tensors:
        raise CheckpointError(
            'no tensors found in the checkpoint; top-level keys are '
            f'{sorted(checkpoint)[:10]}')
    # DataParallel/DistributedDataParallel prefixes.
    if all(k.startswith('module.') for k in tensors):
        tensors = {k[len('module.'):]: v for k, v in tensors.items()}
    return {
        k: (v.float() if v.dtype in (torch.float16, torch.bfloat16) else v)
        for k, v in tensors.items()
    }


def load_state_dict_checked(module: nn.Module,
                            state_dict: StateDict,
                            strict: bool = False,
                            logger: str = 'current',
                            source: str = 'checkpoint'
                            ) -> Tuple[List[str], List[str]]:
    """Load a converted state dict, failing on the first shape mismatch.

    Args:
        module (nn.Module): The model to load into.
        state_dict (dict): Already converted to ``module``'s key names.
        strict (bool): Also fail on missing or unexpected keys.
            Defaults to False (they are logged).
        logger (str): mmengine logger name. Defaults to ``'current'``.
        source (str): Name used in messages. Defaults to ``'checkpoint'``.

    Returns:
        tuple[list[str], list[str]]: Missing and unexpected keys.

    Raises:
        CheckpointError: On a shape mismatch (naming the key and both shapes)
            or, with ``strict=True``, on missing/unexpected keys.
    """
    own = module.state_dict()
    for key, value in state_dict.items():
        if key in own and own[key].shape != value.shape:
            raise CheckpointError(
                f'{source} does not fit {type(module).__name__}: key '
                f'{key!r} has shape {tuple(value.shape)} in the checkpoint '
                f'but {tuple(own[key].shape)} in the model (wrong arch or '
                'wrong checkpoint?)')
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    if strict and (missing or unexpected):
        raise CheckpointError(
            f'{source} does not fit {type(module).__name__}: '
            f'missing keys {missing[:10]}{"..." if len(missing) > 10 else ""}'
            f', unexpected keys {unexpected[:10]}'
            f'{"..." if len(unexpected) > 10 else ""}')
    module.load_state_dict(state_dict, strict=False)
    if missing:
        print_log(
            f'{source}: missing keys (left at their initialisation): '
            f'{missing}', logger=logger)
    if unexpected:
        print_log(f'{source}: unexpected keys (ignored): {unexpected}',
                  logger=logger)
    return missing, unexpected


def load_pretrained(module: nn.Module,
                    checkpoint: str,
                    convert: Optional[Callable[[StateDict], StateDict]],
                    prefix: Optional[str] = None,
                    map_location: str = 'cpu',
                    logger: str = 'current') -> Tuple[List[str], List[str]]:
    """``init_cfg=dict(type='Pretrained', ...)`` for our backbones.

    Reads ``checkpoint``, unwraps it, keeps only the keys under ``prefix``
    (e.g. ``'backbone.'`` for a checkpoint of a whole detector) and, when the
    keys are in the official layout, converts them with ``convert``.

    Args:
        module (nn.Module): The backbone.
        checkpoint (str): Path or URL.
        convert (callable, optional): Official -> ours conversion. It must be
            idempotent on already converted state dicts.
        prefix (str, optional): Keep only keys starting with it, stripped.
            Defaults to None.
        map_location (str): Defaults to ``'cpu'``.
        logger (str): Defaults to ``'current'``.

    Returns:
        tuple[list[str], list[str]]: Missing and unexpected keys.
    """
    ckpt = load_checkpoint_file(checkpoint, map_location, logger)
    state_dict = unwrap_state_dict(ckpt)
    if prefix:
        if not prefix.endswith('.'):
            prefix += '.'
        state_dict = {
            k[len(prefix):]: v
            for k, v in state_dict.items() if k.startswith(prefix)
        }
        if not state_dict:
            raise CheckpointError(
                f'no key of {checkpoint!r} starts with prefix {prefix!r}')
    if convert is not None:
        state_dict = convert(state_dict)
    print_log(f'load pretrained {type(module).__name__} from {checkpoint}',
              logger=logger)
    return load_state_dict_checked(
        module, state_dict, logger=logger, source=f'checkpoint {checkpoint!r}')
