"""The repository's shape: arrows point one way (app -> ddit <- train, shapes_world beside), files and
functions stay small enough to read."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for folder in ("ddit", "shapes_world", "train", "benchmarks", "evaluation", "tests")
                 for p in (ROOT / folder).rglob("*.py")) + sorted(ROOT.glob("app*.py")) + [ROOT / "space.py"]
MAX_FILE_LINES, MAX_FUNCTION_LINES = 400, 60


def imported_packages(path: Path) -> set[str]:
    """Top-level packages a file imports (relative imports count as its own package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(node.module.split(".")[0] if node.level == 0 else path.relative_to(ROOT).parts[0])
    return found


@pytest.mark.parametrize("package, forbidden", [
    *((p.name, {"train"}) for p in sorted(ROOT.glob("app*.py"))), ("ddit", {"train", "shapes_world", "gradio"}), ("shapes_world", {"train", "gradio"}),
    ("train", {"gradio"}), ("evaluation", {"train", "gradio"}),
])
def test_imports_point_one_way(package, forbidden):
    files = [ROOT / package] if package.endswith(".py") else sorted((ROOT / package).rglob("*.py"))
    wrong = {str(f.relative_to(ROOT)): sorted(imported_packages(f) & forbidden) for f in files}
    assert not {f: w for f, w in wrong.items() if w}


def test_the_domain_needs_no_torch_until_its_benchmark():
    for path in (ROOT / "shapes_world").glob("*.py"):
        assert "torch" not in imported_packages(path), path.name


def test_files_and_functions_stay_small():
    too_long = []
    for path in SOURCES:
        text = path.read_text()
        if len(text.splitlines()) > MAX_FILE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert not too_long


@pytest.mark.slow  # a fresh interpreter importing gradio: seconds
def test_the_app_serves_its_page_before_importing_torch():
    """``python app.py`` draws its page from the model's saved defaults while torch, diffusers and the weights load
    (benchmarks/startup.py): importing the app, its inputs and the task options must not import them."""
    import subprocess
    import sys

    code = ("import sys, app, app_inputs, ddit.task_defaults, ddit.model_folder; "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr[-2000:]
