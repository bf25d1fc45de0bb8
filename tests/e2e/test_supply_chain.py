"""The lock files and the two scripts around them: scripts/lock.py --check notices a pyproject
edit that was not followed by a refresh, and scripts/audit.py never reports "no known
vulnerabilities" for an audit that did not happen (run against a fake pip-audit that writes the
report shapes the real one writes)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQ = ROOT / "requirements"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$")


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")


def locked(path: Path) -> dict[str, str]:
    """name -> version; asserts every pin carries at least one sha256 hash."""
    pins: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        match = PIN.match(line)
        if match:
            assert lines[i + 1].strip().startswith("--hash=sha256:"), f"{path.name}: {match.group(1)} has no hash"
            pins[_name(match.group(1))] = match.group(2)
        else:
            assert not line or line.startswith((" ", "#")), f"{path.name}: unpinned line {line!r}"
    return pins


def test_locks_pin_every_dependency_with_hashes_and_agree_with_each_other() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    runtime, test = locked(REQ / "runtime.txt"), locked(REQ / "test.txt")
    wanted_runtime = {_name(r) for r in project["project"]["dependencies"]}
    wanted_runtime |= {_name(r) for r in project["build-system"]["requires"]}
    assert wanted_runtime <= set(runtime), "every runtime dependency and the build backend is locked"
    assert {_name(r) for r in project["project"]["optional-dependencies"]["test"]} <= set(test)
    assert {k: test[k] for k in runtime} == runtime, "CI tests the versions the image ships"
    assert not {"pytest", "mypy", "ruff", "hypothesis"} & set(runtime), "test tools stay out of the image"
    assert {"uv", "pip-audit"} <= set(locked(REQ / "tools.txt"))


def _copy_project(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", "requirements", "scripts"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    return tmp_path


def _check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "scripts/lock.py", "--check"], cwd=root, capture_output=True, text=True)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"rich>=13",', '"rich>=13",\n    "attrs>=23",'),     # a new runtime dependency
        ('"pytest>=8",', '"pytest>=9",'),                    # a changed test floor
        ('"setuptools>=68"', '"setuptools>=70"'),             # the build backend
    ],
)
def test_lock_check_fails_when_pyproject_dependencies_change(tmp_path: Path, old: str, new: str) -> None:
    root = _copy_project(tmp_path)
    assert _check(root).returncode == 0, "the committed locks match the committed pyproject"
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    assert old in text
    pyproject.write_text(text.replace(old, new), encoding="utf-8")
    proc = _check(root)
    assert proc.returncode == 1
    assert "python3 scripts/lock.py" in proc.stderr and "requirements/runtime.txt" in proc.stderr


def test_lock_check_ignores_edits_outside_the_dependency_lists(tmp_path: Path) -> None:
    root = _copy_project(tmp_path)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(re.sub(r'(?m)^version = ".*"$', 'version = "9.9.9"', text), encoding="utf-8")
    assert _check(root).returncode == 0


FAKE_PIP_AUDIT = """#!{python}
import json, sys
args = sys.argv[1:]
out = args[args.index("--output") + 1]
mode = {mode!r}
if mode == "unreachable":
    sys.stderr.write("Traceback ...\\nrequests.exceptions.ConnectionError: pypi.org unreachable\\n")
    sys.exit(1)
ignored = [args[i + 1] for i, a in enumerate(args) if a == "--ignore-vuln"]
deps = {deps}
for dep in deps:
    dep["vulns"] = [v for v in dep.get("vulns", []) if v["id"] not in ignored]
json.dump({{"dependencies": deps, "fixes": []}}, open(out, "w"))
sys.exit(1 if any(d.get("vulns") for d in deps) else 0)
"""


def _audit(
    tmp_path: Path, mode: str, deps: Sequence[Mapping[str, Any]], ignore: str | None = None
) -> tuple[int, str]:
    root = _copy_project(tmp_path)
    if ignore is not None:
        (root / "requirements" / "audit-ignore.txt").write_text(ignore, encoding="utf-8")
    fake = tmp_path / "pip-audit"
    script = FAKE_PIP_AUDIT.format(python=sys.executable, mode=mode, deps=repr([dict(d) for d in deps]))
    fake.write_text(script, encoding="utf-8")
    fake.chmod(0o755)
    proc = subprocess.run(
        [sys.executable, "scripts/audit.py", "--pip-audit", str(fake)], cwd=root, capture_output=True, text=True
    )
    return proc.returncode, proc.stdout + proc.stderr


CLEAN = [{"name": "alembic", "version": "1.0", "vulns": []}, {"name": "rich", "version": "13.0", "vulns": []}]
NOT_FOUND = [
    {"name": n, "skip_reason": f"Dependency not found on PyPI and could not be audited: {n}"} for n in ("a", "b")
]
FIXABLE = {"id": "PYSEC-1", "fix_versions": ["1.1"], "description": "x"}
UNFIXABLE = {"id": "GHSA-2", "fix_versions": [], "description": "y"}


def test_audit_reports_clean_only_after_checking(tmp_path: Path) -> None:
    code, out = _audit(tmp_path, "ok", CLEAN)
    assert code == 0 and "2 of 2 locked package versions checked" in out and "skipped" not in out


@pytest.mark.parametrize(("mode", "deps"), [("unreachable", []), ("ok", NOT_FOUND)])
def test_audit_that_could_not_check_says_skipped_and_never_clean(
    tmp_path: Path, mode: str, deps: Sequence[Mapping[str, Any]]
) -> None:
    code, out = _audit(tmp_path, mode, deps)
    assert code == 0, "an unreachable advisory service does not fail CI"
    assert out.startswith("vulnerability audit skipped: ")
    assert "checked against" not in out and "no known" not in out.lower()


def test_audit_fails_on_a_fixable_vulnerability_and_warns_on_an_unfixable_one(tmp_path: Path) -> None:
    deps = [{"name": "alembic", "version": "1.0", "vulns": [FIXABLE]},
            {"name": "rich", "version": "13.0", "vulns": [UNFIXABLE]}]
    code, out = _audit(tmp_path, "ok", deps)
    assert code == 1 and "FAIL known vulnerability with a fix: alembic==1.0: PYSEC-1 (fixed in 1.1)" in out
    assert "WARNING known vulnerability without a fixed release: rich==13.0: GHSA-2" in out
    code, out = _audit(tmp_path / "2", "ok", [{"name": "rich", "version": "13.0", "vulns": [UNFIXABLE]}])
    assert code == 0 and "1 known vulnerability without a fix" in out


def test_audit_ignore_list_needs_a_reason(tmp_path: Path) -> None:
    deps = [{"name": "alembic", "version": "1.0", "vulns": [FIXABLE]}]
    code, out = _audit(tmp_path, "ok", deps, ignore="PYSEC-1  # migrations never parse untrusted input\n")
    assert code == 0 and "FAIL" not in out
    code, out = _audit(tmp_path / "2", "ok", deps, ignore="PYSEC-1\n")
    assert code != 0 and "give the reason" in out
