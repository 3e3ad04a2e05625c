"""Train a segmentor (mmseg config), detector (mmdet config) or image
classifier (mmpretrain config, ``configs/*/*_in1k.py``).

Examples::

    python tools/train.py configs/demo/supervit-tiny_upernet_1xb4-300i_demo-128x128.py
    bash tools/dist_train.sh configs/alternet/alternet-50_8xb128_in1k.py 8
    python tools/train.py CONFIG --resume                  # latest checkpoint
    python tools/train.py CONFIG --resume work_dirs/x/iter_100.pth
    bash tools/dist_train.sh CONFIG 2                      # also on CPU (gloo)
"""
import argparse

# importing the package registers our models and applies the compat fixes
# (needed to resume under torch's weights_only loader)
import mmsupervit  # noqa: F401
from mmsupervit.utils import runner_utils as ru


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
    # Fine-tuning (load_from without resume) may re-initialise a classifier
    # for another class count: a small part of any of our models.
    ru.add_checkpoint_check(cfg, 1.0 if cfg.get('resume', False) else 0.9)
    runner = ru.build_runner(cfg)
    runner.train()
    ru.close_distributed()


if __name__ == '__main__':
    main()
