"""The processes of a run: one (``python -m evaluation.<name>``) or N (``accelerate launch --num_processes N -m
evaluation.<name>``). accelerate's :class:`PartialState` says which process this is and holds the others at a
barrier; each process samples on its own device: its GPU, or the CPU (gloo) without GPUs, with ``--cpu`` or with
``--device cpu``."""

from __future__ import annotations

import torch
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env

from .errors import DataError


def process_state(device: str | None) -> PartialState:
    """This process's state; under ``accelerate launch`` the processes form their group here. On the CPU they
    talk over gloo (accelerate's PartialState does that only when asked, as ``Accelerator(cpu=True)`` does)."""
    cpu = not torch.cuda.is_available() or parse_flag_from_env("ACCELERATE_USE_CPU") or \
        (device or "").split(":")[0] == "cpu"
    return PartialState(cpu=cpu)


def process_device(state: PartialState, device: str | None) -> str | None:
    """The device to load the model on: ``device`` as given for one process; for several, each its own (accelerate's
    choice: ``cuda:LOCAL_RANK``, or the CPU); a device with an index would put them all on one GPU, so it is refused."""
    if state.num_processes == 1:
        return device
    if device is not None and ":" in device:
        raise DataError(f"--device {device}: in a run of {state.num_processes} processes each uses its own device; "
                        "leave out --device (or give cuda or cpu)")
    return str(state.device)
