from .alternet import AlterNet  # noqa: F401
