"""Values made fit for JSON, which has no NaN and no infinity."""

import math
from typing import Any


def finite_or_none(value: Any) -> Any:
    """JSON has no NaN or infinity: such floats become null, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(item) for item in value]
    return value
