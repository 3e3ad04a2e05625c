"""What ``tools/train.py`` and ``tools/test.py`` share: config handling and
distributed set-up that also works on machines without a GPU.

The tools stay thin (parse arguments, call these helpers, build an mmengine
``Runner``); everything that is not plain mmengine lives here, once.

Distributed training on CPU needs three things mmengine 0.10.7 does not do by
itself:

* the ``gloo`` backend (the default ``nccl`` needs CUDA);
* a process group created *before* the Runner: mmengine's ``init_dist``
  calls ``torch.cuda.set_device`` unconditionally, which raises without an
  NVIDIA driver; the Runner skips ``init_dist`` when a group already exists;
* ``device_ids=None`` for ``DistributedDataParallel``: mmengine passes
  ``device_ids=[LOCAL_RANK]``, which DDP rejects for a module on the CPU.

SyncBN: the configs use SyncBN where BN trains at 2 images per GPU. A single
process needs nothing: mmengine's ``Runner.wrap_model`` reverts SyncBN to BN
when the run is not distributed. A distributed run on CPUs keeps it, with
statistics synchronised over gloo: ``torch.nn.SyncBatchNorm`` works on CUDA
tensors only, so :func:`setup_distributed` selects
:class:`~mmsupervit.engine.cpu_distributed.CPUDistributedDataParallel`, which
swaps every ``SyncBatchNorm`` (from a ``SyncBN`` config or ``sync_bn='torch'``)
for ``CPUSyncBatchNorm``. N processes with B images each then train as one
process with N*B images (``tests/test_tools/test_dist_equals_single.py``).
"""
import argparse
import logging
import os
import os.path as osp
import re
import subprocess
import zipfile
from datetime import timedelta
from typing import Optional

import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')
#: The model wrapper of distributed CPU runs (SyncBN over gloo).
CPU_DDP = 'mmsupervit.CPUDistributedDataParallel'


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by train and test, spelled as in mmseg/mmdet."""
    parser.add_argument('--work-dir', help='the directory to save logs and '
                        'checkpoints (default: ./work_dirs/<config name>)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs such as '
        'train_cfg.max_iters=100 or "model.backbone.out_indices=[2,3]"')
    parser.add_argument(
        '--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    # torch.distributed.launch passes --local_rank, torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def set_local_rank_env(local_rank: int) -> None:
    """Export ``LOCAL_RANK`` for launchers that only pass ``--local_rank``."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(local_rank)


def load_config(config: str,
                cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Read a config, apply ``--cfg-options``, the work dir and launcher.

    The work dir is taken from the command line, else from the config, else
    ``./work_dirs/<config file name without .py>`` (as in mmseg/mmdet).
    """
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    setup_distributed(cfg, launcher)
    return cfg


def _cpu_only() -> bool:
    return not torch.cuda.is_available()


def setup_distributed(cfg: Config, launcher: str) -> None:
    """Set ``cfg.launcher``; without a GPU, prepare a CPU (gloo) run:
    gloo backend and the CPU wrapper (``device_ids=None``, SyncBN over gloo).

    Args:
        cfg (Config): Modified in place.
        launcher (str): One of :data:`LAUNCHERS`.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f'launcher must be one of {LAUNCHERS}: {launcher!r}')
    cfg.launcher = launcher
    if launcher == 'none' or not _cpu_only():
        return
    env_cfg = cfg.setdefault('env_cfg', ConfigDict())
    dist_cfg = env_cfg.setdefault('dist_cfg', ConfigDict())
    if dist_cfg.get('backend', 'nccl') != 'gloo':
        dist_cfg['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg', None)
    if wrapper is None:
        # mmengine's default wrapper, with SyncBN working on the CPU
        cfg.model_wrapper_cfg = dict(
            type=CPU_DDP,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False),
            device_ids=None)
    elif 'DistributedDataParallel' in str(
            wrapper.setdefault('type', 'MMDistributedDataParallel')):
        if wrapper.type in ('MMDistributedDataParallel',
                            'mmengine.MMDistributedDataParallel'):
            wrapper.type = CPU_DDP
        wrapper.setdefault('device_ids', None)
    init_cpu_process_group(launcher, dist_cfg)


def init_cpu_process_group(launcher: str, dist_cfg: dict) -> None:
    """Create the gloo process group for ``launcher`` (no CUDA calls).

    Reads the variables each launcher sets (torchrun: ``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``; slurm: ``SLURM_*``;
    Open MPI: ``OMPI_COMM_WORLD_*``) and exports the torch ones.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return
    env = os.environ
    if launcher == 'slurm':
        env['RANK'] = env['SLURM_PROCID']
        env['WORLD_SIZE'] = env['SLURM_NTASKS']
        env['LOCAL_RANK'] = env.get('SLURM_LOCALID', '0')
        if 'MASTER_ADDR' not in env:
            node_list = env['SLURM_NODELIST']
            env['MASTER_ADDR'] = subprocess.getoutput(
                f'scontrol show hostname {node_list} | head -n1')
        env.setdefault('MASTER_PORT', str(dist_cfg.get('port', 29500)))
    elif launcher == 'mpi':
        env['RANK'] = env['OMPI_COMM_WORLD_RANK']
        env['WORLD_SIZE'] = env['OMPI_COMM_WORLD_SIZE']
        env['LOCAL_RANK'] = env['OMPI_COMM_WORLD_LOCAL_RANK']
        env.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in env:
            raise KeyError('the mpi launcher needs MASTER_ADDR in the '
                           'environment')
    kwargs = {}
    if 'timeout' in dist_cfg:
        kwargs['timeout'] = timedelta(seconds=dist_cfg['timeout'])
    dist.init_process_group(
        backend='gloo',
        rank=int(env['RANK']),
        world_size=int(env['WORLD_SIZE']),
        **kwargs)


def close_distributed() -> None:
    """Destroy the default process group, if this process has one, before
    the interpreter exits.

    torch asks for this at the end of every distributed program: left to
    interpreter shutdown, the process group's gloo threads can be torn down
    while still joinable, which aborts the process (``terminate called
    without an active exception``, exit code -6) after all the work is done
    and makes ``torchrun`` report the run as failed.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def make_checkpoints_resumable(cfg: Config) -> None:
    """Make every checkpoint of a training run a safe, exact resume point.

    * :class:`~mmsupervit.engine.hooks.RandomStateHook` stores the random
      generators' states in each checkpoint and restores them on resume, so
      a resumed run equals an uninterrupted one (``tests/test_tools/
      test_resume_equal.py``);
    * for a local work dir, checkpoint files are written atomically
      (:mod:`mmsupervit.engine.atomic_backend`): a run killed while saving
      leaves the previous checkpoint, never a truncated file.

    Args:
        cfg (Config): Modified in place; settings the config already has
            (its own ``backend_args``, the hook) are kept.
    """
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(
            str(h.get('type', '')).split('.')[-1] == 'RandomStateHook'
            for h in hooks):
        hooks.append(dict(type='mmsupervit.RandomStateHook'))
    cfg.custom_hooks = hooks
    ckpt = cfg.get('default_hooks', {}).get('checkpoint', None)
    if (ckpt is not None and ckpt.get('backend_args') is None
            and ckpt.get('file_client_args') is None
            and '://' not in str(ckpt.get('out_dir') or '')):
        from mmsupervit.engine.atomic_backend import BACKEND_NAME
        ckpt['backend_args'] = dict(backend=BACKEND_NAME)


_CHECKPOINT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


def checkpoint_is_readable(path: str) -> bool:
    """Whether ``path`` is a complete, uncorrupted checkpoint file.

    ``torch.save`` writes a zip archive: a truncated file has no central
    directory, a damaged one fails the CRC check of a member. Both are read
    without unpickling anything.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return archive.testzip() is None
        # the legacy (non-zip) format: only a full load can tell
        torch.load(path, map_location='cpu', weights_only=True)
        return True
    except Exception:  # any failure to read means: do not resume from it
        return False


def latest_readable_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` (without a path) continues from.

    Like mmengine's ``find_latest_checkpoint`` (the file named in
    ``<work_dir>/last_checkpoint``; None when that file does not exist), but
    when the named checkpoint is missing, truncated or corrupt (a run killed
    while mmengine wrote it), the newest readable ``iter_*.pth`` /
    ``epoch_*.pth`` beside it is used, with a warning naming both files.

    Returns:
        str or None: The checkpoint, or None to train from scratch.
    """
    from mmengine.runner import find_latest_checkpoint
    last = find_latest_checkpoint(work_dir)
    if last is None:
        return None
    if last and osp.isfile(last) and checkpoint_is_readable(last):
        return last
    folder = osp.dirname(last) if last else work_dir
    numbered = []
    for name in sorted(os.listdir(folder)) if osp.isdir(folder) else []:
        match = _CHECKPOINT_NAME.match(name)
        if match:
            numbered.append((int(match.group(1)), osp.join(folder, name)))
    state = ('truncated or corrupt (was the run killed while saving it?)'
             if last and osp.isfile(last) else 'missing')
    problem = (f'the latest checkpoint {last!r} (named in '
               f'{osp.join(work_dir, "last_checkpoint")}) is {state}')
    for _, path in sorted(numbered, reverse=True):
        if checkpoint_is_readable(path):
            print_log(f'{problem}; resuming from {path} instead',
                      logger='current', level=logging.WARNING)
            return path
    print_log(f'{problem}, and no other readable checkpoint is in {folder}: '
              'training starts from scratch', logger='current',
              level=logging.WARNING)
    return None


def apply_resume(cfg: Config, resume: Optional[str]) -> None:
    """``--resume`` (latest checkpoint in the work dir) or ``--resume PATH``.

    Without a path, :func:`latest_readable_checkpoint` picks the checkpoint,
    so a file truncated by a killed run is skipped (with a warning) instead
    of failing the resume. An explicit path that is not a readable checkpoint
    is refused with its name.

    Safe loading: mmengine reads the checkpoint with ``torch.load`` and no
    ``weights_only`` argument. From torch 2.6 on that is the safe loader, and
    a training checkpoint (which pickles mmengine's ``HistoryBuffer`` and
    numpy objects besides tensors) loads through the allow-list of
    :mod:`mmsupervit.utils.compat` (applied by ``import mmsupervit``);
    nothing is unpickled beyond it. With torch < 2.6, mmengine's load
    unpickles fully: resume only from checkpoints you trust.

    Raises:
        SystemExit: If ``resume`` names a local file that is truncated or
            corrupt.
    """
    if resume is None:
        return
    if resume != 'auto':
        # (a missing file or a remote URI is left to mmengine, whose error
        # names the path)
        if osp.isfile(resume) and not checkpoint_is_readable(resume):
            raise SystemExit(
                f'--resume {resume}: the file is truncated or corrupt; give '
                'another checkpoint, or --resume without a path to continue '
                'from the newest readable checkpoint of the work dir')
        cfg.resume = True
        cfg.load_from = resume
        return
    cfg.resume = True
    cfg.load_from = None  # mmengine then looks for the latest checkpoint
    work_dir = cfg.get('work_dir', None)
    if not work_dir or not osp.exists(osp.join(work_dir, 'last_checkpoint')):
        return  # a fresh work dir: mmengine finds nothing and starts anew
    cfg.load_from = latest_readable_checkpoint(work_dir)
    if cfg.load_from is None:
        cfg.resume = False  # only broken checkpoints (warned): start anew


def add_checkpoint_check(cfg: Config, min_loaded: float = 1.0) -> None:
    """Check ``load_from`` / resume checkpoints before they are loaded.

    Adds :class:`mmsupervit.engine.hooks.CheckpointCheckHook` to
    ``custom_hooks`` (mmengine itself loads them non-strictly: a detector
    checkpoint given to a segmentor would start from random heads). A
    ``CheckpointCheckHook`` the config already has is left as it is, so a
    config can relax the check (``strict=False``).

    Args:
        cfg (Config): Modified in place.
        min_loaded (float): Fraction of the model's weights a checkpoint
            must fill: 1.0 to evaluate or resume; fine-tuning from a model
            whose classifier has another class count may use less.
            Defaults to 1.0.
    """
    hooks = list(cfg.get('custom_hooks', None) or [])
    if any(str(h.get('type', '')).split('.')[-1] == 'CheckpointCheckHook'
           for h in hooks):
        return
    hooks.append(
        dict(type='mmsupervit.CheckpointCheckHook', min_loaded=min_loaded))
    cfg.custom_hooks = hooks


def apply_amp(cfg: Config, amp: bool) -> None:
    """Switch to mixed precision; refuse clearly where it cannot work.

    Raises:
        SystemExit: Without a CUDA device (mmengine's ``AmpOptimWrapper``
            asserts a GPU deep inside the Runner otherwise).
    """
    if not amp:
        return
    if _cpu_only():
        raise SystemExit(
            '--amp needs a CUDA GPU (mmengine AmpOptimWrapper); none is '
            'available here. Run without --amp on CPU.')
    optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if optim_wrapper != 'AmpOptimWrapper':
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def task_of(cfg: Config) -> str:
    """``'seg'`` or ``'det'``, from the config's default scope."""
    scope = cfg.get('default_scope', None)
    if scope == 'mmseg':
        return 'seg'
    if scope == 'mmdet':
        return 'det'
    raise ValueError(f'expected default_scope mmseg or mmdet, got {scope!r}')


def apply_show(cfg: Config,
               show_dir: Optional[str] = None,
               show: bool = False,
               wait_time: float = 2) -> None:
    """Turn on the visualization hook of mmseg/mmdet/mmpretrain for
    ``tools/test.py``.

    mmseg saves every image under ``<show_dir>/vis_data/vis_image/``
    (``test_<image name>_0.png``); mmdet and mmpretrain save into
    ``show_dir`` (relative paths go below ``<work_dir>/<timestamp>/``).
    """
    if not (show or show_dir):
        return
    hooks = cfg.get('default_hooks', {})
    if 'visualization' not in hooks:
        raise RuntimeError(
            'the config has no default_hooks.visualization, so --show/'
            '--show-dir cannot draw predictions')
    hook = hooks['visualization']
    if cfg.get('default_scope') == 'mmpretrain':
        # mmpretrain's hook: `enable` instead of `draw`, `out_dir` instead of
        # `test_out_dir`, every `interval`-th sample (default 5000)
        hook.update(enable=True, interval=1, show=show)
        if show_dir:
            hook['out_dir'] = show_dir
        return
    hook['draw'] = True
    if show:
        hook['show'] = True
        hook['wait_time'] = wait_time
    if show_dir:
        if task_of(cfg) == 'seg':
            cfg.visualizer['save_dir'] = show_dir
            # mmseg's hook draws every `interval`-th test image (default
            # 50); --show-dir asks for all of them
            hook['interval'] = 1
        else:
            hook['test_out_dir'] = show_dir


def apply_tta(cfg: Config) -> None:
    """Wrap the model in the config's ``tta_model`` and use ``tta_pipeline``.

    Raises:
        SystemExit: If the config defines no test-time augmentation.
    """
    if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise SystemExit(
            '--tta needs `tta_model` and `tta_pipeline` in the config (the '
            'Mask R-CNN configs have none: mmdet 3.3 DetTTAModel cannot '
            'merge instance masks)')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def build_runner(cfg: Config):
    """``Runner.from_cfg``, or the config's own ``runner_type``."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)
