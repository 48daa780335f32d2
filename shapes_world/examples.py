"""Write the app's example inputs: ``python -m shapes_world.examples [assets/examples]``.

Six Shapes-World scenes (a fixed seed that is neither the training nor the benchmark seed), one of
them antialiased and one saved through JPEG, to show inputs not drawn exactly like the training
data; and example prompts, short and full.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .language import caption
from .render import jpeg_round_trip, render
from .scene import iter_scenes

EXAMPLES_SEED = 2024_11_23
PROMPTS = [
    "a large red circle at the top left",
    "a small blue square in the center",
    "a green triangle and a yellow circle",
    "a purple square on the right and an orange triangle at the bottom left",
    "a red circle, a blue square and a green triangle",
    "a large yellow triangle",
]


def main(folder: str = "assets/examples") -> None:
    """Write ``scene_0.png`` ... ``scene_5.png`` and ``prompts.txt`` into ``folder``."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(EXAMPLES_SEED)
    for i, scene in enumerate(iter_scenes(EXAMPLES_SEED, 6)):
        image = render(scene, rng, antialias=i == 4)
        if i == 5:
            image = jpeg_round_trip(image, quality=85)
        image.save(out / f"scene_{i}.png")
        print(f"scene_{i}.png: {caption(scene)}")
    (out / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
