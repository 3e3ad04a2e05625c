# ADE20K data: mmseg's own pipelines (512x512 crops, multi-scale + flip TTA
# under `tools/test.py --tta`), 2 images per GPU x 8 GPUs = batch 16.
_base_ = ['mmseg::_base_/datasets/ade20k.py',
          'mmseg::_base_/default_runtime.py']
train_dataloader = dict(batch_size=2, num_workers=4)
val_dataloader = dict(batch_size=1, num_workers=4)
test_dataloader = val_dataloader
# learning rates are tuned for a total batch of 16
auto_scale_lr = dict(enable=False, base_batch_size=16)
