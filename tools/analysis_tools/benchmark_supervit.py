"""CPU cost of SuperViT budgets: FLOPs, forward time and peak memory.

    python tools/analysis_tools/benchmark_supervit.py [--size 512] [--runs 10]

For SuperViT (``deit-s`` by default) at several keep rates and input scales,
and for mmseg's own ``VisionTransformer`` with the same dimensions (embed 384,
12 layers, 6 heads, patch 16, ``img_size`` = size), on one (1, 3, S, S) input:

* FLOPs with mmengine's ``FlopAnalyzer`` (one multiply-add = 1 FLOP, plus the
  ``scaled_dot_product_attention`` handle of ``mmsupervit.utils.flops``);
* median forward time: warm-up, then ``--runs`` rounds that time every model
  once each (round robin, so load from other processes hits all models
  alike);
* the speed-up over keep 1.0 / scale 1.0 divided by the FLOPs reduction
  (1.0 = the FLOPs saving turns fully into time);
* peak memory of one forward (Linux: freed heap returned with
  ``malloc_trim``, peak RSS reset through ``/proc/self/clear_refs``, then
  ``VmHWM`` minus the RSS before the call; median of 3 calls).

Everything is printed as one table from one run. On a machine shared with
other jobs use ``--threads 1``: with more threads than free cores, OpenMP
synchronisation dominates and hides the FLOPs savings.
"""
import argparse
import statistics
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer

import mmsupervit  # noqa: F401
from mmsupervit.models.backbones.supervit import SuperViT
from mmsupervit.utils.flops import sdpa_flop_handle


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='deit-s', help='SuperViT arch')
    parser.add_argument('--size', type=int, default=512, help='input side')
    parser.add_argument('--runs', type=int, default=10, help='timed rounds')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument(
        '--threads', type=int, default=None,
        help='torch threads (default: torch\'s default)')
    parser.add_argument(
        '--no-mmseg', action='store_true',
        help='skip the mmseg VisionTransformer reference')
    return parser.parse_args()


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    analyzer = FlopAnalyzer(model, (x, ))
    analyzer.set_op_handle('aten::scaled_dot_product_attention',
                           sdpa_flop_handle)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return int(analyzer.total())


def _status_kib(field: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_memory_mib(fn: Callable[[], object]) -> Optional[float]:
    """Peak RSS growth of one call, in MiB (None if not measurable)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        return None
    # Hand freed heap pages back to the OS first; otherwise a forward that
    # reuses memory freed by an earlier one shows no RSS growth at all.
    try:
        import ctypes
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass
    before = _status_kib('VmRSS')
    fn()
    peak = _status_kib('VmHWM')
    if before is None or peak is None:
        return None
    return (peak - before) / 1024


def build_mmseg_vit(size: int) -> nn.Module:
    from mmseg.models.backbones import VisionTransformer
    return VisionTransformer(
        img_size=size,
        patch_size=16,
        embed_dims=384,
        num_layers=12,
        num_heads=6,
        mlp_ratio=4,
        out_indices=(2, 5, 8, 11),
        qkv_bias=True,
        final_norm=True,
        with_cls_token=True,
        interpolate_mode='bicubic')


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(1, 3, args.size, args.size)

    # (label, keep_rate, input_scale)
    budgets: List[Tuple[str, float, float]] = [
        ('keep 1.0, scale 1.0', 1.0, 1.0),
        ('keep 0.7, scale 1.0', 0.7, 1.0),
        ('keep 0.5, scale 1.0', 0.5, 1.0),
        ('keep 1.0, scale 0.75', 1.0, 0.75),
        ('keep 1.0, scale 0.5', 1.0, 0.5),
        ('keep 0.7, scale 0.75', 0.7, 0.75),
    ]
    models: Dict[str, nn.Module] = {}
    for label, keep_rate, input_scale in budgets:
        models[f'SuperViT {args.arch}: {label}'] = SuperViT(
            arch=args.arch, keep_rate=keep_rate,
            input_scale=input_scale).eval()
    base_key = next(iter(models))
    # all budgets share one set of weights
    shared = models[base_key].state_dict()
    for model in models.values():
        model.load_state_dict(shared)
    mmseg_key = None
    if not args.no_mmseg:
        mmseg_key = f'mmseg VisionTransformer (384/12/6, img {args.size})'
        vit = build_mmseg_vit(args.size)
        vit.eval()  # mmseg's train() override returns None, so no chaining
        models[mmseg_key] = vit

    print(f'input (1, 3, {args.size}, {args.size}), threads '
          f'{torch.get_num_threads()}, torch {torch.__version__}, '
          f'{args.warmup} warm-up + {args.runs} timed rounds')
    flops = {}
    with torch.no_grad():
        for key, model in models.items():
            flops[key] = count_flops(model, x)
        for key, model in models.items():
            for _ in range(args.warmup):
                model(x)
        times: Dict[str, List[float]] = {k: [] for k in models}
        for _ in range(args.runs):
            for key, model in models.items():
                start = time.perf_counter()
                model(x)
                times[key].append(time.perf_counter() - start)
        memory = {}
        for key, model in models.items():
            samples = [peak_memory_mib(lambda m=model: m(x)) for _ in range(3)]
            memory[key] = None if None in samples else statistics.median(
                samples)

    median = {k: statistics.median(v) for k, v in times.items()}
    header = (f'{"model / budget":<48} {"GFLOPs":>7} {"ms (med)":>9} '
              f'{"speed-up":>8} {"FLOPs red.":>10} {"eff.":>5} '
              f'{"peak MiB":>8}')
    print(header)
    print('-' * len(header))
    for key in models:
        speedup = median[base_key] / median[key]
        reduction = flops[base_key] / flops[key] if flops[key] else \
            float('nan')
        eff = speedup / reduction if key != mmseg_key else float('nan')
        mem = memory[key]
        print(f'{key:<48} {flops[key] / 1e9:>7.2f} '
              f'{median[key] * 1e3:>9.1f} {speedup:>8.2f} '
              f'{reduction:>10.2f} {eff:>5.2f} '
              f'{(f"{mem:.0f}" if mem is not None else "n/a"):>8}')
    print('-' * len(header))
    print('speed-up = time(keep 1.0, scale 1.0) / time; FLOPs red. = '
          'FLOPs(keep 1.0, scale 1.0) / FLOPs; eff. = speed-up / FLOPs red. '
          '(target >= 0.8)')
    if mmseg_key is not None:
        ratio = median[base_key] / median[mmseg_key]
        print(f'time ratio SuperViT keep 1.0 / mmseg VisionTransformer: '
              f'{ratio:.3f} (target <= 1.0)')
        if flops[mmseg_key] < 0.9 * flops[base_key]:
            print('note: the mmseg FLOPs count misses attention (torch ran '
                  'nn.MultiheadAttention through a fused kernel the '
                  'analyser does not know).')


if __name__ == '__main__':
    main()
