"""Inference helpers on top of mmseg's ``MMSegInferencer`` and mmdet's
``DetInferencer``: pick the right one from the config and save side-by-side
pictures (input | predictions drawn over it)."""
import os
import os.path as osp
from typing import List, Optional, Sequence, Union

import mmcv
import numpy as np
from mmengine.config import Config

import mmsupervit  # noqa: F401  (registers our models for the inferencers)


def task_of_config(config: Union[str, Config]) -> str:
    """``'seg'`` for mmseg configs, ``'det'`` for mmdet configs."""
    from mmsupervit.utils.runner_utils import task_of
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    return task_of(cfg)


def build_inferencer(config: Union[str, Config],
                     checkpoint: Optional[str] = None,
                     device: str = 'cpu'):
    """The mmseg or mmdet inferencer for ``config`` with ``checkpoint``.

    Args:
        config (str | Config): A config path or object (one of ours or any
            mmseg/mmdet config).
        checkpoint (str, optional): Weights. Defaults to None (random init).
        device (str): Defaults to ``'cpu'``.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if task_of_config(cfg) == 'seg':
        from mmseg.apis import MMSegInferencer
        return MMSegInferencer(model=cfg, weights=checkpoint, device=device)
    from mmdet.apis import DetInferencer
    return DetInferencer(
        model=cfg, weights=checkpoint, device=device, show_progress=False)


def predict_and_draw(inferencer, image: str,
                     score_thr: float = 0.3) -> np.ndarray:
    """Run ``inferencer`` on one image; return input | drawing (RGB)."""
    from mmseg.apis import MMSegInferencer
    if isinstance(inferencer, MMSegInferencer):
        out = inferencer(image, return_vis=True, show=False)
    else:
        out = inferencer(
            image,
            return_vis=True,
            no_save_vis=True,
            pred_score_thr=score_thr)
    vis = out['visualization']
    # a list per image (mmdet) or, for a single image, the array (mmseg)
    vis = np.asarray(vis[0] if isinstance(vis, (list, tuple)) else vis)
    if vis.ndim == 4:
        vis = vis[0]
    img = mmcv.imread(image, channel_order='rgb')
    if img.shape[:2] != vis.shape[:2]:
        img = mmcv.imresize(img, (vis.shape[1], vis.shape[0]))
    gap = np.full((img.shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([img, gap, vis.astype(np.uint8)], axis=1)


def save_predictions(task_or_none: Optional[str],
                     config: Union[str, Config],
                     checkpoint: Optional[str],
                     images: Sequence[str],
                     out_dir: str,
                     device: str = 'cpu',
                     score_thr: float = 0.3,
                     scale: int = 2) -> List[str]:
    """Save ``<out_dir>/<image name>.png`` (input | predictions) per image.

    Args:
        task_or_none (str, optional): Unused beyond a consistency check;
            the task is read from the config.
        config (str | Config): Config.
        checkpoint (str, optional): Weights.
        images (Sequence[str]): Image paths.
        out_dir (str): Output folder.
        device (str): Defaults to ``'cpu'``.
        score_thr (float): Detection score threshold. Defaults to 0.3.
        scale (int): Enlarge the (small) pictures by this factor.
            Defaults to 2.

    Returns:
        list[str]: The written files.
    """
    if task_or_none is not None and task_or_none != task_of_config(config):
        raise ValueError(f'config is not a {task_or_none} config')
    inferencer = build_inferencer(config, checkpoint, device)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for image in images:
        pic = predict_and_draw(inferencer, image, score_thr)
        if scale != 1:
            pic = mmcv.imrescale(pic, scale, interpolation='nearest')
        name = osp.splitext(osp.basename(image))[0] + '.png'
        path = osp.join(out_dir, name)
        mmcv.imwrite(pic[..., ::-1], path)  # RGB -> BGR for OpenCV
        written.append(path)
    return written
