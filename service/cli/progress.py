"""A followed job's progress on stderr: epoch/epochs, a bar, train and val loss (and
accuracy), time left.

On a terminal it is one line that Rich redraws in place (notes print above it); in a
log or a pipe it is a plain line each time another NOTTY_STEP_PERCENT of the epochs
is done, and the last epoch when the stream ends, so a log stays short and greppable.
"""

import sys
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from service.cli.api_types import HistoryPoint
from service.cli.common import TERMINAL_STATES
from service.cli.output import duration, number

NOTTY_STEP_PERCENT = 10  # without a terminal, one progress line per this many percent
NOTTY_BAR_WIDTH = 30
REDRAWS_PER_SECOND = 10


def accuracy(value: float | None, loss: float | None) -> str:
    """The accuracy after its loss, as " (97.4%)"; nothing where there is none (no
    validation split), nor after a loss that is not a number (a diverged epoch: its
    accuracy means nothing)."""
    return f" ({100 * value:.1f}%)" if value is not None and loss is not None else ""


class ProgressDisplay:
    """What a follower knows of the job (epochs, seconds per epoch), drawn as lines."""

    def __init__(self, stream: TextIO, *, epochs: int):
        self.stream = stream
        self.epochs = max(epochs, 1)
        self.time_limit: float | None = None
        self.point: HistoryPoint | None = None
        self.seconds = 0.0  # training seconds of the epochs seen
        self.timed = 0  # epochs seen with their seconds
        self.remaining: float | None = None  # the server's estimate, until epochs arrive
        self.last_status: str | None = None
        self.printed_step = -1  # the last NOTTY_STEP_PERCENT step printed
        self.shown_epoch = 0  # the epoch of the last line printed

    @staticmethod
    def open(epochs: int) -> "ProgressDisplay":
        """A Rich bar on a terminal, lines elsewhere."""
        stream = sys.stderr
        if stream.isatty():
            return RichProgressDisplay(stream, epochs=epochs)
        return ProgressDisplay(stream, epochs=epochs)

    # Events.

    def status(self, job: dict[str, Any]) -> None:
        self.epochs = max(job["progress"]["epochs"], 1)
        self.time_limit = (job.get("training") or {}).get("time_limit")
        self.remaining = job["progress"]["remaining_seconds"]
        if job["status"] != self.last_status and job["status"] not in TERMINAL_STATES:
            self.note(f"job {job['id']}: {job['status']}")
        self.last_status = job["status"]

    def epoch(self, point: HistoryPoint) -> None:
        self.point = point
        if point["seconds"] is not None:
            self.seconds += point["seconds"]
            self.timed += 1
        self.draw()

    def reconnecting(self, attempt: int, reason: str) -> None:
        self.note(f"event stream lost ({reason}); reconnecting (attempt {attempt})")

    # What the numbers say.

    @property
    def epoch_now(self) -> int:
        return self.point["epoch"] if self.point else 0

    def losses(self) -> str:
        point = self.point
        if point is None:
            return ""
        train_loss, val_loss = point["train_loss"], point["val_loss"]
        train = f"train {number(train_loss)}{accuracy(point.get('train_accuracy'), train_loss)}"
        val = f"val {number(val_loss)}{accuracy(point.get('val_accuracy'), val_loss)}"
        return f"  {train}  {val}"

    def eta(self, epoch: int) -> float | None:
        """Seconds left at the mean seconds per epoch seen (capped by the time limit)."""
        if not self.timed:
            return self.remaining
        left = self.seconds / self.timed * max(self.epochs - epoch, 0)
        if self.time_limit is not None and self.point is not None:
            # The stream may have started mid-job: seconds seen are not all seconds spent.
            spent = self.seconds if epoch == self.timed else self.seconds / self.timed * epoch
            left = min(left, max(self.time_limit - spent, 0.0))
        return left

    # Drawing (lines: a log or a pipe).

    def draw(self) -> None:
        step = min(self.epoch_now, self.epochs) * 100 // self.epochs // NOTTY_STEP_PERCENT
        if step > self.printed_step:
            self.printed_step = step
            self._print_line()

    def note(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Show the last epoch received."""
        if self.point is not None and self.epoch_now != self.shown_epoch:
            self._print_line()
        self.stream.flush()

    def line(self) -> str:
        epoch = self.epoch_now
        done = min(epoch / self.epochs, 1.0)
        filled = round(done * NOTTY_BAR_WIDTH)
        bar = "#" * filled + "." * (NOTTY_BAR_WIDTH - filled)
        digits = len(str(self.epochs))
        return (
            f"epoch {epoch:>{digits}}/{self.epochs} [{bar}] {done * 100:3.0f}%"
            f"{self.losses()}  ETA {duration(self.eta(epoch))}"
        )

    def _print_line(self) -> None:
        self.stream.write(self.line() + "\n")
        self.stream.flush()
        self.shown_epoch = self.epoch_now


class RichProgressDisplay(ProgressDisplay):
    """The same numbers as one line that Rich redraws in place, on a terminal."""

    def __init__(self, stream: TextIO, *, epochs: int):
        super().__init__(stream, epochs=epochs)
        digits = len(str(self.epochs))
        self.progress = Progress(
            TextColumn(f"epoch {{task.completed:>{digits}.0f}}/{{task.total:.0f}}"),
            BarColumn(bar_width=30),
            TaskProgressColumn(),
            TextColumn("{task.fields[losses]}  ETA {task.fields[eta]}"),
            console=Console(file=stream, highlight=False),
            refresh_per_second=REDRAWS_PER_SECOND,
        )
        self.task = self.progress.add_task("train", total=self.epochs, losses="", eta="-")
        self.progress.start()

    def draw(self) -> None:
        epoch = self.epoch_now
        self.progress.update(
            self.task,
            completed=min(epoch, self.epochs),
            total=self.epochs,
            losses=self.losses(),
            eta=duration(self.eta(epoch)),
        )

    def note(self, text: str) -> None:
        """A line above the bar (Rich keeps the bar at the bottom)."""
        self.progress.console.print(text, markup=False)

    def close(self) -> None:
        """The last epoch drawn, the bar left in place, the cursor on a fresh line."""
        self.draw()
        self.progress.stop()
