# Demo: classification pretraining (mmpretrain) of the tiny AlterNet of
# alternet-tiny_upernet_1xb4-300i_demo-128x128.py on the demo object crops:
# global average pooling of the last stage (stride 32) and a linear head, as
# the official AlterNet classifier. Data, head and schedule come from
# supervit-tiny_1xb32-200i_demo-crops-64x64.py.
_base_ = ['./supervit-tiny_1xb32-200i_demo-crops-64x64.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmsupervit.AlterNet',
        # basic blocks, one MSA block in each of stages 2-4; stage widths
        # 64/128/256/512 as every AlterNet
        arch=dict(
            block='basic',
            num_blocks=(1, 2, 2, 2),
            num_msa=(0, 1, 1, 1),
            heads=(1, 1, 2, 2),
            head_dim=32),
        out_indices=(3, ),
        drop_path_rate=0.0),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(in_channels=512))
