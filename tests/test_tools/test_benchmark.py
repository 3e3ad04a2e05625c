"""tools/analysis_tools/benchmark.py on tiny models (format and ratios, never
timings: the CPU is shared)."""
import csv
import math
import os.path as osp

import pytest
import torch

from _tool_helpers import REPO, load_tool, run_tool

BENCH = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark.py')
TINY_VIT = "{'embed_dims': 32, 'depth': 12, 'num_heads': 2}"




def _read_csv(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))

    def num(v):
        return None if v == '' else float(v)

    return [{k: (v if k in ('model', 'kind') else num(v))
             for k, v in r.items()} for r in rows]


def test_supervit_grid_against_baselines(tmp_path):
    out = str(tmp_path / 'bench.csv')
    proc = run_tool([
        BENCH, '--arch', TINY_VIT, '--size', '64', '64', '--keep-rates',
        '1.0', '0.5', '--scales', '1.0', '0.5', '--baselines', 'timm-vit',
        'mmseg-vit', '--rounds', '2', '--warmup', '1', '--threads', '1',
        '--csv', out
    ])
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _read_csv(out)
    assert [r['model'] for r in rows] == [
        'timm-vit', 'mmseg-vit', 'SuperViT 32/12/2 keep 1 scale 1',
        'SuperViT 32/12/2 keep 0.5 scale 1',
        'SuperViT 32/12/2 keep 1 scale 0.5',
        'SuperViT 32/12/2 keep 0.5 scale 0.5'
    ]
    ref, mmseg_vit, full = rows[0], rows[1], rows[2]
    # the reference is the first baseline: its own ratios are 1
    assert ref['time_x_ref'] == ref['flops_x_ref'] == 1.0
    for r in rows:
        assert r['gflops'] > 0 and r['ms'] > 0 and r['time_x_ref'] > 0
        assert math.isclose(r['flops_x_ref'], r['gflops'] / ref['gflops'],
                            rel_tol=1e-6)
        assert math.isclose(r['time_per_flop_x_ref'],
                            r['time_x_ref'] / r['flops_x_ref'],
                            rel_tol=1e-6)
        assert r['peak_mib'] is not None  # Linux: /proc/self/clear_refs
    # one counter for everything: the three ViTs of the same dims have the
    # same FLOPs up to their final norms, so attention (SDPA in timm and
    # ours, nn.MultiheadAttention in mmseg) is counted in each
    assert math.isclose(mmseg_vit['gflops'], ref['gflops'], rel_tol=0.01)
    assert math.isclose(full['gflops'], ref['gflops'], rel_tol=0.01)
    # budgets: relative to keep 1 / scale 1 of the same run
    assert full['speedup'] == full['flops_reduction'] == 1.0
    for r in rows[3:]:
        assert r['flops_reduction'] > 1.2
        assert math.isclose(r['efficiency'],
                            r['speedup'] / r['flops_reduction'],
                            rel_tol=1e-6)
        assert math.isclose(r['flops_reduction'],
                            full['gflops'] / r['gflops'], rel_tol=1e-6)
    assert rows[5]['flops_reduction'] > max(rows[3]['flops_reduction'],
                                            rows[4]['flops_reduction'])
    for r in rows[:2]:
        assert r['kind'] == 'baseline' and r['efficiency'] is None
    # the printed table has the same rows and the efficiency line
    assert 'SuperViT 32/12/2 keep 0.5 scale 0.5' in proc.stdout
    assert 'reference (x columns): timm-vit' in proc.stdout
    assert 'over the 3 reduced budgets' in proc.stdout
    # the markdown efficiency grid: keep rates down, scales across
    lines = proc.stdout.splitlines()
    top = lines.index('| keep \\ scale | 1 | 0.5 |')
    assert lines[top + 2] == '| 1 | 1.00 | {:.2f} |'.format(
        rows[4]['efficiency'])
    assert lines[top + 3] == '| 0.5 | {:.2f} | {:.2f} |'.format(
        rows[3]['efficiency'], rows[5]['efficiency'])


def test_other_backbone_with_its_default_baseline(tmp_path):
    out = str(tmp_path / 'bench.csv')
    proc = run_tool([
        BENCH, '--backbone', 'AlterNet', '--arch', '18', '--size', '64',
        '64', '--rounds', '1', '--warmup', '0', '--threads', '1',
        '--no-memory', '--csv', out
    ])
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _read_csv(out)
    assert [r['model'] for r in rows] == ['mmseg-resnet', 'AlterNet 18']
    assert rows[1]['flops_x_ref'] > 0 and rows[1]['peak_mib'] is None
    assert rows[1]['efficiency'] is None  # no budgets


@pytest.mark.parametrize('argv,message', [
    (['--keep-rates', '0'], 'keep rate 0.0 is not in (0, 1]'),
    (['--keep-rates', '1.5'], 'keep rate 1.5 is not in (0, 1]'),
    (['--scales', '0.1', '--size', '64', '64'],
     'smaller than one 16-pixel patch'),
    (['--scales', '5'], 'input scale 5.0 is not in (0, 4]'),
    (['--backbone', 'AlterNet', '--keep-rates', '0.5'],
     'AlterNet has none'),
    (['--backbone', 'ResNet'], "unknown backbone 'ResNet'"),
    (['--size', '8', '64'], 'both sides must be >= 16'),
    (['--rounds', '0'], '--rounds must be >= 1'),
    (['--arch', '{1: 2'], 'is not a dict literal'),
    (['--baselines'], 'needs at least one baseline'),
])
def test_bad_arguments_fail_before_any_work(argv, message, monkeypatch):
    tool = load_tool(BENCH)

    def no_run(*args, **kwargs):
        raise AssertionError('a measurement started')

    monkeypatch.setattr(tool, 'measure', no_run)
    with pytest.raises(SystemExit) as err:
        tool.main(argv)
    assert message in str(err.value.code)


def test_peak_memory_is_each_calls_own():
    """A call's peak is its own allocation (magnitude check), also right
    after a larger call freed its memory."""
    tool = load_tool(BENCH)
    cpu = torch.device('cpu')

    def alloc(mib):
        def fn():
            t = torch.ones(mib * 2**18)  # float32: mib MiB, every page written
            return float(t[-1])
        return fn

    big = tool.peak_memory_mib(alloc(256), cpu)
    if big is None:
        pytest.skip('no /proc/self/clear_refs on this system')
    assert 240 <= big <= 300
    small = [tool.peak_memory_mib(alloc(32), cpu) for _ in range(3)]
    assert all(24 <= s <= 60 for s in small), small


def test_peak_reset_comes_after_the_heap_trim(monkeypatch):
    """The order that keeps an earlier call's freed heap out of this call's
    peak: ``malloc_trim`` first, then the peak reset (``clear_refs``), then
    the RSS baseline, then the call. (With the reset first, the peak starts
    at the untrimmed RSS while the baseline is read after the trim.)"""
    tool = load_tool(BENCH)
    events = []
    real_open = open

    class _Libc:

        def malloc_trim(self, pad):
            events.append('trim')

    def fake_open(path, *args, **kwargs):
        if path == '/proc/self/clear_refs':
            events.append('reset')
        elif path == '/proc/self/status':
            events.append('read status')
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(tool.ctypes, 'CDLL', lambda name: _Libc())
    monkeypatch.setattr(tool, 'open', fake_open, raising=False)
    peak = tool.peak_memory_mib(lambda: events.append('call'),
                                torch.device('cpu'))
    if peak is None:
        pytest.skip('no /proc/self/clear_refs on this system')
    assert events == ['trim', 'reset', 'read status', 'call', 'read status']
