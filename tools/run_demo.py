"""The end-to-end demo: data -> untrained baseline -> training -> evaluation.

Runs both demo configs on the synthetic data (generated if missing):

* SuperViT-tiny + ColumnPyramidNeck + UperNet (mmseg, ADE20K layout)
* SuperViT-tiny + ColumnPyramidNeck + FPN + Mask R-CNN (mmdet, COCO)

For each: evaluate the freshly initialised model (baseline), train, evaluate
again, save a few prediction images (input | overlay). Both jobs run at the
same time as separate single-threaded processes (one per core), which on a
shared or small CPU is much faster than two threads each. Prints progress
and a summary; everything lands under ``--work-dir``.

Example::

    python tools/run_demo.py                      # ~5 minutes on 2 cores
    python tools/run_demo.py --work-dir work_dirs/demo --data data/demo
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

JOBS = {
    'seg': osp.join(REPO, 'configs', 'demo',
                    'supervit-tiny_upernet_1xb4-300i_demo-128x128.py'),
    'det': osp.join(REPO, 'configs', 'demo',
                    'mask-rcnn_supervit-tiny_fpn_300i_demo.py'),
}
METRICS = {
    'seg': [('mIoU', 'mIoU', 1.0), ('aAcc', 'aAcc', 1.0)],
    'det': [('bbox AP', 'coco/bbox_mAP', 100.0),
            ('segm AP', 'coco/segm_mAP', 100.0),
            ('segm AP50', 'coco/segm_mAP_50', 100.0)],
}
_PROGRESS = re.compile(r'^PROGRESS (\w+) (\S+) (\d+)/(\d+)', re.M)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default=osp.join('work_dirs', 'demo'))
    parser.add_argument('--data', default=osp.join('data', 'demo'),
                        help='demo data root (generated when missing)')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=40)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--tasks', nargs='+', choices=sorted(JOBS),
                        default=['seg', 'det'])
    parser.add_argument('--iters', type=int, default=None,
                        help='override the training iterations of both jobs')
    parser.add_argument('--num-vis', type=int, default=4,
                        help='prediction images to save per job')
    parser.add_argument('--sequential', action='store_true',
                        help='run the jobs one after the other, each with '
                        'all threads (default: in parallel, 1 thread each)')
    # internal: one job in this process
    parser.add_argument('--worker', choices=sorted(JOBS), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --------------------------------------------------------------------------
# worker (one job, in its own process)
# --------------------------------------------------------------------------
def run_worker(task: str, args) -> None:
    import mmsupervit  # noqa: F401
    from mmengine.hooks import Hook

    from mmsupervit.utils import runner_utils as ru
    from mmsupervit.datasets.demo_data import demo_cfg_options

    work_dir = osp.abspath(osp.join(args.work_dir, task))
    opts = demo_cfg_options(args.data, task)
    opts['default_hooks.logger.interval'] = 10
    if args.iters:
        opts['train_cfg.max_iters'] = args.iters
        opts['train_cfg.val_interval'] = args.iters
    cfg = ru.load_config(JOBS[task], opts, work_dir)
    max_iters = cfg.train_cfg.max_iters
    if args.iters:
        # keep the schedule's shape: scale its milestones to the new length
        _rescale_schedule(cfg, max_iters)
    results = {}

    class DemoHook(Hook):
        """Baseline evaluation before training; progress; final metrics."""
        priority = 'VERY_LOW'

        def before_train(self, runner):
            self._say(runner, 'baseline', 0)
            results['baseline'] = runner.val_loop.run()
            self._say(runner, 'train', 0)

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            done = runner.iter + 1  # runner.iter counts from 0 here
            if done % 5 == 0 or done == max_iters:
                self._say(runner, 'train', done)

        def after_val_epoch(self, runner, metrics=None):
            if 'baseline' in results:
                results['trained'] = dict(metrics or {})

        @staticmethod
        def _say(runner, phase, it):
            print(f'PROGRESS {task} {phase} {it}/{max_iters}', flush=True)

    start = time.time()
    runner = ru.build_runner(cfg)
    runner.register_hook(DemoHook(), priority='VERY_LOW')
    runner.train()
    results['train_seconds'] = time.time() - start
    ckpt = osp.join(work_dir, f'iter_{max_iters}.pth')
    results['checkpoint'] = ckpt
    print(f'PROGRESS {task} visualise {max_iters}/{max_iters}', flush=True)
    from mmsupervit.utils.inference import save_predictions
    val_imgs = _val_images(args.data, task)[:args.num_vis]
    results['visualisations'] = save_predictions(
        task, runner.cfg, ckpt, val_imgs, osp.join(work_dir, 'vis'))
    results['seconds'] = time.time() - start
    with open(osp.join(work_dir, 'demo_results.json'), 'w') as f:
        json.dump(_plain(results), f, indent=1)


def _rescale_schedule(cfg, max_iters: int) -> None:
    old = max(s.get('end', 0) for s in cfg.param_scheduler)
    for sched in cfg.param_scheduler:
        begin = round(sched.get('begin', 0) * max_iters / old)
        end = round(sched.get('end', old) * max_iters / old)
        sched['begin'], sched['end'] = begin, max(end, begin + 1)


def _plain(obj):
    """JSON-safe copy (numpy scalars -> float)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, 'item'):
        return obj.item()
    return obj


def _val_images(data_root: str, task: str):
    if task == 'seg':
        folder = osp.join(data_root, 'ade', 'images', 'validation')
    else:
        folder = osp.join(data_root, 'coco', 'val2017')
    return [osp.join(folder, f) for f in sorted(os.listdir(folder))]


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------
def _fmt_time(seconds: float) -> str:
    return f'{int(seconds // 60)}:{int(seconds % 60):02d}'


def _status(log_paths) -> str:
    parts = []
    for task, path in log_paths.items():
        state = 'starting'
        try:
            with open(path, errors='replace') as f:
                found = _PROGRESS.findall(f.read())
            if found:
                _, phase, it, total = found[-1]
                state = (f'{phase} {it}/{total}'
                         if phase == 'train' else phase)
        except OSError:
            pass
        parts.append(f'{task}: {state}')
    return ' | '.join(parts)


def _phases(status: str) -> str:
    return re.sub(r' \d+/\d+', '', status)


def _run_jobs(args, argv) -> dict:
    env = dict(os.environ)
    if not args.sequential:
        # one core per job; OpenMP threads fighting over cores are far
        # slower than one thread per process
        env.setdefault('OMP_NUM_THREADS', '1')
        env.setdefault('MKL_NUM_THREADS', '1')
    base = [sys.executable, osp.abspath(__file__)] + list(argv)
    logs = {t: osp.join(args.work_dir, f'{t}.log') for t in args.tasks}
    batches = [[t] for t in args.tasks] if args.sequential else [args.tasks]
    start = time.time()
    tty = sys.stdout.isatty()
    for batch in batches:
        procs = {}
        for task in batch:
            os.makedirs(osp.join(args.work_dir, task), exist_ok=True)
            log = open(logs[task], 'w')
            procs[task] = (subprocess.Popen(
                base + ['--worker', task], stdout=log,
                stderr=subprocess.STDOUT, env=env, cwd=os.getcwd()), log)
        last, last_time = '', 0.
        while any(p.poll() is None for p, _ in procs.values()):
            time.sleep(2)
            status = _status({t: logs[t] for t in batch})
            line = f'[{_fmt_time(time.time() - start)}] {status}'
            if tty:
                print('\r' + line.ljust(80), end='', flush=True)
            elif (_phases(status) != _phases(last)
                  or time.time() - last_time >= 15):
                # in a log file: a line per phase change or 15 seconds
                print(line, flush=True)
                last, last_time = status, time.time()
        if tty:
            print()
        for task, (proc, log) in procs.items():
            log.close()
            if proc.returncode != 0:
                with open(logs[task], errors='replace') as f:
                    tail = f.read()[-3000:]
                raise SystemExit(f'the {task} job failed (exit code '
                                 f'{proc.returncode}); end of {logs[task]}:'
                                 f'\n{tail}')
    results = {}
    for task in args.tasks:
        with open(osp.join(args.work_dir, task, 'demo_results.json')) as f:
            results[task] = json.load(f)
    results['wall_seconds'] = time.time() - start
    return results


def _summary(results: dict, tasks) -> str:
    rows = ['', 'mmsupervit demo (synthetic data; models trained from '
            'scratch)', '-' * 64,
            f'{"job":<34}{"metric":<10}{"untrained":>10}{"trained":>10}']
    names = {'seg': 'SuperViT-tiny UperNet (mmseg)',
             'det': 'SuperViT-tiny Mask R-CNN (mmdet)'}
    for task in tasks:
        res = results[task]
        for label, key, scale in METRICS[task]:
            before = res.get('baseline', {}).get(key, float('nan')) * scale
            after = res.get('trained', {}).get(key, float('nan')) * scale
            rows.append(f'{names[task]:<34}{label:<10}{before:>10.1f}'
                        f'{after:>10.1f}')
            names[task] = ''
    rows.append('-' * 64)
    for task in tasks:
        res = results[task]
        rows.append(f'{task}: {_fmt_time(res["seconds"])} (train+eval '
                    f'{_fmt_time(res["train_seconds"])}), checkpoint '
                    f'{res["checkpoint"]}')
        for path in res.get('visualisations', []):
            rows.append(f'  {path}')
    rows.append(f'total wall time {_fmt_time(results["wall_seconds"])}')
    return '\n'.join(rows)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        return run_worker(args.worker, args)
    from mmsupervit.datasets.demo_data import (demo_data_exists,
                                               generate_demo_data)
    os.makedirs(args.work_dir, exist_ok=True)
    if not demo_data_exists(args.data):
        print(f'generating demo data in {args.data} ...', flush=True)
        generate_demo_data(args.data, args.num_train, args.num_val,
                           args.seed)
    print(f'running {", ".join(args.tasks)} '
          f'({"one after the other" if args.sequential else "in parallel"})'
          f'; logs in {args.work_dir}/<job>.log', flush=True)
    results = _run_jobs(args, argv)
    text = _summary(results, args.tasks)
    print(text)
    with open(osp.join(args.work_dir, 'summary.txt'), 'w') as f:
        f.write(text + '\n')
    with open(osp.join(args.work_dir, 'summary.json'), 'w') as f:
        json.dump(results, f, indent=1)
    return results


if __name__ == '__main__':
    main()
