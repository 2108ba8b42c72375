"""`backprop`: the service's command line, on Typer (commands, options, help pages and
shell completion) and Rich (tables and the progress bar).

    app.py          the Typer app: serve, worker, migrate; main() is the console script
    supervisor.py   serve's API thread and worker processes
    datasets.py     upload; datasets list|show|delete
    training.py     train (and the job spec's options, shared with sweeps create)
    jobs.py         jobs, status, cancel, history
    models.py       predict; models list|show|download
    export.py       export (a model as an ONNX file)
    sweeps.py       sweeps create|list|show|cancel
    common.py       exit codes, server options, error handling, help-page plumbing
    output.py       tables, `key: value` blocks, JSON, number formats
    progress.py     a followed job's progress bar
    client.py       a small typed HTTP client of the API (httpx); no output of its own
"""

from service.cli.app import app, main

__all__ = ["app", "main"]
