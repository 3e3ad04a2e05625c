"""tools/analysis_tools/budget_sweep.py on demo checkpoints."""
import csv
import os.path as osp

import pytest
import torch

from _tool_helpers import REPO, SEG_CFG, cfg_options, load_tool, run_tool

SWEEP = osp.join(REPO, 'tools', 'analysis_tools', 'budget_sweep.py')
DET_CFG = osp.join(REPO, 'configs', 'demo',
                   'mask-rcnn_supervit-tiny_fpn_300i_demo.py')
DET_BUDGET_CFG = osp.join(REPO, 'configs', 'demo',
                          'mask-rcnn_supervit-tiny_budget_fpn_300i_demo.py')




def _untrained_checkpoint(cfg_path, path):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    cfg = Config.fromfile(cfg_path)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def _data_opts(demo_data, task):
    # cfg_options(...) gives ['--cfg-options', k=v, ...] for a short run;
    # the sweep needs only the data roots
    return [o for o in cfg_options(demo_data, task, 1, 1)[1:]
            if 'data_root' in o or 'ann_file' in o]


def _check_outputs(out_dir, metric, keeps, scales):
    with open(osp.join(out_dir, 'budget_sweep.csv')) as f:
        rows = list(csv.DictReader(f))
    assert [(float(r['keep_rate']), float(r['input_scale'])) for r in rows] \
        == [(k, s) for k in keeps for s in scales]
    for r in rows:
        assert float(r['gflops']) > 0 and float(r['latency_ms']) > 0
        assert 0 <= float(r[metric]) <= 100
    flops = {(float(r['keep_rate']), float(r['input_scale'])):
             float(r['gflops']) for r in rows}
    # a smaller input scale and a smaller keep rate both cost less
    assert flops[(keeps[0], scales[1])] < flops[(keeps[0], scales[0])]
    assert flops[(keeps[1], scales[0])] < flops[(keeps[0], scales[0])]
    with open(osp.join(out_dir, 'budget_sweep.md')) as f:
        table = f.read()
    assert 'FlopAnalyzer' in table and 'torch thread' in table
    assert sum(line.startswith('| ') and line[2].isdigit()
               for line in table.splitlines()) == len(keeps) * len(scales)
    with open(osp.join(out_dir, 'budget_sweep.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    return rows


def test_sweep_upernet_2x2(demo_data, tmp_path):
    ckpt = _untrained_checkpoint(SEG_CFG, str(tmp_path / 'seg.pth'))
    out_dir = str(tmp_path / 'out')
    proc = run_tool([
        SWEEP, SEG_CFG, ckpt, '--keep-rates', '1.0', '0.5', '--scales',
        '1.0', '0.5', '--runs', '2', '--warmup', '1', '--out-dir', out_dir,
        '--work-dir', str(tmp_path / 'work'), '--cfg-options'
    ] + _data_opts(demo_data, 'seg'))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    _check_outputs(out_dir, 'mIoU', (1.0, 0.5), (1.0, 0.5))
    assert '4/4' in proc.stdout  # the progress bar went through the grid


@pytest.mark.parametrize('args, match', [
    (['--keep-rates', '1.0', '0'], r'keep rates must lie in \(0, 1\]'),
    (['--keep-rates', '1.5'], r'keep rates must lie in \(0, 1\]'),
    # 128 px test size: 0.1 leaves 13 px, less than one 16 px patch
    (['--scales', '1.0', '0.1'], r'input scales \[0.1\] leave less than '
     r'one 16x16 patch of the 128x128 test size'),
    (['--scales', '-1'], 'input scales'),
])
def test_bad_grid_fails_before_any_work(args, match, tmp_path, monkeypatch):
    tool = load_tool(SWEEP)
    ckpt = str(tmp_path / 'ckpt.pth')
    open(ckpt, 'wb').close()  # never read: the grid is refused first

    def no_runner(*a, **k):
        raise AssertionError('a runner was built for a bad grid')

    monkeypatch.setattr(tool.ru, 'build_runner', no_runner)
    with pytest.raises(ValueError, match=match):
        tool.main([SEG_CFG, ckpt, '--work-dir', str(tmp_path / 'w')] + args)
    assert not osp.exists(tmp_path / 'w')


def test_pareto_front():
    tool = load_tool(SWEEP)
    rows = [dict(gflops=1, m=10), dict(gflops=2, m=5), dict(gflops=3, m=20),
            dict(gflops=3, m=15), dict(gflops=4, m=20)]
    assert [(r['gflops'], r['m']) for r in tool.pareto_front(rows, 'm')] == \
        [(1, 10), (3, 20)]


@pytest.mark.slow
def test_budget_train_then_sweep_mask_rcnn(demo_data, tmp_path):
    """Two iterations of the Mask R-CNN budget demo through tools/train.py
    (four sub-networks per iteration, logged by role), then the sweep of that
    checkpoint under the single-budget config."""
    work = str(tmp_path / 'train')
    proc = run_tool([osp.join(REPO, 'tools', 'train.py'), DET_BUDGET_CFG,
                     '--work-dir', work] + cfg_options(demo_data, 'det', 2, 2),
                    timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    log = proc.stdout + proc.stderr
    for key in ('full.loss_rpn_cls', 'full_pruned.loss_kd',
                'small.loss_mask', 'small_pruned.loss_kd'):
        assert key in log, key
    out_dir = str(tmp_path / 'out')
    proc = run_tool([
        SWEEP, DET_CFG, osp.join(work, 'iter_2.pth'), '--keep-rates', '1.0',
        '0.5', '--scales', '1.0', '0.5', '--runs', '1', '--warmup', '0',
        '--out-dir', out_dir, '--work-dir', str(tmp_path / 'work'),
        '--cfg-options'
    ] + _data_opts(demo_data, 'det'), timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    # CocoMetric's bbox mAP is in [0, 1]
    _check_outputs(out_dir, 'coco/bbox_mAP', (1.0, 0.5), (1.0, 0.5))
