"""docker-compose.yml and the Dockerfile describe a working PostgreSQL deployment.

Docker does not run here, so these tests read the files: the services and how they
wait for each other, that the API and the workers share one database, that workers
scale, that every command is one the `backprop` CLI accepts, and that the image
installs the project with its migrations.
"""

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml  # installed with uvicorn[standard]
from sqlalchemy.engine import make_url

from service.cli import app

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
BACKPROP_SERVICES = ["migrate", "api", "worker"]


def environment(service: str) -> dict[str, str]:
    """A service's environment, whether written as a mapping or as NAME=value lines."""
    env = SERVICES[service].get("environment", {})
    if isinstance(env, list):
        env = dict(line.split("=", 1) for line in env)
    return {name: str(value) for name, value in env.items()}


def parse(argv: list[str]) -> dict[str, Any]:
    """The options `backprop ARGV` would run its command with: Click parses, nothing runs.
    A usage error (an unknown command or option) raises."""
    name, *args = argv
    backprop = typer.main.get_command(app)
    command = backprop.get_command(backprop.make_context("backprop", [name]), name)
    assert command is not None, f"backprop has no command {name!r}"
    with command.make_context(name, args) as context:
        return context.params


def command(service: str) -> list[str]:
    cmd = SERVICES[service]["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def conditions(service: str) -> dict[str, str]:
    return {name: rule["condition"] for name, rule in SERVICES[service]["depends_on"].items()}


def dockerfile_instructions(keyword: str) -> list[str]:
    """The arguments of every ``keyword`` instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    pattern = rf"^{keyword}\s+(.*)$"
    return [m.strip() for m in re.findall(pattern, text, flags=re.MULTILINE | re.IGNORECASE)]


def test_compose_has_postgres_migrate_api_and_worker():
    assert set(SERVICES) == {"postgres", "migrate", "api", "worker"}


def test_postgres_is_16_with_a_pg_isready_healthcheck_and_a_volume():
    postgres = SERVICES["postgres"]
    assert postgres["image"] == "postgres:16"
    test = postgres["healthcheck"]["test"]
    assert "pg_isready" in (test if isinstance(test, str) else " ".join(test))
    volume = postgres["volumes"][0]
    assert volume.endswith(":/var/lib/postgresql/data")
    assert volume.split(":")[0] in COMPOSE["volumes"]


def test_migrate_runs_once_after_postgres_is_healthy():
    assert command("migrate") == ["backprop", "migrate"]
    assert conditions("migrate") == {"postgres": "service_healthy"}
    assert SERVICES["migrate"]["restart"] == "no"


@pytest.mark.parametrize("service", ["api", "worker"])
def test_api_and_worker_start_after_the_migration_completed(service):
    assert conditions(service) == {
        "postgres": "service_healthy",
        "migrate": "service_completed_successfully",
    }


def test_api_serves_on_port_8000_without_local_workers():
    assert command("api")[:2] == ["backprop", "serve"]
    options = parse(command("api")[1:])
    assert (options["workers"], options["host"]) == (0, "0.0.0.0")
    assert "8000:8000" in SERVICES["api"]["ports"]


def test_api_listening_beyond_loopback_requires_api_keys():
    """serve refuses a non-loopback host without keys; compose must demand them."""
    keys = environment("api")["BACKPROP_API_KEYS"]
    assert keys.startswith("${BACKPROP_API_KEYS:?")


def test_worker_scales_without_a_fixed_name_or_published_ports():
    worker = SERVICES["worker"]
    assert command("worker") == ["backprop", "worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    # A stopping worker checkpoints its job first: more time than Docker's default 10 s.
    assert worker["stop_grace_period"] == "60s"


def test_migrate_api_and_worker_share_one_postgresql_database():
    urls = {service: environment(service)["BACKPROP_DATABASE_URL"] for service in BACKPROP_SERVICES}
    assert len(set(urls.values())) == 1, urls
    url = make_url(urls["api"])
    postgres = environment("postgres")
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "postgres"  # the compose service name
    assert (url.username, url.password, url.database) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )


@pytest.mark.parametrize("service", BACKPROP_SERVICES)
def test_every_backprop_service_runs_the_image_of_this_repository(service):
    assert SERVICES[service]["build"] == "."
    assert SERVICES[service]["image"] == SERVICES["api"]["image"]


@pytest.mark.parametrize("service", BACKPROP_SERVICES)
def test_every_command_is_one_the_cli_accepts(service):
    assert command(service)[0] == "backprop"
    parse(command(service)[1:])  # a usage error raises


def test_dockerfile_installs_the_project_from_python_3_11_slim():
    assert dockerfile_instructions("FROM") == ["python:3.11-slim"]
    # With the onnx extra, so the image can export models as ONNX graphs.
    installs = [run for run in dockerfile_instructions("RUN") if "pip install" in run]
    assert installs == ['pip install ".[onnx]"']
    assert dockerfile_instructions("CMD") == ['["backprop", "serve"]']
    assert dockerfile_instructions("EXPOSE") == ["8000"]


def test_dockerfile_copies_what_migrations_need_and_runs_from_the_source_tree():
    copied = " ".join(dockerfile_instructions("COPY"))
    for path in ("pyproject.toml", "alembic.ini", "engine", "service", "migrations"):
        assert re.search(rf"(^|\s){re.escape(path)}(\s|$)", copied), path
    # service.core.migrate looks for alembic.ini beside the package: /app must come first.
    assert dockerfile_instructions("WORKDIR") == ["/app"]
    assert "PYTHONPATH=/app" in " ".join(dockerfile_instructions("ENV"))


def test_dockerfile_runs_as_a_user_other_than_root():
    users = dockerfile_instructions("USER")
    assert users, "the image must not run as root"
    assert users[-1] not in ("root", "0")


def test_dockerignore_keeps_the_local_environment_and_databases_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for pattern in (".git", ".venv", "*.db"):
        assert pattern in ignored
    for needed in ("alembic.ini", "migrations", "service", "engine", "pyproject.toml"):
        assert needed not in ignored
