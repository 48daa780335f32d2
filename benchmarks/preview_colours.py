"""Do the app's first previews show the prompt's colour? Full-VAE previews against the preview decoder's.

Run:  python benchmarks/preview_colours.py [--model assets/ddit-shapes] [--seeds 8] [--steps 3]

For each single-colour prompt and seed, the first ``--steps`` previews (the predicted clean image of each
step, default settings otherwise) are decoded three ways (``preview_colours``) and read by ``read_colour``: the palette
colour whose direction from white is nearest (by angle) to the mean of the inked pixels, so a faded
preview reads as its colour; "blank" when almost nothing is inked. On ddit-shapes (its model card) the
guided predictions of a red circle's first steps read yellow or orange with either decoder: guidance pushes
them along the one latent direction on which the VAE lays red, orange, yellow and green. The conditional
prediction, which the app shows, reads red in 15 of 24 (the guided one in 2).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # repo root: ddit and shapes_world are not pip-installed
from ddit import DualDiffusionPipeline  # noqa: E402
from ddit.cli import DEFAULT_MODEL  # noqa: E402
from shapes_world import BACKGROUND, COLORS  # noqa: E402

PROMPTS = ("a red circle", "a blue square", "a green triangle", "a purple circle", "an orange square",
           "a large yellow triangle")
INK = 40.0  # RGB distance from the background above which a pixel is inked (a 25 % red blend is ~75)
MIN_INKED = 4  # pixels; fewer and the preview reads "blank"
_DIRS = {name: np.subtract(rgb, BACKGROUND) / np.linalg.norm(np.subtract(rgb, BACKGROUND))
         for name, rgb in COLORS.items()}


def read_colour(image: Image.Image) -> str:
    """The palette colour an image's inked pixels read as, or "blank"."""
    offset = np.asarray(image.convert("RGB"), dtype=np.float64).reshape(-1, 3) - np.asarray(BACKGROUND)  # (N, 3)
    inked = offset[np.linalg.norm(offset, axis=1) > INK]
    if len(inked) < MIN_INKED:
        return "blank"
    mean = inked.mean(0)
    return max(_DIRS, key=lambda name: float(mean @ _DIRS[name]) / (np.linalg.norm(mean) + 1e-9))


def preview_colours(pipe: DualDiffusionPipeline, prompt: str, seeds: range, steps: int) -> dict[str, list[list[str]]]:
    """For each of the first ``steps`` steps, the colour read from each seed's preview, three ways: "vae" and
    "preview" decode the guided prediction ``pred_clean`` with the VAE and with the preview decoder (the app
    before), "app" decodes the conditional prediction ``pred_clean_cond`` with the preview decoder (the app now)."""
    read = {name: [[] for _ in range(steps)] for name in ("vae", "preview", "app")}
    for seed in seeds:
        states = pipe.iter_generate(prompt, generator=torch.Generator().manual_seed(seed))
        for state in itertools.islice(states, steps):
            read["vae"][state.step].append(read_colour(pipe.decode_latents(state.pred_clean)[0]))
            read["preview"][state.step].append(read_colour(pipe.decode_preview(state.pred_clean)[0]))
            read["app"][state.step].append(read_colour(pipe.decode_preview(state.pred_clean_cond)[0]))
    return read


def summary(colours: list[str], want: str) -> str:
    """'6/8 (yellow 2)': seeds that read as ``want``, then what the others read as."""
    others = Counter(c for c in colours if c != want)
    rest = ", ".join(f"{name} {n}" for name, n in others.most_common())
    return f"{colours.count(want)}/{len(colours)}" + (f" ({rest})" if rest else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--preview-decoder", default=None, help="an AutoencoderTiny folder (default: the model's own)")
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args()
    pipe = DualDiffusionPipeline.from_pretrained(args.model, device="cpu", preview_decoder=args.preview_decoder)
    pipe.set_progress_bar_config(disable=True)
    if pipe.preview_decoder is None:
        print("note: this model has no preview decoder; both rows decode with the VAE")
    print(f"{'prompt':<24}{'decoder':<9}" + "  ".join(f"{'step ' + str(i + 1):<26}" for i in range(args.steps)))
    for prompt in PROMPTS:
        want = next(word for word in prompt.split() if word in COLORS)
        read = preview_colours(pipe, prompt, range(args.seeds), args.steps)
        for name, per_step in read.items():
            print(f"{prompt:<24}{name:<9}" + "  ".join(f"{summary(c, want):<26}" for c in per_step))


if __name__ == "__main__":
    main()
