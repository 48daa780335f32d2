"""The benchmark metrics, each against values computed by hand."""

import shutil

import pytest

from evaluation.metrics.answers import normalise_answer
from evaluation.metrics.captions import caption_scores, simple_tokens
from evaluation.metrics.mme import category_scores, totals
from evaluation.metrics.vqa import exact_match, summarise, vqa_accuracy
from evaluation.metrics.yes_no import mme_answer, pope_answer, pope_metrics


@pytest.mark.parametrize("raw, normal", [
    ("Two.", "2"), ("a dog", "dog"), ("yes!", "yes"), ("The Three cats", "3 cats"), ("none", "0"),
    ("dont", "don't"), ("couldnt've", "couldn't've"), ("3.5", "3.5"), ("1,000", "1000"),
    ("black-and-white", "black and white"), ("Yes, it is.", "yes it is"), ("  red\n", "red"),
])
def test_answer_normalisation(raw, normal):
    assert normalise_answer(raw) == normal


def test_vqa_accuracy_is_the_mean_over_leave_one_out_subsets():
    two_of_ten = ["dog"] * 2 + ["cat"] * 8
    # 8 subsets keep both "dog"s (2/3), 2 subsets keep one (1/3): (8 * 2/3 + 2 * 1/3) / 10
    assert vqa_accuracy("dog", two_of_ten) == pytest.approx(0.6)
    # three matching: 7 subsets keep all three (1), 3 keep two (2/3)
    assert vqa_accuracy("dog", ["dog"] * 3 + ["cat"] * 7) == pytest.approx(0.9)
    assert vqa_accuracy("dog", ["dog"] * 4 + ["cat"] * 6) == pytest.approx(1.0)
    assert vqa_accuracy("dog", ["cat"] * 10) == 0.0
    assert vqa_accuracy("Two.", ["2"] * 2 + ["3"] * 8) == pytest.approx(0.6)
    assert vqa_accuracy("A dog.", ["dog"] * 10) == pytest.approx(1.0)


def test_human_answers_get_their_punctuation_processed_only_when_they_disagree():
    # the official rule: unanimous human answers are compared as stored (they are stored normalised)
    assert vqa_accuracy("yes", ["yes."] * 10) == 0.0
    assert vqa_accuracy("yes", ["yes."] * 9 + ["no"]) == pytest.approx(1.0)


def test_exact_match_and_summary():
    assert exact_match("Two", "2") == 1.0 and exact_match("the table", "table") == 1.0
    assert exact_match("chair", "table") == 0.0
    summary = summarise([1.0, 0.0, 0.5, 1.0], ["a", "a", "b", None])
    assert summary["overall"] == pytest.approx(62.5) and summary["n"] == 4
    assert summary["per_type"] == {"a": {"accuracy": 50.0, "n": 2}, "b": {"accuracy": 50.0, "n": 1}}


@pytest.mark.parametrize("text, reading", [
    ("Yes, there is.", "yes"), ("no", "no"), ("No.", "no"), ("  YES", "yes"), ("There is no dog.", "other"),
    ("nope", "other"), ("not sure", "other"), ("", "other"),
])
def test_pope_reads_the_leading_yes_or_no(text, reading):
    assert pope_answer(text) == reading


def test_pope_metrics_on_a_hand_made_confusion():
    # TP 3, FN 2, FP 1, TN 4 (one TN and one FN answered neither yes nor no)
    labels = ["yes"] * 5 + ["no"] * 5
    answers = ["yes", "yes", "yes", "no", "other", "yes", "no", "no", "no", "other"]
    m = pope_metrics(labels, answers)
    assert (m["tp"], m["fn"], m["fp"], m["tn"], m["other"], m["n"]) == (3, 2, 1, 4, 2, 10)
    assert m["accuracy"] == pytest.approx(70.0)
    assert m["precision"] == pytest.approx(75.0)
    assert m["recall"] == pytest.approx(60.0)
    assert m["f1"] == pytest.approx(100 * 2 * 0.75 * 0.6 / 1.35)
    assert m["yes_ratio"] == pytest.approx(40.0)


@pytest.mark.parametrize("text, reading", [
    ("Yes", "yes"), ("no.", "no"), ("No, it is not", "no"), ("yes, a dog", "yes"), ("maybe", "other"),
])
def test_mme_reads_answers_like_its_eval_tool(text, reading):
    assert mme_answer(text) == reading


def test_mme_acc_and_acc_plus_on_a_tiny_category():
    rows = [("1.jpg", "Yes", "yes"), ("1.jpg", "No", "no"),  # both right
            ("2.jpg", "Yes", "yes"), ("2.jpg", "No", "yes"),  # one right
            ("3.jpg", "Yes", "no"), ("3.jpg", "No", "maybe")]  # none right
    m = category_scores(rows)
    assert m["acc"] == pytest.approx(100 * 3 / 6) and m["acc_plus"] == pytest.approx(100 / 3)
    assert m["score"] == pytest.approx(50 + 100 / 3) and (m["questions"], m["images"]) == (6, 3)


def test_mme_totals_need_every_category_of_a_group():
    cognition = {c: {"score": 100.0} for c in ("commonsense_reasoning", "numerical_calculation",
                                                 "text_translation", "code_reasoning")}
    t = totals({**cognition, "existence": {"score": 150.0}})
    assert t["cognition"] == 400.0 and t["cognition_missing"] == []
    assert t["perception"] is None and len(t["perception_missing"]) == 9


REFERENCES = {"1": ["a dog sits on a wooden bench", "a brown dog on a bench"],
              "2": ["two cats sleep on a red sofa", "cats sleeping on a couch"]}


def test_caption_tokens_are_simple():
    assert simple_tokens("A dog's toy, on the Bench.") == "a dogs toy on the bench"


def test_caption_scores_sanity():
    exact = caption_scores(REFERENCES, {"1": "A dog sits on a wooden bench.", "2": "two cats sleep on a red sofa"},
                           java=False)
    wrong = caption_scores(REFERENCES, {"1": "a plane in the sky", "2": "a man rides a horse"}, java=False)
    assert exact["BLEU-4"] == pytest.approx(1.0) and exact["BLEU-1"] == pytest.approx(1.0)
    assert exact["CIDEr"] > wrong["CIDEr"] and exact["BLEU-4"] > wrong["BLEU-4"]
    assert wrong["CIDEr"] == pytest.approx(0.0)
    assert exact["METEOR"] == "not run (--no-java-metrics)"


def test_java_metrics_say_why_they_did_not_run(monkeypatch):
    monkeypatch.setattr("evaluation.metrics.captions.shutil.which", lambda name: None)
    scores = caption_scores(REFERENCES, {"1": "a dog", "2": "a cat"})
    assert scores["METEOR"] == "not run (needs Java)" and scores["SPICE"] == "not run (needs Java)"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs Java")
def test_meteor_runs_when_java_is_there():
    scores = caption_scores(REFERENCES, {"1": "a dog sits on a wooden bench", "2": "a plane"})
    assert isinstance(scores["METEOR"], float) and 0.0 < scores["METEOR"] < 1.0
    assert isinstance(scores["SPICE"], (float, str))
