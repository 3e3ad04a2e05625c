# Mask R-CNN on SuperViT lvvit-s trained for every compute budget at once:
# four sub-networks per iteration (input scale 1 and a sampled smaller scale,
# each at keep 1 with the task loss and at a sampled keep rate whose FPN maps
# are distilled towards it), one optimizer step; see
# mmsupervit/models/budget.py. Everything else is the single-budget config.
_base_ = ['./mask-rcnn_supervit-lvvit-s_fpn_1x_coco.py']

model = dict(
    type='mmsupervit.BudgetMaskRCNN',
    # the official SuperViT sets and weights (lmbxmu/SuperViT deit/engine.py)
    budget_cfg=dict(
        keep_rates=(0.5, 0.7),
        input_scales=(128 / 224, 160 / 224, 192 / 224),
        task_loss_weight=1.0,
        kd_loss_weight=1.0))
