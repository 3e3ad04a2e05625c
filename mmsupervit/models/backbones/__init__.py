from .alternet import AlterNet
from .base import DenseBackbone, ShapeSpec
from .patchconvnet import PatchConvNet
from .supervit import SuperViT

__all__ = [
    'AlterNet', 'DenseBackbone', 'PatchConvNet', 'ShapeSpec', 'SuperViT'
]
