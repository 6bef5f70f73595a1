import os
import re

from setuptools import find_packages, setup

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "resdet", "__init__.py"), encoding="utf-8") as fh:
    version = re.search(r'__version__ = "([^"]+)"', fh.read()).group(1)

setup(
    name="resdet",
    version=version,
    description="ResNet classification, Faster R-CNN detection, segmentation and localization "
                "in one registry-based PyTorch toolkit",
    long_description=open(os.path.join(here, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["resdet", "resdet.*"]),
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "mmengine>=0.10",
        "pycocotools>=2.0.6",
        "opencv-python-headless>=4.8",
        "numpy>=1.23",
    ],
    extras_require={
        "test": ["pytest>=7", "faster-coco-eval>=1.6"],
        "fast-eval": ["faster-coco-eval>=1.6"],
        "plots": ["matplotlib>=3.6"],
        "tensorboard": ["tensorboard>=2.12"],
    },
)
