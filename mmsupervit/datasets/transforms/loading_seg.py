"""``mmsupervit.LoadSegAnnotations``: mmseg's loader plus the map checks."""
from typing import Optional

from mmseg.datasets.transforms import LoadAnnotations

from mmsupervit.registry import TRANSFORMS
from ..checks import BadDataError, check_seg_map


@TRANSFORMS.register_module()
class LoadSegAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` that checks the map it loads.

    Use it in place of ``dict(type='LoadAnnotations')`` in mmseg pipelines::

        dict(type='mmsupervit.LoadSegAnnotations', num_classes=150)

    A map that cannot be decoded, is not one label per pixel, has another
    size than its image (``ori_shape``) or holds a label outside
    ``[0, num_classes)`` other than ``ignore_index`` raises
    :class:`~mmsupervit.datasets.BadDataError` naming the file.

    Args:
        num_classes (int): Number of classes of the dataset.
        ignore_index (int): Label ignored by the losses and metrics.
            Defaults to 255.
        reduce_zero_label (bool, optional): As in mmseg (``None``: take the
            dataset's). Defaults to None.
        backend_args (dict, optional): As in mmseg. Defaults to None.
        imdecode_backend (str): As in mmseg. Defaults to ``'pillow'``.
    """

    def __init__(self,
                 num_classes: int,
                 ignore_index: int = 255,
                 reduce_zero_label: Optional[bool] = None,
                 backend_args: Optional[dict] = None,
                 imdecode_backend: str = 'pillow') -> None:
        super().__init__(
            reduce_zero_label=reduce_zero_label,
            backend_args=backend_args,
            imdecode_backend=imdecode_backend)
        if num_classes < 1:
            raise ValueError(f'num_classes must be positive: {num_classes}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        if 'seg_map_path' not in results:
            # Inference: there is no map to load. mmseg's MMSegInferencer
            # removes only transforms of type 'LoadAnnotations' from the test
            # pipeline, so this one sees its inputs.
            return results
        return super().transform(results)

    def _load_seg_map(self, results: dict) -> None:
        path = results['seg_map_path']
        try:
            super()._load_seg_map(results)
        except FileNotFoundError:
            raise  # names the path already
        except Exception as err:  # decoders raise many types
            raise BadDataError(
                f'could not load segmentation map {path} '
                f'({type(err).__name__}: {err})') from err
        check_seg_map(
            results['gt_seg_map'],
            self.num_classes,
            self.ignore_index,
            image_shape=results.get('ori_shape'),
            reduce_zero_label=bool(self.reduce_zero_label),
            seg_map_path=path,
            img_path=results.get('img_path', ''))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index}, '
                f'reduce_zero_label={self.reduce_zero_label}, '
                f"imdecode_backend='{self.imdecode_backend}', "
                f'backend_args={self.backend_args})')
