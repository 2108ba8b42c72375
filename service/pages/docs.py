"""/docs (Swagger UI) and /redoc, served with every asset from this service (no CDN).

The machines that run the service often have no internet, so the pages load the npm
packages' own dist files, vendored under service/pages/static/vendor/ (swagger-ui/ and redoc/,
each with its LICENSE and a SOURCE.md naming the version). FastAPI's page builders are
used as they are, pointed at those local files. Three things would still reach out and
are turned off: Swagger UI's online validator badge, Redoc's Google Fonts, and the
Redocly logo that Redoc's bundle loads from a CDN (see `get_redoc_bundle`).
"""

import functools
import hashlib
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

from service.core.public import REDOC_BUNDLE_URL

router = APIRouter(include_in_schema=False)

VENDOR_DIR = Path(__file__).resolve().parent / "static" / "vendor"
SWAGGER_UI_URL = "/static/vendor/swagger-ui"  # StaticFiles serves these unmodified
FAVICON_URL = f"{SWAGGER_UI_URL}/favicon-32x32.png"  # both pages show Swagger UI's icon

SWAGGER_UI_PARAMETERS = {
    # The default validator posts the document to validator.swagger.io for a badge.
    "validatorUrl": None,
    "displayRequestDuration": True,
}

# Redoc 2 always renders its footer logo from Redocly's CDN (no option hides it); the
# served bundle points that <img> at a transparent 1x1 GIF instead.
REDOCLY_LOGO_URL = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
BLANK_IMAGE_URL = b"data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


def _root(request: Request) -> str:
    """The path prefix the service is mounted under behind a proxy ('' when none)."""
    return request.scope.get("root_path", "").rstrip("/")


@router.get("/docs")
def get_swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI: every operation, its examples, and "Try it out"."""
    root, app = _root(request), request.app
    return get_swagger_ui_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{root}{SWAGGER_UI_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{SWAGGER_UI_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{FAVICON_URL}",
        oauth2_redirect_url=f"{root}{app.swagger_ui_oauth2_redirect_url}",
        swagger_ui_parameters={**(app.swagger_ui_parameters or {}), **SWAGGER_UI_PARAMETERS},
    )


@router.get("/docs/oauth2-redirect")
def get_swagger_ui_oauth2_redirect() -> HTMLResponse:
    """Where an OAuth2 login returns to Swagger UI (inline page, no assets)."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def get_redoc(request: Request) -> HTMLResponse:
    """Redoc: the same document as a three-panel reference."""
    root, app = _root(request), request.app
    return get_redoc_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{root}{REDOC_BUNDLE_URL}",
        redoc_favicon_url=f"{root}{FAVICON_URL}",
        with_google_fonts=False,  # the page falls back to the system's sans-serif fonts
    )


@functools.cache
def redoc_bundle() -> tuple[bytes, str]:
    """The vendored Redoc bundle with its CDN logo replaced, and its ETag (read once)."""
    bundle = (VENDOR_DIR / "redoc" / "redoc.standalone.js").read_bytes()
    bundle = bundle.replace(REDOCLY_LOGO_URL, BLANK_IMAGE_URL)
    return bundle, f'"{hashlib.sha256(bundle).hexdigest()[:32]}"'


@router.get(REDOC_BUNDLE_URL)
def get_redoc_bundle(request: Request) -> Response:
    """Redoc's standalone bundle (vendor/redoc), with nothing in it that loads from outside."""
    bundle, etag = redoc_bundle()
    headers = {"ETag": etag, "Cache-Control": "no-cache"}  # revalidate: 304 while unchanged
    if request.headers.get("If-None-Match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(bundle, media_type="text/javascript; charset=utf-8", headers=headers)
