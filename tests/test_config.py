"""Training configs: strict YAML, ``base:`` inheritance, sampling settings derived from the data."""

import pytest

from train.config import TrainConfig, load_yaml
from train.vae import VAEConfig


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
