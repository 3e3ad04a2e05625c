from .alternet import AlterNet  # noqa: F401
from .patchconvnet import PatchConvNet  # noqa: F401
from .supervit import SuperViT  # noqa: F401
