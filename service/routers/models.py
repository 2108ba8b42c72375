"""/v1/models"""

from fastapi import APIRouter

router = APIRouter(prefix="/v1/models", tags=["models"])
