# Demo: the SuperViT-tiny Mask R-CNN demo trained for every compute budget at
# once (four sub-networks per iteration, one optimizer step; see
# mmsupervit/models/budget.py). Same data, schedule and seed as the
# single-budget demo.
_base_ = ['./mask-rcnn_supervit-tiny_fpn_300i_demo.py']

model = dict(
    type='mmsupervit.BudgetMaskRCNN',
    budget_cfg=dict(
        keep_rates=(0.5, 0.7),
        input_scales=(128 / 224, 160 / 224, 192 / 224),
        task_loss_weight=1.0,
        kd_loss_weight=1.0))
