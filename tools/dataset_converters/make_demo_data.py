"""Write the synthetic demo dataset (ADE20K and COCO layouts).

Example::

    python tools/dataset_converters/make_demo_data.py --out data/demo \
        --num-train 200 --num-val 40 --seed 0

The generator lives in :mod:`mmsupervit.datasets.demo_data`.
"""
from mmsupervit.datasets.demo_data import main

if __name__ == '__main__':
    main()
