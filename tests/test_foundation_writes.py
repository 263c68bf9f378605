"""The one write path: every insert, update and delete leaves an audit row with before/after in the
same transaction; a stale version is refused; history layers keep their old versions; the audit log
refuses UPDATE and DELETE at database level."""

from __future__ import annotations

import pytest
import shapely
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gis.access import ANONYMOUS, SYSTEM, Caller
from gis.errors import Forbidden, NotWritableHere, StaleVersion, Unauthorized
from gis.writes import delete_feature, insert_feature, update_feature
from layers import REGISTRY

SQUARE = shapely.MultiPolygon([shapely.box(618000, 2710000, 618050, 2710040)])


def _audit(conn, layer_id: str, feature_id) -> list:
    return conn.execute(text("SELECT action, before, after, actor FROM audit_log WHERE layer = :l AND feature_id = :f "
                             "ORDER BY id"), {"l": layer_id, "f": str(feature_id)}).all()


def test_every_write_is_audited_with_before_and_after(conn) -> None:
    layer = REGISTRY.get("emergency_shelters")
    row = insert_feature(conn, layer, SYSTEM, {"code": "W1", "name": "测试避难场所", "grade": "区级",
                                               "shelter_class": "紧急", "capacity_persons": 100}, SQUARE)
    fid = row["id"]
    updated = update_feature(conn, layer, SYSTEM, fid, {"capacity_persons": 120}, None, expected_version=1)
    assert updated["version"] == 2 and updated["capacity_persons"] == 120
    delete_feature(conn, layer, SYSTEM, fid, expected_version=2)
    trail = _audit(conn, "emergency_shelters", fid)
    assert [t.action for t in trail] == ["insert", "update", "delete"]
    assert trail[0].before is None and trail[0].after["capacity_persons"] == 100
    assert trail[1].before["capacity_persons"] == 100 and trail[1].after["capacity_persons"] == 120
    assert trail[2].before["version"] == 2 and trail[2].after is None
    assert all(t.actor.startswith("system") for t in trail)
    assert conn.execute(text("SELECT count(*) FROM emergency_shelters WHERE id = :i"), {"i": fid}).scalar() == 0


def test_stale_version_refused_and_nothing_written(conn) -> None:
    layer = REGISTRY.get("emergency_shelters")
    fid = conn.execute(text("SELECT id FROM emergency_shelters ORDER BY id LIMIT 1")).scalar()
    update_feature(conn, layer, SYSTEM, fid, {"name": "第一次编辑"}, None, expected_version=1)
    before = conn.execute(text("SELECT count(*) FROM audit_log")).scalar()
    with pytest.raises(StaleVersion) as caught:
        update_feature(conn, layer, SYSTEM, fid, {"name": "基于旧版本的编辑"}, None, expected_version=1)
    assert caught.value.status == 412 and "version 2" in caught.value.detail
    with pytest.raises(StaleVersion):
        delete_feature(conn, layer, SYSTEM, fid, expected_version=1)
    assert conn.execute(text("SELECT name, version FROM emergency_shelters WHERE id = :i"), {"i": fid}).one() == \
        ("第一次编辑", 2)
    assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == before


def test_history_layer_keeps_old_versions(conn) -> None:
    layer = REGISTRY.get("cadastre_parcels")
    old = conn.execute(text("SELECT id, parcel_code, right_holder FROM cadastre_parcels "
                            "WHERE valid_to IS NULL AND recorded_to IS NULL ORDER BY id LIMIT 1")).one()
    # parcels are a module-only layer: the generic path refuses even the system user…
    with pytest.raises(NotWritableHere, match="/land/registrations"):
        update_feature(conn, layer, SYSTEM, old.id, {"right_holder": "x"}, None, expected_version=1)
    # …and the write path's history keeping is what the module builds on
    new = update_feature(conn, layer, SYSTEM, old.id, {"right_holder": "厦门新权利人有限公司"}, None,
                         expected_version=1, through_module=True)
    assert new["id"] != old.id and new["version"] == 2
    versions = conn.execute(text("SELECT right_holder, valid_to IS NULL AS open_valid, recorded_to IS NULL AS open_rec "
                                 "FROM cadastre_parcels WHERE parcel_code = :c ORDER BY id"),
                            {"c": old.parcel_code}).all()
    current = [v for v in versions if v.open_valid and v.open_rec]
    assert [v.right_holder for v in current] == ["厦门新权利人有限公司"]
    assert old.right_holder in {v.right_holder for v in versions if not (v.open_valid and v.open_rec)}
    assert [t.action for t in _audit(conn, "cadastre_parcels", old.id)] == ["update"]


def test_permission_checked_before_writing(conn) -> None:
    layer = REGISTRY.get("emergency_shelters")
    fid = conn.execute(text("SELECT id FROM emergency_shelters ORDER BY id LIMIT 1")).scalar()
    with pytest.raises(Unauthorized):
        update_feature(conn, layer, ANONYMOUS, fid, {"name": "x"}, None, expected_version=1)
    reader = Caller(name="读者", department="规划局", read=frozenset({"emergency"}), key_id=1)
    with pytest.raises(Forbidden):
        delete_feature(conn, layer, reader, fid, expected_version=1)
    assert _audit(conn, "emergency_shelters", fid) == []


def test_audit_log_is_append_only(demo_city, owner_engine) -> None:
    # even the owner role (which may alter the table) meets the trigger; the app role may not even try
    # (tests/test_ops_roles.py)
    for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with owner_engine.connect() as conn:
            with pytest.raises(DBAPIError, match="append-only"):
                conn.execute(text(statement))
            conn.rollback()
