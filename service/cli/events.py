"""Server-sent events: the framing of GET /v1/jobs/{id}/events (text/event-stream)."""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    """One server-sent event: its type, decoded JSON data and, if it carried one, its id."""

    event: str
    data: Any
    id: str | None = None


class EventParser:
    """text/event-stream framing, one line at a time (WHATWG HTML, "server-sent events").

    ``feed(line)`` returns the event a blank line completes, else None. Comments
    (``: keep-alive``) are skipped; ``retry`` is kept for the caller's reconnections.
    """

    def __init__(self) -> None:
        self.retry_seconds: float | None = None
        self._reset()

    def _reset(self) -> None:
        self._event = "message"
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> Event | None:
        if not line:
            event = None
            if self._data:
                text = "\n".join(self._data)
                try:
                    data = json.loads(text)
                except ValueError:
                    data = text
                event = Event(self._event, data, self._id)
            self._reset()
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_seconds = int(value) / 1000
        return None


def parse_events(lines: Iterable[str], parser: EventParser | None = None) -> Iterator[Event]:
    """The events in ``lines`` (a stream's lines, without their line ends)."""
    parser = parser or EventParser()
    for line in lines:
        event = parser.feed(line)
        if event is not None:
            yield event
