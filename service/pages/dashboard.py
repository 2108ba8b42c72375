"""GET /: the dashboard, a static page whose script talks to this service's API.

The page, its script and styles live in service/pages/static/dashboard/, uPlot in
service/pages/static/vendor/uplot/ (served under /static). Asset URLs carry a hash of
the assets' bytes (`?v=...`), so a browser never runs a cached script against a
newer page after an upgrade.
"""

import hashlib
from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parent / "static"
PAGE = STATIC_DIR / "dashboard" / "index.html"
ASSETS = (
    STATIC_DIR / "dashboard" / "app.js",
    STATIC_DIR / "dashboard" / "columns.js",
    STATIC_DIR / "dashboard" / "evaluation.js",
    STATIC_DIR / "dashboard" / "style.css",
    STATIC_DIR / "vendor" / "uplot" / "uPlot.iife.min.js",
    STATIC_DIR / "vendor" / "uplot" / "uPlot.min.css",
)
VERSION_MARK = "__ASSET_VERSION__"


@cache
def dashboard_html() -> str:
    """index.html with VERSION_MARK replaced by a hash of the assets (read once per process)."""
    digest = hashlib.sha256()
    for asset in ASSETS:
        digest.update(asset.read_bytes())
    return PAGE.read_text(encoding="utf-8").replace(VERSION_MARK, digest.hexdigest()[:12])


@router.get("/", response_class=HTMLResponse)
def get_dashboard() -> HTMLResponse:
    """The dashboard page: datasets, jobs and sweeps, with live loss curves."""
    # no-cache: revalidate the page each time, so it always names the current assets.
    return HTMLResponse(dashboard_html(), headers={"Cache-Control": "no-cache"})
