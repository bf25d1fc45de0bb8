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
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            envvar="CLOSEDLOOP_HOST",
            help="Address /healthz, /readyz and /metrics listen on; overrides schedule.health_host "
            "(default 127.0.0.1: this machine only; a container sets 0.0.0.0). Env: CLOSEDLOOP_HOST.",
            show_envvar=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            envvar="CLOSEDLOOP_PORT",
            min=0,
            max=65_535,
            help="Port of the health endpoints; overrides schedule.health_port (default 8080; 0 picks a free "
            "one). Env: CLOSEDLOOP_PORT.",
            show_envvar=False,
        ),
    ] = None,
) -> None:
    """Run the schedule from the config until SIGTERM; serves /healthz, /readyz and /metrics.

    Every job runs once at start (schedule.run_at_start), then on its ticks. /readyz is ready while
    the store is reachable and migrated and every secret file is readable; /metrics asks for a
    bearer token when schedule.metrics_token (or metrics_token_file) is set.
    """
    from closedloop.config.loader import named_files, read_secret
    from closedloop.sync.serve import configure_logging, open_store_once, pipeline_jobs, schedule_of, serve_schedule

    log = configure_logging()
    cfg = load(config)
    schedule = schedule_of(cfg)
    overrides = {k: v for k, v in (("health_host", host), ("health_port", port)) if v is not None}
    schedule = schedule.model_copy(update=overrides)
    token = None
    if schedule.metrics_token is not None or schedule.metrics_token_file is not None:
        token = read_secret(schedule.metrics_token, schedule.metrics_token_file, what="schedule.metrics_token")
    engine = open_store_once(cfg.store.url)
    code = serve_schedule(
        schedule,
        engine,
        job_factory=pipeline_jobs(cfg, engine),
        once=once,
        log=log,
        secret_files=named_files(cfg),
        metrics_token=token,
    )
    raise typer.Exit(code)
