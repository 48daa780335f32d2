import torch

from ddit.losses import joint_loss
from ddit.testing import build_tiny_pipeline
from ddit.text_layout import layout


def test_overfitting_one_batch_drives_both_losses_down():
    pipe = build_tiny_pipeline(seed=0)
    pipe.transformer.initialize_weights()
    tok = pipe.tokenizer
    prompts = ["a red circle", "a blue square", "a green triangle", "a small red square"]
    latents = torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.5
    prompt_ids = tok(prompts, padding="max_length", max_length=8, return_tensors="pt")["input_ids"]
    text = layout(tok, ["q: what color?"] * 4, slot_length=5, responses=["red", "blue", "green", "red"])
    params = list(pipe.transformer.parameters()) + list(pipe.text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=3e-3)
    encode = lambda ids: pipe.text_encoder(input_ids=ids).last_hidden_state
    history = []
    for _ in range(150):
        # the same noise, timesteps and masks every step: one fixed batch to memorise
        loss = joint_loss(pipe.transformer, encode, latents, prompt_ids, text.input_ids, text.response_mask,
                          pipe.mask_token_id, text_weight=1.0, generator=torch.Generator().manual_seed(1))
        opt.zero_grad()
        loss.total.backward()
        opt.step()
        history.append((loss.image.item(), loss.text.item()))
    (img0, txt0), (img1, txt1) = history[0], history[-1]
    assert img1 < img0 / 5, history[::30]
    assert txt1 < txt0 / 5, history[::30]


def test_text_weight_scales_text_term():
    pipe = build_tiny_pipeline(seed=0)
    tok = pipe.tokenizer
    latents = torch.randn(2, 4, 8, 8)
    prompt_ids = tok(["a", "b"], padding="max_length", max_length=8, return_tensors="pt")["input_ids"]
    text = layout(tok, ["", ""], slot_length=4, responses=["red", "blue"])
    encode = lambda ids: pipe.text_encoder(input_ids=ids).last_hidden_state
    args = (pipe.transformer, encode, latents, prompt_ids, text.input_ids, text.response_mask, pipe.mask_token_id)
    a = joint_loss(*args, text_weight=0.2, generator=torch.Generator().manual_seed(0))
    b = joint_loss(*args, text_weight=1.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a.total, a.image + 0.2 * a.text)
    torch.testing.assert_close(b.total - a.total, 0.8 * a.text)
