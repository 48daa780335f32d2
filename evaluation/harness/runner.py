"""A benchmark run from data to results: limit, check images, load the model, save the settings, predict
(resumably), score, export, print and save ``results.json``. Each command builds a :class:`Task` and calls
``run_task`` inside ``command_main``, which turns bad input into a one-line error.

Under ``accelerate launch --num_processes N`` the run is data parallel: each process loads the model on its own
device and samples its share of the batches (``share_of_batches``) into its own ``predictions.rank{r}.jsonl``;
the main process alone writes the settings, merges the files into ``predictions.jsonl`` and scores."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .batches import Predictor, predict_all
from .errors import DataError
from .items import Item, check_images, limit_items, some_ids
from .options import check_common
from .processes import process_device, process_state
from .settings import build_settings, check_settings, describe, write_settings
from .store import PREDICTIONS_FILE, PredictionStore, merge_predictions, shard_file, shard_paths, stored_predictions

RESULTS_FILE = "results.json"


@dataclass
class Task:
    """What a benchmark command hands the runner."""

    name: str
    items: list[Item]  # every item of the data, in a fixed order (--limit takes a prefix)
    predict: Predictor
    options: dict  # the benchmark's own settings (steps, sampler, short_answer, ...), saved with the run
    data: dict  # the data files and folders read, saved with the run
    score: Callable[[list[Item], dict[str, Any]], dict | None]  # None: no ground truth (a test split)
    report: Callable[[dict], str]  # the printed table of what ``score`` returned
    export: Callable[[Path, list[Item], dict[str, Any]], list[Path]] | None = None  # the benchmark's own formats
    prepare: Callable[[Path, list[Item]], None] | None = None  # before predicting (GenEval's metadata files)
    note: str = ""  # printed after the results
    unscored: str = "no ground truth in the data: predictions only"  # printed (and saved) when score gives None


def command_main(evaluate: Callable[[], dict]) -> dict:
    """Run ``evaluate``; bad input exits with one line ``error: ...`` (never a traceback), Ctrl-C with a hint."""
    try:
        return evaluate()
    except DataError as err:
        raise SystemExit("error: " + " ".join(str(err).split())) from None
    except KeyboardInterrupt:
        raise SystemExit("interrupted; rerun the same command to resume") from None


def run_command(parser: argparse.ArgumentParser, build_task: Callable[[argparse.Namespace], Task],
                argv: list[str] | None) -> dict:
    """A benchmark command's ``main``: parse and check the options, build the task, run it inside ``command_main``."""
    args = parser.parse_args(argv)
    check_common(parser, args)
    return command_main(lambda: run_task(args, build_task(args)))


def load_pipeline(model: str, device: str | None, dtype: str | None = None):
    """The pipeline in ``model`` in ``dtype`` (``--dtype``'s names; None/"auto": the loader's choice) with its
    progress bars off; an unreadable folder is a :class:`DataError`."""
    from ddit import DualDiffusionPipeline
    from ddit.dtypes import parse_dtype

    try:
        pipe = DualDiffusionPipeline.from_pretrained(model, device=device, torch_dtype=parse_dtype(dtype))
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{model}: cannot load the model ({type(err).__name__}: {err})") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_task(args: argparse.Namespace, task: Task) -> dict:
    """Predict every item of ``task`` not yet in ``args.out``, then score, export and save; returns the results
    (in a run of several processes: on the main process; the others return ``{}``)."""
    items = limit_items(task.items, args.limit)
    check_images(items)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{out}: cannot be the output folder ({err.strerror or err})") from None
    state = process_state(args.device)
    rank, processes, main = state.process_index, state.num_processes, state.is_main_process
    pipe = load_pipeline(args.model, process_device(state, args.device), getattr(args, "dtype", None))
    settings = build_settings(args, task.name, pipe, task.options, task.data, len(items), len(task.items))
    if processes > 1:
        settings["processes"] = processes
    if getattr(args, "dtype", "auto") != "auto":  # recorded when chosen, so a resumed run never mixes dtypes
        settings["dtype"] = args.dtype
    if main:
        print(describe(settings), flush=True)
    # every process reads the folder (and refuses what does not match) before any of them changes it
    done = stored_predictions(out)
    check_settings(out, settings, resuming=bool(done))
    state.wait_for_everyone()
    if main:
        write_settings(out, settings)
        if any(item.key not in done for item in items):
            (out / RESULTS_FILE).unlink(missing_ok=True)  # results of an earlier, smaller run would not match
        if task.prepare is not None:
            task.prepare(out, items)
    state.wait_for_everyone()  # the settings and the benchmark's folders are in place
    store = PredictionStore(out / (PREDICTIONS_FILE if processes == 1 else shard_file(rank)))
    store.load()  # drops a line a kill cut short, before appending
    desc = task.name if processes == 1 else f"{task.name} [process {rank + 1}/{processes}]"
    predictions = predict_all(pipe, items, store, done, task.predict, args.batch, args.seed, desc, rank, processes)
    state.wait_for_everyone()  # every process's predictions are saved
    if not main:
        return {}
    if processes > 1 or shard_paths(out):
        predictions = merge_predictions(out, [item.key for item in task.items])
    return finish(out, task, items, predictions, settings)


def finish(out: Path, task: Task, items: list[Item], predictions: dict[str, Any], settings: dict) -> dict:
    """Score complete predictions, write the benchmark's files and ``results.json``, print the table."""
    missing = [item.key for item in items if item.key not in predictions]
    if missing:
        raise DataError(f"{out / PREDICTIONS_FILE}: {len(missing)} of {len(items)} items have no prediction "
                        f"({some_ids(missing)}); no results written")
    mine = {item.key: predictions[item.key] for item in items}
    metrics = task.score(items, mine)
    files = [str(p) for p in (task.export(out, items, mine) if task.export else [])]
    subset = len(items) < len(task.items)
    results = {"benchmark": task.name, "complete": True, "items": len(items), "items_in_data": len(task.items),
               "subset": subset, "metrics": metrics, "files": files, "settings": settings}
    if metrics is None:
        results["note"] = task.unscored
    (out / RESULTS_FILE).write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(task.report(metrics) if metrics is not None else task.unscored)
    if subset:
        print(f"\nsubset: the first {len(items)} of {len(task.items)} items (--limit); not the full benchmark")
    if task.note:
        print("\n" + task.note)
    print(f"\nwrote {out / RESULTS_FILE}" + "".join(f", {f}" for f in files))
    return results
