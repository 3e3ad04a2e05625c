# Mask R-CNN on SuperViT lvvit-s trained for every compute budget at once (see
# ../_base_/models/supervit_budget.py); everything else is the single-budget
# config.
_base_ = [
    './mask-rcnn_supervit-lvvit-s_fpn_1x_coco.py',
    '../_base_/models/supervit_budget.py'
]
model = _base_.mask_rcnn_budget
