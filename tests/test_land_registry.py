"""Parcel registrations: every kind, split-then-merge chains, lineage, as-of, diff, code numbering,
and refused registrations leaving nothing behind. Hand-made parcels on an empty spot of the city,
committed transaction by transaction (record time is transaction time)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import box

from gis.access import Caller
from gis.errors import Conflict, InvalidParameter, NotFound
from layers.cadastre import codes
from layers.cadastre import service as reg

CLERK = Caller(name="clerk", department="不动产登记中心", read=frozenset({"*"}), write=frozenset({"*"}),
               personal_data=True)
PUBLIC_READER = Caller(name="viewer", department="规划局", read=frozenset({"*"}), key_id=7)
T0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def day(n: int) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


@pytest.fixture(scope="module")
def spot(demo_city, empty_square_km):
    """A 1 km square of the city with no live parcel, and a fresh sub-district code for this run."""
    x, y = empty_square_km(("cadastre_parcels",), range(590000, 655000, 3000), range(2682000, 2755000, 3000))
    prefix = "350299" + f"{uuid.uuid4().int % 10**6:06d}"
    yield x, y, prefix
    remove_parcels(demo_city, [prefix, prefix[:6] + "9" + prefix[7:]])


def remove_parcels(engine, prefixes: list[str]) -> None:
    """Take this module's parcels out again so later test modules see the demo city as generated."""
    with engine.begin() as conn:
        for p in prefixes:
            conn.execute(sa.text("DELETE FROM cadastre_lineage WHERE left(parent_code, 12) = :p "
                                 "OR left(child_code, 12) = :p"), {"p": p})
            conn.execute(sa.text("DELETE FROM cadastre_lineage WHERE registration_id IN (SELECT id FROM "
                                 "cadastre_registrations WHERE left(parcel_codes[1], 12) = :p)"), {"p": p})
            conn.execute(sa.text("DELETE FROM cadastre_registrations WHERE left(parcel_codes[1], 12) = :p"), {"p": p})
            conn.execute(sa.text("DELETE FROM cadastre_parcels WHERE left(parcel_code, 12) = :p"), {"p": p})


def attrs(holder: str = "厦门市土地开发公司") -> dict:
    return {"right_holder": holder, "holder_kind": "organisation", "right_type": "国有建设用地使用权",
            "landuse_code": "0701", "district": "350203", "address": "测试路 1 号"}


def run(engine, fn, *args, **kwargs):
    with engine.begin() as conn:
        return fn(conn, CLERK, *args, **kwargs)


def counts(engine) -> tuple[int, int, int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM cadastre_parcels), (SELECT count(*) FROM cadastre_registrations),"
            " (SELECT count(*) FROM cadastre_lineage), (SELECT count(*) FROM audit_log)")).one())


def test_code_format_and_validation():
    code = "350203001002GB00042"
    parsed = codes.parse_parcel_code(code)
    assert (parsed.prefix, parsed.ownership, parsed.parcel_type, parsed.sequence) == ("350203001002", "G", "B", 42)
    assert codes.unit_code(code) == code + "W00000000"
    assert len(codes.unit_code(code, "F", 12, 3)) == 28
    for bad in ("350203001002GB0004", "350203001002XB00042", "350203001002GC00042", "350203001002GB00000"):
        with pytest.raises(InvalidParameter):
            codes.parse_parcel_code(bad)
    with pytest.raises(InvalidParameter):
        codes.unit_code(code, "W", 1, 0)


def test_registration_chain(demo_city, spot):
    x, y, prefix = spot
    eng = demo_city
    a = run(eng, reg.register_initial, sub_district=prefix, ownership="G", parcel_type="B", attributes=attrs(),
            geometry=box(x, y, x + 200, y + 100), effective_at=day(0))
    b = run(eng, reg.register_initial, sub_district=prefix, ownership="G", parcel_type="B", attributes=attrs(),
            geometry=box(x + 200, y, x + 300, y + 100), effective_at=day(0))
    code_a, code_b = a["created"][0], b["created"][0]
    assert code_a == f"{prefix}GB00001" and code_b == f"{prefix}GB00002"

    # change of attributes and transfer keep the code and add a version
    run(eng, reg.register_change, parcel_code=code_a, changes={"landuse_code": "0501"}, effective_at=day(10))
    run(eng, reg.register_transfer, parcel_code=code_a,
        holder={"right_holder": "张三丰", "holder_kind": "person", "holder_id_number": "350203199001011234"},
        effective_at=day(20))
    with eng.connect() as conn:
        tl = reg.parcel_timeline(conn, CLERK, code_a)
        masked = reg.parcel_timeline(conn, PUBLIC_READER, code_a)
    live = [v for v in tl["versions"] if v["valid_to"] is None and v["recorded_to"] is None]
    assert len(live) == 1 and live[0]["version"] == 3 and live[0]["right_holder"] == "张三丰"
    assert live[0]["landuse_code"] == "0501"
    assert [r["kind"] for r in tl["registrations"]] == ["initial", "change", "transfer"]
    masked_live = [v for v in masked["versions"] if v["valid_to"] is None and v["recorded_to"] is None][0]
    assert masked_live["right_holder"] == "张**" and masked_live["holder_id_number"] == "350***********1234"

    # split A into three, then merge two children with B, then split the merged parcel again
    split = run(eng, reg.register_split, parcel_code=code_a, effective_at=day(30), children=[
        {"geometry": box(x, y, x + 100, y + 100)},
        {"geometry": box(x + 100, y, x + 200, y + 50)},
        {"geometry": box(x + 100, y + 50, x + 200, y + 100)}])
    c1, c2, c3 = split["created"]
    assert [c1, c2, c3] == [f"{prefix}GB0000{n}" for n in (3, 4, 5)]
    # B must be held by the same holder before merging
    run(eng, reg.register_transfer, parcel_code=code_b, holder={"right_holder": "张三丰", "holder_kind": "person"},
        effective_at=day(35))
    merged = run(eng, reg.register_merge, parcel_codes=[c2, c3, code_b], effective_at=day(40))
    m = merged["created"][0]
    assert m == f"{prefix}GB00006"
    assert merged["parcels"][0]["plane_area"] == pytest.approx(100 * 100 + 100 * 100, abs=1e-6)
    again = run(eng, reg.register_split, parcel_code=m, effective_at=day(50), children=[
        {"geometry": box(x + 100, y, x + 300, y + 30)}, {"geometry": box(x + 100, y + 30, x + 300, y + 100)}])
    g1, g2 = again["created"]
    # boundary adjustment between c1 and g1: a 10 m strip moves from c1 to g1, codes kept
    adj = run(eng, reg.register_boundary_adjustment, effective_at=day(60), boundaries={
        c1: shapely.Polygon([(x, y + 30), (x + 100, y + 30), (x + 100, y + 100), (x, y + 100)]),
        g1: box(x, y, x + 300, y + 30)})
    assert sorted(adj["modified"]) == sorted([c1, g1]) and adj["created"] == []
    run(eng, reg.register_cancellation, parcel_code=g2, effective_at=day(70))

    with eng.connect() as conn:
        lin = reg.parcel_lineage(conn, CLERK, g1)
        assert lin["ancestors"] == sorted([m, c2, c3, code_b, code_a])
        assert reg.parcel_lineage(conn, CLERK, code_a)["descendants"] == sorted([c1, c2, c3, m, g1, g2])
        assert reg.parcel_lineage(conn, CLERK, c1)["descendants"] == []

        area = box(x - 10, y - 10, x + 310, y + 110)
        def live_at(t, recorded=None):
            return {p["parcel_code"]: p for p in reg.register_as_of(conn, CLERK, t, recorded, geometry=area)["parcels"]}
        assert set(live_at(day(5))) == {code_a, code_b}
        assert set(live_at(day(31))) == {c1, c2, c3, code_b}
        assert set(live_at(day(45))) == {c1, m}
        assert set(live_at(day(55))) == {c1, g1, g2}
        assert set(live_at(day(80))) == {c1, g1}
        assert live_at(day(15))[code_a]["landuse_code"] == "0501"
        assert live_at(day(5))[code_a]["landuse_code"] == "0701"
        # as the register stood before the split was recorded, A was still valid on day 31
        when_split_recorded = conn.execute(sa.text(
            "SELECT recorded_at FROM cadastre_registrations WHERE id = :i"), {"i": split["registration_id"]}).scalar()
        assert set(live_at(day(31), when_split_recorded - dt.timedelta(microseconds=1))) == {code_a, code_b}
        assert set(live_at(day(31), when_split_recorded)) == {c1, c2, c3, code_b}
        # total land is constant through split, merge and adjustment
        total = reg.register_as_of(conn, CLERK, day(65), geometry=area)["plane_area_m2"]
        assert total == pytest.approx(300 * 100, abs=1e-6)

        diff = reg.register_diff(conn, CLERK, day(5), day(65), geometry=area)
        assert diff["created"] == sorted([c1, g1, g2])
        assert diff["retired"] == sorted([code_a, code_b])
        diff2 = reg.register_diff(conn, CLERK, day(55), day(65), geometry=area)
        assert diff2["changed"] == sorted([c1, g1]) and diff2["created"] == [] and diff2["retired"] == []
        diff3 = reg.register_diff(conn, CLERK, day(65), day(80), geometry=area)
        assert diff3["retired"] == [g2] and diff3["changed"] == []

    # numbers are never reused: after retirements the next code continues after the maximum
    nxt = run(eng, reg.register_initial, sub_district=prefix, ownership="G", parcel_type="B", attributes=attrs(),
              geometry=box(x + 100, y + 30, x + 300, y + 100), effective_at=day(90))
    assert nxt["created"] == [f"{prefix}GB00009"]
    with eng.connect() as conn:
        everything = conn.execute(sa.text("SELECT DISTINCT parcel_code FROM cadastre_parcels "
                                          "WHERE left(parcel_code, 12) = :p"), {"p": prefix}).scalars().all()
    assert len(everything) == 9


def test_refused_registrations_leave_nothing(demo_city, spot):
    x, y, prefix = spot
    x += 500  # a part of the spot the chain test does not use
    eng = demo_city
    p = run(eng, reg.register_initial, sub_district=prefix, ownership="J", parcel_type="C",
            attributes=attrs("村集体"), geometry=box(x, y, x + 100, y + 100), effective_at=day(0))["created"][0]
    q = run(eng, reg.register_initial, sub_district=prefix, ownership="J", parcel_type="C",
            attributes=attrs("村集体"), geometry=box(x + 200, y, x + 300, y + 100), effective_at=day(0))["created"][0]
    r = run(eng, reg.register_initial, sub_district=prefix, ownership="J", parcel_type="C",
            attributes=attrs("村集体"), geometry=box(x + 100, y + 100, x + 200, y + 200),
            effective_at=day(0))["created"][0]
    before = counts(eng)
    refused = [
        # overlapping a live parcel by 10 m²
        (Conflict, reg.register_initial, dict(sub_district=prefix, ownership="J", parcel_type="C",
                                              attributes=attrs(), geometry=box(x + 99.9, y, x + 200, y + 100))),
        # a split with a 1 m gap
        (Conflict, reg.register_split, dict(parcel_code=p, children=[
            {"geometry": box(x, y, x + 50, y + 100)}, {"geometry": box(x + 51, y, x + 100, y + 100)}])),
        # a split whose children overlap
        (Conflict, reg.register_split, dict(parcel_code=p, children=[
            {"geometry": box(x, y, x + 60, y + 100)}, {"geometry": box(x + 50, y, x + 100, y + 100)}])),
        # merging parcels 100 m apart
        (Conflict, reg.register_merge, dict(parcel_codes=[p, q])),
        # merging parcels that only touch at a corner
        (Conflict, reg.register_merge, dict(parcel_codes=[p, r])),
        # a boundary adjustment that grabs a neighbour's land
        (Conflict, reg.register_boundary_adjustment, dict(boundaries={p: box(x, y, x + 250, y + 100)})),
        (NotFound, reg.register_cancellation, dict(parcel_code=f"{prefix}JC09999")),
        (InvalidParameter, reg.register_change, dict(parcel_code=p, changes={"right_holder": "x"})),
    ]
    for error, fn, kwargs in refused:
        with pytest.raises(error):
            run(eng, fn, **kwargs)
        assert counts(eng) == before, fn.__name__
    # and the next code still follows on directly: refused registrations consumed no number
    nxt = run(eng, reg.register_initial, sub_district=prefix, ownership="J", parcel_type="C",
              attributes=attrs("村集体"), geometry=box(x + 400, y, x + 450, y + 50), effective_at=day(1))
    assert codes.parse_parcel_code(nxt["created"][0]).sequence == codes.parse_parcel_code(r).sequence + 1


def test_codes_unique_under_concurrency(demo_city, spot):
    """Two transactions issuing codes in one sub-district at once get different numbers."""
    import threading

    _, _, prefix = spot
    prefix = prefix[:6] + "9" + prefix[7:]
    results: list[str] = []
    barrier = threading.Barrier(2)

    def issue() -> None:
        with demo_city.begin() as conn:
            barrier.wait()
            [code] = reg.next_parcel_codes(conn, prefix, "G", "B")
            # record it so the other transaction (waiting on the lock) sees it as used
            conn.execute(sa.text("INSERT INTO cadastre_lineage (parent_code, child_code, kind, registration_id) "
                                 "SELECT :c, :c, 'boundary_adjustment', min(id) FROM cadastre_registrations"),
                         {"c": code})
            results.append(code)

    threads = [threading.Thread(target=issue) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and len(set(results)) == 2
