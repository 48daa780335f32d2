"""A model folder that cannot be opened says so in one line naming the file: in Python, the CLI and the app."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import free_port

from ddit import DualDiffusionPipeline
from ddit.model_folder import ModelFolderError
from ddit.presets import build_tiny_pipeline

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = "transformer/diffusion_pytorch_model.safetensors"


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    folder = tmp_path_factory.mktemp("good") / "model"
    build_tiny_pipeline().save_pretrained(folder)
    return folder


def broken(good: Path, tmp_path: Path, how: str) -> Path:
    """A copy of the good folder, broken as ``how`` says."""
    folder = tmp_path / how
    subprocess.run(["cp", "-r", str(good), str(folder)], check=True)
    if how == "corrupt_json":
        (folder / "model_index.json").write_text('{\n  "transformer": [\n')
    elif how == "truncated_weights":
        data = (folder / WEIGHTS).read_bytes()
        (folder / WEIGHTS).write_bytes(data[: len(data) // 2])
    elif how == "wrong_shape":
        config = json.loads((folder / "transformer" / "config.json").read_text())
        config["num_attention_heads"] *= 2
        (folder / "transformer" / "config.json").write_text(json.dumps(config))
    elif how == "pickle_weights":
        (folder / WEIGHTS).unlink()
        torch.save({"w": torch.zeros(1)}, folder / "transformer" / "diffusion_pytorch_model.bin")
    elif how == "missing_component":
        subprocess.run(["rm", "-r", str(folder / "vae")], check=True)
    elif how == "foreign_library":  # a module of the standard library: importing it prints the Zen of Python
        index = json.loads((folder / "model_index.json").read_text())
        index["scheduler"] = ["this", "Zen"]
        (folder / "model_index.json").write_text(json.dumps(index))
    elif how == "empty":
        subprocess.run(["rm", "-r", str(folder)], check=True)
        folder.mkdir()
    return folder


CASES = {  # how the folder is broken -> what the message must name
    "corrupt_json": ("model_index.json", "not valid JSON"),
    "truncated_weights": ("transformer", "cannot load the transformer"),
    "wrong_shape": ("transformer", "cannot load the transformer"),
    "pickle_weights": ("diffusion_pytorch_model.bin", "pickle"),
    "missing_component": ("vae", "folder is missing"),
    "empty": ("empty", "no model_index.json"),
    "foreign_library": ("model_index.json", "the scheduler names 'this' as its library"),
}


@pytest.mark.parametrize("how", sorted(CASES))
def test_python_api_names_the_file(good, tmp_path, how):
    folder = broken(good, tmp_path, how)
    name, what = CASES[how]
    with pytest.raises((ModelFolderError, FileNotFoundError)) as info:
        DualDiffusionPipeline.from_pretrained(folder, device="cpu")
    message = str(info.value)
    assert name in message and what in message and "\n" not in message


@pytest.mark.slow  # a fresh Python process that imports torch
def test_a_library_outside_diffusers_transformers_ddit_is_never_imported(good, tmp_path):
    folder = broken(good, tmp_path, "foreign_library")
    code = ("import sys; from ddit import DualDiffusionPipeline as P\n"
            f"try: P.from_pretrained({str(folder)!r}, device='cpu')\n"
            "except ValueError as err: print('refused:', err)\n"
            "print('imported' if 'this' in sys.modules else 'not imported')")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "not imported" and "Beautiful is better than ugly" not in result.stdout, result.stdout
    assert lines[-2].startswith(f"refused: {folder / 'model_index.json'}: the scheduler names 'this'")
    assert "diffusers, transformers, ddit" in lines[-2]


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        DualDiffusionPipeline.from_pretrained(tmp_path / "nope" / "deeper", device="cpu")


@pytest.mark.slow
@pytest.mark.parametrize("command, how", [("cli", "corrupt_json"), ("cli", "truncated_weights"),
                                          ("cli", "pickle_weights"), ("app", "truncated_weights")])
def test_front_ends_exit_with_one_line(good, tmp_path, how, command):
    folder = broken(good, tmp_path, how)
    image = ROOT / "assets" / "examples" / "scene_0.png"  # a real image: the CLI reads it before the model
    args = ([sys.executable, "-m", "ddit", "caption", "--model", str(folder), str(image)] if command == "cli"
            else [sys.executable, "app.py", "--model", str(folder), "--port", str(free_port())])
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert lines[-1].startswith("error: ") and CASES[how][0] in lines[-1]


def test_a_hub_id_downloads_only_what_a_pipeline_reads(tmp_path, monkeypatch):
    import fnmatch

    import huggingface_hub

    from ddit.model_folder import resolve_folder
    asked = {}

    def fake_snapshot_download(repo_id, allow_patterns=None, **kwargs):
        asked.update(repo_id=repo_id, allow_patterns=allow_patterns)
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    assert resolve_folder("JleeOfficial/dual_diff_sd3_512_sft") == tmp_path
    assert asked["repo_id"] == "JleeOfficial/dual_diff_sd3_512_sft"
    wanted = ["model_index.json", "transformer/config.json", "tokenizer/spiece.model", "mask_token_emb.00-of-01.pth",
              "transformer/diffusion_pytorch_model-00001-of-00002.safetensors", "text_encoder/model.safetensors",
              "transformer/diffusion_pytorch_model.safetensors.index.json"]
    unwanted = ["transformer/diffusion_pytorch_model.bin", "checkpoints/step_1000/optimizer.bin", "notebook.ipynb",
                "images/sample.png"]
    matches = lambda name: any(fnmatch.fnmatch(name, p) for p in asked["allow_patterns"])  # noqa: E731
    assert all(matches(n) for n in wanted) and not any(matches(n) for n in unwanted)
