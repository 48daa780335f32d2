"""A tiny random folder in the released D-DiT checkpoints' layout (design.md §2) loads and runs all tasks."""

import json

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
from safetensors.torch import save_file
from transformers import T5Config, T5EncoderModel, T5Tokenizer

from ddit import DualDiffusionPipeline
from ddit.testing import generator as gen, tiny_transformer


WORDS = "▁a ▁red ▁blue ▁circle ▁square ▁what ▁is ▁the ▁color ▁Q : ▁A ? ▁how ▁many".split()


@pytest.fixture(scope="module")
def released_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("dual_diff_sd3_tiny")
    torch.manual_seed(0)
    tokenizer = T5Tokenizer(vocab=[("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(w, -1.0) for w in WORDS],
                            extra_ids=4)
    tokenizer.pad_token = tokenizer.eos_token  # as in the released folders
    tokenizer.save_pretrained(root / "tokenizer")
    vocab = len(tokenizer) + 6  # the model's vocabulary is padded beyond the tokenizer's, like T5's 32128
    encoder = T5EncoderModel(T5Config(vocab_size=vocab, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2))
    encoder.save_pretrained(root / "text_encoder")
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(8, 16),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        layers_per_block=1, norm_num_groups=4, sample_size=16, scaling_factor=1.5305,
                        shift_factor=0.0609)
    vae.save_pretrained(root / "vae")
    FlowMatchEulerDiscreteScheduler(shift=3.0).save_pretrained(root / "scheduler")
    transformer = tiny_transformer(vocab, in_channels=16)
    transformer.save_pretrained(root / "transformer")
    config = json.loads((root / "transformer" / "config.json").read_text())
    config.update(_class_name="SD3JointModelFlexible", dual_attention_layers=[], qk_norm=None)
    del config["mask_token_id"], config["num_null_image_tokens"]
    (root / "transformer" / "config.json").write_text(json.dumps(config))
    (root / "model_index.json").write_text(json.dumps({
        "_class_name": "DualDiffSD3Pipeline", "_diffusers_version": "0.30.0",
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"], "text_encoder": ["transformers", "T5EncoderModel"],
        "tokenizer": ["transformers", "T5TokenizerFast"], "transformer": ["models.sd3_flexible", "SD3JointModelFlexible"],
        "vae": ["diffusers", "AutoencoderKL"],
    }))
    save_file({"mask_embedding": torch.full((1, 16), 0.25)}, root / "mask_embedding.safetensors")
    return root


def test_released_layout_loads_and_runs_all_tasks(released_folder):
    pipe = DualDiffusionPipeline.from_pretrained(released_folder, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    extra_id_0 = pipe.tokenizer.convert_tokens_to_ids("<extra_id_0>")
    assert pipe.mask_token_id == extra_id_0
    assert pipe.end_token_id == pipe.tokenizer.eos_token_id
    assert pipe.defaults.question_template == "Q: {question} A: " and pipe.defaults.image_steps == 28
    row = pipe.text_encoder.get_input_embeddings().weight[extra_id_0]
    assert torch.allclose(row, torch.full((16,), 0.25))
    assert pipe.scheduler.config.shift == 3.0

    image = pipe("a red circle", num_inference_steps=2, generator=gen(0)).images[0]
    assert image.size == (16, 16)
    caption = pipe.caption(image, num_inference_steps=4, max_length=5, generator=gen(0))
    answer = pipe.answer(image, "what is the color?", num_inference_steps=3, max_length=4, generator=gen(0))
    assert isinstance(caption.text[0], str) and isinstance(answer.text[0], str)
    assert (answer.token_ids != extra_id_0).all()
    # the question, in the released prompt format with T5's trailing EOS dropped, is kept verbatim
    expected = pipe.tokenizer("Q: what is the color? A: ")["input_ids"][:-1]
    assert answer.token_ids[0, : len(expected)].tolist() == expected


def test_latent_normalisation_uses_shift_and_scale(released_folder):
    pipe = DualDiffusionPipeline.from_pretrained(released_folder, device="cpu")
    image = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8))
    latents = pipe.encode_image([image])
    pixels = pipe.image_processor.preprocess([image], height=16, width=16)
    z = pipe.vae.encode(pixels).latent_dist.mode()
    torch.testing.assert_close(latents, (z - 0.0609) * 1.5305)


def test_missing_mask_embedding_file_is_reported(released_folder):
    with pytest.raises(FileNotFoundError, match="Mask embedding"):
        DualDiffusionPipeline.from_pretrained(released_folder, mask_embedding=released_folder / "nope.pt")
