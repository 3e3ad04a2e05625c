"""Loading official checkpoints: one path for ``init_cfg`` and the converters.

Every backbone owns a ``convert_<name>(state_dict) -> state_dict`` function
(official key layout -> ours). This module does everything around it, the
same way for all three backbones:

* :func:`load_checkpoint_file` reads a local path or URL and turns a
  truncated or corrupt file into a clear error. URLs are downloaded once into
  torch hub's cache (``$TORCH_HOME/hub/checkpoints``, the place mmengine and
  torch.hub use), safely when several processes start together: the bytes go
  to a temporary file in the same folder, are loaded, and only then renamed
  onto the cache name, so the cache never holds a partial file; a file lock
  makes the other processes wait for that download instead of repeating it.
* :func:`unwrap_state_dict` takes the weights out of the wrapper the official
  training scripts write (``model``, ``state_dict``, ``state_dict_ema``).
* :func:`load_state_dict_checked` loads with shape checks that name the key and
  both shapes, and logs missing/unexpected keys.

Safe loading: local files and URLs are read with ``torch.load(...,
weights_only=True)``: official checkpoints hold tensors and plain containers
only (the SuperViT ones also an ``argparse.Namespace``, and checkpoints
written by an mmengine Runner also ``HistoryBuffer`` and numpy objects; both
are allow-listed, nothing more, by :mod:`mmsupervit.utils.compat`). Nothing
here unpickles arbitrary objects. Other prefixes (``open-mmlab://``,
``torchvision://``, ``s3://``, ...) are left to mmengine's
``CheckpointLoader``; for URLs behind them it calls
``torch.hub.load_state_dict_from_url``, which unpickles fully
(``weights_only=False`` is its default) -- use a plain ``https://`` URL or a
local path to stay on the safe loader.
"""
import glob
import http.client
import logging
import os
import os.path as osp
import pickle
import uuid
from contextlib import contextmanager
from typing import (Callable, Dict, Iterable, Iterator, List, Optional,
                    Tuple)
from urllib.parse import urlparse

import torch
import torch.nn as nn
from filelock import FileLock
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

StateDict = Dict[str, torch.Tensor]


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used: corrupt file, wrong layout or wrong arch."""


def _hub_cache_path(url: str) -> str:
    """Where ``torch.hub``/mmengine's ``load_url`` caches a downloaded URL."""
    filename = osp.basename(urlparse(url).path)
    return osp.join(torch.hub.get_dir(), 'checkpoints', filename)


def _is_safe_loader_refusal(err: Exception) -> bool:
    """Whether ``torch.load(weights_only=True)`` refused an intact file."""
    return (isinstance(err, pickle.UnpicklingError)
            and 'Weights only load failed' in str(err))


def _torch_load(path: str, map_location: str, source: str) -> object:
    """``torch.load`` with the safe loader; errors name ``source``.

    Raises:
        CheckpointError: If the file is truncated, corrupt, not a PyTorch
            file, or holds objects the safe loader does not allow.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for bad files
        if _is_safe_loader_refusal(err):
            raise CheckpointError(
                f'checkpoint {source!r} holds Python objects that the safe '
                'loader (torch.load weights_only=True) does not allow, so it '
                'is not read. If you trust the file, load it once with '
                'torch.load(..., weights_only=False) and save only its '
                f'tensors. ({err})') from err
        raise CheckpointError(
            f'could not read checkpoint {source!r}: the file is truncated, '
            f'corrupt or not a PyTorch checkpoint ({type(err).__name__}: '
            f'{err})') from err


@contextmanager
def _download_lock(cached: str, logger: str) -> Iterator[bool]:
    """Hold a file lock for downloading ``cached`` (one download at a time).

    The lock files live in a ``.locks`` folder beside the cache. Where the
    file system cannot lock, the download goes ahead unlocked: the rename in
    :func:`_download_checked` alone keeps the cache consistent, the lock only
    saves repeated downloads.

    Yields:
        bool: Whether the lock is held.
    """
    lock_dir = osp.join(osp.dirname(cached), '.locks')
    os.makedirs(lock_dir, exist_ok=True)
    lock = FileLock(osp.join(lock_dir, osp.basename(cached) + '.lock'))
    try:
        lock.acquire()
    except OSError as err:
        print_log(
            f'could not lock {lock.lock_file} ({err}); downloading without '
            'a lock', logger=logger, level=logging.WARNING)
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def _download_checked(url: str, cached: str, map_location: str,
                      logger: str) -> object:
    """Download ``url`` to ``cached`` and return the loaded checkpoint.

    The file is written under a unique temporary name in the cache folder and
    renamed onto ``cached`` (atomic on one file system) only after it loaded,
    so readers never see a partial or corrupt file under the cache name.
    """
    partial = f'{cached}.{uuid.uuid4().hex}.partial'
    print_log(f'downloading {url} to {cached}', logger=logger)
    try:
        try:
            torch.hub.download_url_to_file(
                url, partial, progress=os.isatty(2))
        except (OSError, http.client.HTTPException) as err:
            # includes an interrupted transfer (IncompleteRead) and HTTP
            # errors such as 404
            raise CheckpointError(
                f'could not read checkpoint {url!r}: the download failed '
                f'({type(err).__name__}: {err})') from err
        checkpoint = _torch_load(partial, map_location, url)
        os.replace(partial, cached)
    finally:
        if osp.exists(partial):
            os.remove(partial)
    return checkpoint


def _load_url(url: str, map_location: str, logger: str) -> object:
    """Read ``url`` from torch hub's cache, downloading it once if needed."""
    cached = _hub_cache_path(url)
    os.makedirs(osp.dirname(cached), exist_ok=True)
    with _download_lock(cached, logger) as locked:
        if not osp.isfile(cached):
            if locked:
                # Temporary files of downloads that were killed: only the
                # lock holder downloads, so none of them is in use.
                for stale in glob.glob(glob.escape(cached) + '.*.partial'):
                    os.remove(stale)
            return _download_checked(url, cached, map_location, logger)
    try:
        return _torch_load(cached, map_location, url)
    except CheckpointError as err:
        if not _is_safe_loader_refusal(err.__cause__):
            # Never leave a corrupt download behind (e.g. one written by an
            # older tool without the rename): the next run would load the
            # same broken bytes forever.
            os.remove(cached)
            print_log(f'removed corrupt cached download {cached}',
                      logger=logger, level=logging.WARNING)
        raise


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
        CheckpointError: If the file is truncated, corrupt, not a checkpoint
            or holds objects the safe loader does not allow.
    """
    if filename.startswith(('http://', 'https://')):
        checkpoint = _load_url(filename, map_location, logger)
    elif '://' not in filename:
        path = osp.expanduser(filename)
        if not osp.isfile(path):
            raise FileNotFoundError(f'checkpoint file not found: {filename}')
        checkpoint = _torch_load(path, map_location, filename)
    else:
        try:
            checkpoint = CheckpointLoader.load_checkpoint(
                filename, map_location=map_location, logger=logger)
        except (FileNotFoundError, PermissionError):
            raise
        except Exception as err:  # torch raises several types for bad files
            raise CheckpointError(
                f'could not read checkpoint {filename!r} ('
                f'{type(err).__name__}: {err})') from err
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
