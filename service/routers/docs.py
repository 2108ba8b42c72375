"""/docs and /redoc, served with every asset from this service (no CDN)."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
