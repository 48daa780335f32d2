"""Readers for real image–text training data (docs/design.md §5.2), all yielding one `Sample` type.

Formats: the released D-DiT caption JSON, JSON lines, webdataset tar shards and LLaVA
conversation JSON; `open_dataset` picks the reader from the path. A reader is re-iterable and
never raises on a bad record: corrupt or missing images, rows without an image or text are
skipped and counted in `reader.stats` (a `SkipCounter`), and logged. Relative image paths are
resolved against `root`, which defaults to the manifest's own folder.
"""
from __future__ import annotations

import collections
import functools
import glob
import io
import json
import logging
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from PIL import Image, ImageOps

from ddit.image_inputs import to_rgb
from ddit.tasks.answer import SHORT_ANSWER_INSTRUCTION, append_instruction

logger = logging.getLogger(__name__)

SHORT_ANSWER_SUFFIX = SHORT_ANSWER_INSTRUCTION  # what the released SFT data appends to short-answer questions
IMAGE_PLACEHOLDER = "<image>"
_EXIF_ORIENTATION = 0x0112
_KEY_EXT = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")  # webdataset: key = path up to the first dot
_BRACE = re.compile(r"\{([^{}]*)\}")
_GLOB = re.compile(r"[*?[]")
_JSON_KIND = re.compile(rb'"(conversations|image_path)"\s*:')
_TAR_ERRORS = (OSError, EOFError, tarfile.TarError, zlib.error)
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


@dataclass
class Pending:
    """An image not decoded yet (`Reader.undecoded`): its file or bytes, and where it came from."""
    source: Path | bytes
    label: str


@dataclass
class Sample:
    """One training example before tokenisation."""
    image: Image.Image | Pending  # RGB; Pending only from `Reader.undecoded`
    prompt: str  # conditioning text kept clean (instruction / question), "" for plain captions
    # text the model learns to generate (caption or answer); also the T2I prompt for caption data
    response: str


@dataclass
class SkipCounter:
    """What one pass of a reader saw. Skip reasons: "bad_json" (unparsable line or non-object
    row), "no_image" (no image reference / no image member), "no_text" (caption or answer missing
    or empty), "missing_image" (file not found), "bad_image" (undecodable), "bad_shard" (a tar
    that could not be read to the end; counts shards, not records)."""
    name: str = "reader"
    skipped: collections.Counter = field(default_factory=collections.Counter)
    total: int = 0  # records seen, kept or skipped
    kept: int = 0  # records yielded as Samples
    log_first: int = 5  # individual skips logged per pass; the rest are only counted

    def skip(self, reason: str, detail: str = "") -> None:
        if sum(self.skipped.values()) < self.log_first:
            logger.warning("%s: skipped %s (%s)", self.name, detail, reason)
        self.skipped[reason] += 1

    def reset(self) -> None:
        self.skipped.clear()
        self.total = self.kept = 0

    def log_summary(self) -> None:
        n = sum(self.skipped.values())
        reasons = ", ".join(f"{r}={c}" for r, c in self.skipped.most_common())
        level = logging.WARNING if n else logging.INFO
        logger.log(level, "%s: kept %d of %d records; skipped %d (%s)",
                   self.name, self.kept, self.total, n, reasons or "none")


class Reader:
    """A re-iterable stream of Samples; `stats` describes the latest (or current) pass."""

    def __init__(self, name: str, rows: Callable[[SkipCounter], Iterator[Sample]]):
        self.name = name
        self._rows = rows  # a functools.partial of a module-level function, so it pickles
        self.stats = SkipCounter(name)

    def __iter__(self) -> Iterator[Sample]:
        self.stats.reset()
        try:
            for sample in self._rows(self.stats):
                self.stats.kept += 1
                yield sample
        finally:
            self.stats.log_summary()

    def undecoded(self, stats: SkipCounter | None = None) -> Iterator[Sample]:
        """One pass with every image left `Pending`, so that a loader decodes only its own share (see
        `decode_sample`). Counts into `stats` (default `self.stats`, reset); "bad_image" is the decoder's."""
        stats = self.stats if stats is None else stats
        stats.reset()
        for sample in self._rows(stats, decode=False):
            stats.kept += 1
            yield sample


def decode_sample(sample: Sample, stats: SkipCounter) -> Sample | None:
    """`sample` with its `Pending` image decoded, or None when it cannot be (counted as "bad_image")."""
    if not isinstance(sample.image, Pending):
        return sample
    image = _decode_or_skip(stats, sample.image.source, sample.image.label)
    return None if image is None else Sample(image, sample.prompt, sample.response)


# ----------------------------------------------------------------------------- images
def _open_image(source: Path | bytes) -> Image.Image:
    """Decode fully, here, so that a corrupt file fails inside the caller's try, then to RGB."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
        image.load()
        if image.getexif().get(_EXIF_ORIENTATION, 1) != 1:  # camera photos stored rotated
            image = ImageOps.exif_transpose(image)
        return to_rgb(image)


def _decode_or_skip(stats: SkipCounter, source: Path | bytes, label: str) -> Image.Image | None:
    try:
        return _open_image(source)
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBomb...
        stats.skip("bad_image", f"{label}: {type(e).__name__}: {e}")
        return None


def _image(stats: SkipCounter, source: Path | bytes, label: str, decode: bool) -> Image.Image | Pending | None:
    """The decoded image (None if undecodable), or without `decode` a `Pending` for the loader to decode."""
    return _decode_or_skip(stats, source, label) if decode else Pending(source, label)


def _sample_from_file(stats: SkipCounter, path: Path, prompt: str, response: str,
                      decode: bool = True) -> Sample | None:
    """Checks text first, so that rows to be skipped are never decoded."""
    if not response:
        stats.skip("no_text", str(path))
    elif not path.is_file():
        stats.skip("missing_image", str(path))
    elif (image := _image(stats, path, str(path), decode)) is not None:
        return Sample(image, prompt, response)
    return None


# ----------------------------------------------------------------------------- helpers
def _text(value: Any) -> str:
    """A stripped string from a text field; for a list (several captions) the first non-empty."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return next((t for t in map(_text, value) if t), "")
    return ""


def _records(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, record) from a JSON list, or from JSON lines when the name ends in .jsonl."""
    if path.suffix != ".jsonl":
        with open(path, encoding="utf-8") as f:
            rows = json.load(f)
        if not isinstance(rows, list):
            raise ValueError(f"{path}: expected a JSON list of records, got {type(rows).__name__}")
        yield from ((f"{path}[{i}]", row) for i, row in enumerate(rows))
        return
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield f"{path}:{n}", json.loads(line)
                except ValueError:
                    yield f"{path}:{n}", None


Parse = Callable[[dict], tuple[Any, str, str]]  # record -> (image reference, prompt, response)


def _iter_manifest(stats: SkipCounter, path: Path, root: Path, parse: Parse, decode: bool = True) -> Iterator[Sample]:
    """The loop shared by the JSON readers; `parse` is the only per-format part."""
    for where, row in _records(path):
        stats.total += 1
        if not isinstance(row, dict):
            stats.skip("bad_json", where)
            continue
        image, prompt, response = parse(row)
        if not isinstance(image, str) or not image:
            stats.skip("no_image", where)  # e.g. LLaVA's text-only conversations
        # root / an absolute path is that absolute path
        elif sample := _sample_from_file(stats, root / Path(image).expanduser(), prompt, response, decode):
            yield sample


def _manifest_reader(kind: str, path: str | Path, root: str | Path | None, parse: Parse) -> Reader:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset manifest not found: {path}")
    root = Path(root) if root is not None else path.parent
    return Reader(f"{kind}({path})", functools.partial(_iter_manifest, path=path, root=root, parse=parse))


def strip_image_placeholder(question: str) -> str:
    """Remove every `<image>` and the whitespace around it; text on both sides stays on two lines."""
    return "\n".join(p.strip() for p in question.split(IMAGE_PLACEHOLDER) if p.strip())


def append_short_answer_suffix(question: str, suffix: str = SHORT_ANSWER_SUFFIX) -> str:
    """`question` + newline + `suffix`, unless the suffix is already there (LLaVA's layout)."""
    return append_instruction(question, suffix, sep="\n")


# ----------------------------------------------------------------------------- JSON manifests
def _caption_row(row: dict, use_recaption: bool) -> tuple[Any, str, str]:
    text = _text(row.get("re_caption")) if use_recaption else ""
    return row.get("image_path"), "", text or _text(row.get("caption"))


def read_caption_json(path: str | Path, root: str | Path | None = None, use_recaption: bool = True) -> Reader:
    """The released D-DiT caption JSON: a list of {"image_path", "caption", "re_caption", ...}.
    The response is `re_caption` when present, non-empty and `use_recaption`, else `caption`."""
    parse = functools.partial(_caption_row, use_recaption=use_recaption)
    return _manifest_reader("caption_json", path, root, parse)


def _jsonl_row(row: dict, image_key: str, text_key: str, prompt_key: str | None) -> tuple[Any, str, str]:
    return row.get(image_key), _text(row.get(prompt_key)) if prompt_key else "", _text(row.get(text_key))


def read_jsonl(path: str | Path, root: str | Path | None = None, image_key: str = "image",
               text_key: str = "caption", prompt_key: str | None = None) -> Reader:
    """One JSON object per line; `text_key` is the response, `prompt_key` (optional) the prompt."""
    parse = functools.partial(_jsonl_row, image_key=image_key, text_key=text_key, prompt_key=prompt_key)
    return _manifest_reader("jsonl", path, root, parse)


def _first_exchange(conversations: Any) -> tuple[str, str]:
    """The first human turn directly followed by a gpt turn, as (question, answer)."""
    turns = [t for t in conversations if isinstance(t, dict)] if isinstance(conversations, list) else []
    for ask, reply in zip(turns, turns[1:]):
        if ask.get("from") in ("human", "user") and reply.get("from") in ("gpt", "assistant"):
            return _text(ask.get("value")), _text(reply.get("value"))
    return "", ""


def _llava_row(row: dict, add_short_answer_suffix: bool, short_answer_suffix: str) -> tuple[Any, str, str]:
    question, answer = _first_exchange(row.get("conversations"))
    question = strip_image_placeholder(question)
    if add_short_answer_suffix:
        question = append_short_answer_suffix(question, short_answer_suffix)
    return row.get("image"), question, answer


def read_llava(path: str | Path, root: str | Path | None = None, add_short_answer_suffix: bool = False,
               short_answer_suffix: str = SHORT_ANSWER_SUFFIX) -> Reader:
    """LLaVA conversation JSON; the first human/gpt exchange becomes (prompt, response). The
    `<image>` placeholder is removed from the question; a short-answer suffix already in the
    question is kept, and `add_short_answer_suffix` appends it to every question that lacks it."""
    parse = functools.partial(_llava_row, add_short_answer_suffix=add_short_answer_suffix,
                              short_answer_suffix=short_answer_suffix)
    return _manifest_reader("llava", path, root, parse)


# ----------------------------------------------------------------------------- webdataset
def _braceexpand(pattern: str) -> list[str]:
    """`a{000..002}b` -> a000b a001b a002b (zero padding kept); `{x,y}` -> x y."""
    m = _BRACE.search(pattern)
    if m is None:
        return [pattern]
    head, body, tail = pattern[: m.start()], m.group(1), pattern[m.end():]
    if r := re.fullmatch(r"(\d+)\.\.(\d+)", body):
        options = [str(i).zfill(len(r.group(1))) for i in range(int(r.group(1)), int(r.group(2)) + 1)]
    else:
        options = body.split(",")
    return [out for option in options for out in _braceexpand(head + option + tail)]


def expand_shards(paths: str | Path | Sequence[str | Path]) -> list[str]:
    """Shard paths from a path, a brace pattern, a glob, or a list of these (globs sorted)."""
    specs = [paths] if isinstance(paths, (str, Path)) else list(paths)
    patterns = [p for spec in specs for p in _braceexpand(str(spec))]
    return [s for p in patterns for s in (sorted(glob.glob(p)) if _GLOB.search(p) else [p])]


def _tar_groups(shard: str, wanted: set[str]) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Stream a tar once; consecutive members sharing a key form one group {ext: bytes}."""
    key, files = None, {}
    with tarfile.open(shard, mode="r|*") as tar:
        for member in tar:
            m = _KEY_EXT.match(member.name)
            if not member.isfile() or m is None:
                continue
            if m.group(1) != key:
                if key is not None:
                    yield key, files
                key, files = m.group(1), {}
            ext = m.group(2).lower()
            if ext in wanted:  # only read what can be used; tarfile skips the rest
                files[ext] = tar.extractfile(member).read()
    if key is not None:
        yield key, files


def _wds_text(data: bytes, ext: str) -> str:
    text = data.decode("utf-8", errors="replace")
    if not ext.endswith("json"):
        return text.strip()
    try:
        record = json.loads(text)
    except ValueError:
        return ""
    return _text(record.get("caption") or record.get("text")) if isinstance(record, dict) else ""


def _iter_webdataset(stats: SkipCounter, shards: list[str], image_exts: tuple[str, ...],
                     text_exts: tuple[str, ...], decode: bool = True) -> Iterator[Sample]:
    for shard in shards:
        try:
            for key, files in _tar_groups(shard, set(image_exts) | set(text_exts)):
                stats.total += 1
                label = f"{shard}:{key}"
                image_ext = next((e for e in image_exts if e in files), None)
                text = next((t for t in (_wds_text(files[e], e) for e in text_exts if e in files) if t), "")
                if image_ext is None:
                    stats.skip("no_image", label)
                elif not text:
                    stats.skip("no_text", label)
                elif (image := _image(stats, files[image_ext], label, decode)) is not None:
                    yield Sample(image, "", text)
        except _TAR_ERRORS as e:  # missing, truncated or not a tar: keep what came before
            stats.skip("bad_shard", f"{shard}: {type(e).__name__}: {e}")


def read_webdataset(paths: str | list[str], image_exts: tuple[str, ...] = ("jpg", "jpeg", "png", "webp"),
                    text_exts: tuple[str, ...] = ("txt", "caption", "json")) -> Reader:
    """Webdataset tar shards, read with `tarfile` in streaming mode. The first present extension
    in `image_exts` / `text_exts` order is used; `.json` text is a dict with "caption" or "text"."""
    shards = expand_shards(paths)
    if not shards:
        raise FileNotFoundError(f"no tar shards match {paths!r}")
    rows = functools.partial(_iter_webdataset, shards=shards, image_exts=tuple(e.lower() for e in image_exts),
                             text_exts=tuple(e.lower() for e in text_exts))
    return Reader(f"webdataset({shards[0]}{' ...' if len(shards) > 1 else ''})", rows)


# ----------------------------------------------------------------------------- dispatch
def open_dataset(spec: str | Path, **kw: Any) -> Reader:
    """Pick the reader from `spec`: a folder of tar shards, a `.tar` path / glob / brace pattern,
    a `.jsonl`, or a `.json` (LLaVA if its records have "conversations", caption JSON if they
    have "image_path"; sniffed from the first MiB so the file is parsed only once)."""
    text = str(spec)
    if Path(text).is_dir():
        shards = sorted(str(p) for p in Path(text).iterdir() if p.name.endswith(_TAR_SUFFIXES))
        if not shards:
            raise FileNotFoundError(f"{text}: a dataset folder must hold .tar shards")
        return read_webdataset(shards, **kw)
    if text.endswith(_TAR_SUFFIXES):
        return read_webdataset(text, **kw)
    if text.endswith(".jsonl"):
        return read_jsonl(text, **kw)
    if text.endswith(".json"):
        with open(text, "rb") as f:
            m = _JSON_KIND.search(f.read(1 << 20))
        if m is None:
            raise ValueError(f"{text}: no 'conversations' (LLaVA) or 'image_path' (caption) records")
        return (read_llava if m.group(1) == b"conversations" else read_caption_json)(text, **kw)
    raise ValueError(f"unknown dataset format {text!r}: want .json, .jsonl, .tar or a folder of shards")
