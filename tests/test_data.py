"""Training data (train/data.py): Shapes-World rows, the latent pool, hand-mixed shades for the text tasks."""

from pathlib import Path

import torch

from ddit.task_defaults import TaskDefaults
from train.config import TrainConfig
from train.data import ShapesWorldSource, latent_pool

TINY = Path(__file__).resolve().parent.parent / "train" / "configs" / "tiny.yaml"


def test_colour_jitter_shades_only_text_rows_and_is_off_by_default():
    """With ``color_jitter`` some pool scenes are drawn in hand-mixed shades; the image task's rows never get one.
    With 0 (the default) the pool's renders are the ones before the option existed (no extra draws)."""
    cfg = TrainConfig.from_yaml(TINY)
    defaults = TaskDefaults.from_dict(cfg.task_defaults)
    cfg.data.latent_pool = 64
    identity = lambda pixels: pixels  # the "latents" are the pixels: shades are visible in them
    plain = latent_pool(cfg.data, 0, identity)
    assert not plain[2].any()
    cfg.data.color_jitter = 0.5
    scenes, latents, shaded = latent_pool(cfg.data, 0, identity)
    assert 16 < int(shaded.sum()) < 48 and [repr(s) for s in scenes] == [repr(s) for s in plain[0]]
    # a scene drawn in the palette keeps its exact render only where no shade was drawn before it
    assert not torch.equal(latents[shaded], plain[1][shaded])
    source = ShapesWorldSource(cfg.data, defaults, seed=0, pool=(scenes, latents, shaded))
    rows = [ex for k in range(40) for ex in source.examples(k, 8, image_rows=5)]
    picked = torch.tensor([bool(shaded[[torch.equal(ex.latents, latents[i]) for i in range(64)].index(True)])
                           for ex in rows]).view(40, 8)
    assert not picked[:, :5].any() and picked[:, 5:].any()
