"""State kept by :class:`~botapi_double.server.BotAPIDouble` and the records tests inspect."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

JsonDict = dict[str, Any]

ChatType = Literal["private", "group", "supergroup", "channel"]
MemberStatus = Literal["creator", "administrator", "member", "restricted", "left", "kicked"]

# Colours accepted by createForumTopic (the Bot API rejects anything else).
TOPIC_ICON_COLORS = (7322096, 16766590, 13338331, 9367192, 16749490, 16478047)

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)


class ApiError(Exception):
    """A Bot API error answer: ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(self, error_code: int, description: str, parameters: JsonDict | None = None) -> None:
        super().__init__(f"{error_code} {description}")
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def to_json(self) -> JsonDict:
        body: JsonDict = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


@dataclass
class FakeUser:
    """A Telegram user (a customer or an operator) driven by the test."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False
    is_premium: bool = False
    hide_forwards: bool = False
    """Forwards from this user show ``forward_origin.type == "hidden_user"`` (privacy setting)."""

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}" if self.last_name else self.first_name

    def to_api(self) -> JsonDict:
        data: JsonDict = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        if self.is_premium:
            data["is_premium"] = True
        return data


@dataclass
class ForumTopicState:
    chat_id: int
    message_thread_id: int
    name: str
    icon_color: int
    icon_custom_emoji_id: str | None = None
    is_closed: bool = False
    is_deleted: bool = False
    created_by: int | None = None

    def to_api(self) -> JsonDict:
        data: JsonDict = {
            "message_thread_id": self.message_thread_id,
            "name": self.name,
            "icon_color": self.icon_color,
        }
        if self.icon_custom_emoji_id:
            data["icon_custom_emoji_id"] = self.icon_custom_emoji_id
        return data


@dataclass
class FakeChat:
    id: int
    type: ChatType
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    is_forum: bool = False
    user_id: int | None = None
    """For private chats: the user on the other side."""
    started: bool = True
    """Private chats: the user has started the bot (else 403 "bot can't initiate conversation")."""
    blocked: bool = False
    """Private chats: the user blocked the bot (403 "bot was blocked by the user")."""
    bot_status: MemberStatus = "member"
    bot_can_manage_topics: bool = True
    bot_can_delete_messages: bool = True
    members: dict[int, MemberStatus] = field(default_factory=dict)
    messages: dict[int, JsonDict] = field(default_factory=dict)
    deleted_message_ids: set[int] = field(default_factory=set)
    next_message_id: int = 1
    topics: dict[int, ForumTopicState] = field(default_factory=dict)
    reply_keyboard: JsonDict | None = None
    """Last ReplyKeyboardMarkup the bot sent here (cleared by ReplyKeyboardRemove)."""
    menu_button: JsonDict = field(default_factory=lambda: {"type": "default"})

    @property
    def is_private(self) -> bool:
        return self.type == "private"

    def to_api(self) -> JsonDict:
        data: JsonDict = {"id": self.id, "type": self.type}
        if self.type == "private":
            data["first_name"] = self.first_name or ""
            if self.last_name:
                data["last_name"] = self.last_name
        else:
            data["title"] = self.title or ""
        if self.username:
            data["username"] = self.username
        if self.is_forum:
            data["is_forum"] = True
        return data

    def allocate_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id


@dataclass
class UploadedFile:
    """A file part of a multipart request."""

    field_name: str
    filename: str | None
    content_type: str | None
    content: bytes


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    kind: str
    content: bytes
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    file_path: str | None = None
    source_url: str | None = None

    @property
    def file_size(self) -> int:
        return len(self.content)


@dataclass
class ApiCall:
    """One Bot API request received by the double (also requests made via a webhook response)."""

    seq: int
    method: str
    """Canonical method name, e.g. ``sendMessage`` (the name as sent when the method is unknown)."""
    params: JsonDict
    """Decoded parameters: ints, bools and JSON fields are decoded; the rest are strings."""
    files: dict[str, UploadedFile]
    at: float
    """``time.monotonic()`` when the request arrived."""
    wall_time: float
    status: int = 0
    response: JsonDict = field(default_factory=dict)
    source: Literal["http", "webhook_response"] = "http"
    injected: bool = False
    """True when the answer came from ``fail_next`` / flood control rather than the method itself."""

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def result(self) -> Any:
        return self.response.get("result")

    @property
    def chat_id(self) -> int | str | None:
        value = self.params.get("chat_id")
        return value if isinstance(value, int | str) else None


@dataclass
class BotEvent:
    """Something the bot did to a message: ``sent``, ``edited`` or ``deleted``."""

    seq: int
    kind: Literal["sent", "edited", "deleted"]
    chat_id: int
    message_id: int
    thread_id: int | None
    message: JsonDict | None
    """Snapshot of the message after the action (None for deletions)."""
    method: str
    at: float
    params: JsonDict = field(default_factory=dict)


@dataclass
class CallbackRecord:
    id: str
    user_id: int
    data: str | None
    chat_id: int | None
    message_id: int | None
    created_at: float
    answered: bool = False
    answered_at: float | None = None
    text: str | None = None
    show_alert: bool = False
    url: str | None = None
    cache_time: int | None = None


@dataclass
class WebhookDelivery:
    """One attempt to POST an update to the webhook."""

    update_id: int
    attempt: int
    url: str
    at: float
    status: int | None
    """HTTP status of the webhook's answer (None when the connection failed)."""
    error: str | None
    secret_token: str | None
    duration: float
    response_method: str | None = None
    """Method the webhook answered with in its body (executed by the double like Telegram does)."""


@dataclass
class WebhookConfig:
    url: str = ""
    secret_token: str | None = None
    max_connections: int = 40
    ip_address: str | None = None
    has_custom_certificate: bool = False
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class FloodLimits:
    """Optional flood control like Telegram's (disabled unless set with ``set_flood_limits``).

    Each limit is (max messages, window seconds); exceeding one returns 429 with ``retry_after``.
    """

    per_chat: tuple[int, float] | None = (1, 1.0)
    per_group: tuple[int, float] | None = (20, 60.0)
    global_: tuple[int, float] | None = (30, 1.0)
    burst: int = 0
    """Extra messages tolerated per chat above ``per_chat`` before 429 (Telegram allows short bursts)."""


@dataclass
class Fault:
    method: str
    """Lower-case method name or ``*``."""
    remaining: int
    error_code: int = 429
    description: str | None = None
    retry_after: int | None = None
    apply: bool = False
    disconnect: bool = False
    delay: float = 0.0

    def to_error(self) -> ApiError:
        code = self.error_code
        if code == 429:
            retry = self.retry_after if self.retry_after is not None else 1
            description = self.description or f"Too Many Requests: retry after {retry}"
            return ApiError(429, description, {"retry_after": retry})
        defaults = {
            400: "Bad Request",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not Found",
            409: "Conflict",
            500: "Internal Server Error",
            502: "Bad Gateway",
            503: "Service Unavailable",
            504: "Gateway Timeout",
        }
        description = self.description or defaults.get(code, "Internal Server Error")
        params = {"retry_after": self.retry_after} if self.retry_after else None
        return ApiError(code, description, params)
