"""Who may see ``/ops``: the holder of ``OPS_TOKEN`` (a bearer token, basic auth's password, or the session
cookie the login form sets). There is no default token: without one the page is not served at all."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from aiohttp import web
from pydantic import SecretStr

COOKIE = "kmbot_ops"


class OpsAuth:
    def __init__(self, token: SecretStr) -> None:
        secret = token.get_secret_value()
        if len(secret) < 16:
            raise ValueError("OPS_TOKEN must be at least 16 characters")
        self._token = secret.encode()
        # the cookie holds a MAC derived from the token, never the token; a new token ends old sessions
        self._session = hmac.new(self._token, b"kmbot-ops-session-v1", hashlib.sha256).hexdigest()

    def token_matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self._token)

    def allowed(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value:
            return self.token_matches(value.strip())
        if scheme.lower() == "basic" and value:
            try:
                _, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return self.token_matches(password)
        cookie = request.cookies.get(COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie, self._session)

    def sign_in(self, response: web.StreamResponse, secure: bool) -> None:
        response.set_cookie(
            COOKIE,
            self._session,
            path="/ops",
            httponly=True,
            samesite="Strict",
            secure=secure,
            max_age=12 * 3600,
        )

    @staticmethod
    def sign_out(response: web.StreamResponse) -> None:
        response.del_cookie(COOKIE, path="/ops")
