"""The demo city's cadastre: blocks cut into parcels with valid GB/T 37346 codes, their right holders
(people, companies, agencies, collectives) and initial registrations."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data.democity.common import (
    BUILT,
    COUNTIES,
    GOVERNMENT,
    USES,
    company_names,
    person_names,
    phone_numbers,
    random_dates,
    random_stream,
    resident_ids,
    zfill,
)
from data.democity.grid import street_names


def parcel_table(g: dict, blocks: pd.DataFrame, seed: int, srid: int) -> gpd.GeoDataFrame:
    """The parcels: each block cut into uneven rows and columns, with codes, holders, uses and dates."""
    rng = random_stream(seed, 2)
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
    prefix = np.char.add(np.char.add(county.astype(str), zfill(blocks["cad_district"].to_numpy()[block], 3)),
                         zfill(blocks["cad_sub"].to_numpy()[block], 3))
    # sequence numbers count within each cadastral sub-district, in block order
    order = np.argsort(prefix, kind="stable")
    sorted_prefix = prefix[order]
    first = np.r_[True, sorted_prefix[1:] != sorted_prefix[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(count), 0))
    seq = np.empty(count, dtype=np.int64)
    seq[order] = np.arange(count) - group_start + 1
    if seq.max(initial=0) > 99999:
        raise ValueError("more than 99,999 parcels in one cadastral sub-district")
    parcel_code = np.char.add(np.char.add(np.char.add(prefix, ownership), ptype), zfill(seq, 5))
    built = np.isin(puse, BUILT)
    unit_code = np.char.add(parcel_code, np.where(built, "F00010001", "W00000000"))
    # right holders: people for homes, companies for business, agencies and collectives for the rest
    person = village | ((puse == "residential") & (rng.random(count) < 0.7))
    holder = company_names(rng, count)
    holder[person] = person_names(rng, int(person.sum()))
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
    id_numbers[person] = resident_ids(rng, int(person.sum()), county[person])
    phones[person] = phone_numbers(rng, int(person.sum()))
    right_type = np.where(village, "宅基地使用权", np.where(farm, "集体土地所有权", "国有建设用地使用权"))
    landuse = np.array([USES[u][0] for u in USES], dtype=object)[
        pd.Categorical(puse, categories=list(USES)).codes]
    # commercial blocks mix retail, catering, hotels and offices
    com = puse == "commercial"
    landuse[com] = np.array(["0501", "0503", "0504", "0505", "0505"], dtype=object)[rng.integers(0, 5, com.sum())]
    ind = (puse == "industrial") & (rng.random(count) < 0.25)
    landuse[ind] = "0604"
    vstreet = street_names(g, True, blocks["bx"].to_numpy()[block])
    county_name = np.array([COUNTIES[c] for c in ("350203", "350206")], dtype=object)[(county == "350206").astype(int)]
    address = (pd.Series(county_name) + pd.Series(vstreet) + (np.arange(count) % 300 + 1).astype(str) + "号").to_numpy()
    valid_from = random_dates(rng, count, "1998-01-01", "2024-12-31")
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


def registration_table(parcels: gpd.GeoDataFrame, seed: int) -> pd.DataFrame:
    """One initial registration (with a certificate number) per parcel."""
    rng = random_stream(seed, 3)
    count = len(parcels)
    years = parcels["valid_from"].dt.year.astype(str).to_numpy()
    cert = "闽(" + pd.Series(years) + ")厦门市不动产权第" + pd.Series(zfill(rng.integers(1, 10**7, count), 7)) + "号"
    return pd.DataFrame({
        "kind": "initial", "parcel_codes": ("{" + parcels["parcel_code"] + "}").to_numpy(),
        "effective_at": parcels["valid_from"].to_numpy(), "recorded_at": parcels["recorded_from"].to_numpy(),
        "actor": "不动产登记中心（演示数据）", "certificate_no": cert.to_numpy(), "note": "首次登记（演示数据）",
    })
