"""API keys: who may call the API, checked before any route runs (a pure ASGI middleware).

With BACKPROP_API_KEYS or BACKPROP_READ_ONLY_API_KEYS set, every request needs
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, except GET and HEAD of
the probes, the docs pages, the OpenAPI document, the dashboard page and its
static assets, which hold no data (the dashboard's own API calls send the key).
A missing key is a 401 problem with ``WWW-Authenticate: Bearer realm="backprop"``,
a wrong one adds ``error="invalid_token"``; a read-only key may GET and HEAD only
(anything else is 403).

The check is a middleware rather than a dependency so that it runs before a route
reads the body: an upload streams its body itself, and must not start for a
stranger. Keys are compared as SHA-256 digests (equal lengths, so a key's length
does not show in the timing) with ``hmac.compare_digest`` against every configured
key, without stopping at a match. No key is ever logged or echoed in a response;
jobs record a key's id (``key_id``: the first hex digits of its digest), never the key.

With no keys set the API is open, so it may only listen on loopback:
``check_binding`` refuses any other host (``create_app`` and ``backprop serve``).
"""

import hashlib
import hmac
import ipaddress
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from service.core.errors import problem
from service.core.public import PUBLIC_PATHS, PUBLIC_PREFIXES
from service.core.settings import Settings

REALM = 'Bearer realm="backprop"'
KEY_ID_LENGTH = 12  # hex digits of sha256(key): a name for the key that reveals nothing of it
READ_ONLY_METHODS = frozenset({"GET", "HEAD"})


# The id of the key that made the request being served (None: no keys configured).
_caller_key_id: ContextVar[str | None] = ContextVar("backprop_api_key_id", default=None)


class AccessSettingsError(ValueError):
    """The access settings are unsafe or unusable; the message says which and how to fix it."""


@dataclass(frozen=True)
class Access:
    """What a configured key may do."""

    key_id: str
    read_only: bool


def key_id(key: bytes) -> str:
    """A short, non-secret name for ``key``: the first hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:KEY_ID_LENGTH]


def current_api_key_id() -> str | None:
    """The id of the key of the request being served; None when the API has no keys."""
    return _caller_key_id.get()


class KeyRing:
    """The configured keys, held as SHA-256 digests, each with what it may do."""

    def __init__(self, read_write: tuple[str, ...], read_only: tuple[str, ...]):
        both = set(read_write) & set(read_only)
        if both:
            raise AccessSettingsError(
                f"{len(both)} key(s) appear in both BACKPROP_API_KEYS and "
                "BACKPROP_READ_ONLY_API_KEYS; list each key in one of them"
            )
        self._entries: list[tuple[bytes, Access]] = []
        for variable, keys, read_only_access in (
            ("BACKPROP_API_KEYS", read_write, False),
            ("BACKPROP_READ_ONLY_API_KEYS", read_only, True),
        ):
            for position, key in enumerate(keys, start=1):
                raw = _header_safe(key, variable, position)
                access = Access(key_id=key_id(raw), read_only=read_only_access)
                self._entries.append((hashlib.sha256(raw).digest(), access))

    @classmethod
    def from_settings(cls, settings: Settings) -> "KeyRing":
        return cls(settings.read_write_key_list, settings.read_only_key_list)

    @property
    def configured(self) -> bool:
        return bool(self._entries)

    def lookup(self, presented: bytes) -> Access | None:
        """The access of ``presented``, or None; in constant time over every configured key."""
        digest = hashlib.sha256(presented).digest()
        found = None
        for configured, access in self._entries:  # no early exit: every key is compared
            if hmac.compare_digest(configured, digest):
                found = access
        return found


def _header_safe(key: str, variable: str, position: int) -> bytes:
    """The key's bytes; a key must be sendable as a header value (visible ASCII, no spaces)."""
    if not all("!" <= character <= "~" for character in key):
        # The message names the key by position: it must never show the key itself.
        raise AccessSettingsError(
            f"{variable}: key {position} has a space or a character outside printable ASCII; "
            "a key must be sendable in an HTTP header (e.g. `openssl rand -hex 32`)"
        )
    return key.encode("ascii")


# Binding.


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (also IPv4-mapped); False for 0.0.0.0 and names."""
    if host.strip().lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return False  # a host name other than localhost may resolve to any interface
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def open_binding_message(host: str) -> str:
    return (
        f"refusing to serve on {host!r}: no API keys are configured, so anyone who can "
        "reach that interface could read and change every dataset, job and model. "
        "Set BACKPROP_API_KEYS (comma-separated keys, e.g. from `openssl rand -hex 32`), "
        "or listen on 127.0.0.1 only"
    )


def check_binding(host: str, keys: KeyRing) -> None:
    """Refuse to serve a non-loopback ``host`` without keys (raises AccessSettingsError)."""
    if not keys.configured and not is_loopback(host):
        raise AccessSettingsError(open_binding_message(host))


# The middleware.


def route_path(scope: Scope) -> str:
    """The path the router matches: without the proxy's root_path prefix, as Starlette strips it
    (starlette._utils.get_route_path), so the check and the routing see the same path."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if not root or not path.startswith(root):
        return path
    if path == root:
        return ""
    return path[len(root) :] if path[len(root)] == "/" else path


def is_public(method: str, path: str) -> bool:
    return method in READ_ONLY_METHODS and (
        path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
    )


def presented_keys(scope: Scope) -> set[bytes]:
    """The keys the request carries: each Bearer token and each X-API-Key value."""
    keys: set[bytes] = set()
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                keys.add(token.strip())
        elif name == b"x-api-key" and value.strip():
            keys.add(value.strip())
    return keys


class ApiKeyMiddleware:
    """Let a request through only with a configured key that may use its method."""

    def __init__(self, app: ASGIApp, keys: KeyRing):
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        if is_public(method, route_path(scope)):
            await self.app(scope, receive, send)
            return
        access, refusal = self.authorize(scope, method)
        if refusal is not None:
            if scope["type"] == "websocket":  # closing before accepting answers 403
                await send({"type": "websocket.close", "code": 1008})
            else:
                await refusal(scope, receive, send)
            return
        assert access is not None
        token = _caller_key_id.set(access.key_id)
        try:
            await self.app(scope, receive, send)
        finally:
            _caller_key_id.reset(token)

    def authorize(self, scope: Scope, method: str) -> tuple[Access | None, ASGIApp | None]:
        """(the key's access, None) or (None, the 401/403 problem to answer with)."""
        keys = presented_keys(scope)
        if not keys:
            return None, unauthorized(
                "this API needs a key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                REALM,
            )
        if len(keys) > 1:
            return None, unauthorized(
                "the request carries more than one key (Authorization and X-API-Key differ, "
                "or a header is repeated); send one key",
                f'{REALM}, error="invalid_request"',
            )
        access = self.keys.lookup(keys.pop())
        if access is None:
            return None, unauthorized(
                "the API key is not valid for this service", f'{REALM}, error="invalid_token"'
            )
        if access.read_only and method not in READ_ONLY_METHODS:
            return None, problem(
                403,
                "Forbidden",
                f"this API key is read-only: it may GET and HEAD, not {method}; "
                "use a key from BACKPROP_API_KEYS to change anything",
            )
        return access, None


def unauthorized(detail: str, challenge: str) -> ASGIApp:
    return problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": challenge})
