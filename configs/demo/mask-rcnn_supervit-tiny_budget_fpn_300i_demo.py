# Demo: the SuperViT-tiny Mask R-CNN demo trained for every compute budget at
# once (four sub-networks per iteration, one optimizer step; see
# mmsupervit/models/budget.py). Same data, schedule and seed as the
# single-budget demo.
_base_ = ['./mask-rcnn_supervit-tiny_fpn_300i_demo.py']

model = dict(
    # Budget training also trains the 128/160/192 px position tables; at an
    # input scale that is not a trained size (0.5, 0.75 in a sweep) the
    # backbone then uses the 128 px one, whose 8x8 grid is the closest to
    # theirs. (At scale 1 the 224 px table is used whatever this says.)
    backbone=dict(pos_embed_size=128),
    type='mmsupervit.BudgetMaskRCNN',
    budget_cfg=dict(
        keep_rates=(0.5, 0.7),
        input_scales=(128 / 224, 160 / 224, 192 / 224),
        task_loss_weight=1.0,
        kd_loss_weight=1.0))
