"""The app's Score tab: rank captions for one image, or images for one prompt, by the model's own likelihoods
(``pipe.score_texts``, ``pipe.score_images``)."""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING

import gradio as gr

from app_inputs import HEAVY, Domain, image_input, number, on_gpu, read_image, start, user_error, warn_unknown_words
from ddit.checks import seeded_generator
from ddit.image_inputs import load_image

if TYPE_CHECKING:
    from ddit import DualDiffusionPipeline

MAX_CANDIDATES = 16
HEADERS = ["rank", "candidate", "score"]
SCORE_HELP = ("Higher fits better. Scores are log-likelihood bounds from shared noise: compare the candidates of one "
              "ranking, not numbers across rankings.")


def ranked(names: list[str], scores: list[float]) -> list[list]:
    """Rows (rank, name, score), best first."""
    order = sorted(range(len(names)), key=lambda i: -scores[i])
    return [[rank + 1, names[i], round(scores[i], 3)] for rank, i in enumerate(order)]


def _status(passes: int | None, seconds: float, count: int) -> str:
    return f"done: {count} candidates · {passes} forward passes each · {seconds * 1000:.0f} ms"


@on_gpu
def rank_texts(pipe, image, texts, samples, seed):
    """Rank the captions (one per line) for the image."""
    image = read_image(pipe, image)
    candidates = [line.strip() for line in (texts or "").splitlines() if line.strip()]
    if len(candidates) < 2:
        raise user_error("Please write at least two captions to rank, one per line.")
    if len(candidates) > MAX_CANDIDATES:
        raise user_error(f"At most {MAX_CANDIDATES} captions are ranked at once; got {len(candidates)}.")
    for text in candidates:
        warn_unknown_words(pipe, text)
    begin = time.perf_counter()
    out = start(lambda: pipe.score_texts(image, candidates, num_samples=number(samples, "Passes per candidate"),
                                         generator=seeded_generator(number(seed, "Seed"))))
    return ranked(candidates, out.scores), _status(out.forward_passes, time.perf_counter() - begin, len(candidates))


@on_gpu
def rank_images(pipe, prompt, files, samples, seed):
    """Rank the uploaded images for the prompt."""
    if not prompt or not prompt.strip():
        raise user_error("Please write the prompt the images are ranked for.")
    files = [f for f in files or [] if f is not None]
    if len(files) < 2:
        raise user_error("Please upload at least two images to rank.")
    if len(files) > MAX_CANDIDATES:
        raise user_error(f"At most {MAX_CANDIDATES} images are ranked at once; got {len(files)}.")
    warn_unknown_words(pipe, prompt)
    paths = [f if isinstance(f, str) else getattr(f, "name", f) for f in files]
    try:
        images = [load_image(p) for p in paths]
    except ValueError as err:
        raise user_error(str(err)) from None
    begin = time.perf_counter()
    out = start(lambda: pipe.score_images(prompt.strip(), images, num_samples=number(samples, "Passes per candidate"),
                                          generator=seeded_generator(number(seed, "Seed"))))
    names = [p.rsplit("/", 1)[-1] for p in paths]
    rows = ranked(names, out.scores)
    order = sorted(range(len(images)), key=lambda i: -out.scores[i])
    gallery = [(images[i], f"#{rank + 1} · {out.scores[i]:.3f}") for rank, i in enumerate(order)]
    return rows, gallery, _status(out.forward_passes, time.perf_counter() - begin, len(images))


def score_tab(pipe: DualDiffusionPipeline, domain: Domain) -> None:
    """Two rankings side by side: captions for an image, images for a prompt."""
    samples = pipe.defaults.score.num_samples
    gr.Markdown(SCORE_HELP)
    with gr.Row():
        with gr.Column():
            gr.Markdown("**Which caption fits this image?**")
            image = image_input("Image")
            if domain.example_images:
                gr.Examples(domain.example_images, inputs=[image], label="Example images")
            texts = gr.Textbox(label="Captions, one per line", lines=4,
                               placeholder="a large red circle at the top left\na large blue circle at the top left")
            with gr.Row():
                text_samples = gr.Number(samples, label="Passes per candidate", info="more: steadier scores")
                text_seed = gr.Number(0, label="Seed")
            go_texts = gr.Button("Rank captions", variant="primary")
            text_table = gr.Dataframe(headers=HEADERS, label="Captions, best first", interactive=False)
            text_status = gr.Markdown()
        with gr.Column():
            gr.Markdown("**Which image fits this prompt?**")
            prompt = gr.Textbox(label="Prompt", placeholder=domain.prompt_placeholder)
            files = gr.File(label="Images to rank", file_count="multiple", file_types=["image"])
            with gr.Row():
                image_samples = gr.Number(samples, label="Passes per candidate", info="more: steadier scores")
                image_seed = gr.Number(0, label="Seed")
            go_images = gr.Button("Rank images", variant="primary")
            image_table = gr.Dataframe(headers=HEADERS, label="Images, best first", interactive=False)
            gallery = gr.Gallery(label="Best first", columns=4, height="auto")
            image_status = gr.Markdown()
    go_texts.click(partial(rank_texts, pipe), [image, texts, text_samples, text_seed], [text_table, text_status],
                   api_name="rank_texts", **HEAVY)
    go_images.click(partial(rank_images, pipe), [prompt, files, image_samples, image_seed],
                    [image_table, gallery, image_status], api_name="rank_images", **HEAVY)
