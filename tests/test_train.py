"""The training package: configs, batches, the loop (losses fall, exact resume), two-process data parallel."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from ddit import DualDiffusionPipeline
from ddit.image_sampling import solver_name
from ddit.task_defaults import TaskDefaults
from ddit.text_layout import decode_responses
from ddit.word_tokenizer import build_word_tokenizer
from shapes_world.vocabulary import vocabulary
from train.components import text_encoder_params
from train.config import TrainConfig
from train.data import ShapesWorldSource, collate, make_source
from train.loop import train

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "train" / "configs" / "tiny.yaml"
pytestmark = pytest.mark.slow  # most tests here train for a few steps


def tiny_config(tmp_path, **optim) -> TrainConfig:
    cfg = TrainConfig.from_yaml(TINY)
    cfg.output_dir = str(tmp_path)
    for key, value in optim.items():
        setattr(cfg.optim, key, value)
    return cfg


def test_shapes_batches_are_deterministic_and_decode_back():
    cfg = TrainConfig.from_yaml(TINY)
    defaults = TaskDefaults.from_dict(cfg.task_defaults)
    source = ShapesWorldSource(cfg.data, defaults, seed=0)
    a, b = source.examples(5, 4), source.examples(5, 4)
    assert [e.response for e in a] == [e.response for e in b]
    assert [e.response for e in source.examples(6, 4)] != [e.response for e in a]
    tokenizer = build_word_tokenizer(vocabulary())
    batch = collate(a, tokenizer, cfg.data)
    assert batch.pixels.shape == (4, 3, 16, 16) and batch.input_ids.shape == (4, cfg.data.text_length)
    assert decode_responses(tokenizer, batch.input_ids, batch.response_mask) == [e.response for e in a]
    assert tokenizer.unk_token_id not in batch.input_ids


def test_file_source_reads_real_formats(tmp_path):
    for i, color in enumerate(["red", "blue", "green"]):
        Image.new("RGB", (8, 8), color).save(tmp_path / f"{i}.png")
    rows = [{"image": f"{i}.png", "conversations": [{"from": "human", "value": "<image>\nwhat color?"},
                                                     {"from": "gpt", "value": c}]}
            for i, c in enumerate(["red", "blue", "green"])]
    (tmp_path / "llava.json").write_text(json.dumps(rows))
    cfg = TrainConfig.from_yaml(TINY)
    cfg.data.kind, cfg.data.path, cfg.data.shuffle_buffer = "files", str(tmp_path / "llava.json"), 2
    defaults = TaskDefaults.from_dict({"question_template": "Q: {question} A: "})
    source = make_source(cfg.data, defaults, seed=0, process_index=0, num_processes=1)
    examples = source.examples(0, 5)  # more than one epoch
    assert {e.response for e in examples} == {"red", "blue", "green"}
    assert all(e.text_prompt == "Q: what color? A: " for e in examples)
    later = source.examples(1, 2)
    resumed = make_source(cfg.data, defaults, seed=0, process_index=0, num_processes=1)
    resumed.load_state({"consumed": 5})
    assert [e.response for e in resumed.examples(1, 2)] == [e.response for e in later]


def test_mask_embedding_policy_trains_only_the_mask_row():
    from ddit.presets import build_tiny_pipeline
    pipe = build_tiny_pipeline()
    params = text_encoder_params(pipe.text_encoder, pipe.tokenizer, "mask_embedding")
    table = pipe.text_encoder.get_input_embeddings().weight
    assert params == [table]
    before = table.detach().clone()
    opt = torch.optim.AdamW(params, lr=0.1, weight_decay=0.0)
    ids = torch.tensor([[pipe.mask_token_id, 5, 6, 7]])
    pipe.text_encoder(input_ids=ids).last_hidden_state.pow(2).sum().backward()
    opt.step()
    changed = (table.detach() != before).any(-1).nonzero().flatten().tolist()
    assert changed == [pipe.mask_token_id]
    assert not any(p.requires_grad for n, p in pipe.text_encoder.named_parameters() if "word_embeddings" not in n)


def test_tiny_run_losses_fall_and_saves_a_loadable_pipeline(tmp_path):
    cfg = tiny_config(tmp_path, max_steps=30)
    cfg.image_solver = {"solver": "dpm++2m", "shift": 2.0}
    folder = train(cfg)
    history = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["loss_image"] < history[0]["loss_image"]
    assert history[-1]["loss_text"] < history[0]["loss_text"]
    assert all(h["gflops_per_s"] > 0 and 0 < h["mfu"] < 2 for h in history)
    assert (tmp_path / "loss.png").is_file() and list((tmp_path / "samples").glob("*.png"))
    pipe = DualDiffusionPipeline.from_pretrained(folder, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.answer(np.zeros((16, 16, 3), np.uint8), "how many shapes are there?").text[0] is not None
    assert solver_name(pipe.scheduler) == "dpm++2m" and pipe.scheduler.config.flow_shift == 2.0


def test_killed_and_resumed_run_ends_with_the_same_weights(tmp_path):
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    train(tiny_config(straight, max_steps=8))
    train(tiny_config(halves, max_steps=4))
    train(tiny_config(halves, max_steps=8), resume=True)
    a = load_file(straight / "checkpoints" / "step_8" / "model.safetensors")
    b = load_file(halves / "checkpoints" / "step_8" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key  # bit-exact: data, noise and masks are functions of the step


def test_two_process_data_parallel_run(tmp_path):
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "train", str(TINY), "--output_dir", str(tmp_path), "--max_steps", "4"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "pipeline" / "model_index.json").is_file()
    history = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["step"] == 4 and history[-1]["samples_per_s"] > 0


def test_each_process_draws_its_own_data():
    cfg = TrainConfig.from_yaml(TINY)
    defaults = TaskDefaults.from_dict(cfg.sampling_defaults())
    ranks = [make_source(cfg.data, defaults, seed=0, process_index=r, num_processes=2) for r in (0, 1)]
    first, second = ([e.response for e in source.examples(0, 8)] for source in ranks)
    assert first != second


def test_latent_pool_run_resumes_exactly_and_reuses_the_pool(tmp_path):
    def config(out, steps):
        cfg = tiny_config(out, max_steps=steps)
        cfg.data.latent_pool = 24
        return cfg

    straight, halves = tmp_path / "straight", tmp_path / "halves"
    train(config(straight, 4))
    train(config(halves, 2))
    pool_file = halves / "latent_pool.pt"
    stamp = pool_file.stat().st_mtime_ns
    train(config(halves, 4), resume=True)
    assert pool_file.stat().st_mtime_ns == stamp  # not re-encoded
    a = load_file(straight / "checkpoints" / "step_4" / "model.safetensors")
    b = load_file(halves / "checkpoints" / "step_4" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    pool = torch.load(pool_file, weights_only=True)
    assert pool["latents"].shape == (24, 4, 8, 8) and len(pool["scenes"]) == 24


def test_second_stage_starts_from_a_pipeline_reuses_the_pool_and_decays_the_lr(tmp_path):
    first = tiny_config(tmp_path / "stage1", max_steps=4)
    first.data.latent_pool = 24
    folder = train(first)
    pool_file = tmp_path / "stage1" / "latent_pool.pt"
    stamp = pool_file.stat().st_mtime_ns
    second = tiny_config(tmp_path / "stage2", max_steps=10, warmup_steps=2, lr_schedule="linear")
    second.model.init = f"pipeline:{folder}"
    second.data.latent_pool, second.data.latent_pool_cache = 24, str(pool_file)
    train(second)
    assert pool_file.stat().st_mtime_ns == stamp and not (tmp_path / "stage2" / "latent_pool.pt").exists()
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "stage2" / "metrics.jsonl").read_text().splitlines()]
    assert lrs[0] > lrs[-1] == 0.0  # warm-up, then linear decay to 0 at max_steps
    frozen = tiny_config(tmp_path / "lr0", max_steps=2, lr=0.0)  # starts where stage 1 ended, moves nowhere
    frozen.model.init = f"pipeline:{folder}"
    frozen.data.latent_pool, frozen.data.latent_pool_cache = 24, str(pool_file)
    weights = "transformer/diffusion_pytorch_model.safetensors"
    start, end = load_file(Path(folder) / weights), load_file(train(frozen) / weights)
    assert start.keys() == end.keys() and all(torch.equal(start[k], end[k]) for k in start)


def test_a_smaller_pool_takes_the_first_scenes_of_a_larger_cache(tmp_path):
    def config(out, pool, cache=None):
        cfg = tiny_config(tmp_path / out, max_steps=1)
        cfg.data.latent_pool, cfg.data.latent_pool_cache = pool, cache
        return cfg

    train(config("big", 24))
    cache = str(tmp_path / "big" / "latent_pool.pt")
    train(config("fresh", 16))
    train(config("prefix", 16, cache))
    assert not (tmp_path / "prefix" / "latent_pool.pt").exists()  # nothing encoded
    fresh = torch.load(tmp_path / "fresh" / "latent_pool.pt", weights_only=True)["latents"]
    big = torch.load(cache, weights_only=True)["latents"]
    assert big.shape[0] == 24 and torch.allclose(big[:16], fresh, atol=1e-5)  # the same scenes, the same renders
    with pytest.raises(ValueError, match="smaller pool"):
        train(config("too_big", 32, cache))


def test_unknown_lr_schedule_is_an_error(tmp_path):
    with pytest.raises(ValueError):
        train(tiny_config(tmp_path, lr_schedule="sawtooth"))


def test_text_longer_than_the_presets_position_table_trains(tmp_path):
    cfg = tiny_config(tmp_path, max_steps=1)
    cfg.data.text_length = cfg.data.prompt_length = 80  # the tiny preset's encoder has 64 positions
    folder = train(cfg)
    pipe = DualDiffusionPipeline.from_pretrained(folder, device="cpu")
    assert pipe.text_encoder.config.max_position_embeddings == 80
    assert pipe.defaults.generate.max_sequence_length == 80 and pipe.defaults.caption.max_prompt_length == 79


def test_sample_grid_prompts_come_from_the_config_or_the_data(tmp_path):
    from train.data import sample_prompts
    cfg = TrainConfig.from_yaml(TINY)
    assert sample_prompts(cfg.data, ["a red circle"]) == ["a red circle"]
    assert sample_prompts(cfg.data, []) and all("a" in p for p in sample_prompts(cfg.data, []))
    Image.new("RGB", (8, 8), "red").save(tmp_path / "0.png")
    (tmp_path / "captions.jsonl").write_text(json.dumps({"image": "0.png", "caption": "a photo of red"}) + "\n")
    cfg.data.kind, cfg.data.path = "files", str(tmp_path / "captions.jsonl")
    assert sample_prompts(cfg.data, []) == ["a photo of red"]
