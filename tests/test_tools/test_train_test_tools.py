"""tools/train.py and tools/test.py: flags, distributed CPU training,
evaluation with --show-dir. (Resume after SIGKILL: test_resume_equal.py.)"""
import glob
import os
import os.path as osp
import re
import socket
import subprocess
import sys

import pytest
import torch

from _tool_helpers import (DET_CFG, REPO, SEG_CFG, cfg_options, load_tool,
                           run_tool, tool_env)

TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_runner_utils_cpu_distributed_config():
    from mmengine.config import Config
    from mmsupervit.utils import runner_utils as ru
    cfg = Config.fromfile(SEG_CFG)
    ru.apply_resume(cfg, 'auto')
    assert cfg.resume is True and cfg.load_from is None
    ru.apply_resume(cfg, '/x/iter_4.pth')
    assert cfg.load_from == '/x/iter_4.pth'
    assert ru.task_of(cfg) == 'seg'
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match='--amp needs a CUDA GPU'):
            ru.apply_amp(cfg, True)
    ru.apply_show(cfg, show_dir='vis')
    assert cfg.visualizer.save_dir == 'vis'
    assert cfg.default_hooks.visualization.draw is True
    with pytest.raises(ValueError, match='launcher'):
        ru.setup_distributed(cfg, 'torchrun')


def test_train_refuses_amp_on_cpu(tmp_path, monkeypatch):
    # what a CPU-only machine sees, also where a GPU is present
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    train = load_tool(TRAIN)
    with pytest.raises(SystemExit, match='--amp needs a CUDA GPU'):
        train.main([SEG_CFG, '--amp', '--work-dir', str(tmp_path)])


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_tools_close_the_process_group(tmp_path, monkeypatch, tool):
    """train.py / test.py destroy the process group when the run is done:
    left to interpreter shutdown, a CI run's rank 0 aborted after its last
    log line ("terminate called without an active exception", exit -6)."""
    import torch.distributed as dist
    from mmsupervit.utils import runner_utils as ru
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{_free_port()}', rank=0,
        world_size=1)
    calls = []

    class _Runner:

        def train(self):
            calls.append(dist.is_initialized())

        def test(self):
            calls.append(dist.is_initialized())
            return {}

    try:
        monkeypatch.setattr(ru, 'build_runner', lambda cfg: _Runner())
        module = load_tool(TRAIN if tool == 'train' else TEST)
        argv = [SEG_CFG, '--work-dir', str(tmp_path)]
        if tool == 'test':
            argv.insert(1, str(tmp_path / 'x.pth'))
        module.main(argv)
        # the run itself saw the group; the tool closed it afterwards
        assert calls == [True]
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_tool_arguments():
    train = load_tool(TRAIN)
    args = train.parse_args([SEG_CFG, '--resume', '--launcher', 'pytorch',
                             '--local-rank', '1'])
    assert args.resume == 'auto' and args.launcher == 'pytorch'
    args = train.parse_args([SEG_CFG, '--resume', 'a.pth', '--local_rank',
                             '0', '--cfg-options', 'a.b=1'])
    assert args.resume == 'a.pth' and args.cfg_options == {'a.b': 1}
    assert train.parse_args([SEG_CFG]).resume is None
    test = load_tool(TEST)
    args = test.parse_args([SEG_CFG, 'x.pth', '--show-dir', 'v', '--tta',
                            '--work-dir', 'w', '--launcher', 'slurm'])
    assert (args.checkpoint, args.show_dir, args.tta, args.work_dir,
            args.launcher) == ('x.pth', 'v', True, 'w', 'slurm')


DIST_TRAIN = osp.join(REPO, 'tools', 'dist_train.sh')
DIST_TEST = osp.join(REPO, 'tools', 'dist_test.sh')


@pytest.mark.slow
def test_distributed_cpu_training_two_processes(demo_data, tmp_path):
    work_dir = str(tmp_path / 'dist')
    env = tool_env()
    env.update(PORT=str(_free_port()), PYTHON=sys.executable)
    env.pop('GPUS', None)
    # mmseg/mmdet's interface: the process count is the second argument
    cmd = ['bash', DIST_TRAIN, SEG_CFG, '2', '--work-dir', work_dir
           ] + cfg_options(demo_data, 'seg', 4, 4)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    # torchrun exits 0 only when every rank did; world size 2; gloo chosen
    # automatically (no GPU) and recorded in the dumped config
    assert re.search(r'(GPU number|world_size|World size):? *2', out), \
        out[-3000:]
    with open(osp.join(work_dir, osp.basename(SEG_CFG))) as f:
        dumped = f.read()
    if not torch.cuda.is_available():
        assert "backend='gloo'" in dumped
    # one checkpoint, written once (by rank 0), one run folder
    assert sorted(os.listdir(work_dir)).count('iter_4.pth') == 1
    assert glob.glob(osp.join(work_dir, '*.pth')) == [
        osp.join(work_dir, 'iter_4.pth')
    ]
    runs = [d for d in os.listdir(work_dir)
            if osp.isdir(osp.join(work_dir, d))]
    assert len(runs) == 1, runs
    ckpt = torch.load(osp.join(work_dir, 'iter_4.pth'), map_location='cpu')
    assert ckpt['meta']['iter'] == 4
    # the state dict is the plain model's (no DDP "module." prefix)
    assert not any(k.startswith('module.') for k in ckpt['state_dict'])

    # and the checkpoint evaluates with dist_test.sh CONFIG CKPT GPUS
    env['PORT'] = str(_free_port())
    cmd = ['bash', DIST_TEST, SEG_CFG, osp.join(work_dir, 'iter_4.pth'), '2',
           '--work-dir', str(tmp_path / 'dist_test')
           ] + cfg_options(demo_data, 'seg', 4, 4)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert re.search(r'(GPU number|world_size|World size):? *2', out), \
        out[-3000:]
    assert re.search(r'mIoU: *\d', out), out[-3000:]


@pytest.mark.parametrize('script,args', [
    (DIST_TRAIN, [SEG_CFG, '--work-dir', 'w']),  # the old GPUS=8 form
    (DIST_TRAIN, [SEG_CFG, '0']),
    (DIST_TRAIN, [SEG_CFG]),
    (DIST_TEST, [SEG_CFG, 'x.pth', 'eight']),
    (DIST_TEST, [SEG_CFG, 'x.pth']),
])
def test_dist_launchers_refuse_a_bad_gpus_argument(script, args):
    proc = subprocess.run(['bash', script] + args, cwd=REPO,
                          env=dict(tool_env(), GPUS='2'),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert 'usage: bash tools/' + osp.basename(script) in proc.stderr
    if len(args) > 1 + (script == DIST_TEST):
        assert 'GPUS must be a positive whole number' in proc.stderr
    # nothing was launched
    assert 'torch.distributed' not in proc.stdout + proc.stderr


def _fake_srun(tmp_path):
    """A ``srun`` on PATH that records its arguments, one per line."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    srun = bin_dir / 'srun'
    log = tmp_path / 'srun.args'
    srun.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > ' + str(log) + '\n')
    srun.chmod(0o755)
    return str(bin_dir), log


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_slurm_launchers_pass_mmdet_style_arguments(tool, tmp_path):
    bin_dir, log = _fake_srun(tmp_path)
    script = osp.join(REPO, 'tools', f'slurm_{tool}.sh')
    env = dict(tool_env(), PATH=bin_dir + os.pathsep + os.environ['PATH'],
               GPUS='16', SRUN_ARGS='--quotatype=auto --time=1:00:00',
               PYTHON='python3')
    env.pop('GPUS_PER_NODE', None)
    env.pop('CPUS_PER_TASK', None)
    fourth = 'work_dirs/x' if tool == 'train' else 'x.pth'
    proc = subprocess.run(
        ['bash', script, 'gpu', 'job1', SEG_CFG, fourth, '--cfg-options',
         'a=1'], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    args = log.read_text().splitlines()
    head = ['-p', 'gpu', '--job-name=job1', '--gres=gpu:8', '--ntasks=16',
            '--ntasks-per-node=8', '--cpus-per-task=5', '--kill-on-bad-exit=1',
            '--quotatype=auto', '--time=1:00:00', 'python3', '-u',
            osp.join(REPO, 'tools', f'{tool}.py'), SEG_CFG]
    tail = (['--work-dir=work_dirs/x'] if tool == 'train' else ['x.pth']) + [
        '--launcher', 'slurm', '--cfg-options', 'a=1']
    assert args == head + tail
    # too few arguments: usage, and srun is not called
    log.unlink()
    proc = subprocess.run(['bash', script, 'gpu', 'job1', SEG_CFG], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and 'usage: bash tools/slurm_' in proc.stderr
    assert not log.exists()


@pytest.mark.slow
def test_test_tool_show_dir(demo_data, tmp_path):
    work_dir = str(tmp_path / 'train')
    proc = run_tool([TRAIN, SEG_CFG, '--work-dir', work_dir] +
                    cfg_options(demo_data, 'seg', 2, 2))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    show_dir = str(tmp_path / 'show')
    proc = run_tool([
        TEST, SEG_CFG, osp.join(work_dir, 'iter_2.pth'), '--work-dir',
        str(tmp_path / 'test'), '--show-dir', show_dir
    ] + cfg_options(demo_data, 'seg', 2, 2))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert 'mIoU' in out
    assert len(glob.glob(osp.join(show_dir, '**', '*.png'),
                         recursive=True)) == 2
    # multi-scale + flip test-time augmentation (mmseg SegTTAModel)
    proc = run_tool([
        TEST, SEG_CFG, osp.join(work_dir, 'iter_2.pth'), '--work-dir',
        str(tmp_path / 'tta'), '--tta'
    ] + cfg_options(demo_data, 'seg', 2, 2))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert 'mIoU' in out


def test_tta_refused_clearly_for_mask_rcnn(tmp_path):
    test = load_tool(TEST)
    with pytest.raises(SystemExit, match='--tta needs'):
        test.main([DET_CFG, 'x.pth', '--tta', '--work-dir', str(tmp_path)])
