"""``closedloop roi`` end to end: a store filled by the real pipeline from the sandbox, then the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import func, select
from sqlmodel import Session, col
from typer.testing import CliRunner

from closedloop.cli.application import app as closedloop_app
from closedloop.config.models import Config
from closedloop.mapping.channels import ChannelMapper
from closedloop.mapping.utm import RawTouch
from closedloop.sandbox.company import Company
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.launch import start_sandbox
from closedloop.store.engine import open_store
from closedloop.store.models import Contact, Conversion, Spend
from closedloop.sync.factory import build_connectors
from closedloop.sync.pipeline import run_once

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
TOKEN_ENV = {"ROI_TEST_TOKEN": "not-used-by-roi"}
FILE_DAY = date(2026, 11, 2)


@dataclass
class World:
    company: Company
    config: Config
    store_url: str
    folder: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("roi")
    store_url = f"sqlite:///{folder / 'store.db'}"
    company = generate_company(contacts=250, seed=3, now=NOW, days=60)
    with start_sandbox(company, now=NOW) as sandbox:
        config = sandbox.config(store_url=store_url)
        connectors = build_connectors(config)
        report = run_once(
            engine=open_store(store_url), config=config, sources=connectors.sources,
            writer=connectors.writer, log=connectors.log, now=NOW,
        )
    assert report.status == "ok", report.errors
    yield World(company, config, store_url, folder)


@pytest.fixture
def app() -> typer.Typer:
    return closedloop_app  # the real app: errors reach its exit-code table


def write_config(world: World, name: str, *, spend_files: list[Path], currency: str | None = None,
                 models: str = "[first_touch, last_touch, linear, u_shaped]") -> Path:
    lines = [
        "version: 1",
        f"store:\n  url: {world.store_url}",
        "hubspot:\n  base_url: http://127.0.0.1:9\n  access_token: ${ROI_TEST_TOKEN}",
        "attribution:",
        f"  models: {models}",
        f"  spend_files: [{', '.join(str(p) for p in spend_files)}]",
    ]
    if currency:
        lines.append(f"  currency: {currency}")
    path = world.folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def spend_csv(world: World, rows: str, name: str = "spend.csv") -> Path:
    path = world.folder / name
    path.write_text("date,channel,campaign,cost\n" + rows, encoding="utf-8")
    return path


def run(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["roi", *args], env={**TOKEN_ENV, "COLUMNS": "240"})
    return result.exit_code, result.stdout, result.stderr


def run_json(app: typer.Typer, *args: str) -> dict[str, Any]:
    code, out, err = run(app, *args, "--json")
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def ga4_cost_by_channel_day(world: World) -> dict[tuple[date, str], float]:
    mapper = ChannelMapper.from_config(world.config.mapping)
    out: dict[tuple[date, str], float] = {}
    for item in world.company.spend:
        channel = mapper.assign(RawTouch(source=item.source, medium=item.medium, campaign=item.campaign)).channel
        out[(item.day, channel)] = out.get((item.day, channel), 0.0) + item.cost
    return out


def test_totals_hold_together_with_the_store_and_the_sandbox(app: typer.Typer, world: World) -> None:
    ga4 = ga4_cost_by_channel_day(world)
    paid_search = next(ch for (_, ch) in ga4 if ch == "Paid Search")
    overridden = ga4.get((FILE_DAY, paid_search), 0.0)
    assert overridden > 0
    csv_path = spend_csv(world, f"{FILE_DAY},{paid_search},,500\n2026-11-03,Events,expo,1200\n")
    data = run_json(app, "-c", str(write_config(world, "c1.yaml", spend_files=[csv_path])))
    total = data["total"]
    assert total["cost"] == pytest.approx(sum(ga4.values()) - overridden + 500 + 1200, rel=1e-9)
    assert data["ga4_cost_overridden_by_files"] == pytest.approx(overridden, rel=1e-9)
    engine = open_store(world.store_url)
    with Session(engine) as session:
        won = session.execute(
            select(func.sum(col(Conversion.value))).where(col(Conversion.kind) == "deal_won")
        ).scalar_one()
        contacts = session.execute(select(func.count()).select_from(Contact)).scalar_one()
    assert total["revenue"] == pytest.approx(won, rel=1e-6)
    assert total["leads"] == pytest.approx(contacts, abs=1e-6)
    assert data["model"] == "u_shaped" and data["currency"] == world.company.currency_code
    assert "Events" in data["spend_without_credit"]
    # ROAS and ROI totals compare paid revenue with paid cost; organic revenue has no cost ratio.
    paid_rows = [r for r in data["rows"] if r["cost"] is not None]
    paid = data["paid_total"]
    assert paid["revenue"] == pytest.approx(sum(r["revenue"] for r in paid_rows))
    assert paid["cost"] == pytest.approx(total["cost"])
    assert paid["roas"] == pytest.approx(paid["revenue"] / paid["cost"])
    assert paid["revenue"] < total["revenue"] and total["roas"] is None and total["roi"] is None
    assert data["unpaid_revenue"] == pytest.approx(total["revenue"] - paid["revenue"])
    for row in data["rows"]:
        if row["cost"] is None:
            assert row["cac"] is None and row["roi"] is None and row["cost_per_lead"] is None
        elif row["revenue"] and row["cost"]:
            assert row["roi"] == pytest.approx((row["revenue"] - row["cost"]) / row["cost"])


def test_reloading_is_idempotent_and_follows_edits(app: typer.Typer, world: World) -> None:
    csv_path = spend_csv(world, "2026-11-01,Email,,10\n2026-11-02,Email,,20\n", name="edit.csv")
    config = write_config(world, "c2.yaml", spend_files=[csv_path])
    first = run_json(app, "-c", str(config))
    assert run_json(app, "-c", str(config)) == first
    engine = open_store(world.store_url)

    def file_rows() -> list[tuple[date, float]]:
        with Session(engine) as session:
            rows = session.execute(
                select(col(Spend.day), col(Spend.cost)).where(col(Spend.origin) == "file:edit.csv")
            ).all()
        return sorted((day, cost) for day, cost in rows)

    assert file_rows() == [(date(2026, 11, 1), 10.0), (date(2026, 11, 2), 20.0)]
    spend_csv(world, "2026-11-02,Email,,25\n", name="edit.csv")
    edited = run_json(app, "-c", str(config))
    assert file_rows() == [(date(2026, 11, 2), 25.0)]
    assert edited["total"]["cost"] == pytest.approx(first["total"]["cost"] - 30 + 25)


def test_campaign_rows_add_up_to_channel_rows(app: typer.Typer, world: World) -> None:
    config = write_config(world, "c3.yaml", spend_files=[])
    by_channel = {r["channel"]: r for r in run_json(app, "-c", str(config))["rows"]}
    by_campaign = run_json(app, "-c", str(config), "--by", "campaign")["rows"]
    assert all("campaign" in r for r in by_campaign)
    for channel, row in by_channel.items():
        parts = [r for r in by_campaign if r["channel"] == channel]
        assert sum(p["revenue"] for p in parts) == pytest.approx(row["revenue"])
        assert sum(p["cost"] or 0.0 for p in parts) == pytest.approx(row["cost"] or 0.0)


def test_since_cuts_spend_and_conversions(app: typer.Typer, world: World) -> None:
    config = write_config(world, "c4.yaml", spend_files=[])
    since = date(2026, 11, 1)
    data = run_json(app, "-c", str(config), "--since", since.isoformat())
    ga4 = ga4_cost_by_channel_day(world)
    assert data["total"]["cost"] == pytest.approx(sum(c for (d, _), c in ga4.items() if d >= since))
    everything = run_json(app, "-c", str(config))
    assert data["total"]["leads"] < everything["total"]["leads"]


def test_the_table_shows_dashes_not_infinity(app: typer.Typer, world: World) -> None:
    code, out, err = run(app, "-c", str(write_config(world, "c5.yaml", spend_files=[])), "--model", "linear")
    assert code == 0, err
    assert "ROI by channel under linear" in out and "Paid total" in out and "All channels" in out and "—" in out
    assert "inf" not in out.lower()


def test_campaign_names_show_whole_at_80_columns(app: typer.Typer, world: World) -> None:
    config = write_config(world, "c9.yaml", spend_files=[])
    result = CliRunner().invoke(app, ["roi", "-c", str(config), "--by", "campaign"],
                                env={**TOKEN_ENV, "COLUMNS": "80"})
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in result.stdout
    campaigns = {item.campaign for item in world.company.spend if item.campaign}
    shown = [c for c in campaigns if any(c in line for line in lines)]
    assert shown, campaigns  # short names stand whole on a line; long ones fold, never cut


def test_until_cuts_spend_and_conversions(app: typer.Typer, world: World) -> None:
    config = write_config(world, "c10.yaml", spend_files=[])
    until = date(2026, 10, 31)
    data = run_json(app, "-c", str(config), "--until", until.isoformat())
    ga4 = ga4_cost_by_channel_day(world)
    assert data["total"]["cost"] == pytest.approx(sum(c for (d, _), c in ga4.items() if d <= until))
    assert data["until"] == "2026-10-31"
    code, _, err = run(app, "-c", str(config), "--since", "2026-11-02", "--until", "2026-11-01")
    assert code == 2 and "before --since" in err


def test_bad_spend_files_list_every_problem_and_load_nothing(app: typer.Typer, world: World) -> None:
    bad = spend_csv(world, "2026-11-01,Email,,ten\n2026-13-01,Email,,1\n", name="bad.csv")
    code, _, err = run(app, "-c", str(write_config(world, "c6.yaml", spend_files=[bad])))
    assert code == 3, "a spend file the config names is part of the config"
    assert "bad.csv:2" in err and "bad.csv:3" in err and "cost (column 4)" in err
    with Session(open_store(world.store_url)) as session:
        stored = select(func.count()).select_from(Spend).where(col(Spend.origin) == "file:bad.csv")
        assert session.execute(stored).scalar_one() == 0


def test_mixed_currencies_are_refused(app: typer.Typer, world: World) -> None:
    other = "EUR" if world.company.currency_code != "EUR" else "USD"
    csv_path = spend_csv(world, "2026-11-01,Email,,10\n", name="eur.csv")
    code, _, err = run(app, "-c", str(write_config(world, "c7.yaml", spend_files=[csv_path], currency=other)))
    assert code == 2 and "several currencies" in err


def test_a_model_without_credits_says_so(app: typer.Typer, world: World) -> None:
    models = "[first_touch, last_touch, linear, u_shaped, inverse_j]"
    config = write_config(world, "c8.yaml", spend_files=[], models=models)
    code, _, err = run(app, "-c", str(config), "--model", "inverse_j")
    assert code == 0
    assert "No credits under model" in err and "u_shaped" in err
    code, _, err = run(app, "-c", str(config), "--model", "nope")
    assert code == 2 and "unknown model" in err
