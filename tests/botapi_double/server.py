"""An in-memory Telegram that speaks the Bot API HTTP protocol on loopback.

Point aiogram at it with ``AiohttpSession(api=TelegramAPIServer.from_base(double.base_url))``. The double
keeps users, chats, messages, forum topics, commands and the webhook configuration; tests drive the
"human" side through the Python methods (``user_sends_text``, ``user_presses_button``...) and inspect what
the bot did (``bot_messages``, ``wait_for_bot_message``, ``calls``...). Everything runs in the test's event
loop, so the control methods are plain (non-async) calls, except the ``wait_*`` helpers.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import math
import mimetypes
import re
import secrets
import struct
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from aiohttp import web

from .formatting import FormattingError, check_link, detect_entities, format_text
from .models import (
    CHAT_ACTIONS,
    TOPIC_ICON_COLORS,
    ApiCall,
    ApiError,
    BotEvent,
    CallbackRecord,
    ChatType,
    FakeChat,
    FakeUser,
    Fault,
    FloodLimits,
    ForumTopicState,
    JsonDict,
    MemberStatus,
    StoredFile,
    UploadedFile,
    WebhookConfig,
    WebhookDelivery,
    bad_request,
)

__all__ = ["DEFAULT_TOKEN", "TINY_PNG", "BotAPIDouble"]

DEFAULT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
LONG_POLL_MAX_TIMEOUT = 50
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "message_reaction",
        "message_reaction_count",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)

# How request fields are decoded (the wire format is strings; complex values are JSON strings).
_INT_FIELDS = frozenset(
    {
        "chat_id",
        "from_chat_id",
        "message_id",
        "message_thread_id",
        "reply_to_message_id",
        "offset",
        "limit",
        "timeout",
        "max_connections",
        "cache_time",
        "user_id",
        "icon_color",
        "duration",
        "width",
        "height",
        "direct_messages_topic_id",
        "until_date",
    }
)
_BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "allow_sending_without_reply",
        "drop_pending_updates",
        "show_alert",
        "disable_web_page_preview",
        "has_spoiler",
        "disable_content_type_detection",
        "show_caption_above_media",
        "allow_paid_broadcast",
        "supports_streaming",
        "remove_caption",
    }
)
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "reply_parameters",
        "allowed_updates",
        "commands",
        "scope",
        "link_preview_options",
        "media",
        "menu_button",
        "message_ids",
        "reaction",
        "rights",
    }
)

# Methods that produce messages: subject to flood control and counted by ``max_messages_in_window``.
_MESSAGE_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "sendvideo",
        "sendaudio",
        "sendvoice",
        "sendanimation",
        "sendsticker",
        "copymessage",
        "forwardmessage",
        "copymessages",
        "forwardmessages",
    }
)

_MEDIA_TD_NAMES = {
    "photo": "Photo",
    "document": "Document",
    "video": "Video",
    "audio": "Audio",
    "voice": "VoiceNote",
    "animation": "Animation",
    "sticker": "Sticker",
}
_MEDIA_DEFAULT_MIME = {
    "photo": "image/jpeg",
    "video": "video/mp4",
    "audio": "audio/mpeg",
    "voice": "audio/ogg",
    "animation": "video/mp4",
    "sticker": "image/webp",
}
_CONTENT_KEYS = (
    "text",
    "entities",
    "link_preview_options",
    "photo",
    "document",
    "video",
    "audio",
    "voice",
    "animation",
    "sticker",
    "caption",
    "caption_entities",
    "show_caption_above_media",
    "has_media_spoiler",
    "contact",
    "location",
    "venue",
    "poll",
    "dice",
    "video_note",
)
_SERVICE_KEYS = (
    "forum_topic_created",
    "forum_topic_edited",
    "forum_topic_closed",
    "forum_topic_reopened",
    "new_chat_members",
    "left_chat_member",
    "pinned_message",
    "new_chat_title",
    "group_chat_created",
)
_BOT_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-]*$")
_LANGUAGE_RE = re.compile(r"^([a-z]{2})?$")

Predicate = Callable[[JsonDict], bool]
UserRef = FakeUser | int
ChatRef = FakeChat | int | str
MessageRef = Mapping[str, Any] | int
ScopeRef = Mapping[str, Any] | str | None | Any


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x80\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


TINY_PNG = _png(4, 4)
"""A valid 4x4 PNG, the default content of ``user_sends_photo``."""


def _image_size(content: bytes) -> tuple[int, int] | None:
    if content.startswith(b"\x89PNG\r\n\x1a\n") and len(content) >= 24:
        width, height = struct.unpack(">II", content[16:24])
        return int(width), int(height)
    if content.startswith(b"\xff\xd8"):
        pos = 2
        while pos + 9 < len(content):
            if content[pos] != 0xFF:
                pos += 1
                continue
            marker = content[pos + 1]
            if marker in (0xC0, 0xC1, 0xC2):
                height, width = struct.unpack(">HH", content[pos + 5 : pos + 9])
                return int(width), int(height)
            seg_len = struct.unpack(">H", content[pos + 2 : pos + 4])[0]
            pos += 2 + seg_len
    return None


class _Notifier:
    """Wakes every coroutine waiting on it."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def notify(self) -> None:
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    async def wait(self, timeout: float | None) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        try:
            await asyncio.wait({fut}, timeout=timeout)
        finally:
            self._waiters.discard(fut)
            if not fut.done():
                fut.cancel()


@dataclass
class _QueuedUpdate:
    update_id: int
    update: JsonDict
    delivered: bool = False
    force: bool = False
    attempts: int = 0
    next_try_at: float = 0.0
    delay: float = 1.0


class _Disconnect(Exception):
    """Raised to make the server drop the connection without answering."""


class _Params:
    """Request parameters, decoded from strings, with Bot API-like validation errors."""

    def __init__(self, values: Mapping[str, Any], files: Mapping[str, UploadedFile]) -> None:
        self.values: JsonDict = dict(values)
        self.files = dict(files)

    def has(self, name: str) -> bool:
        value = self.values.get(name)
        return value is not None and value != ""

    def raw(self, name: str) -> Any:
        return self.values.get(name)

    def string(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False)

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise bad_request(f'field "{name}" must be a valid Number')

    def boolean(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1")
        return bool(value)

    def json_value(self, name: str, what: str) -> Any:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {what} JSON object") from None
        return value

    def chat_ref(self, name: str = "chat_id") -> int | str:
        value = self.values.get(name)
        if value is None or value == "":
            raise bad_request(f"{name} is empty")
        if isinstance(value, bool):
            raise bad_request("chat not found")
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        return text


def _decode_field(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if name in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            return value
    if name in _BOOL_FIELDS:
        return value.strip().lower() in ("true", "1")
    if name in _INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value
    return value


class BotAPIDouble:
    """A faithful in-memory Telegram Bot API server for tests (see the module docstring)."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "kameng_cs_bot",
        bot_first_name: str = "卡盟客服",
        host: str = "127.0.0.1",
        port: int = 0,
        privacy_mode: bool = True,
        private_topics: bool = False,
        webhook_retry_scale: float = 0.05,
        webhook_timeout: float = 10.0,
        webhook_max_attempts: int | None = None,
        require_https_webhook: bool = False,
        set_webhook_rate_limit: bool = True,
        callback_answer_timeout: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """
        :param privacy_mode: in groups where the bot is not an admin, deliver only commands, replies to the
            bot and mentions of it (like Telegram's default privacy mode).
        :param private_topics: forum topic mode in private chats (Bot API 9.3, enabled in @BotFather):
            ``getMe`` says ``has_topics_enabled``; createForumTopic, editForumTopic and deleteForumTopic
            work with a user's chat id and messages there carry ``message_thread_id``/``is_topic_message``.
            Closing and reopening stay supergroup-only.
        :param webhook_retry_scale: Telegram retries a failed webhook delivery at once, then after 2, 4, 8...
            seconds (capped at 60); the delays are multiplied by this factor to keep tests fast.
        :param webhook_max_attempts: drop an update after this many failed deliveries (None: never; Telegram
            gives up after about a day).
        :param require_https_webhook: reject non-HTTPS webhook URLs like Telegram (off, for loopback tests).
        :param set_webhook_rate_limit: like Telegram, answer 429 (retry after 1) to a setWebhook with a URL
            less than a second after the previous one.
        :param callback_answer_timeout: seconds after which answerCallbackQuery fails with "query is too old"
            (Telegram: about 15 s); None disables the check.
        :param clock: source of ``date`` fields (Unix time).
        """
        bot_id_text = token.split(":", 1)[0]
        if not bot_id_text.isdigit():
            raise ValueError("token must look like '<bot id>:<secret>'")
        self.token = token
        self.host = host
        self.port = port
        self.privacy_mode = privacy_mode
        self.private_topics = private_topics
        self.webhook_retry_scale = webhook_retry_scale
        self.webhook_timeout = webhook_timeout
        self.webhook_max_attempts = webhook_max_attempts
        self.require_https_webhook = require_https_webhook
        self.set_webhook_rate_limit = set_webhook_rate_limit
        self.callback_answer_timeout = callback_answer_timeout
        self._clock = clock

        self.bot = FakeUser(
            id=int(bot_id_text), first_name=bot_first_name, username=bot_username, is_bot=True
        )
        self.users: dict[int, FakeUser] = {}
        self.chats: dict[int, FakeChat] = {}
        self.files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._file_counter = 0

        self._updates: list[_QueuedUpdate] = []
        self._next_update_id = 100_000_001
        self._allowed_updates: frozenset[str] | None = None
        self.update_log: list[JsonDict] = []
        """Every update created (also those later filtered out or confirmed)."""
        self.filtered_updates: list[JsonDict] = []
        """Updates not queued because ``allowed_updates`` excluded their type (as Telegram does)."""
        self._updates_changed = _Notifier()
        self._poll_generation = 0

        self.webhook = WebhookConfig()
        self.webhook_deliveries: list[WebhookDelivery] = []
        self._last_set_webhook_at = -math.inf
        self._webhook_task: asyncio.Task[None] | None = None
        self._webhook_session: aiohttp.ClientSession | None = None

        self._calls: list[ApiCall] = []
        self._call_seq = 0
        self._calls_changed = _Notifier()
        self._call_cursors: dict[str, int] = {}
        self._consumed_calls: set[int] = set()

        self._events: list[BotEvent] = []
        self._events_by_chat: dict[int, list[BotEvent]] = {}
        self._event_seq = 0
        self._bot_activity = _Notifier()
        self._cursors: dict[tuple[int, int | None], int] = {}
        self._consumed_events: set[int] = set()

        self.callbacks: dict[str, CallbackRecord] = {}
        self._callbacks_changed = _Notifier()
        self.chat_actions: list[tuple[int, str, int | None, float]] = []
        """(chat_id, action, message_thread_id, monotonic time) for every sendChatAction."""

        self._commands: dict[tuple[tuple[Any, ...], str], list[JsonDict]] = {}
        self._bot_texts: dict[tuple[str, str], str] = {}
        self._default_menu_button: JsonDict = {"type": "commands"}

        self._faults: list[Fault] = []
        self.flood_limits: FloodLimits | None = None
        self._flood_history: deque[tuple[float, int, bool]] = deque()
        self.flood_violations: list[ApiCall] = []

        self._next_user_id = 7_000_000_001
        self._next_supergroup_id = 1_002_000_000_001
        self._next_group_id = 4_000_000_001

        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._closing = False
        self._methods = self._build_method_table()

    # ============================================================================================ lifecycle

    async def start(self) -> None:
        if self._runner is not None:
            return
        self._closing = False
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown_path)
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner, self._site = runner, site
        self.port = int(runner.addresses[0][1])
        self._webhook_session = aiohttp.ClientSession()
        self._webhook_task = asyncio.create_task(self._webhook_loop(), name="botapi-double-webhook")

    async def stop(self) -> None:
        self._closing = True
        self._updates_changed.notify()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._webhook_task
            self._webhook_task = None
        if self._webhook_session is not None:
            await self._webhook_session.close()
            self._webhook_session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None

    async def __aenter__(self) -> BotAPIDouble:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: give it to ``TelegramAPIServer.from_base``."""
        if self._runner is None:
            raise RuntimeError("BotAPIDouble is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def bot_id(self) -> int:
        return self.bot.id

    @property
    def bot_user(self) -> JsonDict:
        return self.bot.to_api()

    # ================================================================================================ HTTP

    async def _handle_unknown_path(self, request: web.Request) -> web.StreamResponse:
        return self._json_response(404, {"ok": False, "error_code": 404, "description": "Not Found"})

    @staticmethod
    def _json_response(status: int, body: JsonDict) -> web.Response:
        return web.Response(
            status=status,
            text=json.dumps(body, ensure_ascii=False),
            content_type="application/json",
        )

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return self._json_response(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        try:
            values, files = await self._read_request(request)
        except ApiError as exc:
            return self._json_response(exc.error_code, exc.to_json())
        try:
            status, body, _ = await self._execute(request.match_info["method"], values, files, source="http")
        except _Disconnect:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        return self._json_response(status, body)

    async def _read_request(self, request: web.Request) -> tuple[JsonDict, dict[str, UploadedFile]]:
        values: JsonDict = {key: request.query[key] for key in request.query}
        files: dict[str, UploadedFile] = {}
        if request.method != "POST" or not request.can_read_body:
            return values, files
        content_type = request.content_type
        if content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise bad_request("can't parse JSON encoded request") from None
            if not isinstance(body, dict):
                raise bad_request("JSON object expected")
            values.update(body)
            return values, files
        if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = UploadedFile(key, value.filename, value.content_type, value.file.read())
                else:
                    values[key] = value
        return values, files

    async def _execute(
        self,
        method_name: str,
        values: Mapping[str, Any],
        files: Mapping[str, UploadedFile],
        *,
        source: Literal["http", "webhook_response"],
    ) -> tuple[int, JsonDict, ApiCall]:
        lname = method_name.lower()
        entry = self._methods.get(lname)
        canonical = entry[0] if entry else method_name
        decoded = {key: _decode_field(key, value) for key, value in values.items()}
        self._call_seq += 1
        call = ApiCall(
            seq=self._call_seq,
            method=canonical,
            params=decoded,
            files=dict(files),
            at=time.monotonic(),
            wall_time=time.time(),
            source=source,
        )
        self._calls.append(call)
        try:
            if entry is None:
                raise ApiError(404, "Not Found: method not found")
            params = _Params(decoded, files)
            fault = self._take_fault(lname)
            if fault is not None:
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.disconnect:
                    call.status, call.injected = 0, True
                    call.response = {"ok": False, "description": "connection dropped by fault injection"}
                    raise _Disconnect()
                if fault.error_code:
                    call.injected = True
                    if fault.apply:
                        with contextlib.suppress(ApiError):
                            await self._run_handler(entry[1], params)
                    raise fault.to_error()
            flood_key = self._check_flood(call, params) if lname in _MESSAGE_METHODS else None
            result = await self._run_handler(entry[1], params)
            if flood_key is not None:
                self._flood_history.append((time.monotonic(), *flood_key))
            status, body = 200, {"ok": True, "result": result}
            if isinstance(result, _WithDescription):
                body = {"ok": True, "result": result.result, "description": result.description}
        except ApiError as exc:
            status, body = exc.error_code, exc.to_json()
        except asyncio.CancelledError:
            call.response = {
                "ok": False,
                "description": "request cancelled: the client closed the connection",
            }
            raise
        call.status, call.response = status, body
        self._calls_changed.notify()
        return status, body, call

    @staticmethod
    async def _run_handler(handler: Callable[[_Params], Any], params: _Params) -> Any:
        result = handler(params)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return self._json_response(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        stored = self._files_by_path.get(request.match_info["path"])
        if stored is None:
            return self._json_response(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        return web.Response(
            body=stored.content, content_type=stored.mime_type or "application/octet-stream", charset=None
        )

    # ========================================================================================== method table

    def _build_method_table(self) -> dict[str, tuple[str, Callable[[_Params], Any]]]:
        handlers: dict[str, Callable[[_Params], Any]] = {
            "getMe": self._m_get_me,
            "logOut": lambda p: True,
            "close": lambda p: True,
            "getUpdates": self._m_get_updates,
            "setWebhook": self._m_set_webhook,
            "deleteWebhook": self._m_delete_webhook,
            "getWebhookInfo": lambda p: self.webhook_info,
            "sendMessage": self._m_send_message,
            "forwardMessage": self._m_forward_message,
            "forwardMessages": self._m_forward_messages,
            "copyMessage": self._m_copy_message,
            "copyMessages": self._m_copy_messages,
            "sendPhoto": lambda p: self._m_send_media(p, "photo"),
            "sendDocument": lambda p: self._m_send_media(p, "document"),
            "sendVideo": lambda p: self._m_send_media(p, "video"),
            "sendAudio": lambda p: self._m_send_media(p, "audio"),
            "sendVoice": lambda p: self._m_send_media(p, "voice"),
            "sendAnimation": lambda p: self._m_send_media(p, "animation"),
            "sendSticker": lambda p: self._m_send_media(p, "sticker"),
            "sendChatAction": self._m_send_chat_action,
            "editMessageText": self._m_edit_message_text,
            "editMessageCaption": self._m_edit_message_caption,
            "editMessageReplyMarkup": self._m_edit_message_reply_markup,
            "deleteMessage": self._m_delete_message,
            "deleteMessages": self._m_delete_messages,
            "answerCallbackQuery": self._m_answer_callback_query,
            "setMyCommands": self._m_set_my_commands,
            "getMyCommands": self._m_get_my_commands,
            "deleteMyCommands": self._m_delete_my_commands,
            "setMyName": lambda p: self._set_bot_text(p, "name"),
            "getMyName": lambda p: self._get_bot_text(p, "name"),
            "setMyDescription": lambda p: self._set_bot_text(p, "description"),
            "getMyDescription": lambda p: self._get_bot_text(p, "description"),
            "setMyShortDescription": lambda p: self._set_bot_text(p, "short_description"),
            "getMyShortDescription": lambda p: self._get_bot_text(p, "short_description"),
            "setChatMenuButton": self._m_set_chat_menu_button,
            "getChatMenuButton": self._m_get_chat_menu_button,
            "getChat": self._m_get_chat,
            "getChatMember": self._m_get_chat_member,
            "getChatAdministrators": self._m_get_chat_administrators,
            "getChatMemberCount": self._m_get_chat_member_count,
            "createForumTopic": self._m_create_forum_topic,
            "editForumTopic": self._m_edit_forum_topic,
            "closeForumTopic": lambda p: self._m_set_topic_closed(p, True),
            "reopenForumTopic": lambda p: self._m_set_topic_closed(p, False),
            "deleteForumTopic": self._m_delete_forum_topic,
            "unpinAllForumTopicMessages": self._m_unpin_all_forum_topic_messages,
            "getForumTopicIconStickers": lambda p: [],
            "getFile": self._m_get_file,
        }
        return {name.lower(): (name, handler) for name, handler in handlers.items()}

    @property
    def supported_methods(self) -> list[str]:
        return sorted(entry[0] for entry in self._methods.values())

    # ============================================================================================ helpers

    def _now(self) -> int:
        return int(self._clock())

    def _user(self, user: UserRef) -> FakeUser:
        user_id = user.id if isinstance(user, FakeUser) else int(user)
        try:
            return self.users[user_id]
        except KeyError:
            raise KeyError(f"unknown user {user_id}; create it with create_user()") from None

    def _chat(self, chat: ChatRef) -> FakeChat:
        if isinstance(chat, FakeChat):
            return chat
        found = self._find_chat(chat)
        if found is None:
            raise KeyError(f"unknown chat {chat!r}")
        return found

    def _find_chat(self, ref: int | str) -> FakeChat | None:
        if isinstance(ref, int):
            return self.chats.get(ref)
        name = ref.lstrip("@").lower()
        for chat in self.chats.values():
            if chat.username and chat.username.lower() == name and ref.startswith("@"):
                return chat
        return None

    def _lookup_user_json(self, user_id: int) -> JsonDict | None:
        if user_id == self.bot.id:
            return self.bot.to_api()
        user = self.users.get(user_id)
        return user.to_api() if user else None

    def _resolve_chat(self, ref: int | str, *, write: bool = False) -> FakeChat:
        chat = self._find_chat(ref)
        if chat is None:
            raise bad_request("chat not found")
        if chat.is_private:
            if write and chat.blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if write and not chat.started:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        else:
            kind = "supergroup" if chat.type == "supergroup" else chat.type
            if chat.bot_status == "kicked":
                raise ApiError(403, f"Forbidden: bot was kicked from the {kind} chat")
            if chat.bot_status == "left":
                raise ApiError(403, f"Forbidden: bot is not a member of the {kind} chat")
        return chat

    def _bot_is_admin(self, chat: FakeChat) -> bool:
        return chat.bot_status in ("administrator", "creator")

    def _thread_of(self, message: Mapping[str, Any]) -> int | None:
        thread = message.get("message_thread_id")
        return int(thread) if isinstance(thread, int) and message.get("is_topic_message") else None

    def _has_topics(self, chat: FakeChat) -> bool:
        return chat.is_forum or (chat.is_private and self.private_topics)

    def _check_thread(self, chat: FakeChat, thread_id: int | None) -> int | None:
        if not thread_id:
            return None
        if self._has_topics(chat):
            topic = chat.topics.get(thread_id)
            if topic is None or topic.is_deleted:
                raise bad_request("message thread not found")
            if topic.is_closed and not (self._bot_is_admin(chat) and chat.bot_can_manage_topics):
                raise bad_request("TOPIC_CLOSED")
            return thread_id
        if thread_id in chat.messages:
            return thread_id
        raise bad_request("message thread not found")

    @staticmethod
    def _strip_reply(message: Mapping[str, Any]) -> JsonDict:
        return {key: value for key, value in message.items() if key != "reply_to_message"}

    def _store_message(
        self,
        chat: FakeChat,
        sender: JsonDict | None,
        content: Mapping[str, Any],
        *,
        thread_id: int | None = None,
        reply_to: Mapping[str, Any] | None = None,
        message_id: int | None = None,
    ) -> JsonDict:
        mid = message_id if message_id is not None else chat.allocate_message_id()
        message: JsonDict = {"message_id": mid}
        if sender is not None:
            message["from"] = sender
        message["chat"] = chat.to_api()
        message["date"] = self._now()
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            if chat.is_forum or (chat.is_private and thread_id in chat.topics):
                message["is_topic_message"] = True
                if reply_to is None:
                    root = chat.messages.get(thread_id)
                    if root is not None:
                        reply_to = root
        if reply_to is not None:
            message["reply_to_message"] = self._strip_reply(reply_to)
        message.update(content)
        chat.messages[mid] = message
        return message

    def _record_event(
        self,
        kind: Literal["sent", "edited", "deleted"],
        chat: FakeChat,
        message_id: int,
        message: JsonDict | None,
        method: str,
        params: JsonDict | None = None,
        thread_id: int | None = None,
    ) -> None:
        self._event_seq += 1
        snapshot = json.loads(json.dumps(message)) if message is not None else None
        if message is not None:
            thread_id = self._thread_of(message)
        event = BotEvent(
            seq=self._event_seq,
            kind=kind,
            chat_id=chat.id,
            message_id=message_id,
            thread_id=thread_id,
            message=snapshot,
            method=method,
            at=time.monotonic(),
            params=dict(params or {}),
        )
        self._events.append(event)
        self._events_by_chat.setdefault(chat.id, []).append(event)
        self._bot_activity.notify()

    # ---------------------------------------------------------------------------------- update queue

    def _fresh_update_id(self) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        return update_id

    @staticmethod
    def _update_type(update: Mapping[str, Any]) -> str:
        for key in update:
            if key != "update_id":
                return key
        return ""

    def _is_allowed(self, update_type: str) -> bool:
        if self._allowed_updates is None:
            return update_type not in DEFAULT_EXCLUDED_UPDATES
        return update_type in self._allowed_updates

    def _enqueue(self, body: JsonDict, *, force: bool = False, bypass_filter: bool = False) -> JsonDict:
        update: JsonDict
        if "update_id" in body:
            update = dict(body)
            self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
        else:
            update = {"update_id": self._fresh_update_id(), **body}
        self.update_log.append(update)
        if not bypass_filter and not self._is_allowed(self._update_type(update)):
            self.filtered_updates.append(update)
            return update
        self._updates.append(_QueuedUpdate(int(update["update_id"]), update, force=force))
        self._updates_changed.notify()
        return update

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            keep = -offset
            self._updates = self._updates[-keep:] if keep else []
            return
        self._updates = [
            entry
            for entry in self._updates
            if entry.update_id >= offset or (entry.force and not entry.delivered)
        ]

    def _update_set_allowed(self, params: _Params) -> None:
        if not params.has("allowed_updates"):
            return
        raw = params.raw("allowed_updates")
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                return
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            return
        chosen = frozenset(item.lower() for item in raw) & UPDATE_TYPES
        self._allowed_updates = chosen or None

    # ============================================================================================= methods

    def _m_get_me(self, params: _Params) -> JsonDict:
        return {
            **self.bot.to_api(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
            "has_topics_enabled": self.private_topics,
        }

    async def _m_get_updates(self, params: _Params) -> list[JsonDict]:
        if self.webhook.url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = params.integer("offset", 0) or 0
        limit = min(max(params.integer("limit", 100) or 100, 1), 100)
        timeout = min(max(params.integer("timeout", 0) or 0, 0), LONG_POLL_MAX_TIMEOUT)
        self._update_set_allowed(params)
        if offset:
            self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        self._updates_changed.notify()  # terminates an older long poll
        deadline = time.monotonic() + timeout
        while True:
            if self.webhook.url:
                raise ApiError(409, "Conflict: terminated by setWebhook request")
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is "
                    "running",
                )
            batch = self._updates[:limit]
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0 or self._closing:
                break
            await self._updates_changed.wait(remaining)
        for entry in batch:
            entry.delivered = True
        return [entry.update for entry in batch]

    def _m_set_webhook(self, params: _Params) -> _WithDescription:
        url = params.string("url", "") or ""
        if not url:
            return self._m_delete_webhook(params)
        now = time.monotonic()
        if self.set_webhook_rate_limit and now < self._last_set_webhook_at + 1:
            raise ApiError(429, "Too Many Requests: retry after 1", {"retry_after": 1})
        self._last_set_webhook_at = now
        match = re.match(r"^(https?)://[^/\s?#]+", url, re.I)
        if not match:
            raise bad_request("invalid webhook URL specified")
        if self.require_https_webhook and match.group(1).lower() != "https":
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.string("secret_token", "") or ""
        if len(secret) > 256:
            raise bad_request("secret token is too long")
        if not _SECRET_TOKEN_RE.match(secret):
            raise bad_request("secret token contains unallowed characters")
        max_connections = min(max(params.integer("max_connections", 40) or 40, 1), 100)
        ip_address = params.string("ip_address") or None
        drop = params.boolean("drop_pending_updates")
        same = (
            self.webhook.url == url
            and (self.webhook.secret_token or "") == secret
            and self.webhook.max_connections == max_connections
            and self.webhook.ip_address == ip_address
            and not drop
        )
        self._update_set_allowed(params)
        if same:
            return _WithDescription(True, "Webhook is already set")
        if drop:
            self._updates.clear()
        self.webhook = WebhookConfig(
            url=url,
            secret_token=secret or None,
            max_connections=max_connections,
            ip_address=ip_address,
            has_custom_certificate="certificate" in params.files or params.has("certificate"),
        )
        for entry in self._updates:
            entry.attempts, entry.next_try_at, entry.delay = 0, 0.0, 1.0
        self._poll_generation += 1
        self._updates_changed.notify()
        return _WithDescription(True, "Webhook was set")

    def _m_delete_webhook(self, params: _Params) -> _WithDescription:
        if params.boolean("drop_pending_updates"):
            self._updates.clear()
        if not self.webhook.url:
            return _WithDescription(True, "Webhook is already deleted")
        self.webhook = WebhookConfig()
        self._updates_changed.notify()
        return _WithDescription(True, "Webhook was deleted")

    @property
    def webhook_info(self) -> JsonDict:
        """What getWebhookInfo returns right now."""
        info: JsonDict = {
            "url": self.webhook.url,
            "has_custom_certificate": self.webhook.has_custom_certificate,
            "pending_update_count": len(self._updates),
        }
        if self.webhook.url:
            info["max_connections"] = self.webhook.max_connections
            if self.webhook.ip_address:
                info["ip_address"] = self.webhook.ip_address
        if self.webhook.last_error_date is not None:
            info["last_error_date"] = self.webhook.last_error_date
            info["last_error_message"] = self.webhook.last_error_message
        if self._allowed_updates is not None:
            info["allowed_updates"] = sorted(self._allowed_updates)
        return info

    # ---------------------------------------------------------------------------------------- sending

    def _format(
        self, params: _Params, text_field: str, entities_field: str, *, caption: bool = False
    ) -> tuple[str, list[JsonDict]]:
        text = params.string(text_field, "") or ""
        if not text and not caption:
            raise bad_request("message text is empty")
        if not text:
            return "", []
        entities = params.json_value(entities_field, "entities")
        if entities is not None and not isinstance(entities, list):
            raise bad_request("can't parse entities JSON object")
        try:
            result, ents = format_text(
                text, params.string("parse_mode"), entities, users=self._lookup_user_json, allow_empty=caption
            )
        except FormattingError as exc:
            raise bad_request(str(exc)) from None
        if caption:
            if len(result) > MAX_CAPTION_LENGTH:
                raise bad_request("message caption is too long")
        elif len(result) > MAX_TEXT_LENGTH:
            raise bad_request("message is too long")
        return result, ents

    def _parse_reply_markup(
        self, params: _Params, chat: FakeChat | None, *, inline_only: bool = False
    ) -> Any:
        """Validate reply_markup; return the inline keyboard to store on the message (or None).

        Also applies reply keyboards to ``chat.reply_keyboard``.
        """
        markup = params.json_value("reply_markup", "reply keyboard markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("object expected as reply markup")
        if "inline_keyboard" in markup:
            return self._validate_inline_keyboard(markup["inline_keyboard"])
        if inline_only:
            raise bad_request("inline keyboard expected")
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise bad_request('field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays')
            for row in rows:
                for button in row:
                    label = (
                        button
                        if isinstance(button, str)
                        else button.get("text")
                        if isinstance(button, dict)
                        else None
                    )
                    if not isinstance(label, str) or not label:
                        raise bad_request('can\'t parse keyboard button: Field "text" must be of type String')
            if chat is not None:
                chat.reply_keyboard = markup
            return None
        if markup.get("remove_keyboard"):
            if chat is not None:
                chat.reply_keyboard = None
            return None
        if markup.get("force_reply"):
            return None
        raise bad_request("can't parse reply keyboard markup JSON object")

    def _validate_inline_keyboard(self, rows: Any) -> JsonDict | None:
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request(
                'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
            )
        actions = (
            "url",
            "callback_data",
            "web_app",
            "login_url",
            "switch_inline_query",
            "switch_inline_query_current_chat",
            "switch_inline_query_chosen_chat",
            "copy_text",
            "callback_game",
            "pay",
        )
        count = 0
        for row in rows:
            for button in row:
                count += 1
                if not isinstance(button, dict):
                    raise bad_request("can't parse inline keyboard button: Object expected")
                if not isinstance(button.get("text"), str):
                    raise bad_request(
                        'can\'t parse inline keyboard button: Field "text" must be of type String'
                    )
                present = [key for key in actions if button.get(key) is not None]
                if not present:
                    raise bad_request(
                        "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                    )
                if "callback_data" in present:
                    data = button["callback_data"]
                    if not isinstance(data, str):
                        raise bad_request(
                            'can\'t parse inline keyboard button: Field "callback_data" must be of type String'
                        )
                    if not data or len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
                        raise bad_request("BUTTON_DATA_INVALID")
                if "url" in present:
                    try:
                        check_link(str(button["url"]))
                    except ValueError as exc:
                        raise bad_request(
                            f"inline keyboard button URL '{button['url']}' is invalid: {exc}"
                        ) from None
        if count > 100:
            raise bad_request("reply markup is too long")
        if count == 0:
            return None
        return {"inline_keyboard": rows}

    def _reply_target(self, params: _Params, chat: FakeChat) -> JsonDict | None:
        reply = params.json_value("reply_parameters", "reply parameters")
        message_id: int | None = None
        allow_without = params.boolean("allow_sending_without_reply")
        target_chat = chat
        if isinstance(reply, dict):
            message_id = reply.get("message_id") if isinstance(reply.get("message_id"), int) else None
            allow_without = bool(reply.get("allow_sending_without_reply", allow_without))
            if reply.get("chat_id") not in (None, ""):
                ref = reply["chat_id"]
                found = self._find_chat(
                    int(ref) if isinstance(ref, str) and ref.lstrip("-").isdigit() else ref
                )
                if found is None:
                    raise bad_request("message to be replied not found")
                target_chat = found
        elif reply is not None:
            raise bad_request("object expected as reply parameters")
        if message_id is None:
            message_id = params.integer("reply_to_message_id")
        if not message_id:
            return None
        target = target_chat.messages.get(message_id)
        if target is None:
            if allow_without:
                return None
            raise bad_request("message to be replied not found")
        return target

    def _common_send(self, params: _Params) -> tuple[FakeChat, int | None, JsonDict | None]:
        chat = self._resolve_chat(params.chat_ref(), write=True)
        thread_id = params.integer("message_thread_id")
        reply_to = self._reply_target(params, chat)
        if reply_to is not None and not thread_id and reply_to["chat"]["id"] == chat.id:
            thread_id = self._thread_of(reply_to)
        return chat, self._check_thread(chat, thread_id), reply_to

    def _finish_send(
        self,
        method: str,
        params: _Params,
        chat: FakeChat,
        thread_id: int | None,
        reply_to: JsonDict | None,
        content: JsonDict,
        markup: JsonDict | None,
    ) -> JsonDict:
        if markup is not None:
            content["reply_markup"] = markup
        if params.boolean("protect_content"):
            content["has_protected_content"] = True
        message = self._store_message(
            chat, self.bot.to_api(), content, thread_id=thread_id, reply_to=reply_to
        )
        self._record_event("sent", chat, message["message_id"], message, method, params.values)
        return message

    def _m_send_message(self, params: _Params) -> JsonDict:
        chat, thread_id, reply_to = self._common_send(params)
        text, entities = self._format(params, "text", "entities")
        markup = self._parse_reply_markup(params, chat)
        content: JsonDict = {"text": text}
        if entities:
            content["entities"] = entities
        options = params.json_value("link_preview_options", "link preview options")
        if isinstance(options, dict) and options:
            content["link_preview_options"] = options
        return self._finish_send("sendMessage", params, chat, thread_id, reply_to, content, markup)

    def _new_file(
        self,
        kind: str,
        content: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        source_url: str | None = None,
        size: tuple[int, int] | None = None,
    ) -> StoredFile:
        self._file_counter += 1
        prefixes = {"photo": "AgACAgIAAxkBAAI", "document": "BQACAgIAAxkBAAI", "sticker": "CAACAgIAAxkBAAI"}
        file_id = prefixes.get(kind, "BAACAgIAAxkBAAI") + secrets.token_urlsafe(40)
        stored = StoredFile(
            file_id=file_id,
            file_unique_id="AgAD" + secrets.token_urlsafe(9),
            kind=kind,
            content=content,
            file_name=file_name,
            mime_type=mime_type,
            source_url=source_url,
        )
        if size is not None:
            stored.width, stored.height = size
        self.files[file_id] = stored
        return stored

    def _photo_sizes(self, original: StoredFile) -> list[JsonDict]:
        width, height = original.width or 800, original.height or 600
        sizes: list[JsonDict] = []
        for limit in (90, 320, 800, 1280):
            scale = min(1.0, limit / max(width, height))
            w, h = max(1, round(width * scale)), max(1, round(height * scale))
            if sizes and sizes[-1]["width"] == w and sizes[-1]["height"] == h:
                continue
            size_file = original if (w, h) == (width, height) and limit >= max(width, height) else None
            if size_file is None:
                size_file = self._new_file(
                    "photo", original.content, mime_type=original.mime_type, size=(w, h)
                )
            sizes.append(
                {
                    "file_id": size_file.file_id,
                    "file_unique_id": size_file.file_unique_id,
                    "file_size": size_file.file_size,
                    "width": w,
                    "height": h,
                }
            )
            if scale == 1.0:
                break
        return sizes

    def _media_json(self, kind: str, stored: StoredFile) -> Any:
        if kind == "photo":
            return self._photo_sizes(stored)
        data: JsonDict = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
        if kind in ("video", "animation"):
            data.update({"width": stored.width or 640, "height": stored.height or 360, "duration": 1})
        if kind in ("audio", "voice"):
            data["duration"] = 1
        if kind == "sticker":
            data.update(
                {
                    "type": "regular",
                    "width": stored.width or 512,
                    "height": stored.height or 512,
                    "is_animated": False,
                    "is_video": False,
                }
            )
        if stored.file_name and kind in ("document", "video", "audio", "animation"):
            data["file_name"] = stored.file_name
        if stored.mime_type and kind != "sticker":
            data["mime_type"] = stored.mime_type
        data["file_size"] = stored.file_size
        return data

    def _input_file(self, params: _Params, field_name: str, kind: str) -> StoredFile:
        value = params.raw(field_name)
        upload: UploadedFile | None = params.files.get(field_name)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = params.files.get(value[len("attach://") :])
            if upload is None:
                raise bad_request(f"file {value} not found")
        if upload is not None:
            if not upload.content:
                raise bad_request("file must be non-empty")
            file_name = upload.filename if upload.filename and upload.filename != field_name else None
            mime = (
                upload.content_type if upload.content_type not in (None, "application/octet-stream") else None
            )
            if mime is None and file_name:
                mime = mimetypes.guess_type(file_name)[0]
            if kind == "photo":
                mime = None
            elif mime is None:
                mime = _MEDIA_DEFAULT_MIME.get(kind, "application/octet-stream")
            if kind == "document" and file_name is None:
                file_name = field_name
            return self._new_file(
                kind, upload.content, file_name=file_name, mime_type=mime, size=_image_size(upload.content)
            )
        if not isinstance(value, str) or not value:
            raise bad_request(f"there is no {field_name} in the request")
        if re.match(r"^https?://", value, re.I):
            name = value.rstrip("/").rsplit("/", 1)[-1] or None
            mime = mimetypes.guess_type(name)[0] if name else None
            return self._new_file(kind, b"", file_name=name, mime_type=mime, source_url=value)
        stored = self.files.get(value)
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if stored.kind != kind:
            raise bad_request(
                f"can't use file of type {_MEDIA_TD_NAMES.get(stored.kind, 'Document')} as "
                f"{_MEDIA_TD_NAMES.get(kind, 'Document')}"
            )
        return stored

    def _m_send_media(self, params: _Params, kind: str) -> JsonDict:
        chat, thread_id, reply_to = self._common_send(params)
        stored = self._input_file(params, kind, kind)
        content: JsonDict = {kind: self._media_json(kind, stored)}
        if kind == "animation":
            content["document"] = self._media_json("document", stored)
        if kind != "sticker":
            caption, caption_entities = self._format(params, "caption", "caption_entities", caption=True)
            if caption:
                content["caption"] = caption
                if caption_entities:
                    content["caption_entities"] = caption_entities
            if params.boolean("show_caption_above_media"):
                content["show_caption_above_media"] = True
            if params.boolean("has_spoiler"):
                content["has_media_spoiler"] = True
        markup = self._parse_reply_markup(params, chat)
        method = "send" + kind[0].upper() + kind[1:]
        return self._finish_send(method, params, chat, thread_id, reply_to, content, markup)

    def _source_message(
        self, params: _Params, what: str, message_id: int | None = None
    ) -> tuple[FakeChat, JsonDict]:
        source_chat = self._resolve_chat(params.chat_ref("from_chat_id"))
        mid = message_id if message_id is not None else params.integer("message_id")
        message = source_chat.messages.get(mid or 0)
        if message is None:
            raise bad_request(f"{what} not found")
        return source_chat, message

    def _copy_content(self, message: Mapping[str, Any]) -> JsonDict:
        return {key: json.loads(json.dumps(message[key])) for key in _CONTENT_KEYS if key in message}

    def _m_copy_message(self, params: _Params) -> JsonDict:
        source_chat, original = self._source_message(params, "message to copy")
        return {"message_id": self._copy_one(params, source_chat, original, "copyMessage")["message_id"]}

    def _copy_one(
        self,
        params: _Params,
        source_chat: FakeChat,
        original: JsonDict,
        method: str,
        *,
        with_options: bool = True,
    ) -> JsonDict:
        if any(key in original for key in _SERVICE_KEYS) or not any(key in original for key in _CONTENT_KEYS):
            raise bad_request("message can't be copied")
        if original.get("has_protected_content"):
            raise bad_request("message has protected content and can't be forwarded")
        chat, thread_id, reply_to = self._common_send(params) if with_options else self._plain_target(params)
        content = self._copy_content(original)
        replace_caption = params.has("caption") or params.boolean("remove_caption")
        if with_options and replace_caption and "text" not in content:
            content.pop("caption", None)
            content.pop("caption_entities", None)
            caption, caption_entities = self._format(params, "caption", "caption_entities", caption=True)
            if caption and not params.boolean("remove_caption"):
                content["caption"] = caption
                if caption_entities:
                    content["caption_entities"] = caption_entities
        markup = self._parse_reply_markup(params, chat) if with_options else None
        return self._finish_send(method, params, chat, thread_id, reply_to, content, markup)

    def _plain_target(self, params: _Params) -> tuple[FakeChat, int | None, JsonDict | None]:
        chat = self._resolve_chat(params.chat_ref(), write=True)
        return chat, self._check_thread(chat, params.integer("message_thread_id")), None

    def _message_ids(self, params: _Params) -> list[int]:
        ids = params.json_value("message_ids", "message identifiers")
        if not isinstance(ids, list) or not ids or not all(isinstance(item, int) for item in ids):
            raise bad_request("message identifiers are not specified")
        if len(ids) > 100:
            raise bad_request("too many messages to copy")
        return sorted(ids)

    def _m_copy_messages(self, params: _Params) -> list[JsonDict]:
        results: list[JsonDict] = []
        source_chat = self._resolve_chat(params.chat_ref("from_chat_id"))
        for mid in self._message_ids(params):
            original = source_chat.messages.get(mid)
            if original is None:
                continue
            copy = self._copy_one(params, source_chat, original, "copyMessages", with_options=False)
            results.append({"message_id": copy["message_id"]})
        if not results:
            raise bad_request("messages to copy not found")
        return results

    def _forward_origin(self, source_chat: FakeChat, original: Mapping[str, Any]) -> JsonDict:
        if "forward_origin" in original:
            return dict(original["forward_origin"])
        sender = original.get("from")
        if source_chat.type == "channel":
            return {
                "type": "channel",
                "chat": source_chat.to_api(),
                "message_id": original["message_id"],
                "date": original["date"],
            }
        if isinstance(sender, dict):
            user = self.users.get(int(sender["id"]))
            if user is not None and user.hide_forwards:
                return {"type": "hidden_user", "sender_user_name": user.full_name, "date": original["date"]}
            return {"type": "user", "sender_user": sender, "date": original["date"]}
        return {"type": "hidden_user", "sender_user_name": "Deleted Account", "date": original["date"]}

    def _forward_one(
        self, params: _Params, source_chat: FakeChat, original: JsonDict, method: str
    ) -> JsonDict:
        if any(key in original for key in _SERVICE_KEYS):
            raise bad_request("message can't be forwarded")
        if original.get("has_protected_content"):
            raise bad_request("message has protected content and can't be forwarded")
        chat, thread_id, _ = self._plain_target(params)
        content: JsonDict = {"forward_origin": self._forward_origin(source_chat, original)}
        content.update(self._copy_content(original))
        return self._finish_send(method, params, chat, thread_id, None, content, None)

    def _m_forward_message(self, params: _Params) -> JsonDict:
        source_chat, original = self._source_message(params, "message to forward")
        return self._forward_one(params, source_chat, original, "forwardMessage")

    def _m_forward_messages(self, params: _Params) -> list[JsonDict]:
        source_chat = self._resolve_chat(params.chat_ref("from_chat_id"))
        results: list[JsonDict] = []
        for mid in self._message_ids(params):
            original = source_chat.messages.get(mid)
            if original is not None:
                results.append(
                    {
                        "message_id": self._forward_one(params, source_chat, original, "forwardMessages")[
                            "message_id"
                        ]
                    }
                )
        if not results:
            raise bad_request("messages to forward not found")
        return results

    def _m_send_chat_action(self, params: _Params) -> bool:
        chat = self._resolve_chat(params.chat_ref(), write=True)
        action = params.string("action", "") or ""
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        thread_id = self._check_thread(chat, params.integer("message_thread_id"))
        self.chat_actions.append((chat.id, action, thread_id, time.monotonic()))
        return True

    # ------------------------------------------------------------------------------------------- edits

    def _message_to_edit(self, params: _Params) -> tuple[FakeChat, JsonDict]:
        if params.has("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._resolve_chat(params.chat_ref(), write=True)
        mid = params.integer("message_id")
        if not mid:
            raise bad_request("message identifier is not specified")
        message = chat.messages.get(mid)
        if message is None:
            raise bad_request("message to edit not found")
        sender = message.get("from")
        if not isinstance(sender, dict) or sender.get("id") != self.bot.id:
            raise bad_request("message can't be edited")
        return chat, message

    @staticmethod
    def _not_modified() -> ApiError:
        return bad_request(
            "message is not modified: specified new message content and reply markup are exactly the same as a "
            "current content and reply markup of the message"
        )

    def _apply_edit(
        self, chat: FakeChat, message: JsonDict, changes: JsonDict, method: str, params: _Params
    ) -> JsonDict:
        before = {key: message.get(key) for key in changes}
        if before == changes:
            raise self._not_modified()
        for key, value in changes.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value
        message["edit_date"] = self._now()
        self._record_event("edited", chat, message["message_id"], message, method, params.values)
        return message

    def _m_edit_message_text(self, params: _Params) -> JsonDict:
        chat, message = self._message_to_edit(params)
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        text, entities = self._format(params, "text", "entities")
        markup = self._parse_reply_markup(params, None, inline_only=True)
        options = params.json_value("link_preview_options", "link preview options")
        changes: JsonDict = {"text": text, "entities": entities or None, "reply_markup": markup}
        if isinstance(options, dict) and options:
            changes["link_preview_options"] = options
        return self._apply_edit(chat, message, changes, "editMessageText", params)

    def _m_edit_message_caption(self, params: _Params) -> JsonDict:
        chat, message = self._message_to_edit(params)
        if "text" in message:
            raise bad_request("there is no caption in the message to edit")
        caption, entities = self._format(params, "caption", "caption_entities", caption=True)
        markup = self._parse_reply_markup(params, None, inline_only=True)
        changes: JsonDict = {
            "caption": caption or None,
            "caption_entities": entities or None,
            "reply_markup": markup,
        }
        return self._apply_edit(chat, message, changes, "editMessageCaption", params)

    def _m_edit_message_reply_markup(self, params: _Params) -> JsonDict:
        chat, message = self._message_to_edit(params)
        markup = self._parse_reply_markup(params, None, inline_only=True)
        return self._apply_edit(chat, message, {"reply_markup": markup}, "editMessageReplyMarkup", params)

    def _delete(self, chat: FakeChat, mid: int, params: _Params, method: str) -> None:
        message = chat.messages.get(mid)
        if message is None:
            raise bad_request("message to delete not found")
        sender = message.get("from")
        own = isinstance(sender, dict) and sender.get("id") == self.bot.id
        if (
            not own
            and not chat.is_private
            and not (self._bot_is_admin(chat) and chat.bot_can_delete_messages)
        ):
            raise bad_request("message can't be deleted")
        if any(key in message for key in ("forum_topic_created",)):
            raise bad_request("message can't be deleted")
        del chat.messages[mid]
        chat.deleted_message_ids.add(mid)
        self._record_event(
            "deleted", chat, mid, None, method, params.values, thread_id=self._thread_of(message)
        )

    def _m_delete_message(self, params: _Params) -> bool:
        chat = self._resolve_chat(params.chat_ref())
        self._delete(chat, params.integer("message_id") or 0, params, "deleteMessage")
        return True

    def _m_delete_messages(self, params: _Params) -> bool:
        chat = self._resolve_chat(params.chat_ref())
        for mid in self._message_ids(params):
            with contextlib.suppress(ApiError):
                self._delete(chat, mid, params, "deleteMessages")
        return True

    # -------------------------------------------------------------------------------------- callbacks

    def _m_answer_callback_query(self, params: _Params) -> bool:
        query_id = params.string("callback_query_id", "") or ""
        record = self.callbacks.get(query_id)
        expired = (
            record is not None
            and self.callback_answer_timeout is not None
            and time.monotonic() - record.created_at > self.callback_answer_timeout
        )
        if record is None or record.answered or expired:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        text = params.string("text")
        if text is not None and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        record.answered = True
        record.answered_at = time.monotonic()
        record.text = text
        record.show_alert = params.boolean("show_alert")
        record.url = params.string("url")
        record.cache_time = params.integer("cache_time")
        self._callbacks_changed.notify()
        return True

    # --------------------------------------------------------------------------------------- commands

    def _scope_key(self, scope: Any, *, api: bool = True) -> tuple[Any, ...]:
        if scope is None or scope == "":
            return ("default",)
        if isinstance(scope, str):
            scope = json.loads(scope) if scope.startswith("{") else {"type": scope}
        if hasattr(scope, "model_dump"):
            scope = scope.model_dump()
        if not isinstance(scope, Mapping):
            raise bad_request("can't parse BotCommandScope JSON object")
        kind = scope.get("type")
        simple = ("default", "all_private_chats", "all_group_chats", "all_chat_administrators")
        if kind in simple:
            return (kind,)
        if kind in ("chat", "chat_administrators", "chat_member"):
            ref = scope.get("chat_id")
            if isinstance(ref, str) and re.fullmatch(r"-?\d+", ref):
                ref = int(ref)
            chat = self._find_chat(ref) if isinstance(ref, int | str) else None
            if chat is None:
                if api:
                    raise bad_request("chat not found")
                chat_id = int(ref) if isinstance(ref, int) else 0
            else:
                chat_id = chat.id
            if kind == "chat_administrators" and chat is not None and chat.is_private and api:
                raise bad_request("there are no administrators in the private chat")
            if kind == "chat_member":
                user_id = scope.get("user_id")
                if not isinstance(user_id, int):
                    raise bad_request("user not found")
                return (kind, chat_id, user_id)
            return (kind, chat_id)
        raise bad_request("unsupported bot command scope type specified")

    def _language(self, params: _Params) -> str:
        language = (params.string("language_code", "") or "").strip()
        if not _LANGUAGE_RE.match(language):
            raise bad_request("invalid language code specified")
        return language

    def _m_set_my_commands(self, params: _Params) -> bool:
        commands = params.json_value("commands", "commands")
        if not isinstance(commands, list):
            raise bad_request('field "commands" must be an Array')
        if len(commands) > 100:
            raise bad_request("too many commands specified")
        normalized: list[JsonDict] = []
        for item in commands:
            if not isinstance(item, dict):
                raise bad_request("can't parse BotCommand: Object expected")
            command = str(item.get("command", "")).lstrip("/")
            description = str(item.get("description", ""))
            if not _BOT_COMMAND_RE.match(command):
                raise bad_request("BOT_COMMAND_INVALID")
            if not description.strip() or len(description) > 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            normalized.append({"command": command, "description": description})
        key = (self._scope_key(params.json_value("scope", "BotCommandScope")), self._language(params))
        if normalized:
            self._commands[key] = normalized
        else:
            self._commands.pop(key, None)
        return True

    def _m_get_my_commands(self, params: _Params) -> list[JsonDict]:
        key = (self._scope_key(params.json_value("scope", "BotCommandScope")), self._language(params))
        return [dict(item) for item in self._commands.get(key, [])]

    def _m_delete_my_commands(self, params: _Params) -> bool:
        key = (self._scope_key(params.json_value("scope", "BotCommandScope")), self._language(params))
        self._commands.pop(key, None)
        return True

    def _set_bot_text(self, params: _Params, field: str) -> bool:
        value = params.string(field, "") or ""
        limits = {"name": 64, "description": 512, "short_description": 120}
        if len(value) > limits[field]:
            raise bad_request(f"bot {field.replace('_', ' ')} is too long")
        language = self._language(params)
        if value:
            self._bot_texts[(field, language)] = value
        else:
            self._bot_texts.pop((field, language), None)
        return True

    def _get_bot_text(self, params: _Params, field: str) -> JsonDict:
        language = self._language(params)
        value = self._bot_texts.get((field, language)) or self._bot_texts.get((field, ""), "")
        if field == "name" and not value:
            value = self.bot.first_name
        return {field: value}

    def _m_set_chat_menu_button(self, params: _Params) -> bool:
        button = params.json_value("menu_button", "menu button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in ("default", "commands", "web_app"):
            raise bad_request("can't parse menu button JSON object")
        if params.has("chat_id"):
            chat = self._resolve_chat(params.chat_ref())
            if not chat.is_private:
                raise bad_request("chat not found")
            chat.menu_button = button
        else:
            self._default_menu_button = button if button["type"] != "default" else {"type": "commands"}
        return True

    def _m_get_chat_menu_button(self, params: _Params) -> JsonDict:
        if params.has("chat_id"):
            chat = self._resolve_chat(params.chat_ref())
            if chat.menu_button.get("type") != "default":
                return dict(chat.menu_button)
        return dict(self._default_menu_button)

    # ------------------------------------------------------------------------------------------ chats

    def _m_get_chat(self, params: _Params) -> JsonDict:
        chat = self._resolve_chat(params.chat_ref())
        info = chat.to_api()
        info.update(
            {
                "accent_color_id": chat.id % 7 if chat.id > 0 else 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": True,
                    "limited_gifts": True,
                    "unique_gifts": True,
                    "premium_subscription": True,
                    "gifts_from_channels": True,
                },
            }
        )
        if not chat.is_private:
            info["permissions"] = {
                "can_send_messages": True,
                "can_send_audios": True,
                "can_send_documents": True,
                "can_send_photos": True,
                "can_send_videos": True,
                "can_send_video_notes": True,
                "can_send_voice_notes": True,
                "can_send_polls": True,
                "can_send_other_messages": True,
                "can_add_web_page_previews": True,
                "can_change_info": False,
                "can_invite_users": True,
                "can_pin_messages": False,
                "can_manage_topics": False,
            }
        else:
            user = self.users.get(chat.user_id or 0)
            if user is not None and user.hide_forwards:
                info["has_private_forwards"] = True
        return info

    def _member_json(self, chat: FakeChat, user_id: int) -> JsonDict:
        if user_id == self.bot.id:
            status: MemberStatus = chat.bot_status if not chat.is_private else "member"
            user_json = self.bot.to_api()
        else:
            user = self.users.get(user_id)
            if user is None:
                raise bad_request("user not found")
            user_json = user.to_api()
            if chat.is_private:
                status = "member" if chat.user_id == user_id else "left"
            else:
                status = chat.members.get(user_id, "left")
        if status == "creator":
            return {"status": "creator", "user": user_json, "is_anonymous": False}
        if status == "administrator":
            is_bot = user_id == self.bot.id
            return {
                "status": "administrator",
                "user": user_json,
                "can_be_edited": False,
                "is_anonymous": False,
                "can_manage_chat": True,
                "can_delete_messages": chat.bot_can_delete_messages if is_bot else True,
                "can_manage_video_chats": True,
                "can_restrict_members": True,
                "can_promote_members": False,
                "can_change_info": True,
                "can_invite_users": True,
                "can_post_stories": False,
                "can_edit_stories": False,
                "can_delete_stories": False,
                "can_send_welcome_messages": False,
                "can_pin_messages": True,
                "can_manage_topics": chat.bot_can_manage_topics if is_bot else True,
            }
        if status == "kicked":
            return {"status": "kicked", "user": user_json, "until_date": 0}
        if status == "restricted":
            return {
                "status": "restricted",
                "user": user_json,
                "is_member": True,
                "can_send_messages": False,
                "can_send_audios": False,
                "can_send_documents": False,
                "can_send_photos": False,
                "can_send_videos": False,
                "can_send_video_notes": False,
                "can_send_voice_notes": False,
                "can_send_polls": False,
                "can_send_other_messages": False,
                "can_add_web_page_previews": False,
                "can_change_info": False,
                "can_invite_users": False,
                "can_pin_messages": False,
                "can_manage_topics": False,
                "until_date": 0,
            }
        return {"status": status, "user": user_json}

    def _m_get_chat_member(self, params: _Params) -> JsonDict:
        chat = self._resolve_chat(params.chat_ref())
        user_id = params.integer("user_id")
        if not user_id:
            raise bad_request("user_id is empty")
        return self._member_json(chat, user_id)

    def _m_get_chat_administrators(self, params: _Params) -> list[JsonDict]:
        chat = self._resolve_chat(params.chat_ref())
        if chat.is_private:
            raise bad_request("there are no administrators in the private chat")
        admins = [uid for uid, status in chat.members.items() if status in ("creator", "administrator")]
        result = [self._member_json(chat, uid) for uid in admins]
        if self._bot_is_admin(chat):
            result.append(self._member_json(chat, self.bot.id))
        return result

    def _m_get_chat_member_count(self, params: _Params) -> int:
        chat = self._resolve_chat(params.chat_ref())
        if chat.is_private:
            return 2
        members = sum(1 for status in chat.members.values() if status not in ("left", "kicked"))
        return members + (1 if chat.bot_status not in ("left", "kicked") else 0)

    # ------------------------------------------------------------------------------------------ topics

    def _forum_chat(self, params: _Params, *, private: bool = False) -> FakeChat:
        """The forum the topic method acts on; with ``private``, a private chat with topic mode on too."""
        chat = self._resolve_chat(params.chat_ref(), write=True)
        if private and chat.is_private:
            if not self.private_topics:
                raise bad_request("the chat is not a forum")
            return chat
        if chat.type != "supergroup":
            raise bad_request("method is available only for supergroups")
        if not chat.is_forum:
            raise bad_request("the chat is not a forum")
        if not (self._bot_is_admin(chat) and chat.bot_can_manage_topics):
            raise bad_request("not enough rights to manage topics")
        return chat

    def _topic(self, chat: FakeChat, params: _Params) -> ForumTopicState:
        thread_id = params.integer("message_thread_id") or 0
        topic = chat.topics.get(thread_id)
        if topic is None or topic.is_deleted:
            raise bad_request("TOPIC_ID_INVALID")
        return topic

    def _service_message(
        self, chat: FakeChat, topic: ForumTopicState, content: JsonDict, method: str
    ) -> None:
        message = self._store_message(chat, self.bot.to_api(), content, thread_id=topic.message_thread_id)
        self._record_event("sent", chat, message["message_id"], message, method)

    def _m_create_forum_topic(self, params: _Params) -> JsonDict:
        chat = self._forum_chat(params, private=True)
        name = params.string("name", "") or ""
        if not name.strip():
            raise bad_request("TOPIC_TITLE_EMPTY")
        if len(name) > 128:
            raise bad_request("TOPIC_TITLE_TOO_LONG")
        color = params.integer("icon_color", TOPIC_ICON_COLORS[0]) or TOPIC_ICON_COLORS[0]
        if color not in TOPIC_ICON_COLORS:
            raise bad_request("invalid icon_color specified")
        emoji_id = params.string("icon_custom_emoji_id") or None
        topic = self._create_topic(chat, name, color, emoji_id, sender=self.bot.to_api())
        return topic.to_api()

    def _create_topic(
        self, chat: FakeChat, name: str, color: int, emoji_id: str | None, *, sender: JsonDict
    ) -> ForumTopicState:
        thread_id = chat.allocate_message_id()
        topic = ForumTopicState(chat.id, thread_id, name, color, emoji_id, created_by=int(sender["id"]))
        chat.topics[thread_id] = topic
        created: JsonDict = {"name": name, "icon_color": color}
        if emoji_id:
            created["icon_custom_emoji_id"] = emoji_id
        message = self._store_message(
            chat, sender, {"forum_topic_created": created}, thread_id=thread_id, message_id=thread_id
        )
        message.pop("reply_to_message", None)
        if sender.get("id") == self.bot.id:
            self._record_event("sent", chat, thread_id, message, "createForumTopic")
        return topic

    def _m_edit_forum_topic(self, params: _Params) -> bool:
        chat = self._forum_chat(params, private=True)
        topic = self._topic(chat, params)
        edited: JsonDict = {}
        if params.raw("name") is not None:
            name = params.string("name", "") or ""
            if not name.strip():
                raise bad_request("TOPIC_TITLE_EMPTY")
            if len(name) > 128:
                raise bad_request("TOPIC_TITLE_TOO_LONG")
            if name != topic.name:
                edited["name"] = name
        if params.raw("icon_custom_emoji_id") is not None:
            emoji_id = params.string("icon_custom_emoji_id", "") or ""
            if emoji_id != (topic.icon_custom_emoji_id or ""):
                edited["icon_custom_emoji_id"] = emoji_id
        if not edited:
            raise bad_request("TOPIC_NOT_MODIFIED")
        if "name" in edited:
            topic.name = edited["name"]
        if "icon_custom_emoji_id" in edited:
            topic.icon_custom_emoji_id = edited["icon_custom_emoji_id"] or None
        self._service_message(chat, topic, {"forum_topic_edited": edited}, "editForumTopic")
        return True

    def _m_set_topic_closed(self, params: _Params, closed: bool) -> bool:
        chat = self._forum_chat(params)
        topic = self._topic(chat, params)
        if topic.is_closed == closed:
            raise bad_request("TOPIC_NOT_MODIFIED")
        topic.is_closed = closed
        key = "forum_topic_closed" if closed else "forum_topic_reopened"
        self._service_message(chat, topic, {key: {}}, "closeForumTopic" if closed else "reopenForumTopic")
        return True

    def _m_delete_forum_topic(self, params: _Params) -> bool:
        chat = self._forum_chat(params, private=True)
        topic = self._topic(chat, params)
        topic.is_deleted = True
        for mid, message in list(chat.messages.items()):
            if message.get("message_thread_id") == topic.message_thread_id:
                del chat.messages[mid]
                chat.deleted_message_ids.add(mid)
        return True

    def _m_unpin_all_forum_topic_messages(self, params: _Params) -> bool:
        chat = self._forum_chat(params)
        self._topic(chat, params)
        return True

    # ------------------------------------------------------------------------------------------- files

    def _m_get_file(self, params: _Params) -> JsonDict:
        file_id = params.string("file_id", "") or ""
        if not file_id:
            raise bad_request("file_id not specified")
        stored = self.files.get(file_id)
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.file_size > MAX_DOWNLOAD_BYTES:
            raise bad_request("file is too big")
        if stored.file_path is None:
            folder = {"photo": "photos", "voice": "voice", "sticker": "stickers"}.get(
                stored.kind, stored.kind + "s"
            )
            ext = ""
            if stored.file_name and "." in stored.file_name:
                ext = "." + stored.file_name.rsplit(".", 1)[1]
            elif stored.mime_type:
                ext = mimetypes.guess_extension(stored.mime_type) or ""
            elif stored.kind == "photo":
                ext = ".jpg"
            self._file_counter += 1
            stored.file_path = f"{folder}/file_{self._file_counter}{ext}"
            self._files_by_path[stored.file_path] = stored
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "file_path": stored.file_path,
        }

    # ======================================================================================= fault injection

    def _take_fault(self, lname: str) -> Fault | None:
        for fault in self._faults:
            if fault.method in (lname, "*") and fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def fail_next(
        self,
        method: str,
        error_code: int = 429,
        retry_after: int | None = 1,
        count: int = 1,
        *,
        description: str | None = None,
        apply: bool = False,
    ) -> None:
        """Make the next ``count`` calls of ``method`` (or ``"*"``) fail with ``error_code``.

        429 answers carry ``parameters.retry_after`` and "Too Many Requests: retry after N". Other codes
        (5xx, 400, 403...) use ``description`` or a generic one. With ``apply=True`` the method still takes
        effect before the error is returned (e.g. a message is sent but the bot sees a 502, as can happen
        with the real Telegram).
        """
        self._faults.append(
            Fault(
                method=method.lower(),
                remaining=count,
                error_code=error_code,
                description=description,
                retry_after=retry_after if error_code == 429 else None,
                apply=apply,
            )
        )

    def disconnect_next(self, method: str, count: int = 1) -> None:
        """Drop the connection without an answer on the next ``count`` calls (aiogram: TelegramNetworkError)."""
        self._faults.append(Fault(method=method.lower(), remaining=count, error_code=0, disconnect=True))

    def delay_next(self, method: str, seconds: float, count: int = 1) -> None:
        """Answer the next ``count`` calls of ``method`` only after ``seconds`` (slow Telegram)."""
        self._faults.append(Fault(method=method.lower(), remaining=count, error_code=0, delay=seconds))

    def clear_faults(self) -> None:
        self._faults.clear()

    def enable_flood_control(self, limits: FloodLimits | None = None) -> None:
        """Answer 429 like Telegram when message-producing methods go too fast (default: ``FloodLimits()``:
        1 msg/s per chat, 20 msg/min per group, 30 msg/s overall)."""
        self.flood_limits = limits if limits is not None else FloodLimits()
        self._flood_history.clear()

    def disable_flood_control(self) -> None:
        self.flood_limits = None

    def _check_flood(self, call: ApiCall, params: _Params) -> tuple[int, bool] | None:
        limits = self.flood_limits
        if limits is None:
            return None
        try:
            ref = params.chat_ref()
        except ApiError:
            return None
        chat = self._find_chat(ref)
        if chat is None:
            return None
        now = time.monotonic()
        is_group = not chat.is_private
        history = self._flood_history
        retry = 0.0
        checks: list[tuple[tuple[int, float] | None, Callable[[tuple[float, int, bool]], bool], int]] = [
            (limits.per_chat, lambda item: item[1] == chat.id, limits.burst),
            (limits.per_group if is_group else None, lambda item: item[1] == chat.id, 0),
            (limits.global_, lambda item: True, 0),
        ]
        for limit, selector, extra in checks:
            if limit is None:
                continue
            count, window = limit
            recent = [item[0] for item in history if selector(item) and now - item[0] < window]
            if len(recent) >= count + extra:
                retry = max(retry, window - (now - recent[-(count + extra)]))
        if retry > 0:
            self.flood_violations.append(call)
            seconds = max(1, math.ceil(retry))
            call.injected = True
            raise ApiError(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})
        while history and now - history[0][0] > 120:
            history.popleft()
        return chat.id, is_group

    # ============================================================================================= webhook

    async def _webhook_loop(self) -> None:
        while not self._closing:
            if not self.webhook.url or not self._updates:
                await self._updates_changed.wait(0.5)
                continue
            now = time.monotonic()
            entry = self._updates[0]
            if entry.next_try_at > now:
                await self._updates_changed.wait(entry.next_try_at - now)
                continue
            try:
                await self._deliver(entry)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep delivering whatever the webhook does
                entry.next_try_at = time.monotonic() + self.webhook_retry_scale
                self.webhook.last_error_message = f"double: {type(exc).__name__}: {exc}"

    async def _deliver(self, entry: _QueuedUpdate) -> None:
        config = self.webhook
        session = self._webhook_session
        assert session is not None
        entry.attempts += 1
        headers = {"Content-Type": "application/json"}
        if config.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = config.secret_token
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        retry_after = 0
        response_method: str | None = None
        try:
            async with session.post(
                config.url,
                data=json.dumps(entry.update, ensure_ascii=False).encode("utf-8"),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
                allow_redirects=False,
            ) as resp:
                status = resp.status
                if 200 <= resp.status <= 299:
                    try:
                        response_method = await self._run_webhook_reply(resp)
                    except (ValueError, aiohttp.ClientError, UnicodeDecodeError):
                        response_method = None  # delivered; an unreadable answer body is ignored
                else:
                    error = f"Wrong response from the webhook: {resp.status} {resp.reason}"
                    header = resp.headers.get("Retry-After", "")
                    retry_after = int(header) if header.isdigit() else 0
                    await resp.read()
        except asyncio.CancelledError:
            raise
        except aiohttp.ClientConnectorError:
            error = "Connection refused"
        except TimeoutError:
            error = "Read timeout expired"
        except aiohttp.ClientError as exc:
            error = f"Webhook connection closed: {type(exc).__name__}"
        self.webhook_deliveries.append(
            WebhookDelivery(
                update_id=entry.update_id,
                attempt=entry.attempts,
                url=config.url,
                at=started,
                status=status,
                error=error,
                secret_token=config.secret_token,
                duration=time.monotonic() - started,
                response_method=response_method,
            )
        )
        if config is not self.webhook:
            return
        if error is None:
            with contextlib.suppress(ValueError):
                self._updates.remove(entry)
            self._calls_changed.notify()
            return
        config.last_error_date = self._now()
        config.last_error_message = error
        if self.webhook_max_attempts is not None and entry.attempts >= self.webhook_max_attempts:
            with contextlib.suppress(ValueError):
                self._updates.remove(entry)
            return
        if retry_after:
            delay = float(min(retry_after, 3600))
        elif entry.attempts == 1:
            delay = 0.0
        else:
            entry.delay = min(60.0, entry.delay * 2)
            delay = entry.delay
        entry.next_try_at = time.monotonic() + delay * self.webhook_retry_scale
        self._calls_changed.notify()

    async def _run_webhook_reply(self, resp: aiohttp.ClientResponse) -> str | None:
        """Telegram executes a method returned in the webhook's answer (except get*/webhook methods)."""
        values: JsonDict = {}
        files: dict[str, UploadedFile] = {}
        if resp.content_type == "application/json":
            try:
                body = json.loads(await resp.text() or "null")
            except ValueError:
                return None
            if isinstance(body, dict):
                values = body
        elif resp.content_type == "multipart/form-data":
            reader = aiohttp.MultipartReader(resp.headers, resp.content)
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, aiohttp.BodyPartReader):
                    continue
                name = part.name or ""
                data = await part.read()
                if part.filename:
                    files[name] = UploadedFile(
                        name, part.filename, part.headers.get("Content-Type"), bytes(data)
                    )
                else:
                    values[name] = bytes(data).decode("utf-8")
        elif resp.content_type == "application/x-www-form-urlencoded":
            from urllib.parse import parse_qsl

            values = dict(parse_qsl(await resp.text()))
        else:
            await resp.read()
        method = str(values.pop("method", "") or "")
        lowered = method.lower()
        if (
            not method
            or lowered in ("deletewebhook", "setwebhook", "close", "logout")
            or lowered.startswith("get")
        ):
            return None
        with contextlib.suppress(_Disconnect):
            await self._execute(method, values, files, source="webhook_response")
        return method

    # =========================================================================================== test API:
    # ============================================================================== users and chats

    def create_user(
        self,
        first_name: str = "测试用户",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "zh-hans",
        user_id: int | None = None,
        is_premium: bool = False,
        hide_forwards: bool = False,
        started: bool = True,
    ) -> FakeUser:
        """Create a user and their private chat with the bot (chat id == user id).

        Ids start at 7_000_000_001 (above 2**32, like today's Telegram ids). ``started=False`` models a user
        who never opened the bot: sending to them fails with 403 until they write.
        """
        if user_id is None:
            user_id = self._next_user_id
            self._next_user_id += 1
        user = FakeUser(
            id=user_id,
            first_name=first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
            is_premium=is_premium,
            hide_forwards=hide_forwards,
        )
        self.users[user_id] = user
        self.chats[user_id] = FakeChat(
            id=user_id,
            type="private",
            first_name=first_name,
            last_name=last_name,
            username=username,
            user_id=user_id,
            started=started,
        )
        return user

    def private_chat(self, user: UserRef) -> FakeChat:
        return self.chats[self._user(user).id]

    def create_supergroup(
        self,
        title: str = "客服工作台",
        *,
        is_forum: bool = True,
        username: str | None = None,
        chat_id: int | None = None,
        owner: UserRef | None = None,
        admins: Iterable[UserRef] = (),
        members: Iterable[UserRef] = (),
        bot_is_admin: bool = True,
        bot_can_manage_topics: bool = True,
        bot_can_delete_messages: bool = True,
    ) -> FakeChat:
        """Create a supergroup (a forum by default) with the bot in it (as an admin by default)."""
        if chat_id is None:
            chat_id = -self._next_supergroup_id
            self._next_supergroup_id += 1
        return self._create_group_chat(
            "supergroup",
            chat_id,
            title,
            is_forum=is_forum,
            username=username,
            owner=owner,
            admins=admins,
            members=members,
            bot_is_admin=bot_is_admin,
            bot_can_manage_topics=bot_can_manage_topics,
            bot_can_delete_messages=bot_can_delete_messages,
        )

    def create_group(
        self,
        title: str = "群组",
        *,
        owner: UserRef | None = None,
        admins: Iterable[UserRef] = (),
        members: Iterable[UserRef] = (),
        bot_is_admin: bool = False,
    ) -> FakeChat:
        """Create a basic group (no topics) with the bot in it."""
        chat_id = -self._next_group_id
        self._next_group_id += 1
        return self._create_group_chat(
            "group", chat_id, title, owner=owner, admins=admins, members=members, bot_is_admin=bot_is_admin
        )

    def _create_group_chat(
        self,
        kind: ChatType,
        chat_id: int,
        title: str,
        *,
        is_forum: bool = False,
        username: str | None = None,
        owner: UserRef | None,
        admins: Iterable[UserRef],
        members: Iterable[UserRef],
        bot_is_admin: bool,
        bot_can_manage_topics: bool = True,
        bot_can_delete_messages: bool = True,
    ) -> FakeChat:
        chat = FakeChat(
            id=chat_id,
            type=kind,
            title=title,
            username=username,
            is_forum=is_forum,
            bot_status="administrator" if bot_is_admin else "member",
            bot_can_manage_topics=bot_can_manage_topics,
            bot_can_delete_messages=bot_can_delete_messages,
        )
        for ref in members:
            chat.members[self._user(ref).id] = "member"
        for ref in admins:
            chat.members[self._user(ref).id] = "administrator"
        if owner is not None:
            chat.members[self._user(owner).id] = "creator"
        self.chats[chat_id] = chat
        return chat

    def set_member_status(self, chat: ChatRef, user: UserRef, status: MemberStatus) -> None:
        self._chat(chat).members[self._user(user).id] = status

    def set_bot_status(self, chat: ChatRef, status: MemberStatus) -> None:
        """E.g. ``"kicked"`` / ``"left"`` to make sends fail with 403, or ``"member"`` to drop admin rights."""
        self._chat(chat).bot_status = status

    def chat(self, chat: ChatRef) -> FakeChat:
        return self._chat(chat)

    def user(self, user_id: int) -> FakeUser:
        return self._user(user_id)

    # ================================================================================== user actions

    def _target_chat(self, user: FakeUser, chat: ChatRef | None) -> FakeChat:
        target = self.chats[user.id] if chat is None else self._chat(chat)
        if target.is_private:
            if target.user_id != user.id:
                raise ValueError(f"user {user.id} is not the owner of private chat {target.id}")
            if target.blocked:
                self.user_unblocks_bot(user)
            target.started = True
        elif user.id not in target.members or target.members[user.id] in ("left", "kicked"):
            target.members[user.id] = "member"
        return target

    def _resolve_message(self, chat: FakeChat, message: MessageRef) -> JsonDict:
        mid = int(message) if isinstance(message, int) else int(message["message_id"])
        found = chat.messages.get(mid)
        if found is None:
            raise KeyError(f"message {mid} not found in chat {chat.id}")
        return found

    def _chat_of_message(self, message: MessageRef, chat: ChatRef | None, user: FakeUser) -> FakeChat:
        if chat is not None:
            return self._chat(chat)
        if isinstance(message, Mapping) and isinstance(message.get("chat"), Mapping):
            return self._chat(int(message["chat"]["id"]))
        return self.chats[user.id]

    def _should_deliver(self, chat: FakeChat, message: Mapping[str, Any]) -> bool:
        """Privacy mode: in groups where the bot is not an admin it only gets commands, replies to its own
        messages, mentions of it and service messages."""
        if chat.is_private or not self.privacy_mode or self._bot_is_admin(chat):
            return True
        if any(key in message for key in _SERVICE_KEYS):
            return True
        text = str(message.get("text") or message.get("caption") or "")
        if text.startswith("/"):
            return True
        reply = message.get("reply_to_message")
        if isinstance(reply, Mapping) and not any(key in reply for key in _SERVICE_KEYS):
            sender = reply.get("from")
            if isinstance(sender, Mapping) and sender.get("id") == self.bot.id:
                return True
        return bool(self.bot.username) and f"@{self.bot.username}".lower() in text.lower()

    def user_sends_message(
        self,
        user: UserRef,
        content: Mapping[str, Any],
        *,
        chat: ChatRef | None = None,
        reply_to: MessageRef | None = None,
        message_thread_id: int | None = None,
    ) -> JsonDict:
        """Generic "user sends something": ``content`` holds the Message fields (text, photo, contact...)."""
        sender = self._user(user)
        target = self._target_chat(sender, chat)
        reply: JsonDict | None = self._resolve_message(target, reply_to) if reply_to is not None else None
        thread_id = message_thread_id
        if thread_id is None and reply is not None:
            thread_id = self._thread_of(reply)
        if thread_id is not None:
            if self._has_topics(target):
                topic = target.topics.get(thread_id)
                if topic is None or topic.is_deleted:
                    raise ValueError(f"topic {thread_id} does not exist in chat {target.id}")
            elif thread_id not in target.messages:
                raise ValueError(f"message thread {thread_id} not found in chat {target.id}")
        message = self._store_message(
            target, sender.to_api(), dict(content), thread_id=thread_id, reply_to=reply
        )
        if self._should_deliver(target, message):
            self._enqueue({"message": message})
        return message

    def user_sends_text(
        self,
        user: UserRef,
        text: str,
        chat: ChatRef | None = None,
        reply_to: MessageRef | None = None,
        message_thread_id: int | None = None,
        *,
        entities: list[JsonDict] | None = None,
    ) -> JsonDict:
        """The user sends ``text``; returns the Message (an update is queued). Commands, urls... get entities."""
        content: JsonDict = {"text": text}
        found = entities if entities is not None else detect_entities(text)
        if found:
            content["entities"] = found
        return self.user_sends_message(
            user, content, chat=chat, reply_to=reply_to, message_thread_id=message_thread_id
        )

    def _user_file(
        self, kind: str, content: bytes, file_name: str | None, mime_type: str | None
    ) -> StoredFile:
        if mime_type is None and file_name:
            mime_type = mimetypes.guess_type(file_name)[0]
        if kind != "photo" and mime_type is None:
            mime_type = _MEDIA_DEFAULT_MIME.get(kind, "application/octet-stream")
        return self._new_file(
            kind,
            content,
            file_name=file_name,
            mime_type=None if kind == "photo" else mime_type,
            size=_image_size(content),
        )

    def _caption_content(self, content: JsonDict, caption: str | None) -> JsonDict:
        if caption:
            content["caption"] = caption
            found = detect_entities(caption)
            if found:
                content["caption_entities"] = found
        return content

    def user_sends_photo(
        self,
        user: UserRef,
        content: bytes = TINY_PNG,
        *,
        caption: str | None = None,
        chat: ChatRef | None = None,
        reply_to: MessageRef | None = None,
        message_thread_id: int | None = None,
        media_group_id: str | None = None,
    ) -> JsonDict:
        """The user sends a photo; ``message["photo"][-1]["file_id"]`` downloads ``content`` via getFile."""
        stored = self._user_file("photo", content, None, None)
        body = self._caption_content({"photo": self._photo_sizes(stored)}, caption)
        if media_group_id:
            body["media_group_id"] = media_group_id
        return self.user_sends_message(
            user, body, chat=chat, reply_to=reply_to, message_thread_id=message_thread_id
        )

    def user_sends_document(
        self,
        user: UserRef,
        content: bytes = b"hello",
        file_name: str = "document.txt",
        *,
        mime_type: str | None = None,
        caption: str | None = None,
        chat: ChatRef | None = None,
        reply_to: MessageRef | None = None,
        message_thread_id: int | None = None,
    ) -> JsonDict:
        stored = self._user_file("document", content, file_name, mime_type)
        body = self._caption_content({"document": self._media_json("document", stored)}, caption)
        return self.user_sends_message(
            user, body, chat=chat, reply_to=reply_to, message_thread_id=message_thread_id
        )

    def user_edits_message(
        self, user: UserRef, message: MessageRef, text: str, *, chat: ChatRef | None = None
    ) -> JsonDict:
        """The user edits their message's text (or caption); queues an ``edited_message`` update."""
        editor = self._user(user)
        target = self._chat_of_message(message, chat, editor)
        stored = self._resolve_message(target, message)
        if stored.get("from", {}).get("id") != editor.id:
            raise ValueError("users can only edit their own messages")
        if "text" in stored:
            stored["text"] = text
            stored.pop("entities", None)
            found = detect_entities(text)
            if found:
                stored["entities"] = found
        else:
            stored.pop("caption_entities", None)
            self._caption_content(stored, text)
        stored["edit_date"] = self._now()
        if self._should_deliver(target, stored):
            self._enqueue({"edited_message": json.loads(json.dumps(stored))})
        return stored

    def user_presses_button(
        self,
        user: UserRef,
        message: MessageRef,
        callback_data: str,
        *,
        chat: ChatRef | None = None,
        strict: bool = True,
    ) -> str:
        """The user presses an inline button of ``message``; queues a ``callback_query``; returns its id.

        With ``strict`` the message must currently show a button with this ``callback_data`` (a real user
        can't press anything else); pass ``strict=False`` to simulate stale or forged data.
        """
        presser = self._user(user)
        target = self._chat_of_message(message, chat, presser)
        stored = self._resolve_message(target, message)
        if strict:
            rows = (stored.get("reply_markup") or {}).get("inline_keyboard") or []
            datas = [button.get("callback_data") for row in rows for button in row]
            if callback_data not in datas:
                raise ValueError(
                    f"message {stored['message_id']} has no button with callback_data {callback_data!r}; has {datas}"
                )
        query_id = str(secrets.randbits(63))
        chat_instance = str((target.id * 2654435761 + self.bot.id) % (2**63) - 2**62)
        query: JsonDict = {
            "id": query_id,
            "from": presser.to_api(),
            "message": json.loads(json.dumps(stored)),
            "chat_instance": chat_instance,
            "data": callback_data,
        }
        self.callbacks[query_id] = CallbackRecord(
            id=query_id,
            user_id=presser.id,
            data=callback_data,
            chat_id=target.id,
            message_id=int(stored["message_id"]),
            created_at=time.monotonic(),
        )
        self._enqueue({"callback_query": query})
        return query_id

    def _member_update(self, chat: FakeChat, user: FakeUser, old: str, new: str) -> None:
        old_member: JsonDict = {"status": old, "user": self.bot.to_api()}
        new_member: JsonDict = {"status": new, "user": self.bot.to_api()}
        for member in (old_member, new_member):
            if member["status"] == "kicked":
                member["until_date"] = 0
        self._enqueue(
            {
                "my_chat_member": {
                    "chat": chat.to_api(),
                    "from": user.to_api(),
                    "date": self._now(),
                    "old_chat_member": old_member,
                    "new_chat_member": new_member,
                }
            }
        )

    def user_blocks_bot(self, user: UserRef) -> None:
        """Sends to this user now fail with 403 "bot was blocked by the user"; queues ``my_chat_member``."""
        blocker = self._user(user)
        chat = self.chats[blocker.id]
        if not chat.blocked:
            chat.blocked = True
            self._member_update(chat, blocker, "member", "kicked")

    def user_unblocks_bot(self, user: UserRef) -> None:
        unblocker = self._user(user)
        chat = self.chats[unblocker.id]
        if chat.blocked:
            chat.blocked = False
            self._member_update(chat, unblocker, "kicked", "member")

    def user_creates_topic(
        self, user: UserRef, chat: ChatRef, name: str, *, icon_color: int = TOPIC_ICON_COLORS[0]
    ) -> ForumTopicState:
        """A (human) admin creates a forum topic; the service message is delivered to the bot."""
        creator = self._user(user)
        target = self._chat(chat)
        if not target.is_forum:
            raise ValueError(f"chat {target.id} is not a forum")
        topic = self._create_topic(target, name, icon_color, None, sender=creator.to_api())
        message = target.messages[topic.message_thread_id]
        if self._should_deliver(target, message):
            self._enqueue({"message": message})
        return topic

    def inject_raw_update(self, update: Mapping[str, Any], *, bypass_filter: bool = False) -> JsonDict:
        """Queue ``update`` as is (a fresh ``update_id`` is added if missing).

        It is delivered once even if its ``update_id`` was already confirmed, so the same update can be
        redelivered (Telegram does that when a bot dies before confirming an update).
        """
        return self._enqueue(json.loads(json.dumps(dict(update))), force=True, bypass_filter=bypass_filter)

    # ==================================================================================== inspection

    @property
    def calls(self) -> list[ApiCall]:
        """Every Bot API call received, in order (``method``, decoded ``params``, ``at``, ``status``...)."""
        return self._calls

    def calls_to(self, method: str, *, chat_id: int | None = None, ok: bool | None = None) -> list[ApiCall]:
        lowered = method.lower()
        return [
            call
            for call in self._calls
            if call.method.lower() == lowered
            and (chat_id is None or call.chat_id == chat_id)
            and (ok is None or call.ok == ok)
        ]

    def max_messages_in_window(self, chat_id: int | None = None, window: float = 1.0) -> int:
        """Max number of successful message sends (to ``chat_id``, or to any chat) within ``window`` seconds."""
        times = [
            call.at
            for call in self._calls
            if call.method.lower() in _MESSAGE_METHODS
            and call.ok
            and (chat_id is None or call.chat_id == chat_id)
        ]
        best, start = 0, 0
        for end, moment in enumerate(times):
            while moment - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def pending_updates(self) -> list[JsonDict]:
        """Updates not yet confirmed by the bot (or not yet delivered to the webhook)."""
        return [entry.update for entry in self._updates]

    async def wait_updates_consumed(self, timeout: float = 10.0) -> None:
        """Wait until the bot has confirmed every queued update (next getUpdates offset / webhook 2xx)."""
        deadline = time.monotonic() + timeout
        while self._updates:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(self._updates)} update(s) still pending: {self.pending_updates()}")
            await asyncio.sleep(0.01)

    def message(self, chat_id: int, message_id: int) -> JsonDict | None:
        """Current state of a message (None if deleted or unknown)."""
        chat = self.chats.get(chat_id)
        return chat.messages.get(message_id) if chat else None

    def chat_history(self, chat_id: int, thread_id: int | None = None) -> list[JsonDict]:
        """All live messages of a chat (users' and the bot's), oldest first."""
        chat = self.chats[chat_id]
        messages = sorted(chat.messages.values(), key=lambda message: int(message["message_id"]))
        if thread_id is None:
            return messages
        return [message for message in messages if message.get("message_thread_id") == thread_id]

    def bot_events(self, chat_id: int | None = None) -> list[BotEvent]:
        """Everything the bot did to messages (sent / edited / deleted), in order."""
        return list(self._events if chat_id is None else self._events_by_chat.get(chat_id, []))

    def bot_messages(self, chat_id: int, thread_id: int | None = None) -> list[JsonDict]:
        """Snapshots of every message the bot sent or edited in the chat (topic), in order.

        An edit appears as a new entry (with ``edit_date``); a forum service message created by the bot
        (topic created/edited/closed) appears too.
        """
        return [
            event.message
            for event in self._events_by_chat.get(chat_id, [])
            if event.message is not None and (thread_id is None or event.thread_id == thread_id)
        ]

    async def wait_for_bot_message(
        self,
        chat_id: int,
        predicate: Predicate | None = None,
        timeout: float = 10.0,
        thread_id: int | None = None,
    ) -> JsonDict:
        """Wait for the next bot message (sent or edited) in the chat/topic that matches ``predicate``.

        Each (chat, thread) has a cursor: the search starts after the message the previous wait on the same
        cursor returned, and a message returned once is never returned again (by any wait). Raises
        ``TimeoutError`` listing what the bot did send.
        """
        key = (chat_id, thread_id)
        deadline = time.monotonic() + timeout
        while True:
            events = self._events_by_chat.get(chat_id, [])
            for index in range(self._cursors.get(key, 0), len(events)):
                event = events[index]
                if event.message is None or event.seq in self._consumed_events:
                    continue
                if thread_id is not None and event.thread_id != thread_id:
                    continue
                if predicate is None or predicate(event.message):
                    self._consumed_events.add(event.seq)
                    self._cursors[key] = index + 1
                    return event.message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [
                    (
                        event.kind,
                        event.thread_id,
                        (event.message or {}).get("text") or (event.message or {}).get("caption"),
                    )
                    for event in events[-10:]
                ]
                raise TimeoutError(
                    f"no new matching bot message in chat {chat_id} (thread {thread_id}) within {timeout}s; "
                    f"last bot events: {seen}"
                )
            await self._bot_activity.wait(remaining)

    def skip_bot_messages(self, chat_id: int, thread_id: int | None = None) -> None:
        """Move the cursor to the end: later waits only see messages sent after this call."""
        for event in self._events_by_chat.get(chat_id, []):
            if thread_id is None or event.thread_id == thread_id:
                self._consumed_events.add(event.seq)
        self._cursors[(chat_id, thread_id)] = len(self._events_by_chat.get(chat_id, []))

    async def wait_for_call(
        self, method: str, predicate: Callable[[ApiCall], bool] | None = None, timeout: float = 10.0
    ) -> ApiCall:
        """Wait for the next completed call of ``method`` (same cursor rules as ``wait_for_bot_message``)."""
        lowered = method.lower()
        deadline = time.monotonic() + timeout
        while True:
            for index in range(self._call_cursors.get(lowered, 0), len(self._calls)):
                call = self._calls[index]
                if call.method.lower() != lowered or call.status == 0 or call.seq in self._consumed_calls:
                    continue
                if predicate is None or predicate(call):
                    self._consumed_calls.add(call.seq)
                    self._call_cursors[lowered] = index + 1
                    return call
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {method} call within {timeout}s")
            await self._calls_changed.wait(remaining)

    def callback_answered(self, callback_query_id: str) -> bool:
        record = self.callbacks.get(callback_query_id)
        return bool(record and record.answered)

    def callback_answer(self, callback_query_id: str) -> CallbackRecord:
        return self.callbacks[callback_query_id]

    def unanswered_callbacks(self) -> list[CallbackRecord]:
        """Callback queries the bot never answered (the user's button would keep spinning)."""
        return [record for record in self.callbacks.values() if not record.answered]

    async def wait_for_callback_answer(self, callback_query_id: str, timeout: float = 10.0) -> CallbackRecord:
        deadline = time.monotonic() + timeout
        while True:
            record = self.callbacks[callback_query_id]
            if record.answered:
                return record
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"callback query {callback_query_id} not answered within {timeout}s")
            await self._callbacks_changed.wait(remaining)

    def commands(self, scope: ScopeRef = None, language_code: str = "") -> list[JsonDict]:
        """Commands set for exactly this scope and language (like getMyCommands).

        ``scope`` may be None (default), a type name (``"all_private_chats"``), a dict like
        ``{"type": "chat", "chat_id": 1}`` or an aiogram ``BotCommandScope`` object.
        """
        key = (self._scope_key(scope, api=False), language_code)
        return [dict(item) for item in self._commands.get(key, [])]

    def effective_commands(self, user: UserRef, chat: ChatRef | None = None) -> list[JsonDict]:
        """The command list Telegram would show ``user`` in ``chat`` (scope/language fallback rules)."""
        viewer = self._user(user)
        target = self.chats[viewer.id] if chat is None else self._chat(chat)
        language = (viewer.language_code or "")[:2].lower()
        scopes: list[tuple[Any, ...]]
        if target.is_private:
            scopes = [("chat", target.id), ("all_private_chats",), ("default",)]
        else:
            is_admin = target.members.get(viewer.id) in ("creator", "administrator")
            scopes = [("chat_member", target.id, viewer.id)]
            if is_admin:
                scopes.append(("chat_administrators", target.id))
            scopes.append(("chat", target.id))
            if is_admin:
                scopes.append(("all_chat_administrators",))
            scopes += [("all_group_chats",), ("default",)]
        for scope in scopes:
            for lang in (language, ""):
                found = self._commands.get((scope, lang))
                if found:
                    return [dict(item) for item in found]
        return []

    def topics(self, chat_id: int, *, include_deleted: bool = False) -> list[ForumTopicState]:
        chat = self.chats[chat_id]
        return [topic for topic in chat.topics.values() if include_deleted or not topic.is_deleted]

    def topic_by_name(self, chat_id: int, name: str) -> ForumTopicState | None:
        for topic in self.topics(chat_id):
            if topic.name == name:
                return topic
        return None

    def reply_keyboard(self, chat_id: int) -> JsonDict | None:
        """The ReplyKeyboardMarkup currently shown in the chat (None if never sent or removed)."""
        return self.chats[chat_id].reply_keyboard

    def file_content(self, file_id: str) -> bytes:
        return self.files[file_id].content

    def bot_text(
        self, field: Literal["name", "description", "short_description"], language_code: str = ""
    ) -> str | None:
        return self._bot_texts.get((field, language_code))


@dataclass
class _WithDescription:
    result: Any
    description: str
