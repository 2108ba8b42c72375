"""The README's "## The command line" session prints what it shows.

Each `$ backprop ...` line of the section's ```console block (a line ending in a
backslash goes on on the next) runs with bash, stderr and stdout together as on a
terminal, against a live service (the API and one worker of tests/test_cli_client.py)
in a folder holding the Quickstart's penguins.csv. Its output must match the lines
under it, after normalising what differs from run to run:

- an id (32 hex digits) matches any id, but the same README id must stand for the
  same real id throughout; later commands run with the real ids substituted;
- a timestamp (2026-11-27 23:56:20) matches any timestamp, a sha256 any sha256
  (the CSV's bytes follow the pandas that wrote it);
- a number with a decimal point (0.0325, 1.059e+300, the MS column) matches any
  such number, and `ETA 0.17s` any time left: floating-point digits and timings
  vary with the machine;
- a line ending `: queued` matches `: running` too (`job ID: queued`): which state
  the event stream shows first depends on how fast the worker claims the job;
- runs of spaces match any run of spaces, and Rich's header rule any length of rule
  (column widths follow the numbers);
- a line `...` matches any number of lines (e.g. a progress line per 10%).

Everything else must be as written, so the test fails when the README drifts from
the real output. BACKPROP_README_TRANSCRIPT=path writes the real session there, to
paste into the README after a deliberate change of output.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import test_cli_client as live

README = Path(__file__).resolve().parents[1] / "README.md"
BIN = Path(sys.executable).parent  # where the `backprop` console script is
ID = re.compile(r"\b[0-9a-f]{32}\b")
PATTERNS = (  # a README token and what it matches in real output
    (re.compile(r"\b[0-9a-f]{64}\b"), r"[0-9a-f]{64}"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"),
    (re.compile(r"ETA \S+"), r"ETA \S+"),
    (re.compile(r"-?\d+\.\d+(?:e[+-]\d+)?"), r"-?\d+\.\d+(?:e[+-]\d+)?"),
    (re.compile(r": (?:queued|running)$"), r": (?:queued|running)"),
)

service = live.service  # the API and a worker on a fresh database, for this module


def console_session() -> list[tuple[str, list[str]]]:
    """The section's (command, expected output lines) pairs."""
    text = README.read_text()
    section = re.search(r"^## The command line\n(.*?)(?=^## )", text, re.M | re.S)
    assert section, "the README has a '## The command line' section"
    blocks = re.findall(r"^```console\n(.*?)^```", section.group(1), re.M | re.S)
    assert len(blocks) == 1, "the section has one ```console block"
    steps: list[tuple[str, list[str]]] = []
    lines = iter(blocks[0].splitlines())
    for line in lines:
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\"):
                command = command[:-1] + next(lines).strip()
            steps.append((command, []))
        else:
            assert steps, f"output before the first command: {line!r}"
            steps[-1][1].append(line)
    return steps


def squeeze(line: str) -> str:
    """Runs of spaces as one, a rule of any length as one dash, no trailing space."""
    return re.sub(r"─+", "─", re.sub(r" +", " ", line)).strip()


def line_pattern(line: str) -> str:
    """A README output line as a regex; each id is a group of its own."""
    parts, at = [], 0
    tokens = [(m.start(), m.end(), "([0-9a-f]{32})") for m in ID.finditer(line)]
    for pattern, regex in PATTERNS:
        for m in pattern.finditer(line):
            if not any(s < m.end() and m.start() < e for s, e, _ in tokens):
                tokens.append((m.start(), m.end(), regex))
    for start, end, regex in sorted(tokens):
        parts += [re.escape(line[at:start]), regex]
        at = end
    return "".join(parts) + re.escape(line[at:])


def output_pattern(expected: list[str]) -> re.Pattern[str]:
    parts = [
        r"(?:[^\n]*\n)*?" if line == "..." else line_pattern(squeeze(line)) + r"\n"
        for line in expected
    ]
    return re.compile("".join(parts))


def run(command: str, service: live.Service, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_")}
    env |= {"BACKPROP_URL": service.url, "PATH": f"{BIN}:{env.get('PATH', '')}"}
    env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr interleave as they were written
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    return result.stdout


@pytest.fixture
def penguins_csv(tmp_path) -> Path:
    """The Quickstart's CSV: Palmer penguins, label column "species", words and empty cells."""
    from palmerpenguins import load_penguins

    load_penguins().to_csv(tmp_path / "penguins.csv", index=False)
    return tmp_path / "penguins.csv"


@pytest.mark.slow
def test_readme_console_session_prints_what_it_shows(service, penguins_csv):
    real_ids: dict[str, str] = {}  # README id -> the id this run printed
    transcript = []
    failures = []
    for command, expected in console_session():
        command = ID.sub(lambda m: real_ids.get(m.group(), m.group()), command)
        output = run(command, service, penguins_csv.parent)
        transcript += [f"$ {command}", output.rstrip("\n")]
        actual = "".join(squeeze(line) + "\n" for line in output.splitlines())
        match = output_pattern(expected).fullmatch(actual)
        readme_ids = [m.group() for line in expected for m in ID.finditer(line)]
        if match is None:
            failures.append(f"$ {command}\n--- README:\n" + "\n".join(expected))
            failures[-1] += f"\n--- real output:\n{output}"
            # Carry on with the ids in order, so that one drift shows every other one too.
            for readme_id, real_id in zip(readme_ids, ID.findall(output), strict=False):
                real_ids.setdefault(readme_id, real_id)
            continue
        for readme_id, real_id in zip(readme_ids, match.groups(), strict=True):
            assert real_ids.setdefault(readme_id, real_id) == real_id, (
                f"{readme_id} stands for two ids: {real_ids[readme_id]} and {real_id}"
            )
    if path := os.environ.get("BACKPROP_README_TRANSCRIPT"):
        Path(path).write_text("\n".join(transcript) + "\n")
    assert not failures, "\n\n".join(failures)


def test_the_normalisation_forgives_ids_floats_times_and_spacing_only():
    expected = [
        "job 4df7762cff2c43ac84ec751bc3f9a718: queued",
        "...",
        "ID                                 TRAIN LOSS   CREATED (UTC)",
        "─────────────────────────────────────────────",
        "db2656abe48e43248d426a6d0d15960c       0.0325   2026-11-27 23:56:20",
        "epochs:      300 of 300  ETA 0.17s",
    ]
    pattern = output_pattern(expected)
    real = [
        "job 0123456789abcdef0123456789abcdef: running",
        "epoch 1/300 ...",
        "epoch 30/300 ...",
        "ID  TRAIN LOSS  CREATED (UTC)",
        "───────────",
        "fedcba9876543210fedcba9876543210  10.5000  2027-01-02 03:04:05",
        "epochs: 300 of 300  ETA 1.2s",
    ]

    def matches(lines: list[str]) -> bool:
        return pattern.fullmatch("".join(squeeze(line) + "\n" for line in lines)) is not None

    assert matches(real)
    assert not matches([*real[:-1], "epochs: 299 of 300  ETA 1.2s"])  # an integer is exact
    assert not matches([*real[:-1], "epoch: 300 of 300  ETA 1.2s"])  # so is every word
    assert not matches(real[:-1])  # and no line may be missing
