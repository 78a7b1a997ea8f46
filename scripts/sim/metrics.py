"""Judging simulated conversations: pure functions over transcripts and platform truth (no Rasa needed).

- save rate: savable cancel requests that end with the order kept (not cancelled on the platform);
- insisted cancellations honoured: the order is cancelled on the platform;
- reason-tag accuracy: the platform's cancel tag equals the buyer's true reason (over honoured insisted cancels);
- traps: after "stop"/"a person" the bot asks a form question again, or one question is asked 3 times;
- cancellations after an affirmative or neutral message;
- untrue statements: a clock time stated as a future promise that is already past on the sandbox clock, and
  Python/JSON reprs or internal names shown to the buyer;
- tickets (platform escalations) per conversation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sim.goals import CANCEL_MEANINGS

# --- records --------------------------------------------------------------------------------------------------


@dataclass
class TurnRecord:
    buyer: str
    meaning: str
    tapped: bool
    bot: list[dict[str, Any]]
    active_loop: str | None
    requested_slot: str | None
    intent: str | None
    entities: list[dict[str, Any]]
    order_state: str | None
    now: str
    """The sandbox clock (ISO, UTC) when the bot answered."""

    def bot_texts(self) -> list[str]:
        out: list[str] = []
        for message in self.bot:
            if message.get("text"):
                out.append(str(message["text"]))
            out.extend(str(b.get("title", "")) for b in message.get("buttons") or [])
        return out


@dataclass
class ConversationRecord:
    index: int
    kind: str
    variant: str
    lang: str
    reason: str | None
    savable: bool
    insisted: bool
    sender: str
    buyer_id: str
    order_id: str
    initial_state: str
    turns: list[TurnRecord] = field(default_factory=list)
    final_state: str | None = None
    final_tag: str | None = None
    final_account: str | None = None
    final_region: str | None = None
    expected_account: str | None = None
    expected_region: str | None = None
    tickets: int = 0
    expected_minutes: int | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        return "/".join(p for p in (self.kind, self.variant, self.reason or "") if p)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- single checks ----------------------------------------------------------------------------------------------

_TIME = re.compile(r"(?<![\d:：.])(?P<h>[01]?\d|2[0-3])[:：](?P<m>[0-5]\d)(?![\d:：])")
_DATE_BEFORE = re.compile(
    r"(?:(?P<y>\d{4})-)?(?P<mo>\d{1,2})[-/月](?P<d>\d{1,2})日?\s*$|(?P<mon>[A-Z][a-z]{2})\s+(?P<d2>\d{1,2}),?\s*$"
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}
_ZH_BEFORE = ("预计", "将在", "会在", "最晚", "最迟")
_ZH_AFTER = ("前", "之前", "以前")
_EN_BEFORE = re.compile(r"\b(by|before|until|till|expected(?: at)?|at the latest|no later than)\s*$", re.I)
_TOMORROW = re.compile(r"明天|明日|次日|tomorrow", re.I)
# a sentence that says the time has already passed reports a fact, it does not promise anything
_ALREADY_LATE = re.compile(
    r"已超时|已经超时|已逾期|已过|超时了|已经晚了|原定|(?:min(?:ute)?s?|hours?|h) (?:late|overdue)|"
    r"is (?:late|overdue)|already (?:late|overdue)|overdue by|missed|has passed|was due",
    re.I,
)
_SENTENCE_END = re.compile(r"[。！？!?\n]|\.(?:\s|$)")


def untrue_times(text: str, now_local: datetime, grace: timedelta = timedelta(minutes=1)) -> list[str]:
    """Clock times stated as a coming promise (预计/前/by/before/until) that are already past at ``now_local``.

    ``now_local`` is the sandbox clock in the bot's display time zone. A time without a date is read as today
    (or as tomorrow when it is far behind now, or the text says 明天/tomorrow); a date before it is honoured.
    """
    found: list[str] = []
    for match in _TIME.finditer(text):
        before, after = text[max(0, match.start() - 14) : match.start()], text[match.end() : match.end() + 4]
        promise = (
            any(marker in before for marker in _ZH_BEFORE)
            or after.lstrip().startswith(_ZH_AFTER)
            or _EN_BEFORE.search(before) is not None
        )
        if not promise or _ALREADY_LATE.search(_sentence(text, match.start(), match.end())):
            continue
        moment = _moment(match, text, now_local)
        if moment is None:
            continue
        if moment < now_local - grace:
            found.append(f"{match.group(0)} (now {now_local:%H:%M})")
    return found


def _sentence(text: str, start: int, end: int) -> str:
    """The sentence around text[start:end]."""
    begin = 0
    for boundary in _SENTENCE_END.finditer(text, 0, start):
        begin = boundary.end()
    stop = _SENTENCE_END.search(text, end)
    return text[begin : stop.start() if stop else len(text)]


def _moment(match: re.Match[str], text: str, now_local: datetime) -> datetime | None:
    hour, minute = int(match["h"]), int(match["m"])
    date_match = _DATE_BEFORE.search(text[max(0, match.start() - 12) : match.start()])
    if date_match:
        try:
            if date_match["mon"]:
                month, day = _MONTHS[date_match["mon"]], int(date_match["d2"])
            else:
                month, day = int(date_match["mo"]), int(date_match["d"])
            year = int(date_match["y"]) if date_match["y"] else now_local.year
            return now_local.replace(year=year, month=month, day=day, hour=hour, minute=minute, second=0)
        except (KeyError, ValueError):
            return None
    moment = now_local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    context = text[max(0, match.start() - 20) : match.start()]
    if _TOMORROW.search(context) or now_local - moment > timedelta(hours=12):
        moment += timedelta(days=1)
    return moment


_LEAK_PATTERNS = (
    re.compile(r"(?<![A-Za-z])None(?![A-Za-z])"),
    re.compile(r"(?<![A-Za-z])(?:null|undefined|NaN)(?![A-Za-z])"),
    re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>"),
    re.compile(r"\b(?:Decimal|datetime|UUID)\("),
    re.compile(r"\{['\"][a-z_]+['\"]\s*:"),
    re.compile(r"\[\s*['\"][a-z_]+['\"]\s*,"),
    re.compile(r"\{[a-z_]+\}"),  # an unfilled template placeholder
)


def leaks(text: str, internal_names: Iterable[str]) -> list[str]:
    """Python/JSON reprs, unfilled placeholders and internal names (slots, forms, tags…) shown to the buyer."""
    found = [m.group(0) for pattern in _LEAK_PATTERNS for m in pattern.finditer(text)]
    for name in internal_names:
        if "_" in name and re.search(rf"(?<![A-Za-z0-9_/]){re.escape(name)}(?![A-Za-z0-9_])", text):
            found.append(name)
    return found


def traps(turns: Sequence[TurnRecord]) -> list[str]:
    """A buyer held in a form: asked a form question after saying stop / asking for a person, or a loop."""
    found: list[str] = []
    for number, turn in enumerate(turns, 1):
        if turn.meaning in {"stop", "handoff"} and turn.active_loop and turn.requested_slot:
            found.append(
                f"turn {number}: after '{turn.meaning}' the form {turn.active_loop} asked {turn.requested_slot}"
            )
    same = 1
    for number in range(1, len(turns)):
        previous, current = turns[number - 1], turns[number]
        if (
            current.active_loop
            and current.requested_slot
            and (
                (current.active_loop, current.requested_slot)
                == (previous.active_loop, previous.requested_slot)
            )
        ):
            same += 1
            if same == 3:
                found.append(f"turn {number + 1}: {current.requested_slot} asked 3 times in a row")
        else:
            same = 1
    counts: dict[str, int] = {}
    for number, turn in enumerate(turns, 1):
        for message in turn.bot:
            text = str(message.get("text") or "")
            if message.get("buttons") or text.rstrip().endswith(("?", "？")):
                key = re.sub(r"\d", "#", text.strip())
                counts[key] = counts.get(key, 0) + 1
                if counts[key] == 3:
                    found.append(f"turn {number}: the same question asked 3 times: {text[:60]!r}")
    return found


def cancels_after_neutral(initial_state: str, turns: Sequence[TurnRecord]) -> list[str]:
    """Cancellations that followed a message which did not ask to cancel (affirmative, neutral, a question…)."""
    found: list[str] = []
    previous = initial_state
    for number, turn in enumerate(turns, 1):
        if (
            turn.order_state == "cancelled"
            and previous != "cancelled"
            and turn.meaning not in CANCEL_MEANINGS
        ):
            found.append(f"turn {number}: cancelled after a '{turn.meaning}' message: {turn.buyer!r}")
        if turn.order_state is not None:
            previous = turn.order_state
    return found


def reason_asked_again(turns: Sequence[TurnRecord]) -> bool:
    """The buyer said why in the opening message and was asked for the reason anyway."""
    said = False
    for turn in turns:
        said = said or turn.meaning == "cancel_with_reason"
        if said and turn.requested_slot and "reason" in turn.requested_slot:
            return True
    return False


def general_answer_problems(record: ConversationRecord) -> list[str]:
    """A general arrival question: the promised minutes must be stated, and no order of the buyer's."""
    if record.kind != "general" or not record.turns:
        return []
    text = " ".join(record.turns[0].bot_texts())
    problems = []
    if record.expected_minutes is not None and not re.search(
        rf"(?<!\d){record.expected_minutes}(?!\d)", text
    ):
        problems.append(f"general answer lacks {record.expected_minutes} min")
    if record.order_id in text:
        problems.append("general question answered about the buyer's order")
    return problems


# --- per conversation ------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    saved: bool | None = None
    honoured: bool | None = None
    tag_correct: bool | None = None
    fix_applied: bool | None = None
    restored: bool | None = None
    traps: list[str] = field(default_factory=list)
    cancels_after_neutral: list[str] = field(default_factory=list)
    untrue_times: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    general: list[str] = field(default_factory=list)
    tickets: int = 0
    handoff_ticket: bool | None = None
    reason_asked_again: bool = False

    @property
    def problems(self) -> list[str]:
        out: list[str] = []
        if self.saved is False:
            out.append("savable order was cancelled")
        if self.honoured is False:
            out.append("insisted cancellation not done")
        if self.tag_correct is False:
            out.append("wrong reason tag")
        if self.fix_applied is False:
            out.append("fix not applied")
        if self.restored is False:
            out.append("not restored")
        if self.handoff_ticket is False:
            out.append("asked for a person, no ticket")
        out += [f"trap: {t}" for t in self.traps]
        out += [f"cancel after neutral: {t}" for t in self.cancels_after_neutral]
        out += [f"untrue time: {t}" for t in self.untrue_times]
        out += [f"shown to buyer: {t}" for t in self.leaks]
        out += self.general
        if self.reason_asked_again:
            out.append("reason asked again after the opening said it")
        return out

    @property
    def badness(self) -> int:
        return (
            5 * len(self.cancels_after_neutral)
            + 5 * (self.saved is False)
            + 4 * (self.honoured is False)
            + 4 * len(self.traps)
            + 3 * len(self.untrue_times)
            + 2 * (self.tag_correct is False)
            + 2 * len(self.leaks)
            + 2 * (self.fix_applied is False)
            + 2 * (self.restored is False)
            + (self.handoff_ticket is False)
            + self.reason_asked_again
            + len(self.general)
            + max(0, self.tickets - 1)
        )


def judge(
    record: ConversationRecord, internal_names: Iterable[str], tz_offset: timedelta = timedelta(hours=8)
) -> Verdict:
    names = list(internal_names)
    verdict = Verdict(tickets=record.tickets)
    cancelled = record.final_state == "cancelled"
    if record.savable:
        verdict.saved = not cancelled
    if record.insisted:
        verdict.honoured = cancelled
        if cancelled:
            verdict.tag_correct = record.final_tag == record.reason
    if record.kind == "keep_fix" and not cancelled:
        if record.variant == "region":
            verdict.fix_applied = record.final_region == record.expected_region
        else:
            verdict.fix_applied = record.final_account == record.expected_account
    if record.kind == "restore":
        verdict.restored = record.final_state not in {"cancelled", None}
    if record.kind == "handoff":
        verdict.handoff_ticket = record.tickets > 0
    verdict.traps = traps(record.turns)
    verdict.cancels_after_neutral = cancels_after_neutral(record.initial_state, record.turns)
    for turn in record.turns:
        now_local = (datetime.fromisoformat(turn.now.replace("Z", "+00:00")) + tz_offset).replace(tzinfo=None)
        for text in turn.bot_texts():
            verdict.untrue_times += untrue_times(text, now_local)
            verdict.leaks += leaks(text, names)
    verdict.general = general_answer_problems(record)
    verdict.reason_asked_again = reason_asked_again(record.turns)
    return verdict


# --- aggregate -------------------------------------------------------------------------------------------------

TARGETS: dict[str, tuple[str, float]] = {
    "save_rate": (">=", 0.90),
    "honoured_rate": (">=", 1.0),
    "tag_accuracy": (">=", 0.95),
    "traps": ("==", 0),
    "cancels_after_neutral": ("==", 0),
    "untrue_times": ("==", 0),
    "leaks": ("==", 0),
}


@dataclass
class Summary:
    conversations: int = 0
    savable: int = 0
    saved: int = 0
    insisted: int = 0
    honoured: int = 0
    tagged: int = 0
    tags_correct: int = 0
    fixes: int = 0
    fixes_applied: int = 0
    restores: int = 0
    restored: int = 0
    handoffs: int = 0
    handoff_tickets: int = 0
    traps: int = 0
    cancels_after_neutral: int = 0
    untrue_times: int = 0
    leaks: int = 0
    general: int = 0
    general_ok: int = 0
    reasons_stated: int = 0
    reasons_asked_again: int = 0
    tickets: int = 0
    errors: int = 0
    tag_confusion: dict[str, dict[str, int]] = field(default_factory=dict)

    @staticmethod
    def rate(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def values(self) -> dict[str, float | None]:
        return {
            "save_rate": self.rate(self.saved, self.savable),
            "honoured_rate": self.rate(self.honoured, self.insisted),
            "tag_accuracy": self.rate(self.tags_correct, self.tagged),
            "traps": self.traps,
            "cancels_after_neutral": self.cancels_after_neutral,
            "untrue_times": self.untrue_times,
            "leaks": self.leaks,
        }

    def missed(self) -> list[str]:
        out = []
        for name, (op, target) in TARGETS.items():
            value = self.values[name]
            if value is None:
                continue
            ok = value >= target if op == ">=" else value == target
            if not ok:
                out.append(f"{name} {value:.3g} (target {op} {target:g})")
        return out


def summarise(pairs: Iterable[tuple[ConversationRecord, Verdict]]) -> Summary:
    s = Summary()
    for record, verdict in pairs:
        s.conversations += 1
        s.errors += record.error is not None
        if verdict.saved is not None:
            s.savable += 1
            s.saved += verdict.saved
        if verdict.honoured is not None:
            s.insisted += 1
            s.honoured += verdict.honoured
        if verdict.tag_correct is not None:
            s.tagged += 1
            s.tags_correct += verdict.tag_correct
            row = s.tag_confusion.setdefault(record.reason or "?", {})
            got = record.final_tag or "?"
            row[got] = row.get(got, 0) + 1
        if verdict.fix_applied is not None:
            s.fixes += 1
            s.fixes_applied += verdict.fix_applied
        if verdict.restored is not None:
            s.restores += 1
            s.restored += verdict.restored
        if verdict.handoff_ticket is not None:
            s.handoffs += 1
            s.handoff_tickets += verdict.handoff_ticket
        if record.kind == "general":
            s.general += 1
            s.general_ok += not verdict.general
        if any(t.meaning == "cancel_with_reason" for t in record.turns):
            s.reasons_stated += 1
            s.reasons_asked_again += verdict.reason_asked_again
        s.traps += len(verdict.traps)
        s.cancels_after_neutral += len(verdict.cancels_after_neutral)
        s.untrue_times += len(verdict.untrue_times)
        s.leaks += len(verdict.leaks)
        s.tickets += verdict.tickets
    return s
