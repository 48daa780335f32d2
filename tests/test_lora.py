"""LoRA (ddit/lora.py, ``lora:`` in training configs): only adapters train, the file is small, a pipeline with
the adapters loaded samples as the merged model does, resume is exact, bad files fail in one line."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from helpers import generator
from safetensors.torch import load_file

from ddit import DualDiffusionPipeline
from ddit.lora import LORA_WEIGHT_NAME, add_adapter, lora_config, save_lora_weights
from ddit.presets import build_tiny_pipeline, build_transformer, get_size
from train.components import add_lora
from train.config import TrainConfig
from train.loop import train

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "train" / "configs" / "tiny.yaml"
QUESTION = "how many shapes are there?"


def lora_yaml(tmp_path: Path, base: Path, steps: int, lr: float = 3e-2) -> TrainConfig:
    """A tiny LoRA fine-tune of the pipeline ``base``, as a user would write it (through ``base: tiny.yaml``)."""
    path = tmp_path.with_suffix(".yaml")
    path.write_text(f"base: {TINY}\noutput_dir: {tmp_path}\nmodel:\n  init: pipeline:{base}\n"
                    f"  train_text_encoder: none\noptim:\n  max_steps: {steps}\n  lr: {lr}\n"
                    "lora:\n  enabled: true\n  rank: 4\n  alpha: 8\n  text_encoder: true\n")
    return TrainConfig.from_yaml(path)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A briefly trained tiny pipeline: LoRA needs one (a new model's zeroed gates give adapters no gradient)."""
    cfg = TrainConfig.from_yaml(TINY)
    cfg.output_dir, cfg.optim.max_steps = str(tmp_path_factory.mktemp("base")), 60
    return train(cfg)


@pytest.fixture(scope="module")
def runs(base, tmp_path_factory) -> dict[str, Path]:
    """A LoRA run, and the same run with a learning rate of 0 (the base model's losses on the same batches)."""
    root = tmp_path_factory.mktemp("lora")
    for name, lr in (("lora", 3e-2), ("frozen", 0.0)):
        train(lora_yaml(root / name, base, steps=30, lr=lr))
    return {"lora": root / "lora", "frozen": root / "frozen"}


def history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def base_weights(folder: Path) -> dict[str, torch.Tensor]:
    """A pipeline folder's transformer and text-encoder tensors, named as in a training checkpoint."""
    found = {f"transformer.{k}": v for k, v in
             load_file(folder / "transformer" / "diffusion_pytorch_model.safetensors").items()}
    found.update({f"text_encoder.{k}": v for k, v in load_file(folder / "text_encoder" / "model.safetensors").items()})
    return found


@pytest.mark.slow
def test_lora_run_lowers_the_loss_and_trains_only_the_adapters(base, runs):
    trained, frozen = history(runs["lora"]), history(runs["frozen"])
    # the same batches, noise and masks (functions of the step): only the adapters differ
    assert trained[-1]["loss_image"] < 0.99 * frozen[-1]["loss_image"]
    assert sum(h["loss_image"] + h["loss_text"] for h in trained[1:]) < sum(
        h["loss_image"] + h["loss_text"] for h in frozen[1:])
    checkpoint = load_file(runs["lora"] / "checkpoints" / "step_30" / "model.safetensors")
    start = base_weights(base)
    adapters = {k: v for k, v in checkpoint.items() if ".lora_" in k}
    bases = {k.replace(".base_layer", ""): v for k, v in checkpoint.items() if ".lora_" not in k}
    assert bases.keys() == start.keys()
    assert all(torch.equal(bases[k], start[k]) for k in start)  # every base weight bit-identical to the start
    assert any(k.startswith("text_encoder.") for k in adapters) and any(k.startswith("transformer.") for k in adapters)
    assert all(v.abs().max() > 0 for k, v in adapters.items() if ".lora_B." in k)  # B starts at 0: all trained
    merged = base_weights(runs["lora"] / "pipeline")
    assert merged.keys() == start.keys()  # a plain pipeline folder, the adapters merged in
    assert not torch.equal(merged["transformer.transformer_blocks.0.attn.to_q.weight"],
                           start["transformer.transformer_blocks.0.attn.to_q.weight"])


@pytest.mark.slow
def test_adapter_file_is_small(runs):
    adapter = (runs["lora"] / "lora" / LORA_WEIGHT_NAME).stat().st_size
    full = (runs["lora"] / "pipeline" / "transformer" / "diffusion_pytorch_model.safetensors").stat().st_size
    print(f"adapter file {adapter / 1e3:.1f} kB (rank 4, transformer + text encoder); transformer {full / 1e3:.1f} kB")
    assert adapter * 5 < full


def outputs(pipe: DualDiffusionPipeline, image) -> tuple:
    """T2I latents, caption tokens and answer tokens, each with its own seeded generator."""
    latents = pipe("a red circle", output_type="latent", generator=generator(0)).images
    caption = pipe.caption(image, generator=generator(1)).token_ids
    answer = pipe.answer(image, QUESTION, generator=generator(2)).token_ids
    return latents, caption, answer


def assert_same(a: tuple, b: tuple) -> None:
    torch.testing.assert_close(a[0], b[0], rtol=1e-5, atol=1e-5)
    assert torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])


@pytest.mark.slow
def test_loaded_adapters_sample_as_the_merged_model_on_all_three_tasks(base, runs, image):
    load = lambda folder: DualDiffusionPipeline.from_pretrained(folder, device="cpu")
    merged, adapted, plain = load(runs["lora"] / "pipeline"), load(base), load(base)
    for pipe in (merged, adapted, plain):
        pipe.set_progress_bar_config(disable=True)
    adapted.load_lora_weights(runs["lora"] / "lora")
    expected = outputs(merged, image)
    assert_same(outputs(adapted, image), expected)
    assert not torch.equal(outputs(plain, image)[0], expected[0])  # the adapters do change the model
    adapted.fuse_lora()
    assert_same(outputs(adapted, image), expected)
    adapted.unfuse_lora()
    adapted.unload_lora_weights()
    assert_same(outputs(adapted, image), outputs(plain, image))


@pytest.mark.slow
def test_killed_and_resumed_lora_run_ends_with_the_same_weights(base, tmp_path):
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    train(lora_yaml(straight, base, steps=8))
    train(lora_yaml(halves, base, steps=4))
    train(lora_yaml(halves, base, steps=8), resume=True)
    for file in ("checkpoints/step_8/model.safetensors", f"lora/{LORA_WEIGHT_NAME}"):
        a, b = load_file(straight / file), load_file(halves / file)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), file


def tiny_with_adapter(seed: int = 0) -> DualDiffusionPipeline:
    """A tiny random pipeline with a random (non-zero) adapter on the transformer and the text encoder."""
    pipe = build_tiny_pipeline(seed)
    add_adapter(pipe.transformer, lora_config(2, 4, ("to_q", "add_v_proj", "ff.net.2")))
    add_adapter(pipe.text_encoder, lora_config(2, 2, ("query", "value")))
    for module in (pipe.transformer, pipe.text_encoder):
        for name, p in module.named_parameters():
            if ".lora_B." in name:
                p.data.normal_(0, 0.5)
    return pipe


def forward(pipe: DualDiffusionPipeline) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([[3, 4, 5, 6, pipe.mask_token_id]])
    with torch.no_grad():
        out = pipe.transformer(torch.ones(1, 4, 8, 8), pipe.encode_tokens(ids), torch.tensor([500.0]))
    return out.sample, out.logits


def test_saved_adapters_load_fuse_and_unload(tmp_path):
    source = tiny_with_adapter()
    path = save_lora_weights(tmp_path, {"transformer": source.transformer, "text_encoder": source.text_encoder})
    pipe, plain = build_tiny_pipeline(0), build_tiny_pipeline(0)
    pipe.load_lora_weights(tmp_path)  # the folder; the file itself works too
    for a, b in zip(forward(pipe), forward(source)):
        assert torch.equal(a, b)
    assert not torch.allclose(forward(pipe)[0], forward(plain)[0])
    pipe.fuse_lora()
    for a, b in zip(forward(pipe), forward(source)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    pipe.unfuse_lora()
    pipe.unload_lora_weights()
    for a, b in zip(forward(pipe), forward(plain)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert not any("lora" in k for k in pipe.transformer.state_dict())
    with pytest.raises(ValueError, match="already loaded"):
        source.load_lora_weights(path)
    by_diffusers = build_tiny_pipeline(0).transformer  # diffusers' own loader reads the file, metadata included
    by_diffusers.load_lora_adapter(str(tmp_path), prefix="transformer", weight_name=LORA_WEIGHT_NAME)
    states = torch.randn(1, 5, 16)
    with torch.no_grad():
        a, b = (t(torch.ones(1, 4, 8, 8), states, torch.tensor([500.0])).sample
                for t in (by_diffusers, source.transformer))
    assert torch.equal(a, b)


def test_bad_lora_files_raise_one_line_errors(tmp_path):
    pipe = build_tiny_pipeline(0)
    with pytest.raises(FileNotFoundError, match="no LoRA weights"):
        pipe.load_lora_weights(tmp_path / "missing")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a LoRA safetensors file"):
        pipe.load_lora_weights(tmp_path / "junk.safetensors")
    wider = build_transformer(replace(get_size("tiny"), width=32), 8, 4, len(pipe.tokenizer))  # another model
    add_adapter(wider, lora_config(2, 2, ("to_q",)))
    save_lora_weights(tmp_path / "other", {"transformer": wider})
    with pytest.raises(ValueError, match="do not fit.*size mismatch") as error:
        pipe.load_lora_weights(tmp_path / "other")
    assert "\n" not in str(error.value)
    assert not any("lora" in k for k in pipe.transformer.state_dict())  # left as it was


def test_lora_config_section_and_its_checks(tmp_path):
    cfg = TrainConfig.from_yaml(TINY)
    assert not cfg.lora.enabled and "to_add_out" in cfg.lora.target_modules
    pipe = build_tiny_pipeline(0)
    parts = dict(pipe.components)
    with pytest.raises(ValueError, match="train_text_encoder"):
        add_lora(parts, cfg.lora, "all")
    add_lora(parts, cfg.lora, "none")
    trained = [n for n, p in pipe.transformer.named_parameters() if p.requires_grad]
    assert trained and all(".lora_" in n for n in trained)
    assert not any(p.requires_grad for p in pipe.text_encoder.parameters())
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"base: {TINY}\nlora:\n  rnak: 4\n")
    with pytest.raises(ValueError, match="rnak"):
        TrainConfig.from_yaml(bad)


@pytest.mark.slow
def test_app_with_a_bad_lora_path_fails_in_one_line(tmp_path):
    app = pytest.importorskip("app")
    build_tiny_pipeline(0).save_pretrained(tmp_path / "model")
    with pytest.raises(SystemExit) as exit_info:
        app.main(["--model", str(tmp_path / "model"), "--lora", str(tmp_path / "nope")])
    message = str(exit_info.value.code)
    assert message.startswith("error: no LoRA weights at") and "\n" not in message
