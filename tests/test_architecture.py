"""The shape of the codebase (docs/ARCHITECTURE.md), checked so that it stays true: layers
point down only (an import-linter contract, function-level imports included), one weight
loader, no product module named like a test, modules of readable size."""

import ast
import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "resdet")
MAX_MODULE_LINES = 450


def _modules():
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py") and os.path.join("resdet", "configs") not in folder:
                yield os.path.join(folder, name)


def _lint_imports(root: str) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports")
    assert exe, "import-linter is a test dependency: pip install -e '.[test]'"
    env = dict(os.environ, PYTHONPATH=root)
    return subprocess.run(
        [exe, "--config", os.path.join(root, "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_layers_point_down_only():
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout


def test_the_contract_sees_an_upward_import_hidden_in_a_function(tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(PACKAGE, copy / "resdet", ignore=shutil.ignore_patterns("__pycache__", "configs"))
    shutil.copy(os.path.join(REPO, "pyproject.toml"), copy / "pyproject.toml")
    (copy / "resdet" / "data" / "_probe.py").write_text(
        "def later():\n    from resdet.engine import Trainer\n    return Trainer\n"
    )
    result = _lint_imports(str(copy))
    assert result.returncode != 0
    assert "resdet.data is not allowed to import resdet.engine" in result.stdout
    assert "resdet.data._probe -> resdet.engine" in result.stdout


def test_one_definition_of_weight_loading():
    defined, loads = {}, []
    for path in _modules():
        text = open(path, encoding="utf-8").read()
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name in ("load_weights", "extract_state_dict", "safe_load"):
                defined.setdefault(node.name, []).append(os.path.relpath(path, REPO))
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "torch"
            ):
                loads.append(os.path.relpath(path, REPO))
    assert defined == {
        "load_weights": ["resdet/models/converters/loading.py"],
        "extract_state_dict": ["resdet/models/converters/loading.py"],
        "safe_load": ["resdet/utils/io.py"],
    }
    assert loads == ["resdet/utils/io.py"]  # every file is read with weights_only=True there


def test_no_product_module_is_named_like_a_test_and_modules_stay_readable():
    too_long, test_like = [], []
    for path in _modules():
        name = os.path.basename(path)
        if name.startswith("test_") or name.endswith("_test.py"):
            test_like.append(path)
        with open(path, encoding="utf-8") as fh:
            lines = sum(1 for _ in fh)
        if lines > MAX_MODULE_LINES:
            too_long.append((os.path.relpath(path, REPO), lines))
        tree = ast.parse(open(path, encoding="utf-8").read())
        for node in tree.body:  # pytest would collect module-level test_* functions
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name.startswith(("test_", "Test")):
                test_like.append(f"{path}:{node.name}")
    assert test_like == []
    assert too_long == []


@pytest.mark.parametrize("doc", ["docs/ARCHITECTURE.md", "docs/CONTRACTS.md"])
def test_docs_name_only_files_that_exist(doc):
    """Every ``resdet/...`` path the docs name exists, and they cite nothing outside the repo."""
    import re

    text = open(os.path.join(REPO, doc), encoding="utf-8").read()
    assert "../" not in text and "/work/" not in text
    named = set(re.findall(r"`(resdet/[\w/]+(?:\.py)?)`", text))
    assert named, doc
    missing = sorted(p for p in named if not os.path.exists(os.path.join(REPO, p)))
    assert missing == []
