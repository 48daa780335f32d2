"""benchmarks/released_size.py and benchmarks/gpu_check.py end to end at toy size on the CPU: the folder is built in
the released layout (released_build.py), sharded, opened as a user opens it, every task's passes are timed
(released_timing.py), the full runs extrapolated and the report written; the GPU check runs the same code on the
CPU."""

import json
import sys
from pathlib import Path

import pytest
from diffusers import FlowMatchEulerDiscreteScheduler

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_check  # noqa: E402
import released_build as rb  # noqa: E402
import released_size as rs  # noqa: E402
import released_timing as rt  # noqa: E402

from ddit.image_sampling import planned_passes  # noqa: E402


def test_the_folder_is_in_the_released_layout_sharded(tmp_path):
    folder = tmp_path / "model"
    steps = rb.save_released_folder(folder, rb.SMALL)
    assert set(steps) == {"tokenizer", "text_encoder", "transformer", "vae", "scheduler"}
    index = json.loads((folder / "model_index.json").read_text())
    assert index["transformer"] == rb.RELEASED_TRANSFORMER and "task_defaults" not in index
    config = json.loads((folder / "transformer" / "config.json").read_text())
    assert config["_class_name"] == "SD3JointModelFlexible" and "mask_token_id" not in config
    assert (folder / rb.MASK_FILE).is_file() and [p.name for p in (folder / "tokenizer").iterdir()] != []
    assert not (folder / "tokenizer" / "tokenizer.json").exists()  # spiece.model only, as released
    for name in ("transformer", "text_encoder"):
        assert len(list((folder / name).glob("*.safetensors"))) > 1 and list((folder / name).glob("*.index.json"))

    # an existing pipeline folder is measured as it is, never deleted
    report = rs.main(["--small", "--folder", str(folder), "--no-fresh-answer"])
    assert "build" not in report and "fresh_answer" not in report and (folder / "model_index.json").is_file()
    load = report["load"]
    assert load["authors_defaults"] and load["dtype"] == "torch.bfloat16"
    assert load["tokens"] == rb.SMALL.sp_pieces + rb.SMALL.extra_ids and load["mask_token_id"] == load["tokens"] - 1


@pytest.mark.slow  # child processes build, open and time a folder: ~10 s
def test_small_run_end_to_end(tmp_path):
    folder, out = tmp_path / "model", tmp_path / "report.json"
    report = rs.main(["--small", "--folder", str(folder), "--out", str(out)])
    assert not folder.exists()  # the folder this run built is deleted
    assert json.loads(out.read_text())["full_runs"] == report["full_runs"]
    assert report["build"]["files"] > 10 and report["load"]["authors_defaults"]

    # every task timed under both settings; full runs = passes x seconds per pass
    assert set(report["runs"]) == {f"{s}/{c}" for s in rt.SETTINGS
                                   for c in ("generate_cfg", "generate_single", "caption", "answer")}
    cfg = report["runs"]["authors/generate_cfg"]["passes"]
    assert [(p["what"], p["batch"], p["tokens"]) for p in cfg] == [("text_encoder", 2, 256), ("transformer", 2, 256)]
    single = report["runs"]["authors/generate_single"]["passes"]
    assert [(p["what"], p["batch"]) for p in single] == [("text_encoder", 1), ("transformer", 1)]
    answer = report["runs"]["authors/answer"]["passes"]
    assert [p["what"] for p in answer] == ["vae_encode", "text_encoder", "transformer"] and answer[2]["tokens"] == 128
    full = report["full_runs"]
    assert (full["authors/answer"]["transformer_passes"], full["authors/caption"]["transformer_passes"]) == (32, 128)
    assert full["authors/generate"]["cfg_batch_passes"] == 28 and not full["authors/answer"]["at_most"]
    ours = rt.settings_for("ours")["generate"]
    assert full["ours/generate"]["cfg_batch_passes"] == planned_passes(
        FlowMatchEulerDiscreteScheduler(shift=3.0), ours["num_inference_steps"], ours["guidance_scale"],
        ours["guidance_interval"]) - ours["num_inference_steps"]
    per = full["authors/answer"]["per_pass_seconds"]
    assert full["authors/answer"]["seconds"] == pytest.approx(
        32 * (per["text_encoder"] + per["transformer"]) + per["vae_encode"], abs=1e-3)

    # the short answer, warm and from a fresh process; the memory and GPU-fit tables
    assert report["short_answer"]["transformer_passes"] == 1 and report["fresh_answer"]["transformer_passes"] == 1
    assert report["memory"]["total"]["parameters"] == sum(
        report["memory"][n]["parameters"] for n in ("text_encoder", "transformer", "vae"))
    assert len(report["gpu_fit"]) == 4
    assert "| answer |" in report["markdown"] and "Short answer from a fresh process" in report["markdown"]
    whole = report["full_runs_full_cpu"]  # each pass scaled by the CPU share it got: never slower
    assert all(whole[k]["seconds"] <= full[k]["seconds"] + 1e-9 for k in full)

    # an earlier run's JSON prints the same report again
    assert rs.main(["--from-json", str(out)])["markdown"] == report["markdown"]


def test_a_foreign_folder_is_refused_untouched(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="is not a pipeline folder"):
        rs.main(["--small", "--folder", str(tmp_path / "mine")])
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_released_dimensions_are_the_released_checkpoints():
    dims = rb.RELEASED
    assert (dims.width, dims.head_dim, dims.depth, dims.patch_size, dims.latent_channels) == (1536, 64, 24, 2, 16)
    assert (dims.pos_embed_max_size, dims.vocab_size, dims.resolution) == (192, 32128, 512)
    assert (dims.t5_d_model, dims.t5_d_ff, dims.t5_layers, dims.t5_heads, dims.t5_d_kv) == (4096, 10240, 24, 64, 64)
    assert dims.sp_pieces + dims.extra_ids == 32100 and rb.t5_config(dims).is_gated_act
    assert rb.vae_kwargs(dims)["block_out_channels"] == (128, 256, 512, 512)


def test_gpu_check_runs_small_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    report = gpu_check.main(["--small", "--device", "cpu", "--batches", "1,2", "--out", str(out)])
    assert "errors" not in report and json.loads(out.read_text())["steps"] == report["steps"]
    assert len(report["steps"]) == 2 * len(rt.SETTINGS) * len(gpu_check.TASK_CASES)
    assert report["matmul"]["tflops"] > 0
    row = next(r for r in report["steps"] if (r["batch"], r["settings"], r["task"]) == (2, "authors", "generate"))
    assert row["rows x text tokens"] == "4 x 256" and row["transformer_tflop"] > 0 and row["share_of_peak"] > 0
    assert set(report["full_runs"]) == {1, 2} and report["short_answer"]["transformer_passes"] == 1


def test_gpu_check_refuses_what_it_cannot_run(capsys):
    with pytest.raises(SystemExit, match="use --small --device cpu"):
        gpu_check.main(["--device", "cpu"])
    with pytest.raises(SystemExit):
        gpu_check.main(["--small", "--device", "cpu", "--batches", "one"])
    assert "--batches must be whole numbers" in capsys.readouterr().err
