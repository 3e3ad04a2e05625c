"""``mmsupervit.LoadDetAnnotations``: mmdet's loader plus instance checks."""
import logging

from mmdet.datasets.transforms import LoadAnnotations
from mmengine.logging import print_log

from mmsupervit.registry import TRANSFORMS
from ..checks import check_image_size, check_instances


@TRANSFORMS.register_module()
class LoadDetAnnotations(LoadAnnotations):
    """mmdet's ``LoadAnnotations`` that names the image of a bad annotation.

    Same arguments as mmdet's; use it in place of
    ``dict(type='LoadAnnotations', ...)`` in mmdet pipelines::

        dict(type='mmsupervit.LoadDetAnnotations', with_bbox=True,
             with_mask=True)

    Before mmdet processes the instances of an image:

    * annotations mmdet would crash on without naming the image, or turn into
      a wrong mask (no segmentation, a polygon that is not a list of finite
      numbers) raise :class:`~mmsupervit.datasets.BadDataError` naming it;
    * where mmdet's own behaviour is to skip (a polygon with an odd number of
      coordinates or fewer than 3 points is dropped; an object left without
      polygons becomes an ignored region), the skip is kept and logged as a
      warning naming the image, once per image and process;
    * an image whose size differs from the one in the annotation file is
      logged the same way.
    """

    def transform(self, results: dict) -> dict:
        problems = check_instances(results, with_mask=self.with_mask)
        size = check_image_size(results)
        if size is not None:
            problems.append(size)
        if problems:
            self._warn_once(results.get('img_path', ''), problems)
        return super().transform(results)

    def _warn_once(self, img_path: str, problems: list) -> None:
        # mmdet does not have an __init__ hook for our state; the set lives
        # in each worker's copy of the transform.
        warned = self.__dict__.setdefault('_warned', set())
        if img_path in warned:
            return
        warned.add(img_path)
        for problem in problems:
            print_log(problem, logger='current', level=logging.WARNING)
