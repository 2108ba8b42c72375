"""One live service per backend for the scoring tests, and the models they score with."""

from collections.abc import Iterator

import pytest

from tests.conftest import BACKENDS
from tests.service.scoring.live import Service, breast_cancer, iris, live_service, train, upload


@pytest.fixture(scope="package", params=BACKENDS)
def service(request, tmp_path_factory) -> Iterator[Service]:
    yield from live_service(request.param, tmp_path_factory.mktemp("scoring"))


@pytest.fixture(scope="package")
def cancer(service) -> dict[str, str]:
    """Breast cancer uploaded, and a logistic regression trained on it with the defaults."""
    dataset_id = upload(service.url, breast_cancer(), "diagnosis", "breast-cancer")
    return {"dataset": dataset_id, "model": train(service.url, dataset_id, "logistic_regression")}


@pytest.fixture(scope="package")
def flowers(service) -> dict[str, str]:
    """Iris uploaded (species as words), and a two-layer network trained on it."""
    dataset_id = upload(service.url, iris(), "species", "iris")
    return {"dataset": dataset_id, "model": train(service.url, dataset_id, "two_layer_network")}
