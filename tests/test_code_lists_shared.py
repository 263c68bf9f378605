"""One code list per coded attribute, shared by data and rules: every value a rule table keys on is in
its code list, the demo city draws from the same lists, and so every demo pipe finds its service life
and every gas pipe its clearance class (the demo pipes once said 球墨铸铁管 where the table said
球墨铸铁, and all 5,248 came out "without service life")."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from data import democity
from data.reference import code_list, rule_table
from gis.access import SYSTEM
from gis.settings import get_settings
from layers.pipeline import clearance, codes, service


def test_every_rule_table_key_is_in_its_code_list():
    materials, utilities = set(codes.materials()), set(codes.utilities())
    groups = {r["clearance_group"] for r in code_list("pipe_pressure_classes") if r["clearance_group"]}
    clearance_utilities = set(codes.clearance_groups().values())
    assert {r["material"] for r in rule_table("service_life")} <= materials
    assert {r["utility"] for r in rule_table("min_cover")} <= utilities
    table = rule_table("gb50289_clearance")
    assert {r["utility_a"] for r in table} | {r["utility_b"] for r in table} <= clearance_utilities
    assert {r["gas_pressure"] for r in table if r["gas_pressure"]} <= groups
    planning = {r["code"] for r in code_list("planning_2023")}
    assert {r["planning_code"] for r in rule_table("urban_boundary_uses")} <= planning
    # and every material of the list has a service life (a material the utility lays can be planned for)
    assert materials <= {r["material"] for r in rule_table("service_life")}


def test_the_demo_generator_draws_from_the_code_lists():
    city = democity.generate(0.25, only=("pipeline_pipes", "pipeline_networks"))
    pipes = city["pipeline_pipes"]
    assert set(pipes["material"]) <= set(codes.materials())
    assert set(pipes["pressure_class"]) <= set(codes.pressure_classes())
    assert codes.pipe_value_problems(pipes[["material", "pressure_class"]].to_dict("records")) == []


def test_every_demo_pipe_has_a_service_life_and_old_iron_is_flagged(demo_city):
    with demo_city.connect() as conn:
        networks = conn.execute(sa.text("SELECT id FROM pipeline_networks WHERE name LIKE '%演示%' ORDER BY id")).scalars()
        reports = [service.maintenance_report(conn, n, caller=SYSTEM, settings=get_settings(),
                                              today=dt.date(2026, 6, 1)) for n in networks]
    assert reports and all(r["pipes_without_service_life"] == 0 for r in reports)
    water = reports[0]
    assert water["replace_now"] > 0  # grey cast iron laid before 1992 is past its 40 years
    assert {w["material"] for w in water["warnings"] if any(x["rule"] == "age" for x in w["reasons"])} >= {"灰口铸铁"}


def test_gas_pressure_classes_reach_their_clearance_rule():
    rules = clearance.load_rules()
    water = clearance.PipeSpec("water", 300, 1.5, "0.4MPa")
    for code, group in (("中压A", "medium"), ("中压B", "medium"), ("次高压A", "subhigh"), ("低压", "low")):
        rule = clearance.rule_for("horizontal", clearance.PipeSpec("gas", 200, 1.0, code), water, rules)
        assert rule is not None and rule.gas_pressure == group, code
    assert codes.gas_pressure_group("中压C") is None
    assert codes.material_problem("球墨铸铁管") and "did you mean '球墨铸铁'" in codes.material_problem("球墨铸铁管")
