"""The shared machinery: the predictions store, --limit, seeded batches, settings, tables, file checks."""

import json

import pytest
import torch

from evaluation.harness import DataError, Item
from evaluation.harness.batches import batch_generator, fixed_batches
from evaluation.harness.files import field, read_json, read_jsonl
from evaluation.harness.items import check_images, check_unique, limit_items
from evaluation.harness.settings import save_settings
from evaluation.harness.store import PredictionStore
from evaluation.harness.tables import table


def test_store_appends_batches_and_reads_them_back(tmp_path):
    store = PredictionStore(tmp_path / "predictions.jsonl")
    assert store.load() == {}
    store.append({"1": "yes", "2": "no"})
    store.append({"3": "a dog"})
    assert store.load() == {"1": "yes", "2": "no", "3": "a dog"}


def test_store_drops_a_line_cut_short_by_a_kill(tmp_path):
    store = PredictionStore(tmp_path / "predictions.jsonl")
    store.append({"1": "yes"})
    with store.path.open("a") as f:
        f.write('{"key": "2", "predic')
    assert store.load() == {"1": "yes"}
    store.append({"2": "no"})
    assert store.load() == {"1": "yes", "2": "no"}


def test_store_names_a_foreign_line(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text('{"key": "1", "prediction": "yes"}\n{"something": "else"}\n')
    with pytest.raises(DataError, match=r"predictions.jsonl: line 2"):
        PredictionStore(path).load()


def test_limit_keeps_whole_groups():
    flat = [Item(key=str(i), prompt="q") for i in range(5)]
    assert [i.key for i in limit_items(flat, 3)] == ["0", "1", "2"]
    assert limit_items(flat, None) == flat
    grouped = [Item(key=f"{g}/{k}", prompt="q", group=g) for g in "abc" for k in range(2)]
    assert [i.key for i in limit_items(grouped, 2)] == ["a/0", "a/1", "b/0", "b/1"]


def test_batches_are_fixed_and_their_generators_seeded_by_seed_and_index():
    items = [Item(key=str(i), prompt="q") for i in range(5)]
    assert [(i, [x.key for x in b]) for i, b in fixed_batches(items, 2)] == [
        (0, ["0", "1"]), (1, ["2", "3"]), (2, ["4"])]
    draw = [torch.rand(3, generator=batch_generator(seed, index)) for seed, index in ((0, 0), (0, 1), (1, 0))]
    assert torch.equal(draw[0], torch.rand(3, generator=batch_generator(0, 0)))
    assert not torch.equal(draw[0], draw[1]) and not torch.equal(draw[0], draw[2])


def test_settings_refuse_to_mix_predictions_of_other_settings(tmp_path):
    settings = {"benchmark": "pope", "seed": 0, "limit": 5, "device": "cpu"}
    save_settings(tmp_path, settings, resuming=False)
    save_settings(tmp_path, {**settings, "limit": None, "device": "cuda"}, resuming=True)  # these may change
    with pytest.raises(DataError, match=r"settings.json: .*other settings \(seed differ"):
        save_settings(tmp_path, {**settings, "seed": 1}, resuming=True)
    save_settings(tmp_path, {**settings, "seed": 1}, resuming=False)  # nothing stored yet: a fresh start
    assert json.loads((tmp_path / "settings.json").read_text())["seed"] == 1


def test_file_errors_name_the_file_and_the_item(tmp_path):
    with pytest.raises(DataError, match=r"missing.json: file not found"):
        read_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"questions": [')
    with pytest.raises(DataError, match=r"bad.json: not valid JSON \(line 1"):
        read_json(tmp_path / "bad.json")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{oops\n')
    with pytest.raises(DataError, match=r"bad.jsonl: line 2 is not valid JSON"):
        read_jsonl(tmp_path / "bad.jsonl")
    with pytest.raises(DataError, match=r"q.json: question 7: field 'image_id' should be int, got \"7\""):
        field({"image_id": "7"}, "image_id", int, "q.json: question 7")
    with pytest.raises(DataError, match=r"2 ids occur more than once \(1, 2\)"):
        check_unique([Item(key=k, prompt="q") for k in "1122"], "q.json")
    with pytest.raises(DataError, match=r"q.json: question 3: image not found: .*nothing.jpg"):
        check_images([Item(key="3", prompt="q", image=tmp_path / "nothing.jpg", source="q.json: question 3")])


def test_table_aligns_columns():
    assert table(["", "acc"], [["overall", "60.00"], ["yes/no", "100.00"]]).splitlines() == [
        "            acc", "-------  ------", "overall   60.00", "yes/no   100.00"]
