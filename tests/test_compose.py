"""docker-compose.yml: valid against the Compose Specification, and secure by default.

There is no Docker engine here, so these tests read the file: the schema check proves
`docker compose` will accept it, the rest asserts the security properties from the parsed
file (published ports on 127.0.0.1 only, Ray token auth, secrets only from .env, the
dashboard on a PostgreSQL role of its own). The postgres container's init script runs
against the test server where one is configured.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from tests.helpers.ci import skip_outside_ci
from tests.helpers.paths import REPO

COMPOSE = REPO / "docker-compose.yml"
SCHEMA = REPO.parent / "shared" / "schemas" / "compose-spec.json"
ALLOWED_PUBLISHED = {8501, 8265}  # the sweepscope dashboard and the Ray dashboard
INIT_DIR = REPO / "deploy" / "postgres" / "initdb"
ROLE_SCRIPT = INIT_DIR / "10-dashboard-role.sh"
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(:?[?-][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _published(port: Any) -> tuple[str | None, int | None, int]:
    """(host ip, published port, container port) of a short or long port entry."""
    if isinstance(port, dict):
        published = port.get("published")
        return port.get("host_ip"), int(published) if published else None, int(port["target"])
    text = str(port).split("/")[0]
    parts = text.rsplit(":", 2) if text.count(":") >= 2 else text.split(":")
    if len(parts) == 3:
        return parts[0].strip("[]"), int(parts[1]), int(parts[2])
    if len(parts) == 2:
        return None, int(parts[0]), int(parts[1])
    return None, None, int(parts[0])


def test_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    if not SCHEMA.exists():
        skip_outside_ci(f"the Compose Specification schema is not at {SCHEMA}")
    import json

    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_the_schema_check_catches_a_bad_file(compose: dict[str, Any]) -> None:
    if not SCHEMA.exists():
        skip_outside_ci(f"the Compose Specification schema is not at {SCHEMA}")
    import json

    import jsonschema

    bad = yaml.safe_load(COMPOSE.read_text())
    bad["services"]["postgres"]["healthcheck"]["intervall"] = "5s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, json.loads(SCHEMA.read_text()))


def test_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "ray-head", "ray-worker", "migrate", "dashboard"}
    for name, service in services.items():
        if name != "migrate":  # a one-shot: it exits, it does not serve
            assert "healthcheck" in service, f"{name} has no health check"
    assert services["postgres"]["image"].startswith("postgres:")
    for name in ("ray-head", "ray-worker", "migrate", "dashboard"):
        assert services[name]["build"] == "."
        assert services[name]["image"] == services["ray-head"]["image"]
    # --scale needs a worker without a fixed name or host port.
    worker = services["ray-worker"]
    assert "container_name" not in worker and "ports" not in worker


def test_only_the_dashboards_are_published_and_only_on_loopback(compose: dict[str, Any]) -> None:
    published: dict[int, str] = {}
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            host_ip, host_port, target = _published(port)
            assert host_ip == "127.0.0.1", f"{name} publishes {port!r} beyond 127.0.0.1"
            assert host_port is not None, f"{name} publishes {port!r} on a random port"
            published[host_port] = name
            assert target in ALLOWED_PUBLISHED
        assert "network_mode" not in service, f"{name} would share the host's network"
    assert published == {8501: "dashboard", 8265: "ray-head"}
    assert "ports" not in compose["services"]["postgres"]


def _ray_start_options(command: list[str]) -> dict[str, str]:
    """`ray start`'s --key=value and --key value options, by key."""
    options: dict[str, str] = {}
    for i, part in enumerate(command):
        if part.startswith("--"):
            key, eq, value = part.partition("=")
            following = command[i + 1] if i + 1 < len(command) else "--"
            options[key] = value if eq else ("" if following.startswith("--") else following)
    return options


def test_the_head_runs_no_trials(compose: dict[str, Any]) -> None:
    """The head hosts Ray's GCS and dashboard and every driver (`docker compose run
    ray-head sweepscope run ...`): trials there would starve them. It offers no CPU, so
    trials go to the workers, as on KubeRay (deploy/kubernetes/raycluster.yaml)."""
    head = _ray_start_options(compose["services"]["ray-head"]["command"])
    assert head.get("--num-cpus") == "0", head
    worker = _ray_start_options(compose["services"]["ray-worker"]["command"])
    assert "--num-cpus" not in worker  # every core of a worker runs trials
    kuberay = yaml.safe_load((REPO / "deploy" / "kubernetes" / "raycluster.yaml").read_text())
    assert kuberay["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"


def test_ray_runs_with_token_auth_on_every_node(compose: dict[str, Any]) -> None:
    for name in ("ray-head", "ray-worker"):
        env = compose["services"][name]["environment"]
        assert env["RAY_AUTH_MODE"] == "token", name
        token = env.get("RAY_AUTH_TOKEN") or env.get("RAY_AUTH_TOKEN_PATH")
        assert token and _VAR.fullmatch(str(token)), f"{name}: the token must come from .env"
    head = compose["services"]["ray-head"]["command"]
    assert "--head" in head and "--port=6380" in head  # 6379 is Redis's
    assert any(
        "--address=ray-head:6380" in part for part in compose["services"]["ray-worker"]["command"]
    )


def test_secrets_come_from_env_and_are_required(compose: dict[str, Any]) -> None:
    """Every secret is a required ${VAR:?...} from .env; .env.example names them all."""
    text = COMPOSE.read_text()
    used = {m.group(1) for m in _VAR.finditer(text)}
    assert {
        "POSTGRES_PASSWORD",
        "DASHBOARD_DB_PASSWORD",
        "RAY_AUTH_TOKEN",
        "SWEEPSCOPE_TOKEN",
    } <= used
    for m in _VAR.finditer(text):
        assert (m.group(2) or "").startswith(":?"), f"{m.group(0)} has no required-error"
    example = (REPO / ".env.example").read_text()
    named = {line.split("=", 1)[0] for line in example.splitlines() if re.match(r"^[A-Z_]+=", line)}
    assert used == named
    assert all(line.endswith("=") for line in example.splitlines() if re.match(r"^[A-Z_]+=", line))
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert ".env" in ignored
    assert compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${")
    assert "pgdata" in compose["volumes"]
    assert any(str(v).startswith("pgdata:") for v in compose["services"]["postgres"]["volumes"])


def _store_user(url: str) -> tuple[str, str]:
    """(user, the .env variable holding its password) of a store URL in the compose file."""
    passwords = _VAR.findall(url)
    assert len(passwords) == 1, f"{url}: the password must be one ${{VAR:?...}} from .env"
    parsed = sa.engine.make_url(_VAR.sub("secret", url))
    assert parsed.get_backend_name() == "postgresql" and parsed.host == "postgres"
    assert parsed.username
    return parsed.username, passwords[0][0]


def test_the_dashboard_connects_as_its_own_role_not_the_owner(compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres = services["postgres"]["environment"]
    owner = postgres["POSTGRES_USER"]
    assert _store_user(services["ray-head"]["environment"]["SWEEPSCOPE_STORE"]) == (
        owner,
        "POSTGRES_PASSWORD",
    )
    dashboard = services["dashboard"]["environment"]
    user, password = _store_user(dashboard["SWEEPSCOPE_STORE"])
    assert user != owner, "the dashboard must not connect as the owner of the tables"
    assert password == "DASHBOARD_DB_PASSWORD"
    # The owner's password is nowhere in the dashboard's container.
    assert "POSTGRES_PASSWORD" not in yaml.safe_dump(services["dashboard"])
    # The postgres container creates that role at its first start ...
    assert postgres["DASHBOARD_DB_USER"] == user
    secret = _VAR.fullmatch(str(postgres["DASHBOARD_DB_PASSWORD"]))
    assert secret and secret.group(1) == password
    mounts = [str(v).split(":") for v in services["postgres"]["volumes"]]
    assert ["./deploy/postgres/initdb", "/docker-entrypoint-initdb.d", "ro"] in mounts
    assert ROLE_SCRIPT.is_file() and os.access(ROLE_SCRIPT, os.X_OK)
    # ... a one-shot `migrate` creates the schema as the owner and grants the role ...
    migrate = services["migrate"]
    command = [str(part) for part in migrate["command"]]
    assert command[:2] == ["sweepscope", "migrate"]
    assert command[command.index("--grant-dashboard") + 1] == user
    assert _store_user(command[command.index("--store") + 1]) == (owner, "POSTGRES_PASSWORD")
    assert migrate["restart"] == "no"  # it must end, not loop
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    # ... before the dashboard starts.
    assert services["dashboard"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"
    }


@pytest.mark.postgres
def test_the_init_script_creates_the_dashboard_role(postgres_url: str) -> None:
    """The script the postgres image runs at its first start, on the test server: it creates
    the role with its password, a rerun (an older volume, a new password) works too, and
    an empty password stops it."""
    if not shutil.which("psql"):
        skip_outside_ci("the init-script test needs psql (apt-get install postgresql-client)")
    url = sa.engine.make_url(postgres_url)
    role = f"sweepscope_dashboard_{secrets.token_hex(4)}"
    env = {
        **os.environ,
        "PGHOST": url.host or "127.0.0.1",
        "PGPORT": str(url.port or 5432),
        "POSTGRES_USER": str(url.username),
        "POSTGRES_DB": str(url.database),
        "DASHBOARD_DB_USER": role,
    }
    if url.password:
        env["PGPASSWORD"] = url.password
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")

    def login_role() -> tuple[bool, bool] | None:
        with admin.connect() as conn:
            row = conn.execute(
                sa.text("SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = :r"),
                {"r": role},
            ).first()
        return None if row is None else (bool(row[0]), bool(row[1]))

    def run(password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(ROLE_SCRIPT)],
            env={**env, "DASHBOARD_DB_PASSWORD": password},
            capture_output=True,
            text=True,
            timeout=60,
        )

    try:
        for password in (secrets.token_hex(16), 'it\'s "quoted"; --'):
            done = run(password)
            assert done.returncode == 0, done.stderr
            assert password not in done.stdout + done.stderr
            assert login_role() == (True, False)
        empty = run("")
        assert empty.returncode != 0 and "DASHBOARD_DB_PASSWORD" in empty.stderr
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


def test_workers_share_checkpoint_storage_with_the_driver(compose: dict[str, Any]) -> None:
    services = compose["services"]
    storage = services["ray-head"]["environment"]["SWEEPSCOPE_STORAGE_PATH"]
    for name in ("ray-head", "ray-worker"):
        mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in services[name]["volumes"]}
        assert mounts.get("/shared") == "ray-storage", name
    assert storage.startswith("/shared/")
    assert services["ray-head"]["environment"]["RAY_ADDRESS"] == "ray-head:6380"


def test_dockerfile_installs_with_the_script_and_drops_root() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^RUN .*scripts/install\.sh$", dockerfile, re.M)
    assert re.search(r"^ARG TORCH_SPEC=torch==\d+\.\d+\.\d+$", dockerfile, re.M)
    assert re.search(r"^USER (?!root)\w+$", dockerfile, re.M)
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored and ".git" in ignored and ".venv" in ignored


def test_published_port_parser() -> None:
    assert _published("127.0.0.1:8501:8501") == ("127.0.0.1", 8501, 8501)
    assert _published("8501:8501") == (None, 8501, 8501)
    assert _published("8501") == (None, None, 8501)
    assert _published("[::1]:8265:8265/tcp") == ("::1", 8265, 8265)
    assert _published({"target": 80, "published": "8080", "host_ip": "0.0.0.0"}) == (
        "0.0.0.0",
        8080,
        80,
    )
