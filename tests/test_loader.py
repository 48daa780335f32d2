"""Real data through DataLoader workers (train/loader.py): the same samples in the same order with any number of
workers, each sample once per epoch across processes, exact resume, and corrupt images keeping their slot."""

import io
import random
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ddit.task_defaults import TaskDefaults
from train.config import DataConfig
from train.data import FileSource, collate
from train.loader import FileStream, open_stream
from train.readers import open_dataset

N = 11  # records: not a multiple of 2 processes x 2 workers, so the shares differ in length


def write_shards(folder: Path, n: int = N, per_shard: int = 4, corrupt: tuple[int, ...] = ()) -> Path:
    """Webdataset shards of n JPEGs (20x12, a colour per record) captioned "sample i"."""
    folder.mkdir(parents=True, exist_ok=True)
    for first in range(0, n, per_shard):
        with tarfile.open(folder / f"part-{first // per_shard:03d}.tar", "w") as tar:
            for i in range(first, min(n, first + per_shard)):
                buf = io.BytesIO()
                Image.new("RGB", (20, 12), (20 * i, 255 - 20 * i, 7 * i)).save(buf, "JPEG", quality=95)
                image = b"not a jpeg" if i in corrupt else buf.getvalue()
                for name, data in ((f"{i:04d}.jpg", image), (f"{i:04d}.txt", f"sample {i}".encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return folder


def data_config(path: Path, workers: int = 0, buffer: int = 4) -> DataConfig:
    return DataConfig(kind="files", path=str(path), resolution=8, shuffle_buffer=buffer, num_workers=workers)


def responses(source: FileSource, n: int) -> list[str]:
    return [e.response for e in source.examples(0, n)]


def source(path: Path, workers: int = 0, rank: int = 0, world: int = 1) -> FileSource:
    return FileSource(data_config(path, workers), TaskDefaults(), seed=3, process_index=rank, num_processes=world)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return write_shards(tmp_path_factory.mktemp("wds"))


def test_every_sample_once_per_epoch_in_one_order_whatever_the_workers(shards):
    in_process = responses(source(shards), 3 * N)
    assert in_process != sorted(in_process)  # shuffled
    for epoch in range(3):
        assert sorted(in_process[epoch * N:(epoch + 1) * N]) == sorted(f"sample {i}" for i in range(N))
    assert responses(source(shards, workers=1), 3 * N) == in_process
    assert responses(source(shards, workers=2), 3 * N) == in_process


def test_two_processes_share_each_epoch_and_their_workers_change_nothing(shards):
    for workers in (0, 2):
        ranks = [source(shards, workers, rank=r, world=2) for r in (0, 1)]
        first, second = responses(ranks[0], (N + 1) // 2), responses(ranks[1], N // 2)
        assert sorted(first + second) == sorted(f"sample {i}" for i in range(N))  # each once, none left out
        if workers == 0:
            expected = (first, second)
        assert (first, second) == expected


def test_the_order_is_the_one_in_process_runs_have_always_had(shards):
    # the order before DataLoader workers (a rank's every world-th sample, a seeded shuffle buffer): checkpoints
    # written then resume onto the same data
    reader, seed, rank, world, size = open_dataset(str(shards)), 3, 1, 2, 4
    rng, buffer, old = random.Random(seed * 1_000_003), [], []
    for i, sample in enumerate(reader):
        if i % world == rank:
            buffer.append(sample.response)
            if len(buffer) >= size:
                old.append(buffer.pop(rng.randrange(len(buffer))))
    rng.shuffle(buffer)
    assert responses(source(shards, 2, rank, world), N // 2) == old + buffer


def test_resume_mid_epoch_with_workers_continues_exactly(shards):
    straight = source(shards, workers=2)
    responses(straight, 7)  # mid-epoch, and not a multiple of the worker count
    expected = responses(straight, 2 * N)
    for workers in (2, 0):  # a checkpoint resumes the same with more or fewer workers
        resumed = source(shards, workers)
        resumed.load_state(straight.state() | {"consumed": 7})
        assert responses(resumed, 2 * N) == expected
        assert resumed.state() == {"consumed": 7 + 2 * N}


def test_workers_decode_and_resize_the_same_pixels(shards):
    from ddit.word_tokenizer import build_word_tokenizer
    tokenizer = build_word_tokenizer(["sample"] + [str(i) for i in range(N)])
    cfg = data_config(shards)
    batches = [collate(source(shards, workers).examples(0, 6), tokenizer, cfg) for workers in (0, 2)]
    assert batches[0].pixels.shape == (6, 3, 8, 8)
    assert np.array_equal(batches[0].pixels.numpy(), batches[1].pixels.numpy())


def test_a_corrupt_image_keeps_its_slot_so_workers_stay_in_step(tmp_path):
    path = write_shards(tmp_path / "wds", corrupt=(2, 5))
    in_process, workers = source(path), source(path, workers=2)
    a, b = responses(in_process, N - 2), responses(workers, N - 2)
    assert a == b and sorted(a) == sorted(f"sample {i}" for i in range(N) if i not in (2, 5))
    assert in_process.state() == workers.state() == {"consumed": N}  # positions, undecodable ones included


def test_worker_shards_partition_the_stream(shards):
    cfg = data_config(shards)
    whole = [s.response for s, _ in zip(open_stream(FileStream(cfg, seed=3, start=5), 0), range(N))]
    merged = [s.response for s, _ in zip(open_stream(FileStream(cfg, seed=3, start=5), 2), range(N))]
    assert merged == whole


def test_negative_workers_is_an_error(shards):
    with pytest.raises(ValueError, match="num_workers"):
        source(shards, workers=-1)


@pytest.mark.slow
def test_training_on_files_with_workers_resumes_to_the_same_weights(tmp_path, shards):
    import torch
    from safetensors.torch import load_file

    from train.config import TrainConfig
    from train.loop import train

    def config(out: Path, steps: int, workers: int) -> TrainConfig:
        cfg = TrainConfig.from_yaml(Path(__file__).resolve().parent.parent / "train" / "configs" / "tiny.yaml")
        cfg.output_dir, cfg.optim.max_steps, cfg.log.checkpoint_every = str(out), steps, 2
        cfg.data.kind, cfg.data.path, cfg.data.num_workers, cfg.data.shuffle_buffer = "files", str(shards), workers, 4
        return cfg

    train(config(tmp_path / "straight", 6, workers=0))
    train(config(tmp_path / "halves", 3, workers=2))  # 3 x 8 samples: stops mid-epoch (11 records)
    train(config(tmp_path / "halves", 6, workers=2), resume=True)
    a, b = (load_file(tmp_path / run / "checkpoints" / "step_6" / "model.safetensors") for run in ("straight", "halves"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
