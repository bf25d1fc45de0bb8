#!/usr/bin/env python3
"""Refresh or check the hash-pinned lock files in requirements/.

    python3 scripts/lock.py           # re-resolve every lock from pyproject.toml (needs PyPI)
    python3 scripts/lock.py --check   # fail if pyproject's dependency lists changed since then

Why a lock at all: without one every install and image build resolves new versions, so two
builds of the same commit can differ and a compromised release lands unseen.  With one, pip
installs exactly these files (`--require-hashes`) and nothing else.

Files (all resolved against PyPI alone, for CPython 3.11 on Linux, with every file's hash):
  runtime.txt  what the image installs: [project].dependencies + the build backend
  test.txt     what CI installs: runtime + the `test` extra, runtime versions held to runtime.txt
  tools.txt    uv (which resolves these files) and pip-audit (CI's vulnerability audit)

Each lock starts with a fingerprint of the dependency lists it was made from, so `--check`
(run by .ci/run) notices a pyproject edit that was not followed by a refresh without needing
the network.  The resolver is uv, taken from tools.txt (hash-checked) into a throwaway venv
unless `uv` is already on PATH.  LOCK_INDEX_URL overrides the index (default: PyPI).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQ = ROOT / "requirements"
FINGERPRINT_PREFIX = "# pyproject-deps-sha256: "
REFRESH_COMMAND = "python3 scripts/lock.py"
PYTHON_VERSION = "3.11"
PLATFORM = "x86_64-manylinux_2_28"
TOOLS = ["uv", "pip-audit"]


def dependency_lists(pyproject: Path) -> dict[str, list[str]]:
    """The lists a lock is made from; any change to them makes the lock stale."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = data.get("project", {})
    return {
        "dependencies": sorted(project.get("dependencies", [])),
        "test": sorted(project.get("optional-dependencies", {}).get("test", [])),
        "build": sorted(data.get("build-system", {}).get("requires", [])),
        "tools": sorted(TOOLS),
    }


def fingerprint(pyproject: Path) -> str:
    canonical = json.dumps(dependency_lists(pyproject), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def recorded_fingerprint(lock: Path) -> str | None:
    if not lock.exists():
        return None
    for line in lock.read_text(encoding="utf-8").splitlines()[:20]:
        if line.startswith(FINGERPRINT_PREFIX):
            return line[len(FINGERPRINT_PREFIX):].strip()
    return None


def check() -> int:
    want = fingerprint(ROOT / "pyproject.toml")
    locks = (REQ / "runtime.txt", REQ / "test.txt", REQ / "tools.txt")
    stale = [p.name for p in locks if recorded_fingerprint(p) != want]
    if stale:
        print(
            f"lock files out of date: {', '.join('requirements/' + s for s in stale)} do not match the dependency "
            f"lists in pyproject.toml (build-system.requires, dependencies, the test extra).\n"
            f"Run `{REFRESH_COMMAND}` and commit requirements/.",
            file=sys.stderr,
        )
        return 1
    print("lock files match pyproject.toml's dependency lists")
    return 0


def find_uv(workdir: Path) -> str:
    on_path = shutil.which("uv")
    if on_path:
        return on_path
    venv = workdir / "uv-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    tools = REQ / "tools.txt"
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if tools.exists():  # the pinned uv, hash-checked; its requirements are in tools.txt as well
        subprocess.run([*pip, "--require-hashes", "--no-deps", "-r", str(tools)], check=True)
    else:  # the very first lock: nothing pinned yet
        subprocess.run([*pip, "uv"], check=True)
    return str(venv / "bin" / "uv")


def compile_lock(uv: str, out: Path, inputs: list[str], extra: list[str], fp: str) -> None:
    index = os.environ.get("LOCK_INDEX_URL", "https://pypi.org/simple")
    cmd = [
        uv, "pip", "compile", "--quiet", "--no-config", "--default-index", index,
        "--generate-hashes", "--python-version", PYTHON_VERSION, "--python-platform", PLATFORM,
        "--custom-compile-command", REFRESH_COMMAND, "--output-file", str(out.relative_to(ROOT)),
        *extra, *inputs,
    ]
    # uv must not see this machine's pip settings either (extra indexes, local wheels).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)
    text = out.read_text(encoding="utf-8")
    out.write_text(f"{FINGERPRINT_PREFIX}{fp}\n{text}", encoding="utf-8")


def refresh() -> int:
    pyproject = ROOT / "pyproject.toml"
    lists = dependency_lists(pyproject)
    fp = fingerprint(pyproject)
    REQ.mkdir(exist_ok=True)
    note = f"# Written by {REFRESH_COMMAND} from pyproject.toml; do not edit.\n"
    (REQ / "build.in").write_text(note + "".join(f"{r}\n" for r in lists["build"]), encoding="utf-8")
    (REQ / "tools.in").write_text(note + "".join(f"{r}\n" for r in lists["tools"]), encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        uv = find_uv(Path(tmp))
        compile_lock(uv, REQ / "runtime.txt", ["pyproject.toml", "requirements/build.in"], [], fp)
        compile_lock(
            uv, REQ / "test.txt", ["pyproject.toml", "requirements/build.in"],
            ["--extra", "test", "--constraint", "requirements/runtime.txt"], fp,
        )
        compile_lock(uv, REQ / "tools.txt", ["requirements/tools.in"], [], fp)
    print(f"wrote requirements/runtime.txt, test.txt, tools.txt (fingerprint {fp[:12]})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check that the locks match pyproject.toml")
    args = parser.parse_args()
    return check() if args.check else refresh()


if __name__ == "__main__":
    sys.exit(main())
