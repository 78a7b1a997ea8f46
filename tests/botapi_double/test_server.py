"""The Bot API double driven by a real aiogram Bot / Dispatcher over HTTP on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandStart
from aiogram.methods import SendMessage, TelegramMethod
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from .models import FloodLimits
from .server import TINY_PNG, BotAPIDouble

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def double() -> AsyncIterator[BotAPIDouble]:
    async with BotAPIDouble() as server:
        yield server


@pytest.fixture
async def bot(double: BotAPIDouble) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(double.base_url))
    telegram_bot = Bot(double.token, session=session)
    yield telegram_bot
    await telegram_bot.session.close()


@contextlib.asynccontextmanager
async def polling(dp: Dispatcher, bot: Bot) -> AsyncIterator[None]:
    """Run ``dp`` against the double; stop it with ``stop_polling`` (cancelling ``start_polling`` would leave
    aiogram's inner polling task running)."""
    task = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, close_bot_session=False, polling_timeout=5)
    )
    try:
        yield
    finally:
        if dp._running_lock.locked():
            await dp.stop_polling()
            await asyncio.wait_for(task, timeout=5)
        else:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class SendTelepathy(TelegramMethod[bool]):
    __returning__ = bool
    __api_method__ = "sendTelepathy"

    thought: str


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=text, callback_data=data)] for text, data in buttons]
    )


# ---------------------------------------------------------------------------------------------- polling


async def test_polling_receives_text_and_replies(double: BotAPIDouble, bot: Bot) -> None:
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer("<b>欢迎</b> 使用卡盟客服", parse_mode="HTML")

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.reply(f"收到: {message.text}")

    dp = Dispatcher()
    dp.include_router(router)
    user = double.create_user("小明", username="xiaoming")
    async with polling(dp, bot):
        command = double.user_sends_text(user, "/start")
        assert command["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
        welcome = await double.wait_for_bot_message(user.id)
        assert welcome["text"] == "欢迎 使用卡盟客服"
        assert welcome["entities"] == [{"type": "bold", "offset": 0, "length": 2}]
        assert welcome["from"]["id"] == double.bot_id
        assert welcome["chat"] == {
            "id": user.id,
            "type": "private",
            "first_name": "小明",
            "username": "xiaoming",
        }

        sent = double.user_sends_text(user, "订单 123 没到账")
        reply = await double.wait_for_bot_message(user.id)
        assert reply["text"] == "收到: 订单 123 没到账"
        assert reply["reply_to_message"]["message_id"] == sent["message_id"]
        assert sent["message_id"] < reply["message_id"]
        await double.wait_updates_consumed()

    assert double.pending_updates() == []
    get_updates = double.calls_to("getUpdates")
    assert get_updates and get_updates[-1].params.get("timeout") == 5
    assert [m["text"] for m in double.bot_messages(user.id)] == ["欢迎 使用卡盟客服", "收到: 订单 123 没到账"]


async def test_long_poll_answers_early_and_confirms_by_offset(double: BotAPIDouble, bot: Bot) -> None:
    user = double.create_user()
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.1)
    double.user_sends_text(user, "hi")
    updates = await poll
    assert time.monotonic() - started < 2
    assert [u.message.text for u in updates if u.message] == ["hi"]
    # not confirmed yet: returned again
    again = await bot.get_updates(timeout=0)
    assert [u.update_id for u in again] == [updates[0].update_id]
    # offset confirms it
    assert await bot.get_updates(offset=updates[0].update_id + 1, timeout=0) == []
    assert double.pending_updates() == []


async def test_allowed_updates_filter_new_updates(double: BotAPIDouble, bot: Bot) -> None:
    user = double.create_user()
    await bot.get_updates(timeout=0, allowed_updates=["callback_query"])
    double.user_sends_text(user, "filtered out")
    assert double.pending_updates() == []
    assert double.filtered_updates[-1]["message"]["text"] == "filtered out"
    await bot.get_updates(timeout=0, allowed_updates=[])  # [] = back to the default set
    double.user_sends_text(user, "kept")
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates if u.message] == ["kept"]


async def test_concurrent_get_updates_conflict(double: BotAPIDouble, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(bot.get_updates(timeout=0))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await first
    assert await second == []


async def test_duplicate_update_is_redelivered(double: BotAPIDouble, bot: Bot) -> None:
    seen: list[int] = []
    dp = Dispatcher()

    @dp.message()
    async def record(message: Message) -> None:
        seen.append(message.message_id)

    user = double.create_user()
    async with polling(dp, bot):
        double.user_sends_text(user, "pay")
        await double.wait_updates_consumed()
        original = double.update_log[-1]
        double.inject_raw_update(original)
        await double.wait_updates_consumed()
        for _ in range(100):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.01)
    assert seen == [original["message"]["message_id"]] * 2


# --------------------------------------------------------------------------------------------- callbacks


async def test_callback_query_answered_and_message_edited(double: BotAPIDouble, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.callback_query(F.data == "order:42")
    async def on_order(query: CallbackQuery) -> None:
        await query.answer("已处理")
        assert isinstance(query.message, Message)
        await query.message.edit_text("订单 42 已取消")

    @dp.callback_query(F.data == "slow")
    async def forgot_to_answer(query: CallbackQuery) -> None:
        return None

    user = double.create_user()
    menu = await bot.send_message(
        user.id, "选择订单", reply_markup=keyboard(("订单42", "order:42"), ("慢", "slow"))
    )
    double.skip_bot_messages(user.id)
    async with polling(dp, bot):
        query_id = double.user_presses_button(user, menu.message_id, "order:42")
        answer = await double.wait_for_callback_answer(query_id)
        assert answer.text == "已处理"
        assert double.callback_answered(query_id)
        edited = await double.wait_for_bot_message(user.id, lambda m: "edit_date" in m)
        assert edited["text"] == "订单 42 已取消"
        assert "reply_markup" not in edited  # editMessageText without reply_markup drops the keyboard

        with pytest.raises(ValueError, match="no button"):
            double.user_presses_button(user, menu.message_id, "slow")  # keyboard is gone now
        stale = double.user_presses_button(user, menu.message_id, "slow", strict=False)
        await double.wait_updates_consumed()
        await asyncio.sleep(0.1)
    assert not double.callback_answered(stale)
    assert [record.id for record in double.unanswered_callbacks()] == [stale]
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query_id)


async def test_callback_data_over_64_bytes_rejected(double: BotAPIDouble, bot: Bot) -> None:
    user = double.create_user()
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(user.id, "x", reply_markup=keyboard(("a", "订" * 22)))  # 66 bytes
    ok = await bot.send_message(user.id, "x", reply_markup=keyboard(("a", "d" * 64)))
    assert ok.reply_markup is not None


# ------------------------------------------------------------------------------------------------ errors


async def test_retry_after_surfaces_in_aiogram(double: BotAPIDouble, bot: Bot) -> None:
    user = double.create_user()
    double.fail_next("sendMessage", error_code=429, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(user.id, "hello")
    assert caught.value.retry_after == 3
    assert "Too Many Requests: retry after 3" in caught.value.message
    assert double.bot_messages(user.id) == []
    await bot.send_message(user.id, "hello")
    assert [call.status for call in double.calls_to("sendMessage")] == [429, 200]


async def test_server_errors_and_network_errors(double: BotAPIDouble, bot: Bot) -> None:
    user = double.create_user()
    double.fail_next("sendMessage", error_code=502, apply=True)
    with pytest.raises(TelegramServerError):
        await bot.send_message(user.id, "maybe sent")
    assert [m["text"] for m in double.bot_messages(user.id)] == ["maybe sent"]  # applied despite the 502
    double.disconnect_next("sendMessage")
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(user.id, "dropped")
    double.fail_next("*", error_code=500, count=2)
    with pytest.raises(TelegramServerError):
        await bot.get_me()
    with pytest.raises(TelegramServerError):
        await bot.get_chat(user.id)
    assert (await bot.get_me()).username == "kameng_cs_bot"


async def test_long_message_and_html_errors(double: BotAPIDouble, bot: Bot) -> None:
    user = double.create_user()
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(user.id, "长" * 4097)
    assert len((await bot.send_message(user.id, "长" * 4096)).text or "") == 4096
    # tags don't count: 4096 characters after entity parsing are fine
    assert await bot.send_message(user.id, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")

    with pytest.raises(TelegramBadRequest, match="can't parse entities: Can't find end tag"):
        await bot.send_message(user.id, "<b>未闭合", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match='Unsupported start tag "div" at byte offset 0'):
        await bot.send_message(user.id, "<div>x</div>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="Unsupported start tag"):
        await bot.send_message(user.id, "1 < 2", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match=r"Character '\.' is reserved"):
        await bot.send_message(user.id, "价格 1.5", parse_mode="MarkdownV2")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(user.id, "")
    with pytest.raises(TelegramBadRequest, match="text must be non-empty"):
        await bot.send_message(user.id, "<b> </b>", parse_mode="HTML")
    escaped = await bot.send_message(
        user.id, "1 &lt; 2 &amp; <a href='https://t.me/kameng'>链接</a>", parse_mode="HTML"
    )
    assert escaped.text == "1 < 2 & 链接"
    assert escaped.entities is not None
    assert escaped.entities[0].url == "https://t.me/kameng"


async def test_blocked_user_and_unknown_chat(double: BotAPIDouble, bot: Bot) -> None:
    user = double.create_user()
    await bot.send_message(user.id, "hi")
    double.user_blocks_bot(user)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(user.id, "still there?")
    assert double.pending_updates()[-1]["my_chat_member"]["new_chat_member"]["status"] == "kicked"
    stranger = double.create_user(started=False)
    with pytest.raises(TelegramForbiddenError, match="bot can't initiate conversation"):
        await bot.send_message(stranger.id, "hello")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(123, "nobody")


async def test_unknown_method_and_wrong_token(double: BotAPIDouble, bot: Bot) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{double.base_url}/bot{double.token}/sendTelepathy") as resp:
            assert resp.status == 404
            assert await resp.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found: method not found",
            }
        async with http.get(f"{double.base_url}/bot{double.token}/getme") as resp:  # case-insensitive
            assert (await resp.json())["result"]["is_bot"] is True
    with pytest.raises(TelegramNotFound, match="method not found"):
        await bot(SendTelepathy(thought="退款"))
    wrong = Bot(
        "987654321:WRONGtoken", session=AiohttpSession(api=TelegramAPIServer.from_base(double.base_url))
    )
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await wrong.get_me()
    finally:
        await wrong.session.close()


async def test_edit_errors(double: BotAPIDouble, bot: Bot) -> None:
    user = double.create_user()
    sent = await bot.send_message(user.id, "same", reply_markup=keyboard(("a", "a")))
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "same", chat_id=user.id, message_id=sent.message_id, reply_markup=keyboard(("a", "a"))
        )
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=user.id, message_id=999)
    own = double.user_sends_text(user, "mine")
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("x", chat_id=user.id, message_id=own["message_id"])
    await bot.edit_message_reply_markup(chat_id=user.id, message_id=sent.message_id, reply_markup=None)
    assert "reply_markup" not in (double.message(user.id, sent.message_id) or {})
    assert await bot.delete_message(user.id, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(user.id, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(user.id, "r", reply_parameters=ReplyParameters(message_id=12345))
    lenient = await bot.send_message(
        user.id, "r", reply_parameters=ReplyParameters(message_id=12345, allow_sending_without_reply=True)
    )
    assert lenient.reply_to_message is None
    assert [event.kind for event in double.bot_events(user.id)] == ["sent", "edited", "deleted", "sent"]


# ------------------------------------------------------------------------------------------------ topics


async def test_topics_in_private_chats_when_topic_mode_is_on(double: BotAPIDouble, bot: Bot) -> None:
    merchant = double.create_user("店主")
    with pytest.raises(TelegramBadRequest, match="not a forum"):
        await bot.create_forum_topic(merchant.id, "工单 ES1")  # topic mode off (the default)
    assert not (await bot.get_me()).has_topics_enabled
    double.private_topics = True
    assert (await bot.get_me()).has_topics_enabled
    topic = await bot.create_forum_topic(merchant.id, "工单 ES1")
    card = await bot.send_message(merchant.id, "订单卡片", message_thread_id=topic.message_thread_id)
    assert card.is_topic_message and card.message_thread_id == topic.message_thread_id
    answer = double.user_sends_text(merchant, "马上处理", message_thread_id=topic.message_thread_id)
    assert answer["is_topic_message"] is True and answer["message_thread_id"] == topic.message_thread_id
    outside = double.user_sends_text(merchant, "你好")
    assert "is_topic_message" not in outside
    assert await bot.edit_forum_topic(merchant.id, topic.message_thread_id, name="✅ 工单 ES1")
    assert [t.name for t in double.topics(merchant.id)] == ["✅ 工单 ES1"]
    with pytest.raises(TelegramBadRequest, match="only for supergroups"):
        await bot.close_forum_topic(merchant.id, topic.message_thread_id)  # supergroups only
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(merchant.id, "x", message_thread_id=999)


async def test_forum_topics_lifecycle(double: BotAPIDouble, bot: Bot) -> None:
    operator = double.create_user("客服A")
    group = double.create_supergroup("客服工作台", admins=[operator])
    topic = await bot.create_forum_topic(group.id, "工单 #1001 小明")
    assert [t.name for t in double.topics(group.id)] == ["工单 #1001 小明"]
    in_topic = await bot.send_message(group.id, "新工单", message_thread_id=topic.message_thread_id)
    assert in_topic.is_topic_message and in_topic.message_thread_id == topic.message_thread_id

    reply = double.user_sends_text(
        operator, "我来处理", chat=group, message_thread_id=topic.message_thread_id
    )
    assert reply["is_topic_message"] is True
    assert reply["reply_to_message"]["forum_topic_created"]["name"] == "工单 #1001 小明"

    await bot.edit_forum_topic(group.id, topic.message_thread_id, name="工单 #1001 已解决")
    await bot.close_forum_topic(group.id, topic.message_thread_id)
    assert double.topics(group.id)[0].is_closed
    with pytest.raises(TelegramBadRequest, match="TOPIC_NOT_MODIFIED"):
        await bot.close_forum_topic(group.id, topic.message_thread_id)
    await bot.delete_forum_topic(group.id, topic.message_thread_id)
    assert double.topics(group.id) == []
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(group.id, "还在吗", message_thread_id=topic.message_thread_id)
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(group.id, "general", message_thread_id=1)

    texts = [m.get("text") for m in double.bot_messages(group.id, thread_id=topic.message_thread_id)]
    assert texts == [None, "新工单", None, None]  # created, message, edited, closed service messages
    plain = double.create_supergroup("普通群", is_forum=False)
    with pytest.raises(TelegramBadRequest, match="the chat is not a forum"):
        await bot.create_forum_topic(plain.id, "x")


async def test_copy_and_forward_into_topic(double: BotAPIDouble, bot: Bot) -> None:
    customer = double.create_user("小红", hide_forwards=True)
    group = double.create_supergroup()
    topic = await bot.create_forum_topic(group.id, "小红")
    original = double.user_sends_text(customer, "充值没到账 https://shop.example.com/o/1")
    copied = await bot.copy_message(
        group.id, customer.id, original["message_id"], message_thread_id=topic.message_thread_id
    )
    copy = double.message(group.id, copied.message_id)
    assert copy is not None
    assert copy["text"] == original["text"]
    assert copy["entities"] == [{"type": "url", "offset": 6, "length": 28}]
    forwarded = await bot.forward_message(
        group.id, customer.id, original["message_id"], message_thread_id=topic.message_thread_id
    )
    assert forwarded.forward_origin is not None
    assert forwarded.forward_origin.type == "hidden_user"
    with pytest.raises(TelegramBadRequest, match="message to copy not found"):
        await bot.copy_message(group.id, customer.id, 999)


# ------------------------------------------------------------------------------------------------ webhook


async def test_webhook_delivery_with_secret_and_reply_in_response(double: BotAPIDouble, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message(Command("help"))
    async def help_handler(message: Message) -> SendMessage:
        return message.answer("帮助菜单")  # returned -> sent back in the webhook response body

    app = web.Application()
    SimpleRequestHandler(dp, bot, secret_token="s3cret-Token_1", handle_in_background=False).register(
        app, "/wh"
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        user = double.create_user()
        double.user_sends_text(user, "/help")  # queued before the webhook is set: delivered once it is
        assert await bot.set_webhook(f"http://127.0.0.1:{port}/wh", secret_token="s3cret-Token_1")
        reply = await double.wait_for_bot_message(user.id)
        assert reply["text"] == "帮助菜单"
        assert double.webhook_deliveries[0].status == 200
        assert double.webhook_deliveries[0].secret_token == "s3cret-Token_1"
        assert double.webhook_deliveries[0].response_method == "sendMessage"
        info = await bot.get_webhook_info()
        assert info.url.endswith("/wh") and info.pending_update_count == 0
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()

        # wrong secret: aiogram answers 401, the double retries like Telegram and records the error
        double.set_webhook_rate_limit = False
        await bot.set_webhook(f"http://127.0.0.1:{port}/wh", secret_token="wrong")
        double.user_sends_text(user, "/help")
        for _ in range(200):
            if len(double.webhook_deliveries) >= 4:
                break
            await asyncio.sleep(0.01)
        failed = double.webhook_deliveries[1:]
        assert [d.status for d in failed[:3]] == [401, 401, 401]
        assert [d.attempt for d in failed[:3]] == [1, 2, 3]
        assert (
            double.webhook_info["last_error_message"] == "Wrong response from the webhook: 401 Unauthorized"
        )
        assert double.webhook_info["pending_update_count"] == 1

        await bot.set_webhook(f"http://127.0.0.1:{port}/wh", secret_token="s3cret-Token_1")
        second = await double.wait_for_bot_message(user.id)
        assert second["text"] == "帮助菜单"
        assert double.webhook_deliveries[-1].status == 200
        await bot.delete_webhook()
        assert await bot.get_updates(timeout=0) == []
    finally:
        await runner.cleanup()


async def test_webhook_validation_and_rate_limit(double: BotAPIDouble, bot: Bot) -> None:
    assert await bot.set_webhook("http://127.0.0.1:9/x", drop_pending_updates=True)
    with pytest.raises(TelegramRetryAfter):  # Telegram allows one setWebhook with a URL per second
        await bot.set_webhook("http://127.0.0.1:9/y")
    double.set_webhook_rate_limit = False
    with pytest.raises(TelegramBadRequest, match="secret token contains unallowed characters"):
        await bot.set_webhook("http://127.0.0.1:9/x", secret_token="bad token!")
    with pytest.raises(TelegramBadRequest, match="invalid webhook URL specified"):
        await bot.set_webhook("ftp://example.com/hook")
    info = await bot.get_webhook_info()
    assert info.url == "http://127.0.0.1:9/x"
    assert info.max_connections == 40


# ------------------------------------------------------------------------------------ files and commands


async def test_photo_and_document_round_trip(double: BotAPIDouble, bot: Bot) -> None:
    user = double.create_user()
    png = BufferedInputFile(TINY_PNG, filename="qr.png")
    sent = await bot.send_photo(user.id, png, caption="<i>付款码</i>", parse_mode="HTML")
    assert sent.photo and sent.caption == "付款码"
    largest = sent.photo[-1]
    assert (largest.width, largest.height) == (4, 4)
    downloaded = await bot.download(largest.file_id)
    assert downloaded is not None and downloaded.read() == TINY_PNG

    again = await bot.send_photo(user.id, largest.file_id)  # by file_id
    assert again.photo
    with pytest.raises(TelegramBadRequest, match="can't use file of type Photo as Document"):
        await bot.send_document(user.id, largest.file_id)

    receipt = double.user_sends_document(user, b"%PDF-1.4 receipt", "receipt.pdf")
    document = receipt["document"]
    assert document["mime_type"] == "application/pdf"
    file = await bot.get_file(document["file_id"])
    assert file.file_path and file.file_path.endswith(".pdf")
    data = await bot.download_file(file.file_path)
    assert data is not None and data.read() == b"%PDF-1.4 receipt"
    doc = await bot.send_document(user.id, BufferedInputFile(b"a,b\n1,2\n", filename="orders.csv"))
    assert doc.document is not None and doc.document.file_name == "orders.csv"


async def test_commands_per_scope_and_language(double: BotAPIDouble, bot: Bot) -> None:
    user = double.create_user(language_code="en")
    zh = [
        BotCommand(command="start", description="开始"),
        BotCommand(command="order", description="查询订单"),
    ]
    en = [BotCommand(command="start", description="Start"), BotCommand(command="order", description="Orders")]
    assert await bot.set_my_commands(zh, scope=BotCommandScopeAllPrivateChats())
    assert await bot.set_my_commands(en, scope=BotCommandScopeAllPrivateChats(), language_code="en")
    assert [c.description for c in await bot.get_my_commands(scope=BotCommandScopeAllPrivateChats())] == [
        "开始",
        "查询订单",
    ]
    assert await bot.get_my_commands() == []  # default scope: nothing set
    assert double.commands("all_private_chats", "en") == [
        {"command": "start", "description": "Start"},
        {"command": "order", "description": "Orders"},
    ]
    assert double.commands(BotCommandScopeAllPrivateChats()) == double.commands({"type": "all_private_chats"})
    assert double.effective_commands(user)[0]["description"] == "Start"
    await bot.set_my_commands(
        [BotCommand(command="vip", description="VIP")], scope=BotCommandScopeChat(chat_id=user.id)
    )
    assert double.effective_commands(user) == [{"command": "vip", "description": "VIP"}]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Name", description="x")])


# --------------------------------------------------------------------------------------- inspection API


async def test_wait_cursor_never_returns_a_message_twice(double: BotAPIDouble, bot: Bot) -> None:
    user = double.create_user()
    for text in ("A", "B", "C"):
        await bot.send_message(user.id, text)
    assert (await double.wait_for_bot_message(user.id, lambda m: m["text"] == "B"))["text"] == "B"
    assert (await double.wait_for_bot_message(user.id))["text"] == "C"  # the cursor moved past B
    with pytest.raises(TimeoutError, match="no new matching bot message"):
        await double.wait_for_bot_message(user.id, timeout=0.1)

    later = asyncio.create_task(double.wait_for_bot_message(user.id, timeout=2))
    await asyncio.sleep(0.05)
    await bot.send_message(user.id, "D")
    assert (await later)["text"] == "D"
    call = await double.wait_for_call("sendMessage", lambda c: c.params["text"] == "D")
    assert call.params["chat_id"] == user.id and call.ok


async def test_flood_control_and_rate_measurement(double: BotAPIDouble, bot: Bot) -> None:
    user = double.create_user()
    double.enable_flood_control(FloodLimits(per_chat=(1, 1.0), burst=2))
    for text in ("1", "2", "3"):
        await bot.send_message(user.id, text)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(user.id, "4")
    assert caught.value.retry_after >= 1
    assert double.max_messages_in_window(user.id, window=1.0) == 3
    assert len(double.flood_violations) == 1
    other = double.create_user()
    await bot.send_message(other.id, "other chat is fine")


async def test_group_privacy_mode(double: BotAPIDouble, bot: Bot) -> None:
    member = double.create_user()
    group = double.create_supergroup(is_forum=False, bot_is_admin=False, members=[member])
    double.user_sends_text(member, "随便聊聊", chat=group)
    double.user_sends_text(member, "/status@kameng_cs_bot", chat=group)
    double.user_sends_text(member, "@kameng_cs_bot 在吗", chat=group)
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates if u.message] == ["/status@kameng_cs_bot", "@kameng_cs_bot 在吗"]
    member_info = await bot.get_chat_member(group.id, member.id)
    assert member_info.status == "member"
    chat = await bot.get_chat(group.id)
    assert chat.type == "supergroup" and chat.title == "客服工作台"


async def test_user_photo_and_edit_reach_handlers(double: BotAPIDouble, bot: Bot) -> None:
    dp = Dispatcher()
    downloaded: list[bytes] = []

    @dp.message(F.photo)
    async def on_photo(message: Message) -> None:
        assert message.photo
        data = await bot.download(message.photo[-1].file_id)
        assert data is not None
        downloaded.append(data.read())
        await message.answer(f"收到截图: {message.caption}")

    @dp.edited_message()
    async def on_edit(message: Message) -> None:
        await message.answer(f"已更新: {message.text}")

    user = double.create_user()
    async with polling(dp, bot):
        double.user_sends_photo(user, caption="支付截图 #订单1")
        assert (await double.wait_for_bot_message(user.id))["text"] == "收到截图: 支付截图 #订单1"
        original = double.user_sends_text(user, "账号 abc")
        edited = double.user_edits_message(user, original, "账号 abd")
        assert edited["edit_date"] >= edited["date"]
        assert (await double.wait_for_bot_message(user.id))["text"] == "已更新: 账号 abd"
    assert downloaded == [TINY_PNG]
