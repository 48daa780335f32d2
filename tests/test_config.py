"""Training configs: strict YAML, ``base:`` inheritance, sampling settings derived from the data."""

import dataclasses
import subprocess
from pathlib import Path

import pytest
import yaml

from ddit.task_defaults import FLAT_KEYS
from train.config import RANGES, TrainConfig, load_yaml
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


@pytest.mark.parametrize("path", sorted(p for p in CONFIGS.rglob("*.yaml")
                                        if p.relative_to(CONFIGS).parts[0] != "accelerate"),
                         ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_shipped_config_loads(path):
    if path.name.startswith("vae"):  # the VAE trainer's own schema (train/vae.py)
        assert VAEConfig.from_yaml(path).steps > 0
    elif path.name.startswith("preview_decoder"):  # the preview decoder's (train/preview_decoder.py)
        assert PreviewDecoderConfig.from_yaml(path).steps > 0
    else:
        cfg = TrainConfig.from_yaml(path)
        assert cfg.optim.max_steps > 0 and cfg.sampling_defaults()["resolution"] == cfg.data.resolution


def test_shipped_configs_are_found_in_every_folder():
    found = {p.relative_to(CONFIGS).as_posix() for p in CONFIGS.rglob("*.yaml")}
    assert {"tiny.yaml", "ablations/base.yaml", "ablations/bf16_img75.yaml"} <= found


def setting(tmp_path, key: str, value, name: str = "c.yaml"):
    """A config file setting one dotted key (``data.caption_fraction``) to ``value``."""
    section, field = key.split(".", 1)
    return write(tmp_path / name, yaml.safe_dump({section: {field: value}}))


# Issue 27: every share, probability, dropout and decay of a training config, with values outside its range, and
# the name the error gives (a sequence's item by index). Listed here, not read from RANGES: a key dropped from the
# table, or the check itself, fails here.
OUT_OF_RANGE = [
    ("data.caption_fraction", 2.5), ("data.caption_fraction", -0.1), ("data.caption_fraction", "half"),
    ("data.caption_fraction", True), ("data.caption_fraction", None), ("data.caption_fraction", float("nan")),
    ("data.caption_dropout", 1.5), ("data.hard_negatives", -0.5), ("data.p_drop_size", 1.01),
    ("data.p_drop_position", -1), ("data.antialias_fraction", 2), ("data.color_jitter", 1.3),
    ("loss.image_fraction", 1.5), ("loss.image_fraction", -0.2), ("loss.text_eps", 0.0), ("loss.text_eps", 1.0),
    ("optim.ema_decay", 1.0), ("optim.ema_decay", -0.1), ("optim.betas", [0.9, 1.0], "optim.betas[1]"),
    ("optim.betas", [-0.1, 0.999], "optim.betas[0]"), ("lora.dropout", 1.0), ("lora.dropout", -0.5),
    ("task_defaults.caption_threshold", 0.0), ("task_defaults.answer_threshold", 1.5),
    ("task_defaults.guidance_interval", [0.6, 1.5], "task_defaults.guidance_interval[1]"),
]


@pytest.mark.parametrize("case", OUT_OF_RANGE, ids=lambda c: f"{c[0]}={c[1]!r}")
def test_a_share_outside_its_range_is_refused_naming_the_key(tmp_path, case):
    key, value, name = (*case, case[0])[:3]
    path = setting(tmp_path, key, value)
    with pytest.raises(ValueError) as info:
        TrainConfig.from_yaml(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {name} must be ") and "between 0 and 1" in message, message
    assert "\n" not in message  # one line (python -m train prints it as ``error: ...``)
    item = value[int(name[name.index("[") + 1:-1])] if name != key else value  # a sequence's item
    assert message.endswith(f"got {item!r}"), message


@pytest.mark.parametrize("key, value", [
    ("data.caption_fraction", 0), ("data.caption_fraction", 1), ("data.color_jitter", 1.0),
    ("data.hard_negatives", 0.75), ("loss.image_fraction", None), ("loss.image_fraction", 1),
    ("loss.text_eps", 1e-5), ("optim.ema_decay", 0.0), ("optim.ema_decay", 0.9999), ("optim.betas", [0.0, 0.999]),
    ("lora.dropout", 0.0), ("task_defaults.caption_threshold", 1.0), ("task_defaults.answer_threshold", None),
    ("task_defaults.guidance_interval", None), ("task_defaults.guidance_interval", [0.0, 1.0]),
])
def test_the_ends_of_each_range_that_are_allowed_load(tmp_path, key, value):
    cfg = TrainConfig.from_yaml(setting(tmp_path, key, value))
    section, field = key.split(".")
    got = cfg.task_defaults[field] if section == "task_defaults" else getattr(getattr(cfg, section), field)
    assert got == (tuple(value) if key == "optim.betas" else value)


def test_ranges_are_checked_after_base_is_applied(tmp_path):
    setting(tmp_path, "data.caption_fraction", 2.5, "parent.yaml")
    fixed = write(tmp_path / "fixed.yaml", "base: parent.yaml\ndata:\n  caption_fraction: 0.5\n")
    assert TrainConfig.from_yaml(fixed).data.caption_fraction == 0.5
    inherits = write(tmp_path / "inherits.yaml", "base: parent.yaml\nseed: 1\n")
    with pytest.raises(ValueError, match="data.caption_fraction must be between 0 and 1, got 2.5"):
        TrainConfig.from_yaml(inherits)


# float settings that are no share, probability or decay (rates, weights, norms, Gaussian parameters)
NOT_SHARES = {"optim.lr", "optim.weight_decay", "optim.grad_clip", "lora.alpha", "loss.text_weight",
              "loss.image_weight", "loss.logit_mean", "loss.logit_std"}


def test_every_float_setting_has_a_range_or_is_no_share():
    """A new float setting must be sorted: into ``RANGES`` (checked on load) or, if no share, into NOT_SHARES."""
    config = TrainConfig()
    floats = {f"{section.name}.{f.name}" for section in dataclasses.fields(config)
              if dataclasses.is_dataclass(getattr(config, section.name))
              for f in dataclasses.fields(getattr(config, section.name)) if "float" in str(f.type)}
    sections = {k for k in RANGES if not k.startswith("task_defaults.")}
    assert NOT_SHARES <= floats and floats - NOT_SHARES == sections
    # task_defaults keys (a config's flat spelling, ddit.task_defaults.FLAT_KEYS) are looked up only when given: a
    # misspelt one would never be checked
    assert {k.split(".", 1)[1] for k in set(RANGES) - sections} <= set(FLAT_KEYS)


def test_unknown_config_key_is_an_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  learning_rate: 1.0\n")
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig.from_yaml(bad)


@pytest.mark.parametrize("text", ["optim:\n  betas: 0.9\n", "optim:\n  betas: [0.9, 0.99, 0.999]\n"])
def test_a_pair_given_as_one_number_or_three_is_one_line(tmp_path, text):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ValueError, match=r"betas must be a list of 2 values like \[0.9, 0.999\]") as info:
        TrainConfig.from_yaml(bad)
    assert "\n" not in str(info.value)


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
