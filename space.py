"""Write a folder that is the Hugging Face Space: only what ``python app.py`` needs, every file under a size limit.

    python space.py OUT_DIR [--model assets/ddit-shapes] [--max-file-mb 10]

then upload it (``hf`` is huggingface_hub's CLI; it creates a Gradio Space when USER/SPACE does not exist yet;
``--delete "*"`` removes files an earlier upload left that this folder no longer has):

    hf upload USER/SPACE OUT_DIR . --repo-type space --delete "*"

or from Python: ``huggingface_hub.HfApi().upload_folder(repo_id="USER/SPACE", folder_path="OUT_DIR",
repo_type="space", delete_patterns="*")``. Either uploads the weights through the Hub's large-file storage.

Why a folder and not the repository: a git push of this repository to a Space is refused. The Hub takes no
file over 10 MB, nor a binary one over about 1 MB, that is not in its Git LFS/Xet storage; the transformer's
weights are one 14.8 MB file, and the history holds earlier weights. ``hf upload`` sends no history and puts
the binary files in that storage itself.

The folder holds app.py, app_inputs.py, the tabs' app_*.py, the ``ddit`` and ``shapes_world`` packages (their .py files only),
assets/examples/, requirements.txt, a README.md whose YAML header is this repository's (the Space config), and
the model, re-saved with ``save_pretrained(max_shard_size=...)`` so that every weight file is at most
``--max-file-mb`` MB (10^6 bytes); its other files (card, benchmarks, configs, tokenizer) are copied as they
are. The model goes where ``ddit.cli.DEFAULT_MODEL`` finds it (``ddit/bundled.py``: ``assets/ddit-shapes``
beside the ``ddit`` package), so the Space runs ``python app.py`` with no arguments.

OUT_DIR must not exist or be empty. The command prints every file over 1 MB, the total size and the number
of files, and exits 1 when a file is over the limit (e.g. a single tensor bigger than it).
"""

from __future__ import annotations

import argparse
import fnmatch
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
CODE_FILES = ("app.py", "app_inputs.py", "app_image.py", "app_text.py", "app_score.py",  # what the Space runs
              "requirements.txt")  # and installs
PACKAGES = ("ddit", "shapes_world")  # everything app.py imports at startup lives in these two
DATA_FOLDERS = ("assets/examples",)  # the app's example images (app.EXAMPLES_DIR) and prompts
# the model folder's files that are not weights: the card, its benchmark results and its configs, copied as is
MODEL_EXTRAS = ("README.md", "benchmark*.json", "train_config*.yaml", "*_config.yaml")
MB = 1_000_000
SHARD_MARGIN = 0.9  # a shard's tensors fill at most this share of the limit: the file adds a JSON header
SPACE_README_BODY = """
# ddit — Dual Diffusion

One small dual-diffusion transformer (D-DiT) that draws, captions and answers questions about Shapes-World
scenes: 64×64 images of one to three coloured circles, squares and triangles on a 3×3 grid. All three tasks
are diffusion: images by flow matching, text by unmasking tokens, and every tab shows the denoising step by
step. The **Pace** slider slows the text tabs down for watching.

The model is `assets/ddit-shapes` (its card: `assets/ddit-shapes/README.md`); it only knows the Shapes-World
vocabulary, and a prompt with other words is refused with a suggestion of what to write instead. It runs on
CPU hardware.

This folder was written by `space.py` in the ddit repository: rebuild it there rather than editing it here.
"""


def space_header(readme: Path) -> str:
    """The YAML header at the top of ``readme``: its first line ``---`` through the next ``---``, exactly."""
    lines = readme.read_text(encoding="utf-8").splitlines(keepends=True)
    if not lines or lines[0].rstrip() != "---":
        raise SystemExit(f"error: {readme} does not start with a YAML header (a first line '---')")
    for end, line in enumerate(lines[1:], start=1):
        if line.rstrip() == "---":
            return "".join(lines[:end + 1])
    raise SystemExit(f"error: {readme}: the YAML header has no closing '---' line")


def python_files(package: Path):
    """The package's .py files, without caches, stubs or tests."""
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).parts
        if "__pycache__" in parts or any(p in ("tests", "test") for p in parts[:-1]) or path.name.startswith("test_"):
            continue
        yield path


def copy_code(out: Path) -> int:
    """app.py and its tab modules, requirements.txt, the packages' .py files and the example assets; returns a count."""
    sources = [ROOT / name for name in CODE_FILES]
    sources += [path for package in PACKAGES for path in python_files(ROOT / package)]
    sources += [path for folder in DATA_FOLDERS for path in sorted((ROOT / folder).rglob("*")) if path.is_file()]
    for path in sources:
        target = out / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    (out / "README.md").write_text(space_header(ROOT / "README.md") + SPACE_README_BODY, encoding="utf-8")
    return len(sources) + 1


def model_destination(out: Path) -> Path:
    """Where the written app finds its model with no arguments: ``ddit/bundled.py``'s clone path, inside ``out``."""
    from ddit import bundled

    return out / bundled.CLONE.relative_to(ROOT)


def resave_model(model: str, dest: Path, shard_bytes: int) -> list[str]:
    """Load ``model`` on the CPU and save it to ``dest`` in shards of at most ``shard_bytes`` of tensors, then copy
    its card, benchmarks and configs; returns the names of the source folder's top-level files left out."""
    from ddit import DualDiffusionPipeline
    from ddit.model_folder import resolve_folder

    source = resolve_folder(model)
    pipe = DualDiffusionPipeline.from_pretrained(model, device="cpu")
    # DiffusionPipeline.save_pretrained hands max_shard_size to every component that takes it (diffusers'
    # ModelMixin, transformers' PreTrainedModel)
    pipe.save_pretrained(dest, max_shard_size=shard_bytes)
    keep_source_configs(source, dest)
    left_out = []
    for path in sorted(p for p in source.iterdir() if p.is_file()):
        if any(fnmatch.fnmatch(path.name, pattern) for pattern in MODEL_EXTRAS):
            shutil.copy2(path, dest / path.name)
        elif not (dest / path.name).exists():
            left_out.append(path.name)
    return left_out


def keep_source_configs(source: Path, dest: Path) -> None:
    """Only the weights are re-written: every other file ``save_pretrained`` wrote that the source also has (the
    index, configs, tokenizer and scheduler files) is replaced by the source's copy. Re-saved, the configs would
    name this machine's folders (``_name_or_path``) and add keys that loading then warns about."""
    for saved in sorted(p for p in dest.rglob("*") if p.is_file()):
        original = source / saved.relative_to(dest)
        if original.is_file() and not saved.name.endswith((".safetensors", ".safetensors.index.json")):
            shutil.copy2(original, saved)


def check_out_dir(out: Path) -> None:
    """Refuse a destination that is a file or a folder with anything in it (nothing is overwritten)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SystemExit(f"error: {out} exists and is not an empty folder; give a new or empty OUT_DIR")


def report(out: Path, limit_bytes: int, seconds: float) -> None:
    """Print the files over 1 MB, the total and the count; exit 1 naming every file over the limit."""
    files = sorted(p for p in out.rglob("*") if p.is_file())
    sizes = {p.relative_to(out).as_posix(): p.stat().st_size for p in files}
    for name, size in sizes.items():
        if size > MB:
            print(f"  {size / MB:6.2f} MB  {name}")
    print(f"{out}: {len(sizes)} files, {sum(sizes.values()) / MB:.2f} MB in total ({seconds:.1f} s)")
    over = [f"{name} ({size / MB:.2f} MB)" for name, size in sizes.items() if size > limit_bytes]
    if over:
        raise SystemExit(f"error: over the {limit_bytes / MB:g} MB limit: {', '.join(over)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the Hugging Face Space folder: app, packages, model "
                                                 "re-saved in files of at most --max-file-mb.")
    parser.add_argument("out_dir", metavar="OUT_DIR", type=Path, help="a new or empty folder")
    parser.add_argument("--model", default=str(ROOT / "assets" / "ddit-shapes"),
                        help="the pipeline folder (or Hub id) to serve (default: the bundled model)")
    parser.add_argument("--max-file-mb", type=float, default=10.0,
                        help="the largest file allowed, in MB of 10^6 bytes (default: 10, the Hub's limit)")
    args = parser.parse_args(argv)
    if not args.max_file_mb > 0:
        parser.error("--max-file-mb must be positive")
    out, limit_bytes = args.out_dir.resolve(), int(args.max_file_mb * MB)
    check_out_dir(out)
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    copied = copy_code(out)
    dest = model_destination(out)
    try:
        left_out = resave_model(args.model, dest, int(limit_bytes * SHARD_MARGIN))
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}")
    print(f"copied {copied} files of code, examples and requirements; saved the model to {dest.relative_to(out)}")
    if left_out:
        print(f"not copied from the model folder: {', '.join(left_out)}")
    report(out, limit_bytes, time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main())
