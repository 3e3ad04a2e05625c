_base_ = [
    '../_base_/models/mask-rcnn_column_fpn.py',
    '../_base_/schedules/mask-rcnn_adamw_1x.py'
]
# Official ImageNet weights are on Google Drive (no direct URL): download
# them, then convert once with
#   python tools/model_converters/supervit2mmsupervit.py super_lvvit_s.pth pretrained/super_lvvit_s.pth
# (the raw official file also loads directly; the converter just slims it).
checkpoint = 'pretrained/super_lvvit_s.pth'
# Compute budget (can be changed at test time, e.g.
#   --cfg-options model.backbone.keep_rate=0.7 model.backbone.input_scale=0.75):
# keep_rate prunes tokens in blocks 3/6/9 (pruned tokens are restored into the
# maps); input_scale runs the trunk on a downscaled input.
backbone = dict(
    type='mmsupervit.SuperViT',
    arch='lvvit-s',
    drop_path_rate=0.1,
    keep_rate=1.0,
    input_scale=1.0,
    init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
model = dict(backbone=backbone)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.75))
# Only one of SuperViT's four position tables is used in an iteration, so
# distributed training must allow unused parameters.
find_unused_parameters = True
