_base_ = [
    '../_base_/models/mask-rcnn_alternet_fpn.py',
    '../_base_/schedules/mask-rcnn_adamw_ms-3x.py'
]
# No ImageNet AlterNet weights are public (see configs/alternet/README.md):
# this recipe trains from scratch. No layer decay (nothing pretrained to
# protect), a higher lr and drop path for regularisation.
backbone = dict(
    type='mmsupervit.AlterNet',
    arch=50,
    drop_path_rate=0.1,
    init_cfg=None)
model = dict(backbone=backbone)
optim_wrapper = dict(
    optimizer=dict(lr=2e-4),
    paramwise_cfg=dict(layer_decay_rate=1.0))
