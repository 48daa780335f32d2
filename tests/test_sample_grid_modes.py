"""A mid-run sample grid leaves each component in the train / eval mode it found it in (issue 27).

Training keeps a frozen text encoder (``model.train_text_encoder: none`` / ``mask_embedding``, or a LoRA run)
in eval mode, without dropout, while the transformer trains; the grid samples with both in eval mode and must
then give each its own mode back, not the transformer's.
"""

import pytest

from ddit.task_defaults import TaskDefaults
from ddit.presets import build_tiny_pipeline
from train import reporting
from train.loop import _write_samples


def tiny_parts() -> tuple[dict, TaskDefaults]:
    pipe = build_tiny_pipeline(seed=0)
    parts = {name: getattr(pipe, name) for name in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")}
    return parts, TaskDefaults.from_dict(pipe.defaults.to_dict())


def modes(module) -> dict[str, bool]:
    """Every submodule's ``training`` flag, by name ("" is the module itself)."""
    return {name: m.training for name, m in module.named_modules()}


@pytest.mark.parametrize("transformer_training, text_encoder_training", [
    (True, False),  # the bug: a frozen encoder came back in train mode, dropout on
    (False, True),
    (True, True),
    (False, False),
], ids=["frozen-encoder", "eval-transformer", "both-train", "both-eval"])
def test_sample_grid_restores_each_components_own_mode(tmp_path, transformer_training, text_encoder_training):
    parts, defaults = tiny_parts()
    parts["transformer"].train(transformer_training)
    parts["text_encoder"].train(text_encoder_training)
    parts["vae"].eval()
    before = {name: modes(parts[name]) for name in ("transformer", "text_encoder", "vae")}
    _write_samples(parts, defaults, ["a red circle"], tmp_path / "grid.png")
    assert (tmp_path / "grid.png").is_file()
    assert parts["transformer"].training is transformer_training
    assert parts["text_encoder"].training is text_encoder_training
    for name, expected in before.items():
        assert modes(parts[name]) == expected, name  # every submodule too, not just the top-level flag


def test_sample_grid_samples_in_eval_mode_and_restores_mixed_submodule_modes(tmp_path, monkeypatch):
    """Sampling sees eval mode everywhere; a component whose submodules differ gets each one's mode back."""
    parts, defaults = tiny_parts()
    parts["transformer"].train()
    parts["text_encoder"].train()
    frozen = next(m for name, m in parts["text_encoder"].named_modules() if name.endswith("embeddings"))
    frozen.eval()  # e.g. an embedding table held fixed inside a training encoder
    before = {name: modes(parts[name]) for name in ("transformer", "text_encoder")}
    seen = {}

    def grid(images, titles, path):
        seen.update({name: any(modes(parts[name]).values()) for name in ("transformer", "text_encoder")})
        path.write_bytes(b"")

    monkeypatch.setattr(reporting, "sample_grid", grid)
    _write_samples(parts, defaults, ["a red circle"], tmp_path / "grid.png")
    assert seen == {"transformer": False, "text_encoder": False}  # sampled without dropout
    assert {name: modes(parts[name]) for name in before} == before


def test_a_failed_sample_grid_still_restores_the_modes(tmp_path, monkeypatch):
    parts, defaults = tiny_parts()
    parts["transformer"].train()
    parts["text_encoder"].eval()

    def grid(images, titles, path):
        raise OSError("disk full")

    monkeypatch.setattr(reporting, "sample_grid", grid)
    with pytest.raises(OSError, match="disk full"):
        _write_samples(parts, defaults, ["a red circle"], tmp_path / "grid.png")
    assert parts["transformer"].training and not parts["text_encoder"].training
