"""Evaluation on several processes (``accelerate launch --num_processes N -m evaluation.<name>``): whole batches
dealt out by rank, one predictions file per process, merged and scored once by the main process, into the same
predictions as one process; resumable from any of the files, with any number of processes."""

import json
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import evaluation_data
import pytest
from evaluation_data import ten, vqav2_args, write_vqav2

from evaluation import vqav2
from evaluation.harness import DataError, Item
from evaluation.harness.batches import share_of_batches
from evaluation.harness.processes import process_device
from evaluation.harness.store import PredictionStore, merge_predictions, shard_paths, stored_predictions

ROOT = Path(__file__).resolve().parent.parent
DDP = ROOT / "train" / "configs" / "accelerate" / "ddp.yaml"  # without GPUs: CPU processes over gloo
QUESTIONS = ["what color is the circle?", "what shape is there?", "how many squares?", "is it red?",
             "what is at the top?", "is there a triangle?", "what is on the left?"]
ROWS = [(201 + i, 1 + i, q, ten(("red", 4), ("blue", 6)), "other") for i, q in enumerate(QUESTIONS)]
OPTIONS = ("--batch", "2", "--steps", "2", "--device", "cpu")  # 7 items: batches of 2, 2, 2 and 1

tiny_model = evaluation_data.tiny_model  # the fixture (assigned, not imported: no F811 for each test using it)


def line(key: str, prediction: str) -> str:
    return json.dumps({"key": key, "prediction": prediction}) + "\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(paths, model: Path, out: Path, processes: int = 2) -> str:
    """``evaluation.vqav2`` as ``processes`` CPU processes under accelerate; its output."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(DDP),
           "--num_processes", str(processes), "--main_process_port", str(free_port()),
           "-m", "evaluation.vqav2", *vqav2_args(paths, model, out, *OPTIONS)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def keys(path: Path) -> list[str]:
    return [json.loads(text)["key"] for text in path.read_text().splitlines()]


def test_batches_are_dealt_round_robin_and_whole():
    items = [Item(key=str(i), prompt="q") for i in range(9)]  # batches of 2: 0-1, 2-3, 4-5, 6-7, 8
    done = {"2": "x", "3": "x", "4": "x"}  # batch 1 finished, batch 2 half finished
    shares = [share_of_batches(items, 2, done, rank, 2) for rank in range(2)]
    assert [[index for index, _ in share] for share in shares] == [[0, 3], [2, 4]]
    assert [key.key for _, chunk in shares[1] for key in chunk] == ["4", "5", "8"]  # whole batches, as one process
    assert [index for index, _ in share_of_batches(items, 2, done, 0, 1)] == [0, 1, 2, 3, 4]
    assert share_of_batches(items, 2, done, 4, 5) == []  # more processes than batches left: nothing to do


def test_stored_predictions_read_every_file_and_merge_in_the_data_order(tmp_path):
    (tmp_path / "predictions.jsonl").write_text(line("3", "c"))
    (tmp_path / "predictions.rank1.jsonl").write_text(line("2", "b") + line("9", "z"))
    (tmp_path / "predictions.rank10.jsonl").write_text(line("3", "other"))
    (tmp_path / "predictions.rank0.jsonl").write_text(line("1", "a") + '{"key": "4", "predi')  # cut short by a kill
    (tmp_path / "predictions.ranks.jsonl").write_text("not a shard")
    assert [p.name for p in shard_paths(tmp_path)] == [
        "predictions.rank0.jsonl", "predictions.rank1.jsonl", "predictions.rank10.jsonl"]
    assert stored_predictions(tmp_path) == {"3": "c", "1": "a", "2": "b", "9": "z"}  # first found wins
    assert (tmp_path / "predictions.rank0.jsonl").read_text().endswith('"predi')  # reading changes nothing
    assert merge_predictions(tmp_path, ["1", "2", "3", "4"]) == {"1": "a", "2": "b", "3": "c", "9": "z"}
    assert (tmp_path / "predictions.jsonl").read_text() == line("1", "a") + line("2", "b") + line("3", "c") + \
        line("9", "z")
    assert not list(tmp_path.glob("*.partial"))
    assert PredictionStore(tmp_path / "predictions.rank0.jsonl").load() == {"1": "a"}  # the owner drops the cut


def test_each_process_takes_its_own_device():
    state = SimpleNamespace(num_processes=2, device="cuda:1")
    assert process_device(state, None) == "cuda:1" and process_device(state, "cuda") == "cuda:1"
    with pytest.raises(DataError, match="--device cuda:0: in a run of 2 processes each uses its own device"):
        process_device(state, "cuda:0")
    assert process_device(SimpleNamespace(num_processes=1, device="cuda"), "cuda:3") == "cuda:3"  # as given


def test_one_process_resumes_what_several_left(tmp_path, tiny_model):
    """A run of several processes stopped before merging; one process predicts only the rest and merges."""
    paths = write_vqav2(tmp_path, ROWS)
    whole = vqav2.main(vqav2_args(paths, tiny_model, tmp_path / "whole", *OPTIONS))
    lines = (tmp_path / "whole" / "predictions.jsonl").read_text().splitlines(keepends=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "settings.json").write_text((tmp_path / "whole" / "settings.json").read_text())
    (out / "predictions.rank0.jsonl").write_text(lines[0] + lines[1])  # batch 0
    (out / "predictions.rank1.jsonl").write_text(lines[2] + lines[3] + lines[4][:10])  # batch 1, a cut line
    results = vqav2.main(vqav2_args(paths, tiny_model, out, *OPTIONS))
    assert (out / "predictions.jsonl").read_text() == "".join(lines)  # the same predictions, in the data's order
    assert results["metrics"] == whole["metrics"]
    assert (out / "predictions.rank1.jsonl").read_text().endswith(lines[4][:10])  # the shards as they were


@pytest.mark.slow
def test_two_processes_predict_what_one_does(tmp_path, tiny_model):
    paths = write_vqav2(tmp_path, ROWS)
    one = vqav2.main(vqav2_args(paths, tiny_model, tmp_path / "one", *OPTIONS))
    out = tmp_path / "two"
    log = launch(paths, tiny_model, out)
    merged = (out / "predictions.jsonl").read_text()
    assert merged == (tmp_path / "one" / "predictions.jsonl").read_text()  # byte for byte: same batches, same seeds
    assert keys(out / "predictions.jsonl") == [str(r[0]) for r in ROWS]  # one line per item, in the data's order
    # batches 0 and 2 on process 0, batches 1 and 3 on process 1: each item predicted once
    assert keys(out / "predictions.rank0.jsonl") == ["201", "202", "205", "206"]
    assert keys(out / "predictions.rank1.jsonl") == ["203", "204", "207"]
    assert log.count("settings:\n") == 1 and log.count(f"wrote {out / 'results.json'}") == 1  # the main's alone
    results = json.loads((out / "results.json").read_text())
    assert results["metrics"] == one["metrics"] and results["items"] == len(ROWS)
    assert results["settings"]["processes"] == 2
    assert json.loads((out / "submission.json").read_text()) == json.loads(
        (tmp_path / "one" / "submission.json").read_text())


@pytest.mark.slow
def test_two_processes_resume_what_three_left(tmp_path, tiny_model):
    """An earlier run of three processes stopped after batches 0 and 1, one line cut short: two processes
    predict only batches 2 and 3 and end with the predictions of one uninterrupted process."""
    paths = write_vqav2(tmp_path, ROWS)
    vqav2.main(vqav2_args(paths, tiny_model, tmp_path / "one", *OPTIONS))
    lines = (tmp_path / "one" / "predictions.jsonl").read_text().splitlines(keepends=True)
    out = tmp_path / "out"
    out.mkdir()
    settings = json.loads((tmp_path / "one" / "settings.json").read_text())
    (out / "settings.json").write_text(json.dumps({**settings, "processes": 3}))
    (out / "predictions.rank0.jsonl").write_text(lines[0] + lines[1])
    (out / "predictions.rank1.jsonl").write_text(lines[2] + lines[3])
    (out / "predictions.rank2.jsonl").write_text(lines[4][:12])  # batch 2's first line, cut short by the kill
    launch(paths, tiny_model, out)
    assert (out / "predictions.jsonl").read_text() == "".join(lines)
    assert keys(out / "predictions.rank0.jsonl") == ["201", "202", "205", "206"]  # batch 2 added to rank 0's
    assert keys(out / "predictions.rank1.jsonl") == ["203", "204", "207"]  # batch 3 added to rank 1's
    assert json.loads((out / "results.json").read_text())["complete"]
