"""The demo city: a deterministic, fictional city on Xiamen Island, scalable by a size factor.

``generate(size, seed)`` builds every table as (Geo)DataFrames in the storage CRS; ``load(engine, ...)``
bulk-loads them with COPY in one transaction. The city is a street grid with arterials every sixth
line; blocks between the streets get one use each (housing, commerce, industry, schools, hospitals,
parks, a lake, wooded hills where the DEM rises, farmland and a village in the north-east) and are cut
into parcels with valid GB/T 37346 codes. Land-use survey patches are the blocks and street strips, so
they tile the city exactly and agree with the parcels. Water and gas networks follow the streets
(nodes at every intersection, valves near junctions, hydrants, a few control valves, a source and a
tank each); every built parcel is a customer of both. All names, people and numbers are invented.

Size 1 is about 10,000 parcels and 5,000 pipes per network; the counts grow linearly with ``size``.
The city's extent grows with √size until it fills the island, then the blocks get smaller, so every
size stays on Xiamen Island (118.06–118.20°E, 24.42–24.56°N).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Geod

from data.codes import load_code_list
from gis.crs import transformer
from gis.settings import PROJECT_ROOT, get_settings

ISLAND = (118.06, 24.42, 118.20, 24.56)  # lon/lat box of Xiamen Island
CENTRE = (118.125, 24.487)  # the grid's centre (lon, lat)
DEFAULT_SEED = 20261122
BASE_N = 37  # street lines per direction at size 1
BASE_PITCH = 120.0  # metres between street centrelines at size 1
HALF_WIDTH = {"arterial": 15.0, "secondary": 10.0, "local": 6.0}  # half of the street space, m
SPEED = {"arterial": 50.0, "secondary": 40.0, "local": 30.0}  # km/h
COUNTIES = {"350203": "思明区", "350206": "湖里区"}
SURVEY_YEAR = 2023
PLAN_YEAR = 2035
GENERATED = PROJECT_ROOT / "data" / "generated"

# block uses: name → (GB/T 21010 code, survey code, planning code, settlement code)
USES: dict[str, tuple[str, str, str, str | None]] = {
    "residential": ("0701", "0701", "0701", "201"),
    "commercial": ("0505", "05H1", "0902", "201"),
    "industrial": ("0601", "0601", "1001", "201"),
    "school": ("0803", "08H2", "0804", "201"),
    "hospital": ("0805", "08H2", "0806", "201"),
    "government": ("0801", "08H1", "0801", "201"),
    "park": ("0810", "0810", "1401", "201"),
    "village": ("0702", "0702", "0701", "203"),
    "farmland": ("0101", "0101", "0101", None),
    "forest": ("0301", "0301", "0301", None),
    "lake": ("1102", "1102", "1702", None),
}
BUILT = ("residential", "commercial", "industrial", "school", "hospital", "government", "village")
ARTERIAL_NAMES = ["湖滨南路", "嘉禾路", "厦禾路", "仙岳路", "莲前西路", "成功大道", "湖滨北路", "禾祥西路",
                  "吕岭路", "枋湖路", "金尚路", "江头路", "莲岳路", "湖里大道", "环岛路", "思明南路"]
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程苏魏吕丁任沈姚卢")
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志鹏辉晨宇欣怡浩然梓涵子轩雨桐思远嘉琪")
COMPANY_A = ["鹭江", "筼筜", "海沧", "鼓浪", "五缘", "白鹭", "嘉禾", "思明", "湖里", "莲花", "金山", "天湖", "东渡", "禾山"]
COMPANY_B = ["置业", "实业", "科技", "贸易", "物流", "电子", "食品", "建设", "投资", "酒店管理", "商贸", "机械", "纺织"]
GOVERNMENT = ["厦门市人民政府办公厅", "厦门市自然资源和规划局", "厦门市应急管理局", "厦门市市政园林局",
              "厦门市公安局", "厦门市教育局", "厦门市卫生健康委员会", "厦门市交通运输局"]
PHONE_PREFIX = np.array(["138", "139", "158", "159", "188", "189", "136", "137", "150", "151", "186", "187"])


@dataclass
class DemoCity:
    """Every table of the demo city, keyed by table name, in the storage CRS, plus the grid it stands on."""

    size: float
    seed: int
    srid: int
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    grid: dict[str, float] = field(default_factory=dict)

    def __getitem__(self, table: str) -> pd.DataFrame:
        return self.tables[table]

    @property
    def parcels(self) -> gpd.GeoDataFrame:
        return self.tables["cadastre_parcels"]  # type: ignore[return-value]


# --- terrain ------------------------------------------------------------------------------------

def _centre_xy() -> tuple[float, float]:
    crs = get_settings().spatial.storage_crs
    return transformer("EPSG:4326", crs).transform(*CENTRE)


def _hills(seed: int) -> np.ndarray:
    """(dx, dy, sigma, peak) of the Gaussian hills, metres from the centre."""
    rng = np.random.default_rng(seed + 7)
    fixed = [(-650.0, 450.0, 260.0, 270.0), (1700.0, -1500.0, 320.0, 230.0), (-3800.0, -3200.0, 700.0, 290.0)]
    extra = np.column_stack([rng.uniform(-6500, 6500, 6), rng.uniform(-7000, 7000, 6),
                             rng.uniform(250, 700, 6), rng.uniform(15, 55, 6)])
    return np.vstack([np.array(fixed), extra])


def ground_elevation(x: np.ndarray, y: np.ndarray, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Ground height (m, 0–300) at storage-CRS points: smooth hills over a gently rising plain."""
    cx, cy = _centre_xy()
    dx, dy = np.asarray(x, dtype=float) - cx, np.asarray(y, dtype=float) - cy
    z = 4.0 + 0.0006 * (dy + 8000.0)
    for hx, hy, sigma, peak in _hills(seed):
        z = z + peak * np.exp(-((dx - hx) ** 2 + (dy - hy) ** 2) / (2.0 * sigma**2))
    return np.clip(z, 0.0, 300.0)


def dem_path() -> Path:
    """Where the demo DEM GeoTIFF lives (gitignored; written by ``write_dem``)."""
    return GENERATED / "dem.tif"


def write_dem(path: Path | str | None = None, seed: int = DEFAULT_SEED, cell: float = 10.0) -> Path:
    """Write the demo DEM (float32 GeoTIFF, storage CRS, ``cell`` metres) over the whole island."""
    import rasterio
    from rasterio.transform import from_origin

    settings = get_settings()
    out = Path(path) if path is not None else dem_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    x0, y0, x1, y1 = transformer("EPSG:4326", settings.spatial.storage_crs).transform_bounds(*ISLAND)
    width, height = int(np.ceil((x1 - x0) / cell)), int(np.ceil((y1 - y0) / cell))
    xs = x0 + (np.arange(width) + 0.5) * cell
    ys = y1 - (np.arange(height) + 0.5) * cell
    grid = np.empty((height, width), dtype=np.float32)
    for start in range(0, height, 256):  # in strips: the full grid at once needs ~1 GB of temporaries
        yy = ys[start:start + 256][:, None]
        grid[start:start + 256] = ground_elevation(xs[None, :], yy, seed)
    crs = rasterio.crs.CRS.from_user_input(settings.spatial.storage_crs)
    with rasterio.open(out, "w", driver="GTiff", width=width, height=height, count=1, dtype="float32",
                       crs=crs, transform=from_origin(x0, y1, cell, cell), compress="deflate",
                       tiled=True, blockxsize=256, blockysize=256) as dst:
        dst.write(grid, 1)
        dst.update_tags(description="govgis demo city DEM (fictional terrain)", seed=str(seed))
    return out


# --- the grid -----------------------------------------------------------------------------------

def _line_classes(n: int) -> np.ndarray:
    i = np.arange(n)
    cls = np.full(n, "local", dtype=object)
    cls[i % 3 == 0] = "secondary"
    cls[(i % 6 == 0) | (i == n - 1)] = "arterial"
    return cls


def _grid(size: float) -> dict[str, object]:
    n = max(4, int(round(BASE_N * np.sqrt(size))))
    settings = get_settings()
    x0i, y0i, x1i, y1i = transformer("EPSG:4326", settings.spatial.storage_crs).transform_bounds(*ISLAND)
    room = 0.9 * min(x1i - x0i, y1i - y0i)
    pitch = BASE_PITCH
    scale = 1.0
    if (n - 1) * pitch + 2 * HALF_WIDTH["arterial"] > room:
        scale = room / ((n - 1) * pitch + 2 * HALF_WIDTH["arterial"])
        pitch *= scale
    cx, cy = _centre_xy()
    side = (n - 1) * pitch
    lines = np.arange(n) * pitch
    cls = _line_classes(n)
    half = np.array([HALF_WIDTH[c] for c in cls]) * scale
    return {"n": n, "pitch": pitch, "scale": scale, "x": cx - side / 2 + lines, "y": cy - side / 2 + lines,
            "cls": cls, "half": half}


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def _assign_uses(g: dict, seed: int) -> np.ndarray:
    """One use per block, by position (hills, lake, north-east farmland) and by chance."""
    n = g["n"]
    nb = n - 1
    bx, by = np.meshgrid(np.arange(nb), np.arange(nb))
    bx, by = bx.ravel(), by.ravel()
    u, v = (bx + 0.5) / nb, (by + 0.5) / nb
    cxb = (g["x"][bx] + g["x"][bx + 1]) / 2
    cyb = (g["y"][by] + g["y"][by + 1]) / 2
    z = ground_elevation(cxb, cyb, seed)
    rng = _rng(seed, 1)
    r = rng.random(len(bx))
    use = np.full(len(bx), "residential", dtype=object)
    cbd = (u - 0.55) ** 2 + (v - 0.42) ** 2 < 0.16**2
    on_arterial = (g["cls"][bx] == "arterial") | (g["cls"][by] == "arterial")
    use[cbd | (on_arterial & (r < 0.25))] = "commercial"
    use[(r >= 0.25) & (r < 0.28)] = "school"
    use[(r >= 0.28) & (r < 0.288)] = "hospital"
    use[(r >= 0.288) & (r < 0.298)] = "government"
    use[(r >= 0.30) & (r < 0.34)] = "park"
    use[(v > 0.80) & (u < 0.40)] = "industrial"
    use[(u > 0.72) & (v > 0.70)] = "village"
    use[(u > 0.84) & (v > 0.82)] = "farmland"
    use[(u - 0.22) ** 2 + (v - 0.62) ** 2 < 0.07**2] = "lake"
    use[z > 60.0] = "forest"
    # every city, however small, has at least one hospital, school, park, government and lake block
    for i, name in enumerate(("hospital", "school", "park", "government", "lake")):
        if not (use == name).any():
            use[np.flatnonzero(use == "residential")[i * 3]] = name
    return use


# --- people and names (vectorised: a million parcels must not take minutes) -----------------------

def _person_names(rng: np.random.Generator, count: int) -> np.ndarray:
    surname = np.array(SURNAMES)[rng.integers(0, len(SURNAMES), count)]
    first = np.array(GIVEN)[rng.integers(0, len(GIVEN), count)]
    second = np.array(GIVEN + [""] * 20)[rng.integers(0, len(GIVEN) + 20, count)]
    return np.char.add(np.char.add(surname, first), second).astype(object)


def _phones(rng: np.random.Generator, count: int) -> np.ndarray:
    prefix = PHONE_PREFIX[rng.integers(0, len(PHONE_PREFIX), count)]
    rest = np.char.zfill(rng.integers(0, 10**8, count).astype(str), 8)
    return np.char.add(prefix, rest).astype(object)


def _id_numbers(rng: np.random.Generator, count: int, county: np.ndarray) -> np.ndarray:
    """18-digit resident ID numbers with a correct ISO 7064 check character (fictional people)."""
    born = np.datetime64("1950-01-01") + rng.integers(0, 365 * 55, count).astype("timedelta64[D]")
    birth = np.char.replace(np.datetime_as_string(born, unit="D"), "-", "")
    seq = np.char.zfill(rng.integers(0, 1000, count).astype(str), 3)
    body = np.char.add(np.char.add(county.astype(str), birth), seq)
    digits = np.frombuffer(body.astype("S17").tobytes(), dtype=np.uint8).reshape(count, 17) - ord("0")
    weights = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    check = np.array(list("10X98765432"))[(digits * weights).sum(axis=1) % 11]
    return np.char.add(body, check).astype(object)


def _company_names(rng: np.random.Generator, count: int) -> np.ndarray:
    a = np.array(COMPANY_A)[rng.integers(0, len(COMPANY_A), count)]
    b = np.array(COMPANY_B)[rng.integers(0, len(COMPANY_B), count)]
    return np.char.add(np.char.add(np.char.add("厦门", a), b), "有限公司").astype(object)


def _zfill(values: np.ndarray, width: int) -> np.ndarray:
    return np.char.zfill(values.astype(np.int64).astype(str), width)


def _dates(rng: np.random.Generator, count: int, start: str, end: str) -> pd.DatetimeIndex:
    a, b = np.datetime64(start), np.datetime64(end)
    days = rng.integers(0, int((b - a).astype(int)), count).astype("timedelta64[D]")
    return pd.DatetimeIndex(a + days).tz_localize("UTC")


# --- the generator ------------------------------------------------------------------------------

def generate(size: float = 1.0, seed: int = DEFAULT_SEED, *, only: tuple[str, ...] | None = None) -> DemoCity:
    """Build the demo city (no database needed). ``only`` limits it to some tables, e.g. parcels for a
    benchmark: ``only=("cadastre_parcels",)``."""
    if not 0 < size <= 400:
        raise ValueError(f"size {size} out of range: give a factor in (0, 400]; 1 ≈ 10,000 parcels")
    srid = get_settings().storage_srid
    g = _grid(size)
    city = DemoCity(size=size, seed=seed, srid=srid,
                    grid={"n": g["n"], "pitch": g["pitch"], "x0": g["x"][0], "y0": g["y"][0]})
    use = _assign_uses(g, seed)
    blocks = _blocks(g, use)

    def want(name: str) -> bool:
        return only is None or name in only

    parcels = _parcels(g, blocks, seed, srid)
    if want("cadastre_parcels"):
        city.tables["cadastre_parcels"] = parcels
    if want("cadastre_registrations"):
        city.tables["cadastre_registrations"] = _registrations(parcels, seed)
    if want("landuse_survey_patches") or want("landuse_planning_zones"):
        patches, zones = _landuse(g, blocks, seed, srid)
        if want("landuse_survey_patches"):
            city.tables["landuse_survey_patches"] = patches
        if want("landuse_planning_zones"):
            city.tables["landuse_planning_zones"] = zones
    if want("landuse_control_lines"):
        city.tables["landuse_control_lines"] = _control_lines(g, blocks, seed, srid)
    if want("landuse_price_zones"):
        city.tables["landuse_price_zones"] = _price_zones(g, srid)
    if want("emergency_roads"):
        city.tables["emergency_roads"] = _roads(g, srid)
    if any(want(t) for t in ("pipeline_networks", "pipeline_nodes", "pipeline_pipes", "pipeline_customers")):
        networks, nodes, pipes, customers = _pipelines(g, parcels, seed, srid)
        for name, frame in (("pipeline_networks", networks), ("pipeline_nodes", nodes),
                            ("pipeline_pipes", pipes), ("pipeline_customers", customers)):
            if want(name):
                city.tables[name] = frame
    if any(want(t) for t in ("emergency_resources", "emergency_warehouses", "emergency_shelters",
                             "emergency_incidents")):
        city.tables.update({k: v for k, v in _emergency(g, blocks, size, seed, srid).items() if want(k)})
    return city


def _blocks(g: dict, use: np.ndarray) -> gpd.GeoDataFrame:
    """Block rectangles inside the street space, with use, district and cadastral (sub-)district."""
    nb = g["n"] - 1
    bx, by = np.meshgrid(np.arange(nb), np.arange(nb))
    bx, by = bx.ravel(), by.ravel()
    x, y, half = g["x"], g["y"], g["half"]
    x0, x1 = x[bx] + half[bx], x[bx + 1] - half[bx + 1]
    y0, y1 = y[by] + half[by], y[by + 1] - half[by + 1]
    county = np.where((by + 0.5) / nb > 0.5, "350206", "350203")
    # cadastral district = 20×20 blocks, sub-district = 4×4 blocks inside it
    ntx = (nb + 19) // 20
    district = (by // 20) * ntx + bx // 20 + 1
    sub = ((by % 20) // 4) * 5 + (bx % 20) // 4 + 1
    frame = pd.DataFrame({"bx": bx, "by": by, "x0": x0, "y0": y0, "x1": x1, "y1": y1, "use": use,
                          "county": county, "cad_district": district, "cad_sub": sub})
    return frame


def _street_name(g: dict, vertical: bool, index: np.ndarray) -> np.ndarray:
    cls = g["cls"][index]
    names = np.where(vertical, np.char.add(np.char.add("纵", index.astype(str)), "路"),
                     np.char.add(np.char.add("横", index.astype(str)), "路")).astype(object)
    art = cls == "arterial"
    k = (index[art] // 6) * 2 + (1 if vertical else 0)
    names[art] = [ARTERIAL_NAMES[i % len(ARTERIAL_NAMES)] + ("" if i < len(ARTERIAL_NAMES)
                  else f"{i // len(ARTERIAL_NAMES) + 1}段") for i in k]
    return names


def _parcels(g: dict, blocks: pd.DataFrame, seed: int, srid: int) -> gpd.GeoDataFrame:
    rng = _rng(seed, 2)
    nbk = len(blocks)
    use = blocks["use"].to_numpy()
    nr = np.zeros(nbk, dtype=np.int64)
    nc = np.zeros(nbk, dtype=np.int64)
    plan = {"residential": ((2, 4), (3, 6)), "commercial": ((2, 4), (2, 4)), "industrial": ((1, 3), (1, 3)),
            "village": ((3, 5), (3, 6)), "farmland": ((1, 2), (2, 3)), "school": ((1, 2), (1, 2)),
            "hospital": ((1, 2), (1, 2)), "government": ((1, 2), (1, 2)), "park": ((1, 2), (1, 2))}
    for name, ((r0, r1), (c0, c1)) in plan.items():
        m = use == name
        nr[m] = rng.integers(r0, r1, m.sum())
        nc[m] = rng.integers(c0, c1, m.sum())
    counts = nr * nc
    block = np.repeat(np.arange(nbk), counts)
    start = np.repeat(np.cumsum(counts) - counts, counts)
    k = np.arange(len(block)) - start
    i, j = k // nc[block], k % nc[block]
    # uneven cuts: cumulative random widths per block, normalised
    wx = rng.uniform(0.6, 1.4, (nbk, 6)) * (np.arange(6)[None, :] < nc[:, None])
    wy = rng.uniform(0.6, 1.4, (nbk, 6)) * (np.arange(6)[None, :] < nr[:, None])
    cx = np.hstack([np.zeros((nbk, 1)), np.cumsum(wx, axis=1)])
    cy = np.hstack([np.zeros((nbk, 1)), np.cumsum(wy, axis=1)])
    cx /= np.where(cx[:, -1:] > 0, cx[:, -1:], 1)
    cy /= np.where(cy[:, -1:] > 0, cy[:, -1:], 1)
    bx0, bx1 = blocks["x0"].to_numpy()[block], blocks["x1"].to_numpy()[block]
    by0, by1 = blocks["y0"].to_numpy()[block], blocks["y1"].to_numpy()[block]
    px0 = bx0 + cx[block, j] * (bx1 - bx0)
    px1 = bx0 + cx[block, j + 1] * (bx1 - bx0)
    py0 = by0 + cy[block, i] * (by1 - by0)
    py1 = by0 + cy[block, i + 1] * (by1 - by0)
    # the block's outer corners are the same floats as the block's (so parcels tile the block exactly)
    px0 = np.where(j == 0, bx0, px0)
    px1 = np.where(j == nc[block] - 1, bx1, px1)
    py0 = np.where(i == 0, by0, py0)
    py1 = np.where(i == nr[block] - 1, by1, py1)
    count = len(block)
    geoms = shapely.multipolygons(shapely.box(px0, py0, px1, py1), indices=np.arange(count))
    puse = use[block]
    county = blocks["county"].to_numpy()[block]
    village = puse == "village"
    farm = puse == "farmland"
    ownership = np.where(village | farm, "J", "G")
    ptype = np.where(village, "C", np.where(farm, "A", "B"))
    prefix = np.char.add(np.char.add(county.astype(str), _zfill(blocks["cad_district"].to_numpy()[block], 3)),
                         _zfill(blocks["cad_sub"].to_numpy()[block], 3))
    # sequence numbers count within each cadastral sub-district, in block order
    order = np.argsort(prefix, kind="stable")
    sorted_prefix = prefix[order]
    first = np.r_[True, sorted_prefix[1:] != sorted_prefix[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(count), 0))
    seq = np.empty(count, dtype=np.int64)
    seq[order] = np.arange(count) - group_start + 1
    if seq.max(initial=0) > 99999:
        raise ValueError("more than 99,999 parcels in one cadastral sub-district")
    parcel_code = np.char.add(np.char.add(np.char.add(prefix, ownership), ptype), _zfill(seq, 5))
    built = np.isin(puse, BUILT)
    unit_code = np.char.add(parcel_code, np.where(built, "F00010001", "W00000000"))
    # right holders: people for homes, companies for business, agencies and collectives for the rest
    person = village | ((puse == "residential") & (rng.random(count) < 0.7))
    holder = _company_names(rng, count)
    holder[person] = _person_names(rng, int(person.sum()))
    gov_names = np.array(GOVERNMENT, dtype=object)
    for name, label in (("school", "学校"), ("hospital", "医院")):
        m = puse == name
        holder[m] = np.char.add(np.char.add("厦门市第", (np.flatnonzero(m) % 97 + 1).astype(str)),
                                "中学" if label == "学校" else "医院").astype(object)
    m = puse == "government"
    holder[m] = gov_names[rng.integers(0, len(gov_names), m.sum())]
    holder[puse == "park"] = "厦门市市政园林局"
    m = farm
    holder[m] = np.char.add(np.char.add("禾山街道", (blocks["by"].to_numpy()[block][m] % 9 + 1).astype(str)),
                            "村股份经济合作社").astype(object)
    id_numbers = np.full(count, None, dtype=object)
    phones = np.full(count, None, dtype=object)
    id_numbers[person] = _id_numbers(rng, int(person.sum()), county[person])
    phones[person] = _phones(rng, int(person.sum()))
    right_type = np.where(village, "宅基地使用权", np.where(farm, "集体土地所有权", "国有建设用地使用权"))
    landuse = np.array([USES[u][0] for u in USES], dtype=object)[
        pd.Categorical(puse, categories=list(USES)).codes]
    # commercial blocks mix retail, catering, hotels and offices
    com = puse == "commercial"
    landuse[com] = np.array(["0501", "0503", "0504", "0505", "0505"], dtype=object)[rng.integers(0, 5, com.sum())]
    ind = (puse == "industrial") & (rng.random(count) < 0.25)
    landuse[ind] = "0604"
    vstreet = _street_name(g, True, blocks["bx"].to_numpy()[block])
    county_name = np.array([COUNTIES[c] for c in ("350203", "350206")], dtype=object)[(county == "350206").astype(int)]
    address = (pd.Series(county_name) + pd.Series(vstreet) + (np.arange(count) % 300 + 1).astype(str) + "号").to_numpy()
    valid_from = _dates(rng, count, "1998-01-01", "2024-12-31")
    recorded_from = valid_from + pd.to_timedelta(rng.integers(0, 30, count), unit="D")
    area = shapely.area(geoms)
    registered = np.round(area * (1 + rng.normal(0, 0.002, count)), 2)
    frame = gpd.GeoDataFrame({
        "parcel_code": parcel_code.astype(object), "unit_code": unit_code.astype(object), "right_holder": holder,
        "holder_kind": np.where(person, "person", "organisation"), "holder_id_number": id_numbers,
        "holder_phone": phones, "right_type": right_type, "landuse_system": "GB/T 21010-2017",
        "landuse_code": landuse, "address": address, "district": county.astype(object),
        "registered_area": registered, "status": "registered", "valid_from": valid_from,
        "recorded_from": recorded_from,
        "block": block, "use": puse,
    }, geometry=geoms, crs=f"EPSG:{srid}")
    return frame


def _registrations(parcels: gpd.GeoDataFrame, seed: int) -> pd.DataFrame:
    rng = _rng(seed, 3)
    count = len(parcels)
    years = parcels["valid_from"].dt.year.astype(str).to_numpy()
    cert = "闽(" + pd.Series(years) + ")厦门市不动产权第" + pd.Series(_zfill(rng.integers(1, 10**7, count), 7)) + "号"
    return pd.DataFrame({
        "kind": "initial", "parcel_codes": ("{" + parcels["parcel_code"] + "}").to_numpy(),
        "effective_at": parcels["valid_from"].to_numpy(), "recorded_at": parcels["recorded_from"].to_numpy(),
        "actor": "不动产登记中心（演示数据）", "certificate_no": cert.to_numpy(), "note": "首次登记（演示数据）",
    })


def _ellipsoidal_areas(geoms: np.ndarray, srid: int) -> np.ndarray:
    """Areas on the CGCS2000/GRS80 ellipsoid (what the third land survey reports), m²."""
    lonlat = shapely.transform(geoms, lambda xy: np.column_stack(
        transformer(get_settings().spatial.storage_crs, "EPSG:4490").transform(xy[:, 0], xy[:, 1])))
    geod = Geod(ellps="GRS80")
    return np.array([abs(geod.geometry_area_perimeter(g)[0]) for g in lonlat])


def _street_pieces(g: dict) -> np.ndarray:
    """The street space as rectangles that, with the blocks, tile the city exactly."""
    n, x, y, half = g["n"], g["x"], g["y"], g["half"]
    X0, X1 = x[0] - half[0], x[-1] + half[-1]
    horizontal = shapely.box(np.full(n, X0), y - half, np.full(n, X1), y + half)
    ix, iy = np.meshgrid(np.arange(n), np.arange(n - 1))
    ix, iy = ix.ravel(), iy.ravel()
    vertical = shapely.box(x[ix] - half[ix], y[iy] + half[iy], x[ix] + half[ix], y[iy + 1] - half[iy + 1])
    return np.concatenate([horizontal, vertical])


def _landuse(g: dict, blocks: pd.DataFrame, seed: int, srid: int) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    rng = _rng(seed, 4)
    block_geoms = shapely.box(blocks["x0"], blocks["y0"], blocks["x1"], blocks["y1"])
    streets = _street_pieces(g)
    geoms = np.concatenate([block_geoms, streets])
    multi = shapely.multipolygons(geoms, indices=np.arange(len(geoms)))
    use = np.concatenate([blocks["use"].to_numpy(), np.full(len(streets), "street", dtype=object)])
    survey_code = np.array([USES[u][1] if u != "street" else "1004" for u in use], dtype=object)
    settlement = np.array([USES[u][3] if u != "street" else "201" for u in use], dtype=object)
    names = {r["code"]: r["name_zh"] for r in load_code_list("survey_tnls") if r["level"] != "0"}
    cy = shapely.get_coordinates(shapely.centroid(geoms))[:, 1]
    cy0 = (g["y"][0] + g["y"][-1]) / 2
    district = np.where(cy > cy0, "350206", "350203")
    ownership = np.where(np.isin(use, ("village", "farmland")), "集体", "国有")
    patches = gpd.GeoDataFrame({
        "patch_no": np.char.add("TB", _zfill(np.arange(1, len(geoms) + 1), 7)).astype(object),
        "survey_year": SURVEY_YEAR, "class_system": "三调工作分类", "class_code": survey_code,
        "class_name": [names[c] for c in survey_code], "settlement_code": settlement,
        "ownership": ownership, "district": district.astype(object),
        "ellipsoidal_area": _ellipsoidal_areas(multi, srid),
    }, geometry=multi, crs=f"EPSG:{srid}")
    # the 2035 plan: villages and some old industry redeveloped, a few blocks left white (留白)
    plan_code = np.array([USES[u][2] if u != "street" else "1207" for u in use], dtype=object)
    r = rng.random(len(use))
    plan_code[(use == "industrial") & (r < 0.3)] = "0902"
    plan_code[(use == "residential") & (r < 0.03)] = "1401"
    plan_code[(use == "residential") & (r > 0.985)] = "16"
    plan_code[(use == "village") & (r < 0.3)] = "0703"
    plan_names = {row["code"]: row["name_zh"] for row in load_code_list("planning_2023")}
    zones = gpd.GeoDataFrame({
        "plan_name": "厦门岛国土空间规划（演示）", "plan_year": PLAN_YEAR, "class_system": "用地用海分类指南(2023)",
        "class_code": plan_code, "class_name": [plan_names[c] for c in plan_code],
        "district": district.astype(object),
    }, geometry=multi, crs=f"EPSG:{srid}")
    return patches, zones


def _union_multi(geoms: np.ndarray) -> shapely.MultiPolygon | None:
    if len(geoms) == 0:
        return None
    merged = shapely.union_all(geoms)
    if merged.geom_type == "Polygon":
        merged = shapely.MultiPolygon([merged])
    return merged


def _control_lines(g: dict, blocks: pd.DataFrame, seed: int, srid: int) -> gpd.GeoDataFrame:
    use = blocks["use"].to_numpy()
    geoms = shapely.box(blocks["x0"], blocks["y0"], blocks["x1"], blocks["y1"])
    # the lines are drawn generously: to the street centrelines around the blocks
    grown = shapely.box(g["x"][blocks["bx"]], g["y"][blocks["by"]], g["x"][blocks["bx"] + 1],
                        g["y"][blocks["by"] + 1])
    cx = (blocks["x0"] + blocks["x1"]).to_numpy() / 2
    cy = (blocks["y0"] + blocks["y1"]).to_numpy() / 2
    z = ground_elevation(cx, cy, seed)
    rows = []
    farm = _union_multi(geoms[use == "farmland"])
    if farm is not None:
        rows.append(("permanent_basic_farmland", None, "禾山永久基本农田保护区", farm))
    core = _union_multi(geoms[(use == "forest") & (z > 150)])
    if core is not None:
        rows.append(("ecological_red_line", "core", "仙岳山生态保护红线（核心保护区）", core))
    general = _union_multi(geoms[((use == "forest") & (z <= 150)) | (use == "lake")])
    if general is not None:
        rows.append(("ecological_red_line", "general", "筼筜湖—山体生态保护红线（一般控制区）", general))
    n = g["n"]
    extent = shapely.box(g["x"][0], g["y"][0], g["x"][n - 1], g["y"][n - 1])
    outside = shapely.union_all(grown[np.isin(use, ("farmland", "forest"))])
    udb = shapely.difference(extent, outside) if not outside.is_empty else extent
    udb = _union_multi(np.array([udb]))
    rows.append(("urban_development_boundary", None, "厦门岛城镇开发边界", udb))
    frame = gpd.GeoDataFrame(rows, columns=["kind", "zone_type", "name", "geometry"], geometry="geometry",
                             crs=f"EPSG:{srid}")
    frame["approved_on"] = dt.date(2023, 9, 1)
    frame["approval_no"] = "国函〔2023〕示例号"
    return frame


def _price_zones(g: dict, srid: int) -> gpd.GeoDataFrame:
    n = g["n"]
    extent = shapely.box(g["x"][0], g["y"][0], g["x"][n - 1], g["y"][n - 1])
    side = g["x"][n - 1] - g["x"][0]
    centre = shapely.Point(g["x"][0] + 0.55 * side, g["y"][0] + 0.42 * side)
    radii = [0.0, 0.15 * side, 0.3 * side, 0.5 * side]
    rings = []
    for k in range(4):
        outer = extent if k == 3 else shapely.intersection(extent, centre.buffer(radii[k + 1], quad_segs=16))
        inner = centre.buffer(radii[k], quad_segs=16) if k else None
        rings.append(outer if inner is None else shapely.difference(outer, inner))
    prices = {"commercial": [32000, 21000, 14000, 8000], "residential": [28000, 19000, 12000, 7000],
              "industrial": [2600, 2000, 1500, 1100], "public": [9000, 7000, 5000, 3500]}
    rows = []
    for land_class, values in prices.items():
        for k, ring in enumerate(rings):
            rows.append((land_class, k + 1, values[k], dt.date(2023, 1, 1), _union_multi(np.array([ring]))))
    return gpd.GeoDataFrame(rows, columns=["land_class", "grade", "price_per_m2", "base_date", "geometry"],
                            geometry="geometry", crs=f"EPSG:{srid}")


def _segments(g: dict) -> dict[str, np.ndarray]:
    """Street segments between adjacent intersections (vertex id = iy·n + ix + 1)."""
    n = g["n"]
    ix, iy = np.meshgrid(np.arange(n - 1), np.arange(n))
    hx, hy = ix.ravel(), iy.ravel()  # horizontal: (hx, hy) → (hx+1, hy)
    vx, vy = np.meshgrid(np.arange(n), np.arange(n - 1))
    vx, vy = vx.ravel(), vy.ravel()  # vertical: (vx, vy) → (vx, vy+1)
    a_ix = np.concatenate([hx, vx])
    a_iy = np.concatenate([hy, vy])
    b_ix = np.concatenate([hx + 1, vx])
    b_iy = np.concatenate([hy, vy + 1])
    vertical = np.concatenate([np.zeros(len(hx), bool), np.ones(len(vx), bool)])
    line = np.where(vertical, a_ix, a_iy)
    return {"a": a_iy * n + a_ix, "b": b_iy * n + b_ix, "ax": g["x"][a_ix], "ay": g["y"][a_iy],
            "bx": g["x"][b_ix], "by": g["y"][b_iy], "vertical": vertical, "line": line,
            "cls": g["cls"][line]}


def _roads(g: dict, srid: int) -> gpd.GeoDataFrame:
    s = _segments(g)
    coords = np.stack([np.column_stack([s["ax"], s["ay"]]), np.column_stack([s["bx"], s["by"]])], axis=1)
    geoms = shapely.linestrings(coords)
    speed = np.array([SPEED[c] for c in s["cls"]])
    length = shapely.length(geoms)
    cost = length / (speed / 3.6)
    names = np.empty(len(geoms), dtype=object)
    vert = s["vertical"]
    names[vert] = _street_name(g, True, s["line"][vert])
    names[~vert] = _street_name(g, False, s["line"][~vert])
    # a few local streets are one-way eastbound (pgRouting: negative reverse cost = no way back)
    oneway = (~vert) & (s["cls"] == "local") & (s["line"] % 7 == 2)
    return gpd.GeoDataFrame({
        "id": np.arange(1, len(geoms) + 1), "name": names, "road_class": s["cls"].astype(object),
        "source": s["a"] + 1, "target": s["b"] + 1, "speed_kmh": speed, "oneway": oneway,
        "cost": cost, "reverse_cost": np.where(oneway, -1.0, cost),
    }, geometry=geoms, crs=f"EPSG:{srid}")


def _pipelines(g: dict, parcels: gpd.GeoDataFrame, seed: int, srid: int
               ) -> tuple[pd.DataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The water and gas networks: networks, nodes, pipes and customers (ids assigned here)."""
    networks = pd.DataFrame({
        "id": [1, 2], "utility": ["water", "gas"], "name": ["厦门岛供水管网（演示）", "厦门岛燃气管网（演示）"],
        "operator": ["厦门水务集团（示例）", "厦门燃气集团（示例）"], "snap_tolerance_m": [0.05, 0.05],
    })
    all_nodes, all_pipes, all_customers = [], [], []
    next_node, next_pipe = 1, 1
    for net_id, utility, offset, prefix, stream in ((1, "water", 3.0, "W", 10), (2, "gas", -3.0, "G", 20)):
        nodes, pipes, customers = _network(g, parcels, net_id, utility, offset * g["scale"], prefix,
                                           seed, stream, next_node, next_pipe, srid)
        next_node += len(nodes)
        next_pipe += len(pipes)
        all_nodes.append(nodes)
        all_pipes.append(pipes)
        all_customers.append(customers)
    crs = f"EPSG:{srid}"
    return (networks, gpd.GeoDataFrame(pd.concat(all_nodes, ignore_index=True), crs=crs),
            gpd.GeoDataFrame(pd.concat(all_pipes, ignore_index=True), crs=crs),
            gpd.GeoDataFrame(pd.concat(all_customers, ignore_index=True), crs=crs))


def _network(g: dict, parcels: gpd.GeoDataFrame, net_id: int, utility: str, offset: float, prefix: str,
             seed: int, stream: int, first_node: int, first_pipe: int, srid: int
             ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """One utility network along the streets, offset from the centrelines by ``offset`` metres.

    Nodes: every intersection (junction, or tee on the edge), then points inside street segments —
    an isolation valve near the start (60 %) and/or the end (25 %), a hydrant (water) or a control valve
    midway — and a source and a tank outside two corners. Each segment is split at its inner points,
    so every pipe runs between two node ids and its end points are exactly those nodes' points.
    """
    rng = _rng(seed, stream)
    n = g["n"]
    water = utility == "water"
    s = _segments(g)
    nseg = len(s["a"])
    # junctions at every intersection, a little off the centreline (water north-east, gas south-west)
    jx, jy = np.meshgrid(g["x"] + offset, g["y"] + offset)
    jx, jy = jx.ravel(), jy.ravel()
    ix, iy = np.meshgrid(np.arange(n), np.arange(n))
    border = ((ix == 0) | (iy == 0) | (ix == n - 1) | (iy == n - 1)).ravel()
    corner = (((ix == 0) | (ix == n - 1)) & ((iy == 0) | (iy == n - 1))).ravel()
    j_kind = np.where(border & ~corner, "tee", "junction")
    # points inside each segment: valve near the start, hydrant or control valve midway, valve near the end
    seg_len = np.hypot(s["bx"] - s["ax"], s["by"] - s["ay"])
    near = np.minimum(8.0 * g["scale"], 0.15 * seg_len) / seg_len
    t = np.full((nseg, 3), np.nan)
    kind = np.full((nseg, 3), "", dtype=object)
    v0 = rng.random(nseg) < 0.6
    v1 = rng.random(nseg) < 0.25
    mid = rng.random(nseg)
    hyd = (mid < 0.12) if water else np.zeros(nseg, bool)
    ctl = (mid > 0.992)
    ctl[[nseg // 3, (2 * nseg) // 3]] = True  # every network has control valves to model
    hyd &= ~ctl
    t[v0, 0], kind[v0, 0] = near[v0], "isolation_valve"
    t[hyd | ctl, 1] = 0.5
    kind[hyd, 1], kind[ctl, 1] = "hydrant", "control_valve"
    t[v1, 2], kind[v1, 2] = 1 - near[v1], "isolation_valve"
    present = ~np.isnan(t)
    inner_count = present.sum(axis=1)
    seg_of_inner = np.repeat(np.arange(nseg), 3)[present.ravel()]
    tin = t.ravel()[present.ravel()]
    kin = kind.ravel()[present.ravel()]
    ax, ay = s["ax"][seg_of_inner] + offset, s["ay"][seg_of_inner] + offset
    bx, by = s["bx"][seg_of_inner] + offset, s["by"][seg_of_inner] + offset
    inner_x, inner_y = ax + tin * (bx - ax), ay + tin * (by - ay)
    n_j = n * n
    n_in = len(tin)
    inner_ids = first_node + n_j + np.arange(n_in)
    # ordered node ids along each segment: start, inner points (t is sorted by construction), end
    ids = np.full((nseg, 5), -1, dtype=np.int64)
    ids[:, 0] = first_node + s["a"]
    col = np.cumsum(present, axis=1)
    rows_, cols_ = np.nonzero(present)
    ids[rows_, col[rows_, cols_]] = inner_ids
    ids[np.arange(nseg), inner_count + 1] = first_node + s["b"]
    pairs_from, pairs_to, pair_seg = [], [], []
    for c in range(4):
        ok = (ids[:, c] >= 0) & (ids[:, c + 1] >= 0)
        pairs_from.append(ids[ok, c])
        pairs_to.append(ids[ok, c + 1])
        pair_seg.append(np.flatnonzero(ok))
    # sources and tanks just outside two corners, joined to the corner junction by a pipe
    out = 30.0 * g["scale"]
    specials = [("source", 0, -out, -out), ("tank", n * n - 1, out, out)] if water else \
        [("source", n * (n - 1), -out, out), ("tank", n - 1, out, -out)]
    sp_ids = first_node + n_j + n_in + np.arange(len(specials))
    sp_x = np.array([jx[c] + dx for _, c, dx, _ in specials])
    sp_y = np.array([jy[c] + dy for _, c, _, dy in specials])
    node_x = np.concatenate([jx, inner_x, sp_x])
    node_y = np.concatenate([jy, inner_y, sp_y])
    node_kind = np.concatenate([j_kind, kin, [k for k, *_ in specials]]).astype(object)
    node_ids = np.concatenate([first_node + np.arange(n_j), inner_ids, sp_ids])
    p_from = np.concatenate(pairs_from + [sp_ids])
    p_to = np.concatenate(pairs_to + [first_node + np.array([c for _, c, *_ in specials])])
    p_seg = np.concatenate(pair_seg + [np.full(len(specials), -1)])
    pos = node_ids - first_node
    coords = np.stack([np.column_stack([node_x[p_from - first_node], node_y[p_from - first_node]]),
                       np.column_stack([node_x[p_to - first_node], node_y[p_to - first_node]])], axis=1)
    assert (pos == np.arange(len(node_ids))).all()
    npipe = len(p_from)
    seg_cls = np.where(p_seg >= 0, s["cls"][np.maximum(p_seg, 0)], "feeder")
    diam_table = ({"arterial": 600, "secondary": 300, "local": 200, "feeder": 800} if water else
                  {"arterial": 315, "secondary": 200, "local": 110, "feeder": 400})
    diameter = np.array([diam_table[c] for c in seg_cls])
    materials = np.array(["球墨铸铁管", "球墨铸铁管", "PE管", "钢管"] if water else ["PE管", "PE管", "钢管"],
                         dtype=object)
    pressure = np.where(water, "0.4MPa", np.where(np.isin(seg_cls, ("arterial", "feeder")), "中压A", "中压B"))
    pipes = gpd.GeoDataFrame({
        "id": first_pipe + np.arange(npipe), "network_id": net_id,
        "code": np.char.add(prefix + "P", _zfill(np.arange(1, npipe + 1), 7)).astype(object),
        "from_node": p_from, "to_node": p_to,
        "material": materials[rng.integers(0, len(materials), npipe)], "diameter_mm": diameter,
        "install_year": rng.integers(1985, 2024, npipe), "burial_depth_m": np.round(rng.uniform(0.9, 2.2, npipe), 2),
        "pressure_class": pressure if np.ndim(pressure) else np.full(npipe, pressure), "status": "in_service",
    }, geometry=shapely.linestrings(coords), crs=f"EPSG:{srid}")
    # node attributes: a valve takes the diameter of its segment's pipe; a few valves cannot be turned
    nnode = len(node_ids)
    valve = node_kind == "isolation_valve"
    state = np.full(nnode, None, dtype=object)
    state[valve] = np.where(rng.random(valve.sum()) < 0.03, "inoperable", "open")
    control = np.full(nnode, None, dtype=object)
    cmask = node_kind == "control_valve"
    control[cmask] = np.array(["PRV", "check"] if water else ["PRV", "PRV"], dtype=object)[
        np.arange(cmask.sum()) % 2]
    node_diam = np.full(nnode, np.nan)
    first_pipe_of_node = pd.Series(diameter, index=p_to - first_node).groupby(level=0).max()
    node_diam[first_pipe_of_node.index.to_numpy()] = first_pipe_of_node.to_numpy()
    codes_prefix = {"junction": "J", "tee": "T", "isolation_valve": "V", "hydrant": "H", "control_valve": "C",
                    "source": "S", "tank": "R"}
    kind_letter = np.array([codes_prefix[k] for k in node_kind], dtype=object)
    node_code = (prefix + pd.Series(kind_letter) + pd.Series(_zfill(np.arange(1, nnode + 1), 7))).to_numpy()
    exercised = pd.Series(pd.NaT, index=range(nnode), dtype="datetime64[ns]")
    exercised[valve] = (np.datetime64("2019-01-01") + rng.integers(0, 2500, valve.sum()).astype("timedelta64[D]"))
    nodes = gpd.GeoDataFrame({
        "id": node_ids, "network_id": net_id, "code": node_code, "kind": node_kind, "valve_state": state,
        "control_type": control, "diameter_mm": pd.array(np.where(np.isnan(node_diam), pd.NA, node_diam),
                                                         dtype="Int64"),
        "last_exercised": exercised.dt.date.where(exercised.notna(), None).to_numpy(),
        "access_note": None, "ground_elevation_m": np.round(ground_elevation(node_x, node_y, seed), 2),
        "install_year": rng.integers(1985, 2024, nnode),
    }, geometry=shapely.points(node_x, node_y), crs=f"EPSG:{srid}")
    # customers: every built parcel, connected at the nearest intersection of this network
    built = parcels[parcels["use"].isin(BUILT)]
    pts = shapely.point_on_surface(built.geometry.to_numpy())
    xy = shapely.get_coordinates(pts)
    pitch = g["pitch"]
    cix = np.clip(np.rint((xy[:, 0] - g["x"][0] - offset) / pitch), 0, n - 1).astype(np.int64)
    ciy = np.clip(np.rint((xy[:, 1] - g["y"][0] - offset) / pitch), 0, n - 1).astype(np.int64)
    ncust = len(built)
    category = built["use"].map({"hospital": "hospital", "school": "school", "government": "government",
                                 "commercial": "commercial", "industrial": "industrial"}).fillna("residential")
    households = np.where(built["use"] == "residential", rng.integers(20, 300, ncust),
                          np.where(built["use"] == "village", rng.integers(1, 4, ncust), 1))
    contact = _person_names(rng, ncust)
    personal_holder = (built["holder_kind"] == "person").to_numpy()
    contact[personal_holder] = built["right_holder"].to_numpy()[personal_holder]
    name = np.where(built["use"] == "residential", built["address"].to_numpy() + "住宅", built["right_holder"])
    customers = gpd.GeoDataFrame({
        "network_id": net_id,
        "account_no": np.char.add(prefix + "U", _zfill(np.arange(1, ncust + 1), 8)).astype(object),
        "name": name.astype(object), "category": category.to_numpy(), "node_id": first_node + ciy * n + cix,
        "address": built["address"].to_numpy(), "contact_name": contact, "contact_phone": _phones(rng, ncust),
        "households": households, "parcel_code": built["parcel_code"].to_numpy(),
    }, geometry=pts, crs=f"EPSG:{srid}")
    return nodes, pipes, customers


def _emergency(g: dict, blocks: pd.DataFrame, size: float, seed: int, srid: int) -> dict[str, pd.DataFrame]:
    rng = _rng(seed, 30)
    crs = f"EPSG:{srid}"
    n = g["n"]
    use = blocks["use"].to_numpy()
    centres = shapely.points((blocks["x0"] + blocks["x1"]) / 2, (blocks["y0"] + blocks["y1"]) / 2)

    def near_intersections(count: int) -> np.ndarray:
        ix = rng.integers(0, n, count)
        iy = rng.integers(0, n, count)
        off = 12.0 * g["scale"]
        return shapely.points(g["x"][ix] + off, g["y"][iy] + off)

    kinds = [("team", "消防救援", "消防救援站", "厦门市消防救援支队", 30),
             ("team", "医疗急救", "急救站", "厦门市急救中心", 12),
             ("team", "城市搜救", "蓝天救援队", "厦门市应急管理局", 25),
             ("team", "供水抢修", "供水抢修队", "厦门水务集团（示例）", 15),
             ("team", "燃气抢修", "燃气抢修队", "厦门燃气集团（示例）", 12),
             ("vehicle", "消防救援", "消防车", "厦门市消防救援支队", 6),
             ("vehicle", "医疗急救", "救护车", "厦门市急救中心", 3),
             ("vehicle", "工程抢险", "抢险车", "厦门市市政园林局", 4)]
    count = max(len(kinds) * 2, int(round(80 * size)))
    pick = np.arange(count) % len(kinds)
    status = np.where(rng.random(count) < 0.8, "available",
                      np.where(rng.random(count) < 0.75, "assigned", "out_of_service")).astype(object)
    resources = gpd.GeoDataFrame({
        "id": np.arange(1, count + 1),
        "code": np.char.add("YJ", _zfill(np.arange(1, count + 1), 5)).astype(object),
        "name": [f"{COUNTIES['350203' if i % 2 else '350206']}第{i // len(kinds) + 1}{kinds[k][2]}"
                 for i, k in enumerate(pick)],
        "kind": [kinds[k][0] for k in pick], "capability_type": [kinds[k][1] for k in pick],
        "capability_level": rng.integers(1, 5, count), "status": status,
        "capacity": [kinds[k][4] for k in pick], "agency": [kinds[k][3] for k in pick],
        "duty_phone": np.char.add("0592-", _zfill(rng.integers(0, 10**7, count), 7)).astype(object),
        "leader_phone": _phones(rng, count),
    }, geometry=near_intersections(count), crs=crs)
    history = pd.DataFrame({"resource_id": resources["id"], "status": status,
                            "since": _dates(rng, count, "2026-01-01", "2026-11-01"),
                            "actor": "应急指挥中心（演示数据）"})
    nw = max(3, int(round(6 * size)))
    candidates = np.flatnonzero(np.isin(use, ("industrial", "commercial", "residential")))
    wblocks = rng.choice(candidates, nw, replace=False)
    warehouses = gpd.GeoDataFrame({
        "id": np.arange(1, nw + 1), "code": np.char.add("CK", _zfill(np.arange(1, nw + 1), 3)).astype(object),
        "name": [f"厦门市第{i + 1}应急物资储备库" for i in range(nw)], "agency": "厦门市应急管理局",
        "address": [f"储备路{i + 1}号" for i in range(nw)], "keeper_phone": _phones(rng, nw),
    }, geometry=centres[wblocks], crs=crs)
    items = [r for r in load_code_list("gbt38565_supplies") if r["level"] == "4"]
    stock_rows = []
    for wid in warehouses["id"]:
        for k in rng.choice(len(items), 8, replace=False):
            item = items[k]
            perishable = item["code"].startswith("102")
            expires = dt.date(2027, 1, 1) + dt.timedelta(days=int(rng.integers(0, 900))) if perishable else None
            stock_rows.append((wid, item["code"], item["name_zh"], float(rng.integers(10, 2000)), item["unit"],
                               expires))
    stock = pd.DataFrame(stock_rows, columns=["warehouse_id", "supply_code", "name", "quantity", "unit",
                                              "expires_on"])
    shelter_blocks = np.flatnonzero(np.isin(use, ("park", "school")))
    sgeoms = shapely.box(blocks["x0"].to_numpy()[shelter_blocks], blocks["y0"].to_numpy()[shelter_blocks],
                         blocks["x1"].to_numpy()[shelter_blocks], blocks["y1"].to_numpy()[shelter_blocks])
    area = shapely.area(sgeoms)
    effective = np.round(area * np.where(use[shelter_blocks] == "park", 0.7, 0.4), 1)
    ns = len(shelter_blocks)
    shelters = gpd.GeoDataFrame({
        "code": np.char.add("BN", _zfill(np.arange(1, ns + 1), 4)).astype(object),
        "name": [f"{'公园' if use[b] == 'park' else '学校'}应急避难场所{i + 1}号" for i, b in enumerate(shelter_blocks)],
        "grade": np.where(area > np.median(area) if ns else False, "市级", "区级").astype(object),
        "shelter_class": np.where(use[shelter_blocks] == "park", "短期", "紧急").astype(object),
        "hazards": "地震,台风,火灾", "capacity_persons": (effective / 2.0).astype(int),
        "effective_area_m2": effective, "service_radius_m": np.where(use[shelter_blocks] == "park", 1000.0, 500.0),
    }, geometry=shapely.multipolygons(sgeoms, indices=np.arange(ns)), crs=crs)
    spots = near_intersections(5)
    incidents = gpd.GeoDataFrame({
        "code": [f"SJ2026112200{i + 1}" for i in range(5)],
        "source_line": ["119", "122", "120", "municipal", "municipal"],
        "incident_type": ["建筑火灾", "道路交通事故", "急病救助", "供水管道爆管", "燃气泄漏"],
        "level": [3, 4, 4, 3, 2], "status": ["responding", "open", "responding", "open", "open"],
        "reported_at": pd.DatetimeIndex(["2026-11-22T08:15", "2026-11-22T08:40", "2026-11-22T09:05",
                                         "2026-11-22T09:30", "2026-11-22T10:02"]).tz_localize("UTC"),
        "description": ["居民楼火情（演示）", "两车追尾（演示）", "老人晕倒（演示）", "DN300供水管爆管（演示）",
                        "燃气管道泄漏（演示）"],
        "reporter_phone": _phones(rng, 5),
        "impact_area": [shapely.MultiPolygon([p.buffer(r * g["scale"], quad_segs=8)])
                        for p, r in zip(spots, (80, 30, 10, 150, 300), strict=True)],
    }, geometry=spots, crs=crs)
    return {"emergency_resources": resources, "emergency_resource_status": history,
            "emergency_warehouses": warehouses, "emergency_stock": stock, "emergency_shelters": shelters,
            "emergency_incidents": incidents}


# --- loading ------------------------------------------------------------------------------------

# tables in load order (foreign keys first), with the columns that exist only in the generator
LOAD_ORDER = ("cadastre_parcels", "cadastre_registrations", "landuse_survey_patches", "landuse_planning_zones",
              "landuse_control_lines", "landuse_price_zones", "emergency_roads", "pipeline_networks",
              "pipeline_nodes", "pipeline_pipes", "pipeline_customers", "emergency_resources",
              "emergency_resource_status", "emergency_warehouses", "emergency_stock", "emergency_shelters",
              "emergency_incidents")
HELPER_COLUMNS = {"block", "use"}
# tables whose ids the generator assigns (other tables refer to them)
EXPLICIT_IDS = {"pipeline_networks", "pipeline_nodes", "pipeline_pipes", "emergency_resources",
                "emergency_warehouses", "emergency_roads"}
REFERENCES = {  # column → table whose id it refers to
    "pipeline_nodes": {"network_id": "pipeline_networks"},
    "pipeline_pipes": {"network_id": "pipeline_networks", "from_node": "pipeline_nodes",
                       "to_node": "pipeline_nodes"},
    "pipeline_customers": {"network_id": "pipeline_networks", "node_id": "pipeline_nodes"},
    "emergency_resource_status": {"resource_id": "emergency_resources"},
    "emergency_stock": {"warehouse_id": "emergency_warehouses"},
    "emergency_roads": {"source": "emergency_roads#vertex", "target": "emergency_roads#vertex"},
}


def load(engine, size: float = 1.0, seed: int = DEFAULT_SEED, progress: bool = False) -> dict[str, int]:
    """Generate the demo city and bulk-load it (COPY, one transaction). Returns rows per table.

    Ids the generator assigns are shifted past any rows already present, so loading into a database
    that has data keeps every reference right. Writes one audit record per table and the DEM file.
    """
    import sqlalchemy as sa
    from tqdm import tqdm

    from gis.access import SYSTEM
    from gis.imports import copy_frame
    from gis.writes import audit
    from layers import REGISTRY

    city = generate(size, seed)
    counts: dict[str, int] = {}
    bar = tqdm(total=len(LOAD_ORDER), desc="demo city", unit="table", disable=not progress)
    with engine.begin() as conn:
        offsets: dict[str, int] = {}
        for table in EXPLICIT_IDS:
            offsets[table] = int(conn.execute(sa.text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one())
        offsets["emergency_roads#vertex"] = int(conn.execute(
            sa.text("SELECT coalesce(greatest(max(source), max(target)), 0) FROM emergency_roads")).scalar_one())
        for table in LOAD_ORDER:
            frame = city.tables[table]
            frame = frame.drop(columns=[c for c in HELPER_COLUMNS if c in frame.columns])
            if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name != "geom":
                frame = frame.rename_geometry("geom")
            shift = {col: offsets[ref] for col, ref in REFERENCES.get(table, {}).items() if offsets.get(ref)}
            if table in EXPLICIT_IDS and offsets.get(table):
                shift["id"] = offsets[table]
            if shift:
                frame = frame.copy()
                for col, delta in shift.items():
                    frame[col] = frame[col] + delta
            counts[table] = copy_frame(conn, table, frame)
            if "id" in frame.columns:
                conn.execute(sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
            bar.set_postfix_str(f"{table} {counts[table]}")
            bar.update(1)
        for table, rows in counts.items():
            layer = REGISTRY.by_table(table)
            audit(conn, SYSTEM, layer.id if layer else table, None, "import", None, None,
                  {"source": "data.democity", "size": size, "seed": seed, "rows": rows})
    bar.close()
    if not dem_path().exists():
        write_dem(dem_path(), seed)
    return counts
