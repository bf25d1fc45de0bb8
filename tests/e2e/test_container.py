"""The container and compose files: checked as text everywhere, and by `docker compose config`
where a compose tool exists.  The image build itself runs in CI's image step (scripts/ci_image.sh).

The HEALTHCHECK is not only read but run: its command is executed against a real HTTP server on
the port named by CLOSEDLOOP_PORT, so a healthcheck that ignores the configured port fails here.
"""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages(steps: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for step in steps:
        if step[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(step)
    return result


@pytest.fixture(scope="module")
def steps() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return stages(steps)[-1]


def args_of(stage: list[tuple[str, str]], word: str) -> list[str]:
    return [rest for w, rest in stage if w == word]


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in args_of(stage, "ENV"):
        env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    return env


def test_dependencies_install_from_the_lock_in_a_layer_before_the_code(steps: list[tuple[str, str]]) -> None:
    all_stages = stages(steps)
    assert len(all_stages) >= 2, "multi-stage: build tools and caches stay out of the image"
    deps = next(s for s in all_stages if any("runtime.txt" in rest for w, rest in s if w == "COPY"))
    copies = [rest for w, rest in deps if w == "COPY"]
    assert copies == [c for c in copies if "requirements/runtime.txt" in c], "only the lock enters the deps stage"
    installs = [rest for w, rest in deps if w == "RUN" and "pip install" in rest]
    assert installs and all("--require-hashes" in r and "runtime.txt" in r for r in installs)
    # The final stage takes the dependencies before the code, so a code change reuses that layer.
    final_copies = [rest for w, rest in all_stages[-1] if w == "COPY"]
    assert final_copies[0].startswith("--from=deps")
    assert not any(re.search(r"(^|\s)closedloop(\s|$)", c) for c in final_copies[:1])


def test_runs_as_a_pinned_uid_and_gid_without_a_home_in_data(final: list[tuple[str, str]]) -> None:
    run = " ".join(args_of(final, "RUN"))
    gid = re.search(r"groupadd\b.*?--gid (\d+)", run)
    uid = re.search(r"useradd\b.*?--uid (\d+)", run)
    assert gid and uid, "uid and gid are both pinned"
    assert re.search(rf"useradd\b.*--gid {gid.group(1)}\b", run), "the user's group is the pinned gid"
    assert "--create-home" not in run and "--no-create-home" in run, "no skeleton dotfiles in /data"
    (user,) = args_of(final, "USER")
    assert user == f"{uid.group(1)}:{gid.group(1)}", "numeric USER, so runAsNonRoot can verify it"
    assert int(uid.group(1)) >= 1000 and int(gid.group(1)) >= 1000
    assert f"chown {uid.group(1)}:{gid.group(1)} /data" in run, "the data volume is writable by that user"


def test_data_volume_workdir_entrypoint_and_bind(final: list[tuple[str, str]]) -> None:
    assert args_of(final, "VOLUME") == ["/data"]
    assert args_of(final, "WORKDIR")[-1] == "/data", "relative sqlite URLs land on the volume"
    assert json.loads(args_of(final, "ENTRYPOINT")[-1]) == ["closedloop"]
    assert json.loads(args_of(final, "CMD")[-1])[:1] == ["serve"]
    env = env_of(final)
    assert env["CLOSEDLOOP_HOST"] == "0.0.0.0", "the container binds all interfaces explicitly"
    assert args_of(final, "EXPOSE") == [env["CLOSEDLOOP_PORT"]], "EXPOSE names the port the server uses"


def test_oci_labels_carry_the_project_metadata(final: list[tuple[str, str]]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    labels = dict(re.findall(r'org\.opencontainers\.image\.(\w+)="([^"]*)"', " ".join(args_of(final, "LABEL"))))
    for key in ("title", "description", "licenses", "version", "revision", "created", "source"):
        assert labels.get(key), f"label org.opencontainers.image.{key}"
    assert labels["title"] == project["name"]
    assert labels["licenses"] == project["license"]["text"]
    defaults = dict(re.findall(r"(\w+)=(\S+)", " ".join(args_of(final, "ARG"))))
    assert labels["version"] == "${VERSION}" and defaults["VERSION"] == project["version"]
    assert labels["revision"] == "${REVISION}", "CI passes the commit as a build arg"
    # Labels from build args come after every layer-creating step, so a new revision reuses them all.
    words = [w for w, _ in final]
    assert max(i for i, w in enumerate(words) if w in ("RUN", "COPY")) < words.index("LABEL")


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _healthcheck_command(final: list[tuple[str, str]]) -> list[str]:
    (healthcheck,) = args_of(final, "HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3:].strip())
    assert command[0] == "python3"
    return [sys.executable, *command[1:]]


def test_healthcheck_probes_the_configured_port(
    final: list[tuple[str, str]], health_server: http.server.ThreadingHTTPServer
) -> None:
    command = _healthcheck_command(final)
    port = health_server.server_address[1]
    env = {**os.environ, "CLOSEDLOOP_PORT": str(port), "HTTP_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
    assert subprocess.run(command, env=env, capture_output=True, timeout=20).returncode == 0
    # A port where nothing listens, and a server that answers 503: unhealthy.
    with_other_port = {**env, "CLOSEDLOOP_PORT": str(port + 1 if port < 65535 else port - 1)}
    assert subprocess.run(command, env=with_other_port, capture_output=True, timeout=20).returncode != 0
    _Health.status = 503
    try:
        assert subprocess.run(command, env=env, capture_output=True, timeout=20).returncode != 0
    finally:
        _Health.status = 200


def _excluded(path: str, patterns: list[str]) -> bool:
    """Docker's rule for the patterns used here: a path is out if it or a parent folder matches."""
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        for pattern in patterns:
            if fnmatch.fnmatchcase(prefix, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatchcase(parts[i - 1], pattern[3:])
            ):
                return True
    return False


def test_dockerignore_keeps_what_the_build_copies_and_drops_the_rest(steps: list[tuple[str, str]]) -> None:
    patterns = [
        ln.strip() for ln in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns), "exceptions would need Docker's full rules here"
    sources = [
        src for w, rest in steps if w == "COPY" and not rest.startswith("--from")
        for src in rest.split()[:-1]
    ]
    assert sources, "the Dockerfile copies from the context"
    for src in sources:
        assert not _excluded(src, patterns), f"{src} is copied by the Dockerfile but excluded from the context"
    for path in (".git", ".venv", "closedloop.db", "closedloop/x.db", ".pytest_cache", ".mypy_cache",
                 ".hypothesis", "closedloop/__pycache__/a.pyc", "bench", "secrets/hubspot_token", "tests"):
        assert _excluded(path, patterns), f"{path} must stay out of the build context"


@pytest.fixture(scope="module")
def compose() -> dict[str, object]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_runs_closedloop_on_a_healthy_postgres_with_secrets_as_files(compose: dict) -> None:
    services = compose["services"]
    db, app = services["db"], services["closedloop"]
    assert "profiles" not in db and "profiles" not in app, "production starts with a plain `up`"
    assert db["healthcheck"]["test"] and "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    named = set(compose["volumes"])
    mounts = {v.split(":")[1]: v.split(":")[0] for v in db["volumes"] + app["volumes"]}
    assert mounts["/var/lib/postgresql/data"] in named and mounts["/data"] in named
    declared = compose["secrets"]
    assert all(set(spec) == {"file"} for spec in declared.values()), "secrets are files, not values"
    for service in services.values():
        assert set(service.get("secrets", [])) <= set(declared)
        env = service.get("environment", {})
        for key, value in env.items():
            if re.search(r"(PASSWORD|TOKEN|SECRET)$", key):
                assert str(value) == "sandbox-token", f"{key} given as a value; use a *_FILE or a secret"
    assert db["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db_password"
    assert "db_password" in db["secrets"] and {"hubspot_token", "db_password"} <= set(app["secrets"])
    # The server and the image's healthcheck agree on the port, and only loopback publishes it.
    port = app["environment"]["CLOSEDLOOP_PORT"]
    assert app["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert app["environment"]["CLOSEDLOOP_HOST"] == "0.0.0.0"


def test_sandbox_profile_reaches_the_emulators_it_configures(compose: dict) -> None:
    services = compose["services"]
    sandbox, trial = services["sandbox"], services["closedloop-sandbox"]
    assert sandbox["profiles"] == ["sandbox"] and trial["profiles"] == ["sandbox"]
    # The emulators bind 127.0.0.1, so the trial shares the sandbox's network namespace.
    assert trial["network_mode"] == "service:sandbox"
    assert trial["depends_on"]["sandbox"]["condition"] == "service_healthy"
    command = sandbox["command"]
    config_out = command[command.index("--config-out") + 1]
    ports = {command[command.index(flag) + 1] for flag in ("--hubspot-port", "--ga4-port")}
    probe = " ".join(sandbox["healthcheck"]["test"])
    assert config_out in probe and all(p in probe for p in ports), "healthy only once both emulators answer"
    assert config_out in " ".join(trial["command"]), "the trial reads the config the sandbox writes"
    shared = {v.split(":")[0] for v in sandbox["volumes"]} & {v.split(":")[0] for v in trial["volumes"]}
    assert shared, "the written config reaches the trial through a shared volume"
    assert trial["environment"]["CLOSEDLOOP_SANDBOX_TOKEN"] == "sandbox-token"


def _compose_tool() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(
        ["docker", "compose", "version"], capture_output=True, timeout=30
    ).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_config_validates(tmp_path: Path) -> None:
    tool = _compose_tool()
    if tool is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    shutil.copy(COMPOSE, tmp_path / "compose.yaml")
    for profile in ([], ["--profile", "sandbox"]):
        proc = subprocess.run(
            [*tool, "-f", "compose.yaml", *profile, "config", "--services"],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        services = set(proc.stdout.split())
        # docker-compose 1.x lists profiled services even without --profile; v2 does not.
        assert {"db", "closedloop"} <= services
        if profile:
            assert services == {"db", "closedloop", "sandbox", "closedloop-sandbox"}
