"""Binding a Telegram user to a buyer with one-time tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from sandbox.errors import ApiError
from sandbox.schemas import BuyerLinkOut, LinkTokenOut, MerchantLinkTokenOut, MerchantOut
from sandbox.services.common import require_buyer, require_merchant
from sandbox.services.views import link_out, merchant_out
from sandbox.tables import LinkToken, MerchantLinkToken, TelegramLink


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(
    session: AsyncSession, buyer_id: str, now: datetime, ttl: timedelta, bot_username: str
) -> LinkTokenOut:
    """A fresh one-time token; it fits Telegram's ``/start`` payload (≤ 64 chars of [A-Za-z0-9_-])."""
    await require_buyer(session, buyer_id)
    token = secrets.token_urlsafe(24)
    expires_at = now + ttl
    session.add(
        LinkToken(token_hash=token_hash(token), buyer_id=buyer_id, created_at=now, expires_at=expires_at)
    )
    return LinkTokenOut(
        token=token,
        buyer_id=buyer_id,
        expires_at=expires_at,
        deep_link=f"https://t.me/{bot_username}?start={token}",
    )


async def redeem_token(
    session: AsyncSession, token: str, telegram_user_id: int, now: datetime
) -> BuyerLinkOut:
    """Link the Telegram user to the token's buyer, replacing any earlier link of that Telegram user.

    The token is consumed with a conditional UPDATE, so of two concurrent redemptions exactly one wins.
    """
    digest = token_hash(token)
    row = await session.get(LinkToken, digest)
    if row is None:
        raise ApiError("token_unknown", "this link token does not exist")
    if row.used_at is not None:
        raise ApiError("token_used", "this link token has already been used")
    if now >= row.expires_at:
        raise ApiError("token_expired", "this link token has expired")
    consumed = await session.execute(
        update(LinkToken)
        .where(LinkToken.token_hash == digest, LinkToken.used_at.is_(None))
        .values(used_at=now, used_by=telegram_user_id)
        .execution_options(synchronize_session=False)
    )
    if consumed.rowcount != 1:  # type: ignore[attr-defined]
        raise ApiError("token_used", "this link token has already been used")
    await upsert_link(session, telegram_user_id, row.buyer_id, now)
    return BuyerLinkOut(buyer_id=row.buyer_id, telegram_user_id=telegram_user_id, linked_at=now)


async def upsert_link(session: AsyncSession, telegram_user_id: int, buyer_id: str, now: datetime) -> None:
    """Point the Telegram user at ``buyer_id`` in one statement, so concurrent links cannot collide."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(TelegramLink).values(
        telegram_user_id=telegram_user_id, buyer_id=buyer_id, linked_at=now
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[TelegramLink.telegram_user_id],
            set_={"buyer_id": statement.excluded.buyer_id, "linked_at": statement.excluded.linked_at},
        )
    )


async def get_link(session: AsyncSession, telegram_user_id: int) -> BuyerLinkOut:
    link = await session.get(TelegramLink, telegram_user_id)
    if link is None:
        raise ApiError("not_linked", "this Telegram user is not linked to a buyer")
    return link_out(link)


async def unlink(session: AsyncSession, telegram_user_id: int) -> None:
    """Remove the link; unlinking a user who is not linked is a no-op (the end state is the same)."""
    await session.execute(delete(TelegramLink).where(TelegramLink.telegram_user_id == telegram_user_id))


# ---------------------------------------------------------------- merchants


async def issue_merchant_token(
    session: AsyncSession, merchant_id: str, now: datetime, ttl: timedelta, bot_username: str
) -> MerchantLinkTokenOut:
    """A one-time token linking a merchant's Telegram chat; the deep link starts with ``m-`` for the bot."""
    await require_merchant(session, merchant_id)
    token = "m-" + secrets.token_urlsafe(24)
    expires_at = now + ttl
    session.add(
        MerchantLinkToken(
            token_hash=token_hash(token), merchant_id=merchant_id, created_at=now, expires_at=expires_at
        )
    )
    return MerchantLinkTokenOut(
        token=token,
        merchant_id=merchant_id,
        expires_at=expires_at,
        deep_link=f"https://t.me/{bot_username}?start={token}",
    )


async def redeem_merchant_token(
    session: AsyncSession, token: str, telegram_chat_id: int, now: datetime
) -> MerchantOut:
    """Point the token's merchant at ``telegram_chat_id`` (their private chat with the bot, or a group)."""
    digest = token_hash(token)
    row = await session.get(MerchantLinkToken, digest)
    if row is None:
        raise ApiError("token_unknown", "this link token does not exist")
    if row.used_at is not None:
        raise ApiError("token_used", "this link token has already been used")
    if now >= row.expires_at:
        raise ApiError("token_expired", "this link token has expired")
    consumed = await session.execute(
        update(MerchantLinkToken)
        .where(MerchantLinkToken.token_hash == digest, MerchantLinkToken.used_at.is_(None))
        .values(used_at=now, used_by=telegram_chat_id)
        .execution_options(synchronize_session=False)
    )
    if consumed.rowcount != 1:  # type: ignore[attr-defined]
        raise ApiError("token_used", "this link token has already been used")
    merchant = await require_merchant(session, row.merchant_id)
    merchant.telegram_chat_id = telegram_chat_id
    await session.flush()
    return merchant_out(merchant)
