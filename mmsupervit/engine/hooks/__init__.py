from .checkpoint_check_hook import CheckpointCheckHook, check_model_checkpoint

__all__ = ['CheckpointCheckHook', 'check_model_checkpoint']
