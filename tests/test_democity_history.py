"""The demo city has a past: two survey years with their change patches (a few per cent of the
patches, consistent with the parcels' change registrations), a few hundred registrations of every
kind through the services (audited, with lineage), supervision cases and land approvals — and every
history tool has something to show. Counts come from SQL, not from the generator's numbers."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from data import democity
from gis.access import SYSTEM
from layers.cadastre import service as registry
from layers.landuse import service as land


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def test_registrations_of_every_kind_through_the_services(demo_city):
    with demo_city.connect() as conn:
        kinds = dict(conn.execute(sa.text("SELECT kind, count(*) FROM cadastre_registrations WHERE actor = 'system' "
                                          "GROUP BY kind")).all())
        audited = conn.execute(sa.text("SELECT count(DISTINCT detail ->> 'registration_id') FROM audit_log "
                                       "WHERE layer = 'cadastre_parcels' AND action = 'registration'")).scalar()
        lineage = dict(conn.execute(sa.text("SELECT kind, count(*) FROM cadastre_lineage GROUP BY kind")).all())
        retired = conn.execute(sa.text("SELECT count(*) FROM cadastre_parcels WHERE valid_to IS NOT NULL AND "
                                       "recorded_to IS NULL AND status = 'retired'")).scalar()
        ended_not_retired = conn.execute(sa.text("SELECT count(*) FROM cadastre_parcels WHERE valid_to IS NOT NULL "
                                                 "AND recorded_to IS NULL AND status <> 'retired'")).scalar()
    for kind in ("change", "transfer", "split", "merge", "boundary_adjustment", "cancellation", "initial"):
        assert kinds.get(kind, 0) > 0, kind
    past = sum(kinds.values())
    assert 150 <= past <= 1000  # a few hundred
    assert audited >= past  # each one audited (the city's own, and any other module's)
    assert lineage.get("split", 0) >= 2 * kinds["split"] and lineage.get("merge", 0) >= 2 * kinds["merge"]
    assert lineage.get("boundary_adjustment", 0) >= 2 * kinds["boundary_adjustment"]
    assert retired > 0 and ended_not_retired == 0
    # spread over earlier years, all in the past
    years = scalar(demo_city, "SELECT count(DISTINCT extract(year FROM effective_at)) FROM cadastre_registrations "
                              "WHERE actor = 'system'")
    assert years >= 4
    assert scalar(demo_city, "SELECT max(effective_at) < now() FROM cadastre_registrations WHERE actor = 'system'")


def test_two_survey_years_and_their_change_patches_agree_with_the_parcels(demo_city):
    year, before = democity.SURVEY_YEAR, democity.PREVIOUS_SURVEY_YEAR
    with demo_city.connect() as conn:
        statuses = land.survey_year_statuses(conn)
        assert statuses[before]["completeness"] == statuses[year]["completeness"] == "complete"
        assert land.survey_year_used(conn, None)[0] == year
        patches = conn.execute(sa.text("SELECT count(*) FROM landuse_survey_patches WHERE survey_year = :y"),
                               {"y": year}).scalar()
        changes = conn.execute(sa.text(
            "SELECT id, from_code, to_code, ST_AsBinary(geom) FROM landuse_change_patches "
            "WHERE from_year = :a AND to_year = :b"), {"a": before, "b": year}).all()
        assert 0.005 <= len(changes) / patches <= 0.06  # a few per cent
        # every change patch: its parcels were changed in the later year from the old use to the new
        for change_id, from_code, to_code, _ in changes:
            rows = conn.execute(sa.text("""
                SELECT p.parcel_code, p.landuse_code,
                       (SELECT r.detail FROM cadastre_registrations r WHERE r.kind = 'change'
                          AND p.parcel_code = ANY(r.parcel_codes)
                          AND extract(year FROM r.effective_at) = :b LIMIT 1) AS change
                  FROM cadastre_parcels p, landuse_change_patches c
                 WHERE c.id = :c AND p.recorded_to IS NULL AND p.valid_to IS NULL
                   AND ST_Contains(c.geom, ST_PointOnSurface(p.geom))"""), {"c": change_id, "b": year}).all()
            assert rows, change_id
            for code, use, change in rows:
                assert change is not None and "landuse_code" in change["changed"], code
                assert use[:2] == to_code[:2] or (to_code == "05H1" and use[:2] == "05"), (code, use, to_code)
            earlier = conn.execute(sa.text(
                "SELECT DISTINCT v.landuse_code FROM cadastre_parcels v WHERE v.parcel_code = ANY(:codes) "
                "AND v.valid_to IS NOT NULL AND v.recorded_to IS NULL"), {"codes": [r[0] for r in rows]}).scalars().all()
            assert earlier == [from_code], (change_id, earlier, from_code)
        # the two-year balance table: same land, some of it changed class
        table = land.balance_table(conn, SYSTEM, base_year=before, target_year=year)
        assert table["total_constant"] and any(abs(r["change"]) > 1 for r in table["rows"] if r["level"] == 2)
        summary = land.change_summary(conn, SYSTEM, from_year=before, to_year=year)
        assert summary["changes"]


def test_supervision_cases_and_land_approvals(demo_city):
    with demo_city.connect() as conn:
        cases = conn.execute(sa.text("SELECT count(*) FROM landuse_supervision_cases WHERE case_no LIKE 'JC%'")).scalar()
        approvals = conn.execute(sa.text("SELECT count(*), bool_and(cardinality(parcel_codes) > 0) FROM "
                                         "landuse_land_approvals WHERE approval_no LIKE '厦自然资%'")).one()
        audited = conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'insert' AND layer IN "
                                       "('landuse_supervision_cases', 'landuse_land_approvals')")).scalar()
    assert cases >= 2 and approvals[0] >= 2 and approvals[1]
    assert audited >= cases + approvals[0]


def test_every_history_tool_has_something_to_show(demo_city):
    examples = democity.history_examples(demo_city)
    with demo_city.connect() as conn:
        timeline = registry.parcel_timeline(conn, SYSTEM, examples["timeline"])
        assert len(timeline["registrations"]) >= 3 and len(timeline["versions"]) >= 3
        parent = examples["split_parent"]
        lineage = registry.parcel_lineage(conn, SYSTEM, parent)
        assert len(lineage["descendants"]) >= 2
        merged = registry.parcel_lineage(conn, SYSTEM, examples["merged_parents"][0])
        assert merged["descendants"]
        split_at = dt.datetime.fromisoformat(examples["split_at"]).replace(tzinfo=dt.UTC)
        area = registry.parcel_geometry(conn, lineage["descendants"][0], caller=SYSTEM).buffer(1)
        before = {p["parcel_code"] for p in registry.parcels_as_of(conn, area, split_at - dt.timedelta(days=2),
                                                                   caller=SYSTEM)}
        after = {p["parcel_code"] for p in registry.parcels_as_of(conn, area, split_at + dt.timedelta(days=2),
                                                                  caller=SYSTEM)}
        assert parent in before and parent not in after and set(lineage["descendants"]) & after
        adjusted = registry.parcel_timeline(conn, SYSTEM, examples["boundary_adjusted"][0])
        assert "boundary_adjustment" in [r["kind"] for r in adjusted["registrations"]]
        assert registry.parcel_timeline(conn, SYSTEM, examples["expropriated"])["live"] is False
        # customers of retired parcels were moved to the parcel that holds them now
        stale = conn.execute(sa.text("""
            SELECT count(*) FROM pipeline_customers c WHERE c.parcel_code IS NOT NULL AND NOT EXISTS (
              SELECT 1 FROM cadastre_parcels p WHERE p.parcel_code = c.parcel_code AND p.recorded_to IS NULL
                AND p.valid_from <= now() AND (p.valid_to IS NULL OR p.valid_to > now()))""")).scalar()
        assert stale == 0


def test_the_past_is_deterministic_by_seed():
    a, b = democity.generate(0.25, seed=11), democity.generate(0.25, seed=11)
    c = democity.generate(0.25, seed=12)

    def digest(city) -> list:
        h = city.history
        return [sorted(h.changed_blocks.items()), [(e["row"], str(e["at"])) for e in h.transfers],
                [(e["row"], str(e["at"])) for e in h.splits], [(e["rows"], str(e["at"])) for e in h.merges],
                [(e["rows"], str(e["at"])) for e in h.adjustments]]

    assert digest(a) == digest(b) and digest(a) != digest(c)
    earlier = a["landuse_survey_patches"]
    assert set(earlier["survey_year"]) == {democity.PREVIOUS_SURVEY_YEAR, democity.SURVEY_YEAR}
