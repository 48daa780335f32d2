"""The product as a person uses it: ``python app.py`` with the bundled model and its own defaults, driven through
``gradio_client`` the way the browser drives it.

One server for the module, started as the README starts it; every call leaves the controls a person did not touch
at the values the page shows (the model's saved defaults). Checked on every result: no error, a non-empty result,
a final stats line, the tokens view spelling the final text, and a replay slider that is usable whenever it is
shown. The server's log is read at the end: a handled mistake is one line, never a traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import shapes_world as sw
from shapes_world.examples import PROMPTS

from bad_inputs import write_png_bomb
from helpers import free_port

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402

pytestmark = pytest.mark.slow  # the bundled model behind a real server

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "assets" / "examples").glob("*.png"))
STATS = re.compile(r"^done: \d+ steps? · \d+ tokens? · \d+ forward pass(es)? · \d+ tokens/s · \d+ ms$")
IMAGE_STATS = re.compile(r"^done: \d+ steps? · \d+ forward pass(es)? · \d+ ms · seed \d+$")
MAX_STEPS = 1000  # ddit.checks.MAX_STEPS, the Steps boxes' stated maximum


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``python app.py`` on a free port, as a newcomer starts it; yields (url, log file)."""
    log = tmp_path_factory.mktemp("server") / "app.log"
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
    env.pop("DDIT_MODEL", None)  # the bundled model, whatever the caller's shell says
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            pytest.fail(f"app.py exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            gradio_client.Client(url, verbose=False)
            break
        except Exception:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"app.py did not serve within 180 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
    yield url, log
    proc.terminate()
    proc.wait(30)


@pytest.fixture(scope="module")
def client(server):
    return gradio_client.Client(server[0], verbose=False)


def spelled(tokens: list[dict], kind: str | None = None) -> str:
    """The text a tokens view shows (its answer part unless ``kind``), without spaces or end glyphs."""
    words = [span["token"] for span in tokens if (span["class_or_confidence"] == "given") == (kind == "question")]
    return "".join(words).replace("·", "").replace(" ", "")


def check_caption(outputs: list, final) -> str:
    """What a person checks on a finished caption; returns the caption."""
    tokens, text, slider, status = final
    assert text.strip(), "empty caption"
    assert STATS.match(status), status
    assert spelled(tokens) == text.replace(" ", ""), (tokens, text)
    assert "▒" not in text and all(span["class_or_confidence"] != "masked" for span in tokens)
    if slider.get("visible"):  # a replay slider is shown only when there is something to replay
        assert slider["minimum"] < slider["maximum"] == slider["value"] == len(outputs) - 1, slider
    else:
        assert len(outputs) == 2, "a run of several steps must offer its replay"
    return text


def check_answer(final, question: str, turns: int = 2) -> str:
    """What a person checks on a finished answer; returns it."""
    history, tokens, box, status = final
    assert box == "" and STATS.match(status), status
    assert len(history) == turns and history[-2]["content"][0]["text"] == question
    answer = history[-1]["content"][0]["text"]
    assert answer.strip() and answer != "(no answer)", history
    assert spelled(tokens) == answer.replace(" ", "")
    return answer


def caption(client, image, **controls):
    job = client.submit(handle_file(str(image)), api_name="/caption", **controls)
    final = job.result()
    return job.outputs(), final


def ask(client, image, question, history=(), **controls):
    return client.predict(handle_file(str(image)), question, list(history), api_name="/ask", **controls)


def scene_files(tmp_path, per_count: int = 8, seed: int = 27) -> list[tuple[Path, sw.Scene]]:
    """Freshly drawn scenes, ``per_count`` each of 1, 2 and 3 objects, as "Draw a new scene" draws them."""
    rng = np.random.default_rng(seed)
    out = []
    for n in (1, 2, 3):
        for i in range(per_count):
            scene = sw.sample_scene(rng, n)
            path = tmp_path / f"scene_{n}_{i}.png"
            sw.render(scene, rng).save(path)
            out.append((path, scene))
    return out


# ----------------------------------------------------------------------------- every example, every tab
@pytest.mark.parametrize("image", EXAMPLES, ids=lambda p: p.stem)
def test_each_example_image_is_captioned_at_the_defaults(client, image):
    outputs, final = caption(client, image)
    words = check_caption(outputs, final).split()
    assert words[0] == "a" and any(shape.startswith(w.rstrip(",")) for w in words for shape in sw.SHAPES)


@pytest.mark.parametrize("image", EXAMPLES, ids=lambda p: p.stem)
def test_each_example_image_is_asked_about_at_the_defaults(client, image):
    question = "how many shapes are there?"
    answer = check_answer(ask(client, image, question), question)
    assert answer in sw.NUMBER_WORDS[1:sw.MAX_OBJECTS + 1]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_each_example_prompt_is_generated_at_the_defaults(client, prompt):
    job = client.submit(prompt, api_name="/generate")
    image, strip, gif, status = job.result()
    assert IMAGE_STATS.match(status), status
    steps = int(status.split()[1])
    assert len(job.outputs()) == steps + 1 and len(strip) == steps
    assert Image.open(image).size[0] >= 64 and Image.open(gif).n_frames >= 2
    assert sw.read_scene(Image.open(image).resize((sw.IMAGE_SIZE, sw.IMAGE_SIZE), Image.NEAREST)).objects


def test_fresh_scenes_are_captioned_and_answered(client, tmp_path):
    """24 freshly drawn scenes of 1, 2 and 3 objects, each captioned, asked a question and drawn from its caption,
    all at the app's defaults: every call works, and the answers are the model's, not an app's mangling of them
    (its benchmark: 99.5 % exact captions, 98 % answers)."""
    rng = np.random.default_rng(0)
    exact, right, drawn = 0, 0, 0
    scenes = scene_files(tmp_path)
    for path, scene in scenes:
        outputs, final = caption(client, path)
        exact += check_caption(outputs, final) == sw.caption(scene)
        question, truth, _ = sw.sample_question(scene, rng)
        right += check_answer(ask(client, path, question), question) == truth
        image, _, _, status = client.predict(sw.caption(scene), api_name="/generate")
        assert IMAGE_STATS.match(status)
        read = sw.read_scene(Image.open(image).resize((sw.IMAGE_SIZE,) * 2, Image.NEAREST))
        drawn += sw.matches(read, sw.parse_prompt(sw.caption(scene)))
    assert exact >= 0.9 * len(scenes) and right >= 0.85 * len(scenes), (exact, right)
    assert drawn >= 0.6 * len(scenes), drawn


# ----------------------------------------------------------------------------- each control at its extremes
def test_a_caption_that_finishes_in_one_step_hides_the_replay(client):
    outputs, final = caption(client, EXAMPLES[0], steps=1)
    check_caption(outputs, final)
    assert len(outputs) == 2 and final[2]["visible"] is False and final[3].startswith("done: 1 step · ")


def test_captions_at_the_most_steps(client):
    outputs, final = caption(client, EXAMPLES[1], steps=MAX_STEPS, sampler="ancestral")
    check_caption(outputs, final)
    assert final[2]["visible"] and len(outputs) > 2


def test_answers_at_one_and_the_most_steps(client):
    for steps in (1, MAX_STEPS):
        check_answer(ask(client, EXAMPLES[2], "how many shapes are there?", steps=steps),
                     "how many shapes are there?")


def test_generate_at_one_and_the_most_steps(client):
    for steps in (1, MAX_STEPS):
        job = client.submit("a small blue square in the center", steps=steps, api_name="/generate")
        image, strip, gif, status = job.result()
        assert status.startswith(f"done: {steps} step") and len(job.outputs()) == steps + 1
        assert len(strip) == min(steps, 50) and strip[-1]["caption"] == f"step {steps}"


def test_the_replay_slider_at_its_first_and_last_step(client):
    outputs, final = caption(client, EXAMPLES[3], steps=MAX_STEPS, sampler="ancestral")
    slider = final[2]
    assert slider["visible"]
    first = client.predict(slider["minimum"], api_name="/replay")
    last = client.predict(slider["maximum"], api_name="/replay")
    assert first == outputs[0][0] and last == final[0]
    assert any(span["class_or_confidence"] == "masked" for span in first)


def test_pace_unmasks_token_by_token_with_the_same_answer(client):
    question = "what color is the circle?"
    fast = ask(client, EXAMPLES[0], "how many shapes are there?")
    job = client.submit(handle_file(str(EXAMPLES[0])), "how many shapes are there?", [], pace=0.3, api_name="/ask")
    slow = job.result()
    assert slow[0][-1] == fast[0][-1] and len(job.outputs()) >= 2
    with pytest.raises(Exception, match=r"Pace \(seconds per step\): Value 9 is greater than maximum value 2"):
        ask(client, EXAMPLES[0], question, pace=9)


def test_paced_caption_is_the_unpaced_one(client):
    _, fast = caption(client, EXAMPLES[4])
    outputs, slow = caption(client, EXAMPLES[4], pace=0.05)
    assert slow[1] == fast[1] and len(outputs) > 2 and slow[2]["visible"]


def test_a_follow_up_question_grows_the_history_by_two_turns(client):
    first = ask(client, EXAMPLES[5], "how many shapes are there?")
    second = ask(client, EXAMPLES[5], "what color is the square?", first[0])
    check_answer(second, "what color is the square?", turns=4)
    assert second[0][:2] == first[0]


def test_clear_empties_the_chat(client):
    assert client.predict(api_name="/lambda") == ([], None, "", "")


def test_random_seed_draws_a_new_seed_each_time(client):
    seeds = {client.predict("a large yellow triangle", random_seed=True, api_name="/generate")[3].split()[-1]
             for _ in range(3)}
    assert len(seeds) == 3


def test_stop_mid_run_then_the_app_still_answers(client):
    job = client.submit("a red circle, a blue square and a green triangle", steps=MAX_STEPS, api_name="/generate")
    deadline = time.monotonic() + 60
    while len(job.outputs()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(job.outputs()) >= 3, "the run never streamed"
    job.cancel()
    time.sleep(0.5)
    shown = len(job.outputs())
    time.sleep(1.0)
    assert len(job.outputs()) == shown < MAX_STEPS  # no more steps arrive after Stop
    status = client.predict("a small blue square in the center", api_name="/generate")[3]
    assert status.startswith("done: ")


def test_draw_a_new_scene_gives_a_captionable_scene(client):
    image, drawn = client.predict(api_name="/fresh_scene")
    assert drawn.startswith("drawn: a ")
    outputs, final = caption(client, image)
    check_caption(outputs, final)


# ----------------------------------------------------------------------------- bad input, as people give it
def test_the_mistakes_of_issue_27_are_one_line_each(client, tmp_path, server):
    bomb = tmp_path / "bomb.png"
    write_png_bomb(bomb, 20000, 20000)
    with pytest.raises(Exception, match=r"The image is 400,000,000 pixels; at most 67,108,864"):
        caption(client, bomb)
    with pytest.raises(Exception, match=r"Pace \(seconds per step\): Value -1 is less than minimum value 0"):
        caption(client, EXAMPLES[0], pace=-1)
    with pytest.raises(Exception, match=r"Sampler: Value: 'bogus'.* is not in the list of choices"):
        ask(client, EXAMPLES[0], "how many shapes are there?", sampler="bogus")
    with pytest.raises(Exception, match=r"Not in the model's vocabulary: &lt;img, src=x&gt;\. Write instead"):
        client.predict("<img src=x> a red circle", api_name="/generate")


def test_the_server_log_has_no_traceback(server):
    """Run last (pytest keeps file order): every mistake above was handled, none crashed a handler."""
    text = server[1].read_text()
    assert "Traceback" not in text and "exception" not in text.lower(), text[-3000:]
