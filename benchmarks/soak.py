"""Soak test of the app: one app process, many mixed requests (good and bad), memory before and after.

Run:  python benchmarks/soak.py [--model PATH] [--requests 500] [--clients 4]

Starts ``python app.py`` on 127.0.0.1, warms each endpoint once, then sends ``--requests`` requests from
``--clients`` threads through ``gradio_client``: a rotating mix of generate / caption / ask calls with few
steps, and bad ones (empty prompt, steps 2.5, guidance 1e9, seed 2**70, a non-image upload, an over-long
question). Prints how many were answered, refused with a message (the bad ones) and failed (an answer to a
good request that did not come, or a bad one that was not refused), and the app's resident memory (RSS,
app process and children) after the warm-up and at the end.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # repo root: ddit and app are not pip-installed
from ddit.cli import DEFAULT_MODEL  # noqa: E402
sys.path.insert(0, str(ROOT / "tests"))  # the tests' helpers: bad inputs, a free port
from bad_inputs import write_png_bomb  # noqa: E402
from helpers import free_port  # noqa: E402


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def requests(image: str, bad_image: str, bomb: str):
    """(kind, api_name, args, expect_refusal) forever, good ones and bad ones interleaved."""
    from gradio_client import handle_file

    good = [("generate", "/generate", ("a red circle at the top left",), False),
            ("caption", "/caption", (handle_file(image),), False),
            ("ask", "/ask", (handle_file(image), "what color is the circle?"), False)]
    bad = [("empty prompt", "/generate", ("", "", 4, 2.0, 0, False), True),
           ("steps 2.5", "/generate", ("a red circle", "", 2.5, 2.0, 0, False), True),
           ("guidance 1e9", "/generate", ("a red circle", "", 4, 1e9, 0, False), True),
           ("seed 2**70", "/generate", ("a red circle", "", 4, 2.0, 2**70, False), True),
           ("non-image", "/caption", (handle_file(bad_image), 2, 28, "confidence", 0), True),
           ("long question", "/ask", (handle_file(image), "what color is it? " * 300, [], 1, "confidence", 0), True),
           ("bomb", "/caption", (handle_file(bomb),), True),
           ("pace -1", "/caption", (handle_file(image), 2, 28, "confidence", 0, -1), True),
           ("unknown sampler", "/ask", (handle_file(image), "how many?", [], 1, "bogus", 0), True),
           ("html prompt", "/generate", ("<img src=x> a red circle",), True)]
    return itertools.cycle(good + good[:1] + bad[:3] + good[1:] + bad[3:6] + good + bad[6:])


def run_requests(url: str, plan, n: int, clients: int) -> dict[str, int]:
    """Send ``n`` requests of ``plan`` from ``clients`` threads; count answered / refused / failed."""
    from gradio_client import Client

    counts, lock, todo = {"answered": 0, "refused": 0, "failed": 0}, threading.Lock(), iter(range(n))

    def worker() -> None:
        c = Client(url, verbose=False)
        while True:
            with lock:
                if next(todo, None) is None:
                    return
                kind, api, call, expect_refusal = next(plan)
            try:
                c.predict(*call, api_name=api)
                outcome = "failed" if expect_refusal else "answered"
            except Exception:  # noqa: BLE001 - a refusal with the app's message
                outcome = "refused" if expect_refusal else "failed"
            with lock:
                counts[outcome] += 1

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    from gradio_client import Client

    work = Path(tempfile.mkdtemp(prefix="ddit-soak-"))
    image, bad_image = str(sorted((ROOT / "assets" / "examples").glob("*.png"))[0]), work / "bad.png"
    bad_image.write_bytes(b"not an image")
    bomb = work / "bomb.png"
    write_png_bomb(bomb, 20000, 20000)
    port = free_port()
    log = (work / "app.log").open("w")
    app = subprocess.Popen([sys.executable, "app.py", "--model", args.model, "--port", str(port)], cwd=ROOT,
                           stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(120):
            try:
                Client(url, verbose=False)
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(1)
        plan = requests(image, str(bad_image), str(bomb))
        warm = run_requests(url, plan, args.warmup, args.clients)
        print(f"warm-up: {args.warmup} requests: {warm}")
        start_rss = rss_mb(app.pid)
        began = time.perf_counter()
        counts = run_requests(url, plan, args.requests, args.clients)
        end_rss = rss_mb(app.pid)
        print(f"model {args.model} | {args.requests} requests from {args.clients} clients in "
              f"{time.perf_counter() - began:.0f} s")
        print(f"answered {counts['answered']}, refused {counts['refused']}, failed {counts['failed']}")
        print(f"app RSS after warm-up {start_rss:.0f} MB, at the end {end_rss:.0f} MB "
              f"({100 * (end_rss / start_rss - 1):+.1f} %)")
        tracebacks = (work / "app.log").read_text().count("Traceback")
        print(f"tracebacks in the app's log: {tracebacks}")
    finally:
        app.terminate()
        app.wait(timeout=30)


if __name__ == "__main__":
    main()
