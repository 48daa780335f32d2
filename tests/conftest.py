"""Shared fixtures: tiny random pipelines, seeded, built in well under a second."""

import numpy as np
import PIL.Image
import pytest
import torch

from ddit.testing import build_tiny_pipeline


@pytest.fixture
def pipe():
    pipeline = build_tiny_pipeline(seed=0)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return PIL.Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
