"""Helpers of the tool tests: run the tools in subprocesses (single-threaded,
so they stay fast on a busy CPU) on a short schedule."""
import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SEG_CFG = osp.join(REPO, 'configs', 'demo',
                   'supervit-tiny_upernet_1xb4-300i_demo-128x128.py')
DET_CFG = osp.join(REPO, 'configs', 'demo',
                   'mask-rcnn_patchconvnet-tiny_fpn_300i_demo.py')


def tool_env():
    env = dict(os.environ)
    env['OMP_NUM_THREADS'] = '1'
    env['MKL_NUM_THREADS'] = '1'
    env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
    return env


def cfg_options(data_root, task, max_iters, ckpt_interval, **extra):
    """``--cfg-options`` arguments for a short demo run."""
    from mmsupervit.datasets.demo_data import demo_cfg_options
    opts = demo_cfg_options(data_root, task)
    opts.update({
        'train_cfg.max_iters': max_iters,
        'train_cfg.val_interval': 1000,
        'default_hooks.checkpoint.interval': ckpt_interval,
        'default_hooks.logger.interval': 1,
        'train_dataloader.batch_size': 2,
    })
    opts.update(extra)
    return ['--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]


def run_tool(args, timeout=240, **kwargs):
    """Run ``python <args>`` from the repository; returns CompletedProcess."""
    return subprocess.run([sys.executable] + list(args), cwd=REPO,
                          env=tool_env(), capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def load_tool(path):
    """Import a script under ``tools/`` as a module (they are not a
    package), under a name of its own."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        '_tool_' + osp.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
