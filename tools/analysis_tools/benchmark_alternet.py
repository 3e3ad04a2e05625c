"""CPU cost of AlterNet beside a ResNet-50 of the same role, in one run.

    python tools/analysis_tools/benchmark_alternet.py [--arch 50]
        [--shape 512 512] [--runs 10] [--warmup 3] [--threads N]

For each backbone (batch 1, eval, no grad) it reports FLOPs (mmengine's
``FlopAnalyzer``, one fused multiply-add = 1 FLOP), parameters, the median
forward time and the peak extra resident memory of a forward pass, then the
time ratio against the FLOPs ratio (a ratio of ratios near 1 means AlterNet
runs as efficiently per FLOP as the convolutional baseline).

FLOPs: mmengine has no handle for ``aten::scaled_dot_product_attention`` and
counts it as 0, so the project's handle
(:func:`mmsupervit.utils.flops.sdpa_flop_handle`) is registered; the SDPA
share is printed separately. Work on padded window tokens (their q/k/v
projections and attention) is counted, since it is computed; at 512x512 the
AlterNet-50 MSA maps are 64/32/16, padded to 70/35/21.

Timing: the two models are timed alternately (A, B, A, B, ...) so that load
from other processes on a shared machine hits both alike.

Memory (Linux): each model is measured in a fresh subprocess (so one
model's freed heap cannot hide the other's needs): after one warm-up forward
and ``malloc_trim``, writing ``5`` to ``/proc/self/clear_refs`` resets the
peak RSS (``VmHWM``) to the current RSS; the figure is ``VmHWM`` after a
forward minus ``VmRSS`` before it, i.e. activations and workspace, not
weights.
"""
import argparse
import ctypes
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer

from mmsupervit.models.backbones.alternet import AlterNet
from mmsupervit.utils.flops import sdpa_flop_handle


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='50', help='AlterNet arch')
    parser.add_argument('--shape', type=int, nargs=2, default=(512, 512),
                        metavar=('H', 'W'))
    parser.add_argument('--runs', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch default)')
    parser.add_argument('--memory-of', choices=('alternet', 'baseline'),
                        help=argparse.SUPPRESS)  # internal: one subprocess
    return parser.parse_args(argv)


def _status(field: str) -> int:
    """A ``/proc/self/status`` field in bytes (Linux only)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def peak_memory(fn: Callable[[], object]) -> Optional[int]:
    """Peak RSS growth (bytes) while running ``fn``; None if unsupported."""
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        before = _status('VmRSS')
    except OSError:
        return None
    fn()
    return _status('VmHWM') - before


def count_flops(model: nn.Module, x: torch.Tensor) -> Dict[str, float]:
    """Total FLOPs with the SDPA handle, and the SDPA share."""
    analyzer = FlopAnalyzer(model, (x, ))
    analyzer.set_op_handle('aten::scaled_dot_product_attention',
                           sdpa_flop_handle)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    by_op = analyzer.by_operator()
    total = analyzer.total()
    return dict(total=total,
                sdpa=by_op.get('scaled_dot_product_attention', 0))


def build_baseline() -> nn.Module:
    from mmseg.models.backbones import ResNetV1c
    model = ResNetV1c(depth=50)
    model.eval()  # mmseg's ResNet.train() does not return self
    return model


def measure_in_subprocess(args: argparse.Namespace,
                          which: str) -> Optional[int]:
    cmd = [sys.executable, osp.abspath(__file__), '--arch', args.arch,
           '--shape', *map(str, args.shape), '--memory-of', which]
    if args.threads:
        cmd += ['--threads', str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    value = out.stdout.strip().splitlines()[-1]
    return None if value == 'None' else int(value)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    h, w = args.shape
    x = torch.randn(1, 3, h, w)
    if args.memory_of:
        model = AlterNet(arch=args.arch).eval() \
            if args.memory_of == 'alternet' else build_baseline()
        with torch.no_grad():
            model(x)
            print(peak_memory(lambda: model(x)))
        return
    models = {
        f'AlterNet-{args.arch}': AlterNet(arch=args.arch).eval(),
        'ResNetV1c-50 (mmseg)': build_baseline(),
    }
    mems = [measure_in_subprocess(args, which)
            for which in ('alternet', 'baseline')]
    rows = {}
    with torch.no_grad():
        for name, model in models.items():
            flops = count_flops(model, x)
            params = sum(p.numel() for p in model.parameters())
            for _ in range(args.warmup):
                model(x)
            rows[name] = dict(flops=flops, params=params, times=[])
        for row, mem in zip(rows.values(), mems):
            row['mem'] = mem
        for _ in range(args.runs):
            for name, model in models.items():
                start = time.perf_counter()
                model(x)
                rows[name]['times'].append(time.perf_counter() - start)

    print(f'input 1x3x{h}x{w}, CPU, {torch.get_num_threads()} threads, '
          f'{args.runs} timed runs (median) after {args.warmup} warm-up; '
          'FLOPs = multiply-adds, SDPA counted by our handle')
    header = (f'{"backbone":<22}{"GFLOPs":>9}{"(SDPA)":>9}{"params M":>10}'
              f'{"time ms":>10}{"peak MB":>10}')
    print(header)
    print('-' * len(header))
    for name, r in rows.items():
        r['time'] = statistics.median(r['times'])
        mem = '-' if r['mem'] is None else f'{r["mem"] / 2**20:.0f}'
        print(f'{name:<22}{r["flops"]["total"] / 1e9:>9.2f}'
              f'{r["flops"]["sdpa"] / 1e9:>9.2f}{r["params"] / 1e6:>10.2f}'
              f'{r["time"] * 1e3:>10.1f}{mem:>10}')
    a, b = rows.values()
    flops_ratio = a['flops']['total'] / b['flops']['total']
    time_ratio = a['time'] / b['time']
    print(f'FLOPs ratio {flops_ratio:.3f}, time ratio {time_ratio:.3f}, '
          f'time/FLOPs ratio of ratios {time_ratio / flops_ratio:.3f} '
          '(target <= 1.1)')


if __name__ == '__main__':
    main()
