"""Caption scores with pycocoevalcap's scorers on simply tokenised text (PTBTokenizer needs Java; this does not).

CIDEr and BLEU always run; METEOR and SPICE are Java programs and run only when ``java`` is on PATH (SPICE also
needs the Stanford CoreNLP jars that pycocoevalcap downloads on first use); otherwise they are reported as
"not run (...)". Scores are on pycocoevalcap's scale (BLEU in [0, 1], CIDEr in [0, 10]).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

_APOSTROPHE = re.compile(r"['\u2019]")
_PUNCTUATION = re.compile(r"[^\w\s]|_")


def simple_tokens(text: str) -> str:
    """Lower case, apostrophes deleted ("dog's" -> "dogs"), other punctuation as spaces, single spaces."""
    text = _APOSTROPHE.sub("", text.lower())
    return " ".join(_PUNCTUATION.sub(" ", text).split())


def caption_scores(references: dict[str, list[str]], candidates: dict[str, str], java: bool = True) -> dict:
    """BLEU-1..4 and CIDEr of ``candidates`` (one per id) against ``references``; METEOR and SPICE when
    ``java`` is True and Java is on PATH (a string saying why not otherwise)."""
    gts = {k: [simple_tokens(r) for r in refs] for k, refs in references.items()}
    res = {k: [simple_tokens(candidates[k])] for k in references}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    scores: dict = {f"BLEU-{n}": float(b) for n, b in enumerate(bleu, start=1)}
    scores["CIDEr"] = float(cider)
    if not java:
        scores.update(METEOR="not run (--no-java-metrics)", SPICE="not run (--no-java-metrics)")
    elif shutil.which("java") is None:
        scores.update(METEOR="not run (needs Java)", SPICE="not run (needs Java)")
    else:
        scores.update(METEOR=_meteor(gts, res), SPICE=_spice(gts, res))
    return scores


def _meteor(gts: dict, res: dict) -> float | str:
    from pycocoevalcap.meteor.meteor import Meteor

    try:
        meteor = Meteor()
    except OSError as err:
        return f"not run ({err})"
    try:
        return float(meteor.compute_score(gts, res)[0])
    except (OSError, ValueError) as err:
        return f"failed ({type(err).__name__}: {err})"
    finally:  # stop Java now; release the lock a failure leaves held, or the scorer's __del__ would hang
        meteor.meteor_p.kill()
        if meteor.lock.locked():
            meteor.lock.release()


def _spice(gts: dict, res: dict) -> float | str:
    from pycocoevalcap.spice import get_stanford_models
    from pycocoevalcap.spice.spice import Spice

    jar = Path(get_stanford_models.SPICEDIR) / get_stanford_models.SPICELIB / f"{get_stanford_models.JAR}.jar"
    if not jar.exists():
        return (f"not run (needs {jar.name} in {jar.parent}; with internet: "
                "python -m pycocoevalcap.spice.get_stanford_models)")
    try:
        return float(Spice().compute_score(gts, res)[0])
    except Exception as err:  # a Java program: any failure is reported, never fatal to the other scores
        return f"failed ({type(err).__name__}: {err})"
