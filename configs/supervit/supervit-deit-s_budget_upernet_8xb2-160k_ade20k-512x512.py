# SuperViT deit-s UperNet trained for every compute budget at once (see
# ../_base_/models/supervit_budget.py); everything else is the single-budget
# config.
_base_ = [
    './supervit-deit-s_upernet_8xb2-160k_ade20k-512x512.py',
    '../_base_/models/supervit_budget.py'
]
model = _base_.upernet_budget
