"""Training configs: strict YAML, ``base:`` inheritance, sampling settings derived from the data."""

import subprocess
from pathlib import Path

import pytest

from train.config import TrainConfig, load_yaml
from train.preview_decoder import PreviewDecoderConfig
from train.vae import VAEConfig

ROOT = Path(__file__).resolve().parent.parent


def write(path, text: str):
    path.write_text(text)
    return path


def test_base_is_updated_key_by_key_and_mappings_are_replaced_whole(tmp_path):
    write(tmp_path / "parent.yaml", "seed: 3\ndata:\n  caption_fraction: 0.4\n  text_length: 40\n"
                                    "  question_weights: {color: 2, exists: 3}\noptim:\n  lr: 0.1\n")
    child = write(tmp_path / "child.yaml", "base: parent.yaml\ndata:\n  text_length: 50\n"
                                           "  question_weights: {size: 1}\n")
    cfg = TrainConfig.from_yaml(child)
    assert (cfg.seed, cfg.optim.lr, cfg.data.caption_fraction) == (3, 0.1, 0.4)  # inherited
    assert cfg.data.text_length == 50 and cfg.data.question_weights == {"size": 1}  # changed; mapping replaced


def test_base_chains_and_unknown_keys_name_the_file(tmp_path):
    write(tmp_path / "a.yaml", "optim:\n  lr: 0.5\n")
    write(tmp_path / "b.yaml", "base: a.yaml\noptim:\n  max_steps: 7\n")
    c = write(tmp_path / "c.yaml", "base: b.yaml\nlog:\n  log_every: 2\n")
    cfg = TrainConfig.from_yaml(c)
    assert (cfg.optim.lr, cfg.optim.max_steps, cfg.log.log_every) == (0.5, 7, 2)
    bad = write(tmp_path / "bad.yaml", "base: a.yaml\nloss:\n  lambda: 1\n")
    with pytest.raises(ValueError, match="lambda"):
        TrainConfig.from_yaml(bad)


def test_image_solver_is_checked_when_the_config_loads(tmp_path):
    cfg = TrainConfig.from_yaml(write(tmp_path / "ok.yaml", "image_solver: {solver: dpm++2m, shift: 2.0}\n"))
    assert cfg.image_solver == {"solver": "dpm++2m", "shift": 2.0}
    for bad, message in (("{solver: rk4}", "Unknown solver"), ("{solver: euler, shift: -1}", "shift"),
                         ("{solver: euler, order: 3}", "order")):
        with pytest.raises(ValueError, match=message):
            TrainConfig.from_yaml(write(tmp_path / "bad.yaml", f"image_solver: {bad}\n"))


def test_sampling_settings_follow_the_data(tmp_path):
    cfg = TrainConfig.from_yaml(write(tmp_path / "c.yaml", "data:\n  resolution: 32\n  text_length: 40\n"
                                                            "  prompt_length: 20\ntask_defaults:\n  answer_length: 5\n"))
    d = cfg.sampling_defaults()
    assert (d["resolution"], d["max_sequence_length"], d["max_prompt_length"]) == (32, 20, 39)
    assert d["caption_length"] == 40 and d["answer_length"] == 5
    with pytest.raises(ValueError, match="data.prompt_length"):
        TrainConfig.from_yaml(write(tmp_path / "d.yaml", "task_defaults:\n  max_sequence_length: 9\n"))


def test_vae_config_uses_the_same_strict_loader(tmp_path):
    assert load_yaml(VAEConfig, write(tmp_path / "v.yaml", "steps: 3\nblock_out_channels: [16, 32]\n")).steps == 3
    assert VAEConfig.from_yaml(tmp_path / "v.yaml").block_out_channels == (16, 32)
    with pytest.raises(ValueError, match="stepz"):
        VAEConfig.from_yaml(write(tmp_path / "w.yaml", "stepz: 3\n"))


CONFIGS = ROOT / "train" / "configs"  # its accelerate/ folder holds accelerate's own configs


@pytest.mark.parametrize("path", sorted([*CONFIGS.glob("*.yaml"), *CONFIGS.glob("ablations/*.yaml")]),
                         ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_shipped_config_loads(path):
    if path.name.startswith("vae"):  # the VAE trainer's own schema (train/vae.py)
        assert VAEConfig.from_yaml(path).steps > 0
    elif path.name.startswith("preview_decoder"):  # the preview decoder's (train/preview_decoder.py)
        assert PreviewDecoderConfig.from_yaml(path).steps > 0
    else:
        cfg = TrainConfig.from_yaml(path)
        assert cfg.optim.max_steps > 0 and cfg.sampling_defaults()["resolution"] == cfg.data.resolution


def test_unknown_config_key_is_an_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  learning_rate: 1.0\n")
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig.from_yaml(bad)


def test_stage_configs_follow_the_paper():
    s1, s2, s3 = (TrainConfig.from_yaml(ROOT / "train" / "configs" / f) for f in
                  ("stage1_dual_pretrain.yaml", "stage2_continued.yaml", "stage3_instruct.yaml"))
    assert (s1.optim.lr, s1.optim.warmup_steps, s1.loss.text_weight, s1.optim.max_steps) == (5e-5, 5000, 0.2, 60000)
    assert s1.model.init.startswith("sd3:") and s1.model.train_text_encoder == "none"
    assert s2.model.train_text_encoder == "mask_embedding" and s2.loss.text_weight == 1.0
    assert (s2.optim.lr, s2.data.text_length, s3.loss.image_weight) == (3e-5, 256, 0.0)
    assert s3.task_defaults["question_template"] == "Q: {question} A: "
    for cfg in (s1, s2, s3):
        assert cfg.optim.batch_size * cfg.optim.grad_accum * 8 == 512 and cfg.optim.weight_decay == 1e-2


def test_bundled_model_recipe_names_real_configs_in_order():
    script = (ROOT / "train" / "bundled_model.sh").read_text()
    assert subprocess.run(["bash", "-n", str(ROOT / "train" / "bundled_model.sh")]).returncode == 0
    configs = [line.split()[-1] for line in script.splitlines() if line.startswith("python -m train")]
    assert configs == ["runs/vae_shapes", "train/configs/shapes_world.yaml", "train/configs/shapes_world_stage2.yaml",
                       "train/configs/shapes_world_stage3.yaml"]
    stage1, stage2, stage3 = (TrainConfig.from_yaml(ROOT / c) for c in configs[1:])
    assert stage1.model.vae == configs[0]
    assert stage2.model.init == f"pipeline:{stage1.output_dir}/pipeline"  # stage 2 continues stage 1
    assert stage3.model.init == f"pipeline:{stage2.output_dir}/pipeline"  # stage 3 continues stage 2
    assert f"cp -r {stage3.output_dir}/pipeline/." in script  # the last stage is the one that ships
    assert stage2.data.latent_pool_cache == f"{stage1.output_dir}/latent_pool.pt"
    assert (stage2.seed, stage2.data.latent_pool) == (stage1.seed, stage1.data.latent_pool)  # the cache matches
    assert stage3.data.latent_pool_cache == stage2.data.latent_pool_cache  # stage 3 takes its first scenes
    assert stage3.seed == stage1.seed and stage3.data.latent_pool <= stage1.data.latent_pool
