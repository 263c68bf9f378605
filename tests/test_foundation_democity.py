"""The demo city: valid parcel codes, survey consistent with parcels, a real pipe topology, every
customer linked, a routable road graph, and a DEM — checked against the loaded database with
independent computations (regular expressions, shapely, networkx, pyproj)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import shapely
from sqlalchemy import text

from data import democity

PARCEL_RE = r"^(350203|350206)[0-9]{6}[GJZ][ABCDEFGHSWXY][0-9]{5}$"


def _scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def test_generate_is_deterministic_and_scales_linearly() -> None:
    a = democity.generate(0.25, seed=7, only=("cadastre_parcels",))
    b = democity.generate(0.25, seed=7, only=("cadastre_parcels",))
    assert list(a.parcels["parcel_code"]) == list(b.parcels["parcel_code"])
    assert shapely.equals(a.parcels.geometry.to_numpy(), b.parcels.geometry.to_numpy()).all()
    c = democity.generate(1.0, seed=7, only=("cadastre_parcels",))
    assert 3.2 < len(c.parcels) / len(a.parcels) < 4.8
    assert 8_000 < len(c.parcels) < 12_000


# the parcels in force now (the demo city has a history: retired versions and records stay in the table)
IN_FORCE = ("valid_from <= now() AND (valid_to IS NULL OR valid_to > now()) AND recorded_to IS NULL")


def test_every_parcel_code_valid_and_unique(demo_city) -> None:
    with demo_city.connect() as conn:
        rows = conn.execute(text(f"SELECT parcel_code, unit_code, district FROM cadastre_parcels WHERE {IN_FORCE}")).all()
        every = conn.execute(text("SELECT parcel_code, unit_code, district FROM cadastre_parcels")).all()
    assert len(rows) > 1000 and len(every) > len(rows)  # history: more versions than parcels
    import re

    pattern = re.compile(PARCEL_RE)
    bad = [r for r in every if not pattern.match(r.parcel_code) or not r.unit_code.startswith(r.parcel_code)
           or len(r.unit_code) != 28 or r.parcel_code[:6] != r.district]
    assert bad == []
    assert len({r.parcel_code for r in rows}) == len(rows)  # one version in force per parcel
    # J (collective) only with A or C, as GB/T 37346 says; state land never takes A or C
    assert not [r for r in every if r.parcel_code[13] in "AC" and r.parcel_code[12] != "J"]


def test_sequences_count_within_each_sub_district(demo_city) -> None:
    with demo_city.connect() as conn:
        rows = conn.execute(text(
            "SELECT left(parcel_code, 12) AS prefix, array_agg(DISTINCT right(parcel_code, 5)::int) AS seqs "
            "FROM cadastre_parcels GROUP BY 1")).all()
    # every number ever used, retired ones included: new codes continue after the highest, none reused
    for row in rows:
        assert sorted(row.seqs) == list(range(1, len(row.seqs) + 1)), row.prefix


def test_personal_data_of_people_only(demo_city) -> None:
    with demo_city.connect() as conn:
        rows = conn.execute(text(
            "SELECT holder_kind, holder_id_number, holder_phone FROM cadastre_parcels")).all()
    people = [r for r in rows if r.holder_kind == "person"]
    assert people and all(r.holder_id_number and r.holder_phone for r in people)
    assert all(r.holder_id_number is None for r in rows if r.holder_kind == "organisation")
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    for r in people[:500]:
        number = r.holder_id_number
        assert len(number) == 18 and number[:6] in ("350203", "350206")
        assert "10X98765432"[sum(int(d) * w for d, w in zip(number[:17], weights, strict=True)) % 11] == number[17]
        assert len(r.holder_phone) == 11 and r.holder_phone[0] == "1"


def test_survey_patches_agree_with_parcels(demo_city) -> None:
    in_force = IN_FORCE.replace("valid_", "p.valid_").replace("recorded_", "p.recorded_")
    year = {"year": democity.SURVEY_YEAR}
    with demo_city.connect() as conn:
        rows = conn.execute(text(f"""
            SELECT s.class_code, s.plane_area, s.ellipsoidal_area, coalesce(sum(p.plane_area), 0) AS parcels
            FROM landuse_survey_patches s
            LEFT JOIN cadastre_parcels p ON ST_Contains(s.geom, ST_PointOnSurface(p.geom)) AND {in_force}
            WHERE s.survey_year = :year
            GROUP BY s.id, s.class_code, s.plane_area, s.ellipsoidal_area"""), year).all()
        union_ok = conn.execute(text("""
            SELECT bool_and(ok) FROM (SELECT abs(ST_Area(ST_Union(geom)) - sum(ST_Area(geom))) < 1 AS ok
              FROM landuse_survey_patches GROUP BY survey_year) y""")).scalar()
        uncovered = conn.execute(text(f"""
            SELECT count(*) FROM cadastre_parcels p WHERE {in_force} AND NOT EXISTS (
              SELECT 1 FROM landuse_survey_patches s WHERE s.survey_year = :year AND ST_Covers(s.geom, p.geom))"""),
            year).scalar()
    assert union_ok, "survey patches overlap"
    assert uncovered == 0, "a parcel is not inside one survey patch"
    built = [r for r in rows if r.class_code in ("0701", "0702", "05H1", "0601", "08H1", "08H2", "0101")]
    assert built
    for r in built:  # a block's parcels tile its patch exactly
        assert r.parcels == pytest.approx(r.plane_area, rel=1e-9, abs=1e-3)
    for r in rows:  # plane exceeds ellipsoidal by about 0.03 % at Xiamen in CM 117°E
        assert 0.0002 < r.plane_area / r.ellipsoidal_area - 1 < 0.0005
    assert {r.class_code for r in rows} >= {"1004", "0810", "1102", "0301"}


def test_pipe_endpoints_are_their_nodes(demo_city) -> None:
    with demo_city.connect() as conn:
        bad = conn.execute(text("""
            SELECT count(*) FROM pipeline_pipes p
            JOIN pipeline_nodes a ON a.id = p.from_node JOIN pipeline_nodes b ON b.id = p.to_node
            WHERE NOT ST_Equals(ST_StartPoint(p.geom), a.geom) OR NOT ST_Equals(ST_EndPoint(p.geom), b.geom)
               OR a.network_id <> p.network_id OR b.network_id <> p.network_id""")).scalar()
        missing = conn.execute(text(
            "SELECT count(*) FROM pipeline_pipes WHERE from_node IS NULL OR to_node IS NULL")).scalar()
        # no pipe passes through a node it does not end at (pipes are split at every node)
        crossing = conn.execute(text("""
            SELECT count(*) FROM pipeline_pipes p JOIN pipeline_nodes n
              ON n.network_id = p.network_id AND ST_DWithin(p.geom, n.geom, 0.001)
            WHERE n.id NOT IN (p.from_node, p.to_node)""")).scalar()
    assert (bad, missing, crossing) == (0, 0, 0)


def test_networks_connected_with_valves_sources_and_tanks(demo_city) -> None:
    with demo_city.connect() as conn:
        nets = conn.execute(text("SELECT id, utility FROM pipeline_networks ORDER BY id")).all()
        assert {n.utility for n in nets} >= {"water", "gas"}
        for net in nets:
            edges = conn.execute(text("SELECT from_node, to_node FROM pipeline_pipes WHERE network_id = :n"),
                                 {"n": net.id}).all()
            kinds = dict(conn.execute(text(
                "SELECT kind, count(*) FROM pipeline_nodes WHERE network_id = :n GROUP BY kind"),
                {"n": net.id}).all())
            graph = nx.Graph()
            graph.add_edges_from(edges)
            assert nx.is_connected(graph)
            assert kinds.get("source", 0) >= 1 and kinds.get("tank", 0) >= 1
            assert kinds.get("isolation_valve", 0) > 100 and kinds.get("control_valve", 0) >= 2
            if net.utility == "water":
                assert kinds.get("hydrant", 0) > 10
            # an isolation valve sits inside a street segment: exactly two pipes meet there
            degree = conn.execute(text("""
                SELECT count(*) FROM pipeline_nodes n WHERE n.network_id = :n AND n.kind = 'isolation_valve'
                AND (SELECT count(*) FROM pipeline_pipes p WHERE n.id IN (p.from_node, p.to_node)) <> 2"""),
                {"n": net.id}).scalar()
            assert degree == 0


def test_every_customer_linked(demo_city) -> None:
    with demo_city.connect() as conn:
        unlinked = conn.execute(text("""
            SELECT count(*) FROM pipeline_customers c LEFT JOIN pipeline_nodes n ON n.id = c.node_id
            WHERE n.id IS NULL OR n.network_id <> c.network_id""")).scalar()
        built = conn.execute(text(
            f"SELECT count(*) FROM cadastre_parcels WHERE substr(unit_code, 20, 1) = 'F' AND {IN_FORCE}")).scalar()
        water = conn.execute(text("""SELECT count(DISTINCT c.parcel_code) FROM pipeline_customers c
            JOIN pipeline_networks w ON w.id = c.network_id AND w.utility = 'water'""")).scalar()
        categories = {r[0] for r in conn.execute(text("SELECT DISTINCT category FROM pipeline_customers"))}
        far = conn.execute(text("""SELECT max(ST_Distance(c.geom, n.geom)) FROM pipeline_customers c
            JOIN pipeline_nodes n ON n.id = c.node_id""")).scalar()
    assert unlinked == 0
    assert water == built > 0
    assert {"hospital", "school", "residential"} <= categories
    assert far < 200  # linked to a nearby node, not an arbitrary one


def test_road_graph_routable(demo_city) -> None:
    with demo_city.connect() as conn:
        bad = conn.execute(text("""
            SELECT count(*) FROM emergency_roads r JOIN emergency_roads s ON s.source = r.source AND s.id <> r.id
            WHERE NOT ST_Equals(ST_StartPoint(r.geom), ST_StartPoint(s.geom))""")).scalar()
        cost_ok = conn.execute(text(
            "SELECT bool_and(abs(cost - ST_Length(geom) / (speed_kmh / 3.6)) < 1e-6) FROM emergency_roads")).scalar()
        corners = conn.execute(text("SELECT min(source), max(target) FROM emergency_roads")).one()
        route = conn.execute(text(
            "SELECT count(*) FROM pgr_dijkstra('SELECT id, source, target, cost, reverse_cost FROM emergency_roads',"
            " :a, :b, true)"), {"a": corners[0], "b": corners[1]}).scalar()
    assert bad == 0 and cost_ok
    assert route > 2


def test_control_lines_and_planning(demo_city) -> None:
    with demo_city.connect() as conn:
        kinds = {(r.kind, r.zone_type) for r in conn.execute(text("SELECT kind, zone_type FROM landuse_control_lines"))}
        plan_years = {r[0] for r in conn.execute(text("SELECT DISTINCT plan_year FROM landuse_planning_zones"))}
        farmland_outside_udb = conn.execute(text("""
            SELECT ST_Area(ST_Intersection(f.geom, u.geom)) FROM landuse_control_lines f, landuse_control_lines u
            WHERE f.kind = 'permanent_basic_farmland' AND u.kind = 'urban_development_boundary'""")).scalar()
    assert {("permanent_basic_farmland", None), ("ecological_red_line", "core"),
            ("ecological_red_line", "general"), ("urban_development_boundary", None)} <= kinds
    assert plan_years == {2035}
    assert farmland_outside_udb < 1.0


def test_emergency_resources_loaded(demo_city) -> None:
    with demo_city.connect() as conn:
        statuses = {r[0] for r in conn.execute(text("SELECT DISTINCT status FROM emergency_resources"))}
        codes = [r[0] for r in conn.execute(text("SELECT supply_code FROM emergency_stock"))]
        shelters = conn.execute(text("SELECT count(*) FROM emergency_shelters")).scalar()
        incidents = conn.execute(text("SELECT count(*) FROM emergency_incidents")).scalar()
        history = conn.execute(text("""SELECT count(*) FROM emergency_resources r
            JOIN emergency_resource_status s ON s.resource_id = r.id AND s.status = r.status""")).scalar()
        resources = conn.execute(text("SELECT count(*) FROM emergency_resources")).scalar()
    assert "available" in statuses and len(statuses) >= 2
    assert codes and all(len(c) == 7 and c.isdigit() for c in codes)
    assert shelters > 0 and incidents >= 3 and history == resources


def test_dem_written(tmp_path) -> None:
    import rasterio

    path = democity.write_dem(tmp_path / "dem.tif", seed=1, cell=100.0)
    with rasterio.open(path) as dem:
        band = dem.read(1)
        assert dem.crs.to_epsg() == 4548
        assert dem.res == (100.0, 100.0)
        assert 0 <= band.min() and band.max() <= 300 and band.max() > 150
        # smooth: neighbouring cells 100 m apart never differ by more than a steep hillside would
        assert np.abs(np.diff(band, axis=1)).max() < 60
