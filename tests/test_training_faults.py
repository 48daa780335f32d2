"""Training faults: a kill while a checkpoint is written costs only the steps since the last complete one,
and a run folder that cannot hold the run stops it before any training, in one line."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file

from train.checkpoints import OutputFolderError, checkpoints, latest_checkpoint, save_checkpoint
from train.config import TrainConfig
from train.loop import train

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "train" / "configs" / "tiny.yaml"

# Runs `python -m train ARGS` with accelerate's file writer wrapped so that, once the first file of
# checkpoint step_{step} is written, the process SIGKILLs itself: the rest of that checkpoint never arrives.
KILL_MID_CHECKPOINT = '''
import os, signal, sys
from pathlib import Path

import accelerate.checkpointing
from train.__main__ import main

real_save = accelerate.checkpointing.save


def save_then_die(obj, f, *args, **kwargs):
    real_save(obj, f, *args, **kwargs)
    if Path(f).parent.name.startswith("step_{step}"):
        os.kill(os.getpid(), signal.SIGKILL)


accelerate.checkpointing.save = save_then_die
main(sys.argv[1:])
'''


def fault_config(tmp_path: Path) -> Path:
    """Tiny, 8 steps, a checkpoint every 4 and a metrics record every step, as a YAML file."""
    path = tmp_path / "faults.yaml"
    path.write_text(f"base: {TINY}\noptim: {{max_steps: 8}}\n"
                    "log: {log_every: 1, checkpoint_every: 4, sample_every: 1000}\n")
    return path


def curve(run: Path) -> list[tuple]:
    """(step, losses, lr) of each metrics record: what must not depend on timing."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss_image"], r["loss_text"], r["lr"]) for r in records]


def run_cli(*args: str, script: Path | None = None) -> subprocess.CompletedProcess:
    entry = [str(script)] if script else ["-m", "train"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # a script's own folder, not ROOT, is first on its path
    return subprocess.run([sys.executable, *entry, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.slow
def test_kill_while_writing_a_checkpoint_resumes_from_the_last_complete_one(tmp_path, caplog):
    config = fault_config(tmp_path)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    cfg = TrainConfig.from_yaml(config)
    cfg.output_dir = str(straight)
    train(cfg)

    script = tmp_path / "kill_mid_checkpoint.py"
    script.write_text(KILL_MID_CHECKPOINT.replace("{step}", "8"))
    result = run_cli(str(config), "--output_dir", str(killed), script=script)
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    partial = killed / "checkpoints" / "step_8.partial"
    assert (partial / "model.safetensors").is_file() and not (partial / "optimizer.bin").exists()
    assert latest_checkpoint(killed) == killed / "checkpoints" / "step_4"

    cfg.output_dir = str(killed)
    train(cfg, resume=True)  # what `python -m train CONFIG --resume` runs
    assert "unfinished checkpoint" in caplog.text and not partial.exists()
    assert [p.name for p in checkpoints(killed)] == ["step_4", "step_8"]
    a = load_file(straight / "checkpoints" / "step_8" / "model.safetensors")
    b = load_file(killed / "checkpoints" / "step_8" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the records of steps 5-8 logged before the kill are replaced by the redone steps' records, which are
    # the straight run's
    assert [c[0] for c in curve(killed)] == list(range(1, 9))
    assert curve(killed) == curve(straight)


def test_latest_checkpoint_never_picks_a_partial_folder(tmp_path):
    folder = tmp_path / "checkpoints"
    for name in ["step_4", "step_10", "step_12.partial", "step_20.partial", "step_x"]:
        (folder / name).mkdir(parents=True)
    (folder / "step_30").write_text("")  # a file, not a checkpoint
    assert [p.name for p in checkpoints(tmp_path)] == ["step_4", "step_10"]
    assert latest_checkpoint(tmp_path) == folder / "step_10"
    assert latest_checkpoint(tmp_path / "missing") is None


def test_save_checkpoint_renames_when_done_removes_leftovers_and_prunes(tmp_path, caplog):
    accelerator = Accelerator(cpu=True)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model, optimizer = accelerator.prepare(model, optimizer)
    stale = tmp_path / "checkpoints" / "step_3.partial"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half")
    for step in (1, 2, 3):
        save_checkpoint(accelerator, tmp_path, step, keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_2", "step_3"]
    assert "step_3.partial" in caplog.text
    weights = load_file(tmp_path / "checkpoints" / "step_3" / "model.safetensors")
    assert torch.equal(weights["weight"], model.weight.detach())


def tiny(out: Path) -> TrainConfig:
    cfg = TrainConfig.from_yaml(TINY)
    cfg.output_dir, cfg.optim.max_steps = str(out), 1
    return cfg


def test_output_folder_under_a_file_fails_at_start(tmp_path):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "run"
    with pytest.raises(OutputFolderError, match=re.escape(f"{out} cannot be created")):
        train(tiny(out))


def test_read_only_output_folder_fails_at_start(tmp_path):
    out = tmp_path / "read_only"
    out.mkdir()
    out.chmod(0o500)
    try:
        if os.access(out, os.W_OK):
            pytest.skip("running as root: a 0o500 folder is still writable, so there is nothing to refuse")
        with pytest.raises(OutputFolderError, match=re.escape(f"{out} is not writable: Permission denied")):
            train(tiny(out))
        with pytest.raises(OutputFolderError, match=re.escape(f"{out / 'run'} cannot be created: Permission")):
            train(tiny(out / "run"))
    finally:
        out.chmod(0o700)


def test_too_little_free_space_fails_before_training(tmp_path, monkeypatch):
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=100_000))
    message = f"output folder {tmp_path} has 100.0 KB free, but one checkpoint needs"
    with pytest.raises(OutputFolderError, match=re.escape(message)):
        train(tiny(tmp_path))
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_cli_reports_a_bad_output_folder_in_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "run"
    result = run_cli(str(TINY), "--output_dir", str(out), "--max_steps", "1")
    assert result.returncode != 0
    message = f"error: output folder {out} cannot be created: {tmp_path / 'file'} is a file, not a folder"
    assert result.stderr.splitlines() == [message]  # one line: no traceback, no log noise
