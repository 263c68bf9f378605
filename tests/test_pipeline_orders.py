"""Repair orders: workflow, audit, conflicts on shared valves, notice text, printable page."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from test_pipeline_isolation_api import build_network, pipeline_cleanup  # noqa: F401

from gis.access import SYSTEM, Caller
from gis.errors import Conflict, Forbidden, InvalidParameter, StaleVersion
from gis.keys import create_key
from gis.settings import get_settings
from layers.pipeline import service

TZ = dt.timezone(dt.timedelta(hours=8))
INCIDENT = dt.datetime(2026, 11, 22, 9, 30, tzinfo=TZ)
RESTORE = dt.datetime(2026, 11, 22, 18, 0, tzinfo=TZ)


@pytest.fixture(scope="module")
def net(engine):
    with engine.begin() as conn:
        return build_network(conn, "orders T")


def test_workflow_audit_conflicts_and_notice(engine, net):
    with engine.begin() as conn:
        iso = service.isolate_burst(conn, net["network"], caller=SYSTEM, settings=get_settings(), pipe_id=net["p3"])
        order = service.create_repair_order(conn, iso["id"], caller=SYSTEM, incident_at=INCIDENT, place="湖滨南路",
                                    planned_restore_at=RESTORE)
    assert order["code"] == f"QX20261122-{order['id']:05d}" and order["status"] == "planned"
    assert order["valve_ids"] == [net["V1"]] and order["conflicts"] == []
    assert order["notice_text"].startswith("停水通知") and "2026年11月22日 18:00" in order["notice_text"]
    assert "湖滨南路" in order["notice_text"] and "3 个用户户号、共 3 户" in order["notice_text"]
    assert any("V1" in step["task"] for step in order["checklist"])
    with engine.begin() as conn:  # a second burst on the same ring: the shared valve is reported
        again = service.isolate_burst(conn, net["network"], caller=SYSTEM, settings=get_settings(), pipe_id=net["p4"])
        second = service.create_repair_order(conn, again["id"], caller=SYSTEM, planned_restore_at=RESTORE,
                                     incident_at=INCIDENT)
    assert second["conflicts"] == [{"order_id": order["id"], "code": order["code"], "status": "planned",
                                    "shared_valves": [net["V1"]]}]
    with engine.begin() as conn:
        for status in ("valves_closed", "repaired", "restored"):
            current = service.change_order_status(conn, order["id"], status, caller=SYSTEM, note=f"→ {status}")
        assert current["status"] == "restored" and current["version"] == 4
        assert [e["to_status"] for e in current["events"]] == ["planned", "valves_closed", "repaired", "restored"]
        actions = conn.execute(text("SELECT action, before->>'status', after->>'status' FROM audit_log WHERE "
                                    "layer = 'pipeline_repair_orders' AND feature_id = :f ORDER BY id"),
                               {"f": str(order["id"])}).all()
        assert [tuple(a) for a in actions] == [("insert", None, "planned"), ("workflow", "planned", "valves_closed"),
                                              ("workflow", "valves_closed", "repaired"),
                                              ("workflow", "repaired", "restored")]
        # closed orders no longer conflict
        assert service.open_orders_on_valves(conn, [net["V1"]], caller=SYSTEM, exclude=second["id"]) == []
    with engine.begin() as conn, pytest.raises(Conflict):
        service.change_order_status(conn, order["id"], "planned", caller=SYSTEM)
    with engine.begin() as conn, pytest.raises(StaleVersion):
        service.change_order_status(conn, second["id"], "cancelled", caller=SYSTEM, expected_version=7)
    with engine.begin() as conn, pytest.raises(InvalidParameter):
        service.create_repair_order(conn, iso["id"], caller=SYSTEM, incident_at=RESTORE, planned_restore_at=INCIDENT)
    reader = Caller(name="r", department="x", read=frozenset({"pipeline"}), key_id=5)
    with engine.begin() as conn, pytest.raises(Forbidden):
        service.change_order_status(conn, second["id"], "cancelled", caller=reader)


def test_http_order_and_print_page(engine, net):
    from api.app import create_app

    with engine.begin() as conn:
        key = create_key(conn, department="自来水公司抢修队", read=["pipeline"], write=["pipeline"]).secret
    headers = {"X-API-Key": key}
    with TestClient(create_app(get_settings())) as client:
        iso = client.post("/pipeline/isolations", json={"network_id": net["network"], "pipe_id": net["p4"]},
                          headers=headers).json()
        r = client.post("/pipeline/repair-orders", headers=headers, json={
            "isolation_id": iso["id"], "planned_restore_at": RESTORE.isoformat(), "place": "思明区",
            "incident_at": INCIDENT.isoformat()})
        assert r.status_code == 200, r.text
        order = r.json()
        bad = client.post(f"/pipeline/repair-orders/{order['id']}/status", headers=headers,
                          json={"status": "restored"})
        assert bad.status_code == 409 and "valves_closed" in bad.json()["detail"]
        ok = client.post(f"/pipeline/repair-orders/{order['id']}/status", headers=headers,
                         json={"status": "valves_closed", "version": 1})
        assert ok.status_code == 200 and ok.json()["version"] == 2
        page = client.get(f"/pipeline/repair-orders/{order['id']}/print", headers=headers)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        body = page.text
        assert "<svg" in body and "http://" not in body.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "https://" not in body and "<script src" not in body
        assert order["code"] in body and "停水通知" in body and "V1" in body
        assert client.get(f"/pipeline/repair-orders/{order['id']}/print").status_code == 401
