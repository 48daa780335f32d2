"""The VQA evaluation's answer normalisation, written from its documented behaviour:

1. newlines and tabs become spaces, the ends are stripped;
2. punctuation: each of ``PUNCTUATION`` is deleted where it touches a space (or anywhere, when the text has a
   digit-comma-digit group), else replaced by a space; then every period not followed by a digit is deleted
   ("3.5" keeps its point, "dog." loses it);
3. lower case; number words zero..ten (and "none") become digits; the articles a, an, the are dropped;
   contractions written without their apostrophe get it back ("dont" -> "don't").

So "Two." == "2", "a dog" == "dog", "yes!" == "yes".
"""

from __future__ import annotations

import re

PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",",
               "?", "!")
NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = frozenset({"a", "an", "the"})

# Contractions as they should read; each is recognised without one of its apostrophes (without the only one,
# for a single-apostrophe word): "dont", "couldnt've", "couldn'tve".
_CONTRACTED = """
ain't aren't can't could've couldn't couldn't've didn't doesn't don't hadn't hadn't've hasn't haven't he'd
he'd've he's how'd how'll how's isn't it'd it'd've it'll ma'am mightn't mightn't've might've mustn't must've
needn't not've o'clock oughtn't 'ow's'at shan't she'd've should've shouldn't shouldn't've somebody'd've
somebody'll somebody's someone'd someone'd've someone'll someone's something'd something'd've something'll
that's there'd there'd've there're there's they'd they'd've they'll they're they've 'twas wasn't we'd've we've
weren't what'll what're what's what've when's where'd where's where've who'd who'd've who'll who's who've why'll
why're why's won't would've wouldn't wouldn't've y'all y'all'll y'all'd've you'd you'd've you'll you're you've
""".split()


def _without_one_apostrophe(word: str) -> list[str]:
    spots = [i for i, c in enumerate(word) if c == "'"]
    return [word[:i] + word[i + 1:] for i in spots]


CONTRACTIONS = {variant: word for word in _CONTRACTED for variant in _without_one_apostrophe(word)}
CONTRACTIONS["somebody'd"] = "somebodyd"  # the official table has this one backwards; kept for identical scores

_DIGIT_COMMA_DIGIT = re.compile(r"\d,\d")
_LONE_PERIOD = re.compile(r"\.(?!\d)")


def strip_punctuation(text: str) -> str:
    """Step 2 of the module docstring (periods included)."""
    anywhere = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for mark in PUNCTUATION:
        touches_space = mark + " " in text or " " + mark in text
        out = out.replace(mark, "" if touches_space or anywhere else " ")
    return _LONE_PERIOD.sub("", out)


def canonical_words(text: str) -> str:
    """Step 3 of the module docstring: lower case, digits for number words, no articles, contractions."""
    words = [NUMBER_WORDS.get(word, word) for word in text.lower().split()]
    return " ".join(CONTRACTIONS.get(word, word) for word in words if word not in ARTICLES)


def normalise_answer(text: str) -> str:
    """A free-form answer in the form the VQA evaluation compares (all three steps)."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return canonical_words(strip_punctuation(text))
