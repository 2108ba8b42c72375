"""Sweeps: `backprop sweeps create|list|show|cancel`, a grid or random search over a
base job's hyperparameters, and its leaderboard.

A search dimension is given as ``--vary NAME=V1,V2,...`` (a list of values, any
strategy) or ``--vary NAME=LOW..HIGH`` / ``NAME=LOW..HIGH/log`` (a range; random
search only). The server checks the names and values and answers a 422 naming the
exact one; this side only splits the text.
"""

import sys
import time
from typing import Annotated, Any

import typer

from service.cli.api_types import Sweep
from service.cli.client import DEFAULT_URL, BackpropClient
from service.cli.common import (
    EXIT_JOB_FAILED,
    EXIT_OK,
    TERMINAL_STATES,
    ApiKeyOption,
    BackpropCommand,
    CursorOption,
    JsonOption,
    LimitOption,
    UrlOption,
    UsageProblem,
    connected,
    examples,
    sub_app,
)
from service.cli.output import (
    Column,
    model_spec_shown,
    number,
    print_fields,
    print_json,
    print_page,
    print_table,
    spec_text,
    timestamp,
    training_spec_shown,
)
from service.cli.training import (
    NO_SPEC,
    SpecOptions,
    job_specs,
    with_spec_options,
)

FOLLOW_POLL_SECONDS = 1.0  # a sweep has no event stream: --follow polls it

sweeps_app = sub_app("sweeps", "Search hyperparameters: a grid or random search of jobs.")
SweepId = Annotated[str, typer.Argument(metavar="ID", help="the sweep's id")]


def value_of(text: str) -> Any:
    """A value as typed: an integer, a number, null, or a name (the server checks it)."""
    if text in ("null", "default"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def search_space(vary: list[str]) -> dict[str, Any]:
    """``["learning_rate=0.01,0.1", "l2=0..0.01"]`` as a search space."""
    space: dict[str, Any] = {}
    for item in vary:
        name, equals, values = item.partition("=")
        if not equals or not name or not values:
            expected = "NAME=V1,V2,... or NAME=LOW..HIGH"
            raise UsageProblem(f"argument --vary: expected {expected}, got {item!r}")
        if ".." in values:  # a range: LOW..HIGH, or LOW..HIGH/log
            low, _, high = values.partition("..")
            log = high.endswith("/log")
            try:
                space[name] = {"low": float(low), "high": float(high.removesuffix("/log"))}
            except ValueError:
                raise UsageProblem(f"argument --vary: {item!r}: a range is LOW..HIGH") from None
            space[name]["log"] = log
        else:
            space[name] = [value_of(value) for value in values.split(",")]
    return space


SWEEP_EXAMPLES = examples(
    "backprop sweeps create --dataset ID --model two_layer_network --hidden-units 16 \\",
    "    --optimizer gd --epochs 200 --vary learning_rate=0.01,0.1,0.5 \\",
    "    --vary activation=tanh,relu --follow",
    "backprop sweeps create --dataset ID --model two_layer_network --strategy random \\",
    "    --trials 20 --vary learning_rate=0.0001..0.1/log --vary hidden_units=8,16,32",
)


@sweeps_app.command("create", cls=BackpropCommand, epilog=SWEEP_EXAMPLES)
@with_spec_options
def create_sweep(
    dataset: Annotated[str, typer.Option("--dataset", metavar="ID", help="the dataset")],
    vary: Annotated[
        list[str],
        typer.Option(
            "--vary",
            metavar="NAME=VALUES",
            help="a dimension to search (repeat): NAME=V1,V2,... or, random search only, "
            "NAME=LOW..HIGH[/log]; names: learning_rate, hidden_units, activation, l2, "
            "init, optimizer",
        ),
    ],
    strategy: Annotated[
        str, typer.Option("--strategy", metavar="S", help="grid (every combination) or random")
    ] = "grid",
    trials: Annotated[
        int | None, typer.Option("--trials", metavar="N", help="random search: trials to draw")
    ] = None,
    search_seed: Annotated[
        int | None, typer.Option("--search-seed", metavar="N", help="random search: its seed")
    ] = None,
    spec: SpecOptions = NO_SPEC,  # the spec options, given by with_spec_options
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            help="poll the sweep until every trial ended, then show the leaderboard; exit "
            f"0 if it succeeded, {EXIT_JOB_FAILED} if a trial failed or was cancelled",
        ),
    ] = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Start a sweep: one job per trial, on a base job made of the spec options given.

    Each trial replaces the dimensions it searches (--vary) in the base specs.
    """
    search: dict[str, Any] = {"strategy": strategy, "space": search_space(vary)}
    if strategy == "random":
        search["n_trials"] = trials
        search |= {"seed": search_seed} if search_seed is not None else {}
    body = {"dataset_id": dataset, **job_specs(spec), "search": search}
    with connected(url, api_key) as api:
        sweep = api.create_sweep(body)
        if follow:
            raise typer.Exit(follow_sweep(api, sweep, json_output=json_output))
        if json_output:
            print_json(sweep)
        else:
            print_fields(sweep_fields(sweep))


def follow_sweep(api: BackpropClient, sweep: Sweep, *, json_output: bool) -> int:
    """A line on stderr whenever the trials' counts change; at the end, the leaderboard."""
    # The first line names the sweep only: a worker may have claimed a trial already.
    print(f"sweep {sweep['id']}: {sweep['counts']['total']} trials", file=sys.stderr)
    shown = None
    while True:
        counts = sweep["counts"]
        line = f"sweep {sweep['id']}: {sweep['status']}, {counts_text(counts)}"
        if line != shown:
            print(line, file=sys.stderr, flush=True)
            shown = line
        if sweep["status"] in TERMINAL_STATES:
            break
        time.sleep(FOLLOW_POLL_SECONDS)
        sweep = api.get_sweep(sweep["id"])
    show(sweep, json_output=json_output)
    return EXIT_OK if sweep["status"] == "succeeded" else EXIT_JOB_FAILED


def counts_text(counts: dict[str, int]) -> str:
    done = sum(counts[state] for state in TERMINAL_STATES)
    states = ("succeeded", "failed", "cancelled", "running", "cancelling", "queued")
    parts = ", ".join(f"{counts[state]} {state}" for state in states if counts.get(state))
    return f"{done}/{counts['total']} trials done ({parts or 'none'})"


def search_text(search: dict[str, Any]) -> str:
    parts = []
    for name, values in search["space"].items():
        if isinstance(values, dict):
            log = "/log" if values["log"] else ""
            parts.append(f"{name}={values['low']:g}..{values['high']:g}{log}")
        else:
            parts.append(f"{name}=" + ",".join(str(value) for value in values))
    text = f"{search['strategy']}: " + " ".join(parts)
    if search.get("n_trials") is not None:
        text += f" trials={search['n_trials']} seed={search['seed']}"
    return text


def sweep_fields(sweep: Sweep) -> list[tuple[str, Any]]:
    return [
        ("id", sweep["id"]),
        ("status", sweep["status"]),
        ("dataset", sweep["dataset_id"] or "- (deleted)"),
        ("model", spec_text(model_spec_shown(sweep["model"]))),
        ("training", spec_text(training_spec_shown(sweep["training"]))),
        ("search", search_text(sweep["search"])),
        ("trials", counts_text(sweep["counts"])),
        ("created", timestamp(sweep["created_at"])),
    ]


def show(sweep: Sweep, *, json_output: bool) -> None:
    """The sweep's fields, then its leaderboard (best validation loss first)."""
    if json_output:
        print_json(sweep)
        return
    print_fields(sweep_fields(sweep))
    print()
    dimensions = list(sweep["search"]["space"])
    headers = ["RANK", "JOB", "STATUS", *(d.upper() for d in dimensions)]
    headers += ["BEST VAL LOSS", "BEST EPOCH", "TRAIN LOSS", "MODEL"]
    rows = [
        [
            str(trial["rank"]),
            trial["job_id"],
            trial["status"],
            *(str(trial["trial"].get(d, "-")) for d in dimensions),
            number(trial["best_val_loss"]),
            "-" if trial["best_epoch"] is None else str(trial["best_epoch"]),
            number(trial["final_train_loss"]),
            trial["model_id"] or "-",
        ]
        for trial in sweep.get("leaderboard", [])
    ]
    print_table(headers, rows)


def trials_done(sweep: dict[str, Any]) -> int:
    return sum(sweep["counts"][state] for state in TERMINAL_STATES)


SWEEP_COLUMNS: tuple[Column, ...] = (
    ("ID", lambda sweep: sweep["id"]),
    ("STATUS", lambda sweep: sweep["status"]),
    ("STRATEGY", lambda sweep: sweep["search"]["strategy"]),
    ("SEARCH", lambda sweep: ",".join(sweep["search"]["space"])),
    (
        "DONE",
        lambda sweep: (
            f"{sum(sweep['counts'][s] for s in TERMINAL_STATES)}/{sweep['counts']['total']}"
        ),
    ),
    ("CREATED (UTC)", lambda sweep: timestamp(sweep["created_at"])),
)


@sweeps_app.command(
    "list",
    cls=BackpropCommand,
    epilog=examples("backprop sweeps list", "backprop sweeps list --limit 5 --json"),
)
def list_sweeps(
    limit: LimitOption = None,
    cursor: CursorOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """List sweeps, newest first: id, status, search, trials done."""
    with connected(url, api_key) as api:
        page = api.list_sweeps(limit=limit, cursor=cursor)
    print_page(page, SWEEP_COLUMNS, command="sweeps list", json_output=json_output)


@sweeps_app.command(
    "show",
    cls=BackpropCommand,
    epilog=examples("backprop sweeps show ID", "backprop sweeps show ID --json"),
)
def show_sweep(
    sweep_id: SweepId,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """A sweep's search and progress, and its leaderboard: every trial ranked by its
    best validation loss."""
    with connected(url, api_key) as api:
        show(api.get_sweep(sweep_id), json_output=json_output)


@sweeps_app.command("cancel", cls=BackpropCommand, epilog=examples("backprop sweeps cancel ID"))
def cancel_sweep(
    sweep_id: SweepId,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Cancel every trial that has not ended: queued ones at once, running ones at their
    next epoch. Finished trials and their models are kept."""
    with connected(url, api_key) as api:
        sweep, stopping = api.cancel_sweep(sweep_id)
        if json_output:
            print_json(sweep)
            return
        note = "cancelling: running trials stop at their next epoch" if stopping else "cancelled"
        fields = [("sweep", sweep["id"]), ("cancel", note), ("status", sweep["status"])]
        print_fields([*fields, ("trials", counts_text(sweep["counts"]))])
