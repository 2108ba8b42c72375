"""/v1/jobs"""

from fastapi import APIRouter

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
