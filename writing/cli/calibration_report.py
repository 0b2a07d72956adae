"""The report of a calibration run: calibration.md (tables, the recommendation, the wrong hits),
calibration.png (the rates against the threshold) and calibration.json (every row), written by
``calibrate.py`` (``writing.cli.calibrate``); paths in it are shown without the machine's own folders.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from writing.core.calibration_measures import KindRow, Record, Row, breakdown_by_kind, fmt_rate, top_wrong, wrong_hits
from writing.core.calibration_recommendation import TABLE_STEP, Recommendation, TierReport


def _short(text: str, n: int = 40) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= n else text[: n - 1] + "…"


def table_rows(rows: Sequence[Row], rec: Recommendation) -> list[Row]:
    shown = [r for i, r in enumerate(sorted(rows, key=lambda r: r.threshold)) if i % TABLE_STEP == 0]
    if rec.row is not None and rec.row not in shown:
        shown.append(rec.row)
    return sorted(shown, key=lambda r: r.threshold)


def markdown_table(rows: Sequence[Row], rec: Recommendation) -> str:
    lines = [
        "| threshold | hits | hit rate | precision | wrong-hit rate | miss rate | recall |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table_rows(rows, rec):
        t = f"{r.threshold:.2f}"
        if rec.threshold is not None and r.threshold == rec.threshold:
            t = f"**{t}** ←"
        lines.append(
            f"| {t} | {r.hits}/{r.prompts} | {r.hit_rate:.3f} | {fmt_rate(r.precision)} | "
            f"{r.wrong_hit_rate:.3f} | {r.miss_rate:.3f} | {fmt_rate(r.recall)} |"
        )
    return "\n".join(lines)


def markdown_kinds(kinds: Sequence[KindRow]) -> str:
    lines = [
        "| kind | prompts | answerable | hits | correct | wrong | hit rate | precision | recall |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k in kinds:
        lines.append(
            f"| {k.kind} | {k.prompts} | {k.answerable} | {k.hits} | {k.correct_hits} | {k.wrong_hits} | "
            f"{k.hit_rate:.3f} | {fmt_rate(k.precision)} | {fmt_rate(k.recall)} |"
        )
    return "\n".join(lines)


def markdown_records(records: Sequence[Record]) -> str:
    lines = ["| similarity | kind | expected | top-1 | prompt |", "|---:|---|---|---|---|"]
    for r in records:
        lines.append(
            f"| {r.similarity:.4f} | {r.kind or ''} | {r.expected_biz_id or 'null'} | "
            f"{r.top1_biz_id or '(none)'} | {_short(r.prompt)} |"
        )
    return "\n".join(lines)


@dataclass
class RunInfo:
    pairs_file: str
    embedding_model: str
    store: str
    collection: str
    corpus_size: int | None
    seconds: float


def render_markdown(records: Sequence[Record], rows: Sequence[Row], rec: Recommendation, info: RunInfo) -> str:
    parts = [
        "# Similarity threshold calibration",
        "",
        f"- pairs: `{info.pairs_file}` ({len(records)} prompts, "
        f"{sum(r.expected_biz_id is not None for r in records)} with an expected passage)",
        f"- embedding model: `{info.embedding_model}`",
        f"- store: {info.store}, collection `{info.collection}`"
        + (f" ({info.corpus_size} passages)" if info.corpus_size is not None else ""),
        f"- target precision: {rec.target_precision:.3f}",
        "",
        "A hit is a top-1 similarity >= threshold (as in the service). Precision = correct hits / hits "
        "(a hit on a prompt labelled null is wrong; n/a when there are no hits, and such a threshold is "
        "never recommended); wrong-hit rate = wrong hits / prompts; miss rate = 1 - hit rate; "
        "recall = correct hits / prompts with an expected passage. Every 0.05 is shown plus the "
        "recommended row; calibration.json has every 0.01.",
        "",
        markdown_table(rows, rec),
        "",
        f"**{rec.message}.**",
    ]
    unsearched = [r for r in records if r.note]
    if unsearched:
        parts += [
            "",
            f"{len(unsearched)} prompt(s) were not searched by the service and count as misses at every "
            "threshold: " + "; ".join(sorted({r.note for r in unsearched if r.note})) + ".",
        ]
    if rec.threshold is not None:
        kinds = breakdown_by_kind(records, rec.threshold)
        if kinds:
            parts += ["", f"## By kind at threshold {rec.threshold:.2f}", "", markdown_kinds(kinds)]
        wrong = wrong_hits(records, rec.threshold)
        parts += ["", f"## Wrong hits at threshold {rec.threshold:.2f}", ""]
        parts.append(markdown_records(wrong) if wrong else "None.")
    worst = top_wrong(records)
    if worst:
        parts += [
            "",
            "## Highest-scoring wrong top-1 matches",
            "",
            "Any threshold at or below these similarities serves the wrong passage (or a passage where "
            "the LLM should answer) for these prompts.",
            "",
            markdown_records(worst),
        ]
    return "\n".join(parts) + "\n"


def plot(rows: Sequence[Row], rec: Recommendation, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = [r.threshold for r in rows]
    nan = float("nan")
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    ax.plot(ts, [nan if r.precision is None else r.precision for r in rows], label="precision", lw=2)
    ax.plot(ts, [r.hit_rate for r in rows], label="hit rate", lw=2)
    ax.plot(ts, [r.wrong_hit_rate for r in rows], label="wrong-hit rate", lw=1, ls=":")
    ax.plot(ts, [nan if r.recall is None else r.recall for r in rows], label="recall (answerable)", lw=1, ls="-.")
    ax.axhline(rec.target_precision, color="grey", ls="--", lw=1, label=f"target {rec.target_precision:.2f}")
    if rec.threshold is not None:
        ax.axvline(rec.threshold, color="red", lw=1.5, label=f"recommended {rec.threshold:.2f}")
        title = f"recommended threshold {rec.threshold:.2f}"
    else:
        title = f"no threshold reaches precision {rec.target_precision:.2f}"
    ax.set_xlim(min(ts), max(ts))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("similarity threshold")
    ax.set_ylabel("rate")
    ax.set_title(f"Threshold calibration: {title}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_outputs(
    out: Path,
    records: Sequence[Record],
    rows: Sequence[Row],
    rec: Recommendation,
    info: RunInfo,
    tiers: Sequence[TierReport] = (),
) -> str:
    out.mkdir(parents=True, exist_ok=True)
    md = render_markdown(records, rows, rec, info)
    for tier in tiers:
        md += "\n" + tier.markdown() + "\n"
    (out / "calibration.md").write_text(md, encoding="utf-8")
    if tiers:
        plot_tiers(tiers, out / "calibration.png")
    else:
        plot(rows, rec, out / "calibration.png")
    doc = {
        "run": asdict(info),
        "target_precision": rec.target_precision,
        "recommendation": {
            "threshold": rec.threshold,
            "holds_above": rec.holds_above,
            "precision_lower_95": rec.precision_lower_95,
            "message": rec.message,
            "row": asdict(rec.row) if rec.row else None,
        },
        "by_kind": (
            [asdict(k) for k in breakdown_by_kind(records, rec.threshold)] if rec.threshold is not None else []
        ),
        "rows": [asdict(r) for r in rows],
        "records": [asdict(r) for r in records],
        "second_check": {t.name: t.as_json() for t in tiers},
    }
    (out / "calibration.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return md


def shown_path(path: str | Path) -> str:
    """A path as the report shows it: relative to the working directory (the project, as run from the
    README) when it lies below it; a model inside an installed package as ``<package>/...``; another
    absolute path as its file name; anything else (a hub id, a relative path) as given.
    Reports are committed, so they must not carry the absolute paths of the machine that made them."""
    p = Path(path)
    if not p.is_absolute():
        return str(path)
    parts = p.parts
    if "site-packages" in parts:
        return str(Path(*parts[parts.index("site-packages") + 1 :]))
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return p.name


def plot_tiers(tiers: Sequence[TierReport], path: Path) -> None:
    """Precision and hit rate against the threshold, the second check off (dashed) and on (solid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nan = float("nan")
    fig, axes = plt.subplots(1, len(tiers), figsize=(7 * len(tiers), 5), dpi=110, squeeze=False)
    for ax, tier in zip(axes[0], tiers, strict=True):
        for rows, style, label in ((tier.rows_off, "--", "check off"), (tier.rows_on, "-", "check on")):
            ts = [r.threshold for r in rows]
            ax.plot(
                ts,
                [nan if r.precision is None else r.precision for r in rows],
                ls=style,
                color="C0",
                label=f"precision, {label}",
            )
            ax.plot(ts, [r.hit_rate for r in rows], ls=style, color="C1", label=f"hit rate, {label}")
        ax.axhline(tier.rec_on.target_precision, color="grey", ls=":", lw=1, label="target precision")
        for rec, style in ((tier.rec_off, "--"), (tier.rec_on, "-")):
            if rec.threshold is not None:
                ax.axvline(rec.threshold, color="red", ls=style, lw=1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(f"{tier.setting}")
        ax.set_title(f"{tier.name}: recommended {_thr(tier.rec_off)} (off) / {_thr(tier.rec_on)} (on)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _thr(rec: Recommendation) -> str:
    return "none" if rec.threshold is None else f"{rec.threshold:.2f}"
