"""API keys: who may call the API and as what, checked before any route runs (a pure ASGI
middleware).

Keys come from two places. BACKPROP_API_KEYS and BACKPROP_READ_ONLY_API_KEYS are the
bootstrap: admins and readers of the default project. Keys made with `backprop keys
create` or ``POST /v1/keys`` live in the database (service.core.api_keys), each of one
project with one role. Once any key exists, in either place, every request needs one
(``Authorization: Bearer <key>`` or ``X-API-Key: <key>``), except GET and HEAD of the
probes, the docs pages, the OpenAPI document, the dashboard page and its static assets,
which hold no data. A missing key is a 401 problem with ``WWW-Authenticate: Bearer
realm="backprop"``, a wrong or revoked one adds ``error="invalid_token"``; a key whose
role is below the operation's (service.core.roles) is a 403 naming both.

The request then runs as its key's project (service.core.tenancy.project_scope): it sees
only that project's rows. With no keys anywhere the API is open, as the default
project's admin, so it may only listen on loopback: ``check_binding`` refuses any other
host (``create_app`` and ``backprop serve``).

The check is a middleware rather than a dependency so that it runs before a route
reads the body: an upload streams its body itself, and must not start for a
stranger. Environment keys are compared as SHA-256 digests (equal lengths, so a key's
length does not show in the timing) with ``hmac.compare_digest`` against every one,
without stopping at a match; database keys are found by their digest. No key is ever
logged or echoed in a response; rows record a key's id (``key_id``), never the key.
"""

import hashlib
import hmac
import ipaddress
from contextvars import ContextVar

from starlette.types import ASGIApp, Receive, Scope, Send

from service.core.api_keys import KEY_ID_LENGTH, OPEN, KeyDirectory, Principal
from service.core.errors import ServiceError, problem
from service.core.public import PUBLIC_PATHS, PUBLIC_PREFIXES
from service.core.roles import Role, RoutePolicy
from service.core.settings import Settings
from service.core.tenancy import DEFAULT_PROJECT, project_scope

REALM = 'Bearer realm="backprop"'
READ_ONLY_METHODS = frozenset({"GET", "HEAD"})


# Who made the request being served (OPEN: no keys anywhere).
_caller: ContextVar[Principal] = ContextVar("backprop_principal", default=OPEN)


class AccessSettingsError(ValueError):
    """The access settings are unsafe or unusable; the message says which and how to fix it."""


def key_id(key: bytes) -> str:
    """A short, non-secret name for ``key``: the first hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:KEY_ID_LENGTH]


def current_api_key_id() -> str | None:
    """The id of the key of the request being served; None when the API has no keys."""
    return _caller.get().key_id


def current_principal() -> Principal:
    """Who made the request being served: key id, project, role."""
    return _caller.get()


class KeyRing:
    """The keys of the environment, held as SHA-256 digests: admins (BACKPROP_API_KEYS) and
    readers (BACKPROP_READ_ONLY_API_KEYS) of the default project."""

    def __init__(self, read_write: tuple[str, ...], read_only: tuple[str, ...]):
        both = set(read_write) & set(read_only)
        if both:
            raise AccessSettingsError(
                f"{len(both)} key(s) appear in both BACKPROP_API_KEYS and "
                "BACKPROP_READ_ONLY_API_KEYS; list each key in one of them"
            )
        self._entries: list[tuple[bytes, Principal]] = []
        for variable, keys, role in (
            ("BACKPROP_API_KEYS", read_write, Role.admin),
            ("BACKPROP_READ_ONLY_API_KEYS", read_only, Role.reader),
        ):
            for position, key in enumerate(keys, start=1):
                raw = _header_safe(key, variable, position)
                principal = Principal(key_id=key_id(raw), project=DEFAULT_PROJECT, role=role)
                self._entries.append((hashlib.sha256(raw).digest(), principal))

    @classmethod
    def from_settings(cls, settings: Settings) -> "KeyRing":
        return cls(settings.read_write_key_list, settings.read_only_key_list)

    @property
    def configured(self) -> bool:
        return bool(self._entries)

    def lookup(self, presented: bytes) -> Principal | None:
        """Who ``presented`` is, or None; in constant time over every configured key."""
        digest = hashlib.sha256(presented).digest()
        found = None
        for configured, principal in self._entries:  # no early exit: every key is compared
            if hmac.compare_digest(configured, digest):
                found = principal
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


def check_binding(host: str, keys: KeyRing, database_keys: bool = False) -> None:
    """Refuse to serve a non-loopback ``host`` without keys, in the environment or the
    database (raises AccessSettingsError)."""
    if not keys.configured and not database_keys and not is_loopback(host):
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
    """Let a request through only with a live key whose role may use its operation, and
    run it as that key's project."""

    def __init__(self, app: ASGIApp, keys: KeyRing, directory: KeyDirectory, policy: RoutePolicy):
        self.app = app
        self.keys = keys
        self.directory = directory
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        path = route_path(scope)
        if is_public(method, path):
            await self.app(scope, receive, send)
            return
        try:
            principal, refusal = await self.authorize(scope, method, path)
        except ServiceError as error:  # the database that holds the keys is away: 503
            retry = {"Retry-After": "1"} if error.status == 503 else None
            refusal = problem(error.status, error.title, error.detail, headers=retry)
            principal = None
        if refusal is not None:
            if scope["type"] == "websocket":  # closing before accepting answers 403
                await send({"type": "websocket.close", "code": 1008})
            else:
                await refusal(scope, receive, send)
            return
        assert principal is not None
        token = _caller.set(principal)
        try:
            with project_scope(principal.project):
                await self.app(scope, receive, send)
        finally:
            _caller.reset(token)

    async def authorize(
        self, scope: Scope, method: str, path: str
    ) -> tuple[Principal | None, ASGIApp | None]:
        """(who the request is, None) or (None, the 401/403 problem to answer with)."""
        if not self.keys.configured and not await self.directory.any_key():
            return OPEN, None  # no keys anywhere: open (on loopback only), whatever is sent
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
        presented = keys.pop()
        principal = self.keys.lookup(presented) or await self.directory.lookup(presented)
        if principal is None:
            return None, unauthorized(
                "the API key is not valid for this service (unknown or revoked)",
                f'{REALM}, error="invalid_token"',
            )
        needed = self.policy.role_for(method, path)
        if needed is not None and principal.role < needed:
            return None, problem(
                403,
                "Forbidden",
                f"this API key is a {principal.role.name} of project {principal.project!r}: "
                f"{method} {path} needs the {needed.name} role",
            )
        return principal, None


def unauthorized(detail: str, challenge: str) -> ASGIApp:
    return problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": challenge})
