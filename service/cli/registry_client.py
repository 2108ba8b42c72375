"""The client's calls to /v1/registered-models and the deletes of models and jobs: a mixin
of service.cli.client.BackpropClient, kept apart so that each module stays short."""

from typing import Any, Protocol

from service.cli.api_types import Page, Predictions


class _Sends(Protocol):
    def _json(self, method: str, path: str, **options: Any) -> Any: ...

    def _send(self, method: str, path: str, **options: Any) -> Any: ...


REGISTRY = "/v1/registered-models"


class RegistryCalls:
    """Registered models, versions, aliases; DELETE of models and jobs."""

    def create_registered_model(
        self: _Sends, name: str, description: str | None = None
    ) -> dict[str, Any]:
        body = {"name": name} if description is None else {"name": name, "description": description}
        return self._json("POST", REGISTRY, json=body)

    def list_registered_models(
        self: _Sends, *, limit: int | None = None, cursor: str | None = None
    ) -> Page:
        params = {k: v for k, v in {"limit": limit, "cursor": cursor}.items() if v is not None}
        return self._json("GET", REGISTRY, params=params)

    def get_registered_model(self: _Sends, name: str) -> dict[str, Any]:
        """The registered model with its versions (newest first) and aliases."""
        return self._json("GET", f"{REGISTRY}/{name}")

    def register_version(self: _Sends, name: str, model_id: str) -> dict[str, Any]:
        """POST a version: the answer holds its `version` number."""
        return self._json("POST", f"{REGISTRY}/{name}/versions", json={"model_id": model_id})

    def set_alias(self: _Sends, name: str, alias: str, version: int) -> dict[str, Any]:
        """PUT the alias (create or move it): the alias as it now stands, with its moves."""
        return self._json("PUT", f"{REGISTRY}/{name}/aliases/{alias}", json={"version": version})

    def get_alias(self: _Sends, name: str, alias: str) -> dict[str, Any]:
        return self._json("GET", f"{REGISTRY}/{name}/aliases/{alias}")

    def predict_alias(
        self: _Sends, name: str, alias: str, records: list[dict[str, Any]]
    ) -> Predictions:
        """Predictions by the model the alias points at (its id in the answer's model_id)."""
        from service.cli.client import SLOW_TIMEOUT

        return self._json(
            "POST",
            f"{REGISTRY}/{name}/aliases/{alias}/predictions",
            json={"records": records},
            timeout=SLOW_TIMEOUT,
        )

    def delete_model(self: _Sends, model_id: str) -> None:
        """DELETE: 204; 409 (ApiError) while an alias points at one of its versions."""
        self._send("DELETE", f"/v1/models/{model_id}")

    def delete_job(self: _Sends, job_id: str) -> None:
        """DELETE: 204; 409 (ApiError) while it is queued or running, or its model aliased."""
        self._send("DELETE", f"/v1/jobs/{job_id}")
