"""The end-to-end demo: classification pretraining -> dense fine-tuning.

On the synthetic demo data (generated if missing), for the three backbone
families (tiny SuperViT, PatchConvNet and AlterNet):

1. pretrain a classifier with mmpretrain on the object crops (4 classes,
   64x64) and publish its checkpoint (``state_dict`` with ``backbone.``
   keys, file name with the SHA-256 prefix, as OpenMMLab publishes models);
2. serve the published checkpoints over HTTP on 127.0.0.1 (a thread of this
   process) and fine-tune UperNet (mmseg) and Mask R-CNN (mmdet) from them
   through ``init_cfg=dict(type='Pretrained', checkpoint='http://...',
   prefix='backbone.')``: the normal download path (torch hub cache, then
   the backbone's checkpoint conversion), on the first ``--finetune-images``
   training images (10: dense labels are the scarce ones; the classifiers
   see the crops of all 200), once per seed (``--seg-seeds``, three by
   default: one 100-iteration run on 10 images swings by several mIoU from
   seed to seed, more than the initialisation moves it);
3. fine-tune the same configs from scratch (same seeds, same images, same
   iterations), so each seed gives a paired comparison;
4. evaluate every model (mmseg ``IoUMetric``, mmdet ``CocoMetric``), save
   prediction pictures (input | overlay), and sweep the compute budgets of
   the pretrained SuperViT UperNet with
   ``tools/analysis_tools/budget_sweep.py``;
5. print one table: family x task x {scratch, pretrained} -> mIoU / bbox AP
   / segm AP (mean over the seeds, and per seed), the paired difference,
   the time per job, then the sweep's table.

The jobs run in a pool of single-threaded worker processes (one per core by
default; on a small CPU one thread per process is much faster than threads
fighting over cores). Each worker imports the libraries once and runs jobs
in the order of :data:`JOB_GROUPS` as soon as their inputs exist. Job logs go
to ``<work-dir>/logs/<job>.log``; everything lands under ``--work-dir``.

Example::

    python tools/run_demo.py                  # about 4 minutes on 2 cores
    python tools/run_demo.py --seg-families supervit --det-families \\
        --seg-seeds 0 --pretrain-iters 20 --seg-iters 20   # a quick look
"""
import argparse
import functools
import hashlib
import importlib.util
import json
import multiprocessing
import os
import os.path as osp
import re
import sys
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Sequence, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(REPO, 'configs', 'demo')
SWEEP_TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'budget_sweep.py')

FAMILIES = ('supervit', 'patchconvnet', 'alternet')
FAMILY_NAMES = {'supervit': 'SuperViT', 'patchconvnet': 'PatchConvNet',
                'alternet': 'AlterNet'}
#: Classification (mmpretrain) demo configs, one per family.
CLS_CONFIGS = {
    f: osp.join(DEMO, f'{f}-tiny_1xb32-200i_demo-crops-64x64.py')
    for f in FAMILIES
}
#: Dense demo configs per task and family.
DENSE_CONFIGS = {
    'seg': {f: osp.join(DEMO, f'{f}-tiny_upernet_1xb4-300i_demo-128x128.py')
            for f in FAMILIES},
    'det': {f: osp.join(DEMO, f'mask-rcnn_{f}-tiny_fpn_300i_demo.py')
            for f in ('supervit', 'patchconvnet')},
}
TASK_NAMES = {'seg': 'UperNet', 'det': 'Mask R-CNN'}
#: (column, metric key, factor) of the summary, per task.
METRICS = {
    'seg': [('mIoU', 'mIoU', 1.0)],
    'det': [('bbox AP', 'coco/bbox_mAP', 100.0),
            ('segm AP', 'coco/segm_mAP', 100.0)],
}
#: Scheduling groups, in priority order: the pretraining jobs, then the
#: longest fine-tuning jobs first, the budget sweep last; within a group,
#: seed by seed, so that every family has a first pair early.
JOB_GROUPS = (
    [f'pretrain-{f}' for f in ('alternet', 'supervit', 'patchconvnet')] +
    ['seg-alternet'] + [f'det-{f}' for f in ('patchconvnet', 'supervit')] +
    [f'seg-{f}' for f in ('supervit', 'patchconvnet')] + ['sweep'])
_PROGRESS = re.compile(r'^PROGRESS (\S+) (\d+)/(\d+)', re.M)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default=osp.join('work_dirs', 'demo'))
    parser.add_argument('--data', default=osp.join('data', 'demo'),
                        help='demo data root (generated when missing)')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=40)
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the generated data')
    parser.add_argument('--seg-families', nargs='*', choices=FAMILIES,
                        default=list(FAMILIES),
                        help='families fine-tuned with UperNet')
    parser.add_argument('--det-families', nargs='*',
                        choices=sorted(DENSE_CONFIGS['det']),
                        default=sorted(DENSE_CONFIGS['det']),
                        help='families fine-tuned with Mask R-CNN')
    parser.add_argument('--pretrain-iters', type=int, default=100)
    parser.add_argument('--seg-iters', type=int, default=100)
    parser.add_argument('--det-iters', type=int, default=100)
    parser.add_argument('--finetune-images', type=int, default=10,
                        help='fine-tune on the first N training images '
                        '(0: all); pretraining uses the crops of all')
    parser.add_argument('--seg-seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='UperNet fine-tuning seeds (each init runs '
                        'once per seed; the table shows the mean)')
    parser.add_argument('--det-seeds', type=int, nargs='+', default=[0],
                        help='Mask R-CNN fine-tuning seeds')
    parser.add_argument('--finetune-lr', type=float, default=None,
                        help="fine-tuning lr (default: the configs' own)")
    parser.add_argument('--num-vis', type=int, default=2,
                        help='prediction pictures per dense job')
    parser.add_argument('--sweep-keep-rates', type=float, nargs='*',
                        default=[1.0, 0.7, 0.5],
                        help='budget sweep grid (nothing: no sweep)')
    parser.add_argument('--sweep-scales', type=float, nargs='+',
                        default=[1.0, 0.75, 0.5])
    parser.add_argument('--workers', type=int, default=2,
                        help='single-threaded worker processes')
    args = parser.parse_args(argv)
    if not args.seg_families and not args.det_families:
        parser.error('nothing to do: no --seg-families, no --det-families')
    for name in ('pretrain_iters', 'seg_iters', 'det_iters', 'workers'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    return args


# --------------------------------------------------------------------------
# jobs (run in the worker processes)
# --------------------------------------------------------------------------
def dense_job_name(task: str, family: str, init: str, seed: int) -> str:
    """``<task>-<family>-<init>-s<seed>``, e.g. ``seg-supervit-scratch-s0``."""
    return f'{task}-{family}-{init}-s{seed}'


def plan_jobs(args: argparse.Namespace) -> Dict[str, dict]:
    """Every job of this run: kind, config, iterations, seed and the jobs
    whose output it needs, keyed by name, in scheduling order
    (:data:`JOB_GROUPS`, then seed). The two initialisations of a family
    and task share each seed, so every seed gives a paired comparison."""
    jobs = {}
    for family in FAMILIES:
        if family not in args.seg_families + args.det_families:
            continue
        jobs[f'pretrain-{family}'] = dict(
            kind='pretrain', family=family, task='cls', group=f'pretrain-'
            f'{family}', config=CLS_CONFIGS[family],
            iters=args.pretrain_iters, needs=[])
    for task, families, iters, seeds in (
            ('seg', args.seg_families, args.seg_iters, args.seg_seeds),
            ('det', args.det_families, args.det_iters, args.det_seeds)):
        for family in families:
            for seed in seeds:
                for init in ('pretrained', 'scratch'):
                    jobs[dense_job_name(task, family, init, seed)] = dict(
                        kind='dense', family=family, task=task, init=init,
                        seed=seed, group=f'{task}-{family}',
                        pictures=seed == seeds[0],
                        config=DENSE_CONFIGS[task][family], iters=iters,
                        needs=[f'pretrain-{family}']
                        if init == 'pretrained' else [])
    if args.sweep_keep_rates and 'supervit' in args.seg_families:
        jobs['sweep'] = dict(
            kind='sweep', task='seg', family='supervit', group='sweep',
            config=DENSE_CONFIGS['seg']['supervit'],
            needs=[dense_job_name('seg', 'supervit', 'pretrained',
                                  args.seg_seeds[0])])
    group = {name: i for i, name in enumerate(JOB_GROUPS)}
    return dict(
        sorted(jobs.items(),
               key=lambda kv: (group[kv[1]['group']], kv[1].get('seed', 0))))


def _init_worker() -> None:
    """Pay the imports once per worker; one intra-op thread."""
    import torch
    torch.set_num_threads(1)
    import mmdet  # noqa: F401
    import mmpretrain  # noqa: F401
    import mmseg  # noqa: F401

    import mmsupervit  # noqa: F401


def run_job(name: str, job: dict, ctx: dict) -> dict:
    """Run one job in this (worker) process, its output in its log file.

    Args:
        name (str): Job name (also its work dir and log name).
        job (dict): An entry of :func:`plan_jobs`.
        ctx (dict): ``work_dir``, ``data``, ``url`` (of the checkpoint
            server), ``results`` (of the finished jobs this one needs),
            ``num_vis`` and the sweep grid.

    Returns:
        dict: The job's results (JSON-safe).
    """
    log_path = osp.join(ctx['work_dir'], 'logs', f'{name}.log')
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, 'w') as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            start, cpu = time.time(), time.process_time()
            runner = {'pretrain': _pretrain, 'dense': _finetune,
                      'sweep': _sweep}[job['kind']]
            results = runner(name, job, ctx)
            results['seconds'] = time.time() - start
            # this process's CPU time: the job's own cost on a busy machine
            results['cpu_seconds'] = time.process_time() - cpu
            return _plain(results)
        except BaseException:
            traceback.print_exc()
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _progress_hook(max_iters: int):
    """A hook that prints ``PROGRESS <phase> <i>/<n>`` for the driver."""
    from mmengine.hooks import Hook

    class ProgressHook(Hook):
        priority = 'VERY_LOW'

        def before_train(self, runner):
            print(f'PROGRESS train 0/{max_iters}', flush=True)

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            done = runner.iter + 1
            if done % 5 == 0 or done == max_iters:
                print(f'PROGRESS train {done}/{max_iters}', flush=True)

        def before_val_epoch(self, runner):
            print(f'PROGRESS evaluate {max_iters}/{max_iters}', flush=True)

    return ProgressHook()


def _train(name: str, job: dict, ctx: dict,
           extra: Optional[dict] = None) -> Tuple[object, dict, float]:
    """Build and train ``job['config']`` for ``job['iters']`` iterations on
    the demo data; returns the runner, the final validation metrics and the
    training time (with the evaluation)."""
    from mmsupervit.datasets.demo_data import demo_cfg_options
    from mmsupervit.utils import runner_utils as ru

    iters = job['iters']
    opts = demo_cfg_options(ctx['data'], job['task'])
    opts.update({
        'train_cfg.max_iters': iters,
        'train_cfg.val_interval': iters,
        'default_hooks.logger.interval': 10,
        'default_hooks.checkpoint.interval': iters,
        'default_hooks.checkpoint.max_keep_ckpts': 1,
        # unique names: the Runner keys its logger, message hub, default
        # scope and visualizer by them, and this process runs several
        # Runners (a shared visualizer would write into another job's dir)
        'experiment_name': f'demo_{name}',
        'visualizer.name': f'visualizer_{name}',
    })
    if job['kind'] == 'dense' and ctx.get('finetune_images'):
        # mmengine's BaseDataset keeps the first N samples
        opts['train_dataloader.dataset.indices'] = ctx['finetune_images']
    if job['kind'] == 'dense' and ctx.get('finetune_lr'):
        opts['optim_wrapper.optimizer.lr'] = ctx['finetune_lr']
    if 'seed' in job:
        opts['randomness.seed'] = job['seed']
    opts.update(extra or {})
    cfg = ru.load_config(job['config'], opts,
                         osp.join(ctx['work_dir'], name))
    rescale_schedule(cfg, iters)
    final: dict = {}

    from mmengine.hooks import Hook

    class Keep(Hook):
        priority = 'VERY_LOW'

        def after_val_epoch(self, runner, metrics=None):
            final.update(metrics or {})

    start = time.time()
    runner = ru.build_runner(cfg)
    runner.register_hook(_progress_hook(iters))
    runner.register_hook(Keep())
    runner.train()
    return runner, final, time.time() - start


def rescale_schedule(cfg, max_iters: int) -> None:
    """Fit the config's iteration-based schedule to ``max_iters``,
    keeping its shape (warm-up share, milestones)."""
    old = max(s.get('end', 0) for s in cfg.param_scheduler)
    for sched in cfg.param_scheduler:
        begin = round(sched.get('begin', 0) * max_iters / old)
        end = round(sched.get('end', old) * max_iters / old)
        sched['begin'], sched['end'] = begin, max(end, begin + 1)


def publish_checkpoint(src: str, out_dir: str, stem: str) -> str:
    """Write ``{'meta', 'state_dict'}`` of an mmengine checkpoint as
    ``<out_dir>/<stem>_<sha256[:8]>.pth`` (OpenMMLab's published form: no
    optimizer or message hub, the hash in the name, so a download cache
    never serves a stale file); returns its path."""
    import torch
    ckpt = torch.load(src, map_location='cpu', weights_only=True)
    os.makedirs(out_dir, exist_ok=True)
    tmp = osp.join(out_dir, f'.{stem}.tmp')
    torch.save({'meta': ckpt.get('meta', {}),
                'state_dict': ckpt['state_dict']}, tmp)
    with open(tmp, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:8]
    path = osp.join(out_dir, f'{stem}_{digest}.pth')
    os.replace(tmp, path)
    return path


def _pretrain(name: str, job: dict, ctx: dict) -> dict:
    runner, metrics, seconds = _train(name, job, ctx)
    ckpt = osp.join(runner.work_dir, f'iter_{job["iters"]}.pth')
    published = publish_checkpoint(
        ckpt, osp.join(ctx['work_dir'], 'checkpoints'),
        f'{job["family"]}-tiny_demo-crops-{job["iters"]}i')
    return dict(metrics=metrics, train_seconds=seconds, checkpoint=published)


def _finetune(name: str, job: dict, ctx: dict) -> dict:
    extra = {}
    init_url = None
    if job['init'] == 'pretrained':
        pretrained = ctx['results'][job['needs'][0]]['checkpoint']
        init_url = f'{ctx["url"]}/{osp.basename(pretrained)}'
        extra['model.backbone.init_cfg'] = dict(
            type='Pretrained', checkpoint=init_url, prefix='backbone.')
    runner, metrics, seconds = _train(name, job, ctx, extra)
    ckpt = osp.join(runner.work_dir, f'iter_{job["iters"]}.pth')
    print(f'PROGRESS visualise {job["iters"]}/{job["iters"]}', flush=True)
    from mmsupervit.utils.inference import save_predictions
    vis = []
    if job.get('pictures', True):  # the first seed's models only
        images = _val_images(ctx['data'], job['task'])[:ctx['num_vis']]
        vis = save_predictions(job['task'], runner.cfg, ckpt, images,
                               osp.join(runner.work_dir, 'vis'))
    return dict(metrics=metrics, train_seconds=seconds, checkpoint=ckpt,
                config=job['config'], init_url=init_url, visualisations=vis)


def _sweep(name: str, job: dict, ctx: dict) -> dict:
    from mmsupervit.datasets.demo_data import demo_cfg_options
    source = ctx['results'][job['needs'][0]]
    out_dir = osp.join(ctx['work_dir'], name)
    spec = importlib.util.spec_from_file_location('budget_sweep', SWEEP_TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    opts = [f'{k}={v}' for k, v in demo_cfg_options(ctx['data'],
                                                    'seg').items()]
    print('PROGRESS sweep 0/1', flush=True)
    rows = tool.main([
        source['config'], source['checkpoint'], '--keep-rates',
        *map(str, ctx['sweep_keep_rates']), '--scales',
        *map(str, ctx['sweep_scales']), '--runs', '5', '--warmup', '1',
        '--threads', '1', '--out-dir', out_dir, '--work-dir', out_dir,
        '--cfg-options', 'experiment_name=demo_sweep',
        'visualizer.name=visualizer_sweep', *opts
    ])
    with open(osp.join(out_dir, 'budget_sweep.md')) as f:
        table = f.read()
    return dict(rows=rows, table=table,
                png=osp.join(out_dir, 'budget_sweep.png'))


def _plain(obj):
    """JSON-safe copy (numpy scalars -> float)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, 'item'):
        return obj.item()
    return obj


def _val_images(data_root: str, task: str) -> List[str]:
    if task == 'seg':
        folder = osp.join(data_root, 'ade', 'images', 'validation')
    else:
        folder = osp.join(data_root, 'coco', 'val2017')
    return [osp.join(folder, f) for f in sorted(os.listdir(folder))]


# --------------------------------------------------------------------------
# checkpoint server
# --------------------------------------------------------------------------
class _QuietHandler(SimpleHTTPRequestHandler):
    """Static files, requests counted instead of logged to stderr."""

    def __init__(self, *args, requests: list, **kwargs) -> None:
        self._requests = requests
        super().__init__(*args, **kwargs)

    def log_message(self, fmt: str, *args) -> None:
        self._requests.append(fmt % args)


def serve_directory(folder: str) -> Tuple[ThreadingHTTPServer, list]:
    """Serve ``folder`` on ``127.0.0.1`` (a free port) from a daemon thread.

    Returns:
        tuple: The server (``server.server_address[1]`` is the port; call
        ``shutdown()`` and ``server_close()`` when done) and the list the
        handled requests are appended to (``"GET /name HTTP/1.1" 200 -``).
    """
    os.makedirs(folder, exist_ok=True)
    requests: list = []
    handler = functools.partial(_QuietHandler, directory=folder,
                                requests=requests)
    server = ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, requests


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------
def _fmt_time(seconds: float) -> str:
    return f'{int(seconds // 60)}:{int(seconds % 60):02d}'


def _job_state(log_path: str) -> str:
    try:
        with open(log_path, errors='replace') as f:
            found = _PROGRESS.findall(f.read())
    except OSError:
        return 'starting'
    if not found:
        return 'starting'
    phase, i, n = found[-1]
    return f'{phase} {i}/{n}' if phase == 'train' else phase


def run_jobs(jobs: Dict[str, dict], ctx: dict, workers: int) -> dict:
    """Run ``jobs`` on ``workers`` processes, each job once its inputs are
    done, in the order of ``jobs``; print progress; return the results."""
    results: Dict[str, dict] = {}
    loads: List[float] = []
    pending = list(jobs)
    running = {}
    start = time.time()
    tty = sys.stdout.isatty()
    last_line, last_print = '', 0.
    mp = multiprocessing.get_context('spawn')
    with ProcessPoolExecutor(workers, mp_context=mp,
                             initializer=_init_worker) as pool:
        while pending or running:
            for name in list(pending):
                if len(running) >= workers:
                    break
                if all(n in results for n in jobs[name]['needs']):
                    job_ctx = dict(ctx, results={
                        n: results[n] for n in jobs[name]['needs']})
                    running[pool.submit(run_job, name, jobs[name],
                                        job_ctx)] = name
                    pending.remove(name)
            done, _ = wait(list(running), timeout=2,
                           return_when=FIRST_COMPLETED)
            loads.append(os.getloadavg()[0])
            for future in done:
                name = running.pop(future)
                error = future.exception()
                if error is not None:
                    log = osp.join(ctx['work_dir'], 'logs', f'{name}.log')
                    with open(log, errors='replace') as f:
                        tail = f.read()[-3000:]
                    for other in running:
                        other.cancel()
                    raise SystemExit(f'\nthe {name} job failed ({error!r}); '
                                     f'end of {log}:\n{tail}')
                results[name] = future.result()
                line = (f'[{_fmt_time(time.time() - start)}] {name} done in '
                        f'{_fmt_time(results[name]["seconds"])}')
                print(('\r' + line.ljust(100)) if tty else line, flush=True)
            states = ' | '.join(
                f'{n}: ' + _job_state(
                    osp.join(ctx['work_dir'], 'logs', f'{n}.log'))
                for n in running.values())
            line = (f'[{_fmt_time(time.time() - start)}] {len(results)}/'
                    f'{len(jobs)} done | {states}')
            if tty:
                print('\r' + line[:100].ljust(100), end='', flush=True)
            elif (re.sub(r' \d+/\d+', '', line[8:]) != last_line
                  or time.time() - last_print >= 15):
                # in a log file: a line per phase change or 15 seconds
                print(line, flush=True)
                last_line = re.sub(r' \d+/\d+', '', line[8:])
                last_print = time.time()
    if tty:
        print()
    ctx['mean_load'] = sum(loads) / max(len(loads), 1)
    return results


#: The metric each task's comparison is made on (the first of METRICS).
METRIC_MAIN_LABELS = [METRICS[t][0][0] for t in ('seg', 'det')]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float('nan')


def group_results(results: dict, jobs: Dict[str, dict]) -> Dict[tuple, dict]:
    """The dense jobs' results by ``(task, family, init)``: ``seeds``,
    ``iters``, ``values`` (``{column: [one value per seed]}``, in the
    table's units), ``seconds`` and ``cpu_seconds`` per seed."""
    groups: Dict[tuple, dict] = {}
    for name, job in jobs.items():
        if job['kind'] != 'dense' or name not in results:
            continue
        res = results[name]
        key = (job['task'], job['family'], job['init'])
        g = groups.setdefault(key, dict(seeds=[], iters=job['iters'],
                                        values={}, seconds=[],
                                        cpu_seconds=[]))
        g['seeds'].append(job['seed'])
        g['seconds'].append(res['seconds'])
        g['cpu_seconds'].append(res['cpu_seconds'])
        for label, metric, factor in METRICS[job['task']]:
            g['values'].setdefault(label, []).append(
                res['metrics'].get(metric, float('nan')) * factor)
    return groups


def paired_difference(groups: Dict[tuple, dict], task: str,
                      family: str) -> Optional[List[float]]:
    """Pretrained minus scratch on the task's main metric, seed by seed
    (the seeds both initialisations ran); None without a pair."""
    pre, scr = (groups.get((task, family, i))
                for i in ('pretrained', 'scratch'))
    if pre is None or scr is None:
        return None
    label = METRICS[task][0][0]
    by_seed = dict(zip(scr['seeds'], scr['values'][label]))
    return [v - by_seed[s] for s, v in zip(pre['seeds'], pre['values'][label])
            if s in by_seed]


def summary(results: dict, jobs: Dict[str, dict], wall: float,
            url: str, downloads: int, mean_load: float) -> str:
    """The demo's table (and where its outputs are)."""
    width = 100
    rows = ['', 'mmsupervit demo: classification pretraining (mmpretrain) '
            '-> dense fine-tuning', '=' * width]
    pre = [n for n in jobs if jobs[n]['kind'] == 'pretrain']
    if pre:
        rows.append(f'{"pretraining (object crops)":<28}{"iters":>7}'
                    f'{"top-1":>8}{"time":>8}{"cpu":>7}   checkpoint')
        for n in pre:
            res = results[n]
            rows.append(
                f'{FAMILY_NAMES[jobs[n]["family"]]:<28}'
                f'{jobs[n]["iters"]:>7}'
                f'{res["metrics"].get("accuracy/top1", float("nan")):>8.1f}'
                f'{_fmt_time(res["seconds"]):>8}'
                f'{_fmt_time(res["cpu_seconds"]):>7}   '
                f'{osp.basename(res["checkpoint"])}')
        rows.append('-' * width)
    rows.append(f'{"family":<14}{"task":<12}{"init":<12}{"iters":>6}'
                f'{"seeds":>6}{"mIoU":>8}{"bbox AP":>9}{"segm AP":>9}'
                f'{"time":>7}{"cpu":>7}   per seed '
                f'({"/".join(METRIC_MAIN_LABELS)})')
    groups = group_results(results, jobs)
    columns = (('mIoU', 8), ('bbox AP', 9), ('segm AP', 9))
    for task in ('seg', 'det'):
        label = METRICS[task][0][0]  # the metric of the comparison
        for family in FAMILIES:
            if (task, family, 'scratch') not in groups:
                continue
            for init in ('scratch', 'pretrained'):
                g = groups[(task, family, init)]
                cells = ''.join(
                    f'{_mean(g["values"][c]):>{w}.1f}' if c in g['values']
                    else f'{"-":>{w}}' for c, w in columns)
                rows.append(f'{FAMILY_NAMES[family]:<14}'
                            f'{TASK_NAMES[task]:<12}{init:<12}'
                            f'{g["iters"]:>6}{len(g["seeds"]):>6}{cells}'
                            f'{_fmt_time(_mean(g["seconds"])):>7}'
                            f'{_fmt_time(_mean(g["cpu_seconds"])):>7}   '
                            + ' '.join(f'{v:.1f}' for v in g['values'][label]))
            diff = paired_difference(groups, task, family)
            if diff is not None:
                # the same columns as the rows above, the mean under `label`
                cells = ''.join(f'{_mean(diff):>+{w}.1f}' if c == label
                                else ' ' * w for c, w in columns)
                rows.append(
                    f'{"":<26}{"difference":<24}{cells}{"":14}   '
                    + ' '.join(f'{v:+.1f}' for v in diff) +
                    f'  (pretrained ahead in {sum(v > 0 for v in diff)}/'
                    f'{len(diff)})')
    rows.append('-' * width)
    rows.append('mIoU / AP: mean over the seeds (the same seeds for both '
                'initialisations); per seed: the first metric of each seed; '
                'difference: pretrained - scratch, seed by seed')
    rows.append('time: wall time of one job (build, training, evaluation on '
                'the validation images, pictures), mean over the seeds; '
                'cpu: its CPU time (one thread)')
    rows.append(f'pretrained checkpoints served at {url}/: {downloads} '
                'downloaded through init_cfg (once each; later jobs read '
                'the torch hub cache)')
    for n, res in results.items():
        if res.get('visualisations'):
            rows.append(f'pictures of {n}: '
                        f'{osp.dirname(res["visualisations"][0])}/')
    if 'sweep' in results:
        rows += ['', results['sweep']['table'].rstrip(),
                 f'plot: {results["sweep"]["png"]}']
    rows.append(f'total wall time {_fmt_time(wall)} ({os.cpu_count()} CPUs, '
                f'mean load average {mean_load:.1f} during the jobs)')
    return '\n'.join(rows)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    start = time.time()
    from mmsupervit.datasets.demo_data import (demo_data_exists,
                                               generate_demo_data)
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(osp.join(work_dir, 'logs'), exist_ok=True)
    if not demo_data_exists(args.data):
        print(f'generating demo data in {args.data} ...', flush=True)
        generate_demo_data(args.data, args.num_train, args.num_val,
                           args.seed)
    # the workers download into this run's own torch hub cache and run one
    # thread each (set before they are spawned)
    os.environ['TORCH_HOME'] = osp.join(work_dir, 'torch_home')
    os.environ['OMP_NUM_THREADS'] = '1'
    os.environ['MKL_NUM_THREADS'] = '1'
    server, requests = serve_directory(osp.join(work_dir, 'checkpoints'))
    url = f'http://127.0.0.1:{server.server_address[1]}'
    jobs = plan_jobs(args)
    print(f'{len(jobs)} jobs on {args.workers} single-threaded workers; '
          f'checkpoints served at {url}/; logs in {work_dir}/logs/',
          flush=True)
    ctx = dict(work_dir=work_dir, data=osp.abspath(args.data), url=url,
               num_vis=args.num_vis, finetune_images=args.finetune_images,
               finetune_lr=args.finetune_lr,
               sweep_keep_rates=args.sweep_keep_rates,
               sweep_scales=args.sweep_scales)
    try:
        results = run_jobs(jobs, ctx, args.workers)
    finally:
        server.shutdown()
        server.server_close()
    downloads = sum(' 200 ' in r and r.startswith('"GET ')
                    for r in requests)
    wall = time.time() - start
    text = summary(results, jobs, wall, url, downloads, ctx['mean_load'])
    print(text)
    with open(osp.join(work_dir, 'summary.txt'), 'w') as f:
        f.write(text + '\n')
    out = dict(jobs=jobs, results=results, wall_seconds=wall,
               mean_load=ctx['mean_load'], server_requests=requests)
    with open(osp.join(work_dir, 'summary.json'), 'w') as f:
        json.dump(_plain(out), f, indent=1)
    return out


if __name__ == '__main__':
    main()
