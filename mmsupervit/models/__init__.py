from . import (auto_channels, backbones, budget, classification,  # noqa: F401
               necks)

# The backbones in mmpretrain's scope too, when mmpretrain is installed (the
# optional extra `pip install -e .[pretrain]`); nothing happens without it.
classification.register_into_mmpretrain()
