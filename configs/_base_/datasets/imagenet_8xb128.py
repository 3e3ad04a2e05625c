# ImageNet-1k for mmpretrain classifiers (default_scope 'mmpretrain'),
# 128 images per GPU x 8 GPUs = batch 1024. Layout: mmpretrain's ImageNet,
# data/imagenet/{train,val}/ (class folders, or meta/{train,val}.txt
# annotation lists).
# Pipelines: mmpretrain's DeiT ones (imagenet_bs64_swin_224.py): train with
# RandomResizedCrop 224 (bicubic), flip, RandAugment rand-m9-mstd0.5-inc1 and
# random erasing 0.25 (DeiT's timm recipe); test with DeiT's evaluation
# transform, the short side resized to 256 (bicubic, crop ratio 0.875) and a
# 224 center crop, which is the official evaluation of SuperViT (DeiT's
# datasets.py) and PatchConvNet (facebookresearch/deit main.py,
# --eval-crop-ratio 0.875). Mixup/CutMix, when used, are model.train_cfg.
_base_ = ['mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
          'mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmsupervit'], allow_failed_imports=False)
train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader
