# mmseg's ConvNeXt UperNet optimizer (configs/convnext/convnext-*_upernet_8xb2-
# amp-160k_ade20k-512x512.py; `convnext_optim_wrapper` in optimizers.py) on the
# 160k schedule.
_base_ = ['./upernet_160k.py', './optimizers.py']

optim_wrapper = dict(_delete_=True, **_base_.convnext_optim_wrapper)
