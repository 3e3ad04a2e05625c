"""CPU/GPU cost of a backbone (and of SuperViT's budgets) as ratios to
baselines measured in the same run.

    python tools/analysis_tools/benchmark.py [--backbone SuperViT]
        [--arch deit-s] [--config CONFIG] [--size 512 512] [--threads 2]
        [--keep-rates 1.0 0.7 0.5] [--scales 1.0 0.5]
        [--baselines timm-vit mmseg-vit mmseg-resnet] [--rounds 7]
        [--csv out.csv]

Rows (batch 1, eval mode, no grad, one ``(1, 3, H, W)`` input):

* the backbone (``--backbone`` name of mmsupervit's registry with
  ``--arch``, or ``model.backbone`` of ``--config``; ``Pretrained`` init is
  skipped, weights are random);
* for SuperViT, one row per (keep rate, input scale) of the grid (default:
  keep 1.0, 0.9, 0.8, 0.7, 0.6, 0.5 x scale 1.0, 0.875, 0.75, 0.625, 0.5);
  all rows are one model whose ``keep_rate`` / ``input_scale`` are set
  before each call, so they share weights;
* baselines: ``timm-vit`` (timm ``VisionTransformer``, fused SDPA attention,
  the backbone's width/depth/heads when it is a ViT, else DeiT-S's; maps of
  the same four blocks via ``forward_intermediates``), ``mmseg-vit``
  (mmseg ``VisionTransformer``, same dims) and ``mmseg-resnet`` (mmseg
  ``ResNetV1c``-50, the usual CNN backbone of UperNet / Mask R-CNN).

Figures per row: FLOPs (:func:`mmsupervit.utils.flops.count_flops`, whose
docstring names the counter; attention matmuls included), median time and
peak memory, each also as a ratio to the reference (the first baseline,
``--baselines``).

Timing: ``--warmup`` untimed calls per row, then ``--rounds`` rounds; each
round calls every row once, in an order rotated by one from round to round
(so no row always follows the same one), and the ratios of a round are
taken between the calls of that round. Every reported ratio is the median
over rounds of the per-round ratio; ``ms`` is the median time. Load from
other processes therefore hits numerator and denominator alike.

Efficiency (SuperViT budget rows). With ``t`` the time and ``F`` the FLOPs of
the *backbone alone* and ``full`` the keep-1.0 / scale-1.0 row of the same
run::

    speed-up   = t(full) / t(budget)      (median of per-round ratios)
    FLOPs red. = F(full) / F(budget)
    efficiency = speed-up / FLOPs red.

1.0 means the FLOPs saving turns fully into wall-clock time. Backbone only,
because the budget acts only there: a neck and head run on the nominal
stride-16 maps at every budget, so they add the same time and FLOPs to both
sides and would pull every efficiency towards 1 without saying anything about
the budget mechanism (the figures in issue #13 were backbone-level too, from
the former ``benchmark_supervit.py``).

Peak memory (Linux): measured for each row on its own, before any timing:
a warm-up call, ``gc.collect()``, ``malloc_trim(0)`` (freed heap goes back to
the OS, so memory released by an earlier row cannot absorb this row's
allocations), *then* the peak-RSS reset (``5`` to ``/proc/self/clear_refs``)
and the RSS before the call; the figure is ``VmHWM`` after the call minus that
RSS: activations and workspace, not weights. (Resetting the peak before
trimming, as the former SuperViT script did, left the previous row's freed
heap in the peak.) CUDA: ``torch.cuda.max_memory_allocated`` after
``reset_peak_memory_stats``.

On a machine shared with other jobs, use no more threads than free cores:
otherwise OpenMP synchronisation dominates small problems.
"""
import argparse
import ast
import csv
import ctypes
import gc
import inspect
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

import mmsupervit  # noqa: F401  (registers the backbones)
from mmsupervit.registry import MODELS
from mmsupervit.utils.flops import FLOP_COUNTER, count_flops

DEFAULT_KEEP_RATES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
DEFAULT_SCALES = (1.0, 0.875, 0.75, 0.625, 0.5)
BASELINES = ('timm-vit', 'mmseg-vit', 'mmseg-resnet')
#: Baselines per backbone family when ``--baselines`` is not given.
DEFAULT_BASELINES = {
    'SuperViT': ('timm-vit', 'mmseg-vit'),
    'PatchConvNet': ('mmseg-vit', 'timm-vit'),
    'AlterNet': ('mmseg-resnet', ),
}
#: ViT dims of the baselines when the backbone is not a ViT (DeiT-S).
_DEIT_S_DIMS = dict(embed_dims=384, depth=12, num_heads=6)


class BenchmarkError(ValueError):
    """A bad argument combination, reported before any work."""


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument('--backbone', default=None,
                       help='registered backbone type: SuperViT, AlterNet '
                       'or PatchConvNet (default: SuperViT)')
    which.add_argument('--config', help='take model.backbone from this '
                       'mmseg/mmdet config')
    parser.add_argument('--arch', help="the backbone's arch: a zoo name or a "
                        "Python dict literal, e.g. \"{'embed_dims': 64, "
                        "'depth': 12, 'num_heads': 2}\"")
    parser.add_argument('--size', type=int, nargs=2, default=(512, 512),
                        metavar=('H', 'W'), help='input size')
    parser.add_argument('--keep-rates', type=float, nargs='+',
                        help='SuperViT keep rates in (0, 1] (default: '
                        f'{" ".join(map(str, DEFAULT_KEEP_RATES))})')
    parser.add_argument('--scales', type=float, nargs='+',
                        help='SuperViT input scales (default: '
                        f'{" ".join(map(str, DEFAULT_SCALES))})')
    parser.add_argument('--baselines', nargs='*', choices=BASELINES,
                        help='baselines; the first is the reference of the '
                        'ratio columns (default: per backbone, see '
                        'DEFAULT_BASELINES)')
    parser.add_argument('--rounds', type=int, default=7,
                        help='timed rounds (medians over rounds)')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed calls per row before timing')
    parser.add_argument('--threads', type=int,
                        help="torch threads (default: torch's default)")
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--no-memory', action='store_true',
                        help='skip the peak-memory measurement')
    parser.add_argument('--csv', help='also write the table to this CSV file')
    parser.add_argument('--profile', type=float, nargs=2, action='append',
                        metavar=('KEEP', 'SCALE'),
                        help='SuperViT: after the table, profile this budget '
                        'against keep 1 / scale 1 op by op (torch.profiler; '
                        'repeatable)')
    return parser.parse_args(argv)


# ----------------------------------------------------------------------
# models
# ----------------------------------------------------------------------
class Row:
    """One benchmarked call: a model and, for SuperViT, its budget."""

    def __init__(self, name: str, model: nn.Module, kind: str,
                 budget: Optional[Tuple[float, float]] = None) -> None:
        self.name = name
        self.model = model
        self.kind = kind  # 'backbone' | 'budget' | 'baseline'
        self.budget = budget
        self.flops = 0
        self.times: List[float] = []
        self.memory: Optional[float] = None

    def __call__(self, x: torch.Tensor) -> object:
        if self.budget is not None:
            self.model.keep_rate, self.model.input_scale = self.budget
        return self.model(x)


def _parse_arch(arch: Optional[str]):
    if arch is None or not arch.lstrip().startswith('{'):
        return arch
    try:
        value = ast.literal_eval(arch)
    except (ValueError, SyntaxError) as e:
        raise BenchmarkError(f'--arch {arch!r} is not a dict literal: {e}')
    if not isinstance(value, dict):
        raise BenchmarkError(f'--arch {arch!r} is not a dict')
    return value


def backbone_cfg(args: argparse.Namespace) -> dict:
    """The backbone's config dict from ``--backbone``/``--arch`` or
    ``--config`` (``Pretrained`` init dropped: the weights do not matter
    for cost)."""
    if args.config:
        from mmengine.config import Config
        cfg = Config.fromfile(args.config).model.backbone.to_dict()
        cfg['type'] = cfg['type'].split('.')[-1]
        cfg.pop('init_cfg', None)
    else:
        cfg = dict(type=args.backbone or 'SuperViT')
    arch = _parse_arch(args.arch)
    if arch is not None:
        cfg['arch'] = arch
    name = cfg['type']
    if MODELS.get(name) is None:
        raise BenchmarkError(f'unknown backbone {name!r}; registered in '
                             f'mmsupervit: {sorted(DEFAULT_BASELINES)}')
    return cfg


def check_args(args: argparse.Namespace, family: str) -> None:
    """Fail on bad grids and sizes before any model runs."""
    if args.rounds < 1 or args.warmup < 0:
        raise BenchmarkError(f'--rounds must be >= 1 and --warmup >= 0, got '
                             f'{args.rounds} and {args.warmup}')
    if min(args.size) < 16:
        raise BenchmarkError(f'--size {tuple(args.size)}: both sides must '
                             'be >= 16 (one patch)')
    if family != 'SuperViT':
        if args.keep_rates or args.scales or args.profile:
            raise BenchmarkError('--keep-rates/--scales/--profile are '
                                 f'SuperViT budgets; {family} has none')
        return
    for k in list(args.keep_rates or ()) + [k for k, _ in args.profile or ()]:
        if not 0 < k <= 1:
            raise BenchmarkError(f'keep rate {k} is not in (0, 1]')
    for s in list(args.scales or ()) + [s for _, s in args.profile or ()]:
        if not 0 < s <= 4:
            raise BenchmarkError(f'input scale {s} is not in (0, 4]')
        if min(round(v * s) for v in args.size) < 16:
            raise BenchmarkError(
                f'input scale {s} makes the {tuple(args.size)} input smaller'
                ' than one 16-pixel patch')


def _vit_dims(model: nn.Module) -> dict:
    if all(hasattr(model, k) for k in _DEIT_S_DIMS):
        return {k: int(getattr(model, k)) for k in _DEIT_S_DIMS}
    return dict(_DEIT_S_DIMS)


def _out_blocks(depth: int) -> Tuple[int, ...]:
    return tuple(round((i + 1) * depth / 4) - 1 for i in range(4))


class _TimmMaps(nn.Module):
    """timm ViT returning NCHW maps of four blocks, like our backbones."""

    def __init__(self, vit: nn.Module, indices: Sequence[int]) -> None:
        super().__init__()
        self.vit = vit
        self.indices = list(indices)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        return self.vit.forward_intermediates(
            x, indices=self.indices, intermediates_only=True)


def build_baseline(name: str, dims: dict, size: Sequence[int]) -> nn.Module:
    if name == 'timm-vit':
        from timm.models.vision_transformer import VisionTransformer
        vit = VisionTransformer(
            img_size=tuple(size), patch_size=16, embed_dim=dims['embed_dims'],
            depth=dims['depth'], num_heads=dims['num_heads'], num_classes=0,
            global_pool='')
        assert vit.blocks[0].attn.fused_attn, 'timm attention is not fused'
        return _TimmMaps(vit, _out_blocks(dims['depth'])).eval()
    if name == 'mmseg-vit':
        from mmseg.models.backbones import VisionTransformer
        model = VisionTransformer(
            img_size=tuple(size), patch_size=16,
            embed_dims=dims['embed_dims'], num_layers=dims['depth'],
            num_heads=dims['num_heads'], mlp_ratio=4, qkv_bias=True,
            out_indices=_out_blocks(dims['depth']), final_norm=True,
            interpolate_mode='bicubic')
    else:
        from mmseg.models.backbones import ResNetV1c
        model = ResNetV1c(depth=50)
    model.eval()  # mmseg's train() overrides return None: no chaining
    return model


def build_rows(args: argparse.Namespace) -> Tuple[List[Row], str]:
    cfg = backbone_cfg(args)
    family = cfg['type']
    check_args(args, family)
    model = MODELS.build(cfg).eval()
    rows: List[Row] = []
    baselines = DEFAULT_BASELINES.get(family, ('timm-vit', )) \
        if args.baselines is None else tuple(args.baselines)
    if not baselines:
        raise BenchmarkError('--baselines needs at least one baseline: '
                             'every figure is a ratio to it')
    dims = _vit_dims(model)
    for name in baselines:
        rows.append(Row(name, build_baseline(name, dims, args.size),
                        'baseline'))
    arch = cfg.get('arch', inspect.signature(type(model)).parameters[
        'arch'].default)
    label = f'{family} {arch}' if isinstance(arch, str) else f'{family} ' \
        f'{dims["embed_dims"]}/{dims["depth"]}/{dims["num_heads"]}'
    if family == 'SuperViT':
        keeps = args.keep_rates or DEFAULT_KEEP_RATES
        scales = args.scales or DEFAULT_SCALES
        grid = [(1.0, 1.0)] + [(k, s) for s in scales for k in keeps
                               if (k, s) != (1.0, 1.0)]
        for k, s in grid:
            rows.append(Row(f'{label} keep {k:g} scale {s:g}', model,
                            'budget', (k, s)))
    else:
        rows.append(Row(label, model, 'backbone'))
    return rows, family


# ----------------------------------------------------------------------
# measurements
# ----------------------------------------------------------------------
def _status_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise KeyError(field)


def peak_memory_mib(fn: Callable[[], object],
                    device: torch.device) -> Optional[float]:
    """Peak memory growth of one call of ``fn`` in MiB, measured on its own
    (see the module docstring); None where it cannot be measured."""
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass
    # Trim first, reset the peak second: the other order keeps the heap an
    # earlier call freed inside the "peak" of this one.
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        before = _status_kib('VmRSS')
    except (OSError, KeyError):
        return None
    fn()
    return (_status_kib('VmHWM') - before) / 1024


def measure(rows: List[Row], x: torch.Tensor, rounds: int, warmup: int,
            memory: bool) -> None:
    device = x.device

    def sync() -> None:
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    with torch.no_grad():
        for row in rows:
            row.flops = count_flops(row.model, x).total if row.budget is \
                None else _budget_flops(row, x)
            for _ in range(max(warmup, 1)):
                row(x)
            if memory:
                row.memory = peak_memory_mib(lambda r=row: r(x), device)
        for r in range(rounds):
            shift = r % len(rows)
            for row in rows[shift:] + rows[:shift]:
                sync()
                start = time.perf_counter()
                row(x)
                sync()
                row.times.append(time.perf_counter() - start)


def _budget_flops(row: Row, x: torch.Tensor) -> int:
    row.model.keep_rate, row.model.input_scale = row.budget
    return count_flops(row.model, x).total


def median_ratio(num: Row, den: Row) -> float:
    """Median over rounds of ``time(num) / time(den)`` of the same round."""
    return statistics.median(a / b for a, b in zip(num.times, den.times))


def summarise(rows: List[Row]) -> List[Dict[str, object]]:
    ref = rows[0]
    full = next((r for r in rows if r.budget == (1.0, 1.0)), None)
    table = []
    for row in rows:
        rec: Dict[str, object] = dict(
            model=row.name,
            kind=row.kind,
            gflops=row.flops / 1e9,
            ms=statistics.median(row.times) * 1e3,
            peak_mib=row.memory,
            time_x_ref=median_ratio(row, ref),
            flops_x_ref=row.flops / ref.flops,
            mem_x_ref=(row.memory / ref.memory
                       if row.memory and ref.memory else None))
        rec['time_per_flop_x_ref'] = rec['time_x_ref'] / rec['flops_x_ref']
        if full is not None and row.kind == 'budget':
            speedup = median_ratio(full, row)
            reduction = full.flops / row.flops
            rec.update(speedup=speedup, flops_reduction=reduction,
                       efficiency=speedup / reduction)
        table.append(rec)
    return table


def profile_budgets(model: nn.Module, x: torch.Tensor,
                    budget: Tuple[float, float], calls: int,
                    top: int = 14) -> str:
    """Where the time of ``budget`` goes, op by op, beside keep 1 / scale 1.

    After one untimed call, each budget runs ``calls`` times under a
    ``torch.profiler`` session, two sessions each, alternating (medians per
    op). The table lists self CPU time per forward of the ops that take most
    time at ``budget``, the share of the forward they are, and their own
    speed-up. Below it, the FLOPs reduction per counted operator
    (:func:`count_flops`), so an op's speed-up can be read against the FLOPs
    it saves (an op missing there counts 0 FLOPs).
    """
    from torch.profiler import ProfilerActivity, profile

    def per_op(keep: float, scale: float) -> Dict[str, float]:
        model.keep_rate, model.input_scale = keep, scale
        model(x)  # one-time work (e.g. a new position-table size) excluded
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(calls):
                model(x)
        return {e.key: e.self_cpu_time_total / 1e3 / calls
                for e in prof.key_averages()}

    sessions: Tuple[List[Dict[str, float]], ...] = ([], [])
    with torch.no_grad():
        for _ in range(2):  # two sessions each, alternating
            for store, b in zip(sessions, ((1.0, 1.0), budget)):
                store.append(per_op(*b))

        def median_per_op(runs: List[Dict[str, float]]) -> Dict[str, float]:
            names = set().union(*runs)  # an op absent from a session: 0
            return {k: statistics.median(r.get(k, 0.0) for r in runs)
                    for k in names}

        full, small = (median_per_op(r) for r in sessions)
        flops = []
        for b in ((1.0, 1.0), budget):
            model.keep_rate, model.input_scale = b
            flops.append(count_flops(model, x).by_operator)
    total_small, total_full = sum(small.values()), sum(full.values())
    keep, scale = budget
    lines = [f'profile: keep {keep:g} scale {scale:g} against keep 1 scale 1'
             f' ({calls} calls x 2 sessions each; self CPU ms per forward: '
             f'{total_small:.1f} vs {total_full:.1f})',
             f'{"op":<52} {"ms full":>8} {"ms budget":>9} {"share":>6} '
             f'{"speed-up":>8}']
    for name in sorted(small, key=small.get, reverse=True)[:top]:
        f = full.get(name, 0.0)
        lines.append(f'{name[:52]:<52} {f:>8.2f} {small[name]:>9.2f} '
                     f'{small[name] / total_small:>6.1%} '
                     f'{(f / small[name] if small[name] else 0):>8.2f}')
    lines.append('FLOPs reduction by operator: ' + ', '.join(
        f'{op} {n / flops[1].get(op, 0):.2f} ({n / 1e9:.2f} -> '
        f'{flops[1].get(op, 0) / 1e9:.2f} G)' if flops[1].get(op) else
        f'{op} {n / 1e9:.2f} -> 0 G'
        for op, n in sorted(flops[0].items(), key=lambda kv: -kv[1])))
    return '\n'.join(lines)


COLUMNS = (('model', '{}', 40), ('gflops', '{:.2f}', 7), ('ms', '{:.1f}', 8),
           ('peak_mib', '{:.0f}', 8), ('time_x_ref', '{:.3f}', 8),
           ('flops_x_ref', '{:.3f}', 8), ('time_per_flop_x_ref', '{:.3f}', 8),
           ('mem_x_ref', '{:.2f}', 7), ('speedup', '{:.3f}', 8),
           ('flops_reduction', '{:.3f}', 8), ('efficiency', '{:.3f}', 6))
HEADERS = dict(gflops='GFLOPs', ms='ms', peak_mib='peak MiB',
               time_x_ref='time x', flops_x_ref='FLOPs x',
               time_per_flop_x_ref='t/FLOP x', mem_x_ref='mem x',
               speedup='speed-up', flops_reduction='FLOPs ÷',
               efficiency='eff.')


def format_table(table: List[Dict[str, object]]) -> str:
    def cell(key: str, fmt: str, width: int, value: object) -> str:
        text = '-' if value is None else fmt.format(value)
        return text.ljust(width) if key == 'model' else text.rjust(width)

    lines = [' '.join(cell(k, '{}', w, HEADERS.get(k, k))
                      for k, _, w in COLUMNS)]
    lines.append('-' * len(lines[0]))
    for rec in table:
        lines.append(' '.join(
            cell(k, f, w, rec.get(k)) for k, f, w in COLUMNS))
    return '\n'.join(lines)


def efficiency_grid(rows: List[Row], table: List[Dict[str, object]]) -> str:
    """Markdown table of the efficiencies: keep rates down, scales across
    (what README.md shows)."""
    eff = {row.budget: rec.get('efficiency') for row, rec in zip(rows, table)
           if row.budget is not None}
    keeps = sorted({k for k, _ in eff}, reverse=True)
    scales = sorted({s for _, s in eff}, reverse=True)
    lines = ['| keep \\ scale | ' + ' | '.join(f'{s:g}' for s in scales)
             + ' |', '|---:|' + '---:|' * len(scales)]
    for k in keeps:
        cells = [f'{eff[(k, s)]:.2f}' if (k, s) in eff else '-'
                 for s in scales]
        lines.append(f'| {k:g} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> List[Dict[str, object]]:
    args = parse_args(argv)
    try:
        rows, family = build_rows(args)
    except BenchmarkError as e:
        sys.exit(f'benchmark.py: error: {e}')
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    for model in {id(r.model): r.model for r in rows}.values():
        model.to(device)
    x = torch.randn(1, 3, *args.size, device=device)
    measure(rows, x, args.rounds, args.warmup, not args.no_memory)
    table = summarise(rows)
    print(f'input 1x3x{args.size[0]}x{args.size[1]}, {device}, '
          f'{torch.get_num_threads()} threads, torch {torch.__version__}; '
          f'{args.warmup} warm-up + {args.rounds} interleaved rounds; '
          f'FLOPs: {FLOP_COUNTER}')
    print(f'reference (x columns): {rows[0].name}; ratios are medians of '
          'per-round ratios')
    print(format_table(table))
    if family == 'SuperViT':
        effs = [r['efficiency'] for r in table
                if r.get('flops_reduction', 1.0) != 1.0]
        if effs:
            print('efficiency = speed-up over keep 1 / scale 1 (backbone) / '
                  f'FLOPs reduction; min {min(effs):.3f} over the '
                  f'{len(effs)} reduced budgets')
            print(efficiency_grid(rows, table))
    for budget in args.profile or ():
        model = rows[-1].model
        print(profile_budgets(model, x, tuple(budget), args.rounds))
    if args.csv:
        with open(args.csv, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=[k for k, _, _ in COLUMNS]
                                    + ['kind'], extrasaction='ignore')
            writer.writeheader()
            writer.writerows(table)
    return table


if __name__ == '__main__':
    main()
