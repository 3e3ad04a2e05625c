# Mask R-CNN with FPN: mmdet's _base_/models/mask-rcnn_r50_fpn.py (no norm in
# FPN and heads). FPN's `in_channels='auto'` is read from the backbone's
# output_shape() (through the pyramid neck of a column backbone) by
# mmsupervit.MaskRCNN; `fpn_neck` is there for configs that chain necks.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
custom_imports = dict(imports=['mmsupervit'], allow_failed_imports=False)

fpn_neck = dict(type='FPN', in_channels='auto', out_channels=256, num_outs=5)
model = dict(type='mmsupervit.MaskRCNN', neck=fpn_neck)
