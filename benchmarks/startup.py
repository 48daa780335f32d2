"""First impression: seconds from ``python app.py`` to the page being served, and where the time goes.

    python benchmarks/startup.py [--runs 5] [--model PATH] [--imports 15]

Each run starts ``python app.py`` on a free port (a new process, as a person starts it) and asks for the page
every 20 ms; the time to the first complete answer is the start-up time. Prints each run, the median and the
fastest. With ``--imports N`` it then runs ``python -X importtime -c "import app"`` once and prints the N
slowest top-level imports (cumulative, as ``importtime`` measures them), then each phase of ``app.main`` in one
process: the page is served before torch is imported, and the model loads after.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_page(model: str | None, timeout: float = 120.0) -> float:
    """Seconds from starting ``python app.py`` to a 200 answer for its page."""
    port = free_port()
    args = [sys.executable, "app.py", "--port", str(port)] + (["--model", model] if model else [])
    began = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - began < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
                    if answer.status == 200 and answer.read():
                        return time.perf_counter() - began
            except OSError:
                time.sleep(0.02)
        raise TimeoutError(f"app.py served nothing within {timeout:.0f} s")
    finally:
        proc.terminate()
        proc.wait(30)


def slowest_imports(n: int) -> list[tuple[float, str]]:
    """The ``n`` slowest imports of ``import app`` that app.py itself asks for (cumulative seconds, module)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import app"], cwd=ROOT, capture_output=True,
                         text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}).stderr
    rows = []
    for line in out.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        depth = (len(name) - len(name.lstrip())) // 2
        if depth <= 1:  # app itself, and what it imports directly
            rows.append((int(cumulative) / 1e6, name.strip()))
    return sorted(rows, reverse=True)[:n]


def phases(model: str | None) -> dict[str, float]:
    """Seconds of each phase of ``app.main`` in one process: until the page is served (gradio and the app, the
    model's saved defaults, the page drawn, the server up), then the model (torch, diffusers and transformers
    imported, the weights loaded)."""
    code = """
import os, time; t = [time.perf_counter()]
import app
import app_inputs
from ddit.task_defaults import TaskDefaults
t.append(time.perf_counter())
from ddit.model_folder import read_index, resolve_folder, saved_defaults
folder = resolve_folder(os.environ.get("STARTUP_MODEL") or app.DEFAULT_MODEL)
loading = app_inputs.LoadingPipeline(TaskDefaults.from_dict(saved_defaults(read_index(folder))),
                                    app_inputs.Domain.of_folder(folder))
t.append(time.perf_counter())
demo = app.build_demo(loading)
t.append(time.perf_counter())
app.launch(demo, "127.0.0.1", None, block=False)
t.append(time.perf_counter())
from ddit import DualDiffusionPipeline
t.append(time.perf_counter())
loading.ready(DualDiffusionPipeline.from_pretrained(folder))
t.append(time.perf_counter())
print("PHASES", *[b - a for a, b in zip(t, t[1:])])
demo.close()
"""
    env = {**os.environ, "GRADIO_SERVER_PORT": str(free_port()), "STARTUP_MODEL": model or ""}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    line = next(line for line in out.stdout.splitlines() if line.startswith("PHASES"))
    names = ("import app (gradio)", "saved defaults", "page drawn", "server up", "import torch/diffusers/ddit",
             "weights loaded")
    return dict(zip(names, (float(x) for x in line.split()[1:])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default=None, help="pipeline folder (default: the app's, the bundled model)")
    parser.add_argument("--imports", type=int, default=15, help="show this many slowest imports (0: none)")
    args = parser.parse_args()
    times = []
    for run in range(args.runs):
        times.append(time_to_page(args.model))
        print(f"run {run + 1}: page served {times[-1]:.2f} s after start")
    print(f"median {statistics.median(times):.2f} s, fastest {min(times):.2f} s ({args.runs} runs, "
          f"{os.cpu_count()} cores)")
    if args.imports:
        print("\nslowest imports of `import app` (cumulative s):")
        for seconds, name in slowest_imports(args.imports):
            print(f"  {seconds:6.2f}  {name}")
        print("\nphases in one process (s): " + ", ".join(f"{k} {v:.2f}" for k, v in phases(args.model).items()))


if __name__ == "__main__":
    main()
