"""Train a segmentor (mmseg config) or detector (mmdet config).

Examples::

    python tools/train.py configs/demo/supervit-tiny_upernet_1xb4-300i_demo-128x128.py
    python tools/train.py CONFIG --resume                  # latest checkpoint
    python tools/train.py CONFIG --resume work_dirs/x/iter_100.pth
    GPUS=2 bash tools/dist_train.sh CONFIG                 # also on CPU (gloo)
"""
import argparse
import os.path as osp
import sys

# importing the package registers our models and applies the compat fixes
# (needed to resume under torch's weights_only loader)
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import mmsupervit  # noqa: E402,F401
from mmsupervit.utils import runner_utils as ru  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from a checkpoint; without a path, from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--amp', action='store_true',
        help='automatic mixed precision (needs a CUDA GPU)')
    ru.add_common_args(parser)
    args = parser.parse_args(argv)
    ru.set_local_rank_env(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = ru.load_config(args.config, args.cfg_options, args.work_dir,
                         args.launcher)
    ru.apply_amp(cfg, args.amp)
    # random states in every checkpoint, atomic checkpoint files: any
    # checkpoint of this run resumes exactly
    ru.make_checkpoints_resumable(cfg)
    ru.apply_resume(cfg, args.resume)
    runner = ru.build_runner(cfg)
    runner.train()


if __name__ == '__main__':
    main()
