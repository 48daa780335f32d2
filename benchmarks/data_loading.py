"""Real-data loading throughput: webdataset shards of JPEGs read by the training's ``FileSource`` with 0, 1 and 2
DataLoader workers (``data.num_workers``).

Run:  python benchmarks/data_loading.py                       (384 photos-like JPEGs, 512x384, cropped to 256)
      python benchmarks/data_loading.py --step_ms 150         (each batch also waits on a fake 150 ms train step)

The fixture is written with PIL into a temporary folder (smooth gradients plus noise, so that JPEG decoding
costs what it does on photos) and deleted afterwards. Timing starts after the first batch, so worker start-up
is reported apart ("first batch"). ``--step_ms`` keeps this process busy for that long per batch, as a
training step would: that is where workers pay, since with 0 workers decoding waits for the step and the
step for decoding. On an N-core machine expect at most about N x from workers, less the process that trains.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: run as a script
from ddit.task_defaults import TaskDefaults  # noqa: E402
from train.config import DataConfig  # noqa: E402
from train.data import FileSource  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=384, help="JPEGs in the fixture")
    p.add_argument("--shards", type=int, default=8, help="tar shards they are spread over")
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=384)
    p.add_argument("--resolution", type=int, default=256, help="data.resolution: short side resized, centre crop")
    p.add_argument("--batch", type=int, default=16, help="examples taken per call, as one micro-step")
    p.add_argument("--epochs", type=float, default=2.0, help="how much data each setting reads (timed)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--step_ms", type=float, default=0.0, help="busy time per batch, standing in for a train step")
    return p.parse_args(argv)


def fake_photo(rng: np.random.Generator, width: int, height: int) -> bytes:
    """A JPEG with the entropy of a photo: a colour gradient under noise."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], -1)
    pixels = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def write_fixture(folder: Path, args: argparse.Namespace) -> int:
    """Webdataset shards ``part-NNN.tar`` of ``key.jpg`` + ``key.txt``; returns the bytes written."""
    rng = np.random.default_rng(0)
    per_shard = -(-args.images // args.shards)
    for s in range(args.shards):
        with tarfile.open(folder / f"part-{s:03d}.tar", "w") as tar:
            for i in range(s * per_shard, min(args.images, (s + 1) * per_shard)):
                for name, data in ((f"{i:06d}.jpg", fake_photo(rng, args.width, args.height)),
                                   (f"{i:06d}.txt", f"a photo, number {i}".encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return sum(p.stat().st_size for p in folder.iterdir())


def busy(ms: float) -> None:
    """Keep this process's core busy, as a training step does (sleeping would free the core for workers)."""
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass


def measure(folder: Path, workers: int, args: argparse.Namespace) -> tuple[float, float]:
    """(seconds to the first batch, samples/s after it) reading as training does."""
    cfg = DataConfig(kind="files", path=str(folder), resolution=args.resolution, num_workers=workers)
    start = time.perf_counter()
    source = FileSource(cfg, TaskDefaults(), seed=0)
    source.examples(0, args.batch)
    first = time.perf_counter() - start
    batches = max(1, int(args.epochs * args.images / args.batch))
    start = time.perf_counter()
    for k in range(batches):
        source.examples(k + 1, args.batch)
        busy(args.step_ms)
    return first, batches * args.batch / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        size = write_fixture(folder, args)
        print(f"fixture: {args.images} JPEGs {args.width}x{args.height} in {args.shards} shards "
              f"({size / 1e6:.1f} MB), cropped to {args.resolution}; batch {args.batch}; "
              f"fake step {args.step_ms:g} ms; {os.cpu_count()} CPU cores")
        baseline = None
        for workers in args.workers:
            first, rate = measure(folder, workers, args)
            baseline = baseline or rate
            print(f"num_workers={workers}: {rate:7.1f} samples/s ({rate / baseline:.2f}x), first batch {first:.2f} s")


if __name__ == "__main__":
    main()
