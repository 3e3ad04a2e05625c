_base_ = [
    '../_base_/models/upernet_alternet.py', '../_base_/datasets/ade20k_8xb2.py',
    '../_base_/schedules/upernet_adamw_160k.py'
]
# No ImageNet AlterNet weights are public (see configs/alternet/README.md):
# this recipe trains from scratch. No layer decay (nothing pretrained to
# protect), a higher lr and drop path for regularisation.
backbone = dict(
    type='mmsupervit.AlterNet',
    arch=101,
    drop_path_rate=0.1,
    init_cfg=None)
model = dict(backbone=backbone)
optim_wrapper = dict(
    optimizer=dict(lr=2e-4),
    paramwise_cfg=dict(layer_decay_rate=1.0))
