"""The operators' numbers on a known mix of conversations, on PostgreSQL and on SQLite (same answers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from integrations.storage.analytics import Analytics, Filters
from integrations.storage.db import make_engine, make_sessionmaker, upgrade_to_head
from integrations.storage.handoff import HandoffRepository
from integrations.storage.repositories import ConversationLog, LoggedMessage
from tests.support import ops_scenario
from tests.support.ops_scenario import DAY, EXPECTED


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'var' / 'bot.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_to_head(database_url)
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    await ops_scenario.seed(sessions, HandoffRepository(sessions))
    yield engine
    await engine.dispose()


def subset(actual: dict[str, object], expected: dict[str, object]) -> dict[str, object]:
    return {key: actual[key] for key in expected}


async def test_the_numbers_of_a_known_mix(engine: AsyncEngine) -> None:
    """One seeded database per backend (seeding is the slow part): every block, the filters, local days."""
    analytics = Analytics(engine)
    data = await analytics.overview(Filters(DAY, DAY))
    total = data["funnel"]["total"]
    assert subset(total, EXPECTED["funnel"]) == EXPECTED["funnel"]
    slow = next(row for row in data["funnel"]["by_tag"] if row["reason_tag"] == "arrival_too_slow")
    assert subset(slow, EXPECTED["arrival_too_slow"]) == EXPECTED["arrival_too_slow"]
    assert sum(row["requests"] for row in data["funnel"]["by_tag"]) == total["requests"]
    assert subset(data["containment"], EXPECTED["containment"]) == EXPECTED["containment"]
    assert subset(data["csat"], EXPECTED["csat"]) == EXPECTED["csat"]
    assert data["csat"]["distribution"] == EXPECTED["csat_distribution"]
    assert {g["key"]: g["average"] for g in data["csat"]["by_agent"]} == {"Alice": 5.0, "M2 shop": 3.0}
    merchants = {row["merchant_id"]: row for row in data["merchants"]}
    for merchant_id, expected in EXPECTED["merchants"].items():
        assert subset(merchants[merchant_id], expected) == expected
    # one day: the series has one point per tag, and its sums are the funnel's
    series = data["save_rate_series"]
    assert {point["day"] for point in series} == {DAY.isoformat()}
    assert sum(point["requests"] for point in series) == 9
    assert sum(point["saved"] for point in series) == 5

    # filters
    english = await analytics.overview(Filters(DAY, DAY, language="en"))
    assert english["funnel"]["total"]["requests"] == 3  # 1003 saved, 1006 and 1008 cancelled
    assert english["funnel"]["total"]["saved"] == 1
    assert english["containment"]["conversations"] == 5  # 1003, 1006, 1008 and 1010 twice
    assert english["containment"]["tickets"] == 2
    m2 = await analytics.overview(Filters(DAY, DAY, merchant_id="M2"))
    assert m2["funnel"]["total"]["requests"] == 4
    assert m2["containment"]["conversations"] is None  # conversations are not attributed to merchants
    assert m2["containment"]["tickets"] == 2
    cards = await analytics.funnel(Filters(DAY, DAY, product_kind="game_card"))
    assert cards.total.requests == 5  # 1001, 1002, 1005, 1008, 1009
    before = await analytics.overview(Filters(DAY - timedelta(days=7), DAY - timedelta(days=1)))
    assert before["funnel"]["total"]["requests"] == 0
    assert before["containment"]["conversations"] == 0
    assert before["csat"]["average"] is None
    assert await analytics.merchant_ids() == ["M1", "M2"]

    # days are local days: 23:30 in Shanghai belongs to that day, though it is 15:30 UTC
    log = ConversationLog(make_sessionmaker(engine))
    late = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
    await log.append(LoggedMessage(3001, "in", "text", "hi", at=late))
    assert (await analytics.containment(Filters(date(2026, 12, 1), date(2026, 12, 1)))).conversations == 1
    assert (await analytics.containment(Filters(date(2026, 12, 2), date(2026, 12, 2)))).conversations == 0
    utc = Filters(date(2026, 12, 2), date(2026, 12, 2), timezone="UTC")
    assert (await analytics.containment(utc)).conversations == 0


def test_a_period_must_make_sense() -> None:
    with pytest.raises(ValueError):
        Filters(DAY, DAY - timedelta(days=1))
    with pytest.raises(ValueError):
        Filters(DAY - timedelta(days=400), DAY)
