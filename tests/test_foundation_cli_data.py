"""`govgis import` / `govgis export` from the command line: a report line on success, row-numbered
reasons and exit status 1 on a rejected file, masked personal data unless asked for."""

from __future__ import annotations

import pandas as pd
import pyogrio
from sqlalchemy import text
from typer.testing import CliRunner

from api.cli import app

SHELTER = {"wkt": ["POLYGON((618000 2710000,618060 2710000,618060 2710060,618000 2710060,618000 2710000))"],
           "code": ["CLI-1"], "name": ["命令行测试避难场所"], "grade": ["区级"], "shelter_class": ["紧急"],
           "capacity_persons": ["300"]}


def test_import_then_export_from_the_command_line(demo_city, tmp_path) -> None:
    runner = CliRunner()
    source = tmp_path / "shelter.csv"
    pd.DataFrame(SHELTER).to_csv(source, index=False)
    try:
        result = runner.invoke(app, ["import", "emergency_shelters", str(source), "--crs", "EPSG:4548"])
        assert result.exit_code == 0, result.output
        assert "imported 1 rows into emergency_shelters" in result.output
        with demo_city.connect() as conn:
            name = conn.execute(text("SELECT name FROM emergency_shelters WHERE code = 'CLI-1'")).scalar()
        assert name == "命令行测试避难场所"
        out = tmp_path / "shelters.gpkg"
        result = runner.invoke(app, ["export", "emergency_shelters", str(out), "--bbox",
                                     "618000,2710000,618060,2710060", "--bbox-crs", "EPSG:4548"])
        assert result.exit_code == 0, result.output
        frame = pyogrio.read_dataframe(out)
        assert "CLI-1" in set(frame["code"])
    finally:
        with demo_city.begin() as conn:
            conn.execute(text("DELETE FROM emergency_shelters WHERE code = 'CLI-1'"))


def test_rejected_import_exits_nonzero_with_rows(demo_city, tmp_path) -> None:
    bad = dict(SHELTER, code=["CLI-2"], capacity_persons=["很多"])
    source = tmp_path / "bad.csv"
    pd.DataFrame(bad).to_csv(source, index=False)
    result = CliRunner().invoke(app, ["import", "emergency_shelters", str(source)])
    assert result.exit_code == 1
    assert "row 1: field capacity_persons" in result.output and "nothing was written" in result.output
    with demo_city.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM emergency_shelters WHERE code = 'CLI-2'")).scalar() == 0


def test_export_masks_personal_fields_unless_asked(demo_city, tmp_path) -> None:
    runner = CliRunner()
    masked, plain = tmp_path / "masked.csv", tmp_path / "plain.csv"
    bbox = ["--bbox", "118.11,24.47,118.125,24.485"]
    assert runner.invoke(app, ["export", "cadastre_parcels", str(masked), *bbox]).exit_code == 0
    result = runner.invoke(app, ["export", "cadastre_parcels", str(plain), *bbox, "--with-personal-data"])
    assert result.exit_code == 0 and "unmasked personal data" in result.output
    a, b = pd.read_csv(masked, dtype=str), pd.read_csv(plain, dtype=str)
    assert len(a) == len(b) > 0
    phones_a, phones_b = a["holder_phone"].dropna(), b["holder_phone"].dropna()
    assert phones_a.str.contains(r"\*").all() and not phones_b.str.contains(r"\*").any()
    with demo_city.connect() as conn:
        logged = conn.execute(text("SELECT count(*) FROM audit_log WHERE detail ? 'export_with_personal_data'")).scalar()
    assert logged >= 1
