"""ddit web UI: generate, caption and chat, each streaming its denoising step by step.

    python app.py [--model PATH_OR_HUB_ID] [--lora PATH] [--preview-decoder PATH] [--device cpu|cuda]
                  [--host 127.0.0.1] [--port 7860] [--share]

As a Hugging Face Space it starts the same way: ``DDIT_MODEL`` may name the model (e.g. a released D-DiT
checkpoint on a GPU Space), and on ZeroGPU hardware the handlers run inside ``@spaces.GPU``.

Every view is fed by the pipeline's own step iterators (``iter_generate``, ``iter_caption``,
``iter_answer``); the app formats what they yield and never samples by itself.
"""

from __future__ import annotations

try:  # Hugging Face ZeroGPU Spaces: GPU work runs inside @spaces.GPU (imported before torch, as it asks)
    import spaces

    on_gpu = spaces.GPU  # off ZeroGPU it returns the function unchanged
except ImportError:  # everywhere else the handlers run as they are

    def on_gpu(fn):
        return fn

import argparse
import random
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr
import numpy as np
from PIL import Image

import shapes_world as sw
from shapes_world.examples import PROMPTS as EXAMPLE_PROMPTS
from ddit.cli import DEFAULT_MODEL
from app_inputs import (
    VIEW_SIDE, ImageUpload, LoadingPipeline, Radio, Slider, check_prompt_words, done, image_input, number, read_image,
    start, stopped, timed, user_error, warn_unknown_words,
)
from ddit.checks import GUIDANCE_RANGE, MAX_STEPS, seeded_generator
from ddit.task_defaults import SAMPLERS, TaskDefaults

if TYPE_CHECKING:  # the app starts serving before torch is imported (``main``)
    from ddit import DualDiffusionPipeline, TextStep

EXAMPLES_DIR = Path(__file__).resolve().parent / "assets" / "examples"
MASK_GLYPH, END_GLYPH = "▒", "·"
MAX_FRAMES = 50  # the most steps the strip and the GIF show (evenly spaced beyond that)
MAX_PACE = 2.0  # seconds per step: the slowest the text tabs can be made to go, for watching
COLORS = {"masked": "#d0d0d0", "new": "#ffb347", "question": "#9ec5fe"}
CAPTION_COLORS = {k: v for k, v in COLORS.items() if k != "question"}  # captions have no question to show
# small images fill their box, drawn with square pixels (a 64x64 upload is otherwise a speck in a wide box)
CSS = ".pixel-view img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }"


# ----------------------------------------------------------------------------- formatting
def upscale(image: Image.Image, side: int = VIEW_SIDE) -> Image.Image:
    """Nearest-neighbour upscaling, so that small outputs stay crisp."""
    return image.resize((side, side), Image.NEAREST)


def token_view(pipe: DualDiffusionPipeline, state: TextStep, row: int = 0) -> list[tuple[str, str | None]]:
    """(text, label) pairs for ``gr.HighlightedText``: question, masked, newly revealed and settled tokens."""
    ids, masked = state.token_ids[row].tolist(), state.masked[row].tolist()
    revealed, response = state.revealed[row].tolist(), state.response_mask[row].tolist()
    view, ended = [], False
    for tid, is_masked, is_new, in_slot in zip(ids, masked, revealed, response):
        if not in_slot:
            view.append((pipe.tokenizer.decode([tid]), "question"))
        elif is_masked:
            view.append((MASK_GLYPH, "masked"))
        elif tid == pipe.end_token_id:
            view.append((END_GLYPH, "new" if is_new else None))
            ended = True
        else:
            view.append((pipe.tokenizer.decode([tid]), "new" if is_new else None))
    if ended and not any(masked):  # finished: drop the end-of-text padding
        while view and view[-1][0] == END_GLYPH:
            view.pop()
    return [(text.strip() + " ", label) for text, label in view]  # spaced: unlabelled spans would run together


# ----------------------------------------------------------------------------- handlers
@on_gpu
def generate(pipe, prompt, negative, steps, guidance, seed, random_seed):
    """Stream the predicted clean image of every solver step; end with the image, a strip and a GIF."""
    if not prompt or not prompt.strip():
        raise user_error("Please write a prompt, e.g. “a large red circle at the top left”.")
    seed = random.randrange(2**31) if random_seed else number(seed, "Seed")
    check_prompt_words(pipe, prompt)
    steps_iter = start(lambda: pipe.iter_generate(
        prompt.strip(), negative_prompt=negative or None, num_inference_steps=number(steps, "Steps"),
        guidance_scale=number(guidance, "Guidance"), generator=seeded_generator(seed)))
    frames, seconds = [], 0.0
    for state, secs in timed(steps_iter):
        seconds += secs
        # the conditional prediction (guided ones overshoot at high noise), by the small decoder when there is one
        preview = pipe.decode_preview(state.pred_clean_cond)[0]
        frames.append(preview)
        yield upscale(preview), None, None, f"step {state.step + 1}/{state.num_steps} · seed {seed}"
    final = pipe.decode_latents(state.latents)[0]
    kept = kept_steps(len(frames))
    gif = Path(tempfile.mkdtemp(prefix="ddit-")) / f"ddit-{seed}.gif"
    upscale(frames[kept[0]], 128).save(gif, save_all=True, duration=150, loop=0,
                                       append_images=[upscale(f, 128) for f in [frames[i] for i in kept[1:]] + [final]])
    strip = [(upscale(frames[i], 96), f"step {i + 1}") for i in kept]
    yield upscale(final), strip, str(gif), f"{done(len(frames), state.forward_passes, seconds)} · seed {seed}"


def kept_steps(steps: int, most: int = MAX_FRAMES) -> list[int]:
    """The steps the strip and the GIF show: all of them, or ``most`` evenly spaced ones ending with the last (a
    1000-step run would otherwise send a thousand thumbnails)."""
    if steps <= most:
        return list(range(steps))
    return sorted({round(k * (steps - 1) / (most - 1)) for k in range(most)})


def text_stats(pipe, state, seconds: float) -> str:
    """The finished status line of a text run: steps, answer tokens, forward passes, tokens/s, latency."""
    row = state.response_mask[0] & ~state.masked[0] & (state.token_ids[0] != pipe.end_token_id)
    return done(state.step + 1, state.forward_passes, seconds, int(row.sum()))


def pace_seconds(pace) -> float:
    """The pace control's value, checked: seconds to pause after each shown step (0: none)."""
    try:
        pace = float(pace if pace is not None else 0)
    except (TypeError, ValueError):
        raise user_error(f"Pace must be a number of seconds per step, got {pace!r}.") from None
    if not 0 <= pace <= MAX_PACE:
        raise user_error(f"Pace must be between 0 and {MAX_PACE:g} seconds per step, got {pace:g}.")
    return pace


def paced(steps_iter, pace: float):
    """``timed(steps_iter)``, pausing ``pace`` seconds after each step is shown: the real loop, slowed to watch."""
    for state, secs in timed(steps_iter):
        yield state, secs
        time.sleep(pace)


@on_gpu
def caption(pipe, image, steps, length, sampler, seed, pace=0):
    """Stream the caption's tokens unmasking; keep every step for the replay slider."""
    image, pace = read_image(pipe, image), pace_seconds(pace)
    steps_iter = start(lambda: pipe.iter_caption(
        image, num_inference_steps=number(steps, "Steps"), max_length=number(length, "Length"), sampler=sampler,
        generator=seeded_generator(number(seed, "Seed")), reveal_per_step=1 if pace else None))
    history, seconds = [], 0.0
    for state, secs in paced(steps_iter, pace):
        seconds += secs
        history.append(token_view(pipe, state))
        status = f"step {state.step + 1}/{state.num_steps}"
        yield history[-1], pipe.decode_text(state)[0], gr.Slider(visible=False), history, status
    text, stats = pipe.decode_text(state)[0], text_stats(pipe, state, seconds)
    yield history[-1], text, replay_control(len(history)), history, stats


def replay_control(shown: int) -> gr.Slider:
    """The replay slider after a run that showed ``shown`` steps: at the last one; hidden when there is only one
    (a caption that finished in one step has nothing to replay, and a slider needs two ends)."""
    if shown < 2:
        return gr.Slider(visible=False)
    return gr.Slider(1, shown, value=shown, step=1, visible=True)


def replay(step, history):
    """The tokens as they were after replay step ``step``."""
    if not history:
        return gr.HighlightedText()
    return history[max(0, min(len(history), int(step))) - 1]


@on_gpu
def chat(pipe, image, message, history, steps, sampler, seed, pace=0):
    """Answer a question about the image, streaming the unmasking into the chat."""
    image, pace = read_image(pipe, image), pace_seconds(pace)
    if not message or not message.strip():
        raise user_error("Please type a question about the image.")
    steps_iter = start(lambda: pipe.iter_answer(
        image, message.strip(), num_inference_steps=number(steps, "Steps"), sampler=sampler,
        generator=seeded_generator(number(seed, "Seed")), reveal_per_step=1 if pace else None))
    warn_unknown_words(pipe, message)
    history = list(history or []) + [{"role": "user", "content": message.strip()},
                                     {"role": "assistant", "content": ""}]
    seconds = 0.0
    for state, secs in paced(steps_iter, pace):
        seconds += secs
        view = token_view(pipe, state)
        partial_answer = " ".join(t.strip() for t, label in view if label != "question" and t.strip() != END_GLYPH)
        history[-1] = {"role": "assistant", "content": partial_answer}
        yield history, view, "", f"step {state.step + 1}/{state.num_steps}"
    history[-1] = {"role": "assistant", "content": pipe.decode_text(state)[0] or "(no answer)"}
    yield history, view, "", text_stats(pipe, state, seconds)


def fresh_scene():
    """A new random Shapes-World scene to caption or ask about, with its true caption."""
    rng = np.random.default_rng()
    scene = sw.sample_scene(rng)
    return sw.render(scene, rng), f"drawn: {sw.caption(scene)}"


# ----------------------------------------------------------------------------- layout
HEAVY = dict(concurrency_id="model", concurrency_limit=1)  # one model: its requests run one at a time


def build_demo(pipe: DualDiffusionPipeline) -> gr.Blocks:
    """The three-tab app around a pipeline, or a ``LoadingPipeline`` (no server is started here)."""
    example_images = sorted(str(p) for p in EXAMPLES_DIR.glob("*.png"))
    with gr.Blocks(title="ddit — Dual Diffusion") as demo:
        gr.Markdown("# ddit — one diffusion transformer that draws, captions and answers\n"
                    "Each result is denoised step by step in front of you: images by flow matching, "
                    "text by unmasking tokens.")
        with gr.Tab("Generate"):
            generate_tab(pipe, list(EXAMPLE_PROMPTS))  # the domain's own (also assets/examples/prompts.txt)
        with gr.Tab("Caption"):
            caption_tab(pipe, example_images)
        with gr.Tab("Chat"):
            chat_tab(pipe, example_images)
    return demo


def generate_tab(pipe: DualDiffusionPipeline, example_prompts: list[str]) -> None:
    """Prompt and settings on the left; the live preview, every step and the GIF on the right."""
    d = pipe.defaults
    with gr.Row():
        with gr.Column():
            prompt = gr.Textbox(label="Prompt", placeholder="a large red circle at the top left")
            negative = gr.Textbox("", label="Negative prompt", placeholder="(optional)")
            with gr.Row():
                steps = gr.Number(d.generate.num_inference_steps, label="Steps", info=f"1 to {MAX_STEPS}")
                low, high = GUIDANCE_RANGE
                guidance = gr.Number(d.generate.guidance_scale, label="Guidance", info=f"{low:g} to {high:g}; 1 = none")
            with gr.Row():
                seed = gr.Number(0, label="Seed")
                random_seed = gr.Checkbox(False, label="Random seed")
            with gr.Row():
                go = gr.Button("Generate", variant="primary")
                stop = gr.Button("Stop")
            if example_prompts:
                gr.Examples([[p] for p in example_prompts], inputs=[prompt], label="Example prompts")
        with gr.Column():
            gr.Markdown("**Denoising** (the predicted clean image at each step)")
            image_out = gr.Image(show_label=False, type="pil", format="png", height=VIEW_SIDE,
                                 elem_classes=["pixel-view"])  # no label: it covered the image's top
            status = gr.Markdown()
            # 5 wide: wider rows overflow the column
            strip = gr.Gallery(label=f"Every step (at most {MAX_FRAMES}, evenly spaced)", columns=5, height="auto")
            gif = gr.File(label="The whole process (GIF)")
    event = go.click(partial(generate, pipe), [prompt, negative, steps, guidance, seed, random_seed],
                     [image_out, strip, gif, status], api_name="generate", **HEAVY)
    # cancel first, then say where it stopped: an update still in flight cannot overwrite the message
    stop.click(None, None, None, cancels=[event], queue=False).then(stopped, status, status, queue=False)


def caption_tab(pipe: DualDiffusionPipeline, example_images: list[str]) -> None:
    """An image (uploaded, an example or a fresh scene) and settings; the tokens unmasking, then a replay slider."""
    d = pipe.defaults
    with gr.Row():
        with gr.Column():
            image = image_input("Image")
            drawn = gr.Markdown()
            draw = gr.Button("Draw a new scene")
            steps, sampler, seed, pace = text_controls(image, example_images, d.caption.num_inference_steps,
                                                       d.caption.sampler)
            length = gr.Number(d.caption.max_length, label="Length (tokens)")
            with gr.Row():
                go = gr.Button("Caption", variant="primary")
                stop = gr.Button("Stop")
        with gr.Column():
            tokens = gr.HighlightedText(label="Tokens (▒ masked, orange: revealed this step)",
                                        color_map=CAPTION_COLORS, show_legend=True, combine_adjacent=False)
            text = gr.Textbox(label="Caption")
            status = gr.Markdown()
            replay_slider = Slider(1, 2, value=1, step=1, label="Replay step", visible=False)
    history = gr.State([])
    draw.click(fresh_scene, None, [image, drawn], queue=False)
    event = go.click(partial(caption, pipe), [image, steps, length, sampler, seed, pace],
                     [tokens, text, replay_slider, history, status], api_name="caption", **HEAVY)
    replay_slider.change(replay, [replay_slider, history], [tokens], queue=False)
    # cancel first, then say where it stopped: an update still in flight cannot overwrite the message
    stop.click(None, None, None, cancels=[event], queue=False).then(stopped, status, status, queue=False)


def text_controls(image: ImageUpload, example_images: list[str], steps: int, sampler: str) -> tuple:
    """Example images for ``image``, then the (steps, sampler, seed, pace) controls of a text task."""
    if example_images:
        gr.Examples(example_images, inputs=[image], label="Example images")
    return (gr.Number(steps, label="Steps", info=f"1 to {MAX_STEPS}"),
            Radio(list(SAMPLERS), value=sampler, label="Sampler"), gr.Number(0, label="Seed"),
            Slider(0, MAX_PACE, value=0, step=0.05, label="Pace (seconds per step)",
                      info="to watch: tokens appear one at a time; 0 = full speed"))


def chat_tab(pipe: DualDiffusionPipeline, example_images: list[str]) -> None:
    """An image and settings; a conversation whose latest answer unmasks live, with its tokens below."""
    d = pipe.defaults
    with gr.Row():
        with gr.Column():
            image = image_input("Image")
            steps, sampler, seed, pace = text_controls(image, example_images, d.answer.num_inference_steps,
                                                       d.answer.sampler)
        with gr.Column():
            chatbot = gr.Chatbot(label="Chat about the image", height=300)
            question = gr.Textbox(label="Question", placeholder="what color is the circle?")
            with gr.Row():
                ask = gr.Button("Ask", variant="primary")
                stop = gr.Button("Stop")
                clear = gr.Button("Clear")
            status = gr.Markdown()
            tokens = gr.HighlightedText(label="This answer's tokens (blue: your question, fixed)",
                                        color_map=COLORS, show_legend=True, combine_adjacent=False)
    inputs, outputs = [image, question, chatbot, steps, sampler, seed, pace], [chatbot, tokens, question, status]
    ask_event = ask.click(partial(chat, pipe), inputs, outputs, api_name="ask", **HEAVY)
    submit_event = question.submit(partial(chat, pipe), inputs, outputs, api_name=False, **HEAVY)
    stop.click(None, None, None, cancels=[ask_event, submit_event], queue=False).then(stopped, status, status,
                                                                                        queue=False)
    clear.click(lambda: ([], None, "", ""), None, [chatbot, tokens, question, status], queue=False)


def main(argv: list[str] | None = None) -> None:
    """``python app.py``: the page is served as soon as it is drawn from the model's saved defaults (no torch yet),
    then the model loads (torch, diffusers and the weights: most of the start-up time) while a person reads it."""
    parser = argparse.ArgumentParser(description="ddit web UI (Gradio)")
    parser.add_argument("--model", default=str(DEFAULT_MODEL),
                        help="pipeline folder or Hub id (default: $DDIT_MODEL, else the bundled model)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--host", default=None, help="default: $GRADIO_SERVER_NAME, else 127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="default: $GRADIO_SERVER_PORT, else 7860")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.add_argument("--lora", default=None, help="LoRA weights to load onto the model (a training run's lora/)")
    parser.add_argument("--preview-decoder", default=None,
                        help="AutoencoderTiny folder for the step previews, e.g. TAESD3 for SD3-latent models "
                             "(default: the model's own, else the full VAE)")
    args = parser.parse_args(argv)
    from ddit.model_folder import read_index, resolve_folder, saved_defaults

    try:
        folder = resolve_folder(args.model)
        loading = LoadingPipeline(TaskDefaults.from_dict(saved_defaults(read_index(folder))))
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}")
    demo = build_demo(loading)
    launch(demo, args.host, args.port, share=args.share, block=False, quiet=False)
    try:
        from ddit import DualDiffusionPipeline

        pipe = DualDiffusionPipeline.from_pretrained(folder, device=args.device, preview_decoder=args.preview_decoder)
        if args.lora:
            pipe.load_lora_weights(args.lora)
    except (FileNotFoundError, ValueError) as err:
        demo.close()
        raise SystemExit(f"error: {err}")
    loading.ready(pipe)
    demo.block_thread()


def _advise_on_full_queue(demo: gr.Blocks) -> None:
    """When the queue is full, tell the user to retry (gradio says only "Queue is full. Max size is ...").

    Gradio has no setting for this message: the only way is to wrap its private ``Blocks._queue.push``, kept here
    alone; ``tests/test_app.py::test_a_full_queue_says_to_retry`` fails when a gradio release changes it."""
    queue, push = demo._queue, demo._queue.push

    async def push_or_advise(*args, **kwargs):
        accepted, detail, state = await push(*args, **kwargs)
        if state == "queue_full":
            detail = (f"The app is busy: {len(queue)} requests are already waiting, the most it holds. "
                      "Please try again in a minute.")
        return accepted, detail, state

    queue.push = push_or_advise


def launch(demo: gr.Blocks, host: str | None, port: int | None, share: bool = False, block: bool = True,
           max_queue: int = 32, quiet: bool | None = None) -> str:
    """Queue (one request on the model at a time, ``max_queue`` waiting) and serve ``demo``; returns its URL.
    ``host``/``port`` None: gradio's ($GRADIO_SERVER_NAME / $GRADIO_SERVER_PORT, as a Space sets them).
    With ``block=False`` the server runs in a background thread (tests: quiet unless told); stop it with
    ``demo.close()``."""
    demo.queue(default_concurrency_limit=1, max_size=max_queue)
    _advise_on_full_queue(demo)
    demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
                quiet=(not block) if quiet is None else quiet, css=CSS)
    return demo.local_url


if __name__ == "__main__":
    main()
