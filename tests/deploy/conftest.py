"""Fixtures of the export tests: two real photos, and the tiny C4 detector exported once."""

import glob
import os

import pytest
from deploy_helpers import build_tiny

from resdet.data.image_io import imread_rgb


@pytest.fixture(scope="session")
def photos(repo_root):
    """Two real photos of different sizes (640 x 480 BCCD, 800 x 600 fruits)."""
    bccd = sorted(glob.glob(os.path.join(repo_root, "tests/fixtures/bccd_voc/JPEGImages/*.jpg")))[0]
    fruit = sorted(glob.glob(os.path.join(repo_root, "tests/fixtures/fruits_coco/images/*.jpg")))[0]
    return [imread_rgb(bccd), imread_rgb(fruit)]


@pytest.fixture(scope="session")
def c4_export(repo_root, tmp_path_factory):
    """The tiny C4 detector's one export program, saved as .pt2 and translated to ONNX."""
    from resdet.deploy import export_onnx, export_program, save_program

    model = build_tiny(repo_root, "c4")
    folder = tmp_path_factory.mktemp("c4_export")
    program = export_program(model)
    assert program[1] == "detector"
    save_program(program[0], str(folder / "c4.pt2"))
    props = export_onnx(model, str(folder / "c4.onnx"), class_names=["a", "b", "c"], program=program)
    return {"model": model, "onnx": str(folder / "c4.onnx"), "pt2": str(folder / "c4.pt2"), "props": props}
