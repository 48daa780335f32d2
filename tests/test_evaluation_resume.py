"""A run killed midway and rerun predicts every item exactly once, and ends with the results of a run that was
never interrupted (each batch samples with its own seeded generator)."""

import json

import pytest
from evaluation_data import (ROWS_OF_FIVE, fail_on_call, read_predictions, tiny_model,  # noqa: F401
                             vqav2_args, write_vqav2)

from evaluation import vqav2


def run(paths, model, out, *extra):
    return vqav2.main(vqav2_args(paths, model, out, "--batch", "2", *extra))


def check_same_as_uninterrupted(paths, model, tmp_path, resumed):
    whole = run(paths, model, tmp_path / "whole")
    lines = read_predictions(resumed)
    assert sorted(line["key"] for line in lines) == sorted(str(r[0]) for r in ROWS_OF_FIVE)  # each exactly once
    assert {line["key"]: line["prediction"] for line in lines} == {
        line["key"]: line["prediction"] for line in read_predictions(tmp_path / "whole")}
    assert json.loads((resumed / "results.json").read_text())["metrics"] == whole["metrics"]


def test_resume_after_the_model_fails_on_the_second_batch(tmp_path, tiny_model, monkeypatch, capsys):
    paths, out = write_vqav2(tmp_path, ROWS_OF_FIVE), tmp_path / "resumed"
    fail_on_call(monkeypatch, "answer", 2, RuntimeError("killed"))
    with pytest.raises(RuntimeError, match="killed"):
        run(paths, tiny_model, out)
    assert "stopped: 2 of 5 items predicted" in capsys.readouterr().err
    assert len(read_predictions(out)) == 2 and not (out / "results.json").exists()
    monkeypatch.undo()
    run(paths, tiny_model, out)
    check_same_as_uninterrupted(paths, tiny_model, tmp_path, out)


def test_resume_after_ctrl_c_and_a_line_cut_short(tmp_path, tiny_model, monkeypatch):
    paths, out = write_vqav2(tmp_path, ROWS_OF_FIVE), tmp_path / "resumed"
    fail_on_call(monkeypatch, "answer", 3, KeyboardInterrupt())
    with pytest.raises(SystemExit, match="interrupted; rerun the same command to resume"):
        run(paths, tiny_model, out)
    monkeypatch.undo()
    with (out / "predictions.jsonl").open("a") as f:
        f.write('{"key": "105", "predi')  # a write the kill cut short
    run(paths, tiny_model, out)
    check_same_as_uninterrupted(paths, tiny_model, tmp_path, out)


def test_a_larger_limit_continues_a_smaller_run(tmp_path, tiny_model):
    paths, out = write_vqav2(tmp_path, ROWS_OF_FIVE), tmp_path / "resumed"
    assert run(paths, tiny_model, out, "--limit", "4")["subset"]  # whole batches of 2
    assert not run(paths, tiny_model, out)["subset"]
    check_same_as_uninterrupted(paths, tiny_model, tmp_path, out)


def test_a_rerun_with_other_settings_is_refused(tmp_path, tiny_model):
    paths, out = write_vqav2(tmp_path, ROWS_OF_FIVE), tmp_path / "out"
    run(paths, tiny_model, out, "--limit", "2")
    with pytest.raises(SystemExit, match=r"settings.json: .*other settings \(seed differ.*use another --out"):
        run(paths, tiny_model, out, "--seed", "1")
