"""Batched, seeded, resumable prediction: the items are cut into fixed batches, batch i samples with its own
generator seeded from (seed, i), and finished batches are skipped on a rerun, so an interrupted and resumed run
predicts exactly what an uninterrupted one does. (A run extended after a ``--limit`` that is not a multiple of
``--batch`` samples the rest of the cut batch as a smaller batch: valid predictions, not bit-identical ones.)

Several processes deal out whole batches, never single items: a batch's generator and its items are the same
whichever process samples it, so N processes predict exactly what one does (a prediction depends on the seed,
the batch size and the item's place in the data, never on the number of processes)."""

from __future__ import annotations

import sys
from typing import Any, Callable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from .errors import DataError
from .images import open_image
from .items import Item
from .store import PredictionStore

Predictor = Callable[[Any, list[Item], list, torch.Generator], list]  # (pipe, items, images, generator) -> outputs


def batch_generator(seed: int, index: int) -> torch.Generator:
    """The CPU generator of batch ``index``: independent streams for every (seed, index) pair."""
    state = np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def fixed_batches(items: list[Item], size: int) -> Iterator[tuple[int, list[Item]]]:
    """``(index, items)`` of consecutive batches of ``size`` (the last may be shorter)."""
    for index, start in enumerate(range(0, len(items), size)):
        yield index, items[start:start + size]


def share_of_batches(items: list[Item], size: int, done: dict[str, Any], rank: int = 0,
                     processes: int = 1) -> list[tuple[int, list[Item]]]:
    """The batches process ``rank`` of ``processes`` samples: the batches with an item not in ``done``, in order,
    dealt round-robin (the k-th of them goes to process k % processes). Every process, given the same ``done``,
    computes the same deal. One process: every batch (finished ones are skipped when predicting)."""
    if processes == 1:
        return list(fixed_batches(items, size))
    pending = [(index, chunk) for index, chunk in fixed_batches(items, size)
               if any(item.key not in done for item in chunk)]
    return pending[rank::processes]


def predict_all(pipe, items: list[Item], store: PredictionStore, done: dict[str, Any], predict: Predictor,
                batch: int, seed: int, desc: str, rank: int = 0, processes: int = 1) -> dict[str, Any]:
    """Predict every item not in ``done`` of this process's batches (``share_of_batches``: all of them for one
    process), appending each finished batch to ``store``; returns ``done`` and the new predictions.

    On any interruption it says how far the run got (the saved batches are kept) and re-raises.
    """
    done = dict(done)
    share = share_of_batches(items, batch, done, rank, processes)
    keys = {item.key for _, chunk in share for item in chunk}
    bar = tqdm(total=len(keys), initial=len(keys & done.keys()), desc=desc, unit="item", dynamic_ncols=True)
    try:
        for index, chunk in share:
            todo = [item for item in chunk if item.key not in done]
            if not todo:
                continue
            if len(todo) < len(chunk):
                tqdm.write(f"note: batch {index} was partly predicted by an earlier run (a --limit that is not a "
                           "multiple of --batch); its other items are sampled as a smaller batch", file=sys.stderr)
            new = predict_batch(pipe, todo, predict, batch_generator(seed, index))
            store.append(new)
            done.update(new)
            bar.update(len(todo))
    except DataError:  # bad input: its one-line message says everything
        bar.close()
        raise
    except BaseException:
        bar.close()
        finished = len(keys & done.keys())
        print(f"stopped: {finished} of {len(keys)} items predicted and saved in {store.path}; "
              "rerun the same command to resume", file=sys.stderr)
        raise
    bar.close()
    return done


def predict_batch(pipe, items: list[Item], predict: Predictor, generator: torch.Generator) -> dict[str, Any]:
    """One model call: ``{key: output}``; input the model refuses (e.g. a question too long) is a DataError."""
    images = [open_image(item) for item in items]
    try:
        outputs = predict(pipe, items, images, generator)
    except ValueError as err:
        rest = len(items) - 1
        others = "" if not rest else " (or the next item in its batch)" if rest == 1 else \
            f" (or one of the next {rest} items in its batch)"
        raise DataError(f"{items[0].source}{others}: the model refused the input: {err}") from None
    if len(outputs) != len(items):
        raise RuntimeError(f"the model gave {len(outputs)} outputs for {len(items)} items")
    return {item.key: output for item, output in zip(items, outputs)}
