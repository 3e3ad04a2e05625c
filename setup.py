"""Install mmsupervit.

The OpenMMLab stack is pinned to the last releases that work together
(mmcv 2.1.0 is required by mmdet 3.3.0 and mmseg 1.2.2). mmcv must be built
with its compiled ops: ``tools/setup_env.sh`` does that, or installs a
prebuilt wheel from a wheelhouse folder.
"""
import os.path as osp

from setuptools import find_packages, setup


def read_version() -> str:
    namespace: dict = {}
    with open(osp.join(osp.dirname(__file__), 'mmsupervit', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def read_readme() -> str:
    path = osp.join(osp.dirname(__file__), 'README.md')
    if not osp.exists(path):
        return ''
    with open(path, encoding='utf-8') as f:
        return f.read()


SEG = ['mmsegmentation==1.2.2', 'ftfy', 'regex']
DET = ['mmdet==3.3.0', 'pycocotools']
TESTS = ['pytest>=7', 'pytest-timeout']
# ImageNet classification with mmpretrain (configs/*/*_in1k.py). Its declared
# requirements (einops, importlib-metadata, mat4py, matplotlib, modelindex,
# numpy, rich) pin nothing our stack conflicts with, so pip resolves them
# normally; mmcv/mmengine are only in its 'mim' extra and stay ours.
PRETRAIN = ['mmpretrain==1.2.0', 'importlib-metadata', 'modelindex', 'mat4py',
            'einops']

setup(
    name='mmsupervit',
    version=read_version(),
    description=('SuperViT, AlterNet and PatchConvNet backbones for dense '
                 'prediction with mmsegmentation and mmdetection'),
    long_description=read_readme(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(include=['mmsupervit', 'mmsupervit.*']),
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.0',
        'mmengine==0.10.7',
        'mmcv==2.1.0',
        'timm>=1.0',
        'numpy',
        # mmcv 2.1.0 and mmengine 0.10.7 import pkg_resources (mmcv#3325)
        'setuptools<81',
    ],
    extras_require={
        'seg': SEG,
        'det': DET,
        'pretrain': PRETRAIN,
        'all': SEG + DET + PRETRAIN,
        'tests': TESTS,
    },
    zip_safe=False,
)
