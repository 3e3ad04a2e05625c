from .checkpoint_check_hook import CheckpointCheckHook, check_model_checkpoint
from .random_state_hook import RandomStateHook

__all__ = ['CheckpointCheckHook', 'RandomStateHook', 'check_model_checkpoint']
