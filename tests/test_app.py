"""The Gradio app: construction, every tab driven through gradio_client, bad input, and load."""

import concurrent.futures

import numpy as np
import pytest
from PIL import Image

import app
from ddit.testing import build_tiny_pipeline, free_port

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
    assert Image.open(final[0]).size == (app.VIEW_SIDE, app.VIEW_SIDE)
    assert len(final[1]) == 5 and final[2].endswith(".gif")
    assert Image.open(final[2]).n_frames >= 5  # PIL merges the final frame when it equals the last preview


def test_caption_streams_tokens(client, pipe, image_file):
    steps = 4
    job = client.submit(gradio_client.handle_file(image_file), steps, 6, "confidence", 0, api_name="/caption")
    tokens, text, _ = job.result()
    assert len(job.outputs()) == steps + 1
    first = job.outputs()[0][0]
    assert any(span["class_or_confidence"] == "masked" for span in first)
    assert text.strip() and vocabulary_words(pipe, text)


def test_chat_answers_and_keeps_the_question(client, pipe, image_file):
    question = "what color is the circle?"
    job = client.submit(gradio_client.handle_file(image_file), question, [], 3, "confidence", 1, api_name="/ask")
    history, tokens, box = job.result()
    assert len(job.outputs()) == 3 + 1
    assert box == ""
    assert history[0]["content"][0]["text"] == question
    answer = history[-1]["content"][0]["text"]
    assert answer.strip() and (answer == "(no answer)" or vocabulary_words(pipe, answer))
    shown_question = "".join(s["token"] for s in tokens if s["class_or_confidence"] == "question").replace(" ", "")
    assert shown_question == pipe.defaults.question_template.format(question=question).replace(" ", "")
    # a follow-up about the same image keeps the conversation
    follow = client.predict(gradio_client.handle_file(image_file), "how many?", history, 3, "confidence", 1,
                            api_name="/ask")
    assert len(follow[0]) == 4


@pytest.mark.parametrize("args, endpoint, message", [
    (("", "", 4, 2.0, 0, False), "/generate", "write a prompt"),
    (("a red circle", "", 10**6, 2.0, 0, False), "/generate", "maximum"),
    (("a red circle", "", 4, -5.0, 0, False), "/generate", "minimum"),
    ((None, 4, 6, "confidence", 0), "/caption", "upload an image"),
    ((None, "what?", [], 3, "confidence", 0), "/ask", "upload an image"),
])
def test_bad_input_gets_a_clear_message(client, args, endpoint, message):
    with pytest.raises(Exception, match=message):
        client.predict(*args, api_name=endpoint)


def test_non_image_file_is_refused(client, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not an image")
    with pytest.raises(Exception):
        client.predict(gradio_client.handle_file(str(bad)), 4, 6, "confidence", 0, api_name="/caption")


@pytest.mark.parametrize("mode, size", [("L", (20, 20)), ("RGBA", (20, 20)), ("P", (20, 20)), ("CMYK", (20, 20)),
                                        ("RGB", (1, 1)), ("RGB", (3000, 2000))])
def test_odd_images_are_converted(client, tmp_path, mode, size):
    path = tmp_path / f"odd_{mode}.{'jpg' if mode == 'CMYK' else 'png'}"
    Image.new("RGB", size, (200, 40, 40)).convert(mode).save(path)
    _, text, _ = client.predict(gradio_client.handle_file(str(path)), 2, 4, "confidence", 0, api_name="/caption")
    assert isinstance(text, str)


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
