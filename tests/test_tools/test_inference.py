"""Inference with mmseg's/mmdet's inferencers on our demo configs, and
tools/inference_demo.py writing the pictures."""
import os.path as osp

import mmcv
import numpy as np
import pytest

from _tool_helpers import DET_CFG, REPO, SEG_CFG, cfg_options, run_tool

TRAIN = osp.join(REPO, 'tools', 'train.py')


def _train(cfg, task, demo_data, work_dir, iters=2):
    proc = run_tool([TRAIN, cfg, '--work-dir', work_dir] +
                    cfg_options(demo_data, task, iters, iters))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return osp.join(work_dir, f'iter_{iters}.pth')


@pytest.mark.slow
def test_seg_inferencer_and_inference_demo(demo_data, tmp_path):
    ckpt = _train(SEG_CFG, 'seg', demo_data, str(tmp_path / 'seg'))
    from mmsupervit.utils.inference import build_inferencer
    img = osp.join(demo_data, 'ade', 'images', 'validation',
                   'ADE_val_00000001.jpg')
    inferencer = build_inferencer(SEG_CFG, ckpt)
    # the classes come from the checkpoint's dataset meta
    assert inferencer.model.dataset_meta['classes'][1] == 'circle'
    out = inferencer(img, return_vis=True)
    assert out['predictions'].shape == (128, 128)
    vis = out['visualization']  # one image: the array itself
    assert np.asarray(vis).squeeze().shape == (128, 128, 3)

    out_dir = str(tmp_path / 'vis')
    proc = run_tool([
        osp.join(REPO, 'tools', 'inference_demo.py'), img, SEG_CFG, ckpt,
        '--out-dir', out_dir
    ])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    pic = mmcv.imread(osp.join(out_dir, 'ADE_val_00000001.png'))
    # input | gap | overlay, enlarged twice
    assert pic.shape == (256, 2 * (2 * 128 + 4), 3)


@pytest.mark.slow
def test_det_inferencer_pictures(demo_data, tmp_path):
    ckpt = _train(DET_CFG, 'det', demo_data, str(tmp_path / 'det'))
    from mmsupervit.utils.inference import (build_inferencer,
                                            save_predictions)
    img = osp.join(demo_data, 'coco', 'val2017', '000000000001.jpg')
    inferencer = build_inferencer(DET_CFG, ckpt)
    assert inferencer.model.dataset_meta['classes'][0] == 'circle'
    out = inferencer(img, return_vis=True, no_save_vis=True)
    pred = out['predictions'][0]
    assert {'bboxes', 'labels', 'scores', 'masks'} <= set(pred)
    written = save_predictions('det', DET_CFG, ckpt, [img],
                               str(tmp_path / 'vis'), scale=1)
    assert written == [str(tmp_path / 'vis' / '000000000001.png')]
    assert mmcv.imread(written[0]).shape == (128, 2 * 128 + 4, 3)
