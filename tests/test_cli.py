import subprocess
import sys

import PIL.Image
import pytest
from bad_inputs import write_png_bomb

from ddit.cli import main


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    assert main(["save-tiny", str(folder)]) == 0
    return folder


def test_cli_end_to_end(tiny_folder, tmp_path, capsys):
    out = tmp_path / "x.png"
    assert main(["generate", "a red circle", "--model", str(tiny_folder), "-o", str(out), "--steps", "2"]) == 0
    assert PIL.Image.open(out).size == (16, 16)
    assert main(["caption", str(out), "--model", str(tiny_folder), "--sampler", "confidence"]) == 0
    assert main(["ask", str(out), "what color is the circle?", "--model", str(tiny_folder), "--seed", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("saved") and len(lines) == 3


def test_cli_errors_are_one_line(tiny_folder, tmp_path, capsys):
    assert main(["caption", str(tmp_path / "missing.png"), "--model", str(tiny_folder)]) == 2
    assert main(["generate", "", "--model", str(tiny_folder)]) == 2
    assert main(["generate", "a", "--model", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "empty" in err and "Traceback" not in err


def test_a_decompression_bomb_is_one_line(tiny_folder, tmp_path, capsys):
    bomb = tmp_path / "bomb.png"
    write_png_bomb(bomb, 20000, 20000)
    assert main(["caption", str(bomb), "--model", str(tiny_folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "400,000,000 pixels; at most 67,108,864" in err[0]


def test_python_m_ddit_help():
    result = subprocess.run([sys.executable, "-m", "ddit", "--help"], capture_output=True, text=True, check=True)
    assert "generate" in result.stdout and "caption" in result.stdout and "ask" in result.stdout


def test_help_and_argument_errors_never_import_torch():
    probe = ("import sys; from ddit.cli import build_parser\n"
             "try:\n    build_parser().parse_args(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print('torch' in sys.modules, 'diffusers' in sys.modules)")
    for args in (["--help"], ["generate"], ["caption", "x.png", "--steps", "many"]):
        result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True)
        assert result.stdout.strip().splitlines()[-1] == "False False", (args, result.stdout)


def test_bad_seed_and_output_folder_fail_before_the_model_loads(tmp_path, capsys):
    missing_model = str(tmp_path / "no-model")  # never opened: the earlier checks fail first
    assert main(["generate", "a red circle", "--model", missing_model, "-o", str(tmp_path / "no" / "x.png")]) == 2
    assert main(["generate", "a red circle", "--model", missing_model, "--seed", str(2**70)]) == 2
    assert main(["generate", "a red circle", "--model", missing_model, "-o", str(tmp_path / "x.svgz")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "the folder" in err[0] and "does not exist" in err[0]
    assert "`seed` must be between 0 and" in err[1] and "unknown image type" in err[2]
    assert not any("not found" in line for line in err)


def test_the_bundled_model_has_a_name():
    from ddit.model_folder import resolve_folder
    assert (resolve_folder("ddit-shapes") / "model_index.json").is_file()
