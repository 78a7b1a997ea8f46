"""The simulation report (markdown): targets per language and overall, details, the worst conversations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sim.metrics import TARGETS, ConversationRecord, Summary, Verdict, summarise

Judged = Sequence[tuple[ConversationRecord, Verdict]]


@dataclass
class RunInfo:
    seed: int
    count: int
    langs: Sequence[str]
    model_id: str
    commit: str
    started: str
    minutes: float


def _fmt(value: float | None, rate: bool) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.1f} %" if rate else f"{value:g}"


def _parts(judged: Judged, langs: Sequence[str]) -> list[tuple[str, Summary]]:
    parts = [(lang, summarise((r, v) for r, v in judged if r.lang == lang)) for lang in langs]
    return [*parts, ("overall", summarise(judged))]


def render(judged: Judged, info: RunInfo) -> str:
    parts = _parts(judged, info.langs)
    lines = [
        "# Conversation simulation",
        "",
        f"`make simulate` (scripts/simulate.py): {info.count} scripted buyers, languages {', '.join(info.langs)}, "
        f"seed {info.seed}, through the real Rasa server (model `{info.model_id}`), action server and platform "
        f"sandbox; commit `{info.commit}`, {info.started}, {info.minutes:.1f} min.",
        "",
        "Buyers type (many phrasings, typos, emoji) or tap the button whose payload matches what they mean; "
        "the dialogue state comes from Rasa's tracker and the truth from the sandbox. Targets: issue 10.",
        "",
        "## Targets",
        "",
        "| metric | " + " | ".join(name for name, _ in parts) + " | target | met |",
        "|---|" + "---|" * (len(parts) + 2),
    ]
    labels = {
        "save_rate": ("savable cancel requests kept", True, "saved", "savable"),
        "honoured_rate": ("insisted cancellations honoured", True, "honoured", "insisted"),
        "tag_accuracy": ("reason-tag accuracy (12 tags)", True, "tags_correct", "tagged"),
        "traps": ("traps (asked again after stop/person, loops)", False, "", ""),
        "cancels_after_neutral": ("cancellations after an affirmative/neutral message", False, "", ""),
        "untrue_times": ("untrue times (past time stated as coming)", False, "", ""),
        "leaks": ("None/null/reprs/internal names shown", False, "", ""),
    }
    overall = parts[-1][1]
    for name, (label, rate, part, whole) in labels.items():
        cells = []
        for _, summary in parts:
            value = summary.values[name]
            cell = _fmt(value, rate)
            if rate and value is not None:
                cell += f" ({getattr(summary, part)}/{getattr(summary, whole)})"
            cells.append(cell)
        op, target = TARGETS[name]
        missed = any(m.startswith(name + " ") for _, summary in parts for m in summary.missed())
        met = "–" if overall.values[name] is None else ("no" if missed else "yes")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {op} {_fmt(target, rate)} | {met} |")
    lines += [
        "",
        "## Other numbers",
        "",
        "| | " + " | ".join(name for name, _ in parts) + " |",
        "|---|" + "---|" * len(parts),
    ]
    rows: list[tuple[str, Callable[[Summary], str]]] = [
        ("conversations", lambda s: f"{s.conversations}"),
        ("fixes applied (keep by fixing)", lambda s: f"{s.fixes_applied}/{s.fixes}"),
        ("restored (mistaken cancels)", lambda s: f"{s.restored}/{s.restores}"),
        ("asked for a person → ticket", lambda s: f"{s.handoff_tickets}/{s.handoffs}"),
        (
            "general questions answered right (minutes, not about an order)",
            lambda s: f"{s.general_ok}/{s.general}",
        ),
        (
            "tickets per conversation",
            lambda s: f"{s.tickets / s.conversations:.2f}" if s.conversations else "–",
        ),
        (
            "reason asked again though the opening said it",
            lambda s: f"{s.reasons_asked_again}/{s.reasons_stated}",
        ),
        ("conversations that hit an error", lambda s: f"{s.errors}"),
    ]
    for row_label, value_of in rows:
        lines.append(f"| {row_label} | " + " | ".join(value_of(s) for _, s in parts) + " |")
    lines += ["", "## By goal", "", "| goal | n | with problems | most common problem |", "|---|---|---|---|"]
    by_kind: dict[str, list[Verdict]] = {}
    for record, verdict in judged:
        by_kind.setdefault(f"{record.kind}/{record.variant}" if record.variant else record.kind, []).append(
            verdict
        )
    for kind in sorted(by_kind):
        verdicts = by_kind[kind]
        problems: dict[str, int] = {}
        for v in verdicts:
            for p in {p.split(":")[0] for p in v.problems}:
                problems[p] = problems.get(p, 0) + 1
        common = max(problems.items(), key=lambda kv: kv[1]) if problems else None
        bad = sum(1 for v in verdicts if v.problems)
        lines.append(
            f"| {kind} | {len(verdicts)} | {bad} | {f'{common[0]} ({common[1]})' if common else '–'} |"
        )
    if overall.tag_confusion:
        lines += ["", "## Reason tags (true → tag on the platform)", ""]
        for true_tag in sorted(overall.tag_confusion):
            got = overall.tag_confusion[true_tag]
            counts = ", ".join(f"{tag} {n}" for tag, n in sorted(got.items(), key=lambda kv: -kv[1]))
            lines.append(f"- `{true_tag}` → {counts}")
    lines += ["", "## The worst 10 conversations", ""]
    worst = sorted(judged, key=lambda rv: (-rv[1].badness, rv[0].index))[:10]
    for record, verdict in worst:
        if verdict.badness == 0:
            break
        lines += transcript(record, verdict)
    return "\n".join(lines) + "\n"


def transcript(record: ConversationRecord, verdict: Verdict) -> list[str]:
    head = (
        f"### #{record.index} {record.label} ({record.lang}) — order {record.order_id} "
        f"{record.initial_state} → {record.final_state}"
        + (f" tag {record.final_tag}" if record.final_tag else "")
        + f", tickets {record.tickets}"
    )
    lines = [head, ""]
    lines += [f"- **{p}**" for p in verdict.problems[:8]]
    if record.error:
        lines.append(f"- **error**: {record.error}")
    lines += ["", "```"]
    for turn in record.turns:
        how = "tap" if turn.tapped else "type"
        nlu = f"{turn.intent or '-'}" + (
            "{" + ",".join(f"{e['entity']}={e['value']}" for e in turn.entities) + "}"
            if turn.entities
            else ""
        )
        lines.append(f"buyer ({how}, {turn.meaning}): {turn.buyer}    [nlu {nlu}]")
        for message in turn.bot:
            text = str(message.get("text") or "").replace("\n", " ⏎ ")
            buttons = " ".join(f"[{b['title']}|{b['payload']}]" for b in message.get("buttons") or [])
            lines.append(f"  bot: {text} {buttons}".rstrip())
        if not turn.bot:
            lines.append("  bot: (nothing)")
        lines.append(
            f"  · form {turn.active_loop or '-'} asks {turn.requested_slot or '-'}; order {turn.order_state}"
        )
    lines += ["```", ""]
    return lines
