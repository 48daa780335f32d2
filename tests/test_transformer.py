import json

import pytest
import torch
from diffusers import SD3Transformer2DModel

from ddit.presets import tiny_transformer
from ddit.transformer import DualDiffusionTransformer

VOCAB, MASK = 40, 3


def test_heads_shapes_dtypes_and_mask_logit():
    torch.manual_seed(0)
    model = tiny_transformer(VOCAB)
    x, ctx = torch.randn(2, 4, 8, 8), torch.randn(2, 5, 16)
    out = model(x, ctx, torch.tensor([0.0, 500.0]), mask_token_id=MASK)
    assert out.sample.shape == x.shape and out.sample.dtype == torch.float32
    assert out.logits.shape == (2, 5, VOCAB) and out.logits.dtype == torch.float32
    assert torch.isneginf(out.logits[..., MASK]).all()
    assert torch.isfinite(out.logits[..., :MASK]).all() and torch.isfinite(out.logits[..., MASK + 1:]).all()


def test_no_image_path_uses_null_embedding():
    torch.manual_seed(0)
    model = tiny_transformer(VOCAB)
    ctx = torch.randn(3, 5, 16)
    out = model(None, ctx, 0.0, mask_token_id=MASK)
    assert out.sample is None and out.logits.shape == (3, 5, VOCAB)
    with torch.no_grad():
        model.null_image_embd.add_(1.0)
    assert not torch.allclose(model(None, ctx, 0.0).logits, out.logits)


def test_text_output_depends_on_image_and_image_on_text():
    torch.manual_seed(0)
    model = tiny_transformer(VOCAB)
    ctx = torch.randn(1, 5, 16)
    a, b = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    assert not torch.allclose(model(a, ctx, 0.0).logits, model(b, ctx, 0.0).logits)
    assert not torch.allclose(model(a, ctx, 10.0).sample, model(a, torch.randn(1, 5, 16), 10.0).sample)


def test_every_block_keeps_text_stream():
    model = tiny_transformer(VOCAB)
    for block in model.transformer_blocks:
        assert block.context_pre_only is False
    keys = model.state_dict().keys()
    last = len(model.transformer_blocks) - 1
    for name in ("norm1_context.linear.weight", "ff_context.net.2.weight", "attn.to_add_out.weight"):
        assert f"transformer_blocks.{last}.{name}" in keys
    assert "time_text_embed.timestep_embedder.linear_1.weight" in keys
    assert not any(k.startswith(("norm_out", "proj_out", "time_text_embed.text_embedder")) for k in keys)
    assert {"image_norm_out.linear.weight", "image_proj_out.weight", "text_proj_out.weight", "null_image_embd"} <= set(keys)
    assert model.null_image_embd.shape == (1, 8, 16)


def test_initialize_weights_zeroes_outputs():
    model = tiny_transformer(VOCAB)
    model.initialize_weights()
    out = model(torch.randn(1, 4, 8, 8), torch.randn(1, 5, 16), 100.0)
    assert torch.count_nonzero(out.sample) == 0
    finite = out.logits[torch.isfinite(out.logits)]
    assert torch.count_nonzero(finite) == 0


def test_released_config_loads(tmp_path):
    model = tiny_transformer(VOCAB)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(_class_name="SD3JointModelFlexible", dual_attention_layers=[], qk_norm=None)
    del config["mask_token_id"], config["num_null_image_tokens"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = DualDiffusionTransformer.from_pretrained(tmp_path)
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k


def test_sd35_features_are_refused():
    with pytest.raises(ValueError, match="not supported"):
        DualDiffusionTransformer(num_layers=1, qk_norm="rms_norm")


def test_from_sd3_copies_every_shared_weight(capsys):
    cfg = dict(sample_size=8, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
               joint_attention_dim=16, caption_projection_dim=16, pooled_projection_dim=12, out_channels=4,
               pos_embed_max_size=8)
    torch.manual_seed(0)
    sd3 = SD3Transformer2DModel(**cfg)
    model, report = DualDiffusionTransformer.from_sd3(sd3, vocab_size=VOCAB, mask_token_id=MASK)
    assert "copied" in capsys.readouterr().out
    ours, theirs = model.state_dict(), sd3.state_dict()
    renamed = {k.replace("norm_out.", "image_norm_out.", 1) if k.startswith("norm_out.") else
               k.replace("proj_out.", "image_proj_out.", 1) if k.startswith("proj_out.") else k: v
               for k, v in theirs.items()}
    shared = [k for k in renamed if k in ours and renamed[k].shape == ours[k].shape]
    assert sorted(shared) == sorted(report["copied"])
    for k in shared:
        assert torch.equal(ours[k], renamed[k]), k
    assert "image_proj_out.weight" in report["copied"] and "pos_embed.proj.weight" in report["copied"]
    assert {"text_proj_out.weight", "null_image_embd", "transformer_blocks.1.ff_context.net.2.weight"} <= set(report["created"])
    assert all(k.startswith(("time_text_embed.text_embedder", "transformer_blocks.1.norm1_context"))
               for k in report["dropped"])


def test_from_sd3_image_path_equals_sd3_without_the_pooled_text_term():
    cfg = dict(sample_size=8, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
               joint_attention_dim=16, caption_projection_dim=16, pooled_projection_dim=12, out_channels=4,
               pos_embed_max_size=8)
    torch.manual_seed(0)
    sd3 = SD3Transformer2DModel(**cfg)
    for module in sd3.modules():  # SD3's zero-initialised layers would make both outputs zero
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, std=0.2)
    model, _ = DualDiffusionTransformer.from_sd3(sd3, vocab_size=VOCAB, mask_token_id=MASK)
    with torch.no_grad():
        sd3.time_text_embed.text_embedder.linear_2.weight.zero_()  # D-DiT has no pooled text: zero SD3's term
        sd3.time_text_embed.text_embedder.linear_2.bias.zero_()
        # SD3's last block normalises the text with (scale, shift) of an AdaLayerNormContinuous, D-DiT's with
        # (shift, scale, gate, ...) of an AdaLayerNormZero, which from_sd3 creates new: give it SD3's values
        source, target = sd3.transformer_blocks[-1].norm1_context.linear, model.transformer_blocks[-1].norm1_context.linear
        for ours, theirs in ((target.weight, source.weight), (target.bias, source.bias)):
            scale, shift = theirs.chunk(2)
            ours[: len(shift)], ours[len(shift): 2 * len(shift)] = shift, scale
    x, ctx, t = torch.randn(2, 4, 8, 8), torch.randn(2, 5, 16), torch.tensor([10.0, 700.0])
    expected = sd3(x, ctx, torch.randn(2, 12), t).sample
    assert expected.abs().mean() > 0.1
    torch.testing.assert_close(model(x, ctx, t, return_logits=False).sample, expected, rtol=1e-5, atol=1e-5)
