import numpy as np
import PIL.Image
import pytest
import torch
from bad_inputs import write_png_bomb
from helpers import generator as gen

from ddit import DualDiffusionPipeline
from ddit.task_defaults import TaskDefaults
from ddit.flow_matching import classifier_free_guidance


def test_generate_shapes_and_determinism(pipe):
    a = pipe(["a red circle", "a blue square"], num_inference_steps=3, generator=gen(0), output_type="np").images
    b = pipe(["a red circle", "a blue square"], num_inference_steps=3, generator=gen(0), output_type="np").images
    assert a.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(a, b)
    c = pipe(["a red circle", "a blue square"], num_inference_steps=3, generator=gen(1), output_type="np").images
    assert not np.array_equal(a, c)


def test_cfg_batched_equals_two_separate_calls(pipe):
    steps, scale = 3, 3.0
    latents = torch.randn(1, 4, 8, 8, generator=gen(5))
    batched = list(pipe.iter_generate("a red circle", num_inference_steps=steps, guidance_scale=scale,
                                      latents=latents.clone()))[-1].latents
    cond = pipe.encode_prompt(["a red circle"], pipe.defaults.generate.max_sequence_length)
    uncond = pipe.encode_prompt([""], pipe.defaults.generate.max_sequence_length)
    pipe.scheduler.set_timesteps(steps)
    x = latents.clone()
    with torch.no_grad():
        for t in pipe.scheduler.timesteps:
            v_c = pipe.transformer(x, cond, t.reshape(1), return_logits=False).sample
            v_u = pipe.transformer(x, uncond, t.reshape(1), return_logits=False).sample
            x = pipe.scheduler.step(classifier_free_guidance(v_u, v_c, scale), t, x).prev_sample
    torch.testing.assert_close(batched, x, rtol=1e-5, atol=1e-5)


def test_step_iterator_and_callback(pipe):
    seen = []

    def callback(p, i, t, tensors):
        seen.append(i)
        return {"latents": tensors["latents"] * 0}

    states = list(pipe.iter_generate("a red circle", num_inference_steps=4, generator=gen(0),
                                     callback_on_step_end=callback))
    assert [s.step for s in states] == [0, 1, 2, 3] == seen
    assert states[0].pred_clean.shape == (1, 4, 8, 8)
    assert torch.count_nonzero(states[-1].latents) == 0


def test_interrupt_stops_sampling(pipe):
    states = []
    for state in pipe.iter_generate("a red circle", num_inference_steps=5, generator=gen(0)):
        states.append(state)
        pipe.interrupt = True
    assert len(states) == 1


def test_caption_and_answer_batched(pipe, image):
    caps = pipe.caption([image, image.rotate(90)], generator=gen(0)).text
    assert len(caps) == 2 and all(isinstance(c, str) for c in caps)
    answers = pipe.answer(image, ["what color is the circle?", "how many?"], generator=gen(0))
    assert len(answers.text) == 2
    assert (answers.token_ids != pipe.mask_token_id).all()


def test_defaults_come_from_the_model(pipe, image):
    states = list(pipe.iter_answer(image, "how many?"))
    assert len(states) == pipe.defaults.answer.num_inference_steps == 3
    prompt_len = int((~states[0].response_mask[0]).sum())
    assert states[0].response_mask.shape[1] == prompt_len + pipe.defaults.answer.max_length
    assert len(list(pipe.iter_generate("a red circle"))) == pipe.defaults.generate.num_inference_steps


def test_save_load_round_trip(pipe, image, tmp_path):
    pipe.save_pretrained(tmp_path)
    loaded = DualDiffusionPipeline.from_pretrained(tmp_path, device="cpu")
    loaded.set_progress_bar_config(disable=True)
    assert loaded.defaults == pipe.defaults
    a = pipe("a red circle", generator=gen(0), output_type="np").images
    b = loaded("a red circle", generator=gen(0), output_type="np").images
    np.testing.assert_array_equal(a, b)
    assert pipe.caption(image, generator=gen(2)).text == loaded.caption(image, generator=gen(2)).text
    assert torch.equal(pipe.answer(image, "how many?", generator=gen(3)).token_ids,
                       loaded.answer(image, "how many?", generator=gen(3)).token_ids)


@pytest.mark.parametrize("kwargs, match", [
    (dict(prompt=""), "empty"),
    (dict(prompt=[]), "empty list"),
    (dict(prompt="a", num_inference_steps=0), "between 1 and"),
    (dict(prompt="a", num_inference_steps=10**6), "between 1 and"),
    (dict(prompt="a", guidance_scale=float("nan")), "finite"),
    (dict(prompt="a", height=15), "multiple of 4"),
    (dict(prompt="a", width=64), "at most"),
    (dict(prompt="a", negative_prompt=["x", "y"]), "negative_prompt"),
])
def test_generate_input_checks(pipe, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pipe.iter_generate(**kwargs)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "1", "I;16"])
def test_odd_image_modes_are_converted(pipe, mode):
    image = PIL.Image.new("RGB", (37, 23), (200, 30, 30)).convert(mode)
    assert len(pipe.caption(image, generator=gen(0)).text) == 1


def test_tiny_huge_and_bad_images(pipe, tmp_path):
    with pytest.raises(ValueError, match=r"only 1x1 pixels; at least 8x8"):
        pipe.answer(PIL.Image.new("RGB", (1, 1)), "how many?")
    assert pipe.answer(PIL.Image.new("RGB", (8, 8)), "how many?").text
    assert pipe.answer(PIL.Image.new("RGB", (5000, 300)), "how many?").text
    bad = tmp_path / "not_an_image.png"
    bad.write_bytes(b"hello")
    with pytest.raises(ValueError, match="as an image"):
        pipe.caption(str(bad))
    with pytest.raises(ValueError, match="not found"):
        pipe.caption(str(tmp_path / "missing.png"))
    with pytest.raises(ValueError, match="Expected a PIL image"):
        pipe.caption(None)


def test_a_decompression_bomb_is_refused_unread(pipe, tmp_path):
    """A 20000x20000 PNG of a few hundred kB would take 1.2 GB decoded: refused from its header, naming its size."""
    bomb = tmp_path / "bomb.png"
    write_png_bomb(bomb, 20000, 20000)
    with pytest.raises(ValueError, match=r"^The image is 400,000,000 pixels; at most 67,108,864 \(8192x8192\)"):
        pipe.caption(str(bomb))
    write_png_bomb(bomb, 9000, 8000)  # under PIL's own refusal, over ours
    with pytest.raises(ValueError, match=r"^The image is 9000x8000 = 72,000,000 pixels; at most 67,108,864"):
        pipe.caption(str(bomb))
    with pytest.raises(ValueError, match=r"^The image is 9000x8000 = 72,000,000 pixels"):
        pipe.caption(np.zeros((8000, 9000), dtype=np.uint8))


def test_text_input_checks(pipe, image, caplog):
    with pytest.raises(ValueError, match="empty"):
        pipe.answer(image, "  ")
    with pytest.raises(ValueError, match="sampler"):
        pipe.caption(image, sampler="beam")
    with pytest.raises(ValueError, match="max_length"):
        pipe.caption(image, max_length=0)
    with pytest.raises(ValueError, match="2 images for 3"):
        pipe.answer([image, image], ["a?", "b?", "c?"])
    long_question = " ".join(["what"] * 40) + "?"
    with pytest.raises(ValueError, match=r"43 tokens long; this model reads at most 16 \(max_prompt_length\)"):
        pipe.answer(image, long_question)  # refused, never silently cut to an empty answer
    with pytest.raises(ValueError, match="whole number"):
        pipe.caption(image, num_inference_steps=2.5)
    assert pipe.caption(image, num_inference_steps=2.0, generator=gen(0)).text  # a whole float is a number of steps


@pytest.mark.parametrize("kwargs, message", [
    (dict(guidance_scale=-5.0), "between 0 and 50"), (dict(guidance_scale=1e9), "between 0 and 50"),
    (dict(guidance_scale=float("nan")), "finite"), (dict(num_inference_steps=0), "between 1 and 1000"),
    (dict(num_inference_steps=2.5), "whole number"), (dict(negative_prompt=["a", "b"]), "one string per prompt"),
])
def test_image_input_checks(pipe, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pipe("a red circle", **kwargs)


def test_a_prompt_longer_than_the_model_reads_is_refused(pipe):
    with pytest.raises(ValueError, match=r"prompt is \d+ tokens long; this model reads at most 32"):
        pipe("a red circle " * 3000)
    with pytest.raises(ValueError, match="negative prompt"):
        pipe("a red circle", negative_prompt="blue " * 40)


@pytest.mark.parametrize("seed, ok", [(0, True), (2**63 - 1, True), (2**70, False), (-1, False), (2.5, False),
                                      ("7", False), (3.0, True)])
def test_seeds_are_checked_before_sampling(seed, ok):
    from ddit.checks import seeded_generator
    if ok:
        assert seeded_generator(seed).initial_seed() == int(seed)
    else:
        with pytest.raises(ValueError, match="seed"):
            seeded_generator(seed)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        DualDiffusionPipeline.from_pretrained(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        DualDiffusionPipeline.from_pretrained(tmp_path)


def test_input_notes_say_what_happens_to_an_image():
    from ddit.image_inputs import input_notes, load_image
    big = PIL.Image.new("RGB", (8000, 6000), (255, 255, 255))
    notes = input_notes(load_image(big), 64)
    assert notes[0] == "shrunk from 8000x6000 to 4096x3072 first"
    assert "read at 64x64 (your image is 8000x6000), the centre square of it" in notes
    assert "single colour" in notes[-1]
    scene = PIL.Image.new("RGB", (64, 64), (255, 255, 255))
    scene.putpixel((3, 3), (200, 30, 30))
    assert input_notes(load_image(scene), 64) == []


# today's bundled model_index.json (2026-12-03), in the flat format of folders saved before per-task options
FLAT_DEFAULTS = {
    "answer_block_length": None, "answer_length": 20, "answer_max_new_tokens": None, "answer_sampler": "confidence",
    "answer_steps": 1, "answer_threshold": None, "answer_total_length": None, "caption_block_length": None,
    "caption_length": 28, "caption_max_new_tokens": None, "caption_prompt": "", "caption_sampler": "confidence",
    "caption_steps": 8, "caption_threshold": 0.95, "eos_early_stop": True, "guidance_interval": [0.6, 1.0],
    "guidance_scale": 2.5, "image_steps": 6, "max_prompt_length": 27, "max_sequence_length": 28,
    "question_template": "{question}", "resolution": 64}


def test_flat_task_defaults_of_older_folders_load_per_task(caplog):
    with caplog.at_level("WARNING"):
        d = TaskDefaults.from_dict(FLAT_DEFAULTS)
    assert not caplog.records
    assert (d.generate.num_inference_steps, d.generate.guidance_scale, d.generate.guidance_interval) == (6, 2.5,
                                                                                                        [0.6, 1.0])
    assert (d.caption.num_inference_steps, d.caption.max_length, d.caption.threshold, d.caption.eos_early_stop) == (
        8, 28, 0.95, True)
    assert (d.answer.num_inference_steps, d.answer.max_length, d.answer.question_template) == (1, 20, "{question}")
    assert d.caption.max_prompt_length == d.answer.max_prompt_length == 27 and d.resolution == 64
    assert TaskDefaults.from_dict(d.to_dict()) == d  # the per-task format round-trips
    assert set(d.to_dict()) == {"generate", "caption", "answer", "score", "resolution"}


def test_unknown_options_are_refused_naming_what_the_task_takes(pipe, image):
    with pytest.raises(TypeError, match=r"caption got unknown option\(s\) guidance_scale; it takes: "):
        pipe.caption(image, guidance_scale=2.0)
    with pytest.raises(TypeError, match=r"generate got unknown option\(s\) sampler"):
        pipe("a red circle", sampler="confidence")


def test_interrupt_is_a_property_as_in_diffusers(pipe):
    assert pipe.interrupt is False
    seen = []

    def stop_after_two(p, i, t, tensors):
        seen.append(i)
        p.interrupt = i >= 1
        return tensors

    states = list(pipe.iter_generate("a red circle", num_inference_steps=5, callback_on_step_end=stop_after_two))
    assert len(states) == 2 == len(seen) and pipe.interrupt is True
    assert len(list(pipe.iter_generate("a red circle", num_inference_steps=3))) == 3  # a new run clears it


def test_no_module_but_the_pipeline_reads_the_pipelines_private_attributes():
    import re
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "ddit"
    readers = [str(p.relative_to(package)) for p in package.rglob("*.py") if p.name != "pipeline.py"
               and re.search(r"\bpipe(line)?\._[a-z]", p.read_text())]
    assert readers == []
