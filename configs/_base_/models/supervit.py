# SuperViT backbone settings shared by its UperNet and Mask R-CNN configs.
# Official ImageNet weights (lmbxmu/SuperViT) are on Google Drive only: see
# configs/supervit/README.md to download and convert them to the local path
# below; a missing file stops the run with that hint (never a silent start
# from scratch). keep_rate and input_scale select the compute budget and can
# be changed at test time, e.g.
#   --cfg-options model.backbone.keep_rate=0.7 model.backbone.input_scale=0.75
_base_ = ['./column_pyramid.py']

supervit = dict(
    type='mmsupervit.SuperViT',
    arch='deit-s',
    drop_path_rate=0.1,
    keep_rate=1.0,
    input_scale=1.0,
    init_cfg=dict(
        type='Pretrained',
        checkpoint='pretrained/super_deit_s.pth',
        hint='the official SuperViT weights are on Google Drive only: '
        'configs/supervit/README.md says how to download them and convert '
        'them to this path'))
# SuperViT keeps one position table per trained input size and uses one per
# iteration, so DDP must allow parameters without gradients.
find_unused_parameters = True
