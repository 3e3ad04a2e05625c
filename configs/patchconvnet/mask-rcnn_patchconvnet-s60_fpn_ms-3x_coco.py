_base_ = [
    '../_base_/models/mask-rcnn_column_fpn.py',
    '../_base_/schedules/mask-rcnn_adamw_ms-3x.py'
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
    neck=[
        dict(type='mmsupervit.ColumnPyramidNeck', in_channels=embed_dims,
             scales=(4, 2, 1, 0.5), norm_cfg={{_base_.norm_cfg}}),
        dict(type='FPN', in_channels=[embed_dims] * 4, out_channels=256,
             num_outs=5, norm_cfg={{_base_.norm_cfg}}),
    ])
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.95))
