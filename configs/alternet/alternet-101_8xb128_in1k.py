# AlterNet-101 ImageNet-1k classification, 8 GPUs x 128: the AlterNet-50
# recipe (xxxnell/how-do-vits-work configs/imagenet_vit.yaml, deviations in
# alternet-50_8xb128_in1k.py) with the 101-layer backbone.
# Output: work_dirs/alternet-101_8xb128_in1k/epoch_305.pth, taken as it is by
# the dense AlterNet-101 configs (pretrained/alternet-101_in1k.pth; README).
_base_ = ['./alternet-50_8xb128_in1k.py']
model = dict(backbone=dict(arch=101))
