"""Maintenance: repair records, age and repair-frequency replacement warnings."""

from __future__ import annotations

import datetime as dt

import pytest
from shapely.geometry import LineString, Point
from sqlalchemy import text
from test_pipeline_isolation_api import pipeline_cleanup  # noqa: F401  (drops this module's networks)

from gis.access import SYSTEM
from gis.crs import transformer
from gis.errors import InvalidParameter
from gis.settings import get_settings
from layers.pipeline import repository, service

X0, Y0 = transformer("EPSG:4326", get_settings().spatial.storage_crs).transform(118.48, 24.79)
TODAY = dt.date(2026, 11, 22)


@pytest.fixture(scope="module")
def net(engine):
    specs = [("old-grey", "灰口铸铁", 1970), ("steel", "钢", 1994), ("ductile", "球墨铸铁", 1980),
             ("pe", "PE", 2020), ("often", "PE", 2015), ("mystery", "竹子", 1950)]
    with engine.begin() as conn:
        nid = repository.create_network(conn, utility="water", name="maintenance")
        nodes = [{"code": f"n{i}", "kind": "junction", "geom": Point(X0 + 100 * i, Y0)} for i in range(len(specs) + 1)]
        ids = repository.insert_nodes(conn, nid, nodes)
        pids = repository.insert_pipes(conn, nid, [
            {"code": c, "from": f"n{i}", "to": f"n{i + 1}", "material": m, "install_year": y,
             "geom": LineString([(X0 + 100 * i, Y0), (X0 + 100 * (i + 1), Y0)])}
            for i, (c, m, y) in enumerate(specs)], ids)
        for days in (30, 200, 400, 800):  # four repairs within five years
            service.add_repair(conn, pids["often"], caller=SYSTEM, repaired_on=TODAY - dt.timedelta(days=days),
                                   kind="leak", crew="一班", cost_yuan=1200.5)
        service.add_repair(conn, pids["pe"], caller=SYSTEM, repaired_on=dt.date(2021, 1, 1), kind="burst")
    return {"network": nid, **pids}


def test_report_flags_age_and_frequency(engine, net):
    with engine.connect() as conn:
        report = service.maintenance_report(conn, net["network"], caller=SYSTEM, settings=get_settings(), today=TODAY)
    by_code = {w["code"]: w for w in report["warnings"]}
    assert set(by_code) == {"old-grey", "steel", "ductile", "often"}
    assert by_code["old-grey"]["reasons"][0]["severity"] == "overdue" and by_code["old-grey"]["reasons"][0]["age_years"] == 56
    assert by_code["steel"]["reasons"][0]["service_life_years"] == 30
    assert by_code["ductile"]["reasons"][0]["severity"] == "due_soon"  # 46 of 50 years
    (freq,) = by_code["often"]["reasons"]
    assert freq["rule"] == "repair_frequency" and freq["repairs"] == 4 and freq["max_repairs"] == 3
    assert report["replace_now"] == 3 and report["replace_soon"] == 1
    assert report["length_to_replace_m"] == pytest.approx(300.0)
    assert report["pipes_without_service_life"] == 1  # 竹子 has no rule row
    assert report["warnings"][-1]["code"] == "ductile"  # due-soon after overdue


def test_repairs_are_recorded_and_audited(engine, net):
    with engine.connect() as conn:
        records = service.pipe_repairs(conn, net["often"], caller=SYSTEM)
        audited = conn.execute(text("SELECT count(*) FROM audit_log WHERE layer = 'pipeline_repairs'")).scalar()
    assert [r["repaired_on"] for r in records] == sorted((r["repaired_on"] for r in records), reverse=True)
    assert len(records) == 4 and records[0]["cost_yuan"] == 1200.5
    assert audited >= 5
    with engine.begin() as conn, pytest.raises(InvalidParameter):
        service.add_repair(conn, net["pe"], caller=SYSTEM, repaired_on=TODAY, kind="magic")


def test_criticality_and_cli(engine):
    """Criticality equals isolating each pipe one by one; the CLI prints it with a progress bar."""
    from test_pipeline_isolation_api import build_network
    from typer.testing import CliRunner

    from api.cli import app
    from layers.pipeline import service
    from layers.pipeline.isolation import isolate

    with engine.begin() as conn:
        ids = build_network(conn, "criticality T")
    with engine.connect() as conn:
        seen: list[tuple[int, int]] = []
        result = service.criticality(conn, ids["network"], caller=SYSTEM, top=100,
                                     progress=lambda d, t: seen.append((d, t)))
        graph = service.load_graph(conn, ids["network"])
    expected = {int(graph.pipe_ids[p]): len(iso.customers_inside) + len(iso.customers_collateral)
                for p in range(len(graph.pipe_ids)) for iso in [isolate(graph, p)]}
    assert {t["pipe_id"]: t["customers_lost"] for t in result["top"]} == expected
    assert seen[-1][0] == seen[-1][1] == result["segments"]
    out = CliRunner().invoke(app, ["pipeline", "criticality", str(ids["network"]), "--top", "3"])
    assert out.exit_code == 0, out.output
    assert '"max_customers_lost": ' + str(max(expected.values())) in out.output
