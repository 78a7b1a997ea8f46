"""``Idempotency-Key`` handling: one effect per key, the first response replayed for every repeat.

The key row is inserted in the same transaction as the operation it guards. A concurrent request with the
same key blocks on the primary-key index (PostgreSQL) or on the write lock (SQLite) until the first one
commits, then finds the stored response and replays it. 4xx answers are stored too (a retry of a refused
request is refused the same way); a 5xx rolls everything back, key included, so the request can be retried.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi.responses import JSONResponse, Response
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sandbox.db import Database
from sandbox.errors import ApiError
from sandbox.tables import IdempotencyRecord

REPLAY_HEADER = "Idempotent-Replayed"
RETENTION = timedelta(hours=24)
_CLAIM_ATTEMPTS = 3

Work = Callable[[AsyncSession], Awaitable[tuple[int, Any]]]


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int
    body: Any
    replayed: bool = False

    def response(self) -> Response:
        headers = {REPLAY_HEADER: "true"} if self.replayed else None
        if self.body is None:
            return Response(status_code=self.status_code, headers=headers)
        return JSONResponse(self.body, status_code=self.status_code, headers=headers)


def fingerprint(method: str, path: str, payload: Any) -> str:
    """Identity of a request: same method, path and (validated, canonical) body."""
    canonical = json.dumps([method.upper(), path, payload], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(record: IdempotencyRecord, request_fingerprint: str) -> Outcome:
    if record.fingerprint != request_fingerprint:
        raise ApiError("idempotency_conflict", "this Idempotency-Key was used for a different request")
    body = None if record.body is None else json.loads(record.body)
    return Outcome(record.status_code, body, replayed=True)


async def _claim_and_run(
    session: AsyncSession, key: str, request_fingerprint: str, work: Work, real_now: datetime
) -> Outcome:
    existing = await session.get(IdempotencyRecord, key)
    if existing is not None:
        return _replay(existing, request_fingerprint)
    record = IdempotencyRecord(
        key=key, fingerprint=request_fingerprint, status_code=0, body=None, created_at=real_now
    )
    session.add(record)
    await session.flush()
    try:
        async with session.begin_nested():
            status_code, body = await work(session)
    except ApiError as exc:
        status_code, body = exc.status, exc.body()
    record.status_code = status_code
    record.body = None if body is None else json.dumps(body, ensure_ascii=False)
    return Outcome(status_code, body)


async def run_idempotent(
    db: Database, key: str | None, request_fingerprint: str, work: Work, real_now: datetime
) -> Outcome:
    """Run ``work`` once per key (or every time without one)."""
    if key is None:
        status_code, body = await db.run(work)
        return Outcome(status_code, body)
    for attempt in range(_CLAIM_ATTEMPTS):
        try:
            return await db.run(lambda s: _claim_and_run(s, key, request_fingerprint, work, real_now))
        except IntegrityError:
            if attempt == _CLAIM_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def purge_expired(session: AsyncSession, real_now: datetime) -> None:
    await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < real_now - RETENTION)
    )
