"""The Shapes-World VAE trainer: loss falls, the saved folder loads with its latent factors, configs are strict."""

import json
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL

from train.vae import VAEConfig, build_vae, fit, latent_stats, lr_at, train_vae

REPO = Path(__file__).resolve().parents[1]


def tiny_config(**overrides) -> VAEConfig:
    """2 levels of 8/16 channels on the real 64x64 renders: a training step takes a few ms."""
    fields = dict(block_out_channels=(8, 16), norm_num_groups=4, mid_block_add_attention=False, steps=24,
                  batch_size=4, lr=3e-3, warmup_steps=2, log_every=6, stats_images=16, eval_images=4,
                  eval_batch_size=8, seed=0)
    return VAEConfig(**{**fields, **overrides})


@pytest.mark.slow  # 24 training steps, latent statistics and a judged evaluation
def test_training_lowers_loss_and_saves_a_loadable_vae(tmp_path):
    torch.manual_seed(0)
    config = tiny_config()
    vae = train_vae(config, tmp_path)
    report = json.loads((tmp_path / "vae_report.json").read_text())
    losses = [entry["loss"] for entry in report["history"]]
    assert len(losses) == config.steps // config.log_every
    assert losses[-1] < 0.5 * losses[0], losses
    assert report["steps"] == config.steps and report["final_loss"] == losses[-1]
    for key in ("judge_accuracy_recon", "judge_accuracy_ground_truth"):
        assert 0.0 <= report[key] <= 1.0
    assert report["judge_accuracy_ground_truth"] == 1.0  # the judge reads clean renders

    loaded = AutoencoderKL.from_pretrained(tmp_path)
    assert loaded.config.scaling_factor == pytest.approx(report["scaling_factor"])
    assert loaded.config.shift_factor == pytest.approx(report["shift_factor"])
    assert loaded.config.scaling_factor != 0.18215  # not diffusers' default (SD1's factor)
    for name, tensor in vae.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor)

    # latents = (z - shift) * scale have zero mean and unit variance on the statistics images
    stats = latent_stats(loaded, config, torch.device("cpu"))
    assert (stats["mean"] - loaded.config.shift_factor) * loaded.config.scaling_factor == pytest.approx(0, abs=1e-4)
    assert stats["std"] * loaded.config.scaling_factor == pytest.approx(1.0, rel=1e-4)


def test_training_is_deterministic_given_the_seed():
    config = tiny_config(steps=4, log_every=2)
    runs = []
    for _ in range(2):
        vae = build_vae(config)
        runs.append(([e["loss"] for e in fit(vae, config, torch.device("cpu"))], vae.state_dict()))
    assert runs[0][0] == runs[1][0]
    for name, tensor in runs[0][1].items():
        torch.testing.assert_close(runs[1][1][name], tensor, rtol=0, atol=0)


def test_unknown_yaml_keys_raise(tmp_path):
    path = tmp_path / "vae.yaml"
    path.write_text("steps: 10\nstpes: 20\n")
    with pytest.raises(ValueError, match="stpes"):
        VAEConfig.from_yaml(path)


def test_yaml_values_load_and_are_checked(tmp_path):
    path = tmp_path / "vae.yaml"
    path.write_text("block_out_channels: [16, 32]\nnorm_num_groups: 8\nsteps: 7\n")
    config = VAEConfig.from_yaml(path)
    assert config.block_out_channels == (16, 32) and config.steps == 7 and config.lr == VAEConfig().lr
    path.write_text("block_out_channels: [16, 24]\nnorm_num_groups: 16\n")
    with pytest.raises(ValueError, match="norm_num_groups"):
        VAEConfig.from_yaml(path)


def test_shipped_config_loads():
    config = VAEConfig.from_yaml(REPO / "train/configs/vae_shapes.yaml")
    assert config.block_out_channels == (32, 64, 64) and config.latent_channels == 4


def test_lr_warms_up_then_decays_to_the_floor():
    config = VAEConfig(steps=100, warmup_steps=10, lr=1e-3, min_lr_ratio=0.1)
    assert lr_at(0, config) == pytest.approx(1e-4)
    assert lr_at(9, config) == pytest.approx(1e-3)
    assert lr_at(50, config) < 1e-3
    assert lr_at(100, config) == pytest.approx(1e-4)
