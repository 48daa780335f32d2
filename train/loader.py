"""Real image–text data for training: one deterministic order, read in this process or by DataLoader workers.

The order is a function of (seed, process index, process count) only, never of the number of workers:
- each epoch, process ``r`` of ``world`` takes every ``world``-th record of the reader (images still
  undecoded) and passes them through a shuffle buffer seeded by (seed, epoch); epochs follow each other;
- with ``W`` workers, worker ``w`` takes positions ``start + w``, ``start + w + W``, ... of that stream and
  decodes (and resizes) only those. A ``DataLoader`` asks its workers in turn, so it hands them back in
  stream order: the same examples, in the same order, as reading in this process.

A position is one record, decodable or not: an image that fails to decode yields ``None`` in its slot, so
that every worker keeps its turn and ``consumed`` (positions taken, the data position in checkpoints) means
the same with any number of workers. Resuming at ``start`` replays the records before it without decoding.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Iterator

from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ddit.image_inputs import resize_and_center_crop

from .config import DataConfig
from .readers import Reader, Sample, SkipCounter, decode_sample, open_dataset

# consecutive undecodable records after which the data is declared unusable (else an all-corrupt
# dataset would be read forever); far more than any real run has in a row
MAX_BAD_IN_A_ROW = 100_000


def rank_records(reader: Reader, seed: int, rank: int, world: int, buffer: int,
                 report: bool = True) -> Iterator[Sample]:
    """Process ``rank``'s records, epoch after epoch, images undecoded (see the module docstring); with
    ``report``, what the reader skipped is logged (the first few records, then a summary each epoch)."""
    stats = SkipCounter(reader.name, log_first=5 if report else 0)
    epoch = 0
    while True:
        rng = random.Random(seed * 1_000_003 + epoch)
        pool: list[Sample] = []
        kept = 0
        for i, sample in enumerate(reader.undecoded(stats)):
            if i % world != rank:
                continue
            kept += 1
            pool.append(sample)
            if len(pool) >= max(1, buffer):
                yield pool.pop(rng.randrange(len(pool)))
        if report:
            stats.log_summary()
        rng.shuffle(pool)
        yield from pool
        if kept == 0:
            raise ValueError(f"No usable samples in {reader.name} for process {rank}.")
        epoch += 1


class FileStream(IterableDataset):
    """One process's samples from position ``start`` on, images resized to ``cfg.resolution`` (``None`` for an
    undecodable one); sharded over DataLoader workers when iterated inside one."""

    def __init__(self, cfg: DataConfig, seed: int, rank: int = 0, world: int = 1, start: int = 0):
        super().__init__()
        self.cfg, self.seed, self.rank, self.world, self.start = cfg, seed, rank, world, start
        self.reader = open_dataset(cfg.path)

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        decode_stats = SkipCounter(self.reader.name)  # each worker logs the images it fails to decode
        side = self.cfg.resolution
        # every worker reads every record (cheap, undecoded); only the first reports what the reader skipped
        records = rank_records(self.reader, self.seed, self.rank, self.world, self.cfg.shuffle_buffer,
                               report=worker == 0)
        for k, record in enumerate(records):
            if k >= self.start and (k - self.start) % workers == worker:
                sample = decode_sample(record, decode_stats)
                # resized here, in the worker, so that only a small image travels (collate's own step: same result)
                yield None if sample is None else replace(sample, image=resize_and_center_crop(sample.image, side))


def _as_is(item):
    """The DataLoader's per-item conversion: none (samples hold PIL images, not tensors)."""
    return item


def open_stream(stream: FileStream, num_workers: int) -> Iterator:
    """Iterate ``stream`` here (0) or through a ``DataLoader`` with ``num_workers`` decoding processes."""
    if num_workers < 0:
        raise ValueError(f"data.num_workers must be 0 or more, got {num_workers}")
    if num_workers == 0:
        return iter(stream)
    # batch_size=None: items one by one, in worker turn order (the DataLoader's in-order default)
    return iter(DataLoader(stream, batch_size=None, num_workers=num_workers, collate_fn=_as_is))
