# Demo: UperNet on a tiny AlterNet (basic blocks 1/2/2/2, one MSA block in
# each of stages 2-4, stage widths 64/128/256/512 at strides 4/8/16/32) on
# the synthetic demo data (ADE20K layout). AlterNet is hierarchical, so there
# is no neck: UperNet takes the four stage outputs, with widths read from the
# backbone ('auto'). Data, heads and schedule come from the SuperViT UperNet
# demo.
_base_ = ['./supervit-tiny_upernet_1xb4-300i_demo-128x128.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmsupervit.AlterNet',
        arch=dict(
            block='basic',
            num_blocks=(1, 2, 2, 2),
            num_msa=(0, 1, 1, 1),
            heads=(1, 1, 2, 2),
            head_dim=32),
        drop_path_rate=0.0),
    neck=None,
    decode_head=dict(in_channels='auto'),
    auxiliary_head=dict(in_channels='auto'))
# every AlterNet parameter is used
find_unused_parameters = False
