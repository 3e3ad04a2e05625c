_base_ = [
    '../_base_/models/upernet_column.py', '../_base_/datasets/ade20k_8xb2.py',
    '../_base_/schedules/upernet_adamw_160k.py'
]
checkpoint = 'https://dl.fbaipublicfiles.com/deit/s60_224_1k.pth'  # noqa
# Layer decay per block is gentle because the column is deep: the stem's lr
# factor 0.95**61 ~ 0.044 (ViT-B with 0.75: ~0.024).
backbone = dict(
    type='mmsupervit.PatchConvNet',
    arch='S60',
    drop_path_rate=0.1,
    with_cp=False,
    init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
embed_dims = 384
model = dict(
    backbone=backbone,
    neck=dict(in_channels=embed_dims),
    decode_head=dict(in_channels=[embed_dims] * 4),
    auxiliary_head=dict(in_channels=embed_dims))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.95))
