"""``closedloop serve``: run the schedule until SIGTERM, with health endpoints for the container.

SIGTERM and SIGINT stop the scheduling; the run in flight notices between batches, stores what it
has, records itself as interrupted and frees its lease; then the process exits 0.  The body is
``closedloop.sync.serve``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from closedloop.cli.console import load

app = typer.Typer()


def register(parent: typer.Typer) -> None:
    parent.command("serve")(serve)


@app.command("serve")
def serve(
    config: Annotated[Path, typer.Option("--config", "-c", help="Path of the YAML config.")] = Path("closedloop.yaml"),
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Run every enabled job once now, then exit (for an external cron such as a Kubernetes CronJob).",
        ),
    ] = False,
) -> None:
    """Run the schedule from the config until SIGTERM; serves /healthz, /readyz and /metrics."""
    from closedloop.sync.serve import configure_logging, open_store_once, pipeline_jobs, schedule_of, serve_schedule

    log = configure_logging()
    cfg = load(config)
    engine = open_store_once(cfg.store.url)
    code = serve_schedule(schedule_of(cfg), engine, job_factory=pipeline_jobs(cfg, engine), once=once, log=log)
    raise typer.Exit(code)
