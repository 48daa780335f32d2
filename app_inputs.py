"""What the app checks and says before and around a run: user errors, uploads read like the CLI reads them,
number boxes handed to the pipeline's own checks, words the model does not know, status lines, the wait for a
model still loading, and what the page offers for the model it serves (``Domain``)."""

from __future__ import annotations

try:  # Hugging Face ZeroGPU Spaces: GPU work runs inside @spaces.GPU (imported before torch, as it asks)
    import spaces

    on_gpu = spaces.GPU  # off ZeroGPU it returns the function unchanged
except ImportError:  # everywhere else the handlers run as they are

    def on_gpu(fn):
        return fn

import html
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr
from PIL import Image

import shapes_world as sw
from ddit.image_inputs import input_notes, load_image
from ddit.tasks.text import unknown_words
from shapes_world.examples import PROMPTS as EXAMPLE_PROMPTS

if TYPE_CHECKING:
    from ddit import DualDiffusionPipeline
    from ddit.task_defaults import TaskDefaults

VIEW_SIDE = 256  # 64x64 outputs are shown nearest-neighbour upscaled to this
MAX_PACE = 2.0  # seconds per step: the slowest the text tabs can be made to go, for watching
HEAVY = dict(concurrency_id="model", concurrency_limit=1)  # one model: its requests run one at a time
EXAMPLES_DIR = Path(__file__).resolve().parent / "assets" / "examples"
log = logging.getLogger("ddit.app")
# what a general model (a released D-DiT) is shown instead of Shapes-World's examples
GENERAL_PROMPTS = [
    "a photograph of an astronaut riding a horse",
    "a red bicycle leaning against a brick wall",
    "a bowl of fruit on a wooden table, studio lighting",
    "a watercolor painting of a lighthouse at sunset",
]


@dataclass
class Domain:
    """What the page offers for the model it serves: Shapes-World's examples and scene drawing for a model that
    speaks Shapes-World, general examples and no drawing otherwise."""

    shapes_world: bool
    example_prompts: list[str] = field(default_factory=list)
    example_images: list[str] = field(default_factory=list)
    prompt_placeholder: str = ""
    question_placeholder: str = ""

    @classmethod
    def of(cls, vocabulary) -> Domain:
        """The domain of a model whose tokenizer has ``vocabulary`` (its tokens; None: not a closed word-level
        vocabulary). Shapes-World's when every word of its example prompts is a token of a closed word-level
        vocabulary (the bundled model, any model ``train/`` makes on Shapes-World); general otherwise (a T5
        tokenizer reads every word, so its vocabulary says nothing of the domain)."""
        words = {w for p in EXAMPLE_PROMPTS for w in p.replace(",", " , ").split()}
        if vocabulary is not None and words <= set(vocabulary):
            return cls(True, list(EXAMPLE_PROMPTS), sorted(str(p) for p in EXAMPLES_DIR.glob("*.png")),
                       EXAMPLE_PROMPTS[0], "what color is the circle?")
        return cls(False, list(GENERAL_PROMPTS), [], GENERAL_PROMPTS[0], "What is in the picture?")

    @classmethod
    def of_pipeline(cls, pipe) -> Domain:
        """The domain of a loaded pipeline (its tokenizer's vocabulary when it has an unknown token)."""
        tokenizer = pipe.tokenizer
        closed = tokenizer.unk_token_id is not None and not any(t.startswith("▁") for t in tokenizer.get_vocab())
        return cls.of(tokenizer.get_vocab() if closed else None)

    @classmethod
    def of_folder(cls, folder: Path) -> Domain:
        """The domain of a saved model, read from its ``tokenizer/tokenizer.json`` before torch is imported."""
        path = Path(folder) / "tokenizer" / "tokenizer.json"
        try:
            model = json.loads(path.read_text())["model"]
        except (OSError, ValueError, KeyError):
            return cls.of(None)
        return cls.of(model.get("vocab") if model.get("type") == "WordLevel" else None)


def shown(text: str) -> str:
    """``text`` as it reads in a toast: gradio renders messages as HTML, so a typed "<img src=x>" would vanish."""
    return html.escape(text, quote=False)


def user_error(message: str) -> gr.Error:
    """An error for the person at the browser: shown as typed (HTML-escaped), logged as one line (no traceback)."""
    log.warning("user error: %s", message)
    return gr.Error(shown(message), print_exception=False)


class DrawnAsBase:
    """A subclass of a gradio component, drawn in the browser by its gradio base's front end: gradio finds a front
    end by the class's name and a hash of its module, and would look for a custom component's files beside this
    module (an ``ImageUpload`` was drawn as nothing at all)."""

    @classmethod
    def _base(cls) -> type:
        return next(c for c in cls.__mro__ if c.__module__.startswith("gradio.components."))

    def get_block_name(self) -> str:
        return self._base().__name__.lower()

    def get_block_class(self) -> str:
        return self._base().__name__.lower()

    @classmethod
    def get_component_class_id(cls) -> str:
        return cls._base().get_component_class_id()


class NamedErrors(DrawnAsBase):
    """Gradio's own checks of an input (out of range, not one of the choices) say "Value -1 is less than minimum
    value 0." without saying which field; mixed into a component, the message starts with the field's label."""

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except gr.Error as err:
            raise user_error(f"{self.label}: {err.message}") from None


class Slider(NamedErrors, gr.Slider):
    """``gr.Slider`` whose range errors name the slider."""


class Radio(NamedErrors, gr.Radio):
    """``gr.Radio`` whose "not one of the choices" errors name the radio."""


class ImageUpload(DrawnAsBase, gr.Image):
    """An image upload that reads files the way the CLI does (``ddit.image_inputs.load_image``): anything that is
    not a readable image, too small to show anything or too large to decode gets the same message as there instead
    of gradio's bare "Error". Hands the handlers an RGB PIL image whose ``info["original_size"]`` is the upload's
    size. Build it with ``image_input`` (gradio reads a component's settings off its ``__init__`` signature, so a
    subclass keeps gr.Image's)."""

    def preprocess(self, payload):
        if payload is None:
            return None
        source = super().preprocess(payload) if payload.path is None else payload.path  # inline: gradio decodes
        try:
            return load_image(source)
        except ValueError as err:
            name = payload.orig_name or Path(str(payload.path)).name
            raise user_error(str(err).replace(str(payload.path), name)) from None


def image_input(label: str) -> ImageUpload:
    """The app's image upload box: any readable image, shown with square pixels."""
    return ImageUpload(type="pil", image_mode=None, height=VIEW_SIDE, elem_classes=["pixel-view"], label=label)


def read_image(pipe: DualDiffusionPipeline, image) -> Image.Image:
    """The uploaded image; what the model will do to it is said in a notice."""
    if image is None:
        raise user_error("Please upload an image or pick an example first.")
    image = load_image(image)
    for note in input_notes(image, pipe.resolution):
        gr.Info(shown(f"Note: {note}."))
    return image


def number(value, name: str):
    """A number box's value for the pipeline: whole numbers as ints, anything else unchanged (the pipeline's checks
    say what is wrong with it); an empty box is asked for."""
    if value is None or value == "":
        raise user_error(f"Please enter a value for {name}.")
    return int(value) if isinstance(value, float) and value.is_integer() else value


def start(make_iterator):
    """The pipeline's step iterator, its input errors turned into messages for the user."""
    try:
        return make_iterator()
    except ValueError as err:
        raise user_error(str(err)) from None


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


def timed(iterator):
    """Each state of a step iterator with the seconds spent computing it (not the time spent showing it)."""
    while True:
        begin = time.perf_counter()
        try:
            state = next(iterator)
        except StopIteration:
            return
        yield state, time.perf_counter() - begin


def _count(n: int, word: str, plural: str = "s") -> str:
    return f"{n} {word}{plural if n != 1 else ''}"


def done(steps: int, passes: int | None = None, seconds: float | None = None, tokens: int | None = None) -> str:
    """The status line of a finished run: its steps and, when given, tokens, forward passes, tokens/s, latency."""
    parts = [f"done: {_count(steps, 'step')}"]
    if tokens is not None:
        parts.append(_count(tokens, "token"))
    if passes is not None:
        parts.append(_count(passes, "forward pass", "es"))
    if tokens is not None and seconds:
        parts.append(f"{tokens / seconds:.0f} tokens/s")
    if seconds is not None:
        parts.append(f"{seconds * 1000:.0f} ms")
    return " · ".join(parts)


def stopped(status: str) -> str:
    """The status line after Stop: where the run was."""
    return f"stopped at {status}" if status and status.startswith("step ") else status


def warn_unknown_words(pipe: DualDiffusionPipeline, text: str) -> None:
    """A notice naming the words the model's vocabulary does not have (they are read as unknown)."""
    unknown = unknown_words(pipe.tokenizer, text)
    if unknown:
        gr.Warning(shown(f"Not in the model's vocabulary (read as unknown): {', '.join(unknown[:8])}"))


def check_prompt_words(pipe: DualDiffusionPipeline, prompt: str) -> None:
    """Before sampling, refuse a prompt with words the model does not know, saying which and what to write
    instead (an image drawn from unknown words is a blank or a guess)."""
    unknown = unknown_words(pipe.tokenizer, prompt)
    if not unknown:
        return
    rewrite = sw.spell_out_counts(prompt)  # "two red squares" -> "a red square and a red square"
    if rewrite is None and not unknown_words(pipe.tokenizer, EXAMPLE_PROMPTS[-2]):
        rewrite = EXAMPLE_PROMPTS[-2]  # a model with Shapes-World's words: show how its prompts go
    advice = f" Write instead, e.g.: “{rewrite}”." if rewrite else ""
    raise user_error(f"Not in the model's vocabulary: {', '.join(unknown[:8])}.{advice}")


class LoadingPipeline:
    """Stands in for the pipeline while its weights load: the model's saved ``defaults`` and its ``domain`` at once
    (the page is drawn from them), everything else once ``ready`` was called (a request that comes sooner waits for
    it)."""

    def __init__(self, defaults: TaskDefaults, domain: Domain | None = None):
        self.defaults, self._loaded, self._pipe = defaults, threading.Event(), None
        self.domain = domain or Domain.of(None)  # what the page offers: read from the folder, not the pipeline

    def ready(self, pipe: DualDiffusionPipeline) -> None:
        self._pipe = pipe
        self._loaded.set()

    def __getattr__(self, name: str):
        if not self._loaded.wait(timeout=600):
            raise user_error("The model is still loading; please try again in a minute.")
        return getattr(self._pipe, name)
