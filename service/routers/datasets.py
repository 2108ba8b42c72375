"""/v1/datasets"""

from fastapi import APIRouter

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
