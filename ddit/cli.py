"""Command line: ``python -m ddit generate|caption|ask|infill|score|inpaint|save-tiny ...`` (see ``--help``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .bundled import bundled_model_path
from .dtypes import DTYPE_CHOICES, DTYPE_HELP, parse_dtype
from .task_defaults import SAMPLERS

# the model a command uses unless --model names another: $DDIT_MODEL (a folder or a Hub id), else the bundled one
DEFAULT_MODEL = os.environ.get("DDIT_MODEL") or str(bundled_model_path())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ddit",
        description="Dual Diffusion (D-DiT): generate images from text, caption images and answer questions "
                    "about them with one diffusion transformer. Unset options use the model's own defaults.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", default=str(DEFAULT_MODEL),
                        help="pipeline folder (default: the bundled Shapes-World model)")
    common.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    common.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    common.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    common.add_argument("--dtype", choices=DTYPE_CHOICES, default="auto", help=DTYPE_HELP)
    common.add_argument("--lora", default=None, help="LoRA weights to load onto the model (a training run's lora/)")
    text = argparse.ArgumentParser(add_help=False)
    text.add_argument("--sampler", choices=SAMPLERS, default=None,
                      help="text sampler: the paper's ancestral one or confidence-based (default: the model's)")
    text.add_argument("--max-length", type=int, default=None, help="length of the text slot in tokens")
    text.add_argument("--threshold", type=float, default=None,
                      help="confidence sampler: also commit every token at least this sure, and stop a block once "
                           "nothing in it is masked (--steps becomes the most per block)")
    text.add_argument("--block-length", type=int, default=None,
                      help="decode the slot left to right in blocks of this many tokens")
    text.add_argument("--max-new-tokens", type=int, default=None,
                      help="with --block-length: append blocks until the text ends, up to this many tokens")
    text.add_argument("--eos-early-stop", action=argparse.BooleanOptionalAction, default=None,
                      help="stop once every row has ended (same text, fewer forward passes)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser("generate", parents=[common], help="text -> image",
                         description="Generate an image from a prompt and save it.")
    gen.add_argument("prompt", help='what to draw, e.g. "a large red circle at the top left"')
    gen.add_argument("-o", "--output", default="out.png", help="where to save the image (default out.png)")
    gen.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    gen.add_argument("--negative-prompt", default=None, help="what to steer away from")

    cap = sub.add_parser("caption", parents=[common, text], help="image -> caption",
                         description="Describe an image.")
    cap.add_argument("image", help="path of the image")
    cap.add_argument("--prompt", default=None, help="optional instruction before the caption")

    ask = sub.add_parser("ask", parents=[common, text], help="image + question -> answer",
                         description="Answer a question about an image.")
    ask.add_argument("image", help="path of the image")
    ask.add_argument("question", help='e.g. "what color is the circle?"')
    ask.add_argument("--short-answer", action="store_true",
                     help='append "Answer the question using a single word or phrase." (the released checkpoints\' '
                          "short-answer prompt)")

    _add_infill_and_score(sub, common, text)
    tiny = sub.add_parser("save-tiny", help="save a tiny random pipeline (for trying the commands)",
                          description="Save a tiny pipeline with random weights; its outputs are noise.")
    tiny.add_argument("folder", help="where to save it")
    return parser


def _add_infill_and_score(sub, common: argparse.ArgumentParser, text: argparse.ArgumentParser) -> None:
    """The ``infill`` and ``score`` commands: what only a dual diffusion model can do."""
    fill = sub.add_parser("infill", parents=[common, text], help="image + template -> text, the given words kept",
                          description="Fill the blanks of a template: each _ is one word the model fills, every "
                                      "other word is kept.")
    fill.add_argument("image", help="path of the image")
    fill.add_argument("template", help='e.g. "a _ red _ at the top left"')

    score = sub.add_parser("score", parents=[common], help="rank texts for an image, or images for a prompt",
                           description="Score candidates with the model's own likelihoods: texts for one image "
                                       "(IMAGE --texts T1 T2 ...) or images for one prompt (IMG1 IMG2 ... --prompt "
                                       "P). Prints them best first; higher fits better.")
    score.add_argument("images", nargs="+", help="one image (with --texts) or the candidate images (with --prompt)")
    what = score.add_mutually_exclusive_group(required=True)
    what.add_argument("--texts", nargs="+", help="candidate texts for the one image")
    what.add_argument("--prompt", help="the prompt the candidate images are scored against")
    score.add_argument("--samples", type=int, default=None, help="timesteps per candidate (default: the model's)")

    paint = sub.add_parser("inpaint", parents=[common], help="image + mask + prompt -> image, the unmasked part kept",
                           description="Repaint the white part of MASK in IMAGE to fit PROMPT; the black part is "
                                       "kept (diffusers' convention).")
    paint.add_argument("image", help="path of the image")
    paint.add_argument("mask", help="path of the mask (white = repaint, black = keep)")
    paint.add_argument("prompt", help="the whole picture as it should be")
    paint.add_argument("-o", "--output", "--out", default="out.png", help="where to save the image (default out.png)")
    paint.add_argument("--strength", type=float, default=None,
                       help="share of the steps run, from the image noised that far (default 1: from noise)")
    paint.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")


def check_output_path(path: str) -> None:
    """Refuse, before any work, an image path whose folder is missing or whose extension PIL cannot write."""
    from PIL import Image

    out = Path(path)
    if not out.parent.is_dir():
        raise ValueError(f"cannot save {path}: the folder {out.parent} does not exist")
    if out.suffix.lower() not in Image.registered_extensions():
        raise ValueError(f"cannot save {path}: unknown image type {out.suffix or '(no extension)'!r}; use .png or .jpg")


def entry() -> None:
    """The ``ddit`` console command."""
    sys.exit(main())


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code. Errors are printed as one line, not a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from .checks import seeded_generator
    from .image_inputs import input_notes, load_image

    if args.command == "save-tiny":
        from .presets import build_tiny_pipeline

        build_tiny_pipeline().save_pretrained(args.folder)
        print(f"saved a tiny random pipeline to {args.folder}")
        return 0
    generator = seeded_generator(args.seed)  # a bad seed, output path or image fails before the model loads
    if args.command in ("generate", "inpaint"):
        check_output_path(args.output)
    if args.command == "inpaint":
        return _inpaint(args, load_image(args.image), load_image(args.mask), generator)
    if args.command == "score":
        return _score(args, [load_image(path) for path in args.images], generator)
    image = None if args.command == "generate" else load_image(args.image)
    pipe = _load(args)
    if args.command != "generate":
        for note in input_notes(image, pipe.resolution):
            print(f"note: {note}", file=sys.stderr)
    if args.command == "generate":
        out = pipe(args.prompt, negative_prompt=args.negative_prompt, num_inference_steps=args.steps,
                   guidance_scale=args.guidance, generator=generator)
        out.images[0].save(args.output)
        print(f"saved {args.output}")
    else:
        decoding = dict(num_inference_steps=args.steps, max_length=args.max_length, sampler=args.sampler,
                        generator=generator, threshold=args.threshold, block_length=args.block_length,
                        max_new_tokens=args.max_new_tokens, eos_early_stop=args.eos_early_stop)
        if args.command == "caption":
            out = pipe.caption(image, prompt=args.prompt, **decoding)
        elif args.command == "infill":
            out = pipe.infill(image, args.template, **{k: v for k, v in decoding.items() if k != "max_length"})
        else:
            out = pipe.answer(image, args.question, short_answer=args.short_answer, **decoding)
        print(out.text[0])
    return 0


def _load(args: argparse.Namespace):
    """The pipeline a command runs: ``--model`` on ``--device`` in ``--dtype``, with ``--lora`` loaded onto it."""
    from .pipeline import DualDiffusionPipeline

    pipe = DualDiffusionPipeline.from_pretrained(args.model, device=args.device, torch_dtype=parse_dtype(args.dtype))
    if args.lora:
        pipe.load_lora_weights(args.lora)
    return pipe


def _inpaint(args: argparse.Namespace, image, mask, generator) -> int:
    """``ddit inpaint``: the repainted image, saved."""
    out = _load(args).inpaint(image, mask, args.prompt, num_inference_steps=args.steps, guidance_scale=args.guidance,
                       strength=args.strength, generator=generator)
    out.images[0].save(args.output)
    print(f"saved {args.output}")
    return 0


def _score(args: argparse.Namespace, images: list, generator) -> int:
    """``ddit score``: the candidates with their scores, best first."""
    if args.texts and len(images) != 1:
        raise ValueError(f"--texts scores texts against one image; got {len(images)} images")
    pipe = _load(args)
    if args.texts:
        out, names = pipe.score_texts(images[0], args.texts, num_samples=args.samples, generator=generator), args.texts
    else:
        out, names = pipe.score_images(args.prompt, images, num_samples=args.samples, generator=generator), args.images
    for value, name in sorted(zip(out.scores, names), key=lambda pair: -pair[0]):
        print(f"{value:12.3f}  {name}")
    return 0

