"""Test configuration: one torch thread per process, and the shared fixtures (tiny random pipelines).

Each torch process starts one thread per core by default; beside other busy processes (a second test run,
a training job) that oversubscribes the cores and the training tests slowed ~14x. One thread per process,
set here and inherited by the processes the tests start (the two-process training run), keeps the suite's
time steady on a busy machine. The settings are the tests' only: production code keeps torch's defaults.
"""

import os
import re
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported, and for every child process

import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from ddit.presets import build_tiny_pipeline  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

# a module whose every test is slow says so at its top (``pytestmark = pytest.mark.slow`` or a list holding it)
ALL_SLOW = re.compile(r"^pytestmark = (pytest\.mark\.slow\b|\[\s*pytest\.mark\.slow\b)", re.M)


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """The fast tier (``-m "not slow"``) does not import a module whose every test is slow: importing the app's
    tests alone costs gradio's import, seconds the fast tier would spend for nothing."""
    if config.getoption("markexpr") == "not slow" and collection_path.suffix == ".py" and \
            collection_path.name.startswith("test_") and ALL_SLOW.search(collection_path.read_text()):
        return True
    return None


@pytest.fixture
def pipe():
    pipeline = build_tiny_pipeline(seed=0)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return PIL.Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
