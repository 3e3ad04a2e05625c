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
* :func:`compare_state_dict` / :func:`check_key_report` decide whether a
  converted state dict fits a model: shapes must agree (the error names the
  key and both shapes) and, unless ``strict=False``, enough of the weights
  the model needs must be there (``min_loaded``, default all of them) and
  nothing else. Keys a backbone declares optional are never counted. A
  wrong-architecture checkpoint thus fails with a message that says what it
  looks like instead of leaving the model randomly initialised.
* :func:`load_state_dict_checked` checks, loads, and logs what was left out.

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
import math
import os
import os.path as osp
import pickle
import uuid
from contextlib import contextmanager
from fnmatch import fnmatchcase
from typing import (Callable, Dict, Iterable, Iterator, List, NamedTuple,
                    Optional, Sequence, Tuple)
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


#: Keys no checkpoint has to hold and that are never reported: batch-norm
#: step counters (torch adds them; older checkpoints and some official ones
#: lack them, and they only matter for cumulative-average momentum).
COUNTER_KEYS: Tuple[str, ...] = ('*num_batches_tracked', )

#: How many keys of each kind an error message lists.
_FIRST = 5


def _matches(key: str, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(key, p) for p in patterns)


def _percent(fraction: float) -> str:
    # rounded down: 99.99% must not read as 100%
    return f'{math.floor(fraction * 1000) / 10}%'


def _first(keys: Sequence[str]) -> str:
    more = f' ... (+{len(keys) - _FIRST})' if len(keys) > _FIRST else ''
    return f'{list(keys[:_FIRST])}{more}'


class KeyReport(NamedTuple):
    """How a state dict fits a module (see :func:`compare_state_dict`).

    Attributes:
        matched (list[str]): Keys in both, with the same shape.
        missing (list[str]): Required keys of the module the state dict
            lacks.
        unexpected (list[str]): Keys of the state dict the module lacks and
            does not tolerate.
        mismatched (list[tuple]): ``(key, checkpoint shape, model shape)``.
        tolerated_missing (list[str]): Missing keys the module declares
            optional (batch-norm counters not included).
        tolerated_unexpected (list[str]): Extra keys the module declares
            ignorable.
        required_numel (int): Elements of the module's required (not
            tolerated) tensors.
        loaded_numel (int): How many of them the state dict fills (same key
            and shape).
    """
    matched: List[str]
    missing: List[str]
    unexpected: List[str]
    mismatched: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]]
    tolerated_missing: List[str]
    tolerated_unexpected: List[str]
    required_numel: int
    loaded_numel: int

    @property
    def loaded_fraction(self) -> float:
        """``loaded_numel / required_numel``; 1.0 when nothing is
        required."""
        if not self.required_numel:
            return 1.0
        return self.loaded_numel / self.required_numel

    def summary(self) -> str:
        """Counts and the first few keys of each kind, for messages."""
        parts = [f'{len(self.matched)} keys match']
        if self.missing:
            parts.append(f'{len(self.missing)} missing {_first(self.missing)}')
        if self.unexpected:
            parts.append(f'{len(self.unexpected)} unexpected '
                         f'{_first(self.unexpected)}')
        if self.mismatched:
            parts.append(f'{len(self.mismatched)} with another shape '
                         f'{_first([k for k, _, _ in self.mismatched])}')
        if self.tolerated_missing:
            parts.append(f'{len(self.tolerated_missing)} optional ones '
                         f'missing {_first(self.tolerated_missing)}')
        return '; '.join(parts)


def compare_state_dict(own: StateDict,
                       state_dict: StateDict,
                       tolerated_missing: Sequence[str] = (),
                       tolerated_unexpected: Sequence[str] = ()
                       ) -> KeyReport:
    """Compare a (converted) state dict with a module's, without loading.

    Args:
        own (dict): The module's ``state_dict()`` (tensors may be on the
            ``meta`` device: only names and shapes are read).
        state_dict (dict): The weights to compare.
        tolerated_missing (Sequence[str]): ``fnmatch`` patterns of the
            module's keys a state dict may lack; they are never counted.
            :data:`COUNTER_KEYS` are always tolerated. Defaults to ().
        tolerated_unexpected (Sequence[str]): Patterns of extra keys that
            are ignored without complaint. Defaults to ().

    Returns:
        KeyReport: What matches, what is missing, extra or of another shape.
    """
    matched, missing, tol_missing, mismatched = [], [], [], []
    required = loaded = 0
    for key, value in own.items():
        optional = _matches(key, COUNTER_KEYS) or _matches(
            key, tolerated_missing)
        if not optional:
            required += value.numel()
        if key not in state_dict:
            if not optional:
                missing.append(key)
            elif not _matches(key, COUNTER_KEYS):
                tol_missing.append(key)
        elif state_dict[key].shape != value.shape:
            mismatched.append((key, tuple(state_dict[key].shape),
                               tuple(value.shape)))
        else:
            matched.append(key)
            if not optional:
                loaded += value.numel()
    extra = [k for k in state_dict if k not in own]
    tolerated = tuple(tolerated_unexpected) + COUNTER_KEYS
    return KeyReport(
        matched=matched,
        missing=missing,
        unexpected=[k for k in extra if not _matches(k, tolerated)],
        mismatched=mismatched,
        tolerated_missing=tol_missing,
        tolerated_unexpected=[k for k in extra if _matches(k, tolerated)],
        required_numel=required,
        loaded_numel=loaded)


def check_key_report(report: KeyReport,
                     target: str,
                     source: str = 'checkpoint',
                     strict: bool = True,
                     min_loaded: float = 1.0,
                     identify: Optional[Callable[[], Optional[str]]] = None,
                     hint: str = 'strict=False in the Pretrained init_cfg '
                     'loads it anyway') -> None:
    """Raise if a state dict does not fit well enough.

    Args:
        report (KeyReport): From :func:`compare_state_dict`.
        target (str): What it is loaded into, for messages (e.g.
            ``'AlterNet'``).
        source (str): Name of the state dict in messages. Defaults to
            ``'checkpoint'``.
        strict (bool): Fail when less than ``min_loaded`` of the required
            weights would load or when there are unexpected keys; with False
            only a shape mismatch fails. Defaults to True.
        min_loaded (float): Required fraction, in (0, 1], of the required
            weights' elements. Defaults to 1.0 (every required key).
        identify (callable, optional): Returns what the state dict looks
            like (e.g. ``"an AlterNet checkpoint (arch='50')"``) or None;
            only called when the check fails. Defaults to None.
        hint (str): How to load anyway, appended to the message of a
            ``strict`` failure. Defaults to a ``strict=False`` hint.

    Raises:
        CheckpointError: On a shape mismatch (naming the key and both
            shapes), or with ``strict`` on too few loaded weights or
            unexpected keys. The message gives the matched, missing and
            unexpected counts with the first keys of each, and what the
            checkpoint looks like.
    """
    if not 0 < min_loaded <= 1:
        raise ValueError(f'min_loaded must be in (0, 1], got {min_loaded!r}')
    too_few = strict and report.loaded_fraction < min_loaded
    if not (report.mismatched or too_few or (strict and report.unexpected)):
        return
    if report.mismatched:
        key, theirs, ours = report.mismatched[0]
        problem = (f'key {key!r} has shape {theirs} in the checkpoint but '
                   f'{ours} in the model (wrong arch or wrong checkpoint?)')
    elif too_few:
        problem = (f'it would fill {report.loaded_numel:,} of the '
                   f'{report.required_numel:,} required weight elements '
                   f'({_percent(report.loaded_fraction)}, min_loaded='
                   f'{min_loaded})')
    else:
        problem = (f'the checkpoint has {len(report.unexpected)} keys the '
                   'model does not have')
    looks_like = identify() if identify is not None else None
    looks_like = (f'This looks like {looks_like}.' if looks_like else
                  'Its architecture is not recognised from its keys.')
    hint = '' if report.mismatched or not hint else f' ({hint})'
    raise CheckpointError(f'{source} does not fit {target}: {problem}. '
                          f'{looks_like} Keys: {report.summary()}.{hint}')


def load_state_dict_checked(
        module: nn.Module,
        state_dict: StateDict,
        strict: bool = True,
        min_loaded: float = 1.0,
        tolerated_missing: Sequence[str] = (),
        tolerated_unexpected: Sequence[str] = (),
        identify: Optional[Callable[[], Optional[str]]] = None,
        logger: str = 'current',
        source: str = 'checkpoint') -> Tuple[List[str], List[str]]:
    """Load a converted state dict after checking that it fits.

    Nothing is loaded when the check fails (:func:`check_key_report`).
    Missing keys that are loaded around (tolerated ones, or required ones
    above ``min_loaded``, or any with ``strict=False``) are logged as
    warnings; tolerated extra keys at INFO level.

    Args:
        module (nn.Module): The model to load into.
        state_dict (dict): Already converted to ``module``'s key names.
        strict (bool): See :func:`check_key_report`. Defaults to True.
        min_loaded (float): See :func:`check_key_report`. Defaults to 1.0.
        tolerated_missing (Sequence[str]): See :func:`compare_state_dict`.
            Defaults to ().
        tolerated_unexpected (Sequence[str]): See
            :func:`compare_state_dict`. Defaults to ().
        identify (callable, optional): See :func:`check_key_report`.
            Defaults to None.
        logger (str): mmengine logger name. Defaults to ``'current'``.
        source (str): Name used in messages. Defaults to ``'checkpoint'``.

    Returns:
        tuple[list[str], list[str]]: Missing and unexpected keys (tolerated
        ones included).

    Raises:
        CheckpointError: See :func:`check_key_report`.
    """
    own = module.state_dict()
    report = compare_state_dict(own, state_dict, tolerated_missing,
                                tolerated_unexpected)
    check_key_report(report, type(module).__name__, source, strict,
                     min_loaded, identify)
    module.load_state_dict(state_dict, strict=False)
    if report.missing:
        print_log(
            f'{source}: {len(report.missing)} required keys missing '
            f'({_percent(report.loaded_fraction)} of the required weights '
            f'loaded), left at their initialisation: {report.missing}',
            logger=logger, level=logging.WARNING)
    if report.tolerated_missing:
        print_log(
            f'{source}: optional keys missing, left at their '
            f'initialisation: {report.tolerated_missing}',
            logger=logger, level=logging.WARNING)
    if report.unexpected:
        print_log(f'{source}: unexpected keys (ignored): {report.unexpected}',
                  logger=logger, level=logging.WARNING)
    if report.tolerated_unexpected:
        print_log(f'{source}: keys this model does not use (ignored): '
                  f'{report.tolerated_unexpected}', logger=logger)
    missing = [k for k in own if k not in state_dict]
    return missing, report.unexpected + report.tolerated_unexpected


#: Top-level modules of an mmpretrain ``ImageClassifier`` state dict.
_CLASSIFIER_MODULES = ('backbone', 'neck', 'head', 'data_preprocessor')


def is_classifier_state_dict(state_dict: StateDict) -> bool:
    """Whether a state dict is a whole mmpretrain image classifier's: its
    keys are under ``backbone.`` and ``head.`` (and maybe ``neck.``,
    ``data_preprocessor.``) and nothing else. Official classifiers (a bare
    ``head.*`` beside the network's own keys) are not."""
    tops = {k.split('.')[0] for k in state_dict}
    return {'backbone', 'head'} <= tops and tops <= set(_CLASSIFIER_MODULES)


def read_state_dict(checkpoint: str,
                    prefix: Optional[str] = None,
                    map_location: str = 'cpu',
                    logger: str = 'current') -> StateDict:
    """Read, unwrap and (with ``prefix``) cut a checkpoint's state dict.

    A checkpoint of an mmpretrain classifier (:func:`is_classifier_state_dict`,
    e.g. what a ``configs/*/*_in1k.py`` run writes) is cut at ``backbone.``
    when no prefix is given: classification pretraining feeds the dense
    configs as it is. Whole segmentors and detectors still need an explicit
    prefix (their backbone is rarely what a dense config wants to start
    from, so taking it is left to the user).

    Args:
        checkpoint (str): Path or URL.
        prefix (str, optional): Keep only keys starting with it, stripped
            (e.g. ``'backbone.'`` for a whole detector). Defaults to None
            (``'backbone.'`` for an mmpretrain classifier, else none).
        map_location (str): Defaults to ``'cpu'``.
        logger (str): Defaults to ``'current'``.

    Returns:
        dict: The weights.

    Raises:
        CheckpointError: If no key starts with ``prefix``.
    """
    state_dict = unwrap_state_dict(
        load_checkpoint_file(checkpoint, map_location, logger))
    if prefix is None and is_classifier_state_dict(state_dict):
        prefix = 'backbone.'
        print_log(f'{checkpoint!r} is an mmpretrain classifier checkpoint: '
                  "loading its 'backbone.' weights", logger=logger)
    if prefix:
        if not prefix.endswith('.'):
            prefix += '.'
        tops = sorted({k.split('.')[0] + '.' for k in state_dict})
        state_dict = {
            k[len(prefix):]: v
            for k, v in state_dict.items() if k.startswith(prefix)
        }
        if not state_dict:
            raise CheckpointError(
                f'no key of {checkpoint!r} starts with prefix {prefix!r}; '
                f'its keys start with {_first(tops)}')
    return state_dict


def load_pretrained(
    module: nn.Module,
    checkpoint: str,
    convert: Optional[Callable[[StateDict], StateDict]],
    prefix: Optional[str] = None,
    map_location: str = 'cpu',
    logger: str = 'current',
    strict: bool = True,
    min_loaded: float = 1.0,
    tolerated_missing: Sequence[str] = (),
    tolerated_unexpected: Sequence[str] = (),
    identify: Optional[Callable[[StateDict], Optional[str]]] = None
) -> Tuple[List[str], List[str]]:
    """``init_cfg=dict(type='Pretrained', ...)`` for our backbones.

    Reads ``checkpoint`` (:func:`read_state_dict`), converts it with
    ``convert`` and loads it with :func:`load_state_dict_checked`.

    Args:
        module (nn.Module): The backbone.
        checkpoint (str): Path or URL.
        convert (callable, optional): Official -> ours conversion. It must be
            idempotent on already converted state dicts.
        prefix (str, optional): Keep only keys starting with it, stripped.
            Defaults to None.
        map_location (str): Defaults to ``'cpu'``.
        logger (str): Defaults to ``'current'``.
        strict (bool): See :func:`check_key_report`. Defaults to True.
        min_loaded (float): See :func:`check_key_report`. Defaults to 1.0.
        tolerated_missing (Sequence[str]): See :func:`compare_state_dict`.
            Defaults to ().
        tolerated_unexpected (Sequence[str]): See
            :func:`compare_state_dict`. Defaults to ().
        identify (callable, optional): Describes the state dict as read
            (before conversion) for error messages. Defaults to None.

    Returns:
        tuple[list[str], list[str]]: Missing and unexpected keys.
    """
    state_dict = read_state_dict(checkpoint, prefix, map_location, logger)
    converted = convert(state_dict) if convert is not None else state_dict
    print_log(f'load pretrained {type(module).__name__} from {checkpoint}',
              logger=logger)
    return load_state_dict_checked(
        module,
        converted,
        strict=strict,
        min_loaded=min_loaded,
        tolerated_missing=tolerated_missing,
        tolerated_unexpected=tolerated_unexpected,
        identify=None if identify is None else lambda: identify(state_dict),
        logger=logger,
        source=f'checkpoint {checkpoint!r}')
