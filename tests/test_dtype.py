"""--dtype: one parser of dtype names (ddit.dtypes, torch-free at import), the CLI's option and the evaluation
commands' option, each reaching the loaded pipeline."""

import json
import subprocess
import sys
from pathlib import Path

import PIL.Image
import pytest
import torch
from evaluation_data import ROWS_OF_FIVE, tiny_model, vqav2_args, write_vqav2  # noqa: F401

from ddit import DualDiffusionPipeline
from ddit.cli import build_parser, main
from ddit.dtypes import DTYPE_CHOICES, parse_dtype
from evaluation import vqav2
from evaluation.harness.options import benchmark_parser
from evaluation.harness.runner import load_pipeline


def test_parse_dtype_names_aliases_and_auto():
    assert DTYPE_CHOICES == ("auto", "float32", "bfloat16", "float16")
    assert [parse_dtype(n) for n in ("float32", "bfloat16", "float16")] == [torch.float32, torch.bfloat16,
                                                                            torch.float16]
    assert [parse_dtype(n) for n in ("bf16", "FP16", "fp32", "torch.bfloat16", " half ")] == [
        torch.bfloat16, torch.float16, torch.float32, torch.bfloat16, torch.float16]
    assert parse_dtype("auto") is None and parse_dtype(None) is None


def test_a_bad_dtype_is_one_line():
    with pytest.raises(ValueError, match=r"^unknown dtype 'float64'; choose one of auto, float32, bfloat16, float16$"):
        parse_dtype("float64")


def test_the_dtype_module_does_not_import_torch():
    probe = "import sys; import ddit.dtypes; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.fixture
def spy_loads(monkeypatch):
    """Every pipeline ``from_pretrained`` returns, with the dtype it was asked for."""
    loads = []
    original = DualDiffusionPipeline.from_pretrained

    def spy(*args, **kwargs):
        pipe = original(*args, **kwargs)
        loads.append((kwargs.get("torch_dtype"), pipe))
        return pipe

    monkeypatch.setattr(DualDiffusionPipeline, "from_pretrained", spy)
    return loads


@pytest.mark.parametrize("name, expected", [("bfloat16", torch.bfloat16), ("float32", torch.float32),
                                            ("auto", torch.float32)])  # auto on a CPU: float32, as before
def test_cli_dtype_reaches_the_loaded_pipeline(tiny_model, tmp_path, spy_loads, capsys, name, expected):  # noqa: F811
    image = tmp_path / "x.png"
    PIL.Image.new("RGB", (16, 16), (200, 40, 40)).save(image)
    assert main(["ask", str(image), "what color is the circle?", "--model", str(tiny_model), "--device", "cpu",
                 "--dtype", name]) == 0
    (asked, pipe), = spy_loads
    assert asked == parse_dtype(name)
    assert pipe.transformer.dtype == pipe.text_encoder.dtype == pipe.vae.dtype == expected
    assert capsys.readouterr().out.strip()  # an answer was printed


def test_cli_default_is_auto_and_a_bad_choice_is_a_usage_error(capsys):
    assert build_parser().parse_args(["caption", "x.png"]).dtype == "auto"
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["caption", "x.png", "--dtype", "float64"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--dtype: invalid choice: 'float64'" in err and "Traceback" not in err


def test_evaluation_option_parses_and_loads_in_that_dtype(tiny_model):  # noqa: F811
    parser = benchmark_parser("vqav2", "test")
    assert parser.parse_args(["--model", "m", "--out", "o"]).dtype == "auto"
    assert parser.parse_args(["--model", "m", "--out", "o", "--dtype", "bfloat16"]).dtype == "bfloat16"
    assert load_pipeline(str(tiny_model), "cpu", "bfloat16").transformer.dtype == torch.bfloat16
    assert load_pipeline(str(tiny_model), "cpu").transformer.dtype == torch.float32


def test_an_evaluation_run_in_bf16_records_its_dtype(tiny_model, tmp_path, spy_loads):  # noqa: F811
    paths = write_vqav2(tmp_path, ROWS_OF_FIVE)
    out = tmp_path / "out"
    results = vqav2.main(vqav2_args(paths, tiny_model, out, "--dtype", "bfloat16", "--limit", "2", "--batch", "2"))
    (asked, pipe), = spy_loads
    assert asked == torch.bfloat16 and pipe.transformer.dtype == torch.bfloat16
    assert results["items"] == 2 and json.loads((out / "settings.json").read_text())["dtype"] == "bfloat16"


@pytest.mark.slow  # runs the bundled model
def test_bf16_agreement_script_compares_both_dtypes(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bf16_agreement

    report = bf16_agreement.main(["--n", "4", "--batch", "2", "--out", str(tmp_path / "agree.json")])
    for task in ("caption", "answer"):
        row = report["tasks"][task]
        assert row["n"] == 4 and 0 <= row["identical_tokens"] <= row["identical_text"] <= 4
        assert 0.0 <= row["exact_float32"] <= 1.0 and 0.0 <= row["exact_bfloat16"] <= 1.0
    assert json.loads((tmp_path / "agree.json").read_text())["tasks"] == report["tasks"]
    with pytest.raises(SystemExit):
        bf16_agreement.main(["--seed", "77000003"])  # the benchmark's own scenes are not held out
