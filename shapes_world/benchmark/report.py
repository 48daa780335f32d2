"""Printed tables of benchmark results, shaped like the paper's."""

from __future__ import annotations

import argparse

from ddit.image_sampling import solver_name

from .items import POPE_SETTINGS
from .tasks import text_settings


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """Plain-text table, columns right-aligned, a rule under the header."""
    cells = [header] + rows
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths)] + lines[1:])


def _scored_table(scores: dict[str, dict], extra: dict[str, float | None]) -> str:
    """One column per group ({"accuracy", "n"}) and per extra accuracy; rows accuracy % and n."""
    accuracy = [_pct(s["accuracy"]) for s in scores.values()] + [_pct(v) for v in extra.values()]
    count = [str(s["n"]) for s in scores.values()] + [""] * len(extra)
    return table([""] + list(scores) + list(extra), [["accuracy (%)"] + accuracy, ["n"] + count])


def report(results: dict) -> str:
    """The printed tables (a title line above each) for whatever `results` holds."""
    out = []
    if "t2i" in results:
        r = results["t2i"]
        out.append(("T2I prompt following (GenEval categories)", _scored_table(
            r["categories"], {"overall": r["overall"], "geneval_mean": r["geneval_mean"]})))
        if "by_objects" in r:
            out.append(("T2I, every asked attribute right, by objects in the prompt",
                        _scored_table(r["by_objects"], {})))
        if "attributes" in r:
            out.append(("T2I, one attribute at a time (the asked number of objects, each with that attribute right)",
                        _scored_table(r["attributes"], {})))
    if "caption" in results:
        r = results["caption"]
        out.append(("Captioning", table(["exact (%)", "CIDEr"], [[_pct(r["exact"]), f"{r['cider']:.3f}"]])))
    if "vqa" in results:
        r = results["vqa"]
        out.append(("VQA accuracy by question type", _scored_table(r["per_type"], {"overall": r["overall"]})))
    if "yesno" in results:
        r = results["yesno"]
        out.append((f"Yes/no, POPE-style balanced probes (n={r['n']} per setting, %)", table(
            ["setting", "accuracy", "precision", "recall", "F1", "yes ratio"],
            [[s] + [_pct(r[s][k]) for k in ("accuracy", "precision", "recall", "f1", "yes_ratio")]
             for s in POPE_SETTINGS])))
    if "speed" in results:
        s = results["speed"]["seconds_per_item"]
        out.append((f"Seconds per item (batch 1, model defaults, median of {results['speed']['items']})",
                    table(list(s), [[f"{v:.3f}" for v in s.values()]])))
    if "sweep" in results:
        rows, fewest = results["sweep"]["rows"], results["sweep"]["fewest_steps"]
        steps = sorted({r["steps"] for r in rows})
        acc = {(r["task"], r["sampler"], r["steps"]): r["accuracy"] for r in rows}
        body = [[f"{t} {s}"] + [_pct(acc.get((t, s, k))) for k in steps] + [str(fewest[t][s])]
                for t, s in sorted({(r["task"], r["sampler"]) for r in rows})]
        out.append(("Accuracy (%) against text steps (caption: exact, vqa: overall)",
                    table(["task sampler"] + [str(k) for k in steps] + ["fewest losing < 1 pt"], body)))
    if "threshold_sweep" in results:
        body = [[r["task"], "-" if r["threshold"] is None else f"{r['threshold']:g}",
                 "yes" if r["eos_early_stop"] else "no", str(r["steps"]), _pct(r["accuracy"]),
                 "-" if r["forward_passes"] is None else f"{r['forward_passes']:.2f}"]
                for r in results["threshold_sweep"]["rows"]]
        out.append(("Confidence sampler: accuracy (%) and forward passes per item against the threshold "
                    "(caption: exact, vqa: overall; steps: the most)",
                    table(["task", "threshold", "early stop", "steps", "accuracy", "passes"], body)))
    out.extend(dual_tables(results, table))
    if "t2i_sweep" in results:
        sweep = results["t2i_sweep"]
        title = (f"T2I against transformer passes per image (first row: the reference; fewest within "
                 f"{100 * sweep['tolerance']:g} pt of it: {sweep['fewest_passes']} passes)")
        out.append((title, _t2i_curve(sweep, table)))
    return "\n\n".join(f"{title}\n{body}" for title, body in out)


def _passes(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def dual_tables(results: dict, render) -> list[tuple[str, str]]:
    """(title, table) of the in-fill, scoring, in-painting and revisable-text results, through ``render``."""
    out = []
    if "infill" in results:
        r = results["infill"]
        out.append((f"In-fill, 1-3 attribute words of the true caption blanked (n={r['n']})", render(
            ["in-fill exact %", "plain caption exact %", "rows that changed a given word"],
            [[_pct(r["exact"]), _pct(r["plain_caption_exact"]), str(r["changed_given"])]])))
    if "score" in results:
        r = results["score"]
        out.append((f"Scoring, the true one among {r['candidates']} (n={r['n']}), top-1 %", render(
            ["passes per candidate", "texts for an image", "images for a caption"],
            [[str(row["passes"]), _pct(row["texts_top1"]), _pct(row["images_top1"])] for row in r["rows"]])))
    if "inpaint" in results:
        r = results["inpaint"]
        out.append((f"In-painting one object's cell to a changed colour or shape (n={r['n']})", render(
            ["success %", "kept-region error /255 (returned)", "kept-region error /255 (decoded)"],
            [[_pct(r["success"]), f"{r['kept_error_pasted']:.2f}", f"{r['kept_error_decoded']:.2f}"]])))
    if "revise" in results:
        r = results["revise"]
        body = [[row["task"], str(row["steps"]), row["sampler"], _pct(row["accuracy"]), _passes(row["forward_passes"])]
                for row in r["rows"]]
        out.append((f"Revisable text (remask) beside the confidence sampler (n={r['n']}, perturb {r['perturb']}; "
                    "caption: exact, vqa: overall)", render(["task", "steps", "sampler", "accuracy %", "passes"],
                                                            body)))
    return out


def _t2i_curve(sweep: dict, render) -> str:
    """The passes-vs-accuracy rows of ``--t2i-sweep`` through ``render`` (``table`` or ``_md``)."""
    def guided(interval) -> str:
        return "all" if interval is None or tuple(interval) == (0.0, 1.0) else "{:g}-{:g}".format(*interval)

    body = [[r["solver"], str(r["steps"]), f"{r['shift']:g}", f"{r['guidance_scale']:g}",
             guided(r["guidance_interval"]), str(r["passes"]), _pct(r["overall"]), _pct(r["geneval_mean"]), "default" if r["default"] else ""]
            for r in sweep["rows"]]
    return render(["solver", "steps", "shift", "guidance", "guided sigmas", "passes", "overall", "geneval_mean", ""],
                  body)


def settings_line(pipe, args: argparse.Namespace) -> str:
    """The settings printed above the tables."""
    d = pipe.defaults
    caption_steps, caption_sampler = text_settings(pipe, "caption", args.caption_steps, args.caption_sampler)
    answer_steps, answer_sampler = text_settings(pipe, "answer", args.answer_steps, args.answer_sampler)
    return (f"model {args.model} | device {pipe.device} | n {args.n} | batch {args.batch} | "
            f"perturb {args.perturb} | seed {args.seed}\n"
            f"t2i: {solver_name(pipe.scheduler) or type(pipe.scheduler).__name__}, steps {d.generate.num_inference_steps}, "
            f"guidance {d.generate.guidance_scale}, guided sigmas {d.generate.guidance_interval or 'all'} | "
            f"caption: sampler {caption_sampler}, steps {caption_steps} | "
            f"vqa: sampler {answer_sampler}, steps {answer_steps}")


def _md(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header)] + rows
    return "\n".join("| " + " | ".join(row) + " |" for row in lines)


def _md_scored(title: str, groups: dict[str, dict], names: list[str] | None = None) -> str:
    """Markdown of scored groups ({"accuracy", "n"} each): one column per group, rows accuracy % and n."""
    return _md([title] + (names or list(groups)), [["accuracy"] + [_pct(g["accuracy"]) for g in groups.values()],
                                                   ["n"] + [str(g["n"]) for g in groups.values()]])


def markdown(results: dict) -> str:
    """The accuracy tables as Markdown, the form the model card quotes (``--markdown``)."""
    out = []
    if "t2i" in results:
        r = results["t2i"]
        cells = [_pct(c["accuracy"]) for c in r["categories"].values()]
        out.append(_md(["T2I (GenEval categories), %"] + list(r["categories"]) + ["**overall**", "mean"],
                       [["accuracy"] + cells + [f"**{_pct(r['overall'])}**", _pct(r["geneval_mean"])]]))
        if "by_objects" in r:
            out.append(_md_scored("T2I, every asked attribute right, %", r["by_objects"],
                                  [f"{k} object{'s' * (k != '1')}" for k in r["by_objects"]]))
        if "attributes" in r:
            out.append(_md_scored("T2I, one attribute at a time, %", r["attributes"]))
    if "caption" in results:
        r = results["caption"]
        out.append(_md(["Captioning", "exact scene %", "CIDEr"],
                       [["accuracy", f"**{_pct(r['exact'])}**", f"{r['cider']:.2f}"]]))
    if "vqa" in results:
        r = results["vqa"]
        cells = [_pct(c["accuracy"]) for c in r["per_type"].values()]
        out.append(_md(["VQA, %"] + list(r["per_type"]) + ["**overall**"],
                       [["accuracy"] + cells + [f"**{_pct(r['overall'])}**"]]))
    if "yesno" in results:
        r = results["yesno"]
        keys = ("accuracy", "precision", "recall", "f1", "yes_ratio")
        out.append(_md(["Yes/no (POPE-style), %", "accuracy", "precision", "recall", "F1", "yes ratio"],
                       [[s] + [_pct(r[s][k]) for k in keys] for s in POPE_SETTINGS]))
    out.extend(f"**{title}**\n\n{body}" for title, body in dual_tables(results, _md))
    if "t2i_sweep" in results:
        out.append(_t2i_curve(results["t2i_sweep"], _md))
    return "\n\n".join(out)
