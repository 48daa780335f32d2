"""A tiny random folder in the released D-DiT checkpoints' layout (docs/design.md §3) opens with the authors' set-up.

The folder is built as the released ones are: ``SD3JointModelFlexible`` named in ``model_index.json`` and in
the transformer's config (``sample_size`` 128, so ``sample_size`` x 8 would be 1024 px), a factor-8 VAE with
shift and scale, a T5 encoder, a T5 tokenizer saved as ``spiece.model`` only (pad = EOS), a shifted flow
scheduler, no ``task_defaults``, and the mask-token row in the authors' ``mask_token_emb.00-of-01.pth``.
"""

import io
import json

import numpy as np
import PIL.Image
import pytest
import sentencepiece as spm
import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
from helpers import generator as gen
from transformers import T5Config, T5EncoderModel, T5TokenizerFast

from ddit import DualDiffusionPipeline
from ddit.image_inputs import resize_and_center_crop
from ddit.latents import encode_latents
from ddit.presets import build_transformer, get_size
from ddit.task_defaults import RELEASED_TASK_DEFAULTS
from ddit.tasks.answer import SHORT_ANSWER_INSTRUCTION

CORPUS = ("Q: what is the color? A: a red circle. a blue square at the top. how many shapes are there? "
          "Answer the question using a single word or phrase.")
MASK_ROW = 0.25


def save_spiece_tokenizer(folder):
    """A T5 tokenizer folder as the released ones ship it: a sentencepiece model (pad 0, EOS 1, UNK 2), no
    tokenizer.json; pad = EOS; 4 sentinel tokens <extra_id_*> above the vocabulary."""
    folder.mkdir(parents=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter([CORPUS] * 20), model_writer=model, vocab_size=60,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   hard_vocab_limit=False, minloglevel=2)
    (folder / "spiece.model").write_bytes(model.getvalue())
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "T5Tokenizer", "extra_ids": 4, "eos_token": "</s>", "pad_token": "</s>",
        "unk_token": "<unk>"}))


def save_released_folder(root):
    torch.manual_seed(0)
    save_spiece_tokenizer(root / "tokenizer")
    tokenizer = T5TokenizerFast.from_pretrained(root / "tokenizer")
    vocab = len(tokenizer) + 6  # the model's vocabulary is padded beyond the tokenizer's, like T5's 32128
    T5EncoderModel(T5Config(vocab_size=vocab, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
                   ).save_pretrained(root / "text_encoder")
    AutoencoderKL(in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(8, 8, 8, 8),
                  down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                  layers_per_block=1, norm_num_groups=4, sample_size=1024, scaling_factor=1.5305,
                  shift_factor=0.0609).save_pretrained(root / "vae")
    FlowMatchEulerDiscreteScheduler(shift=3.0).save_pretrained(root / "scheduler")
    transformer = build_transformer(get_size("tiny"), latent_size=128, latent_channels=16, vocab_size=vocab)
    transformer.register_to_config(pos_embed_max_size=64)  # 1024 px: 128 latents, 64 patches a side
    transformer = type(transformer).from_config(transformer.config)
    transformer.save_pretrained(root / "transformer")
    config = json.loads((root / "transformer" / "config.json").read_text())
    config.update(_class_name="SD3JointModelFlexible", dual_attention_layers=[], qk_norm=None)
    del config["mask_token_id"], config["num_null_image_tokens"]
    (root / "transformer" / "config.json").write_text(json.dumps(config))
    (root / "model_index.json").write_text(json.dumps({
        "_class_name": "DualDiffSD3Pipeline", "_diffusers_version": "0.30.0",
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "T5TokenizerFast"],
        "transformer": ["models.sd3_flexible", "SD3JointModelFlexible"],
        "vae": ["diffusers", "AutoencoderKL"],
    }))
    torch.save(torch.full((16,), MASK_ROW), root / "mask_token_emb.00-of-01.pth")  # the authors' file: one row
    return root


@pytest.fixture(scope="module")
def released_folder(tmp_path_factory):
    return save_released_folder(tmp_path_factory.mktemp("dual_diff_sd3_tiny"))


@pytest.fixture(scope="module")
def pipe(released_folder):
    pipeline = DualDiffusionPipeline.from_pretrained(released_folder, device="cpu")
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def test_opens_with_the_authors_settings_and_their_mask_file(pipe):
    assert pipe.defaults == RELEASED_TASK_DEFAULTS
    assert pipe.resolution == 512 != pipe.transformer.config.sample_size * pipe.vae_scale_factor
    extra_id_0 = pipe.tokenizer.convert_tokens_to_ids("<extra_id_0>")
    assert pipe.mask_token_id == extra_id_0 and pipe.end_token_id == pipe.tokenizer.eos_token_id
    row = pipe.text_encoder.get_input_embeddings().weight[extra_id_0]
    assert torch.equal(row, torch.full((16,), MASK_ROW))
    assert pipe.scheduler.config.shift == 3.0


def test_text_tasks_encode_at_512_px(pipe, monkeypatch):
    seen = []
    original = pipe.vae.encode
    monkeypatch.setattr(pipe.vae, "encode", lambda pixels: seen.append(tuple(pixels.shape)) or original(pixels))
    image = PIL.Image.new("RGB", (300, 200), (200, 40, 40))
    pipe.caption(image, num_inference_steps=1, max_length=3, generator=gen(0))
    pipe.answer(image, "what is the color?", num_inference_steps=1, generator=gen(0))
    assert seen == [(1, 3, 512, 512)] * 2


def test_a_wide_image_is_centre_cropped_not_squashed(pipe):
    bands = np.zeros((1800, 2880, 3), np.uint8)
    bands[:, :960] = (255, 0, 0)
    bands[:, 960:1920] = (0, 255, 0)
    bands[:, 1920:] = (0, 0, 255)
    image = PIL.Image.fromarray(bands)
    cropped = resize_and_center_crop(image, 512)
    red_columns = int((np.asarray(cropped)[256, :, 0] > 128).sum())
    assert cropped.size == (512, 512) and abs(red_columns - 420 * 512 / 1800) <= 2  # squashed: 170 columns
    pixels = pipe.image_processor.preprocess([cropped], height=512, width=512)
    torch.testing.assert_close(pipe.encode_image([image]), encode_latents(pipe.vae, pixels))
    assert resize_and_center_crop(PIL.Image.new("RGB", (64, 64)), 64).size == (64, 64)


def test_the_answer_sequence_is_128_tokens_in_total(pipe):
    image = PIL.Image.new("RGB", (64, 64), (40, 90, 220))
    first = next(pipe.iter_answer(image, "what is the color?", num_inference_steps=2, generator=gen(0)))
    expected = pipe.tokenizer("Q: what is the color? A: ")["input_ids"][:-1]  # T5's trailing EOS dropped
    assert first.token_ids.shape == (1, 128)
    assert first.token_ids[0, : len(expected)].tolist() == expected
    assert int(first.response_mask.sum()) == 128 - len(expected)
    two = next(pipe.iter_answer([image, image], ["what?", "what is the color of the square?"], num_inference_steps=2))
    assert two.token_ids.shape == (2, 128)
    own = next(pipe.iter_answer(image, "what?", num_inference_steps=2, max_length=4))  # a slot asked for: no total
    assert own.token_ids.shape[1] == len(pipe.tokenizer("Q: what? A: ")["input_ids"]) - 1 + 4


def test_short_answer_instruction_is_a_named_option(pipe):
    image = PIL.Image.new("RGB", (64, 64), (40, 90, 220))
    state = next(pipe.iter_answer(image, "what is the color?", num_inference_steps=2, short_answer=True))
    prompt = f"Q: what is the color? {SHORT_ANSWER_INSTRUCTION} A: "
    expected = pipe.tokenizer(prompt)["input_ids"][:-1]
    assert state.token_ids[0, : len(expected)].tolist() == expected and state.token_ids.shape == (1, 128)


def test_all_tasks_run_and_save_pretrained_writes_the_defaults(pipe, tmp_path):
    image = pipe("a red circle", num_inference_steps=1, generator=gen(0)).images[0]
    assert image.size == (512, 512)
    caption = pipe.caption(image, num_inference_steps=2, generator=gen(0))
    assert caption.token_ids.shape == (1, 256) and (caption.token_ids != pipe.mask_token_id).all()
    pipe.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "model_index.json").read_text())["task_defaults"]
    assert saved["resolution"] == 512 and saved["answer"]["total_length"] == 128
    again = DualDiffusionPipeline.from_pretrained(tmp_path / "saved", device="cpu")
    assert again.defaults == RELEASED_TASK_DEFAULTS


def test_latent_normalisation_uses_shift_and_scale(pipe):
    image = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 255, (512, 512, 3), dtype=np.uint8))
    pixels = pipe.image_processor.preprocess([image], height=512, width=512)
    z = pipe.vae.encode(pixels).latent_dist.mode()
    torch.testing.assert_close(pipe.encode_image([image]), (z - 0.0609) * 1.5305)


def test_missing_mask_embedding_file_is_reported(released_folder):
    with pytest.raises(FileNotFoundError, match="Mask embedding"):
        DualDiffusionPipeline.from_pretrained(released_folder, mask_embedding=released_folder / "nope.pt")
