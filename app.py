"""ddit web UI: generate, edit, caption (or fill in), chat and score, each streaming its denoising step by step.

    python app.py [--model PATH_OR_HUB_ID] [--lora PATH] [--preview-decoder PATH] [--device cpu|cuda]
                  [--dtype auto|float32|bfloat16|float16] [--host 127.0.0.1] [--port 7860] [--share]

As a Hugging Face Space it starts the same way: ``DDIT_MODEL`` may name the model (e.g. a released D-DiT
checkpoint on a GPU Space), and on ZeroGPU hardware the handlers run inside ``@spaces.GPU``.

Every view is fed by the pipeline's own step iterators (``iter_generate``, ``iter_inpaint``, ``iter_caption``,
``iter_infill``, ``iter_answer``) and scorers; the app formats what they yield and never samples by itself. The
tabs live in ``app_image.py`` (Generate, Edit), ``app_text.py`` (Caption, Chat) and ``app_score.py`` (Score); the
page offers Shapes-World's examples only to a model that speaks Shapes-World (``app_inputs.Domain``).
"""

from __future__ import annotations

from app_inputs import on_gpu  # first: on ZeroGPU ``spaces`` must be imported before torch

import argparse
from typing import TYPE_CHECKING

import gradio as gr

from app_image import edit_tab, generate_tab
from app_inputs import Domain, LoadingPipeline
from app_score import score_tab
from app_text import caption_tab, chat_tab
from ddit.cli import DEFAULT_MODEL
from ddit.dtypes import DTYPE_CHOICES, DTYPE_HELP, parse_dtype
from ddit.task_defaults import TaskDefaults

if TYPE_CHECKING:  # the app starts serving before torch is imported (``main``)
    from ddit import DualDiffusionPipeline

__all__ = ["build_demo", "launch", "main", "on_gpu"]
# small images fill their box, drawn with square pixels (a 64x64 upload is otherwise a speck in a wide box)
CSS = ".pixel-view img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }"


def build_demo(pipe: DualDiffusionPipeline, domain: Domain | None = None) -> gr.Blocks:
    """The app around a pipeline, or a ``LoadingPipeline`` (no server is started here). ``domain``: what the page
    offers for this model (default: read from the loaded pipeline's tokenizer)."""
    domain = domain or (pipe.domain if isinstance(pipe, LoadingPipeline) else Domain.of_pipeline(pipe))
    with gr.Blocks(title="ddit — Dual Diffusion") as demo:
        gr.Markdown("# ddit — one diffusion transformer that draws, captions and answers\n"
                    "Each result is denoised step by step in front of you: images by flow matching, "
                    "text by unmasking tokens.")
        with gr.Tab("Generate"):
            generate_tab(pipe, domain)
        with gr.Tab("Edit"):
            edit_tab(pipe, domain)
        with gr.Tab("Caption"):
            caption_tab(pipe, domain)
        with gr.Tab("Chat"):
            chat_tab(pipe, domain)
        with gr.Tab("Score"):
            score_tab(pipe, domain)
    return demo


def main(argv: list[str] | None = None) -> None:
    """``python app.py``: the page is served as soon as it is drawn from the model's saved defaults (no torch yet),
    then the model loads (torch, diffusers and the weights: most of the start-up time) while a person reads it."""
    parser = argparse.ArgumentParser(description="ddit web UI (Gradio)")
    parser.add_argument("--model", default=str(DEFAULT_MODEL),
                        help="pipeline folder or Hub id (default: $DDIT_MODEL, else the bundled model)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--dtype", choices=DTYPE_CHOICES, default="auto", help=DTYPE_HELP)
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
        loading = LoadingPipeline(TaskDefaults.from_dict(saved_defaults(read_index(folder))), Domain.of_folder(folder))
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}")
    demo = build_demo(loading)
    launch(demo, args.host, args.port, share=args.share, block=False, quiet=False)
    try:
        from ddit import DualDiffusionPipeline

        pipe = DualDiffusionPipeline.from_pretrained(folder, device=args.device, preview_decoder=args.preview_decoder,
                                                     torch_dtype=parse_dtype(args.dtype))
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
