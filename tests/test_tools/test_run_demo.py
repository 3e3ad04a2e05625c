"""tools/run_demo.py end to end on a tiny schedule: baseline, training,
evaluation, summary and pictures for both jobs."""
import json
import os.path as osp

import pytest

from _tool_helpers import REPO, run_tool


@pytest.mark.slow
def test_run_demo_tiny_schedule(demo_data, tmp_path):
    work_dir = str(tmp_path / 'demo')
    proc = run_tool([
        osp.join(REPO, 'tools', 'run_demo.py'), '--work-dir', work_dir,
        '--data', demo_data, '--iters', '2', '--num-vis', '1'
    ], timeout=400)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert 'untrained' in out and 'mIoU' in out and 'segm AP' in out
    with open(osp.join(work_dir, 'summary.json')) as f:
        summary = json.load(f)
    assert 'mIoU' in summary['seg']['baseline']
    assert 'mIoU' in summary['seg']['trained']
    assert 'coco/segm_mAP' in summary['det']['trained']
    for task in ('seg', 'det'):
        assert osp.isfile(osp.join(work_dir, task, 'iter_2.pth'))
        vis = summary[task]['visualisations']
        assert len(vis) == 1 and osp.isfile(vis[0])
    assert osp.isfile(osp.join(work_dir, 'summary.txt'))
