"""The README's Quickstart runs as written, in a fresh clone, on a fresh .venv.

`make serve` starts in the background (creating .venv as a new user's would), the
curl session of the Quickstart runs against it with bash, and a Ctrl-C to make's
process group must stop the API and every worker cleanly.

The clone is of the repository's HEAD, so it holds committed files only. While
developing, QUICKSTART_SOURCE=/path/to/work/tree copies that folder instead.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import httpx
import pytest

from service.core.settings import Settings
from tests.service.live import free_port

ROOT = Path(__file__).resolve().parents[1]
SOURCE_VARIABLE = "QUICKSTART_SOURCE"
VENV_AND_START_SECONDS = 900  # a cold pip cache downloads every wheel
SESSION_SECONDS = 300
NOT_COPIED = (".git", ".venv", "*.db", "*.db-*", "__pycache__", ".*_cache", "*.egg-info")


def section(readme: str, title: str) -> str:
    """The text under ``## title``, up to the next second-level heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert match, f"the README has no '## {title}' section"
    return match.group(1)


def curl_session(readme: str) -> str:
    blocks = re.findall(r"^```sh\n(.*?)^```", section(readme, "Quickstart"), re.M | re.S)
    sessions = [block for block in blocks if "curl " in block]
    assert len(sessions) == 1, "the Quickstart has one ```sh block with the curl session"
    return sessions[0]


def shown_output(readme: str) -> list[str]:
    """The lines the Quickstart shows the session printing (the bare ``` block after it)."""
    blocks, info, lines = [], None, []
    for line in section(readme, "Quickstart").splitlines():
        if not line.startswith("```"):
            lines.append(line)
        elif info is None:
            info, lines = line[3:], []
        else:
            blocks.append((info, lines))
            info, lines = None, []
    bare = [lines for info, lines in blocks if not info]
    assert len(bare) == 1, "the Quickstart shows what the session prints in one ``` block"
    return bare[0]


def shown_pairs(line: str) -> dict[str, str]:
    """The `"key": value` pairs a shown line spells out in full (its `...` and `…` elided)."""
    return dict(re.findall(r'"(\w+)": ?([^,{}\[\]…]+?)(?=,|}|$)', line))


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``, from /proc (workers run in process groups of their own)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def processes_running_from(folder: Path) -> set[int]:
    """Processes whose command line names ``folder`` (the clone's .venv/bin/python)."""
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(folder).encode() in cmdline.read_bytes():
                found.add(int(cmdline.parent.name))
        except OSError:
            continue
    return found - {os.getpid()}


def clean_environment() -> dict[str, str]:
    """What a person's shell would have: none of this test run's settings, venv or make."""
    dropped = ("BACKPROP_", "PYTHON", "VIRTUAL_ENV", "MAKE", "MFLAGS", "PYTEST_")
    return {name: value for name, value in os.environ.items() if not name.startswith(dropped)}


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A fresh clone of HEAD (or a copy of $QUICKSTART_SOURCE), as a new user would have."""
    for tool in ("git", "make", "curl", "bash"):
        if shutil.which(tool) is None:
            pytest.skip(f"the Quickstart needs {tool}")
    folder = tmp_path / "backprop-service"
    if source := os.environ.get(SOURCE_VARIABLE):
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns(*NOT_COPIED))
    else:
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(folder)], check=True)
    return folder


@pytest.fixture
def make_serve(checkout, tmp_path) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    """`make serve` in the clone, on a free port: (make's process, base URL, its output)."""
    port = free_port()
    env = {**clean_environment(), "BACKPROP_PORT": str(port)}
    log = tmp_path / "make-serve.log"
    with log.open("w") as output:
        make = subprocess.Popen(
            ["make", "serve"],
            cwd=checkout,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, like a terminal's job
        )
    try:
        yield make, f"http://127.0.0.1:{port}", log
    finally:
        leftovers = descendants(make.pid) | processes_running_from(checkout)
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
        for pid in leftovers:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def wait_until_ready(make: subprocess.Popen, base_url: str, log: Path) -> None:
    deadline = time.monotonic() + VENV_AND_START_SECONDS
    while time.monotonic() < deadline:
        if make.poll() is not None:
            pytest.fail(f"make serve exited with {make.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"make serve not ready after {VENV_AND_START_SECONDS} s:\n{log.read_text()}")


def wait_for_text(log: Path, text: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def gone(pids: set[int], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.slow
def test_readme_quickstart_runs_as_written_in_a_fresh_clone(checkout, make_serve):
    make, base_url, log = make_serve
    wait_until_ready(make, base_url, log)
    assert wait_for_text(log, f"docs at {base_url}/docs")

    session = curl_session((checkout / "README.md").read_text())
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + session],
        cwd=checkout,
        env={**clean_environment(), "URL": base_url},
        capture_output=True,
        text=True,
        timeout=SESSION_SECONDS,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{log.read_text()}"

    # The session prints the network's last history point, then one prediction per model,
    # as the README shows: the same fields, the same epoch, the same classes and labels.
    printed = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    shown = shown_output((checkout / "README.md").read_text())
    assert len(printed) == len(shown) == 3, (result.stdout, shown)
    last_point, *predictions = printed
    shown_point = shown_pairs(shown[0])
    assert set(shown_point) <= set(last_point), (shown_point, last_point)
    assert last_point["epoch"] == int(shown_point["epoch"])
    assert last_point["train_loss"] is not None
    for line, response in zip(shown[1:], predictions, strict=True):
        assert json.loads(re.search(r'"classes":(\[.*?\])', line)[1]) == response["classes"]
        shown_labels = re.findall(r'"label":"([^"]+)"', line)
        assert [p["label"] for p in response["predictions"]][: len(shown_labels)] == shown_labels
    for response in predictions:
        # An Adelie penguin, then a Gentoo of unknown sex; both models learn that.
        assert [p["label"] for p in response["predictions"]] == ["Adelie", "Gentoo"]
        for prediction in response["predictions"]:
            assert set(prediction["probabilities"]) == {"Adelie", "Chinstrap", "Gentoo"}
            assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)

    # Ctrl-C in the terminal: SIGINT to make's whole process group.
    running = descendants(make.pid)
    assert len(running) >= 3, "make, backprop serve and its workers"
    os.killpg(make.pid, signal.SIGINT)
    # make reports the interrupt as a shell expects of Ctrl-C: it dies of SIGINT itself,
    # after its child `backprop serve` stopped everything and exited.
    assert make.wait(60) == -signal.SIGINT
    output = log.read_text()
    assert "backprop serve stopped" in output, output
    assert "Traceback" not in output, output
    assert "killing it" not in output, output
    assert gone(running), f"left running: {running & descendants(1)}"
    assert processes_running_from(checkout) == set()


def test_configuration_table_lists_every_setting_with_its_default():
    table = section((ROOT / "README.md").read_text(), "Configuration")
    rows = dict(re.findall(r"^\| `(BACKPROP_\w+)` \| ([^|]+) \|", table, re.M))
    names = {f"BACKPROP_{name.upper()}" for name in Settings.model_fields}
    assert set(rows) == names
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            continue  # computed on the machine, e.g. workers: one per core
        shown = rows[f"BACKPROP_{name.upper()}"].strip().strip("`")
        default = field.default
        if default is None:  # a limit left unset
            assert shown == "unlimited", name
            continue
        assert (shown == default) if isinstance(default, str) else (float(shown) == default), name
