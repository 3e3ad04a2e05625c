"""A resumed training run equals an uninterrupted one.

The UperNet demo config is trained for TOTAL iterations with a checkpoint
and a validation every INTERVAL, in deterministic mode
(``randomness.deterministic=True``).
The same run is SIGKILLed between two checkpoints and resumed with
``--resume``; its final weights, optimizer state, scheduler state and logged
losses must equal the uninterrupted run's bit for bit (CPU). The demo model
has dropout in both heads, so this only holds because
:class:`mmsupervit.engine.hooks.RandomStateHook` restores the random
generators' states (mmengine alone restores the data position, not them).

A checkpoint truncated by a kill (mmengine writes files non-atomically) that
``last_checkpoint`` names is skipped on ``--resume`` with a warning naming
both files, and the run still ends equal to the uninterrupted one.
"""
import builtins
import glob
import io
import json
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from _tool_helpers import REPO, SEG_CFG, cfg_options, run_tool, tool_env

TRAIN = osp.join(REPO, 'tools', 'train.py')
TOTAL, INTERVAL = 14, 4


def _train_args(data_root, work_dir):
    return [TRAIN, SEG_CFG, '--work-dir', work_dir] + cfg_options(
        data_root, 'seg', TOTAL, INTERVAL,
        **{'randomness.deterministic': True,
           # validating draws random numbers too (a data loader seeds its
           # workers): the uninterrupted run validates after the checkpoint
           # the other run resumes from
           'train_cfg.val_interval': INTERVAL})


def _iters_logged(text):
    return [int(m) for m in re.findall(r'Iter\(train\) \[\s*(\d+)/', text)]


def _load(path):
    import mmsupervit  # noqa: F401  (safe-loader allow-list for torch.load)
    return torch.load(path, map_location='cpu')


def _assert_same(a, b, where='checkpoint'):
    """Recursive exact equality of nested dicts/lists of tensors/values."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), where
        for key in a:
            _assert_same(a[key], b[key], f'{where}[{key!r}]')
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f'{where}[{i}]')
    elif torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype, where
        assert torch.equal(a, b), \
            f'{where}: max abs diff {(a.double() - b.double()).abs().max()}'
    else:
        assert a == b, f'{where}: {a!r} != {b!r}'


def _assert_runs_equal(ckpt, ref):
    for part in ('state_dict', 'optimizer', 'param_schedulers'):
        _assert_same(ckpt[part], ref[part], part)
    assert ckpt['meta']['iter'] == ref['meta']['iter'] == TOTAL


def _logged_losses(work_dir):
    """{iter: loss} from the LocalVisBackend scalars of every run in the
    work dir (a later run overrides the iterations it logged again)."""
    losses = {}
    for path in sorted(glob.glob(
            osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if 'loss' in record:
                    losses[record['step']] = record['loss']
    return losses


@pytest.fixture(scope='module')
def reference(demo_data, tmp_path_factory):
    """The uninterrupted run: (work dir, final checkpoint, logged losses)."""
    work_dir = str(tmp_path_factory.mktemp('uninterrupted'))
    proc = run_tool(_train_args(demo_data, work_dir), timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert _iters_logged(out) == list(range(1, TOTAL + 1))
    losses = _logged_losses(work_dir)
    assert sorted(losses) == list(range(1, TOTAL + 1)), losses
    return work_dir, _load(osp.join(work_dir, f'iter_{TOTAL}.pth')), losses


@pytest.mark.slow
def test_resume_after_sigkill_equals_uninterrupted(demo_data, reference,
                                                    tmp_path):
    ref_dir, ref_ckpt, ref_losses = reference
    work_dir = str(tmp_path / 'resume')
    args = _train_args(demo_data, work_dir)
    log_path = str(tmp_path / 'first.log')
    with open(log_path, 'w') as log:
        proc = subprocess.Popen([sys.executable] + args, cwd=REPO,
                                env=tool_env(), stdout=log,
                                stderr=subprocess.STDOUT)
        last = osp.join(work_dir, 'last_checkpoint')
        deadline = time.time() + 240
        try:
            while time.time() < deadline and proc.poll() is None:
                if osp.exists(last):
                    with open(last) as f:
                        if f.read().strip().endswith('iter_8.pth'):
                            break
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait()
    with open(log_path) as f:
        first = f.read()
    assert proc.returncode == -signal.SIGKILL, first[-3000:]
    assert not osp.exists(osp.join(work_dir, f'iter_{TOTAL}.pth')), \
        'the run finished before it could be killed'
    killed_at = max(_iters_logged(first))
    assert 8 <= killed_at < TOTAL

    proc = run_tool(args + ['--resume'], timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert re.search(r'Load checkpoint from .*iter_8\.pth', out), out[-3000:]
    assert re.search(r'resumed epoch: \d+, iter: 8\b', out), out[-3000:]
    logged = _iters_logged(out)
    # training continued right after the last checkpoint: nothing before it
    # was repeated or lost, and it ended at the configured length
    assert min(logged) == 9 and max(logged) == TOTAL, logged
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip().endswith(f'iter_{TOTAL}.pth')
    # ... and it equals the uninterrupted run
    ckpt = _load(osp.join(work_dir, f'iter_{TOTAL}.pth'))
    _assert_runs_equal(ckpt, ref_ckpt)
    losses = _logged_losses(work_dir)
    assert sorted(losses) == list(range(1, TOTAL + 1)), losses
    assert losses == ref_losses
    assert len(ckpt['random_states']) == 1  # one process


@pytest.mark.slow
def test_truncated_last_checkpoint_is_skipped(reference, demo_data, tmp_path):
    """The run was killed while mmengine wrote iter_14.pth and
    ``last_checkpoint`` already names it (as after a machine crash: the name
    is written, the data is not)."""
    ref_dir, ref_ckpt, ref_losses = reference
    work_dir = str(tmp_path / 'truncated')
    shutil.copytree(ref_dir, work_dir)
    broken = osp.join(work_dir, f'iter_{TOTAL}.pth')
    previous = osp.join(work_dir, 'iter_12.pth')
    with open(broken, 'rb') as f:
        data = f.read()
    with open(broken, 'wb') as f:
        f.write(data[:len(data) // 2])
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(broken)

    proc = run_tool(_train_args(demo_data, work_dir) + ['--resume'],
                    timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    warning = [line for line in out.splitlines()
               if 'WARNING' in line and 'truncated or corrupt' in line]
    assert len(warning) == 1, out[-3000:]
    assert broken in warning[0] and f'resuming from {previous}' in \
        warning[0], warning[0]
    assert _iters_logged(out) == [13, 14]
    _assert_runs_equal(_load(broken), ref_ckpt)


@pytest.mark.slow
def test_explicit_truncated_checkpoint_refused(reference, demo_data,
                                               tmp_path):
    ref_dir = reference[0]
    broken = str(tmp_path / 'iter_12.pth')
    with open(osp.join(ref_dir, 'iter_12.pth'), 'rb') as f:
        data = f.read()
    with open(broken, 'wb') as f:
        f.write(data[:len(data) - 100])
    proc = run_tool(
        _train_args(demo_data, str(tmp_path / 'w')) + ['--resume', broken],
        timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f'--resume {broken}: the file is truncated or corrupt' in out, \
        out[-3000:]


def test_checkpoint_readability(tmp_path):
    from mmsupervit.utils.runner_utils import checkpoint_is_readable
    path = str(tmp_path / 'iter_1.pth')
    torch.save({'state_dict': {'w': torch.arange(1000.)}}, path)
    assert checkpoint_is_readable(path)
    with open(path, 'rb') as f:
        data = f.read()
    for name, broken in [('half', data[:len(data) // 2]),
                         ('no-tail', data[:-10]),
                         ('zero-tail', data[:-4096] + bytes(4096)),
                         ('flipped', data[:200] + bytes([data[200] ^ 1]) +
                          data[201:]),
                         ('empty', b'')]:
        bad = str(tmp_path / f'{name}.pth')
        with open(bad, 'wb') as f:
            f.write(broken)
        assert not checkpoint_is_readable(bad), name


class _DiskFullFile(io.FileIO):
    """A file whose first write stores half of the data, then fails."""

    def write(self, data):
        super().write(data[:len(data) // 2])
        raise OSError('disk full')


def test_atomic_checkpoint_backend(tmp_path, monkeypatch):
    """A write that fails half-way keeps the previous file and leaves no
    temporary file; mmengine's own LocalBackend leaves a truncated one."""
    from mmengine.fileio import LocalBackend, get_file_backend
    from mmsupervit.engine.atomic_backend import BACKEND_NAME
    path = str(tmp_path / 'iter_4.pth')
    atomic = get_file_backend(path, backend_args=dict(backend=BACKEND_NAME))
    atomic.put(b'old checkpoint', path)
    with open(path, 'rb') as f:
        assert f.read() == b'old checkpoint'

    real_open = builtins.open

    def disk_full_open(file, mode='r', *args, **kwargs):
        if 'w' in mode:
            return _DiskFullFile(file, 'w')
        return real_open(file, mode, *args, **kwargs)

    new = b'new checkpoint, longer than the old one'
    for backend in (atomic, LocalBackend()):
        with monkeypatch.context() as patch:
            patch.setattr(builtins, 'open', disk_full_open)
            with pytest.raises(OSError, match='disk full'):
                backend.put(new, path)
        with open(path, 'rb') as f:
            content = f.read()
        if backend is atomic:
            assert content == b'old checkpoint'
            assert os.listdir(tmp_path) == ['iter_4.pth']
        else:  # what the atomic backend protects against
            assert content == new[:len(new) // 2]


def test_make_checkpoints_resumable_config():
    from mmengine.config import Config
    from mmsupervit.engine.atomic_backend import BACKEND_NAME
    from mmsupervit.utils import runner_utils as ru
    cfg = Config.fromfile(SEG_CFG)
    ru.make_checkpoints_resumable(cfg)
    ru.make_checkpoints_resumable(cfg)  # idempotent
    assert [h['type'] for h in cfg.custom_hooks].count(
        'mmsupervit.RandomStateHook') == 1
    assert cfg.default_hooks.checkpoint.backend_args == dict(
        backend=BACKEND_NAME)
    # a remote out_dir keeps mmengine's choice of backend
    cfg = Config.fromfile(SEG_CFG)
    cfg.default_hooks.checkpoint.out_dir = 's3://bucket/ckpts'
    ru.make_checkpoints_resumable(cfg)
    assert cfg.default_hooks.checkpoint.get('backend_args') is None


def test_resume_auto_picks_newest_readable_checkpoint(tmp_path):
    """``--resume`` without a path: the cases around a broken latest file."""
    import logging

    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmsupervit.utils import runner_utils as ru

    def save(name, truncate=False):
        path = str(tmp_path / name)
        torch.save({'meta': {'iter': 1}, 'w': torch.zeros(100)}, path)
        if truncate:
            with open(path, 'rb') as f:
                data = f.read()
            with open(path, 'wb') as f:
                f.write(data[:len(data) // 2])
        return path

    def resume(last):
        if last is not None:
            with open(tmp_path / 'last_checkpoint', 'w') as f:
                f.write(last)
        cfg = Config(dict(work_dir=str(tmp_path)))
        records = []
        handler = logging.Handler(level=logging.WARNING)
        handler.emit = lambda record: records.append(record.getMessage())
        logger = MMLogger.get_current_instance()
        logger.addHandler(handler)
        try:
            ru.apply_resume(cfg, 'auto')
        finally:
            logger.removeHandler(handler)
        return cfg.resume, cfg.load_from, records

    # a fresh work dir: mmengine's own search (finds nothing)
    assert resume(None) == (True, None, [])
    iter_4, iter_8 = save('iter_4.pth'), save('iter_8.pth', truncate=True)
    save('best_mIoU_iter_12.pth')  # not a resume point
    # the latest is readable: used, silently
    assert resume(iter_4) == (True, iter_4, [])
    # the latest is truncated: the previous one, with a warning naming both
    state, load_from, warned = resume(iter_8)
    assert (state, load_from) == (True, iter_4)
    assert len(warned) == 1 and iter_8 in warned[0] and \
        f'resuming from {iter_4} instead' in warned[0], warned
    # last_checkpoint emptied (killed while writing it): newest readable
    os.remove(iter_8)
    iter_8 = save('iter_8.pth')
    state, load_from, warned = resume('')
    assert (state, load_from) == (True, iter_8) and 'missing' in warned[0]
    # nothing readable is left: start anew (not from the broken file)
    for path in (iter_4, iter_8):
        save(osp.basename(path), truncate=True)
    state, load_from, warned = resume(iter_8)
    assert (state, load_from) == (False, None)
    assert 'training starts from scratch' in warned[0], warned
