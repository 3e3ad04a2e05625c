"""CPU cost of the PatchConvNet backbone beside a DeiT-S ViT (mmseg).

    python tools/analysis_tools/benchmark_patchconvnet.py [--size 512 512]
        [--runs 5] [--warmup 2] [--threads N]

For each backbone, on one CPU input of batch 1 (default 512x512):

* FLOPs with mmengine's ``FlopAnalyzer`` (one fused multiply-add = 1 FLOP;
  ``scaled_dot_product_attention`` counted by the project's handle) and the
  number of parameters;
* the median wall time of an inference forward (after warm-up runs);
* peak memory: the growth of the peak resident set (Linux ``VmHWM``, reset
  by writing ``5`` to ``/proc/self/clear_refs``) over the resident set just
  before the measured call, for an inference forward and for a training
  forward+backward (where ``with_cp`` matters).

Every measurement runs in a fresh subprocess, so memory freed by an earlier
model does not hide the next one's peak. Rows: PatchConvNet S60, S120 and
S120 with ``with_cp=True``, and mmseg's ``VisionTransformer`` with DeiT-S
dims (embed 384, 12 layers, 6 heads, img_size = input size). Timings on a
shared machine are noisy: compare ratios measured in the same run.
"""
import argparse
import gc
import json
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

import torch

MODELS = {
    'PatchConvNet-S60': dict(arch='S60'),
    'PatchConvNet-S120': dict(arch='S120'),
    'PatchConvNet-S120 (with_cp)': dict(arch='S120', with_cp=True),
    'ViT DeiT-S (mmseg)': None,
}


def build(name: str, size: List[int]) -> torch.nn.Module:
    if MODELS[name] is None:
        from mmseg.models.backbones import VisionTransformer
        return VisionTransformer(
            img_size=tuple(size),
            patch_size=16,
            embed_dims=384,
            num_layers=12,
            num_heads=6,
            mlp_ratio=4,
            qkv_bias=True,
            out_indices=(2, 5, 8, 11))
    from mmsupervit.models.backbones.patchconvnet import PatchConvNet
    return PatchConvNet(**MODELS[name])


def _status_kb(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def peak_growth_mb(fn) -> Optional[float]:
    """Peak RSS growth during ``fn()`` in MiB (None if not measurable)."""
    gc.collect()
    before = _status_kb('VmRSS')
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        return None
    fn()
    return (_status_kb('VmHWM') - before) / 1024


def worker(name: str, task: str, size: List[int], runs: int,
           warmup: int) -> Dict[str, float]:
    torch.manual_seed(0)
    model = build(name, size)
    x = torch.randn(1, 3, *size)
    result: Dict[str, float] = {}
    if task == 'count':
        from mmengine.analysis import FlopAnalyzer, parameter_count

        from mmsupervit.utils.flops import sdpa_flop_handle
        model.eval()
        with torch.no_grad():
            analyzer = FlopAnalyzer(model, (x, ))
            analyzer.set_op_handle('aten::scaled_dot_product_attention',
                                   sdpa_flop_handle)
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            result['gflops'] = analyzer.total() / 1e9
            # ops without a handle (counted as 0 above), for the record
            result['uncounted_ops'] = sorted(analyzer.unsupported_ops())
        result['mparams'] = parameter_count(model)[''] / 1e6
    elif task == 'infer':
        model.eval()
        with torch.no_grad():
            model(x)  # allocator and kernel warm-up
            result['infer_mb'] = peak_growth_mb(lambda: model(x))
            times = []
            for i in range(warmup + runs):
                start = time.perf_counter()
                model(x)
                if i >= warmup:
                    times.append(time.perf_counter() - start)
        result['ms'] = statistics.median(times) * 1e3
    elif task == 'mem_train':
        model.train()

        def step():
            outs = model(x)
            sum(o.float().mean() for o in outs).backward()

        result['mb'] = peak_growth_mb(step)
    return result


def run_worker(args, name: str, task: str) -> dict:
    cmd = [
        sys.executable,
        osp.abspath(__file__), '--worker', name, task, '--size',
        *map(str, args.size), '--runs',
        str(args.runs), '--warmup',
        str(args.warmup)
    ]
    if args.threads:
        cmd += ['--threads', str(args.threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, nargs=2, default=[512, 512])
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=0,
                        help='torch threads (0: torch default)')
    parser.add_argument('--worker', nargs=2, help=argparse.SUPPRESS)
    return parser.parse_args()


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        name, task = args.worker
        print(json.dumps(worker(name, task, args.size, args.runs,
                                args.warmup)))
        return
    rows = {}
    for name in MODELS:
        row = {}
        row.update(run_worker(args, name, 'count'))
        if name != 'PatchConvNet-S120 (with_cp)':  # same forward as S120
            row.update(run_worker(args, name, 'infer'))
        row['train_mb'] = run_worker(args, name, 'mem_train')['mb']
        rows[name] = row
        print(f'done: {name}', file=sys.stderr, flush=True)

    def fmt(v, spec):
        if isinstance(v, (int, float)):
            return format(v, spec)
        return format('-', '>' + spec.split('.')[0])

    h, w = args.size
    print(f'\nCPU, input 1x3x{h}x{w}, torch threads '
          f'{args.threads or torch.get_num_threads()}, median of '
          f'{args.runs} runs after {args.warmup} warm-up')
    header = (f'{"backbone":30s} {"GFLOPs":>8s} {"params M":>9s} '
              f'{"fwd ms":>9s} {"fwd peak MiB":>13s} '
              f'{"train peak MiB":>15s}')
    print(header)
    print('-' * len(header))
    for name, r in rows.items():
        print(f'{name:30s} {fmt(r["gflops"], "8.1f")} '
              f'{fmt(r["mparams"], "9.2f")} {fmt(r.get("ms"), "9.0f")} '
              f'{fmt(r.get("infer_mb"), "13.0f")} '
              f'{fmt(r["train_mb"], "15.0f")}')
    vit = rows['ViT DeiT-S (mmseg)']
    for name in ('PatchConvNet-S60', 'PatchConvNet-S120'):
        r = rows[name]
        print(f'{name} / ViT DeiT-S: time x{r["ms"] / vit["ms"]:.2f}, '
              f'FLOPs x{r["gflops"] / vit["gflops"]:.2f}')
    s120, cp = rows['PatchConvNet-S120'], rows['PatchConvNet-S120 (with_cp)']
    if s120['train_mb'] and cp['train_mb']:
        print(f'S120 training peak memory with_cp / without: '
              f'x{cp["train_mb"] / s120["train_mb"]:.2f}')
    for name, r in rows.items():
        if r.get('uncounted_ops'):
            print(f'{name}: ops not counted in FLOPs: {r["uncounted_ops"]}')


if __name__ == '__main__':
    main()
