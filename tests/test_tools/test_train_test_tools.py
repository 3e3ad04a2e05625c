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

from _tool_helpers import (DET_CFG, REPO, SEG_CFG, cfg_options, run_tool,
                           tool_env)

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


def _load_tool(path):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        '_tool_' + osp.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_refuses_amp_on_cpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip('a GPU is available')
    train = _load_tool(TRAIN)
    with pytest.raises(SystemExit, match='--amp needs a CUDA GPU'):
        train.main([SEG_CFG, '--amp', '--work-dir', str(tmp_path)])


def test_tool_arguments():
    train = _load_tool(TRAIN)
    args = train.parse_args([SEG_CFG, '--resume', '--launcher', 'pytorch',
                             '--local-rank', '1'])
    assert args.resume == 'auto' and args.launcher == 'pytorch'
    args = train.parse_args([SEG_CFG, '--resume', 'a.pth', '--local_rank',
                             '0', '--cfg-options', 'a.b=1'])
    assert args.resume == 'a.pth' and args.cfg_options == {'a.b': 1}
    assert train.parse_args([SEG_CFG]).resume is None
    test = _load_tool(TEST)
    args = test.parse_args([SEG_CFG, 'x.pth', '--show-dir', 'v', '--tta',
                            '--work-dir', 'w', '--launcher', 'slurm'])
    assert (args.checkpoint, args.show_dir, args.tta, args.work_dir,
            args.launcher) == ('x.pth', 'v', True, 'w', 'slurm')


@pytest.mark.slow
def test_distributed_cpu_training_two_processes(demo_data, tmp_path):
    work_dir = str(tmp_path / 'dist')
    env = tool_env()
    env.update(GPUS='2', PORT=str(_free_port()), PYTHON=sys.executable)
    cmd = ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), SEG_CFG,
           '--work-dir', work_dir] + cfg_options(demo_data, 'seg', 4, 4)
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
    test = _load_tool(TEST)
    with pytest.raises(SystemExit, match='--tta needs'):
        test.main([DET_CFG, 'x.pth', '--tta', '--work-dir', str(tmp_path)])
