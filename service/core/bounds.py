"""The engine's ranges (engine.specs.Bounds) as JSON Schema keywords on the request schemas.

The engine checks the ranges (``validate()``: its messages are the API's); these
annotations only state them in the OpenAPI document, from the same tables, so that
generated clients and validators refuse what the service refuses.
"""

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, GetJsonSchemaHandler, StrictInt
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from engine import Bounds

ID_PATTERN = "^[0-9a-f]{32}$"  # service.core.tables.new_id: uuid4().hex


def _integral(value: Any) -> Any:
    """A float with no fractional part as the int it equals; anything else unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer as JSON Schema's `type: integer` means it: 10 and 10.0 are the same number
# (a JavaScript client cannot tell them apart); 10.5, "10" and true are refused.
JsonInt = Annotated[StrictInt, BeforeValidator(_integral)]


def range_keywords(bounds: Bounds) -> dict[str, Any]:
    """minimum / exclusiveMinimum / maximum / exclusiveMaximum for ``bounds``."""
    keywords: dict[str, Any] = {}
    if bounds.low is not None:
        keywords["exclusiveMinimum" if bounds.low_open else "minimum"] = bounds.low
    if bounds.high is not None:
        keywords["exclusiveMaximum" if bounds.high_open else "maximum"] = bounds.high
    return keywords


@dataclass(frozen=True)
class Documented:
    """Annotated metadata: adds ``keywords`` to the JSON Schema of the type it annotates."""

    keywords: tuple[tuple[str, Any], ...]

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.update(dict(self.keywords))
        return schema


def in_range(bounds: Bounds) -> Documented:
    """``Annotated[StrictFloat, in_range(TRAINING_BOUNDS["l2"])]``: the engine's range, stated."""
    return Documented(tuple(range_keywords(bounds).items()))


def documented(**keywords: Any) -> Documented:
    """Any other keywords, e.g. ``documented(pattern=ID_PATTERN)``."""
    return Documented(tuple(keywords.items()))
