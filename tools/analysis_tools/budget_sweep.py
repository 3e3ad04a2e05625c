"""Accuracy, FLOPs and latency of one SuperViT checkpoint at every budget.

    python tools/analysis_tools/budget_sweep.py CONFIG CKPT \\
        [--keep-rates 1.0 0.7 0.5] [--scales 1.0 0.75 0.5] [--out-dir DIR]

For every (keep rate, input scale) of the grid the backbone's ``keep_rate``
and ``input_scale`` are set and the checkpoint is evaluated with the config's
own test loop (``runner.test_loop.run()``: mmseg's ``IoUMetric`` -> mIoU,
mmdet's ``CocoMetric`` -> bbox mAP). At the config's test size (the slide
crop for mmseg ``slide`` configs, else the test pipeline's ``Resize`` scale;
``--shape`` overrides) it also measures

* GFLOPs of backbone + heads with :func:`mmsupervit.utils.flops.count_flops`
  (mmengine's ``FlopAnalyzer``, the counter behind
  ``get_model_complexity_info``; one multiply-add = 1 FLOP; attention
  matmuls counted by the project's handles). Segmentors: backbone, neck
  and decode head (the auxiliary head is not run at test time). Detectors:
  backbone, neck and RPN head; the RoI heads' cost depends on the proposals
  and is not counted.
* latency of that same forward (batch 1, warm-up, then the median of
  ``--runs``; the thread count is printed).

Writes ``budget_sweep.csv``, ``budget_sweep.md`` (a markdown table) and
``budget_sweep.png`` (accuracy vs GFLOPs, every point labelled, the Pareto
front drawn, keep 1.0 / scale 1.0 marked) to ``--out-dir`` (default: the
work dir). The checkpoint may come from a single-budget or a budget-training
config: the state-dict keys are the same.
"""
import argparse
import csv
import os
import os.path as osp
import statistics
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config, DictAction
from mmengine.model import is_model_wrapper
from mmengine.registry import MODELS, init_default_scope
from mmengine.utils import ProgressBar

import mmsupervit  # noqa: F401  (registers our models, applies compat)
from mmsupervit.utils import runner_utils as ru
from mmsupervit.utils.flops import FLOP_COUNTER, count_flops

DEFAULT_KEEP_RATES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
DEFAULT_SCALES = (1.0, 0.875, 0.75, 0.625, 0.5)
#: Metric reported by default, per task.
DEFAULT_METRIC = {'seg': 'mIoU', 'det': 'coco/bbox_mAP'}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='mmseg or mmdet config')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--keep-rates', type=float, nargs='+',
                        default=list(DEFAULT_KEEP_RATES),
                        help='keep rates in (0, 1]')
    parser.add_argument('--scales', type=float, nargs='+',
                        default=list(DEFAULT_SCALES),
                        help='backbone input scales (> 0)')
    parser.add_argument('--metric', help='metric key to plot (default: mIoU '
                        'for mmseg, coco/bbox_mAP for mmdet)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size for FLOPs and latency (default: '
                        "the config's test size)")
    parser.add_argument('--runs', type=int, default=10,
                        help='timed forwards per budget (median reported)')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed forwards before timing')
    parser.add_argument('--threads', type=int,
                        help="torch threads (default: torch's default)")
    parser.add_argument('--out-dir', help='where the csv, md and png go '
                        '(default: the work dir)')
    parser.add_argument('--work-dir', help='work dir of the test runner '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    return parser.parse_args(argv)


# ----------------------------------------------------------------------
# grid and sizes
# ----------------------------------------------------------------------
def _find_resize_scale(pipeline: Sequence[dict]) -> Optional[Tuple[int, int]]:
    for step in pipeline or ():
        if step.get('type') == 'Resize' and step.get('scale') is not None:
            w, h = step['scale']  # mmcv's Resize takes (w, h)
            return int(h), int(w)
    return None


def test_size(cfg: Config) -> Tuple[int, int]:
    """(H, W) of one test forward: the slide crop for mmseg ``slide``
    configs, else the test pipeline's ``Resize`` scale."""
    test_cfg = cfg.model.get('test_cfg') or {}
    if test_cfg.get('mode') == 'slide':
        h, w = test_cfg['crop_size']
        return int(h), int(w)
    pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get(
        'pipeline') or cfg.get('test_pipeline')
    size = _find_resize_scale(pipeline)
    if size is None:
        raise ValueError('cannot tell the test size from the config (no '
                         'slide crop, no Resize scale in the test pipeline); '
                         'give --shape H W')
    return size


def check_grid(keep_rates: Sequence[float], scales: Sequence[float],
               size: Tuple[int, int], patch_size: int) -> None:
    """Refuse a grid the backbone cannot run, before any work is done.

    Raises:
        ValueError: A keep rate outside (0, 1], or a scale that leaves less
            than one ``patch_size`` patch of the test size.
    """
    bad_keep = [k for k in keep_rates if not 0 < k <= 1]
    if bad_keep:
        raise ValueError(f'keep rates must lie in (0, 1], got {bad_keep}')
    side = min(size)
    bad_scale = [s for s in scales if not s > 0 or round(side * s) <
                 patch_size]
    if bad_scale:
        raise ValueError(
            f'input scales {bad_scale} leave less than one {patch_size}x'
            f'{patch_size} patch of the {size[0]}x{size[1]} test size '
            f'(scale must be > 0 and >= {patch_size / side:.4g})')
    if len(set(keep_rates)) != len(keep_rates) or \
            len(set(scales)) != len(scales):
        raise ValueError('keep rates and scales must not repeat')


# ----------------------------------------------------------------------
# cost
# ----------------------------------------------------------------------
class _DenseForward(nn.Module):
    """The test-time dense part of a segmentor or detector, tensor in,
    tensors out (what the FLOPs and latency refer to)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        if hasattr(model, 'decode_head'):
            self.part = 'backbone + neck + decode head'
        elif hasattr(model, 'rpn_head'):
            self.part = 'backbone + neck + RPN head (RoI heads not counted)'
        else:
            raise TypeError(f'{type(model).__name__} is neither an mmseg '
                            'segmentor nor a two-stage mmdet detector')

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        feats = self.model.extract_feat(x)
        if hasattr(self.model, 'decode_head'):
            return (self.model.decode_head(feats), )
        cls_scores, bbox_preds = self.model.rpn_head(feats)
        return tuple(cls_scores) + tuple(bbox_preds)


def count_gflops(module: nn.Module, x: torch.Tensor) -> float:
    return count_flops(module, x).total / 1e9


def median_latency_ms(module: nn.Module, x: torch.Tensor, runs: int,
                      warmup: int) -> float:
    def sync() -> None:
        if x.device.type == 'cuda':
            torch.cuda.synchronize(x.device)

    times = []
    with torch.no_grad():
        for i in range(warmup + runs):
            sync()
            start = time.perf_counter()
            module(x)
            sync()
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


# ----------------------------------------------------------------------
# outputs
# ----------------------------------------------------------------------
def pareto_front(rows: List[Dict], metric: str) -> List[Dict]:
    """Points no other point beats with fewer or equal GFLOPs, by GFLOPs."""
    front, best = [], float('-inf')
    for row in sorted(rows, key=lambda r: (r['gflops'], -r[metric])):
        if row[metric] > best:
            front.append(row)
            best = row[metric]
    return front


def write_csv(rows: List[Dict], path: str) -> None:
    keys = list(rows[0])
    for row in rows[1:]:
        keys += [k for k in row if k not in keys]
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def markdown_table(rows: List[Dict], metric: str, header: str) -> str:
    ref = next((r for r in rows
                if r['keep_rate'] == 1 and r['input_scale'] == 1), None)
    on_front = {id(r) for r in pareto_front(rows, metric)}
    lines = [header, '',
             f'| keep rate | input scale | GFLOPs | latency (ms) | {metric} '
             '| vs keep 1 / scale 1 | Pareto |',
             '|---:|---:|---:|---:|---:|---:|:---:|']
    for r in rows:
        delta = '' if ref is None else f'{r[metric] - ref[metric]:+.3f}'
        lines.append(
            f"| {r['keep_rate']:g} | {r['input_scale']:g} | "
            f"{r['gflops']:.3f} | {r['latency_ms']:.1f} | {r[metric]:.3f} | "
            f"{delta} | {'*' if id(r) in on_front else ''} |")
    return '\n'.join(lines) + '\n'


def plot(rows: List[Dict], metric: str, title: str, xlabel: str,
         path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    ax.scatter([r['gflops'] for r in rows], [r[metric] for r in rows],
               color='tab:blue', zorder=2, label='budget')
    # labels alternate above/below along the FLOPs axis: neighbours are
    # often only a little apart
    for i, r in enumerate(sorted(rows, key=lambda r: r['gflops'])):
        ax.annotate(f"k{r['keep_rate']:g} s{r['input_scale']:g}",
                    (r['gflops'], r[metric]), textcoords='offset points',
                    xytext=(4, 6 if i % 2 == 0 else -12), fontsize=7)
    front = pareto_front(rows, metric)
    ax.plot([r['gflops'] for r in front], [r[metric] for r in front],
            color='tab:orange', zorder=1, label='Pareto front')
    full = [r for r in rows if r['keep_rate'] == 1 and r['input_scale'] == 1]
    if full:
        ax.scatter([full[0]['gflops']], [full[0][metric]], marker='*',
                   s=250, color='tab:red', zorder=3,
                   label='keep 1.0 / scale 1.0')
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------
# main
# ----------------------------------------------------------------------
def main(argv: Optional[Sequence[str]] = None) -> List[Dict]:
    args = parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        raise ValueError('--runs must be >= 1 and --warmup >= 0')
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = ru.load_config(args.config, args.cfg_options, args.work_dir)
    task = ru.task_of(cfg)
    init_default_scope(cfg.default_scope)
    backbone_cls = MODELS.get(cfg.model.backbone.type)
    for attr in ('keep_rate', 'input_scale', 'patch_size'):
        if not hasattr(backbone_cls, attr):
            raise TypeError(f'{cfg.model.backbone.type} has no `{attr}`: the '
                            'budget sweep needs a SuperViT backbone')
    size = tuple(args.shape) if args.shape else test_size(cfg)
    check_grid(args.keep_rates, args.scales, size, backbone_cls.patch_size)
    metric = args.metric or DEFAULT_METRIC[task]
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg.load_from = args.checkpoint
    runner = ru.build_runner(cfg)
    out_dir = args.out_dir or runner.work_dir
    os.makedirs(out_dir, exist_ok=True)
    model = runner.model.module if is_model_wrapper(runner.model) else \
        runner.model
    # Runner.test(), split so that the test loop runs once per budget
    test_loop = runner.test_loop
    runner.call_hook('before_run')
    runner.load_or_resume()
    dense = _DenseForward(model).eval()
    device = next(model.parameters()).device
    x = torch.randn(1, 3, *size, device=device)

    grid = [(k, s) for k in args.keep_rates for s in args.scales]
    saved = (model.backbone.keep_rate, model.backbone.input_scale)
    rows = []
    bar = ProgressBar(len(grid))
    try:
        for keep, scale in grid:
            model.backbone.keep_rate = keep
            model.backbone.input_scale = scale
            metrics = test_loop.run()
            if metric not in metrics:
                raise KeyError(f'metric {metric!r} not in the test results '
                               f'{sorted(metrics)}; choose one with --metric')
            model.eval()
            with torch.no_grad():
                gflops = count_gflops(dense, x)
            latency = median_latency_ms(dense, x, args.runs, args.warmup)
            row = dict(keep_rate=keep, input_scale=scale, gflops=gflops,
                       latency_ms=latency)
            row[metric] = float(metrics[metric])
            row.update({k: float(v) for k, v in metrics.items()
                        if k != metric and isinstance(v, (int, float))})
            rows.append(row)
            bar.update()
    finally:
        model.backbone.keep_rate, model.backbone.input_scale = saved
        runner.call_hook('after_run')

    threads = torch.get_num_threads()
    where = f'{size[0]}x{size[1]}, batch 1'
    header = (f'Budget sweep of `{osp.basename(args.checkpoint)}` '
              f'(`{osp.basename(args.config)}`). GFLOPs of '
              f'{dense.part} at {where}: {FLOP_COUNTER}. Latency: median '
              f'of {args.runs} forwards after {args.warmup} warm-up, '
              f'{threads} torch thread(s), device {device}.')
    write_csv(rows, osp.join(out_dir, 'budget_sweep.csv'))
    table = markdown_table(rows, metric, header)
    with open(osp.join(out_dir, 'budget_sweep.md'), 'w') as f:
        f.write(table)
    title = f'{osp.basename(args.config)}\n{osp.basename(args.checkpoint)}'
    plot(rows, metric, title,
         f'GFLOPs ({dense.part}, {size[0]}x{size[1]})',
         osp.join(out_dir, 'budget_sweep.png'))
    print()
    print(table)
    print(f'written: {osp.join(out_dir, "budget_sweep.{csv,md,png}")}')
    return rows


if __name__ == '__main__':
    main()
