"""Longitudinal profile of a pipe run: ground elevation from the DEM (rasterio), pipe top from the
burial depth at each pipe end (a pipe is straight in profile between its ends), cover = ground −
pipe top along the run, flagged where it falls below the minimum cover for the utility
(rule table min_cover). JSON for the data, a PNG chart (matplotlib, Agg) for the report.

Pure (no database): the service (layers/pipeline/service.py) reads the pipes and the rule table and
passes them in with the DEM path of the settings.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from shapely.geometry import LineString

from data.reference import rule_table
from gis.crs import transformer
from gis.errors import InvalidParameter, NotFound

DEFAULT_MIN_COVER = (0.7, "default 0.7 m (no rule for this utility)")


def min_cover_rules(rules_dir: Path | str | None = None) -> dict[str, tuple[float, str]]:
    """Utility → (minimum cover in metres, source), from the rule table."""
    return {r["utility"]: (float(r["min_cover_m"]), r["source"]) for r in rule_table("min_cover", rules_dir)}


def check_run(pipe_ids: list[int], step_m: float) -> None:
    """A profile is asked of a run of pipes at a sane sampling step."""
    if not pipe_ids:
        raise InvalidParameter("give the pipe ids of the run, in order")
    if not 0.5 <= step_m <= 100:
        raise InvalidParameter("step_m must be between 0.5 and 100 metres")


def _orient_run(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], LineString]]:
    """The pipes in the given order, each line turned to continue where the previous one ended."""
    out: list[tuple[dict[str, Any], LineString]] = []
    for row in rows:
        line = row["geom"]
        if out:
            end = np.array(out[-1][1].coords[-1])
            start, finish = np.array(line.coords[0]), np.array(line.coords[-1])
            if np.hypot(*(finish - end)) < np.hypot(*(start - end)):
                line = shapely.reverse(line)
            if np.hypot(*(np.array(line.coords[0]) - end)) > 0.5:
                raise InvalidParameter(f"pipe {row['id']} does not continue from pipe {out[-1][0]['id']}: "
                                       "give the pipes of one continuous run, in order")
        elif len(rows) > 1:
            nxt = rows[1]["geom"]
            ends = [np.array(nxt.coords[0]), np.array(nxt.coords[-1])]
            if min(np.hypot(*(np.array(line.coords[0]) - e)) for e in ends) < \
                    min(np.hypot(*(np.array(line.coords[-1]) - e)) for e in ends):
                line = shapely.reverse(line)
        out.append((row, line))
    return out


def pipe_profile(pipe_ids: list[int], pipes: dict[int, dict[str, Any]], dem: Path | str, *, storage_crs: str,
                 min_cover: dict[str, tuple[float, str]], step_m: float = 5.0) -> dict[str, Any]:
    """Profile samples along a run of pipes (given in order).

    ``pipes`` are the repository's ``pipes_with_geometry`` rows by id, ``dem`` the elevation model
    (GeoTIFF), ``min_cover`` the rule table by utility.
    """
    check_run(pipe_ids, step_m)
    missing = [p for p in pipe_ids if p not in pipes]
    if missing:
        raise NotFound(f"no pipe(s) {', '.join(map(str, missing))}")
    dem = Path(dem)
    if not dem.exists():
        # the name only: a client is never told where the server keeps its files
        raise NotFound(f"no elevation model ({dem.name}) on the server: write it first (govgis db setup writes "
                       "the demo DEM) or set GOVGIS_DEM_PATH")
    run = _orient_run([pipes[p] for p in pipe_ids])
    utility = run[0][0]["utility"]
    cover_min, source = min_cover.get(utility, DEFAULT_MIN_COVER)
    samples: list[dict[str, Any]] = []
    offset = 0.0
    with rasterio.open(dem) as src:
        to_dem = transformer(storage_crs, src.crs.to_wkt()) if src.crs else None
        nodata = src.nodata

        def ground(points: np.ndarray) -> np.ndarray:
            xs, ys = (to_dem.transform(points[:, 0], points[:, 1]) if to_dem else (points[:, 0], points[:, 1]))
            values = np.array([v[0] for v in src.sample(list(zip(xs, ys, strict=True)))], dtype=float)
            inside = (xs >= src.bounds.left) & (xs <= src.bounds.right) & (ys >= src.bounds.bottom) & \
                (ys <= src.bounds.top)
            bad = ~inside | (values == nodata if nodata is not None else False) | ~np.isfinite(values)
            return np.where(bad, np.nan, values)

        for row, line in run:
            length = line.length
            d = np.unique(np.concatenate([np.arange(0, length, step_m), [length]]))
            pts = shapely.get_coordinates(shapely.line_interpolate_point(line, d))
            g = ground(pts)
            depth = row["burial_depth_m"]
            ends = ground(np.array([line.coords[0], line.coords[-1]]))
            top = None if depth is None else ends[0] - depth + (ends[1] - ends[0]) * d / max(length, 1e-9)
            for k in range(len(d)):
                if samples and k == 0:
                    continue  # the joint was the previous pipe's last sample
                gk = None if np.isnan(g[k]) else round(float(g[k]), 3)
                tk = None if top is None or np.isnan(top[k]) else round(float(top[k]), 3)
                cover = None if gk is None or tk is None else round(gk - tk, 3)
                samples.append({"distance_m": round(offset + float(d[k]), 3), "x": float(pts[k, 0]),
                                "y": float(pts[k, 1]), "pipe_id": row["id"], "ground_m": gk, "pipe_top_m": tk,
                                "cover_m": cover, "below_min_cover": cover is not None and cover < cover_min})
            offset += length
    flagged = [s for s in samples if s["below_min_cover"]]
    return {"pipe_ids": pipe_ids, "utility": utility, "length_m": round(offset, 3), "step_m": step_m,
            "min_cover_m": cover_min, "min_cover_source": source, "samples": samples,
            "below_min_cover": len(flagged),
            "unknown": sum(s["cover_m"] is None for s in samples),
            "worst_cover_m": min((s["cover_m"] for s in samples if s["cover_m"] is not None), default=None)}


def profile_png(profile: dict[str, Any]) -> bytes:
    """The profile as a PNG chart: ground, pipe top, minimum-cover line; thin cover in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", "Noto Sans CJK JP", "DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    s = profile["samples"]
    d = np.array([x["distance_m"] for x in s])
    g = np.array([np.nan if x["ground_m"] is None else x["ground_m"] for x in s])
    t = np.array([np.nan if x["pipe_top_m"] is None else x["pipe_top_m"] for x in s])
    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=100)
    ax.plot(d, g, color="#6b4f2a", label="地面 ground")
    ax.plot(d, t, color="#0070c0", label="管顶 pipe top")
    ax.plot(d, g - profile["min_cover_m"], color="#999", linestyle="--", label="最小覆土 min cover")
    bad = np.array([x["below_min_cover"] for x in s], dtype=bool)
    if bad.any():
        ax.scatter(d[bad], t[bad], color="#d00", zorder=3, s=12, label="覆土不足 cover too thin")
    ax.set_xlabel("距离 distance (m)")
    ax.set_ylabel("高程 elevation (m)")
    ax.set_title(f"纵断面 profile — 管线 {', '.join(map(str, profile['pipe_ids']))}")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()
