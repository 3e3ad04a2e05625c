"""Run a trained model on images and save input | prediction pictures.

Works with any of our configs (mmseg or mmdet; the task is read from the
config's ``default_scope``), e.g. after ``tools/run_demo.py``::

    python tools/inference_demo.py data/demo/ade/images/validation/ADE_val_00000001.jpg \
        configs/demo/supervit-tiny_upernet_1xb4-300i_demo-128x128.py \
        work_dirs/demo/seg/iter_300.pth --out-dir work_dirs/demo/inference
"""
import argparse

from mmsupervit.utils.inference import save_predictions


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument("images", nargs="+", help="image file(s)")
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out-dir', default='outputs',
                        help='where <image name>.png pictures are written')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detection score threshold')
    args = parser.parse_args(argv)
    for path in save_predictions(None, args.config, args.checkpoint,
                                 args.images, args.out_dir, args.device,
                                 args.score_thr):
        print(path)


if __name__ == '__main__':
    main()
