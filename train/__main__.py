"""``python -m train CONFIG [--output_dir DIR] [--max_steps N] [--resume]`` (also under ``accelerate launch``).

A mistake the user can fix (a bad config, a missing file, an unusable run folder) ends the run with one line,
``error: ...``, on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import logging

from .config import TrainConfig
from .loop import train


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m train", description="Train a D-DiT with the joint loss.")
    parser.add_argument("config", help="YAML config, e.g. train/configs/tiny.yaml")
    parser.add_argument("--output_dir", default=None, help="run folder (default: the config's output_dir)")
    parser.add_argument("--max_steps", type=int, default=None, help="override optim.max_steps")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's latest checkpoint")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per checkpoint file is noise
    try:
        cfg = TrainConfig.from_yaml(args.config)
        if args.output_dir:
            cfg.output_dir = args.output_dir
        if args.max_steps is not None:
            cfg.optim.max_steps = args.max_steps
        train(cfg, resume=args.resume)
    except (ValueError, FileNotFoundError, PermissionError) as err:  # OutputFolderError is a ValueError
        # what the user can fix (config, paths, run folder) is one line, not a traceback
        raise SystemExit(f"error: {_one_line(err)}") from None


def _one_line(err: Exception) -> str:
    """The error's message with its lines joined (a multi-line message would read as several errors)."""
    return "; ".join(line.strip() for line in str(err).splitlines() if line.strip()) or type(err).__name__


if __name__ == "__main__":
    main()
