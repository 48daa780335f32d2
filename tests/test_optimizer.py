"""Weight decay applies to matrices only, unless a config asks for it everywhere."""

import torch

from ddit.presets import build_tiny_pipeline
from train.optimizer import param_groups, split_decay


def names(module, params):
    ids = {id(p) for p in params}
    return {n for n, p in module.named_parameters() if id(p) in ids}


def test_norms_biases_and_embeddings_do_not_decay():
    pipe = build_tiny_pipeline()
    model, encoder = pipe.transformer, pipe.text_encoder
    decayed, plain = split_decay(model, list(model.parameters()))
    assert len(decayed) + len(plain) == len(list(model.parameters()))
    plain_names, decayed_names = names(model, plain), names(model, decayed)
    assert "null_image_embd" in plain_names and "transformer_blocks.0.attn.to_q.bias" in plain_names
    assert "transformer_blocks.0.attn.to_q.weight" in decayed_names and "text_proj_out.weight" in decayed_names
    decayed, plain = split_decay(encoder, list(encoder.parameters()))
    assert {"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
            "embeddings.LayerNorm.weight"} <= names(encoder, plain)
    assert all(p.ndim == 2 for p in decayed)


def test_groups_keep_every_trained_parameter_once():
    pipe = build_tiny_pipeline()
    model = pipe.transformer
    params = list(model.parameters())
    split = param_groups([(model, params, 0.01)], decay_all=False)
    assert [g["weight_decay"] for g in split] == [0.01, 0.0]
    assert sorted(id(p) for g in split for p in g["params"]) == sorted(id(p) for p in params)
    every = param_groups([(model, params, 0.01), (pipe.text_encoder, [], 0.01)], decay_all=True)
    assert len(every) == 1 and every[0]["params"] == params  # the bundled model's grouping, order kept
    torch.optim.AdamW(split, lr=1e-3)  # valid groups
