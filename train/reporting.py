"""What a run writes for people: loss curves, sample grids, and FLOP/s against this machine's matmul peak."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


def measure_matmul_peak(dtype: torch.dtype = torch.float32, n: int = 1024, repeats: int = 10,
                        device: str | torch.device = "cpu") -> float:
    """Achieved FLOP/s of an n x n matmul on this machine (the denominator of MFU)."""
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        if torch.cuda.is_available() and torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / sorted(times)[len(times) // 2]


class FlopCount:
    """Counts the FLOPs of what runs inside it (forward and backward); attention through the math kernel so
    that it is counted (the fused CPU kernel has no FLOP formula)."""

    def __enter__(self) -> "FlopCount":
        self._counter = FlopCounterMode(display=False)
        self._kernel = sdpa_kernel(SDPBackend.MATH)
        self._kernel.__enter__()
        self._counter.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._counter.__exit__(*exc)
        self._kernel.__exit__(*exc)
        self.total = self._counter.get_total_flops()


def plot_losses(history: list[dict], path: Path) -> None:
    """Image and text loss against step (log scale) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    steps = [h["step"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, [h["loss_image"] for h in history], label="image (flow matching)")
    ax.plot(steps, [h["loss_text"] for h in history], label="text (masked diffusion)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def sample_grid(images: list, titles: list[str], path: Path, columns: int = 4) -> None:
    """Images with a caption under each, saved as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = (len(images) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3.3 * rows), dpi=80, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        ax.imshow(image, interpolation="nearest")
        ax.set_title("\n".join(_wrap(title, 34)), fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + [line] if line else lines


def append_jsonl(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
