"""Text formatting the way the Bot API server does it.

The parsers below follow the behaviour of TDLib's ``parse_html``, ``parse_markdown_v2`` and
``parse_markdown`` (what the official Bot API server runs), including the wording of their errors, so a bot
that produces broken markup gets the same ``400 Bad Request: can't parse entities: ...`` it would get from
Telegram. Entity offsets and lengths are in UTF-16 code units, as in the real API.

After parsing, the text is "fixed" like Telegram does: control characters become spaces, ``\\r`` is dropped,
trailing whitespace and leading spaces/newlines are trimmed, and URLs, @mentions, #hashtags, $CASHTAGS,
/commands and e-mail addresses are detected and added as entities.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ENTITY_TYPES",
    "FormattingError",
    "check_link",
    "detect_entities",
    "format_text",
    "utf16_len",
]

JsonDict = dict[str, Any]
UserLookup = Callable[[int], JsonDict | None]

ENTITY_TYPES = frozenset(
    {
        "mention",
        "hashtag",
        "cashtag",
        "bot_command",
        "url",
        "email",
        "phone_number",
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "blockquote",
        "expandable_blockquote",
        "code",
        "pre",
        "text_link",
        "text_mention",
        "custom_emoji",
        "date_time",
    }
)

# TDLib's MessageEntity::get_type_priority, used to order entities that share offset and length.
_PRIORITY = {
    "mention": 50,
    "hashtag": 50,
    "bot_command": 50,
    "url": 50,
    "email": 50,
    "bold": 90,
    "italic": 91,
    "code": 20,
    "pre": 11,
    "pre_code": 10,
    "text_link": 49,
    "text_mention": 49,
    "cashtag": 50,
    "phone_number": 50,
    "underline": 92,
    "strikethrough": 93,
    "blockquote": 0,
    "spoiler": 94,
    "custom_emoji": 99,
    "expandable_blockquote": 0,
    "date_time": 30,
}

# Names TDLib uses in "Can't find end of <Type> entity" errors.
_TD_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "pre_code": "PreCode",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
    "blockquote": "BlockQuote",
    "expandable_blockquote": "ExpandableBlockQuote",
}

# Entity kinds that auto-detected entities must not overlap.
_ATOMIC = frozenset(
    {
        "code",
        "pre",
        "pre_code",
        "text_link",
        "text_mention",
        "custom_emoji",
        "date_time",
        "url",
        "email",
        "mention",
        "hashtag",
        "cashtag",
        "bot_command",
        "phone_number",
    }
)

_PAD = "\0\0\0\0"
_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "tg-time",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)


class FormattingError(Exception):
    """Raised with the TDLib error text (without the ``Bad Request:`` prefix)."""


@dataclass
class _Ent:
    kind: str
    offset: int
    length: int
    arg: str = ""
    extra: JsonDict = field(default_factory=dict)


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (the unit of entity offsets)."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def _u16(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _is_space(ch: str) -> bool:
    return ch in " \t\r\n\0\v"


def _is_alpha(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def _is_alnum(ch: str) -> bool:
    return _is_alpha(ch) or _is_digit(ch)


def _is_hex(ch: str) -> bool:
    return _is_digit(ch) or ("a" <= ch <= "f") or ("A" <= ch <= "F")


# --------------------------------------------------------------------------------------------------- links


def check_link(url: str, *, http_only: bool = False, https_only: bool = False) -> str:
    """Validate and normalise a link like TDLib's ``LinkManager::check_link``; raise ``ValueError``."""
    link = url.strip()
    lowered = link.lower()
    special = ""
    for prefix in ("tg:", "ton:", "tonsite:"):
        if lowered.startswith(prefix):
            special = prefix[:-1]
            link = link[len(prefix) :]
            if link.startswith("//"):
                link = link[2:]
            break
    if special:
        if https_only:
            raise ValueError("Only HTTPS links are allowed")
        if http_only:
            raise ValueError("Only HTTP links are allowed")
        match = re.match(r"^([^/?#]*)(.*)$", link, re.S)
        assert match is not None
        host, rest = match.group(1), match.group(2)
        allowed = re.compile(r"^[A-Za-z0-9_\-.]+$" if special == "tonsite" else r"^[A-Za-z0-9_\-]+$")
        if not host or not allowed.match(host):
            raise ValueError("Wrong tg URL" if special == "tg" else "Wrong ton URL")
        if rest.startswith("/"):
            rest = rest[1:]
        return f"{special}://{host.lower()}{rest}"

    scheme = "http"
    rest = link
    scheme_match = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*)://(.*)$", link, re.S)
    if scheme_match:
        scheme = scheme_match.group(1).lower()
        rest = scheme_match.group(2)
        if scheme not in ("http", "https"):
            raise ValueError("Unsupported URL protocol")
    if https_only and scheme != "https":
        raise ValueError("Only HTTPS links are allowed")
    match = re.match(r"^([^/?#]*)(.*)$", rest, re.S)
    assert match is not None
    authority, tail = match.group(1), match.group(2)
    userinfo = ""
    if "@" in authority:
        userinfo, authority = authority.rsplit("@", 1)
    host, port = authority, ""
    if host.startswith("["):
        end = host.find("]")
        if end == -1:
            raise ValueError("Wrong IPv6 address")
        host, port = host[: end + 1], host[end + 1 :].lstrip(":")
    elif ":" in host:
        host, port = host.split(":", 1)
    if not host or any(_is_space(ch) for ch in host):
        raise ValueError("Wrong HTTP URL")
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        raise ValueError("Wrong port number specified in the URL")
    if "." not in host and not host.startswith("["):
        raise ValueError("Wrong HTTP URL")
    if not tail.startswith("/"):
        tail = "/" + tail
    result = f"{scheme}://"
    if userinfo:
        result += userinfo + "@"
    result += host.lower()
    if port:
        result += ":" + port
    return result + tail


def _link_user_id(url: str) -> int | None:
    match = re.match(r"^tg:(?://)?user\?id=(\d+)$", url.strip(), re.I)
    if match:
        return int(match.group(1))
    return None


def _link_entity(offset: int, length: int, url: str, users: UserLookup | None) -> _Ent | None:
    user_id = _link_user_id(url)
    if user_id is not None:
        user = users(user_id) if users is not None else None
        if user is not None:
            return _Ent("text_mention", offset, length, extra={"user": user})
    try:
        checked = check_link(url)
    except ValueError:
        return None
    return _Ent("text_link", offset, length, checked)


# ---------------------------------------------------------------------------------------------------- HTML


def _decode_html_entity(s: str, pos: int) -> tuple[int, int]:
    """Return (code point, new position) or (0, pos) when ``s[pos:]`` is not a supported entity."""
    end = pos + 1
    res = 0
    if s[pos + 1] == "#":
        end += 1
        if s[pos + 2] == "x":
            end += 1
            while _is_hex(s[end]):
                res = res * 16 + int(s[end], 16)
                end += 1
        else:
            while _is_digit(s[end]):
                res = res * 10 + int(s[end])
                end += 1
        if res == 0 or res >= 0x10FFFF or end - pos >= 10:
            return 0, pos
    else:
        while _is_alpha(s[end]):
            end += 1
        name = s[pos + 1 : end]
        named = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
        if name not in named:
            return 0, pos
        res = ord(named[name])
    if s[end] == ";":
        return res, end + 1
    return res, end


@dataclass
class _OpenTag:
    name: str
    arg: str
    date: int
    offset: int
    out_pos: int


def parse_html(text: str, users: UserLookup | None = None) -> tuple[str, list[_Ent]]:
    s = text + _PAD
    n = len(text)
    out: list[str] = []
    ents: list[_Ent] = []
    utf16 = 0
    need_recheck = False
    stack: list[_OpenTag] = []

    def err(message: str) -> FormattingError:
        return FormattingError(message)

    i = 0
    while i < n:
        c = s[i]
        if c == "&":
            code, new_i = _decode_html_entity(s, i)
            if code != 0:
                i = new_i
                if 0xD800 <= code <= 0xDFFF:
                    need_recheck = True
                ch = chr(code)
                utf16 += _u16(ch)
                out.append(ch)
                continue
        if c != "<":
            utf16 += _u16(c)
            out.append(c)
            i += 1
            continue

        begin = i
        i += 1
        if s[i] != "/":
            while not _is_space(s[i]) and s[i] != ">":
                i += 1
            if i >= n:
                raise err(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
            tag = s[begin + 1 : i].lower()
            if tag not in _HTML_TAGS:
                raise err(f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
            arg = ""
            date = 0
            while s[i] != ">":
                while i < n and _is_space(s[i]):
                    i += 1
                if s[i] == ">":
                    break
                attr_begin = i
                while not _is_space(s[i]) and s[i] not in "=>/\"'":
                    i += 1
                attr = s[attr_begin:i]
                if not attr:
                    raise err(
                        f'Empty attribute name in the tag "{tag}" at byte offset {_byte_offset(text, begin)}'
                    )
                while i < n and _is_space(s[i]):
                    i += 1
                if s[i] != "=":
                    if i >= n:
                        raise err(f'Unclosed start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
                    if tag == "blockquote" and attr == "expandable":
                        arg = "1"
                    continue
                i += 1
                while i < n and _is_space(s[i]):
                    i += 1
                if i >= n:
                    raise err(f'Unclosed start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
                if s[i] not in "'\"":
                    token_begin = i
                    while _is_alnum(s[i]) or s[i] in ".-":
                        i += 1
                    value = s[token_begin:i].lower()
                    if not _is_space(s[i]) and s[i] != ">":
                        raise err(
                            f"Unexpected end of name token at byte offset {_byte_offset(text, token_begin)}"
                        )
                else:
                    quote = s[i]
                    i += 1
                    chars: list[str] = []
                    while i < n and s[i] != quote:
                        if s[i] == "&":
                            code, new_i = _decode_html_entity(s, i)
                            if code != 0:
                                chars.append(chr(code))
                                i = new_i
                                continue
                        chars.append(s[i])
                        i += 1
                    if s[i] == quote:
                        i += 1
                    value = "".join(chars)
                if i >= n:
                    raise err(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
                if tag == "a" and attr == "href":
                    arg = value
                elif tag == "code" and attr == "class" and value.startswith("language-"):
                    arg = value[9:]
                elif tag == "span" and attr == "class" and value.startswith("tg-"):
                    arg = value[3:]
                elif tag == "tg-emoji" and attr == "emoji-id":
                    arg = value
                elif tag == "blockquote" and attr == "expandable":
                    arg = "1"
                elif tag == "tg-time" and attr == "unix":
                    date = int(value) if value.isdigit() else 0
                elif tag == "tg-time" and attr == "format":
                    arg = value
            if tag == "span" and arg != "spoiler":
                raise err(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(text, begin)}'
                )
            stack.append(_OpenTag(tag, arg, date, utf16, len(out)))
            i += 1
            continue

        # end tag
        if not stack:
            raise err(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
        while not _is_space(s[i]) and s[i] != ">":
            i += 1
        end_tag = s[begin + 2 : i].lower()
        while _is_space(s[i]) and i < n:
            i += 1
        if s[i] != ">":
            raise err(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
        top = stack[-1]
        if end_tag and end_tag != top.name:
            raise err(
                f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                f'expected "</{top.name}>", found "</{end_tag}>"'
            )
        if utf16 > top.offset:
            off = top.offset
            length = utf16 - off
            name = top.name
            if name in ("i", "em"):
                ents.append(_Ent("italic", off, length))
            elif name in ("b", "strong"):
                ents.append(_Ent("bold", off, length))
            elif name in ("s", "strike", "del"):
                ents.append(_Ent("strikethrough", off, length))
            elif name in ("u", "ins"):
                ents.append(_Ent("underline", off, length))
            elif name == "tg-spoiler" or (name == "span" and top.arg == "spoiler"):
                ents.append(_Ent("spoiler", off, length))
            elif name == "tg-emoji":
                if not top.arg.isdigit() or int(top.arg) == 0:
                    raise err("Invalid custom emoji identifier specified")
                ents.append(_Ent("custom_emoji", off, length, extra={"custom_emoji_id": top.arg}))
            elif name == "tg-time":
                if top.date > 0:
                    extra: JsonDict = {"unix_time": top.date}
                    if top.arg:
                        extra["date_time_format"] = top.arg
                    ents.append(_Ent("date_time", off, length, extra=extra))
            elif name == "a":
                url = top.arg or "".join(out[top.out_pos :])
                link = _link_entity(off, length, url, users)
                if link is not None:
                    ents.append(link)
            elif name == "pre":
                last = ents[-1] if ents else None
                if (
                    last is not None
                    and last.kind == "code"
                    and last.offset == off
                    and last.length == length
                    and last.arg
                ):
                    last.kind = "pre_code"
                else:
                    ents.append(_Ent("pre", off, length))
            elif name == "code":
                last = ents[-1] if ents else None
                if (
                    last is not None
                    and last.kind == "pre"
                    and last.offset == off
                    and last.length == length
                    and top.arg
                ):
                    last.kind = "pre_code"
                    last.arg = top.arg
                else:
                    ents.append(_Ent("code", off, length, top.arg))
            elif name == "blockquote":
                ents.append(_Ent("expandable_blockquote" if top.arg else "blockquote", off, length))
        stack.pop()
        i += 1

    if stack:
        raise err(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    for ent in ents:
        if ent.kind == "code":
            ent.arg = ""
    result = "".join(out)
    if need_recheck:
        try:
            result = result.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
        except UnicodeDecodeError:
            raise err(
                "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched "
                "surrogate code units"
            ) from None
    return result, ents


# ------------------------------------------------------------------------------------------------ Markdown


@dataclass
class _OpenMd:
    kind: str
    arg: str
    offset: int
    src: int
    out_pos: int


def _reserved_error(ch: str) -> FormattingError:
    return FormattingError(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")


def parse_markdown_v2(text: str, users: UserLookup | None = None) -> tuple[str, list[_Ent]]:
    s = text + _PAD
    n = len(text)
    out: list[str] = []
    ents: list[_Ent] = []
    utf16 = 0
    stack: list[_OpenMd] = []
    have_blockquote = False
    can_start_blockquote = True

    def not_found(top: _OpenMd) -> FormattingError:
        return FormattingError(
            f"Can't find end of {_TD_NAMES[top.kind]} entity at byte offset {_byte_offset(text, top.src)}"
        )

    i = -1
    while True:
        i += 1
        if i >= n:
            break
        c = s[i]
        if c == "\\" and 0 < ord(s[i + 1]) <= 126:
            i += 1
            utf16 += 1
            out.append(s[i])
            if s[i] != "\r":
                can_start_blockquote = s[i] == "\n"
            continue
        reserved = "_*[]()~`>#+-=|{}.!\n"
        if stack and stack[-1].kind in ("code", "pre", "pre_code"):
            reserved = "`"
        if c not in reserved:
            utf16 += _u16(c)
            if c != "\r":
                can_start_blockquote = False
            out.append(c)
            continue

        is_end = False
        if stack:
            kind = stack[-1].kind
            if have_blockquote and c == "\n" and (i + 1 == n or s[i + 1] != ">"):
                is_end = True
            elif kind == "bold":
                is_end = c == "*"
            elif kind == "italic":
                is_end = c == "_" and s[i + 1] != "_"
            elif kind == "code":
                is_end = c == "`"
            elif kind in ("pre", "pre_code"):
                is_end = c == "`" and s[i + 1] == "`" and s[i + 2] == "`"
            elif kind in ("text_link", "custom_emoji"):
                is_end = c == "]"
            elif kind == "underline":
                is_end = c == "_" and s[i + 1] == "_"
            elif kind == "strikethrough":
                is_end = c == "~"
            elif kind == "spoiler":
                is_end = c == "|" and s[i + 1] == "|"

        if not is_end:
            src = i
            arg = ""
            new_kind: str | None
            if c == "_":
                if s[i + 1] == "_":
                    new_kind = "underline"
                    i += 1
                else:
                    new_kind = "italic"
            elif c == "*":
                new_kind = "bold"
            elif c == "~":
                new_kind = "strikethrough"
            elif c == "|":
                if s[i + 1] != "|":
                    raise _reserved_error(c)
                i += 1
                new_kind = "spoiler"
            elif c == "[":
                new_kind = "text_link"
            elif c == "`":
                if s[i + 1] == "`" and s[i + 2] == "`":
                    i += 3
                    new_kind = "pre"
                    lang_end = i
                    while not _is_space(s[lang_end]) and s[lang_end] != "`":
                        lang_end += 1
                    if i != lang_end and lang_end < n and s[lang_end] != "`":
                        new_kind = "pre_code"
                        arg = s[i:lang_end]
                        i = lang_end
                    if s[i] in "\n\r":
                        if s[i + 1] in "\n\r" and s[i] != s[i + 1]:
                            i += 2
                        else:
                            i += 1
                    i -= 1
                else:
                    new_kind = "code"
            elif c == "!":
                if s[i + 1] != "[":
                    raise _reserved_error(c)
                i += 1
                new_kind = "custom_emoji"
            elif c == "\n":
                utf16 += 1
                out.append("\n")
                can_start_blockquote = True
                new_kind = None
            elif c == ">":
                if not can_start_blockquote:
                    raise _reserved_error(c)
                if have_blockquote:
                    new_kind = None
                else:
                    new_kind = "blockquote"
                    have_blockquote = True
            else:
                raise _reserved_error(c)
            if new_kind is None:
                continue
            stack.append(_OpenMd(new_kind, arg, utf16, src, len(out)))
            continue

        # end of an entity
        kind = stack[-1].kind
        if c == "\n" and kind != "blockquote":
            top = stack[-1]
            if kind != "spoiler" or not (top.src == i - 2 or (top.src == i - 3 and out and out[-1] == "\r")):
                raise not_found(top)
            stack.pop()
            if stack[-1].kind != "blockquote":
                raise not_found(stack[-1])
            kind = "expandable_blockquote"
        top = stack[-1]
        arg = top.arg
        skip = utf16 == top.offset
        extra: JsonDict = {}
        mention_user: JsonDict | None = None
        if kind in ("underline", "spoiler"):
            i += 1
        elif kind in ("pre", "pre_code"):
            i += 2
        elif kind in ("text_link", "custom_emoji"):
            if s[i + 1] != "(":
                if kind == "custom_emoji":
                    raise FormattingError("The entity must contain a tg://emoji or tg://time URL")
                url = "".join(out[top.out_pos :])
            else:
                i += 2
                url_begin = i
                url_chars: list[str] = []
                while i < n and s[i] != ")":
                    if s[i] == "\\" and 0 < ord(s[i + 1]) <= 126:
                        url_chars.append(s[i + 1])
                        i += 2
                        continue
                    url_chars.append(s[i])
                    i += 1
                if s[i] != ")":
                    raise FormattingError(
                        f"Can't find end of a URL at byte offset {_byte_offset(text, url_begin)}"
                    )
                url = "".join(url_chars)
            if kind == "text_link":
                link = _link_entity(0, 0, url, users)
                if link is None:
                    skip = True
                elif link.kind == "text_mention":
                    kind = "text_mention"
                    mention_user = link.extra["user"]
                else:
                    arg = link.arg
            else:
                emoji = re.match(r"^tg://emoji\?id=(\d+)$", url)
                when = re.match(r"^tg://time\?unix=(\d+)(?:&format=([A-Za-z]*))?$", url)
                if emoji and int(emoji.group(1)) > 0:
                    extra = {"custom_emoji_id": emoji.group(1)}
                elif when:
                    kind = "date_time"
                    extra = {"unix_time": int(when.group(1))}
                    if when.group(2):
                        extra["date_time_format"] = when.group(2)
                else:
                    raise FormattingError("Invalid tg://emoji or tg://time URL specified")
        elif kind in ("blockquote", "expandable_blockquote"):
            have_blockquote = False
            out.append(s[i])
            can_start_blockquote = True
            utf16 += 1
            skip = False
        if not skip:
            length = utf16 - top.offset
            if mention_user is not None:
                ents.append(_Ent("text_mention", top.offset, length, extra={"user": mention_user}))
            else:
                ents.append(_Ent(kind, top.offset, length, arg, extra))
        stack.pop()

    if have_blockquote:
        kind = "blockquote"
        if stack and stack[-1].kind == "spoiler" and stack[-1].src == n - 2:
            stack.pop()
            kind = "expandable_blockquote"
        if stack and stack[-1].kind == "blockquote":
            length = utf16 - stack[-1].offset
            if length:
                ents.append(_Ent(kind, stack[-1].offset, length))
            stack.pop()
    if stack:
        raise not_found(stack[-1])
    return "".join(out), ents


def parse_markdown(text: str, users: UserLookup | None = None) -> tuple[str, list[_Ent]]:
    """Legacy ``Markdown`` parse mode."""
    s = text + _PAD
    n = len(text)
    out: list[str] = []
    ents: list[_Ent] = []
    utf16 = 0
    i = -1
    while True:
        i += 1
        if i >= n:
            break
        c = s[i]
        if c == "\\" and s[i + 1] in "_*`[":
            i += 1
            out.append(s[i])
            utf16 += 1
            continue
        if c not in "_*`[":
            utf16 += _u16(c)
            out.append(c)
            continue
        begin = i
        end_char = "]" if c == "[" else c
        is_pre = False
        i += 1
        language = ""
        if c == "`" and s[i] == "`" and s[i + 1] == "`":
            i += 2
            is_pre = True
            lang_end = i
            while not _is_space(s[lang_end]) and s[lang_end] != "`":
                lang_end += 1
            if i != lang_end and lang_end < n and s[lang_end] != "`":
                language = s[i:lang_end]
                i = lang_end
            if s[i] in "\n\r":
                if s[i + 1] in "\n\r" and s[i] != s[i + 1]:
                    i += 2
                else:
                    i += 1
        offset = utf16
        out_pos = len(out)
        while i < n and (s[i] != end_char or (is_pre and not (s[i + 1] == "`" and s[i + 2] == "`"))):
            utf16 += _u16(s[i])
            out.append(s[i])
            i += 1
        if i == n:
            raise FormattingError(
                f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}"
            )
        if offset != utf16:
            length = utf16 - offset
            if c == "_":
                ents.append(_Ent("italic", offset, length))
            elif c == "*":
                ents.append(_Ent("bold", offset, length))
            elif c == "[":
                if s[i + 1] != "(":
                    url = "".join(out[out_pos:])
                else:
                    i += 2
                    url_chars: list[str] = []
                    while i < n and s[i] != ")":
                        url_chars.append(s[i])
                        i += 1
                    url = "".join(url_chars)
                link = _link_entity(offset, length, url, users)
                if link is not None:
                    ents.append(link)
            elif is_pre:
                ents.append(_Ent("pre_code" if language else "pre", offset, length, language))
            else:
                ents.append(_Ent("code", offset, length))
        if is_pre:
            i += 2
    return "".join(out), ents


# ---------------------------------------------------------------------------------------- auto-detection

_TLDS = (
    "com|net|org|io|cn|ru|me|info|biz|xyz|top|cc|co|app|dev|shop|store|site|online|hk|tw|uk|de|jp|kr|"
    "sg|us|eu|fr|in|tv|ai|gg|tech|pro|vip|club|link|live|fun|icu|ltd|work|cloud|edu|gov|mobi|name|ua|by|kz"
)
_URL_RE = re.compile(
    r"(?<![\w@.\-/])(?:(?:https?|ftp|tg|ton)://[^\s<>\"]+|(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+"
    rf"(?:{_TLDS})(?![A-Za-z0-9\-])(?::\d{{1,5}})?(?:[/?#][^\s<>\"]*)?)",
    re.IGNORECASE,
)
_EMAIL_RE = re.compile(r"(?<![\w.+\-])[A-Za-z0-9._%+\-]+@(?:[A-Za-z0-9\-]+\.)+[A-Za-z]{2,}(?![\w\-])")
_MENTION_RE = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{4,32}(?![\w@])")
_COMMAND_RE = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/@<>])")
_HASHTAG_RE = re.compile(r"(?<![\w#&])#\w*[^\W\d]\w*")
_CASHTAG_RE = re.compile(r"(?<![\w$])\$[A-Z]{1,8}(?![\w$])")
_TRAILING_URL_PUNCT = ".,:;!?)]}'\""


def _utf16_prefix(text: str) -> list[int]:
    prefix = [0]
    for ch in text:
        prefix.append(prefix[-1] + _u16(ch))
    return prefix


def _detect(text: str) -> list[_Ent]:
    prefix = _utf16_prefix(text)
    taken: list[tuple[int, int]] = []
    found: list[_Ent] = []

    def free(a: int, b: int) -> bool:
        return all(b <= x or a >= y for x, y in taken)

    def add(kind: str, a: int, b: int) -> None:
        if b > a and free(a, b):
            taken.append((a, b))
            found.append(_Ent(kind, prefix[a], prefix[b] - prefix[a]))

    for match in _EMAIL_RE.finditer(text):
        add("email", match.start(), match.end())
    for match in _URL_RE.finditer(text):
        end = match.end()
        while end > match.start() and text[end - 1] in _TRAILING_URL_PUNCT:
            end -= 1
        add("url", match.start(), end)
    for kind, regex in (
        ("bot_command", _COMMAND_RE),
        ("mention", _MENTION_RE),
        ("hashtag", _HASHTAG_RE),
        ("cashtag", _CASHTAG_RE),
    ):
        for match in regex.finditer(text):
            add(kind, match.start(), match.end())
    return found


def detect_entities(text: str) -> list[JsonDict]:
    """Entities Telegram finds by itself in plain text (urls, mentions, commands, hashtags...)."""
    return [_to_api(e) for e in _sorted(_detect(text))]


# ------------------------------------------------------------------------------------- fix_formatted_text


def _sorted(ents: list[_Ent]) -> list[_Ent]:
    return sorted(ents, key=lambda e: (e.offset, -e.length, _PRIORITY.get(e.kind, 50)))


def _to_api(ent: _Ent) -> JsonDict:
    kind = ent.kind
    result: JsonDict = {"offset": ent.offset, "length": ent.length}
    if kind == "pre_code":
        result["type"] = "pre"
        result["language"] = ent.arg
    else:
        result["type"] = kind
        if kind == "text_link":
            result["url"] = ent.arg
        elif kind == "pre" and ent.arg:
            result["language"] = ent.arg
    result.update(ent.extra)
    return {"type": result.pop("type"), **result}


def _clean(text: str, ents: list[_Ent]) -> str:
    """TDLib's clean_input_string: control characters -> space, drop \\r and a few invisible marks."""
    old_prefix = _utf16_prefix(text)
    chars: list[str] = []
    mapping: dict[int, int] = {}
    new_off = 0
    for idx, ch in enumerate(text):
        mapping[old_prefix[idx]] = new_off
        code = ord(ch)
        if ch == "\r" or 0x2028 <= code <= 0x202E or code in (0x0333, 0x033F, 0x030A):
            continue
        if code < 32 and ch != "\n":
            ch = " "
        chars.append(ch)
        new_off += _u16(ch)
    mapping[old_prefix[-1]] = new_off
    if len(chars) != len(text):
        for ent in ents:
            start = mapping.get(ent.offset, ent.offset)
            end = mapping.get(ent.offset + ent.length, ent.offset + ent.length)
            ent.offset, ent.length = start, end - start
    return "".join(chars)


def _parse_explicit_entities(raw: Sequence[Any], users: UserLookup | None) -> list[_Ent]:
    ents: list[_Ent] = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise FormattingError("Can't parse MessageEntity: expected an Object")
        kind = item.get("type")
        if not isinstance(kind, str):
            raise FormattingError('Can\'t parse MessageEntity: Field "type" must be of type String')
        offset, length = item.get("offset"), item.get("length")
        if not isinstance(offset, int) or not isinstance(length, int):
            raise FormattingError('Can\'t parse MessageEntity: Field "offset" must be a valid Number')
        if offset < 0 or offset > 1000000:
            raise FormattingError(f"Receive an entity with incorrect offset {offset}")
        if length < 0 or length > 1000000:
            raise FormattingError(f"Receive an entity with incorrect length {length}")
        if kind not in ENTITY_TYPES:
            raise FormattingError("Can't parse MessageEntity: Unsupported type specified")
        if kind == "text_link":
            url = item.get("url")
            if not isinstance(url, str):
                raise FormattingError('Can\'t parse MessageEntity: Field "url" must be of type String')
            link = _link_entity(offset, length, url, users)
            if link is None:
                raise FormattingError("Can't parse MessageEntity: Wrong HTTP URL")
            ents.append(link)
        elif kind == "pre":
            language = item.get("language") or ""
            ents.append(_Ent("pre_code" if language else "pre", offset, length, str(language)))
        elif kind == "text_mention":
            user = item.get("user")
            if not isinstance(user, Mapping) or "id" not in user:
                raise FormattingError('Can\'t parse MessageEntity: Field "user" must be of type Object')
            known = users(int(user["id"])) if users is not None else None
            ents.append(_Ent(kind, offset, length, extra={"user": known or dict(user)}))
        elif kind == "custom_emoji":
            ents.append(
                _Ent(kind, offset, length, extra={"custom_emoji_id": str(item.get("custom_emoji_id", ""))})
            )
        elif kind == "date_time":
            extra: JsonDict = {"unix_time": int(item.get("unix_time") or 0)}
            if item.get("date_time_format"):
                extra["date_time_format"] = str(item["date_time_format"])
            ents.append(_Ent(kind, offset, length, extra=extra))
        else:
            ents.append(_Ent(kind, offset, length))
    return ents


def format_text(
    text: str,
    parse_mode: str | None = None,
    entities: Sequence[Any] | None = None,
    *,
    users: UserLookup | None = None,
    allow_empty: bool = False,
) -> tuple[str, list[JsonDict]]:
    """Parse ``text`` like the Bot API does; return the final text and its entities (Bot API JSON).

    Raises ``FormattingError`` with the Bot API's description (without the ``Bad Request:`` prefix):
    ``can't parse entities: ...``, ``unsupported parse_mode`` or ``text must be non-empty``.
    """
    mode = (parse_mode or "").lower()
    if text and mode and mode != "none":
        parser: Callable[[str, UserLookup | None], tuple[str, list[_Ent]]]
        if mode == "html":
            parser = parse_html
        elif mode == "markdownv2":
            parser = parse_markdown_v2
        elif mode == "markdown":
            parser = parse_markdown
        else:
            raise FormattingError("unsupported parse_mode")
        try:
            result, ents = parser(text, users)
        except FormattingError as exc:
            raise FormattingError(f"can't parse entities: {exc}") from None
    else:
        result = text
        try:
            ents = _parse_explicit_entities(entities or [], users)
        except FormattingError as exc:
            raise FormattingError(str(exc)) from None

    total = utf16_len(result)
    fixed: list[_Ent] = []
    for ent in ents:
        end = min(ent.offset + ent.length, total)
        if ent.length > 0 and ent.offset < end:
            ent.length = end - ent.offset
            fixed.append(ent)
    ents = _sorted(fixed)
    result = _clean(result, ents)

    stripped = result.rstrip()
    if not stripped.strip():
        if allow_empty:
            return "", []
        raise FormattingError("text must be non-empty")
    if len(stripped) != len(result):
        limit = utf16_len(stripped)
        trimmed: list[_Ent] = []
        for ent in ents:
            if ent.offset >= limit:
                continue
            ent.length = min(ent.length, limit - ent.offset)
            trimmed.append(ent)
        ents = trimmed
        result = stripped
    first_entity = ents[0].offset if ents else utf16_len(result)
    lead = 0
    while lead < len(result) and result[lead] in " \n" and lead < first_entity:
        lead += 1
    if lead:
        result = result[lead:]
        for ent in ents:
            ent.offset -= lead

    atomic = [(e.offset, e.offset + e.length) for e in ents if e.kind in _ATOMIC]
    for auto in _detect(result):
        a, b = auto.offset, auto.offset + auto.length
        if all(b <= x or a >= y for x, y in atomic):
            ents.append(auto)
    return result, [_to_api(e) for e in _sorted(ents)]
