"""space.py: the Hugging Face Space folder holds only what app.py needs, no file over the limit, a model that
samples exactly like the bundled one, and it serves the app with no arguments, importing its own code."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from helpers import free_port
from PIL import Image

import space
from ddit import DualDiffusionPipeline

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "assets" / "ddit-shapes"
EXAMPLE = ROOT / "assets" / "examples" / "scene_0.png"
LIMIT = 10 * space.MB
NEEDED_PY = {"app.py", "app_inputs.py", "app_image.py", "app_text.py", "app_score.py", "ddit", "shapes_world"}  # first path parts of the .py files the app needs


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The Space folder for the bundled model, built once for this module's slow tests."""
    out = tmp_path_factory.mktemp("space") / "out"
    space.main([str(out)])
    return out


def clean_env(**extra) -> dict:
    """The environment a Space starts with: no PYTHONPATH (only the folder's own code) and no DDIT_MODEL."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DDIT_MODEL")}
    return {**env, **extra}


def test_a_non_empty_out_dir_is_refused_and_left_alone(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as refused:
        space.main([str(tmp_path)])
    message = str(refused.value.code)
    assert message.startswith("error: ") and "not an empty folder" in message and "\n" not in message
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    with pytest.raises(SystemExit, match="not an empty folder"):  # a file is no folder either
        space.main([str(tmp_path / "keep.txt")])


@pytest.mark.slow
def test_the_folder_holds_only_what_the_space_needs_under_the_limit(folder):
    files = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    assert all(p.stat().st_size <= LIMIT for p in files.values()), {n: p.stat().st_size for n, p in files.items()}
    python = [n for n in files if n.endswith(".py")]
    assert {n.split("/")[0] for n in python} == NEEDED_PY
    assert not [n for n in files if n.endswith((".pyi", ".pyc")) or "__pycache__" in n or "/tests/" in n]
    assert not {"train", "tests", "benchmarks", "evaluation", "docs", ".git"} & {n.split("/")[0] for n in files}
    assert {"requirements.txt", "assets/examples/scene_0.png", "assets/examples/prompts.txt"} <= set(files)
    readme, header = (folder / "README.md").read_text(), space.space_header(ROOT / "README.md")
    assert readme.startswith(header) and "app_file: app.py" in header and "http" not in readme
    # the weights are re-saved in shards; every other file of the model (card, benchmarks, configs) is as it was
    assert (folder / "assets/ddit-shapes/transformer/diffusion_pytorch_model.safetensors.index.json").is_file()
    for source in MODEL.rglob("*"):
        if source.is_file() and source.suffix != ".safetensors":
            copy = folder / "assets/ddit-shapes" / source.relative_to(MODEL)
            assert copy.read_bytes() == source.read_bytes(), source.relative_to(MODEL)
    assert not [n for n, p in files.items() if n.endswith(".json") and str(ROOT) in p.read_text()]
    # run from the folder as a Space runs it, the app's default model is the folder's own copy
    probe = "import ddit.cli as c; print(c.__file__); print(c.DEFAULT_MODEL)"
    where = subprocess.run([sys.executable, "-c", probe], cwd=folder, env=clean_env(), capture_output=True,
                           text=True, check=True).stdout.splitlines()
    assert Path(where[0]).resolve() == (folder / "ddit" / "cli.py").resolve()
    assert Path(where[1]).resolve() == (folder / "assets" / "ddit-shapes").resolve()


@pytest.mark.slow
def test_the_resaved_model_is_the_bundled_one(folder):
    original = DualDiffusionPipeline.from_pretrained(MODEL, device="cpu")
    resaved = DualDiffusionPipeline.from_pretrained(folder / "assets" / "ddit-shapes", device="cpu")
    for name in ("transformer", "vae", "text_encoder", "preview_decoder"):
        mine, theirs = getattr(original, name).state_dict(), getattr(resaved, name).state_dict()
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine), name
    image = Image.open(EXAMPLE).convert("RGB")
    ids = [p.caption(image, generator=torch.Generator().manual_seed(0)).token_ids for p in (original, resaved)]
    assert torch.equal(*ids)


def wait_until_served(proc: subprocess.Popen, url: str, log: Path, seconds: float = 90) -> None:
    """Poll ``url`` until it answers; fail with the server's log if it exits or takes longer than ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the app exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:  # not listening yet
            time.sleep(0.5)
    pytest.fail(f"the app did not serve {url} within {seconds:g} s:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
def test_the_folder_serves_the_app_as_a_space_would(folder, tmp_path):
    gradio_client = pytest.importorskip("gradio_client")
    length = json.loads((MODEL / "model_index.json").read_text())["task_defaults"]["caption"]["max_length"]
    port, log = free_port(), tmp_path / "app.log"
    env = clean_env(GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port))
    with open(log, "w") as sink:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=folder, env=env,
                                stdout=sink, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_served(proc, url, log)
        client = gradio_client.Client(url, verbose=False)
        image = gradio_client.handle_file(str(folder / "assets" / "examples" / EXAMPLE.name))
        # outputs: tokens, caption, replay slider, status (the history is a gr.State, not in the API)
        outputs = client.predict(image, 4, length, "confidence", 0, 0, api_name="/caption")
        text, status = outputs[1], outputs[-1]
        assert text.strip() and status.startswith("done"), (text, status)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
