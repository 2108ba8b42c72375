"""A small typed HTTP client for the backprop API (httpx), used by the `backprop` CLI.

Every method returns the decoded JSON body as the server sent it. An error answer
(problem+json, or anything else with a 4xx/5xx status) raises ApiError; a server
that cannot be reached, or stops answering, raises Unreachable. Nothing here
prints: output is the CLI's business (the command modules of service.cli).

    with BackpropClient("http://127.0.0.1:8000") as api:
        dataset, created = api.upload_dataset(Path("cancer.csv"), label="target")
        job = api.create_job({"dataset_id": dataset["id"]})
        for event in api.job_events(job["id"]):
            ...
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from service.cli.api_types import (
    Dataset,
    FieldError,
    History,
    Job,
    Model,
    Page,
    Predictions,
    Sweep,
)
from service.cli.events import Event, EventParser, parse_events
from service.cli.registry_client import RegistryCalls

DEFAULT_URL = "http://127.0.0.1:8000"
USER_AGENT = "backprop-cli"
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# Uploads and predictions wait for the server to parse and compute: no read deadline.
SLOW_TIMEOUT = httpx.Timeout(30.0, connect=5.0, read=None)
# The events stream sends a keep-alive comment every 15 s: a minute of silence is a dead stream.
STREAM_TIMEOUT = httpx.Timeout(30.0, connect=5.0, read=60.0)
RECONNECT_ATTEMPTS = 30  # consecutive failed reconnections before giving up (about 30 s)

PARQUET_SUFFIXES = (".parquet", ".pq")
PARQUET_MAGIC = b"PAR1"
PARQUET_TYPE = "application/vnd.apache.parquet"
CSV_TYPE = "text/csv"


# Errors.


class ApiError(Exception):
    """The server answered with an error status; ``problem`` is its problem+json body."""

    def __init__(self, status: int, problem: dict[str, Any]):
        self.status = status
        self.problem = problem
        self.title = str(problem.get("title") or f"HTTP {status}")
        self.detail = str(problem.get("detail") or "")
        self.errors: list[FieldError] = [
            {"field": str(e.get("field", "")), "message": str(e.get("message", ""))}
            for e in problem.get("errors") or []
            if isinstance(e, dict)
        ]
        super().__init__(f"{self.title}: {self.detail}" if self.detail else self.title)


class Unreachable(Exception):
    """No answer from the server: refused, unresolvable, timed out, or cut off."""

    def __init__(self, url: str, reason: str):
        self.url = url
        self.reason = reason
        super().__init__(f"could not reach {url}: {reason}")


# The client.


@dataclass(frozen=True)
class Uploaded:
    dataset: Dataset
    created: bool  # True: 201, a new dataset; False: 200, these bytes were stored before


@dataclass(frozen=True)
class HistoryCsv:
    text: str  # header row, then one row per epoch
    next_since_epoch: int | None


def file_format(path: Path) -> str:
    """The file's format, parquet or csv: by its extension, else by Parquet's magic number."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return "parquet"
    if path.suffix.lower() == ".csv":
        return "csv"
    with path.open("rb") as file:
        return "parquet" if file.read(len(PARQUET_MAGIC)) == PARQUET_MAGIC else "csv"


class BackpropClient(RegistryCalls):
    """The API at ``base_url``; ``api_key`` is sent as ``Authorization: Bearer <key>``."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=TIMEOUT, transport=transport
        )

    def __enter__(self) -> "BackpropClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # Plumbing.

    def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        """The response to a request; raises ApiError for an error status, Unreachable."""
        try:
            response = self._http.request(method, path, **options)
        except httpx.TransportError as error:
            raise self._unreachable(error) from error
        check(response)
        return response

    def _json(self, method: str, path: str, **options: Any) -> Any:
        response = self._send(method, path, **options)
        try:
            return response.json()
        except ValueError as error:
            raise ApiError(
                response.status_code,
                {"title": "Bad response", "detail": f"{path} did not answer JSON: {error}"},
            ) from error

    def _unreachable(self, error: httpx.TransportError) -> Unreachable:
        if isinstance(error, httpx.TimeoutException):
            reason = "no answer in time (timed out)"
        else:
            reason = str(error) or type(error).__name__
        return Unreachable(self.base_url, reason)

    # Datasets.

    def upload_dataset(
        self,
        path: Path,
        *,
        label: str | None = None,
        name: str | None = None,
        categorical: str | None = None,
        ignore: str | None = None,
    ) -> Uploaded:
        """Stream ``path`` (CSV or Parquet) as a multipart upload; the file is never read whole.
        ``categorical`` and ``ignore``: comma-separated column names."""
        content_type = PARQUET_TYPE if file_format(path) == "parquet" else CSV_TYPE
        given = (("label", label), ("name", name), ("categorical", categorical), ("ignore", ignore))
        params = {key: value for key, value in given if value}
        with path.open("rb") as file:
            response = self._send(
                "POST",
                "/v1/datasets",
                params=params,
                files={"file": (path.name, file, content_type)},
                timeout=SLOW_TIMEOUT,
            )
        return Uploaded(dataset=response.json(), created=response.status_code == 201)

    def list_datasets(self, *, limit: int | None = None, cursor: str | None = None) -> Page:
        return self._json("GET", "/v1/datasets", params=_given({"limit": limit, "cursor": cursor}))

    def get_dataset(self, dataset_id: str) -> Dataset:
        return self._json("GET", f"/v1/datasets/{dataset_id}")

    def delete_dataset(self, dataset_id: str) -> None:
        """DELETE: 204; a dataset a queued or running job uses is a 409 (ApiError)."""
        self._send("DELETE", f"/v1/datasets/{dataset_id}")

    # Jobs.

    def create_job(self, job_in: dict[str, Any]) -> Job:
        """POST /v1/jobs with a JobCreate body (dataset_id, model, training)."""
        return self._json("POST", "/v1/jobs", json=job_in)

    def list_jobs(
        self,
        *,
        statuses: list[str] | None = None,
        dataset_id: str | None = None,
        sweep_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page:
        params: dict[str, Any] = {"status": statuses or None, "dataset_id": dataset_id}
        params |= {"sweep_id": sweep_id, "limit": limit, "cursor": cursor}
        return self._json("GET", "/v1/jobs", params=_given(params))

    def get_job(self, job_id: str) -> Job:
        return self._json("GET", f"/v1/jobs/{job_id}")

    def cancel_job(self, job_id: str) -> tuple[Job, bool]:
        """The job after the request, and whether it is still stopping (202: running)."""
        response = self._send("POST", f"/v1/jobs/{job_id}/cancel")
        return response.json(), response.status_code == 202

    def job_history(
        self,
        job_id: str,
        *,
        since_epoch: int = 0,
        max_points: int | None = None,
        limit: int | None = None,
    ) -> History:
        """One page of the job's history (see GET /v1/jobs/{id}/history)."""
        params = _given({"since_epoch": since_epoch, "max_points": max_points, "limit": limit})
        return self._json("GET", f"/v1/jobs/{job_id}/history", params=params)

    def job_history_csv(
        self,
        job_id: str,
        *,
        since_epoch: int = 0,
        max_points: int | None = None,
        limit: int | None = None,
    ) -> HistoryCsv:
        """The same page as CSV (Accept: text/csv), as the server wrote it."""
        params = _given({"since_epoch": since_epoch, "max_points": max_points, "limit": limit})
        response = self._send(
            "GET", f"/v1/jobs/{job_id}/history", params=params, headers={"Accept": "text/csv"}
        )
        following = response.headers.get("Next-Since-Epoch")
        return HistoryCsv(response.text, int(following) if following else None)

    def job_events(
        self,
        job_id: str,
        *,
        last_event_id: str | None = None,
        on_reconnect: Callable[[int, str], None] | None = None,
    ) -> Iterator[Event]:
        """The job's server-sent events (status, epoch, end) until ``end``.

        A stream that drops or goes silent is reopened with ``Last-Event-ID`` (the last
        epoch received), so no epoch is lost or repeated; ``on_reconnect(attempt, reason)``
        hears of each try. Raises Unreachable after RECONNECT_ATTEMPTS failures in a row.
        """
        parser = EventParser()
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_event_id is not None:
                headers["Last-Event-ID"] = last_event_id
            reason = "the stream ended before the job did"
            try:
                with self._http.stream(
                    "GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=STREAM_TIMEOUT
                ) as response:
                    if response.is_error:
                        response.read()
                        check(response)
                    failures = 0
                    for event in parse_events(response.iter_lines(), parser):
                        if event.id is not None:
                            last_event_id = event.id
                        yield event
                        if event.event == "end":
                            return
            except httpx.TransportError as error:
                reason = self._unreachable(error).reason
                failures += 1
                if failures > RECONNECT_ATTEMPTS:
                    raise self._unreachable(error) from error
            if on_reconnect is not None:
                on_reconnect(failures, reason)
            time.sleep(parser.retry_seconds or 1.0)

    # Models.

    def list_models(
        self,
        *,
        dataset_id: str | None = None,
        job_id: str | None = None,
        model_type: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page:
        """A page of models, newest first, without their parameter arrays."""
        params = {"dataset_id": dataset_id, "job_id": job_id, "type": model_type}
        params |= {"limit": limit, "cursor": cursor}
        return self._json("GET", "/v1/models", params=_given(params))

    def get_model(self, model_id: str) -> Model:
        """The model without its parameter arrays (classes, feature_names, metrics...)."""
        return self._json("GET", f"/v1/models/{model_id}", params={"include_parameters": False})

    def predict(self, model_id: str, records: list[dict[str, float]]) -> Predictions:
        """Predictions for records keyed by feature name (at most the server's row limit)."""
        return self._json(
            "POST",
            f"/v1/models/{model_id}/predictions",
            json={"records": records},
            timeout=SLOW_TIMEOUT,
        )

    def download_model(self, model_id: str, into: BinaryIO) -> int:
        """Stream the model's .npz into ``into``; the number of bytes written."""
        return self._download(f"/v1/models/{model_id}/download", into)

    def export_model(
        self, model_id: str, into: BinaryIO, *, export_format: str, dtype: str | None = None
    ) -> int:
        """Stream the model as ``export_format`` (onnx) into ``into``; the bytes written."""
        params = _given({"format": export_format, "dtype": dtype})
        return self._download(f"/v1/models/{model_id}/export", into, params=params)

    def _download(self, path: str, into: BinaryIO, params: dict[str, str] | None = None) -> int:
        """Stream a GET's body into ``into``; ApiError for a problem answer."""
        try:
            with self._http.stream("GET", path, params=params, timeout=SLOW_TIMEOUT) as response:
                if response.is_error:
                    response.read()
                    check(response)
                for chunk in response.iter_bytes():
                    into.write(chunk)
                return response.num_bytes_downloaded
        except httpx.TransportError as error:
            raise self._unreachable(error) from error

    # Sweeps.

    def create_sweep(self, sweep_in: dict[str, Any]) -> Sweep:
        """POST /v1/sweeps with a SweepCreate body (a base job and a search)."""
        return self._json("POST", "/v1/sweeps", json=sweep_in)

    def list_sweeps(self, *, limit: int | None = None, cursor: str | None = None) -> Page:
        return self._json("GET", "/v1/sweeps", params=_given({"limit": limit, "cursor": cursor}))

    def get_sweep(self, sweep_id: str) -> Sweep:
        """The sweep with its leaderboard."""
        return self._json("GET", f"/v1/sweeps/{sweep_id}")

    def cancel_sweep(self, sweep_id: str) -> tuple[Sweep, bool]:
        """The sweep after the request, and whether trials are still stopping (202)."""
        response = self._send("POST", f"/v1/sweeps/{sweep_id}/cancel")
        return response.json(), response.status_code == 202


def check(response: httpx.Response) -> None:
    """Raise ApiError for a 4xx/5xx answer, with its problem+json body if it has one."""
    if not response.is_error:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = response.text.strip()
        body = {"title": response.reason_phrase or f"HTTP {response.status_code}"}
        body["detail"] = text[:300] if text else f"HTTP {response.status_code}"
    raise ApiError(response.status_code, body)


def _given(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters without the ones left out (None): the server's defaults apply."""
    return {key: value for key, value in params.items() if value is not None}
