# UperNet on SuperViT, the default stride-16 column (the demo configs build
# on this file too). Norm layers: SyncBN in the pyramid neck
# (column_pyramid.py) and in both heads (upernet.py), as mmseg trains BN at 2
# images per GPU; the only BN of the backbone, the LV-ViT conv stem, also
# uses SyncBN and trains its statistics (norm_eval=False), as mmseg's
# UperNet does with ImageNet-pretrained BN backbones (upernet_r50.py). The
# ViT blocks use LayerNorm. Single-scale test on the whole image, as mmseg's
# ViT/DeiT configs.
_base_ = ['./upernet.py', './supervit.py']

model = dict(
    backbone=dict(
        _delete_=True,
        **_base_.supervit,
        norm_cfg=_base_.syncbn_cfg,
        norm_eval=False),
    neck=_base_.pyramid_neck,
    test_cfg=dict(mode='whole'))
