#!/usr/bin/env python3
"""CI's vulnerability audit of the locked versions: pip-audit over requirements/*.txt.

    python3 scripts/audit.py --pip-audit /path/to/pip-audit

It audits exactly the pinned, hashed versions in the lock files (not whatever a venv happens to
hold) against PyPI's advisory data (the vulnerabilities PyPI's JSON API reports, from OSV).

Outcomes, each printed on one line that says which it was:
  * the advisory data cannot be reached or pip-audit fails: "vulnerability audit skipped: <reason>",
    exit 0.  An unreachable service never fails CI, and never passes for "no vulnerabilities".
  * some packages could not be checked: they are named, the rest is judged as below.
  * a known vulnerability with a fixed release: exit 1 (CI fails).  Fix by refreshing the lock
    (`python3 scripts/lock.py`, after raising the floor in pyproject.toml if needed), or, when
    the vulnerable code is not reachable from closedloop, add its id and the reason to
    requirements/audit-ignore.txt.
  * a known vulnerability without any fixed release: printed as a warning, exit 0, since no
    lock refresh can remove it; it is listed on every run until a fix appears.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ["requirements/runtime.txt", "requirements/test.txt", "requirements/tools.txt"]
IGNORE_FILE = ROOT / "requirements" / "audit-ignore.txt"


def ignored_ids(path: Path) -> list[str]:
    """`ID  # reason` per line; a line without a reason is refused, so each exception is explained."""
    if not path.exists():
        return []
    ids: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        vuln_id, _, reason = line.partition("#")
        if not reason.strip():
            raise SystemExit(f"{path.name}:{number}: give the reason after '#' for ignoring {vuln_id.strip()}")
        ids.append(vuln_id.strip())
    return ids


def run_pip_audit(pip_audit: str, out: Path, ignore: list[str], timeout: int) -> tuple[dict[str, Any] | None, str]:
    cmd = [
        pip_audit, "--disable-pip", "--require-hashes", "--vulnerability-service", "pypi",
        "--progress-spinner", "off", "--timeout", str(timeout), "--format", "json", "--output", str(out),
    ]
    for lock in LOCKS:
        cmd += ["--requirement", lock]
    for vuln_id in ignore:
        cmd += ["--ignore-vuln", vuln_id]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout * 40)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"pip-audit did not run ({exc})"
    try:
        return json.loads(out.read_text(encoding="utf-8")), ""
    except (OSError, ValueError):
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        return None, lines[-1][:300] if lines else f"pip-audit exited {proc.returncode} without a report"


def judge(report: dict[str, Any]) -> int:
    deps = report.get("dependencies", [])
    unchecked = [f"{d['name']}: {d['skip_reason']}" for d in deps if d.get("skip_reason")]
    checked = len(deps) - len(unchecked)
    fixable: list[str] = []
    unfixable: list[str] = []
    for dep in deps:
        for vuln in dep.get("vulns", []):
            fixes = vuln.get("fix_versions") or []
            fixed_in = f" (fixed in {', '.join(fixes)})" if fixes else ""
            line = f"{dep['name']}=={dep['version']}: {vuln['id']}{fixed_in}"
            (fixable if fixes else unfixable).append(line)
    if deps and not checked:
        print(f"vulnerability audit skipped: none of the {len(deps)} locked versions could be checked "
              f"(first: {unchecked[0]})")
        return 0
    if unchecked:
        shown = "; ".join(unchecked[:5]) + (f"; and {len(unchecked) - 5} more" if len(unchecked) > 5 else "")
        print(f"vulnerability audit incomplete: {len(unchecked)} of {len(deps)} locked versions not checked: {shown}")
    for line in unfixable:
        print(f"WARNING known vulnerability without a fixed release: {line}")
    for line in fixable:
        print(f"FAIL known vulnerability with a fix: {line}")
    if fixable:
        print("Refresh the lock (python3 scripts/lock.py) or, if closedloop cannot reach the vulnerable code, "
              "add the id with a reason to requirements/audit-ignore.txt.")
        return 1
    found = len(unfixable)
    print(f"vulnerability audit: {checked} of {len(deps)} locked package versions checked against PyPI's "
          "advisory data; "
          f"{found} known vulnerabilit{'y' if found == 1 else 'ies'} without a fix, none with a fix")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pip-audit", default="pip-audit", help="the pip-audit executable")
    parser.add_argument("--timeout", type=int, default=15, help="socket timeout per request, seconds")
    args = parser.parse_args()
    ignore = ignored_ids(IGNORE_FILE)
    with tempfile.TemporaryDirectory() as tmp:
        report, reason = run_pip_audit(args.pip_audit, Path(tmp) / "audit.json", ignore, args.timeout)
    if report is None:
        print(f"vulnerability audit skipped: {reason}")
        return 0
    return judge(report)


if __name__ == "__main__":
    sys.exit(main())
