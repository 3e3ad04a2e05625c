from .column_pyramid import ColumnPyramidNeck
from .simple_pyramid import SimplePyramidNeck

__all__ = ['ColumnPyramidNeck', 'SimplePyramidNeck']
