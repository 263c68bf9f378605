"""What every part of the demo city shares: its constants, seeded random streams, and the invented
people, companies and numbers (vectorised: a million parcels must not take minutes). All names,
people and numbers are invented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from gis.crs import transformer

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

def centre_xy(crs: str) -> tuple[float, float]:
    """The grid's centre in the storage CRS ``crs``."""
    return transformer("EPSG:4326", crs).transform(*CENTRE)


def random_stream(seed: int, stream: int) -> np.random.Generator:
    """An independent random stream per part of the city, so adding one part leaves the others unchanged."""
    return np.random.default_rng([seed, stream])


def person_names(rng: np.random.Generator, count: int) -> np.ndarray:
    """Invented Chinese personal names (surname + one or two given characters)."""
    surname = np.array(SURNAMES)[rng.integers(0, len(SURNAMES), count)]
    first = np.array(GIVEN)[rng.integers(0, len(GIVEN), count)]
    second = np.array(GIVEN + [""] * 20)[rng.integers(0, len(GIVEN) + 20, count)]
    return np.char.add(np.char.add(surname, first), second).astype(object)


def phone_numbers(rng: np.random.Generator, count: int) -> np.ndarray:
    """Invented mobile numbers (11 digits, common prefixes)."""
    prefix = PHONE_PREFIX[rng.integers(0, len(PHONE_PREFIX), count)]
    rest = np.char.zfill(rng.integers(0, 10**8, count).astype(str), 8)
    return np.char.add(prefix, rest).astype(object)


def resident_ids(rng: np.random.Generator, count: int, county: np.ndarray) -> np.ndarray:
    """18-digit resident ID numbers with a correct ISO 7064 check character (fictional people)."""
    born = np.datetime64("1950-01-01") + rng.integers(0, 365 * 55, count).astype("timedelta64[D]")
    birth = np.char.replace(np.datetime_as_string(born, unit="D"), "-", "")
    seq = np.char.zfill(rng.integers(0, 1000, count).astype(str), 3)
    body = np.char.add(np.char.add(county.astype(str), birth), seq)
    digits = np.frombuffer(body.astype("S17").tobytes(), dtype=np.uint8).reshape(count, 17) - ord("0")
    weights = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    check = np.array(list("10X98765432"))[(digits * weights).sum(axis=1) % 11]
    return np.char.add(body, check).astype(object)


def company_names(rng: np.random.Generator, count: int) -> np.ndarray:
    """Invented Xiamen company names."""
    a = np.array(COMPANY_A)[rng.integers(0, len(COMPANY_A), count)]
    b = np.array(COMPANY_B)[rng.integers(0, len(COMPANY_B), count)]
    return np.char.add(np.char.add(np.char.add("厦门", a), b), "有限公司").astype(object)


def zfill(values: np.ndarray, width: int) -> np.ndarray:
    """Integers as zero-padded strings of ``width`` digits."""
    return np.char.zfill(values.astype(np.int64).astype(str), width)


def random_dates(rng: np.random.Generator, count: int, start: str, end: str) -> pd.DatetimeIndex:
    """UTC timestamps on random days between two dates."""
    a, b = np.datetime64(start), np.datetime64(end)
    days = rng.integers(0, int((b - a).astype(int)), count).astype("timedelta64[D]")
    return pd.DatetimeIndex(a + days).tz_localize("UTC")


def union_multi(geoms: np.ndarray) -> shapely.MultiPolygon | None:
    """The union of polygons as one MultiPolygon (None for none)."""
    if len(geoms) == 0:
        return None
    merged = shapely.union_all(geoms)
    if merged.geom_type == "Polygon":
        merged = shapely.MultiPolygon([merged])
    return merged
