"""What the app checks around a run (``app_inputs``), without a server: the components the page is built from are
drawn by gradio's own front ends, and gradio's own input errors name their field."""

import html
import re

import gradio as gr
import pytest

import app
import app_inputs
from ddit.presets import build_tiny_pipeline

pytestmark = pytest.mark.slow  # the app's own components: importing gradio takes seconds


@pytest.fixture(scope="module")
def config():
    return app.build_demo(build_tiny_pipeline()).get_config_file()


@pytest.mark.parametrize("base, label, count", [(gr.Image, "Image", 3), (gr.Slider, "Pace (seconds per step)", 2),
                                                (gr.Radio, "Sampler", 2)])
def test_our_components_are_drawn_by_gradios_front_ends(config, base, label, count):
    """A subclass of a gradio component is looked up by name and module hash: ours must name gradio's own, and keep
    its settings (read off gr.Image's ``__init__``), or the browser draws nothing (an empty page, seen once)."""
    drawn = [c for c in config["components"] if c.get("component_class_id") == base.get_component_class_id()]
    assert drawn and {c["type"] for c in drawn} == {base.__name__.lower()}
    assert sum(c["props"].get("label") == label for c in drawn) == count  # Caption, Chat (and Score: its image)
    builtin = {name.lower() for name in dir(gr)} | {"form"}  # gradio groups a column's inputs in a form
    assert all(c["type"] in builtin for c in config["components"])


@pytest.mark.parametrize("component, payload, message", [
    (app_inputs.Slider(0, 2, label="Pace (seconds per step)"), -1,
     r"^Pace \(seconds per step\): Value -1 is less than minimum value 0\.$"),
    (app_inputs.Slider(1, 5, label="Replay step"), 9, r"^Replay step: Value 9 is greater than maximum value 5\.$"),
    (app_inputs.Radio(["ancestral", "confidence"], label="Sampler"), "bogus",
     r"^Sampler: Value: 'bogus' .* is not in the list of choices"),
])
def test_gradios_own_input_errors_name_the_field(component, payload, message):
    with pytest.raises(gr.Error) as err:
        component.preprocess(payload)
    assert re.search(message, html.unescape(err.value.message))


def test_messages_show_typed_html_as_text():
    err = app_inputs.user_error("Not in the model's vocabulary: <img, src=x>.")
    assert err.message == "Not in the model's vocabulary: &lt;img, src=x&gt;."
