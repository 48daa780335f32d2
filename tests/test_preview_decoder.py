"""The optional preview decoder: trained by train/preview_decoder.py, saved and loaded with the pipeline, given by
path (as TAESD3 would be for SD3 latents), used by ``decode_preview`` and the app, and absent without harm."""

import fnmatch
from types import SimpleNamespace
import json

import numpy as np
import pytest
import torch
from diffusers import AutoencoderTiny

from ddit import DualDiffusionPipeline
from ddit.model_folder import HUB_FILES, ModelFolderError
from ddit.presets import build_tiny_pipeline
from train.preview_decoder import PreviewDecoderConfig, train_preview_decoder

RED = (1.0, 0.0, 0.0)


def solid_decoder(colour=RED, latent_channels: int = 4, levels: int = 2, shift: float = 0.0) -> AutoencoderTiny:
    """An AutoencoderTiny (factor 2 ** (levels - 1)) whose decoder paints every pixel ``colour`` (RGB in [0, 1])."""
    torch.manual_seed(0)
    decoder = AutoencoderTiny(latent_channels=latent_channels, encoder_block_out_channels=(4,) * levels,
                              decoder_block_out_channels=(4,) * levels, num_encoder_blocks=(0,) * levels,
                              num_decoder_blocks=(1,) + (0,) * (levels - 1), scaling_factor=1.5, shift_factor=shift)
    last = decoder.decoder.layers[-1]  # the final conv to RGB: no weights, only its bias
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor(colour))
    return decoder


def latents(seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(seed))  # the tiny pipeline's 16x16 px


@pytest.fixture(scope="module")
def plain_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plain") / "model"
    build_tiny_pipeline().save_pretrained(folder)
    return folder


def test_without_one_previews_are_vae_decodes(plain_folder):
    pipe = DualDiffusionPipeline.from_pretrained(plain_folder, device="cpu")
    assert pipe.preview_decoder is None
    assert json.loads((plain_folder / "model_index.json").read_text())["preview_decoder"] == [None, None]
    torch.testing.assert_close(pipe.decode_preview(latents(), "pt"), pipe.decode_latents(latents(), "pt"))


def test_saved_with_one_it_reloads_and_previews_with_it(tmp_path):
    pipe = build_tiny_pipeline()
    pipe.register_modules(preview_decoder=solid_decoder())
    pipe.save_pretrained(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "model_index.json").read_text())["preview_decoder"] == [
        "diffusers", "AutoencoderTiny"]
    again = DualDiffusionPipeline.from_pretrained(tmp_path / "model", device="cpu")
    assert isinstance(again.preview_decoder, AutoencoderTiny) and again.preview_decoder.config.scaling_factor == 1.5
    preview = again.decode_preview(latents(), "np")
    assert preview.shape == (1, 16, 16, 3) and np.allclose(preview, RED)
    assert not np.allclose(again.decode_latents(latents(), "np"), RED)  # the final image is still the VAE's
    assert again.decode_preview(latents(), "latent") is not None


def test_a_folder_given_by_path_or_as_a_module(plain_folder, tmp_path):
    solid_decoder().save_pretrained(tmp_path / "taesd")
    by_path = DualDiffusionPipeline.from_pretrained(plain_folder, device="cpu", preview_decoder=tmp_path / "taesd")
    module = AutoencoderTiny.from_pretrained(tmp_path / "taesd")
    as_module = DualDiffusionPipeline.from_pretrained(plain_folder, device="cpu", preview_decoder=module)
    for pipe in (by_path, as_module):
        assert np.allclose(pipe.decode_preview(latents(), "np"), RED)
    with pytest.raises(FileNotFoundError, match="Preview decoder folder not found"):
        DualDiffusionPipeline.from_pretrained(plain_folder, device="cpu", preview_decoder=tmp_path / "nope")


def test_a_decoder_for_other_latents_is_refused_in_one_line(plain_folder, tmp_path):
    solid_decoder(latent_channels=16, levels=4).save_pretrained(tmp_path / "taesd3")  # SD3's: 16 channels, f = 8
    with pytest.raises(ModelFolderError) as info:
        DualDiffusionPipeline.from_pretrained(plain_folder, device="cpu", preview_decoder=tmp_path / "taesd3")
    assert "taesd3" in str(info.value) and "16-channel latents at factor 8" in str(info.value)


def test_sd3_latents_with_a_taesd3_like_folder(tmp_path):
    from test_released_layout import save_released_folder  # the released D-DiT layout: 16 channels, f = 8

    folder = save_released_folder(tmp_path / "released")
    solid_decoder(latent_channels=16, levels=4, shift=0.0609).save_pretrained(tmp_path / "taesd3")
    pipe = DualDiffusionPipeline.from_pretrained(folder, device="cpu", preview_decoder=str(tmp_path / "taesd3"))
    preview = pipe.decode_preview(torch.randn(1, 16, 8, 8), "np")
    assert preview.shape == (1, 64, 64, 3) and np.allclose(preview, RED)


@pytest.mark.slow  # the app: importing gradio takes seconds
def test_the_app_option_and_the_generate_previews(plain_folder, tmp_path, monkeypatch):
    import app
    import app_image

    solid_decoder().save_pretrained(tmp_path / "taesd")
    built = []
    monkeypatch.setattr(app, "build_demo", lambda pipe: built.append(pipe) or SimpleNamespace(
        block_thread=lambda: None, close=lambda: None))
    monkeypatch.setattr(app, "launch", lambda *args, **kwargs: None)
    app.main(["--model", str(plain_folder), "--device", "cpu", "--preview-decoder", str(tmp_path / "taesd")])
    pipe = built[0]
    pipe.set_progress_bar_config(disable=True)
    updates = list(app_image.generate(pipe, "a red circle", "", 2, 2.0, 0, False))
    previews = [np.asarray(update[0]) for update in updates[:-1]]
    assert len(previews) == 2 and all((p == (255, 0, 0)).all() for p in previews)
    assert not (np.asarray(updates[-1][0]) == (255, 0, 0)).all()  # the final image: the VAE's decode


def test_a_hub_download_fetches_the_preview_decoder():
    for name in ("preview_decoder/config.json", "preview_decoder/diffusion_pytorch_model.safetensors"):
        assert any(fnmatch.fnmatch(name, pattern) for pattern in HUB_FILES)


def tiny_config(**overrides) -> PreviewDecoderConfig:
    """Factor 2 for the tiny pipeline's VAE; a few steps on a pool of 16 scenes take well under a second."""
    fields = dict(channels=4, decoder_blocks=(1, 0), encoder_channels=4, pool_size=16, steps=30, batch_size=4,
                  lr=1e-2, warmup_steps=2, log_every=10, encode_batch_size=8, eval_images=4, seed=0)
    return PreviewDecoderConfig(**{**fields, **overrides})


@pytest.mark.slow  # 30 training steps
def test_training_writes_a_loadable_decoder_and_installs_it(tmp_path):
    folder = tmp_path / "model"
    build_tiny_pipeline().save_pretrained(folder)
    trained = train_preview_decoder(tiny_config(), folder, tmp_path / "out", install_into_model=True)
    report = json.loads((tmp_path / "out" / "preview_decoder_report.json").read_text())
    losses = [entry["loss"] for entry in report["history"]]
    assert len(losses) == 3 and losses[-1] < losses[0], losses
    loaded = AutoencoderTiny.from_pretrained(tmp_path / "out")
    vae = DualDiffusionPipeline.from_pretrained(folder, device="cpu").vae
    assert (loaded.config.scaling_factor, loaded.config.shift_factor) == (vae.config.scaling_factor,
                                                                           vae.config.shift_factor or 0.0)
    for name, tensor in trained.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor)
    pipe = DualDiffusionPipeline.from_pretrained(folder, device="cpu")  # --install: the folder now has it
    torch.testing.assert_close(pipe.preview_decoder.state_dict(), trained.state_dict())
    assert pipe.decode_preview(latents(), "pt").shape == (1, 3, 16, 16)


def test_training_is_seeded(tmp_path):
    first = train_preview_decoder(tiny_config(steps=3), save_tiny(tmp_path / "a"), tmp_path / "a_out")
    second = train_preview_decoder(tiny_config(steps=3), save_tiny(tmp_path / "b"), tmp_path / "b_out")
    torch.testing.assert_close(first.state_dict(), second.state_dict())


def save_tiny(folder):
    build_tiny_pipeline().save_pretrained(folder)
    return folder


def test_the_shipped_config_loads_and_a_wrong_factor_is_named(tmp_path):
    config = PreviewDecoderConfig.from_yaml("train/configs/preview_decoder_shapes.yaml")
    assert config.decoder_blocks == (2, 1, 0)
    with pytest.raises(ValueError, match="decoder_blocks has 3 levels"):
        train_preview_decoder(config, save_tiny(tmp_path / "model"), tmp_path / "out")  # the tiny VAE: factor 2
