"""Readers for real image–text data: every fixture is built here, in tmp_path, from 8×8 images."""
from __future__ import annotations

import io
import json
import logging
import os
import pickle
import tarfile
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from ddit.image_inputs import to_rgb
from train.readers import (
    SHORT_ANSWER_SUFFIX,
    Sample,
    append_short_answer_suffix,
    expand_shards,
    open_dataset,
    read_caption_json,
    read_jsonl,
    read_llava,
    read_webdataset,
    strip_image_placeholder,
)

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def image_bytes(color: tuple = RED, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (8, 8), color).save(buf, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def write_image(path: Path, color: tuple = RED, fmt: str = "PNG", mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(color, fmt, mode))
    return path


def write_corrupt(path: Path) -> Path:
    path.write_bytes(os.urandom(256))  # a .jpg name over random bytes
    return path


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def close_to(pixel: tuple, color: tuple, tol: int = 8) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel, color))


def check_rgb(sample: Sample, color: tuple, tol: int = 0) -> None:
    assert sample.image.mode == "RGB" and sample.image.size == (8, 8)
    assert close_to(sample.image.getpixel((3, 3)), color, tol), sample.image.getpixel((3, 3))


# ----------------------------------------------------------------------------- caption JSON


def test_caption_json_prefers_recaption(tmp_path):
    write_image(tmp_path / "img" / "a.png", RED)
    write_image(tmp_path / "img" / "b.jpg", GREEN, "JPEG")
    write_image(tmp_path / "img" / "c.png", (0, 0, 255, 0), mode="RGBA")  # fully transparent
    rows = [
        {"image_path": "img/a.png", "caption": "red", "re_caption": "a red square", "height": 8, "width": 8,
         "ratio": 1.0},
        {"image_path": "img/b.jpg", "caption": "green", "re_caption": "  ", "height": 8, "width": 8, "ratio": 1.0},
        {"image_path": str(tmp_path / "img" / "c.png"), "caption": "blank"},  # absolute path, no re_caption
    ]
    (tmp_path / "caps.json").write_text(json.dumps(rows))

    reader = read_caption_json(tmp_path / "caps.json")
    samples = list(reader)
    assert [s.response for s in samples] == ["a red square", "green", "blank"]
    assert all(s.prompt == "" for s in samples)
    check_rgb(samples[0], RED)
    check_rgb(samples[1], GREEN, tol=8)
    check_rgb(samples[2], (255, 255, 255))  # RGBA composited on white
    assert (reader.stats.total, reader.stats.kept, sum(reader.stats.skipped.values())) == (3, 3, 0)

    plain = read_caption_json(tmp_path / "caps.json", use_recaption=False)
    assert [s.response for s in plain] == ["red", "green", "blank"]


def test_caption_json_skips_bad_rows_and_counts_them(tmp_path, caplog):
    write_image(tmp_path / "good.png", BLUE)
    write_corrupt(tmp_path / "corrupt.jpg")
    rows = [
        {"image_path": "good.png", "caption": "blue"},
        {"image_path": "corrupt.jpg", "caption": "noise"},
        {"image_path": "missing.png", "caption": "nothing"},
        {"image_path": "good.png", "re_caption": ""},  # no caption at all
        {"caption": "no image field"},
        42,
    ]
    (tmp_path / "caps.json").write_text(json.dumps(rows))
    reader = read_caption_json(tmp_path / "caps.json")
    with caplog.at_level(logging.WARNING, logger="train.readers"):
        samples = list(reader)

    assert [s.response for s in samples] == ["blue"]
    assert reader.stats.skipped == Counter(bad_image=1, missing_image=1, no_text=1, no_image=1, bad_json=1)
    assert (reader.stats.total, reader.stats.kept) == (6, 1)
    assert "corrupt.jpg" in caplog.text and "bad_image" in caplog.text
    assert "kept 1 of 6" in caplog.text  # the summary


def test_reader_is_reiterable_and_counts_each_pass(tmp_path):
    write_image(tmp_path / "a.png")
    (tmp_path / "caps.json").write_text(json.dumps([{"image_path": "a.png", "caption": "x"},
                                                    {"image_path": "gone.png", "caption": "y"}]))
    reader = read_caption_json(tmp_path / "caps.json")
    assert [s.response for s in reader] == [s.response for s in reader] == ["x"]
    assert (reader.stats.total, reader.stats.skipped) == (2, Counter(missing_image=1))


def test_reader_pickles_for_dataloader_workers(tmp_path):
    write_image(tmp_path / "a.png")
    (tmp_path / "caps.json").write_text(json.dumps([{"image_path": "a.png", "caption": "x"}]))
    (tmp_path / "rows.jsonl").write_text(json.dumps({"image": "a.png", "caption": "y"}))
    tar = write_tar(tmp_path / "s.tar", [("0.png", image_bytes()), ("0.txt", b"z")])
    readers = [read_caption_json(tmp_path / "caps.json"), read_jsonl(tmp_path / "rows.jsonl"),
               read_webdataset(str(tar))]
    for reader, text in zip(readers, "xyz"):
        assert [s.response for s in pickle.loads(pickle.dumps(reader))] == [text]


def test_missing_manifest_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_caption_json(tmp_path / "nope.json")


# ----------------------------------------------------------------------------- JSON lines


def test_jsonl_keys_prompt_and_root(tmp_path):
    images = tmp_path / "images"
    write_image(images / "a.png", RED)
    write_image(images / "b.png", GREEN)
    write_corrupt(images / "c.jpg")
    abs_path = write_image(tmp_path / "elsewhere" / "d.png", BLUE)
    lines = [
        json.dumps({"file": "a.png", "question": "what color?", "answer": "red"}),
        "",  # blank lines are not records
        json.dumps({"file": "b.png", "answer": ["", "green", "lime"]}),  # several captions: first non-empty
        "{not json",
        json.dumps({"file": "c.jpg", "question": "q", "answer": "a"}),
        json.dumps({"file": str(abs_path), "question": "  which?  ", "answer": " blue "}),
        json.dumps({"file": "a.png", "question": "no answer"}),
    ]
    manifest = tmp_path / "meta" / "data.jsonl"
    manifest.parent.mkdir()
    manifest.write_text("\n".join(lines) + "\n")

    reader = read_jsonl(manifest, root=images, image_key="file", text_key="answer", prompt_key="question")
    samples = list(reader)
    assert [(s.prompt, s.response) for s in samples] == [("what color?", "red"), ("", "green"), ("which?", "blue")]
    check_rgb(samples[0], RED)
    check_rgb(samples[2], BLUE)
    assert reader.stats.skipped == Counter(bad_json=1, bad_image=1, no_text=1)
    assert reader.stats.total == 6


def test_jsonl_default_root_is_manifest_folder(tmp_path):
    write_image(tmp_path / "data" / "imgs" / "a.png", GREEN)
    manifest = tmp_path / "data" / "train.jsonl"
    manifest.write_text(json.dumps({"image": "imgs/a.png", "caption": "a green square"}) + "\n")
    samples = list(read_jsonl(manifest))
    assert [s.response for s in samples] == ["a green square"]
    check_rgb(samples[0], GREEN)


# ----------------------------------------------------------------------------- LLaVA


@pytest.mark.parametrize("raw, clean", [
    ("<image>\nWhat color is it?", "What color is it?"),
    ("What color is it?\n<image>", "What color is it?"),
    ("  <image>  \n\n What color is it?  ", "What color is it?"),
    ("Look.\n<image>\nWhat color is it?", "Look.\nWhat color is it?"),
    ("<image>", ""),
])
def test_strip_image_placeholder(raw, clean):
    assert strip_image_placeholder(raw) == clean


def test_append_short_answer_suffix_once():
    assert append_short_answer_suffix("What color?") == f"What color?\n{SHORT_ANSWER_SUFFIX}"
    once = append_short_answer_suffix("What color?")
    assert append_short_answer_suffix(once) == once


def llava_rows() -> list:
    def convo(question: str, *answers: str) -> list:
        turns = [{"from": "human", "value": question}]
        for a in answers:
            turns += [{"from": "gpt", "value": a}, {"from": "human", "value": "and then?"}]
        return turns[:-1] if answers else turns

    return [
        {"id": "1", "image": "a.png", "conversations": convo("<image>\nWhat color is the square?", "Red.", "More.")},
        {"id": "2", "image": "b.png", "conversations": convo("What shape is it?\n<image>", "A square.")},
        {"id": "3", "image": "a.png",
         "conversations": convo(f"<image>\nWhat color?\n{SHORT_ANSWER_SUFFIX}", "red")},
        {"id": "4", "conversations": convo("Tell me a joke.", "No.")},  # text-only: no image
        {"id": "5", "image": "a.png", "conversations": convo("<image>\nUnanswered?")},  # no gpt turn
        {"id": "6", "image": "gone.png", "conversations": convo("<image>\nWhere?", "here")},
    ]


def test_llava_first_exchange_and_placeholder(tmp_path):
    write_image(tmp_path / "a.png", RED)
    write_image(tmp_path / "b.png", GREEN)
    (tmp_path / "llava.json").write_text(json.dumps(llava_rows()))

    reader = read_llava(tmp_path / "llava.json")
    samples = list(reader)
    assert [(s.prompt, s.response) for s in samples] == [
        ("What color is the square?", "Red."),
        ("What shape is it?", "A square."),
        (f"What color?\n{SHORT_ANSWER_SUFFIX}", "red"),  # the suffix the checkpoints expect stays
    ]
    check_rgb(samples[1], GREEN)
    assert reader.stats.skipped == Counter(no_image=1, no_text=1, missing_image=1)

    short = [s.prompt for s in read_llava(tmp_path / "llava.json", add_short_answer_suffix=True)]
    assert short == [f"What color is the square?\n{SHORT_ANSWER_SUFFIX}", f"What shape is it?\n{SHORT_ANSWER_SUFFIX}",
                     f"What color?\n{SHORT_ANSWER_SUFFIX}"]


# ----------------------------------------------------------------------------- webdataset


def make_shards(tmp_path: Path) -> list[Path]:
    shard0 = write_tar(tmp_path / "shard-000000.tar", [
        ("000000.jpg", image_bytes(RED, "JPEG")), ("000000.txt", b"a red square\n"),
        ("000001.cls", b"7"), ("000001.png", image_bytes(GREEN)),
        ("000001.json", json.dumps({"caption": "a green square", "width": 8}).encode()),
    ])
    shard1 = write_tar(tmp_path / "shard-000001.tar", [
        ("sub/000002.png", image_bytes(BLUE)), ("sub/000002.caption", b"a blue square"),
        ("000003.txt", b"text without image"),
        ("000004.jpg", os.urandom(200)), ("000004.txt", b"corrupt"),
        ("000005.png", image_bytes(RED)), ("000005.txt", b""),
        ("000006.PNG", image_bytes(GREEN)), ("000006.json", json.dumps({"text": "upper case ext"}).encode()),
    ])
    return [shard0, shard1]


def test_webdataset_groups_by_key_across_two_shards(tmp_path):
    shards = make_shards(tmp_path)
    expected = ["a red square", "a green square", "a blue square", "upper case ext"]
    reader = read_webdataset([str(s) for s in shards])
    samples = list(reader)
    assert [s.response for s in samples] == expected
    assert all(s.prompt == "" for s in samples)
    check_rgb(samples[0], RED, tol=8)
    check_rgb(samples[1], GREEN)
    check_rgb(samples[2], BLUE)
    assert reader.stats.skipped == Counter(no_image=1, bad_image=1, no_text=1)
    assert (reader.stats.total, reader.stats.kept) == (7, 4)

    brace = read_webdataset(str(tmp_path / "shard-{000000..000001}.tar"))
    assert [s.response for s in brace] == expected


def test_webdataset_truncated_and_missing_shards(tmp_path):
    members = [("000000.png", image_bytes(RED)), ("000000.txt", b"first"),
               ("000001.png", image_bytes(GREEN)), ("000001.txt", b"second")]
    data = write_tar(tmp_path / "full.tar", members).read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[: 512 * 5 + 20])  # ends inside the third member's data
    reader = read_webdataset([str(tmp_path / "cut.tar"), str(tmp_path / "gone.tar"), str(tmp_path / "full.tar")])
    assert [s.response for s in reader] == ["first", "first", "second"]
    assert reader.stats.skipped == Counter(bad_shard=2)


def test_expand_shards(tmp_path):
    assert expand_shards("d/s-{08..10}.tar") == ["d/s-08.tar", "d/s-09.tar", "d/s-10.tar"]
    assert expand_shards(["x/{a,b}.tar", "y.tar"]) == ["x/a.tar", "x/b.tar", "y.tar"]
    for name in ("b.tar", "a.tar", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    assert expand_shards(str(tmp_path / "*.tar")) == [str(tmp_path / "a.tar"), str(tmp_path / "b.tar")]
    with pytest.raises(FileNotFoundError):
        read_webdataset(str(tmp_path / "none-*.tar"))


# ----------------------------------------------------------------------------- dispatch


def test_open_dataset_dispatches_on_format(tmp_path):
    write_image(tmp_path / "a.png", RED)
    write_image(tmp_path / "b.png", GREEN)
    (tmp_path / "llava.json").write_text(json.dumps(llava_rows()))
    (tmp_path / "caps.json").write_text(json.dumps([{"image_path": "a.png", "caption": "red", "re_caption": "rc"}]))
    (tmp_path / "rows.jsonl").write_text(json.dumps({"image": "b.png", "caption": "green"}) + "\n")
    (tmp_path / "wds").mkdir()
    make_shards(tmp_path / "wds")

    assert open_dataset(tmp_path / "llava.json").name.startswith("llava(")
    assert [s.response for s in open_dataset(tmp_path / "caps.json")] == ["rc"]
    assert [s.response for s in open_dataset(tmp_path / "caps.json", use_recaption=False)] == ["red"]
    assert [s.response for s in open_dataset(str(tmp_path / "rows.jsonl"))] == ["green"]
    assert len(list(open_dataset(tmp_path / "wds" / "shard-000000.tar"))) == 2
    assert len(list(open_dataset(str(tmp_path / "wds" / "shard-*.tar")))) == 4
    assert len(list(open_dataset(tmp_path / "wds"))) == 4  # a folder of shards
    (tmp_path / "other.json").write_text(json.dumps([{"file": "a.png"}]))
    with pytest.raises(ValueError):
        open_dataset(tmp_path / "other.json")
    with pytest.raises(ValueError):
        open_dataset(tmp_path / "a.png")


# ----------------------------------------------------------------------------- to_rgb


def palette_image(transparent: bool) -> Image.Image:
    image = Image.new("P", (2, 2), 1)
    image.putpalette([0, 0, 0, 0, 200, 0] + [0] * (256 * 3 - 6))
    if transparent:
        image.info["transparency"] = 1
    return image


@pytest.mark.parametrize("image, rgb", [
    (Image.new("L", (2, 2), 128), (128, 128, 128)),
    (Image.new("1", (2, 2), 1), (255, 255, 255)),
    (Image.new("1", (2, 2), 0), (0, 0, 0)),
    (Image.new("RGBA", (2, 2), (255, 0, 0, 0)), (255, 255, 255)),  # transparent -> white, not red
    (Image.new("RGBA", (2, 2), (0, 0, 255, 255)), (0, 0, 255)),
    (Image.new("RGBA", (2, 2), (0, 0, 0, 128)), (127, 127, 127)),  # half way to white
    (Image.new("LA", (2, 2), (0, 0)), (255, 255, 255)),
    (palette_image(transparent=False), (0, 200, 0)),
    (palette_image(transparent=True), (255, 255, 255)),
    (Image.new("CMYK", (2, 2), (0, 255, 255, 0)), (255, 0, 0)),
    (Image.new("CMYK", (2, 2), (0, 0, 0, 255)), (0, 0, 0)),
    (Image.new("I;16", (2, 2), 65535), (255, 255, 255)),  # rescaled, not clipped
    (Image.new("I;16", (2, 2), 32896), (128, 128, 128)),
], ids=["L", "1-white", "1-black", "RGBA-clear", "RGBA-opaque", "RGBA-half", "LA", "P", "P-transparent",
        "CMYK-red", "CMYK-black", "I16-max", "I16-mid"])
def test_to_rgb(image, rgb):
    out = to_rgb(image)
    assert out.mode == "RGB" and out.size == image.size
    assert close_to(out.getpixel((1, 1)), rgb, tol=1), out.getpixel((1, 1))
