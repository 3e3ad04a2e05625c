from . import (atomic_backend, cpu_distributed, hooks,  # noqa: F401
               optimizers)
