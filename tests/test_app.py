"""The Gradio app: construction, every tab driven through gradio_client, bad input, and load."""

import concurrent.futures
import re

import numpy as np
import pytest
from helpers import free_port
from PIL import Image

import app
import app_inputs
from ddit.presets import build_tiny_pipeline

gradio_client = pytest.importorskip("gradio_client")
pytestmark = pytest.mark.slow  # a real server and clients: seconds per test


@pytest.fixture(scope="module")
def pipe():
    return build_tiny_pipeline(seed=0)


@pytest.fixture(scope="module")
def server(pipe):
    demo = app.build_demo(pipe)
    yield app.launch(demo, "127.0.0.1", free_port(), block=False, max_queue=64)
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    return gradio_client.Client(server, verbose=False)


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "scene.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
    return str(path)


def vocabulary_words(pipe, text: str) -> bool:
    return all(pipe.tokenizer.unk_token_id not in pipe.tokenizer(w)["input_ids"] for w in text.split())


def test_build_demo_does_not_start_a_server(pipe):
    demo = app.build_demo(pipe)
    assert not demo.is_running and demo.local_url is None
    labels = {getattr(block, "label", None) for block in demo.blocks.values()}
    assert {"Prompt", "Caption", "Chat about the image"} <= labels


def test_generate_streams_one_update_per_step(client):
    job = client.submit("a red circle", "", 5, 2.0, 3, False, api_name="/generate")
    final = job.result()
    outputs = job.outputs()
    assert len(outputs) == 5 + 1  # one per step, then the final image with strip and GIF
    assert Image.open(final[0]).size == (app_inputs.VIEW_SIDE, app_inputs.VIEW_SIDE)
    assert len(final[1]) == 5 and final[2].endswith(".gif")
    assert Image.open(final[2]).n_frames >= 5  # PIL merges the final frame when it equals the last preview


def test_caption_streams_tokens(client, pipe, image_file):
    steps = 4
    job = client.submit(gradio_client.handle_file(image_file), steps, 6, "confidence", 0, api_name="/caption")
    tokens, text, _, status = job.result()
    assert len(job.outputs()) == steps + 1 and status.startswith(f"done: {steps} steps · ")
    assert re.search(r"\d+ tokens? · \d+ forward pass(es)? · \d+ tokens/s · \d+ ms$", status)
    first = job.outputs()[0][0]
    assert any(span["class_or_confidence"] == "masked" for span in first)
    assert text.strip() and vocabulary_words(pipe, text)


def test_chat_answers_and_keeps_the_question(client, pipe, image_file):
    question = "what color is the circle?"
    job = client.submit(gradio_client.handle_file(image_file), question, [], 3, "confidence", 1, api_name="/ask")
    history, tokens, box, status = job.result()
    assert len(job.outputs()) == 3 + 1 and status.startswith("done: 3 steps · ") and "forward pass" in status
    assert box == ""
    assert history[0]["content"][0]["text"] == question
    answer = history[-1]["content"][0]["text"]
    assert answer.strip() and (answer == "(no answer)" or vocabulary_words(pipe, answer))
    shown_question = "".join(s["token"] for s in tokens if s["class_or_confidence"] == "given").replace(" ", "")
    assert shown_question == pipe.defaults.answer.question_template.format(question=question).replace(" ", "")
    # a follow-up about the same image keeps the conversation
    follow = client.predict(gradio_client.handle_file(image_file), "how many?", history, 3, "confidence", 1,
                            api_name="/ask")
    assert len(follow[0]) == 4


LONG = "a red circle " * 900  # ~10,000 characters


@pytest.mark.parametrize("args, endpoint, message", [
    (("", "", 4, 2.0, 0, False), "/generate", "Please write a prompt"),
    (("a red circle", "", 10**6, 2.0, 0, False), "/generate", "`num_inference_steps` must be between 1 and 1000"),
    (("a red circle", "", 2.5, 2.0, 0, False), "/generate", "`num_inference_steps` must be a whole number, got 2.5"),
    (("a red circle", "", 4, -5.0, 0, False), "/generate", "`guidance_scale` must be between 0 and 50"),
    (("a red circle", "", 4, 1e9, 0, False), "/generate", "`guidance_scale` must be between 0 and 50"),
    (("a red circle", "", 4, 2.0, 2**70, False), "/generate", "`seed` must be between 0 and"),
    (("a red circle", "", None, 2.0, 0, False), "/generate", "Please enter a value for Steps"),
    ((LONG, "", 4, 2.0, 0, False), "/generate", r"The prompt is \d+ tokens long; this model reads at most 32"),
    ((None, 4, 6, "confidence", 0), "/caption", "upload an image"),
    ((None, "what?", [], 3, "confidence", 0), "/ask", "upload an image"),
])
def test_bad_input_gets_the_pipelines_message(client, args, endpoint, message):
    with pytest.raises(Exception, match=message):
        client.predict(*args, api_name=endpoint)


def test_long_question_is_refused_with_its_length(client, image_file):
    question = "what color is the circle? " * 200  # ~5,000 characters
    with pytest.raises(Exception, match=r"The prompt \(question or instruction.*\) is \d+ tokens long"):
        client.predict(gradio_client.handle_file(image_file), question, [], 3, "confidence", 0, api_name="/ask")


@pytest.mark.parametrize("content, name", [(b"this is not an image", "notes.png"), (b"", "empty.png")])
def test_unreadable_upload_gets_the_clis_message(client, tmp_path, content, name):
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(Exception, match=f"Could not read {name} as an image"):
        client.predict(gradio_client.handle_file(str(bad)), 4, 6, "confidence", 0, api_name="/caption")


def test_a_1x1_image_is_refused_with_a_reason(client, tmp_path):
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (200, 40, 40)).save(path)
    with pytest.raises(Exception, match="only 1x1 pixels; at least 8x8"):
        client.predict(gradio_client.handle_file(str(path)), 2, 4, "confidence", 0, api_name="/caption")


@pytest.mark.parametrize("mode, size", [("L", (20, 20)), ("RGBA", (20, 20)), ("P", (20, 20)), ("CMYK", (20, 20)),
                                        ("RGB", (8, 8)), ("RGB", (3000, 2000))])
def test_odd_images_are_converted(client, tmp_path, mode, size):
    path = tmp_path / f"odd_{mode}.{'jpg' if mode == 'CMYK' else 'png'}"
    Image.new("RGB", size, (200, 40, 40)).convert(mode).save(path)
    _, text, _, status = client.predict(gradio_client.handle_file(str(path)), 2, 4, "confidence", 0,
                                        api_name="/caption")
    assert isinstance(text, str) and status.startswith("done: 2 steps")


def test_pace_shows_one_step_token_by_token_with_the_same_answer(client, image_file):
    """Pace slows the real loop: a one-step answer unmasks one token per update, in the same one pass."""
    image = gradio_client.handle_file(image_file)
    fast = client.submit(image, "what color is the circle?", [], 1, "confidence", 1, 0, api_name="/ask")
    slow = client.submit(image, "what color is the circle?", [], 1, "confidence", 1, 0.05, api_name="/ask")
    (fast_history, *_, fast_status), (slow_history, *_, slow_status) = fast.result(), slow.result()
    assert len(fast.outputs()) == 1 + 1 and len(slow.outputs()) > 2  # several updates for one step
    assert slow_history[-1] == fast_history[-1]
    assert " · 1 forward pass · " in fast_status and " · 1 forward pass · " in slow_status
    with pytest.raises(Exception, match="greater than maximum value"):  # the slider's own check
        client.predict(image, "what color?", [], 1, "confidence", 1, 9, api_name="/ask")
    for bad in (9, -1, "fast"):  # and ours, for calls that bypass it
        with pytest.raises(app.gr.Error, match="Pace must be"):
            app_inputs.pace_seconds(bad)


def test_user_errors_are_logged_as_one_line(client, caplog, capfd):
    caplog.set_level("WARNING", logger="ddit.app")
    for args in (("a red circle", "", 2.5, 2.0, 0, False), ("a red circle", "", 4, 2.0, 2**70, False)):
        with pytest.raises(Exception):
            client.predict(*args, api_name="/generate")
    assert [r.getMessage().startswith("user error: ") for r in caplog.records if r.name == "ddit.app"] == [True] * 2
    assert "Traceback" not in capfd.readouterr().err


def test_stop_leaves_a_stopped_status():
    assert app_inputs.stopped("step 30/100 · seed 3") == "stopped at step 30/100 · seed 3"
    assert app_inputs.stopped("done: 4 steps") == "done: 4 steps"


def test_a_full_queue_says_to_retry(pipe):
    """The server's own refusal (what the browser shows) says to retry. Gradio words it "Queue is full. Max size
    is ..." and offers no setting for it; ``app._advise_on_full_queue`` rewords it by wrapping gradio's private
    ``Blocks._queue.push``: this test fails when a gradio release changes that."""
    import json
    import urllib.error
    import urllib.request

    demo = app.build_demo(pipe)
    url = app.launch(demo, "127.0.0.1", free_port(), block=False, max_queue=1)
    try:
        fn = next(d["id"] for d in demo.config["dependencies"] if d.get("api_name") == "generate")
        refusals = []
        for i in range(4):  # one runs, one waits, the rest find the queue full
            body = json.dumps({"data": ["a red circle", "", 1000, 2.0, i, False], "fn_index": fn,
                               "session_hash": f"s{i}"}).encode()
            request = urllib.request.Request(f"{url}gradio_api/queue/join", body,
                                             {"Content-Type": "application/json"})
            try:
                urllib.request.urlopen(request, timeout=30).read()
            except urllib.error.HTTPError as err:
                refusals.append((err.code, json.loads(err.read())["detail"]))
        assert refusals and all(code == 503 and detail.startswith("The app is busy") and "try again" in detail
                                for code, detail in refusals), refusals
    finally:
        demo.close()


def test_eight_clients_at_once(server, image_file):
    def one_client(i: int) -> tuple:
        c = gradio_client.Client(server, verbose=False)
        img = gradio_client.handle_file(image_file)
        return (c.predict("a red circle", "", 3, 2.0, i, False, api_name="/generate"),
                c.predict(img, 3, 6, "confidence", i, api_name="/caption"),
                c.predict(img, "how many shapes are there?", [], 2, "confidence", i, api_name="/ask"))

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one_client, range(8)))
    assert len(results) == 8 and all(len(r) == 3 and all(x is not None for x in r) for r in results)
    after = gradio_client.Client(server, verbose=False).predict("a blue square", "", 2, 1.0, 0, False,
                                                                api_name="/generate")
    assert after[3].startswith("done")


def test_the_app_starts_as_a_space_would(tmp_path):
    """Hugging Face starts ``python app.py`` with its own environment; DDIT_MODEL picks the model, and with the
    ``spaces`` package installed the handlers go through ``@spaces.GPU`` (a no-op off ZeroGPU hardware)."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    spaces = pytest.importorskip("spaces")
    assert app.on_gpu is spaces.GPU
    build_tiny_pipeline().save_pretrained(tmp_path / "model")
    port = free_port()
    env = {**os.environ, "SYSTEM": "spaces", "SPACE_ID": "someone/ddit", "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "DDIT_MODEL": str(tmp_path / "model")}
    root = Path(app.__file__).resolve().parent
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=root, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(120):
            try:
                client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:  # noqa: BLE001 - not up yet
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.5)
        image, strip, gif, status = client.predict("a red circle", "", 2, 2.0, 0, False, api_name="/generate")
        assert status.startswith("done: 2 steps") and Image.open(image).size == (app_inputs.VIEW_SIDE, app_inputs.VIEW_SIDE)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("prompt, message", [
    ("two red squares", "Not in the model's vocabulary: squares. Write instead, e.g.: “a red square and a red square”"),
    ("a red circel", "Not in the model's vocabulary: circel."),
])
def test_unknown_words_are_named_before_sampling_with_what_to_write(client, prompt, message):
    with pytest.raises(Exception, match=message):
        client.predict(prompt, "", 2, 2.0, 0, False, api_name="/generate")


def test_counted_plurals_are_spelled_out():
    import shapes_world as sw
    assert sw.spell_out_counts("two red squares and a blue circle") == "a red square, a red square and a blue circle"
    assert sw.spell_out_counts("a green triangle and two large yellow circles") == \
        "a green triangle, a large yellow circle and a large yellow circle"
    assert sw.spell_out_counts("three red squares and a blue circle") is None  # four objects: more than a scene holds
    assert sw.spell_out_counts("a red circle") is None
