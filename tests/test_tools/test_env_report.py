"""tools/env_report.py: versions, the mmcv build, and where each op runs.

Every table entry is measured by running the op on that device. On this
CPU-only machine ``--device meta`` is the device without mmcv kernels: mmcv
has none there, torchvision's RoIAlign runs there and torchvision's NMS
cannot (its output size depends on the data), so the non-zero exit status
comes from a real missing kernel, not a pretended one.

Two runs go through a subprocess, as a user runs the tool; the other cases
call its ``main`` in this process (importing the stack takes seconds).
"""
import os.path as osp
import re

import pytest

from _tool_helpers import REPO, load_tool, run_tool

TOOL = osp.join(REPO, 'tools', 'env_report.py')
OPS = ('nms', 'roi_align_forward', 'roi_align_backward')


@pytest.fixture(scope='module')
def env_report():
    return load_tool(TOOL)


@pytest.fixture(autouse=True)
def _fresh_probes():
    from mmsupervit.ops import mmcv_has_kernel, torchvision_supports
    mmcv_has_kernel.cache_clear()
    torchvision_supports.cache_clear()


def _table(stdout):
    """``{op: [label per device column]}`` from the printed table."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('op '))
    return {
        line.split()[0]: re.split(r'\s{2,}', line.strip())[1:]
        for line in lines[start + 1:start + 1 + len(OPS)]
    }


def test_cpu_report_exits_zero(monkeypatch):
    monkeypatch.delenv('MMSUPERVIT_OPS', raising=False)
    proc = run_tool([TOOL], timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for name in ('torch', 'torch CUDA', 'cuDNN', 'torchvision', 'mmengine',
                 'mmcv', 'mmseg', 'mmdet', 'timm'):
        assert re.search(rf'^{name}: \S', out, re.M), name
    # this machine's mmcv was compiled without CUDA, and it has no GPU
    assert re.search(r'^mmcv build: cpu \(CUDA not available', out, re.M)
    assert 'GPUs: none' in out
    assert 'MMSUPERVIT_OPS: auto' in out
    assert _table(out) == {op: ['mmcv kernel'] for op in OPS}


def test_unavailable_op_exits_nonzero(monkeypatch):
    monkeypatch.delenv('MMSUPERVIT_OPS', raising=False)
    proc = run_tool([TOOL, '--device', 'meta'], timeout=180)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    assert _table(proc.stdout) == {
        'nms': ['mmcv kernel', 'unavailable'],
        'roi_align_forward': ['mmcv kernel', 'torchvision fallback'],
        'roi_align_backward': ['mmcv kernel', 'torchvision fallback'],
    }
    assert 'unavailable: nms on meta' in proc.stderr


def test_forced_torchvision_is_reported(monkeypatch, capsys, env_report):
    monkeypatch.setenv('MMSUPERVIT_OPS', 'torchvision')
    assert env_report.main([]) == 0
    out = capsys.readouterr().out
    assert 'MMSUPERVIT_OPS: torchvision' in out
    assert _table(out) == {op: ['torchvision fallback'] for op in OPS}


def test_forced_mmcv_without_its_kernels_exits_nonzero(monkeypatch, capsys,
                                                      env_report):
    monkeypatch.setenv('MMSUPERVIT_OPS', 'mmcv')
    assert env_report.main(['--device', 'meta']) == 1
    assert _table(capsys.readouterr().out) == {
        op: ['mmcv kernel', 'unavailable'] for op in OPS}


@pytest.mark.parametrize('argv, mode, message', [
    ([], 'gpu', "MMSUPERVIT_OPS='gpu' is not valid; use one of auto, mmcv, "
     'torchvision'),
    (['--device', 'gpu0'], 'auto', "--device 'gpu0' is not a torch device"),
])
def test_bad_input_is_an_error(monkeypatch, capsys, env_report, argv, mode,
                               message):
    monkeypatch.setenv('MMSUPERVIT_OPS', mode)
    assert env_report.main(argv) == 2
    assert message in capsys.readouterr().err


def test_flavour_of_a_cuda_build(monkeypatch, env_report):
    import mmcv.ops
    monkeypatch.setattr(mmcv.ops, 'get_compiling_cuda_version',
                        lambda: '12.1')
    assert env_report.mmcv_flavour().startswith('cu121 (CUDA 12.1')
