from .column_pyramid import ColumnPyramidNeck

__all__ = ['ColumnPyramidNeck']
