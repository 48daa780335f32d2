"""Fewer forward passes for text: threshold commits, early stop at the end token, semi-autoregressive blocks that
grow the answer past its slot, and the pass count that reports them.

Most tests drive the loop with a scripted stand-in for the transformer (it predicts a chosen token at each slot
position with a chosen confidence), so that what the loop must do is known exactly; the last one trains a tiny
model to answer with 199 tokens and checks that a 32-token slot grows into that answer."""

import logging
from types import SimpleNamespace

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from helpers import generator as gen

from ddit.cli import main as cli_main
from ddit.losses import text_loss
from ddit.pipeline import DualDiffusionPipeline
from ddit.presets import TINY_WORDS, build_text_encoder, get_size, tiny_transformer, tiny_vae
from ddit.task_defaults import RELEASED_TASK_DEFAULTS, TaskDefaults
from ddit.text_layout import layout, prompt_ids
from ddit.text_scheduler import MaskedDiffusionScheduler
from ddit.word_tokenizer import build_word_tokenizer
from shapes_world import benchmark as bench


class Scripted:
    """Stands in for the transformer: at slot position i of row r it predicts ``tokens[r][i]`` (the end token past
    the script) with logit ``strength[i]`` (10 past it: sure) over zeros; records the token ids it is shown."""

    def __init__(self, pipe, tokens: list[list[int]], strength: list[float]):
        self.pipe, self.tokens, self.strength, self.seen = pipe, tokens, strength, []

    def __call__(self, latents, ids, timestep, mask_token_id=None):
        self.seen.append(ids.clone())
        logits = torch.zeros(*ids.shape, len(self.pipe.tokenizer))  # (b, l, v)
        for row in range(ids.shape[0]):
            for i in range(ids.shape[1]):
                script = self.tokens[row]
                token = script[i] if i < len(script) else self.pipe.end_token_id
                logits[row, i, token] = self.strength[i] if i < len(self.strength) else 10.0
        return SimpleNamespace(logits=logits)


@pytest.fixture
def scripted(pipe, monkeypatch):
    """``scripted(tokens, strength)``: the tiny pipeline's transformer replaced by a ``Scripted`` one; prompts are
    empty, so slot position = sequence position."""
    def install(tokens, strength):
        model = Scripted(pipe, tokens, strength)
        monkeypatch.setattr(pipe, "encode_tokens", lambda ids: ids)
        monkeypatch.setattr(pipe.transformer, "forward", model)
        return model
    return install


def words(pipe, *names):
    return [pipe.tokenizer.convert_tokens_to_ids(n) for n in names]


def run(pipe, rows=1, **options):
    options = {"num_inference_steps": 8, "max_length": 6, "sampler": "confidence", **options}
    return list(pipe.iter_text(None, [""] * rows, generator=gen(0), **options))


def test_threshold_commits_every_sure_token_and_at_least_one():
    sched = MaskedDiffusionScheduler(sampler="confidence", confidence_threshold=0.7)
    sched.set_timesteps(100)  # the schedule alone reveals one token per step
    probs = torch.full((2, 4, 5), 0.01)
    probs[0, :, 1] = torch.tensor([0.9, 0.3, 0.75, 0.8])  # three at least 0.7
    probs[1, :, 2] = torch.tensor([0.4, 0.6, 0.2, 0.5])  # none: only the most confident
    probs[..., 0] = 0  # 0 is the mask
    out = sched.step(probs.log(), 0, torch.zeros(2, 4, dtype=torch.long), 0)
    assert out.revealed.tolist() == [[True, False, True, True], [False, True, False, False]]
    assert out.prev_sample.tolist() == [[1, 0, 1, 1], [0, 2, 0, 0]]


def test_with_a_threshold_the_steps_are_a_maximum(pipe, scripted):
    sure = words(pipe, "red", "blue", "green", "circle", "square", "triangle")
    scripted([sure], [9, 9, 1, 1, 1, 1])  # two sure tokens, four unsure ones
    fixed = run(pipe)
    assert len(fixed) == 8 and fixed[-1].forward_passes == 6  # 6 tokens: two idle steps reuse the last pass
    adaptive = run(pipe, threshold=0.9)
    assert torch.equal(adaptive[-1].token_ids, fixed[-1].token_ids)
    assert adaptive[0].revealed.sum() >= 2  # both sure tokens at once
    assert len(adaptive) == adaptive[-1].forward_passes < 6 and not adaptive[-1].masked.any()
    assert all(s.revealed.any() for s in adaptive)  # at least one token per step, no idle steps
    assert len(run(pipe, threshold=1e-3)) == 1  # everything is sure enough: one pass


def test_early_stop_ends_once_every_row_has_ended(pipe, scripted):
    end = pipe.end_token_id
    red, blue, circle = words(pipe, "red", "blue", "circle")
    # row 0 ends after two words, row 1 after three; the end tokens are the surest predictions
    model = scripted([[red, circle, end], [blue, red, circle, end]], [3, 2, 9, 1, 1, 1, 1, 1])
    full = run(pipe, rows=2, max_length=8)
    passes_before = len(model.seen)
    stopped = run(pipe, rows=2, max_length=8, eos_early_stop=True)
    last = stopped[-1]
    assert pipe.decode_text(last) == pipe.decode_text(full[-1]) == ["red circle", "blue red circle"]
    assert not last.masked.any() and last.token_ids[0, 3:].eq(end).all()
    assert len(stopped) < len(full) and last.forward_passes < full[-1].forward_passes
    assert last.forward_passes == len(model.seen) - passes_before == sum(not s.reused_prediction for s in stopped)
    revealed = torch.stack([s.revealed for s in stopped]).sum(0)
    assert revealed.eq(1).all()  # every slot position revealed once, the filled ones included


def test_blocks_decode_left_to_right(pipe, scripted):
    tokens = words(pipe, "red", "blue", "green", "circle", "square", "triangle")
    model = scripted([tokens], [1, 2, 3, 4, 5, 6])  # later positions are surer: unblocked, they come first
    unblocked = run(pipe, num_inference_steps=6)
    assert unblocked[0].revealed[0].tolist() == [False] * 5 + [True]
    model.seen.clear()
    states = run(pipe, num_inference_steps=2, block_length=2)
    assert [s.block for s in states] == [0, 0, 1, 1, 2, 2] and states[-1].num_steps == 6
    for s in states:
        (positions,) = torch.nonzero(s.revealed[0], as_tuple=True)
        assert all(p // 2 == s.block for p in positions.tolist())
    for ids, s in zip(model.seen, states):  # the model sees later blocks masked
        assert ids[0, 2 * (s.block + 1):].eq(pipe.mask_token_id).all()
    assert states[-1].token_ids[0].tolist() == tokens


def test_blocks_grow_the_slot_until_the_end_token(pipe, scripted):
    end = pipe.end_token_id
    red, blue = words(pipe, "red", "blue")
    scripted([[red] * 9 + [end], [blue, end]], [10] * 20)
    states = run(pipe, rows=2, max_length=4, block_length=4, max_new_tokens=16, threshold=0.9)
    last = states[-1]
    assert last.token_ids.shape == (2, 12) and last.response_mask.all()  # 4 + two appended blocks of 4
    assert pipe.decode_text(last) == [" ".join(["red"] * 9), "blue"]
    assert last.token_ids[1, 2:].eq(end).all()  # the row that had ended is padded with the end token
    assert [s.num_steps for s in (states[0], last)] == [8, 24]  # grows with the slot: 8 steps per block
    capped = run(pipe, rows=2, max_length=4, block_length=4, max_new_tokens=6, threshold=0.9)[-1]
    assert pipe.decode_text(capped)[0] == " ".join(["red"] * 6)  # at most max_new_tokens


def test_clear_errors(pipe):
    for options, message in [
        (dict(threshold=0.9, sampler="ancestral"), "needs the confidence sampler"),
        (dict(threshold=0), "probability"),
        (dict(max_new_tokens=12), "set `block_length`"),
        (dict(block_length=0), "block_length"),
        (dict(block_length=2, max_new_tokens=4), "slot length 6"),
        (dict(block_length=32, max_new_tokens=200), "max_position_embeddings"),
    ]:
        with pytest.raises(ValueError, match=message):
            run(pipe, **options)


def test_task_defaults_carry_the_decoding(caplog):
    with caplog.at_level(logging.WARNING):
        old = TaskDefaults.from_dict({"confidence_threshold": 0.8, "caption_sampler": "confidence"})
        assert TaskDefaults.from_dict({"confidence_threshold": None}) == TaskDefaults()
    assert not caplog.records  # an older model folder loads without complaint
    assert (old.caption.threshold, old.answer.threshold) == (0.8, 0.8)
    assert old.caption.merged(sampler="confidence").threshold == 0.8
    assert old.caption.merged(sampler="ancestral").threshold is None  # a default never breaks another sampler
    released = RELEASED_TASK_DEFAULTS.answer.merged()
    assert (released.threshold, released.block_length, released.max_new_tokens, released.eos_early_stop) == (
        None, None, None, False)


def test_caption_reports_passes_and_the_cli_takes_the_options(pipe, image, tmp_path, capsys):
    assert pipe.caption(image, sampler="confidence", threshold=1e-3).forward_passes == 1
    pipe.save_pretrained(tmp_path / "tiny")
    image.save(tmp_path / "x.png")
    common = ["caption", str(tmp_path / "x.png"), "--model", str(tmp_path / "tiny"), "--sampler", "confidence"]
    assert cli_main(common + ["--threshold", "0.5", "--block-length", "2", "--max-new-tokens", "8",
                              "--eos-early-stop"]) == 0
    assert cli_main(common + ["--max-new-tokens", "8"]) == 2
    assert "set `block_length`" in capsys.readouterr().err


def test_benchmark_sweeps_thresholds_with_passes(pipe):
    sweep = bench.sweep_text_thresholds(pipe, n=2, batch=2, thresholds=(None, 0.5))
    rows = sweep["rows"]
    assert [(r["task"], r["threshold"], r["eos_early_stop"]) for r in rows][:4] == [
        ("caption", None, False), ("caption", None, True), ("caption", 0.5, False), ("caption", 0.5, True)]
    assert all(1 <= r["forward_passes"] <= r["steps"] for r in rows)
    assert "forward passes per item" in bench.report({"threshold_sweep": sweep})


# ---------------------------------------------------------------- a trained tiny model answers at length
QUESTION = "what color is the circle?"
ANSWER_WORDS = [w for w in TINY_WORDS if w.isalpha()]
TARGET = [ANSWER_WORDS[(i * i + 3 * i + i // 7) % len(ANSWER_WORDS)] for i in range(199)]  # deterministic, no loop


def long_answer_pipeline() -> tuple[DualDiffusionPipeline, PIL.Image.Image]:
    """A tiny model trained (masked-diffusion NELBO, ``ddit.losses.text_loss``) to answer QUESTION about one image
    with the 199 words of TARGET and an end token. It is shown the slots block decoding visits (32, 64, ... 256
    tokens: the answer's prefix, or all of it padded with end tokens), as a semi-autoregressive model learns."""
    torch.manual_seed(0)
    tokenizer = build_word_tokenizer(TINY_WORDS)
    encoder = build_text_encoder(get_size("tiny"), len(tokenizer), min_positions=288)
    transformer = tiny_transformer(len(tokenizer))
    transformer.initialize_weights()
    pipe = DualDiffusionPipeline(transformer=transformer, vae=tiny_vae(), text_encoder=encoder, tokenizer=tokenizer,
                                 scheduler=FlowMatchEulerDiscreteScheduler(),
                                 task_defaults=dict(question_template="q: {question}", answer_length=32))
    pipe.set_progress_bar_config(disable=True)
    image = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    latents = pipe.encode_image([image]).detach().expand(4, -1, -1, -1)
    prompt, answer = "q: " + QUESTION, " ".join(TARGET)
    batches = [layout(tokenizer, [prompt] * 4, slot, responses=[answer] * 4) for slot in range(32, 257, 32)]
    optimizer = torch.optim.AdamW([*transformer.parameters(), *encoder.parameters()], lr=3e-3, weight_decay=0.0)
    scheduler, generator = MaskedDiffusionScheduler(), gen(0)
    encode = lambda ids: encoder(input_ids=ids).last_hidden_state  # noqa: E731
    for step in range(300):
        b = batches[step % len(batches)]
        loss = text_loss(transformer, encode, latents, b.input_ids, b.response_mask, pipe.mask_token_id, scheduler,
                         generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.3, loss.item()
    transformer.eval(), encoder.eval()
    return pipe, image


@pytest.mark.slow  # trains a tiny model for 300 steps
def test_a_200_token_answer_from_a_32_token_slot():
    pipe, image = long_answer_pipeline()
    options = dict(max_length=32, sampler="confidence", num_inference_steps=32, threshold=0.9, generator=gen(0))
    out = pipe.answer(image, QUESTION, block_length=32, max_new_tokens=256, eos_early_stop=True, **options)
    assert out.text[0].split() == TARGET
    slot = out.token_ids[0, len(prompt_ids(pipe.tokenizer, "q: " + QUESTION, 64)):]
    assert slot[199] == pipe.end_token_id and slot[200:].eq(pipe.end_token_id).all()  # it ends at an end token
    assert out.forward_passes < 200  # several tokens per pass
    cut = pipe.answer(image, QUESTION, **options)  # no blocks: the slot is all there is
    assert cut.text[0].split() == TARGET[:32] and pipe.end_token_id not in cut.token_ids[0].tolist()


@pytest.mark.parametrize("sampler", ["confidence", "ancestral"])
def test_reveal_per_step_paces_the_same_decode(pipe, image, sampler):
    """For watching: one step's tokens are committed a few at a time, with the same tokens and passes."""
    plain = list(pipe.iter_caption(image, num_inference_steps=1, max_length=6, sampler=sampler, generator=gen(3)))
    paced = list(pipe.iter_caption(image, num_inference_steps=1, max_length=6, sampler=sampler, generator=gen(3),
                                   reveal_per_step=2))
    assert len(plain) == 1 and len(paced) == 3  # 6 tokens, 2 at a time
    assert torch.equal(paced[-1].token_ids, plain[-1].token_ids)
    assert paced[-1].forward_passes == plain[-1].forward_passes == 1
    assert all(int(s.revealed.sum()) == 2 for s in paced) and [s.step for s in paced] == [0, 0, 0]
    assert [int(s.masked.sum()) for s in paced] == [4, 2, 0]
    with pytest.raises(ValueError, match="reveal_per_step"):
        pipe.iter_caption(image, reveal_per_step=0)
