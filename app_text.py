"""The app's text tabs: Caption (with an optional in-fill template) and Chat, each streaming its tokens unmasking.

The token views colour each revealed token by the probability the model gave it when it was committed (a toggle
shows "new this step" instead); given words (a question, a template's words) are marked as given.
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING

import gradio as gr
import numpy as np

import shapes_world as sw
from app_inputs import (
    HEAVY, MAX_PACE, Domain, ImageUpload, Radio, Slider, done, image_input, number, on_gpu, pace_seconds, paced,
    read_image, start, stopped, user_error, warn_unknown_words,
)
from ddit.checks import MAX_STEPS, seeded_generator
from ddit.task_defaults import SAMPLERS

if TYPE_CHECKING:
    from ddit import DualDiffusionPipeline, TextStep

MASK_GLYPH, END_GLYPH = "▒", "·"
# confidence bands of a committed token: (label, lowest probability), most sure first
BANDS = (("sure (p ≥ 0.9)", 0.9), ("fairly sure (0.5-0.9)", 0.5), ("unsure (p < 0.5)", 0.0))
COLORS = {"masked": "#d0d0d0", "new": "#ffb347", "given": "#9ec5fe",
          BANDS[0][0]: "#8fd19e", BANDS[1][0]: "#ffe08a", BANDS[2][0]: "#f5a3a3"}
VIEWS = ("confidence", "new this step")  # what the token colours show
LEGENDS = {VIEWS[0]: {k: v for k, v in COLORS.items() if k != "new"},  # each colouring's legend: its own labels
           VIEWS[1]: {k: COLORS[k] for k in ("masked", "new", "given")}}
VIEW_HELP = ("Token colours: confidence = the probability the model gave a token when it committed it; "
             "new this step = the tokens revealed by the step shown.")
CHAT_NOTE = ("Each question is answered on its own: the model was trained on single question–answer pairs, so "
             "earlier turns are not part of what it reads.")


def band(p: float) -> str:
    """The confidence band label of a committed token's probability."""
    return next(label for label, low in BANDS if p >= low)


def token_view(pipe: DualDiffusionPipeline, state: TextStep, row: int = 0,
               colour: str = VIEWS[0]) -> list[tuple[str, str | None]]:
    """(text, label) pairs for ``gr.HighlightedText``: given (question, template words), masked, and revealed
    tokens labelled by their confidence band or, with ``colour="new this step"``, as new when revealed now."""
    ids, masked = state.token_ids[row].tolist(), state.masked[row].tolist()
    revealed, response = state.revealed[row].tolist(), state.response_mask[row].tolist()
    confidence = state.confidence[row].tolist() if state.confidence is not None else [math.nan] * len(ids)
    view, ended = [], False
    for tid, is_masked, is_new, in_slot, p in zip(ids, masked, revealed, response, confidence):
        if is_masked:
            view.append((MASK_GLYPH, "masked"))
            continue
        text = END_GLYPH if in_slot and tid == pipe.end_token_id else pipe.tokenizer.decode([tid])
        ended |= in_slot and tid == pipe.end_token_id
        if colour == VIEWS[1]:
            label = "given" if not in_slot else "new" if is_new else None
        else:
            label = "given" if not in_slot or (math.isnan(p) and text != END_GLYPH) else \
                None if math.isnan(p) else band(p)
        view.append((text, label))
    if ended and not any(masked):  # finished: drop the end-of-text padding
        while view and view[-1][0] == END_GLYPH:
            view.pop()
    return [(text.strip() + " ", label) for text, label in view]  # spaced: unlabelled spans would run together


def recolour(step, history, colour):
    """The toggle changed: the token box shows the colouring's view of the step on show and its legend (the runs'
    and replay's outputs stay plain token lists, the shape API clients read)."""
    colour = colour if colour in VIEWS else VIEWS[0]
    return gr.update(value=replay(step, history, colour) if history else None, color_map=LEGENDS[colour])


def views(pipe, state) -> dict:
    """The step's token view in each colouring (kept for the replay slider and the toggle)."""
    return {colour: token_view(pipe, state, colour=colour) for colour in VIEWS}


def text_stats(pipe, state, seconds: float) -> str:
    """The finished status line of a text run: steps, answer tokens, forward passes, tokens/s, latency."""
    row = state.response_mask[0] & ~state.masked[0] & (state.token_ids[0] != pipe.end_token_id)
    return done(state.step + 1, state.forward_passes, seconds, int(row.sum()))


# ----------------------------------------------------------------------------- handlers
@on_gpu
def caption(pipe, image, steps, length, sampler, seed, pace=0, template="", colour=VIEWS[0]):
    """Stream the caption's tokens unmasking (or a template's blanks filling); keep every step for replay."""
    image, pace = read_image(pipe, image), pace_seconds(pace)
    options = dict(num_inference_steps=number(steps, "Steps"), sampler=sampler,
                   generator=seeded_generator(number(seed, "Seed")), reveal_per_step=1 if pace else None)
    if template and template.strip():
        if "_" not in template.split():
            raise user_error("The template has no blank: write _ for each word the model should fill, e.g. "
                             "“a _ red _ at the top left”.")
        warn_unknown_words(pipe, " ".join(w for w in template.split() if w != "_"))
        steps_iter = start(lambda: pipe.iter_infill(image, template.strip(), **options))
    else:
        steps_iter = start(lambda: pipe.iter_caption(image, max_length=number(length, "Length"), **options))
    history, seconds = [], 0.0
    for state, secs in paced(steps_iter, pace):
        seconds += secs
        history.append(views(pipe, state))
        status = f"step {state.step + 1}/{state.num_steps}"
        yield history[-1][colour], pipe.decode_text(state)[0], gr.Slider(visible=False), history, status
    text, stats = pipe.decode_text(state)[0], text_stats(pipe, state, seconds)
    yield history[-1][colour], text, replay_control(len(history)), history, stats


def replay_control(shown: int) -> gr.Slider:
    """The replay slider after a run that showed ``shown`` steps: at the last one; hidden when there is only one
    (a caption that finished in one step has nothing to replay, and a slider needs two ends)."""
    if shown < 2:
        return gr.Slider(visible=False)
    return gr.Slider(1, shown, value=shown, step=1, visible=True)


def replay(step, history, colour=VIEWS[0]):
    """The tokens as they were after replay step ``step`` (the last one when the slider is hidden)."""
    if not history:
        return gr.HighlightedText()
    step = len(history) if step is None else int(step)
    return history[max(0, min(len(history), step)) - 1][colour if colour in VIEWS else VIEWS[0]]


@on_gpu
def chat(pipe, image, message, history, steps, sampler, seed, pace=0, colour=VIEWS[0]):
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
        view = token_view(pipe, state, colour=colour)
        answer = " ".join(t.strip() for t, label in view if label != "given" and t.strip() != END_GLYPH)
        history[-1] = {"role": "assistant", "content": answer}
        yield history, view, "", f"step {state.step + 1}/{state.num_steps}"
    history[-1] = {"role": "assistant", "content": pipe.decode_text(state)[0] or "(no answer)"}
    yield history, view, "", text_stats(pipe, state, seconds)


def fresh_scene():
    """A new random Shapes-World scene to caption or ask about, with its true caption."""
    rng = np.random.default_rng()
    scene = sw.sample_scene(rng)
    return sw.render(scene, rng), f"drawn: {sw.caption(scene)}"


# ----------------------------------------------------------------------------- layout
def token_box(label: str) -> gr.HighlightedText:
    return gr.HighlightedText(label=label, color_map=LEGENDS[VIEWS[0]], show_legend=True, combine_adjacent=False)


def colour_toggle() -> Radio:
    return Radio(list(VIEWS), value=VIEWS[0], label="Colour tokens by", info=VIEW_HELP)


def caption_tab(pipe: DualDiffusionPipeline, domain: Domain) -> None:
    """An image (uploaded, an example or a fresh scene), an optional template and settings; the tokens unmasking,
    then a replay slider."""
    d = pipe.defaults
    with gr.Row():
        with gr.Column():
            image = image_input("Image")
            if domain.shapes_world:
                drawn = gr.Markdown()
                draw = gr.Button("Draw a new scene")
                draw.click(fresh_scene, None, [image, drawn], queue=False)
            template = gr.Textbox("", label="Template (optional): fill in the blanks",
                                  placeholder="a _ red _ at the top left",
                                  info="each _ is one word the model fills; the other words are kept as given")
            steps, sampler, seed, pace = text_controls(image, domain.example_images, d.caption.num_inference_steps,
                                                       d.caption.sampler)
            length = gr.Number(d.caption.max_length, label="Length (tokens)", info="caption only")
            with gr.Row():
                go = gr.Button("Caption", variant="primary")
                stop = gr.Button("Stop")
        with gr.Column():
            tokens = token_box("Tokens (▒ masked)")
            colour = colour_toggle()
            text = gr.Textbox(label="Caption")
            status = gr.Markdown()
            replay_slider = Slider(1, 2, value=1, step=1, label="Replay step", visible=False)
    history = gr.State([])
    event = go.click(partial(caption, pipe), [image, steps, length, sampler, seed, pace, template, colour],
                     [tokens, text, replay_slider, history, status], api_name="caption", **HEAVY)
    replay_slider.change(replay, [replay_slider, history, colour], [tokens], queue=False)
    colour.change(recolour, [replay_slider, history, colour], [tokens], queue=False, api_name=False)
    # cancel first, then say where it stopped: an update still in flight cannot overwrite the message
    stop.click(None, None, None, cancels=[event], queue=False).then(stopped, status, status, queue=False)


def text_controls(image: ImageUpload, example_images: list[str], steps: int, sampler: str) -> tuple:
    """Example images for ``image``, then the (steps, sampler, seed, pace) controls of a text task."""
    if example_images:
        gr.Examples(example_images, inputs=[image], label="Example images")
    return (gr.Number(steps, label="Steps", info=f"1 to {MAX_STEPS}"),
            Radio(list(SAMPLERS), value=sampler, label="Sampler",
                  info="remask: like confidence, and may send its least sure tokens back to be predicted again"),
            gr.Number(0, label="Seed"),
            Slider(0, MAX_PACE, value=0, step=0.05, label="Pace (seconds per step)",
                   info="to watch: tokens appear one at a time; 0 = full speed"))


def chat_tab(pipe: DualDiffusionPipeline, domain: Domain) -> None:
    """An image and settings; a conversation whose latest answer unmasks live, with its tokens below."""
    d = pipe.defaults
    with gr.Row():
        with gr.Column():
            image = image_input("Image")
            steps, sampler, seed, pace = text_controls(image, domain.example_images, d.answer.num_inference_steps,
                                                       d.answer.sampler)
        with gr.Column():
            gr.Markdown(CHAT_NOTE)
            chatbot = gr.Chatbot(label="Chat about the image", height=300)
            question = gr.Textbox(label="Question", placeholder=domain.question_placeholder)
            with gr.Row():
                ask = gr.Button("Ask", variant="primary")
                stop = gr.Button("Stop")
                clear = gr.Button("Clear")
            status = gr.Markdown()
            tokens = token_box("This answer's tokens (blue: your question, given)")
            colour = colour_toggle()
    inputs = [image, question, chatbot, steps, sampler, seed, pace, colour]
    outputs = [chatbot, tokens, question, status]
    ask_event = ask.click(partial(chat, pipe), inputs, outputs, api_name="ask", **HEAVY)
    submit_event = question.submit(partial(chat, pipe), inputs, outputs, api_name=False, **HEAVY)
    stop.click(None, None, None, cancels=[ask_event, submit_event], queue=False).then(stopped, status, status,
                                                                                        queue=False)
    clear.click(lambda: ([], None, "", ""), None, [chatbot, tokens, question, status], queue=False)
    # the next answer is coloured the new way; the legend changes now
    colour.change(lambda c: gr.update(color_map=LEGENDS.get(c, LEGENDS[VIEWS[0]])), colour, tokens, queue=False,
                  api_name=False)
