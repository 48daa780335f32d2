"""The joint objective (paper eq. 9): the one function training calls."""

import dataclasses

import pytest
import torch

from ddit.losses import JointLossConfig, joint_loss, task_rows
from ddit.presets import build_tiny_pipeline
from ddit.text_layout import layout
from ddit.text_scheduler import MaskedDiffusionScheduler


def batch(pipe, n: int = 4):
    tok = pipe.tokenizer
    prompts = ["a red circle", "a blue square", "a green triangle", "a small red square"][:n]
    latents = torch.randn(n, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.5
    prompt_ids = tok(prompts, padding="max_length", max_length=8, return_tensors="pt")["input_ids"]
    text = layout(tok, ["q: what color?"] * n, slot_length=5, responses=["red", "blue", "green", "red"][:n])
    return latents, prompt_ids, text.input_ids, text.response_mask


def loss_of(pipe, config: JointLossConfig, seed: int = 0):
    encode = lambda ids: pipe.text_encoder(input_ids=ids).last_hidden_state
    return joint_loss(pipe.transformer, encode, *batch(pipe), pipe.mask_token_id, config,
                      MaskedDiffusionScheduler(eps=config.text_eps), torch.Generator().manual_seed(seed))


@pytest.mark.slow  # 150 training steps
def test_overfitting_one_batch_drives_both_losses_down():
    pipe = build_tiny_pipeline(seed=0)
    pipe.transformer.initialize_weights()
    params = list(pipe.transformer.parameters()) + list(pipe.text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=3e-3)
    history = []
    for _ in range(150):
        loss = loss_of(pipe, JointLossConfig(), seed=1)  # the same noise, times and masks: one batch to memorise
        opt.zero_grad()
        loss.total.backward()
        opt.step()
        history.append((loss.image.item(), loss.text.item()))
    (img0, txt0), (img1, txt1) = history[0], history[-1]
    assert img1 < img0 / 5, history[::30]
    assert txt1 < txt0 / 5, history[::30]


def test_weights_scale_their_terms():
    pipe = build_tiny_pipeline(seed=0)
    a = loss_of(pipe, JointLossConfig(text_weight=0.2))
    b = loss_of(pipe, JointLossConfig(text_weight=1.0, image_weight=0.5))
    torch.testing.assert_close(a.total, a.image + 0.2 * a.text)
    torch.testing.assert_close(b.total, 0.5 * b.image + b.text)
    assert torch.equal(a.image, b.image) and torch.equal(a.text, b.text)  # same draws, same terms


def test_image_weight_zero_skips_the_image_pass():
    pipe = build_tiny_pipeline(seed=0)
    out = loss_of(pipe, JointLossConfig(image_weight=0.0))
    assert out.image.item() == 0.0 and out.text.item() > 0
    torch.testing.assert_close(out.total, out.text)


@pytest.mark.parametrize("fraction, rows", [(None, ((0, 4), (0, 4))), (0.5, ((0, 2), (2, 4))),
                                            (0.0, ((0, 1), (1, 4))), (1.0, ((0, 3), (3, 4)))])
def test_rows_split_between_the_tasks(fraction, rows):
    image, text = task_rows(4, fraction)
    assert ((image.start, image.stop), (text.start, text.stop)) == rows


def test_split_batch_scores_each_task_on_its_own_rows():
    pipe = build_tiny_pipeline(seed=0)
    split = loss_of(pipe, JointLossConfig(image_fraction=0.5))
    both = loss_of(pipe, JointLossConfig())
    assert not torch.equal(split.image, both.image) and not torch.equal(split.text, both.text)


def test_text_eps_comes_from_the_config():
    pipe = build_tiny_pipeline(seed=0)
    config = JointLossConfig(text_eps=0.05)
    encode = lambda ids: pipe.text_encoder(input_ids=ids).last_hidden_state
    with pytest.raises(ValueError, match="text_eps"):
        joint_loss(pipe.transformer, encode, *batch(pipe), pipe.mask_token_id, config, MaskedDiffusionScheduler())
    assert not torch.equal(loss_of(pipe, config).text, loss_of(pipe, dataclasses.replace(config, text_eps=1e-3)).text)
