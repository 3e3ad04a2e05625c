from .checkpoint import (CheckpointError, load_checkpoint_file,
                         load_pretrained, load_state_dict_checked,
                         unwrap_state_dict)

__all__ = [
    'CheckpointError', 'load_checkpoint_file', 'load_pretrained',
    'load_state_dict_checked', 'unwrap_state_dict'
]
