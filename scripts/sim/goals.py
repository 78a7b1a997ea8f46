"""Scripted buyers: a goal, the orders it needs on the platform, and what the buyer says at each step.

The buyer never reads the bot's wording. It reads the dialogue state from Rasa's tracker (active form and the
slot it asks for), the buttons the bot sent (their payloads), and answers according to its goal, typing one
of many phrasings or tapping the matching button.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sim import phrases as P

REASON_TAGS: tuple[str, ...] = (
    "user_mistake",
    "demand_changed",
    "found_cheaper",
    "wrong_account",
    "wrong_region",
    "payment_problem",
    "arrival_too_slow",
    "unclear_description",
    "merchant_out_of_stock",
    "merchant_malicious",
    "duplicate_order",
    "other",
)

# What each buyer message means; the metrics judge the bot's reaction by it.
CANCEL_MEANINGS = frozenset({"cancel_request", "cancel_with_reason", "insist", "confirm_cancel", "reason"})
"""Messages after which a cancellation may legitimately happen; anything else is affirmative or neutral."""


@dataclass(frozen=True)
class Product:
    sku: str
    kind: str
    carrier: str | None
    account: str
    region: str | None
    new_account: str
    new_region: str | None


PRODUCTS: dict[str, Product] = {
    "CM-100": Product(
        "CM-100", "phone_topup", "mobile", "13812345678", "广东移动", "13912340011", "浙江移动"
    ),
    "CU-50": Product("CU-50", "phone_topup", "unicom", "13100002222", "北京联通", "13100003333", "上海联通"),
    "CT-50": Product("CT-50", "phone_topup", "telecom", "13312349876", "上海电信", "18912345678", "江苏电信"),
    "WZRY-60": Product("WZRY-60", "game_card", None, "2876500011", "安卓QQ区", "2876500099", "iOS微信区"),
    "HPJY-60": Product("HPJY-60", "game_card", None, "51230001", "安卓微信区", "51239999", "iOS QQ区"),
    "TXSP-VIP-M": Product(
        "TXSP-VIP-M", "membership", None, "13700001111", "中国大陆", "13700002222", "港澳台"
    ),
}


# The sandbox's seeded products the simulator orders (docs/platform-api.md "Seeds"); restocked at the start.
SEED_PRODUCTS: dict[str, dict[str, Any]] = {
    "WZRY-60": {"kind": "game_card", "name": "王者荣耀 点券 60", "merchant_id": "M01", "price": "6.00"},
    "HPJY-60": {"kind": "game_card", "name": "和平精英 点券 60", "merchant_id": "M01", "price": "6.00"},
    "YS-60": {"kind": "game_card", "name": "原神 创世结晶 60", "merchant_id": "M01", "price": "6.00"},
    "CM-100": {
        "kind": "phone_topup", "name": "中国移动 话费 100 元", "merchant_id": "M02", "price": "99.50",
        "carrier": "中国移动",
    },
    "CU-50": {
        "kind": "phone_topup", "name": "中国联通 话费 50 元", "merchant_id": "M02", "price": "49.80",
        "carrier": "中国联通",
    },
    "CT-50": {
        "kind": "phone_topup", "name": "中国电信 话费 50 元", "merchant_id": "M02", "price": "49.70",
        "carrier": "中国电信",
    },
    "TXSP-VIP-M": {"kind": "membership", "name": "腾讯视频 VIP 月卡", "merchant_id": "M03", "price": "25.00"},
    "IQY-VIP-M": {"kind": "membership", "name": "爱奇艺 黄金会员 月卡", "merchant_id": "M03", "price": "19.80"},
}  # fmt: skip


@dataclass(frozen=True)
class OrderPlan:
    """An order the goal needs: product, state and timing (minutes before the conversation starts)."""

    sku: str
    state: str = "processing"
    paid_minutes_ago: float | None = 2.0
    submitted_minutes_ago: float | None = None
    outcome: str = "stall"
    cancelled_by_buyer: bool = False


@dataclass(frozen=True)
class Goal:
    """One simulated buyer's intention for a whole conversation."""

    kind: str
    lang: str
    reason: str | None = None
    variant: str = ""
    plan: OrderPlan = OrderPlan("WZRY-60")

    @property
    def savable(self) -> bool:
        """A cancel request the buyer would drop when offered a way to keep the order."""
        return self.kind in {"keep_wait", "keep_fix", "keep_pay", "change_mind"} or (
            self.kind in {"digress", "stop", "handoff"} and self.variant.startswith("cancel")
        )

    @property
    def insisted(self) -> bool:
        return self.kind == "insist" or (self.kind == "digress" and self.variant == "insist")

    @property
    def label(self) -> str:
        parts = [self.kind, self.variant, self.reason or ""]
        return "/".join(p for p in parts if p)


def catalogue(rng: random.Random) -> list[tuple[str, str | None, str]]:
    """One cycle of (kind, reason, variant): every goal kind at least once (30 entries)."""
    cycle: list[tuple[str, str | None, str]] = [("insist", tag, "") for tag in REASON_TAGS]
    cycle += [
        ("keep_wait", "arrival_too_slow", ""),
        ("keep_fix", "wrong_account", "account"),
        ("keep_fix", "wrong_region", "region"),
        ("keep_pay", "payment_problem", ""),
        ("change_mind", rng.choice(["found_cheaper", "demand_changed", "user_mistake"]), "at_reason"),
        ("change_mind", rng.choice(["found_cheaper", "duplicate_order", "unclear_description"]), "at_offer"),
        ("restore", None, ""),
        ("restore", None, "no_id"),
        ("general", None, "kind"),
        ("general", None, "carrier"),
        ("general", None, "night"),
        ("order_question", None, rng.choice(["fresh", "overdue"])),
        ("digress", "arrival_too_slow", "cancel_keep"),
        ("digress", rng.choice(["found_cheaper", "demand_changed", "duplicate_order"]), "insist"),
        ("handoff", rng.choice(["found_cheaper", "arrival_too_slow"]), "cancel_form"),
        ("handoff", None, "fix_form"),
        ("stop", rng.choice(["found_cheaper", "demand_changed", "other"]), "cancel_form"),
        ("stop", None, "fix_form"),
    ]
    return cycle


def make_goals(count: int, seed: int, langs: Sequence[str]) -> list[Goal]:
    """``count`` goals cycling through the catalogue, languages alternating; deterministic for a seed."""
    rng = random.Random(seed)
    goals: list[Goal] = []
    index = 0
    while len(goals) < count:
        cycle = catalogue(rng)
        rng.shuffle(cycle)
        for kind, reason, variant in cycle:
            if len(goals) >= count:
                break
            lang = langs[(index + index // len(cycle)) % len(langs)]
            goals.append(Goal(kind, lang, reason, variant, _plan(kind, reason, variant, rng)))
            index += 1
    return goals


def _plan(kind: str, reason: str | None, variant: str, rng: random.Random) -> OrderPlan:
    if kind == "keep_pay" or reason == "payment_problem":
        return OrderPlan(
            rng.choice(["CM-100", "WZRY-60", "TXSP-VIP-M"]),
            state="pending_payment",
            paid_minutes_ago=None,
            submitted_minutes_ago=rng.choice([2.0, 3.0, 4.0]),
            outcome="payment_stall",
        )
    if kind == "restore":
        return OrderPlan(
            rng.choice(list(PRODUCTS)), state="paid", paid_minutes_ago=3, cancelled_by_buyer=True
        )
    if kind == "order_question" and variant == "overdue":
        return OrderPlan(rng.choice(["CM-100", "CU-50", "CT-50"]), paid_minutes_ago=70)
    if kind == "keep_fix" or variant == "fix_form" or reason in {"wrong_account", "wrong_region"}:
        return OrderPlan(rng.choice(["CM-100", "CU-50", "CT-50", "WZRY-60", "HPJY-60"]), paid_minutes_ago=1)
    # paid recently, well inside the promise (game card 5 min, top-up 10 min, membership 30 min)
    sku = rng.choice(list(PRODUCTS))
    return OrderPlan(sku, paid_minutes_ago=1.5 if PRODUCTS[sku].kind == "game_card" else 3)


# --- reading the bot's buttons -----------------------------------------------------------------------------------
_PAYLOAD = re.compile(r"^/(?P<intent>[A-Za-z_]+)(?P<entities>\{.*\})?$", re.S)


@dataclass(frozen=True)
class Button:
    title: str
    payload: str

    @property
    def intent(self) -> str | None:
        match = _PAYLOAD.match(self.payload.strip())
        return match["intent"] if match else None

    @property
    def entities(self) -> dict[str, Any]:
        match = _PAYLOAD.match(self.payload.strip())
        if not match or not match["entities"]:
            return {}
        try:
            value = json.loads(match["entities"])
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


def _label_tags() -> dict[str, str]:
    """Buttons whose payload is a visible label (older dialogue): the label → reason tag, from the bot's texts."""
    try:
        from actions.texts import CANCEL_REASON_LABELS
    except Exception:  # the simulator must not depend on the bot's texts module
        return {}
    return {label: tag for tag, labels in CANCEL_REASON_LABELS.items() for label in labels.values()}


LABEL_TAGS = _label_tags()


def button_meaning(button: Button) -> set[str]:
    """What tapping the button says, from its payload only: e.g. {"reason:found_cheaper"}, {"keep"}."""
    intent, entities = button.intent, button.entities
    out: set[str] = set()
    if intent is None:
        tag = LABEL_TAGS.get(button.payload.strip())
        if tag:
            out.add(f"reason:{tag}")
        return out
    if "cancel_reason" in entities:
        out.add(f"reason:{entities['cancel_reason']}")
    if "order_id" in entities:
        out.add(f"order:{entities['order_id']}")
    decision = entities.get("cancel_decision")
    field_value = entities.get("fix_field")
    if intent == "keep_order" or decision == "keep":
        out.add("keep")
    if intent == "cancel_order" or decision == "cancel":
        out.add("insist")
    if intent == "wrong_account" or decision == "fix_account" or field_value == "account":
        out.add("fix_account")
    if intent == "wrong_region" or decision == "fix_region" or field_value == "region":
        out.add("fix_region")
    if intent == "affirm" and not entities:
        out.add("yes")
    if intent == "deny" and not entities:
        out.add("no")
    if intent == "stop":
        out.add("stop")
    if intent == "human_handoff":
        out.add("handoff")
    return out


# --- the buyer ---------------------------------------------------------------------------------------------------
@dataclass
class Observation:
    """What the buyer can see and what the simulator reads after a bot turn."""

    active_loop: str | None
    requested_slot: str | None
    buttons: list[Button]
    texts: list[str]
    turn: int
    order_state: str | None = None


@dataclass
class Move:
    text: str
    meaning: str
    tapped: bool = False


@dataclass
class Buyer:
    goal: Goal
    rng: random.Random
    order_id: str
    account: str = ""
    region: str | None = None
    tap_probability: float = 0.45
    opened: bool = False
    done: bool = False
    interjected: bool = False
    pressed: int = 0
    form_seen: bool = False
    general_key: str = ""
    said_thanks: bool = False
    reason_given: int = 0
    asked: dict[str, int] = field(default_factory=dict)

    @property
    def lang(self) -> str:
        return self.goal.lang

    def say(self, bank: dict[str, list[str]], meaning: str, **values: str) -> Move:
        template = self.rng.choice(bank[self.lang])
        return Move(self._typo(template.format(oid=self.order_id, **values)), meaning)

    def _typo(self, text: str) -> str:
        """Now and then a buyer's slip: a doubled letter, a stray space or a missing final character."""
        roll = self.rng.random()
        if roll < 0.05 and len(text) > 6 and self.order_id not in text:
            return text[:-1] if not text[-1].isdigit() else text
        if roll < 0.09:
            return text + self.rng.choice([" ", "  ", "~", "!!", "。", "…"])
        return text

    def tap(self, obs: Observation, meaning: str, wanted: str) -> Move | None:
        """Tap the button that says ``wanted`` when there is one and the coin says so."""
        for button in obs.buttons:
            if wanted in button_meaning(button) and self.rng.random() < self.tap_probability:
                return Move(button.payload, meaning, tapped=True)
        return None

    # the opening message --------------------------------------------------------------------------------
    def opening(self) -> Move:
        g = self.goal
        if g.kind == "restore":
            if g.variant == "no_id":
                return self.say(P.RESTORE_NO_ID, "restore_request")
            return self.say(P.RESTORE_OPEN, "restore_request")
        if g.kind == "general":
            return self.general_question(g.variant)
        if g.kind == "order_question":
            return self.say(P.ORDER_QUESTION, "order_question")
        if g.variant == "fix_form":
            return self.say(P.FIX_OPEN, "fix_request")
        return self.cancel_request()

    def cancel_request(self) -> Move:
        with_id = self.rng.random() < 0.65
        request = self.say(P.CANCEL_WITH_ID if with_id else P.CANCEL_NO_ID, "cancel_request")
        if self.goal.reason and self.goal.kind != "change_mind" and self.rng.random() < 0.4:
            reason = self.rng.choice(P.REASONS[self.goal.reason][self.lang])
            joiner = self.rng.choice(P.JOINERS[self.lang])
            parts = [request.text, reason] if self.rng.random() < 0.5 else [reason, request.text]
            self.reason_given += 1
            return Move(joiner.join(parts), "cancel_with_reason")
        return request

    def general_question(self, variant: str) -> Move:
        table = {"kind": P.GENERAL_KIND, "carrier": P.GENERAL_CARRIER, "night": P.GENERAL_NIGHT}[variant]
        key = self.rng.choice(sorted(table))
        self.general_key = key
        return self.say(table[key], f"general:{variant}:{key}")

    # every later turn ----------------------------------------------------------------------------------------
    def next_move(self, obs: Observation) -> Move | None:
        if self.done:
            return None
        if not self.opened:
            self.opened = True
            return self.opening()
        loop, slot = obs.active_loop, obs.requested_slot
        if loop and slot:
            self.form_seen = True
            self.asked[slot] = self.asked.get(slot, 0) + 1
            if self.asked[slot] > 3:  # the bot keeps asking: a real buyer gives up
                self.done = True
                return None
            interjection = self._interjection(obs, loop, slot)
            if interjection is not None:
                return interjection
            return self.answer(obs, loop, slot)
        return self._after_form(obs)

    def _interjection(self, obs: Observation, loop: str, slot: str) -> Move | None:
        g = self.goal
        if self.interjected:
            return None
        if g.kind == "digress":
            self.interjected = True
            move = self.general_question(self.rng.choice(["kind", "carrier", "night"]))
            return Move(move.text, "digress")
        if g.kind in {"stop", "handoff"} and (
            (g.variant == "cancel_form" and loop == "cancel_form" and slot != "order_id")
            or (g.variant == "fix_form" and loop == "fix_target_form" and slot in {"account", "region"})
        ):
            self.interjected = True
            self.done = True
            bank = P.STOP if g.kind == "stop" else P.HANDOFF
            return self.tap(obs, g.kind, g.kind) or self.say(bank, g.kind)
        if g.kind == "change_mind" and loop == "cancel_form":
            at_reason = g.variant == "at_reason" and "reason" in slot
            at_offer = g.variant == "at_offer" and slot not in {"order_id"} and "reason" not in slot
            if at_reason or at_offer:
                self.interjected = True
                return self.tap(obs, "keep", "keep") or self.say(P.KEEP, "keep")
        return None

    def answer(self, obs: Observation, loop: str, slot: str) -> Move:
        g = self.goal
        if slot == "order_id":
            return self.tap(obs, "order_id", f"order:{self.order_id}") or self.say(
                P.GIVE_ORDER_ID, "order_id"
            )
        if "reason" in slot:
            tag = g.reason or "other"
            self.reason_given += 1
            return self.tap(obs, "reason", f"reason:{tag}") or self.say(P.REASONS[tag], "reason")
        if "confirm" in slot:
            if loop == "cancel_form" or "cancel" in slot:
                if g.insisted:
                    return self.tap(obs, "confirm_cancel", "yes") or self.say(
                        P.CONFIRM_CANCEL, "confirm_cancel"
                    )
                return self.tap(obs, "keep", "no") or self.say(P.DECLINE_CANCEL, "keep")
            if loop == "restore_form" or "restore" in slot:
                return self.tap(obs, "confirm", "yes") or self.say(P.RESTORE_YES, "confirm")
            return self.tap(obs, "confirm", "yes") or self.say(P.FIX_YES, "confirm")
        if loop == "cancel_form" or "decision" in slot or "offer" in slot:
            return self.offer_answer(obs)
        if "field" in slot:
            if g.reason == "wrong_region" or g.variant == "region":
                return self.tap(obs, "fix_field", "fix_region") or self.say(P.FIX_FIELD_REGION, "fix_field")
            return self.tap(obs, "fix_field", "fix_account") or self.say(P.FIX_FIELD_ACCOUNT, "fix_field")
        if "account" in slot:
            return self.say(P.GIVE_ACCOUNT, "account", acct=self.account)
        if "region" in slot:
            return self.say(P.GIVE_REGION, "region", region=self.region or "")
        if "payment" in slot:
            return self.say(P.PAYMENT_ISSUE, "payment_issue")
        self.done = True
        return self.say(P.THANKS, "neutral")

    def offer_answer(self, obs: Observation) -> Move:
        """The save offer: keepers take it, insisters refuse it."""
        g = self.goal
        if g.insisted:
            return self.tap(obs, "insist", "insist") or self.say(P.INSIST, "insist")
        if g.reason == "wrong_account":
            return self.tap(obs, "accept_fix", "fix_account") or self.say(P.ACCEPT_FIX_ACCOUNT, "accept_fix")
        if g.reason == "wrong_region":
            return self.tap(obs, "accept_fix", "fix_region") or self.say(P.ACCEPT_FIX_REGION, "accept_fix")
        if g.reason == "payment_problem":
            return self.tap(obs, "keep", "keep") or self.say(P.ACCEPT_PAY, "keep")
        return self.tap(obs, "keep", "keep") or self.say(P.ACCEPT_WAIT, "keep")

    def _after_form(self, obs: Observation) -> Move | None:
        """No form is asking: an insisting buyer presses on (twice at most), others close politely or leave."""
        g = self.goal
        if g.kind in {"stop", "handoff", "general", "order_question", "change_mind"}:
            self.done = True
            return None
        if g.insisted and obs.order_state != "cancelled" and self.pressed < 2:
            self.pressed += 1  # the request got lost, an offer came outside a form, or a digression ended it
            if obs.buttons:
                tapped = self.tap(obs, "insist", "insist")
                if tapped is not None:
                    return tapped
            return self.cancel_request() if self.pressed == 1 else self.say(P.INSIST, "insist")
        if g.kind == "restore" and obs.order_state == "cancelled" and self.pressed < 1:
            self.pressed += 1
            return self.say(P.RESTORE_OPEN, "restore_request")
        if not self.said_thanks:
            self.said_thanks = True
            self.done = True
            return self.say(P.THANKS, "neutral")
        self.done = True
        return None
