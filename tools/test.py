"""Evaluate a checkpoint (mmseg, mmdet or mmpretrain config) and optionally
draw results (mmseg, mmdet).

Examples::

    python tools/test.py CONFIG CHECKPOINT
    python tools/test.py CONFIG CHECKPOINT --show-dir vis --tta
    bash tools/dist_test.sh CONFIG CHECKPOINT 2
"""
import argparse

import mmsupervit  # noqa: F401
from mmsupervit.utils import runner_utils as ru


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory to save painted predictions (mmseg: under '
        '<dir>/vis_data/vis_image; mmdet: relative paths go below '
        '<work_dir>/<timestamp>)')
    parser.add_argument(
        '--wait-time', type=float, default=2,
        help='seconds each image is shown with --show')
    parser.add_argument(
        '--tta', action='store_true', help='test-time augmentation')
    ru.add_common_args(parser)
    args = parser.parse_args(argv)
    ru.set_local_rank_env(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = ru.load_config(args.config, args.cfg_options, args.work_dir,
                         args.launcher)
    cfg.load_from = args.checkpoint
    ru.add_checkpoint_check(cfg)
    ru.apply_show(cfg, args.show_dir, args.show, args.wait_time)
    if args.tta:
        ru.apply_tta(cfg)
    runner = ru.build_runner(cfg)
    metrics = runner.test()
    ru.close_distributed()
    return metrics


if __name__ == '__main__':
    main()
