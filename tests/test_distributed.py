"""Training at scale: the accelerate configs, two-process DDP and FSDP runs on CPUs (gloo) stopped mid-run and resumed
to the same weights as uninterrupted runs, DeepSpeed refused where accelerate cannot run it, gradient checkpointing."""

import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from accelerate.commands.config.config_args import ClusterConfig
from accelerate.utils import DistributedType
from safetensors.torch import load_file

from ddit.presets import build_tiny_pipeline
from train.config import TrainConfig
from train.distributed import configure

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "train" / "configs" / "tiny.yaml"
CONFIGS = ROOT / "train" / "configs" / "accelerate"


def run(strategy: str, config: Path, out: Path, *args: str) -> str:
    """``python -m train`` as two CPU processes under ``train/configs/accelerate/{strategy}.yaml``; its output."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / f"{strategy}.yaml"),
           "--num_processes", "2", "-m", "train", str(config), "--output_dir", str(out), *args]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def stop_at_step_4(strategy: str, config: Path, out: Path) -> None:
    """A run that stopped at step 4, with what a kill in the middle of the next checkpoint write leaves."""
    run(strategy, config, out, "--max_steps", "4")
    shutil.rmtree(out / "pipeline")
    (out / "checkpoints" / "step_6.partial").mkdir()
    (out / "checkpoints" / "step_6.partial" / "model.safetensors").write_bytes(b"half written")


def same_files(a: Path, b: Path, pattern: str) -> int:
    files = sorted(p.relative_to(a) for p in a.glob(pattern))
    assert files and files == sorted(p.relative_to(b) for p in b.glob(pattern))
    for name in files:
        x, y = load_file(a / name), load_file(b / name)
        assert x.keys() == y.keys()
        for key in x:
            assert torch.equal(x[key], y[key]), (name, key)
    return len(files)


def stopped_and_resumed(strategy: str, tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "tiny_every_2.yaml"
    config.write_text(f"base: {TINY}\nlog:\n  checkpoint_every: 2\n")
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    run(strategy, config, straight, "--max_steps", "8")
    stop_at_step_4(strategy, config, stopped)
    log = run(strategy, config, stopped, "--max_steps", "8", "--resume")
    assert f"resumed from {stopped / 'checkpoints' / 'step_4'} at step 4" in log
    assert not (stopped / "checkpoints" / "step_6.partial").exists()
    # the EMA weights of the final pipeline (transformer, text encoder; and the frozen VAE): a function of
    # every step's weights
    assert same_files(straight / "pipeline", stopped / "pipeline", "*/*.safetensors") == 3
    return straight, stopped


@pytest.mark.slow
def test_ddp_stopped_and_resumed_ends_with_the_same_weights(tmp_path):
    straight, stopped = stopped_and_resumed("ddp", tmp_path)
    same_files(straight / "checkpoints", stopped / "checkpoints", "step_8/model.safetensors")


@pytest.mark.slow
def test_fsdp_shards_stopped_and_resumed_ends_with_the_same_weights(tmp_path):
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    straight, stopped = stopped_and_resumed("fsdp", tmp_path)
    step = stopped / "checkpoints" / "step_8"
    # sharded: one file per process for the model, the optimizer and the EMA, no whole-model file
    for folder in ("pytorch_model_fsdp_0", "optimizer_0", "ema_shards"):
        assert len(list((step / folder).glob("*.distcp"))) == 2, folder
    assert not (step / "model.safetensors").exists()
    models = []
    for run_folder in (straight, stopped):
        dcp_to_torch_save(run_folder / "checkpoints" / "step_8" / "pytorch_model_fsdp_0", tmp_path / "model.pt")
        models.append(torch.load(tmp_path / "model.pt", weights_only=True)["model"])
    assert models[0].keys() == models[1].keys() and len(models[0]) > 50
    assert all(torch.equal(models[0][k], models[1][k]) for k in models[0])


@pytest.mark.parametrize("name, kind", [("ddp", "MULTI_GPU"), ("fsdp", "FSDP"), ("deepspeed_zero2", "DEEPSPEED")])
def test_accelerate_configs_load(name, kind):
    config = ClusterConfig.from_yaml_file(CONFIGS / f"{name}.yaml")
    assert config.distributed_type == DistributedType[kind] and config.mixed_precision == "no"
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_version"] == 2
        assert config.fsdp_config["fsdp_state_dict_type"] == "SHARDED_STATE_DICT"
    if kind == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == 2
        # set from the training config by the loop: a value here would override optim.grad_accum
        assert not {"gradient_accumulation_steps", "gradient_clipping"} & set(config.deepspeed_config)


def test_deepspeed_on_cpu_is_refused_not_run_as_ddp(monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    accelerator = SimpleNamespace(distributed_type=DistributedType.MULTI_CPU)
    with pytest.raises(ValueError, match="DeepSpeed"):
        configure(accelerator, torch.nn.Linear(2, 2), TrainConfig())


def test_what_fsdp_cannot_train_is_refused_before_training():
    accelerator = SimpleNamespace(distributed_type=DistributedType.FSDP)
    cfg = TrainConfig()
    cfg.model.train_text_encoder = "mask_embedding"
    with pytest.raises(ValueError, match="mask_embedding"):
        configure(accelerator, torch.nn.Linear(2, 2), cfg)


def test_gradient_checkpointing_gives_the_same_loss_and_gradients():
    pipe = build_tiny_pipeline(seed=0)
    transformer = pipe.transformer.eval()  # no dropout: both passes see the same function
    side = transformer.config.sample_size
    torch.manual_seed(0)
    latents = torch.randn(2, transformer.config.in_channels, side, side)
    context = pipe.text_encoder(input_ids=torch.randint(0, len(pipe.tokenizer), (2, 6))).last_hidden_state.detach()
    results = []
    for checkpointing in (False, True):
        transformer.zero_grad()
        if checkpointing:
            transformer.enable_gradient_checkpointing()
            calls, inner = [], transformer._gradient_checkpointing_func
            transformer._gradient_checkpointing_func = lambda *a, **k: calls.append(1) or inner(*a, **k)
        out = transformer(latents, context, torch.tensor([500.0, 10.0]))
        loss = out.sample.pow(2).mean() + out.logits.float().logsumexp(-1).mean()
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in transformer.parameters() if p.grad is not None]))
    assert len(calls) == transformer.config.num_layers  # every block went through the checkpointed path
    assert torch.allclose(results[0][0], results[1][0])
    assert len(results[0][1]) == len(results[1][1]) > 10
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(results[0][1], results[1][1]))
