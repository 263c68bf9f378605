"""Road routing on an in-memory graph: dispatch by travel time, routes, isochrones, coverage, matrices.

Pure computation (numpy, scipy.sparse.csgraph, shapely, rasterio's polygoniser); no database.

The model
* Edge ``e`` runs from vertex ``u`` (pgRouting ``source``) to ``v`` (``target``) along its geometry;
  ``cost`` is seconds u→v and ``reverse_cost`` seconds v→u; a negative value closes that direction
  (pgRouting's convention: a one-way street has ``reverse_cost < 0``).
* Arcs: arc ``e`` is u→v (cost) and arc ``E + e`` is v→u (reverse_cost), when the direction is open.
  The arcs are held twice as CSR (compressed rows): by tail (the forward graph) and by head (the
  reversed graph). Both are built once per layer version; nothing is rebuilt per request.
* Closures and hazards are a per-request mask over edges (blocked, or a cost factor): the CSR weight
  array is copied and multiplied, the structure is shared. No mask, no copy.
* A point (incident, unit, station) is attached to the nearest road **edge** at its fraction ``f``
  along it (not to the nearest vertex). A search from a point starts from a virtual vertex appended to
  the CSR with arcs to both ends of its edge at the partial costs, so one Dijkstra run answers it:
  from the point, ``v`` costs ``(1-f)·cost`` and ``u`` costs ``f·reverse_cost`` (each only if that
  direction is open); towards the point (the reversed graph) ``u`` costs ``f·cost`` and ``v``
  ``(1-f)·reverse_cost``. A point on a closed edge attaches to the nearest open one.
* Dispatch is one search on the reversed graph from the incident: the distance of every vertex is its
  travel time *to* the incident, so every unit's time is read off its edge's two ends (plus the direct
  run along a shared edge), whatever the number of units.
* Isochrones and coverage polygons (see ``_reach_field``): the reached network is sampled every few
  metres with its arrival time — partly reached edges included, cut where the time runs out — the
  samples are rasterised to a grid keeping the earliest time per cell, a minimum filter with a disc of
  the buffer radius spreads each time over its neighbourhood (a buffer of the reached network), and
  the cells within each cutoff are polygonised. Every vertex reached within the cutoff lies inside its
  polygon (vertices are samples too); a vertex more than ``buffer + cell·√2`` from the reached network
  cannot be.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import shapely
from scipy.ndimage import label, minimum_filter
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from shapely.geometry.base import BaseGeometry

INF = np.inf
NO_VERTEX = -9999  # scipy's "no predecessor"
MAX_CELLS = 160_000  # largest grid an isochrone or coverage polygon is drawn on
MATRIX_WORKERS = max(1, min(4, os.cpu_count() or 1))  # threads of one travel-time matrix
BUFFERS_KEPT = 4  # search buffers kept per direction for concurrent requests (see _SearchBuffer)


@dataclass(frozen=True)
class Points:
    """Points attached to the network: per point its edge index, fraction along the edge (0 at the
    source vertex), distance from the given point to the edge (m) and the snapped position."""

    edge: np.ndarray
    fraction: np.ndarray
    snap_m: np.ndarray
    xy: np.ndarray  # (k, 2) snapped points, storage CRS

    def __len__(self) -> int:
        return len(self.edge)

    def take(self, index: np.ndarray | Sequence[int]) -> Points:
        index = np.asarray(index, dtype=np.int64)
        return Points(self.edge[index], self.fraction[index], self.snap_m[index], self.xy[index])


@dataclass(frozen=True)
class CostMask:
    """A per-request change of edge costs: ``factor[e]`` multiplies both directions of edge e
    (``inf`` blocks it). Build one with ``RoadGraph.mask``."""

    factor: np.ndarray

    @property
    def blocked(self) -> np.ndarray:
        return np.isinf(self.factor)


@dataclass
class Route:
    """A route between two attached points: seconds, metres, the line (storage CRS) and the edges
    used in order (edge index, +1 along its geometry / -1 against it)."""

    seconds: float
    metres: float
    coords: np.ndarray
    edges: list[tuple[int, int]] = field(default_factory=list)

    def line(self) -> BaseGeometry:
        return shapely.linestrings(self.coords) if len(self.coords) >= 2 else shapely.points(self.coords[0])


class _SearchBuffer:
    """A copy of one direction's CSR arrays with room after them for the virtual seed vertices of a
    search (see ``RoadGraph.search``): a search writes only its seeds' few arcs instead of copying the
    whole graph (14 ms a search at 500,000 edges). One search uses a buffer at a time (a pool of them
    serves concurrent requests); the graph's part of the arrays is never written after construction."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, seeds: int, arcs: int) -> None:
        self.n, self.nnz = len(indptr) - 1, len(indices)
        self.seeds, self.arcs = seeds, arcs
        self.indptr = np.empty(self.n + seeds + 1, dtype=np.int32)
        self.indptr[:self.n + 1] = indptr
        self.indices = np.empty(self.nnz + arcs, dtype=np.int32)
        self.indices[:self.nnz] = indices
        self.data = np.empty(self.nnz + arcs)
        self.data[:self.nnz] = data

    def fits(self, seeds: int, arcs: int) -> bool:
        return seeds <= self.seeds and arcs <= self.arcs

    def matrix(self, extra_cols: np.ndarray, extra_data: np.ndarray, counts: np.ndarray) -> csr_matrix:
        n, nnz, k, m = self.n, self.nnz, len(counts), len(extra_cols)
        self.indices[nnz:nnz + m] = extra_cols
        self.data[nnz:nnz + m] = extra_data
        self.indptr[n + 1:n + k + 1] = nnz + np.cumsum(counts)
        return csr_matrix((self.data[:nnz + m], self.indices[:nnz + m], self.indptr[:n + k + 1]),
                          shape=(n + k, n + k), copy=False)


class RoadGraph:
    """The road network as arrays (index space: vertices 0..N-1, edges 0..E-1, not database ids)."""

    def __init__(self, edge_ids: np.ndarray, source: np.ndarray, target: np.ndarray, cost: np.ndarray,
                 reverse_cost: np.ndarray, geometries: np.ndarray, version_key: tuple[int, ...] = ()) -> None:
        self.version_key = version_key
        self.edge_ids = np.asarray(edge_ids, dtype=np.int64)
        self.geom = np.asarray(geometries, dtype=object)
        cost = np.asarray(cost, dtype=float)
        reverse_cost = np.asarray(reverse_cost, dtype=float)
        self.cost = np.where(np.isfinite(cost) & (cost >= 0), cost, -1.0)
        self.reverse_cost = np.where(np.isfinite(reverse_cost) & (reverse_cost >= 0), reverse_cost, -1.0)
        ids, inverse = np.unique(np.concatenate([source, target]).astype(np.int64), return_inverse=True)
        self.vertex_ids = ids
        self.n_vertices = len(ids)
        self.n_edges = n_edges = len(self.edge_ids)
        self.u = inverse[:n_edges].astype(np.int64)
        self.v = inverse[n_edges:].astype(np.int64)
        self.edge_index = {int(e): i for i, e in enumerate(self.edge_ids)}
        self.vertex_index = {int(x): i for i, x in enumerate(ids)}
        self.length = shapely.length(self.geom)
        # flat coordinates of every edge: interpolation along edges without shapely objects per sample
        coords, owner = shapely.get_coordinates(self.geom, return_index=True)
        self._coords = coords
        self._ptr = np.searchsorted(owner, np.arange(n_edges + 1))
        step = np.zeros(len(coords))
        step[1:] = np.hypot(*(coords[1:] - coords[:-1]).T)
        step[self._ptr[:-1]] = 0.0
        cum = np.cumsum(step)
        cum -= np.repeat(cum[self._ptr[:-1]], np.diff(self._ptr))
        total = np.repeat(np.where(self.length > 0, self.length, 1.0), np.diff(self._ptr))
        self._key = owner * 2.0 + cum / total  # monotone over all edges: edge e spans [2e, 2e + 1]
        self.vertex_xy = np.zeros((self.n_vertices, 2))
        self.vertex_xy[self.u] = coords[self._ptr[:-1]]
        self.vertex_xy[self.v] = coords[self._ptr[1:] - 1]
        self.vertex_x = np.ascontiguousarray(self.vertex_xy[:, 0])
        self.vertex_y = np.ascontiguousarray(self.vertex_xy[:, 1])
        self._build_csr()
        fwd = np.where(self.cost >= 0, self.cost, INF)
        bwd = np.where(self.reverse_cost >= 0, self.reverse_cost, INF)
        fwd.flags.writeable = bwd.flags.writeable = False
        self._open_costs = (fwd, bwd)
        self._buffers: dict[bool, list[_SearchBuffer]] = {False: [], True: []}
        self._buffer_lock = threading.Lock()
        self.tree = shapely.STRtree(self.geom)

    # --- structure -------------------------------------------------------------------------------
    def _build_csr(self) -> None:
        n, e = self.n_vertices, self.n_edges
        tail = np.concatenate([self.u, self.v])
        head = np.concatenate([self.v, self.u])
        weight = np.concatenate([self.cost, self.reverse_cost])
        arcs = np.flatnonzero(weight >= 0)
        self.arc_edge = np.concatenate([np.arange(e), np.arange(e)])
        self.arc_tail, self.arc_head, self.arc_weight = tail, head, weight

        def csr(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, ...]:
            order = arcs[np.lexsort((cols[arcs], rows[arcs]))]
            indptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows[order], minlength=n), out=indptr[1:])
            slot = np.full(2 * e, -1, dtype=np.int64)
            slot[order] = np.arange(len(order))
            return indptr, cols[order].astype(np.int32), order, weight[order], slot

        self.f_indptr, self.f_indices, self.f_arc, self.f_data, self.f_slot = csr(tail, head)
        self.r_indptr, self.r_indices, self.r_arc, self.r_data, self.r_slot = csr(head, tail)

    # --- masks -----------------------------------------------------------------------------------
    def mask(self, blocked_edges: Sequence[int] | np.ndarray = (),
             slowed: Sequence[tuple[np.ndarray, float]] = ()) -> CostMask | None:
        """A cost mask: ``blocked_edges`` (edge indices) closed, each (edges, factor) in ``slowed``
        multiplied (the largest factor wins where they overlap). None when nothing changes."""
        blocked = np.asarray(blocked_edges, dtype=np.int64)
        if not len(blocked) and not any(len(edges) for edges, _ in slowed):
            return None
        factor = np.ones(self.n_edges)
        for edges, value in slowed:
            edges = np.asarray(edges, dtype=np.int64)
            factor[edges] = np.maximum(factor[edges], value)
        factor[blocked] = INF
        return CostMask(factor)

    def edges_intersecting(self, area: BaseGeometry) -> np.ndarray:
        """Indices of the edges an area (storage CRS) touches: a polygon closure, a hazard."""
        return np.sort(self.tree.query(area, predicate="intersects")).astype(np.int64)

    def edge_costs(self, mask: CostMask | None) -> tuple[np.ndarray, np.ndarray]:
        """Seconds to run each whole edge forward and backward under a mask (inf: not allowed).
        Without a mask the graph's own read-only arrays (built once)."""
        if mask is None:
            return self._open_costs
        fwd, bwd = self._open_costs
        return _scaled(fwd, mask.factor), _scaled(bwd, mask.factor)

    def _weights(self, mask: CostMask | None, reverse: bool) -> np.ndarray:
        data, arcs = (self.r_data, self.r_arc) if reverse else (self.f_data, self.f_arc)
        if mask is None:
            return data
        return _scaled(data, mask.factor[self.arc_edge[arcs]])

    # --- attaching points ------------------------------------------------------------------------
    def attach(self, xy: np.ndarray, mask: CostMask | None = None) -> Points:
        """Attach points (storage CRS, shape (k, 2)) to their nearest open edge."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        points = shapely.points(xy)
        edge = np.full(len(xy), -1, dtype=np.int64)
        if len(xy):
            src, hit = self.tree.query_nearest(points, all_matches=False)
            edge[src] = hit
        if mask is not None:
            fwd, bwd = self.edge_costs(mask)
            closed = np.isinf(fwd) & np.isinf(bwd)
            for i in np.flatnonzero(closed[edge]):
                edge[i] = self._nearest_open(points[i], closed)
        return self._on_edges(points, edge)

    def reattach(self, located: Points, xy: np.ndarray, mask: CostMask | None) -> Points:
        """Points attached without a mask, moved off the edges the mask closes (a cached attachment
        stays valid for every request; only the few units on closed roads move)."""
        if mask is None:
            return located
        fwd, bwd = self.edge_costs(mask)
        closed = np.isinf(fwd) & np.isinf(bwd)
        moved = np.flatnonzero(closed[located.edge])
        if not len(moved):
            return located
        again = self.attach(np.asarray(xy)[moved], mask)
        edge, fraction, snap, pos = (located.edge.copy(), located.fraction.copy(), located.snap_m.copy(),
                                     located.xy.copy())
        edge[moved], fraction[moved], snap[moved], pos[moved] = again.edge, again.fraction, again.snap_m, again.xy
        return Points(edge, fraction, snap, pos)

    def _on_edges(self, points: np.ndarray, edge: np.ndarray) -> Points:
        geoms = self.geom[edge]
        fraction = shapely.line_locate_point(geoms, points, normalized=True)
        fraction = np.where(self.length[edge] > 0, fraction, 0.0)
        snapped = shapely.line_interpolate_point(geoms, fraction, normalized=True)
        return Points(edge, fraction, shapely.distance(points, snapped), shapely.get_coordinates(snapped))

    def _nearest_open(self, point: BaseGeometry, closed: np.ndarray) -> int:
        radius = 50.0
        while True:
            near = self.tree.query(point, predicate="dwithin", distance=radius)
            near = near[~closed[near]]
            if len(near):
                return int(near[np.argmin(shapely.distance(self.geom[near], point))])
            if radius > 1e6:
                raise ValueError("every road edge is closed")
            radius *= 4

    # --- searching -------------------------------------------------------------------------------
    def seeds(self, points: Points, mask: CostMask | None, *, reverse: bool,
              offsets: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each point, the vertices a search starts from and their partial costs (see module)."""
        fwd, bwd = self.edge_costs(mask)
        e, f = points.edge, points.fraction
        offsets = np.zeros(len(points)) if offsets is None else np.asarray(offsets, dtype=float)
        if reverse:  # travel towards the point: arrive along e from u, or against it from v
            first, first_cost = self.u[e], _part(f, fwd[e])
            second, second_cost = self.v[e], _part(1 - f, bwd[e])
        else:  # travel from the point: leave along e to v, or against it to u
            first, first_cost = self.v[e], _part(1 - f, fwd[e])
            second, second_cost = self.u[e], _part(f, bwd[e])
        out = []
        for k in range(len(points)):
            verts = np.array([first[k], second[k]])
            costs = np.array([first_cost[k], second_cost[k]]) + offsets[k]
            keep = np.isfinite(costs)
            out.append((verts[keep], costs[keep]))
        return out

    def search(self, seeds: list[tuple[np.ndarray, np.ndarray]], *, reverse: bool,
               mask: CostMask | None = None, limit: float = INF, predecessors: bool = False,
               min_only: bool = False) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Dijkstra from virtual vertices, one per seed list (see ``seeds``).

        Returns (distances, predecessors, nearest seed). With ``min_only`` the distances are one row
        (the nearest seed's) and the nearest seed index per vertex is returned; otherwise one row per
        seed list. Columns are vertices 0..N-1 (the virtual ones are cut off); predecessors point at
        vertices, or at N + k for "straight from seed k".
        """
        n, k = self.n_vertices, len(seeds)
        extra_cols = np.concatenate([s[0] for s in seeds]).astype(np.int32) if k else np.zeros(0, np.int32)
        extra_data = np.concatenate([s[1] for s in seeds]) if k else np.zeros(0)
        counts = np.array([len(s[0]) for s in seeds], dtype=np.int64)
        sources = np.arange(n, n + k)
        if mask is None:  # the common case: the prebuilt arrays with the seeds written after them
            buffer = self._take_buffer(reverse, k, len(extra_cols))
            try:
                result = dijkstra(buffer.matrix(extra_cols, extra_data, counts), directed=True, indices=sources,
                                  limit=limit, return_predecessors=predecessors, min_only=min_only)
            finally:
                self._give_back(reverse, buffer)
        else:
            indptr, indices = (self.r_indptr, self.r_indices) if reverse else (self.f_indptr, self.f_indices)
            data = self._weights(mask, reverse)
            graph = csr_matrix((np.concatenate([data, extra_data]), np.concatenate([indices, extra_cols]),
                                np.concatenate([indptr, indptr[-1] + np.cumsum(counts)])), shape=(n + k, n + k))
            result = dijkstra(graph, directed=True, indices=sources, limit=limit, return_predecessors=predecessors,
                              min_only=min_only)
        if min_only:
            dist, pred, nearest = result if predecessors else (result, None, None)
            if not predecessors:
                # the nearest seed is only known with predecessors; callers that need it ask for them
                return dist[:n], None, None
            return dist[:n], pred[:n], np.where(nearest[:n] >= 0, nearest[:n] - n, -1)
        dist, pred = result if predecessors else (result, None)
        return dist[:, :n], (pred[:, :n] if pred is not None else None), None

    def first_radius(self, origin: Points, targets: Points, n: int, offsets: np.ndarray) -> float:
        """A search radius (seconds) that most likely holds the ``n`` targets nearest the origin: the
        n-th straight-line distance at the median speed of the roads, × 1.25, plus the spread of the
        targets' offsets (turnout), at least a minute. Only a first guess (see ``nearest_by_eta``)."""
        if not len(targets) or n <= 0:
            return 60.0
        metres = np.hypot(*(targets.xy - origin.xy[0]).T)
        nth = float(np.partition(metres, min(n, len(metres)) - 1)[min(n, len(metres)) - 1])
        spread = float(np.max(offsets) - np.min(offsets)) if len(offsets) else 0.0
        return max(60.0, 1.25 * nth / self.median_speed + spread)

    @property
    def median_speed(self) -> float:
        """Median speed of the open road directions, m/s (a scale for search radii)."""
        if not hasattr(self, "_median_speed"):
            seconds = np.concatenate([self.cost, self.reverse_cost])
            metres = np.concatenate([self.length, self.length])
            ok = seconds > 0
            self._median_speed = float(np.median(metres[ok] / seconds[ok])) if ok.any() else 10.0
        return self._median_speed

    def _take_buffer(self, reverse: bool, seeds: int, arcs: int) -> _SearchBuffer:
        with self._buffer_lock:
            free = self._buffers[reverse]
            for i, buffer in enumerate(free):
                if buffer.fits(seeds, arcs):
                    return free.pop(i)
        indptr, indices, data = ((self.r_indptr, self.r_indices, self.r_data) if reverse
                                 else (self.f_indptr, self.f_indices, self.f_data))
        return _SearchBuffer(indptr, indices, data, max(seeds, 8), max(arcs, 16))

    def _give_back(self, reverse: bool, buffer: _SearchBuffer) -> None:
        with self._buffer_lock:
            free = self._buffers[reverse]
            if len(free) < BUFFERS_KEPT:
                free.append(buffer)

    def arrival(self, dist: np.ndarray, targets: Points, mask: CostMask | None, *, reverse: bool,
                origin: Points | None = None, origin_offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Travel time between the search's origin and each target point, read off the vertex distances
        ``dist`` of one search. Returns (seconds, how) with how = 0 via the edge's source vertex, 1 via
        its target vertex, 2 directly along the origin's own edge."""
        fwd, bwd = self.edge_costs(mask)
        e, g = targets.edge, targets.fraction
        if reverse:  # from the target to the origin: leave along e to v, or against e to u
            via_v = _part(1 - g, fwd[e]) + dist[self.v[e]]
            via_u = _part(g, bwd[e]) + dist[self.u[e]]
        else:  # from the origin to the target: arrive along e from u, or against e from v
            via_u = dist[self.u[e]] + _part(g, fwd[e])
            via_v = dist[self.v[e]] + _part(1 - g, bwd[e])
        times = np.stack([via_u, via_v, np.full(len(e), INF)])
        if origin is not None:
            oe, of = int(origin.edge[0]), float(origin.fraction[0])
            same = np.flatnonzero(e == oe)
            if len(same):
                gs = g[same]
                # forward along the edge needs the later point downstream of the earlier one
                ahead = gs >= of if not reverse else gs <= of
                along = np.where(ahead, _part(np.abs(gs - of), fwd[oe]), _part(np.abs(gs - of), bwd[oe]))
                times[2, same] = origin_offset + along
        how = np.argmin(times, axis=0)
        return times[how, np.arange(len(e))], how

    # --- routes ---------------------------------------------------------------------------------
    def arcs_along(self, walk: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For consecutive vertices of a walk, the cheapest open arc between each pair (parallel roads
        have several): (edge indices, +1 along the geometry / -1 against it). ``weights``: forward CSR
        weights under the request's mask."""
        return self._arcs_between(walk[:-1], walk[1:], weights)

    def _arcs_between(self, a: np.ndarray, b: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The cheapest open arc a[i] → b[i] for every pair (see ``arcs_along``)."""
        if not len(a):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        lo, hi = self.f_indptr[a], self.f_indptr[a + 1]
        width = int((hi - lo).max())
        slots = lo[:, None] + np.arange(width)[None, :]
        valid = slots < hi[:, None]
        slots = np.where(valid, slots, 0)
        cost = np.where(valid & (self.f_indices[slots] == b[:, None]), weights[slots], INF)
        best = self.f_arc[slots[np.arange(len(a)), np.argmin(cost, axis=1)]]
        return best % self.n_edges, np.where(best < self.n_edges, 1, -1)

    def route(self, pred: np.ndarray, origin: Points, target: Points, how: int, seconds: float,
              mask: CostMask | None, *, reverse: bool) -> Route:
        """The route of one target from one search's predecessors (``how`` from ``arrival``); see
        ``routes``."""
        return self.routes(pred, origin, target, np.array([how]), np.array([seconds], dtype=float), mask,
                           reverse=reverse)[0]

    def routes(self, pred: np.ndarray, origin: Points, targets: Points, how: np.ndarray, seconds: np.ndarray,
               mask: CostMask | None, *, reverse: bool) -> list[Route]:
        """The routes of several targets from one search's predecessors (``how`` from ``arrival``), built
        together: one walk up the predecessor tree for all of them, arcs and coordinates gathered as
        arrays (a route each in Python cost 0.1 ms; 50 of them were most of a dispatch).

        Forward searches route origin → target; reverse searches (dispatch) route target → origin,
        which is the direction the unit drives. Each route: the partial first edge, whole edges, the
        partial last edge, repeated points dropped.
        """
        n = self.n_vertices
        how = np.asarray(how, dtype=np.int64)
        seconds_l = np.asarray(seconds, dtype=float).tolist()
        oe, of = int(origin.edge[0]), float(origin.fraction[0])
        tf_l = np.asarray(targets.fraction, dtype=float).tolist()
        out: list[Route] = [None] * len(targets)  # type: ignore[list-item]
        for i in np.flatnonzero(how == 2).tolist():  # along the shared edge
            a, b = (tf_l[i], of) if reverse else (of, tf_l[i])
            out[i] = Route(seconds_l[i], abs(b - a) * float(self.length[oe]), self._piece(oe, a, b),
                           [(oe, 1 if b >= a else -1)])
        net = np.flatnonzero(how != 2)
        if not len(net):
            return out
        te = np.asarray(targets.edge, dtype=np.int64)[net]
        # every chain at once: from the target's exit (reverse) / entry (forward) vertex to the seed
        cur = np.where(how[net] == 0, self.u[te], self.v[te])
        columns, alive = [cur], np.ones(len(net), dtype=bool)
        while True:
            p = pred[cur]
            alive &= (p != NO_VERTEX) & (p < n)
            if not alive.any():
                break
            cur = np.where(alive, p, cur)
            columns.append(np.where(alive, p, -1))
        chains = np.stack(columns)
        lens = (chains >= 0).sum(axis=0)
        offs = np.concatenate([[0], np.cumsum(lens)])
        pos = np.arange(offs[-1]) - np.repeat(offs[:-1], lens)
        # reverse search: the chain is the driving order; forward search: the chain backwards
        rows = pos if reverse else np.repeat(lens, lens) - 1 - pos
        walks = chains[rows, np.repeat(np.arange(len(net)), lens)]
        pair = np.flatnonzero(pos[1:] != 0)  # consecutive vertices of one walk
        edges, directions = self._arcs_between(walks[pair], walks[pair + 1], self._weights(mask, False))
        arc_offs = offs - np.arange(len(offs))  # a walk of l vertices has l - 1 arcs
        first_v, last_v = walks[offs[:-1]], walks[offs[1:] - 1]
        oe_a = np.full(len(net), oe)
        start_edge, end_edge = (te, oe_a) if reverse else (oe_a, te)
        tf = np.asarray(targets.fraction, dtype=float)[net]
        of_a = np.full(len(net), of)
        start_f, end_f = (tf, of_a) if reverse else (of_a, tf)
        first_f = np.where(first_v == self.u[start_edge], 0.0, 1.0)
        last_f = np.where(last_v == self.u[end_edge], 0.0, 1.0)
        # the partial first and last edges, then the whole edges between, as one coordinate array
        p_edges = np.concatenate([start_edge, end_edge])
        p_coords, p_counts = self._pieces(p_edges, np.concatenate([start_f, last_f]),
                                          np.concatenate([first_f, end_f]))
        a_counts = self._ptr[edges + 1] - self._ptr[edges]
        a_total = int(a_counts.sum())
        a_pos = np.arange(a_total) - np.repeat(np.cumsum(a_counts) - a_counts, a_counts)
        a_idx = np.where(np.repeat(directions > 0, a_counts), np.repeat(self._ptr[edges], a_counts) + a_pos,
                         np.repeat(self._ptr[edges + 1] - 1, a_counts) - a_pos)
        k = len(net)
        head_n, tail_n = p_counts[:k], p_counts[k:]
        arc_n = np.add.reduceat(np.append(a_counts, 0), arc_offs[:-1]) * (np.diff(arc_offs) > 0)
        total = head_n + arc_n + tail_n
        r_offs = np.concatenate([[0], np.cumsum(total)])
        p_offs = np.concatenate([[0], np.cumsum(p_counts)])
        # where every output row comes from: [pieces, edge coordinates] stacked
        source = np.concatenate([p_coords, self._coords[a_idx]])
        index = np.empty(int(r_offs[-1]), dtype=np.int64)
        owner = np.repeat(np.arange(k), total)
        q = np.arange(len(index)) - r_offs[owner]
        head, tail = q < head_n[owner], q >= (head_n + arc_n)[owner]
        mid = ~head & ~tail
        index[head] = p_offs[owner[head]] + q[head]
        index[tail] = p_offs[k + owner[tail]] + q[tail] - (head_n + arc_n)[owner[tail]]
        a_start = np.concatenate([[0], np.cumsum(arc_n)])
        index[mid] = len(p_coords) + a_start[owner[mid]] + q[mid] - head_n[owner[mid]]
        coords = source[index]
        keep = np.ones(len(coords), dtype=bool)
        keep[1:] = np.any(coords[1:] != coords[:-1], axis=1)
        keep[r_offs[:-1]] = True
        kept_offs = np.concatenate([[0], np.cumsum(np.add.reduceat(keep.astype(np.int64), r_offs[:-1]))])
        coords = coords[keep]
        lengths = self.length[edges]
        edges_l, directions_l = edges.tolist(), directions.tolist()
        for j, i in enumerate(net.tolist()):
            a0, a1 = int(arc_offs[j]), int(arc_offs[j + 1])
            se, ee = int(start_edge[j]), int(end_edge[j])
            sf, ef, ff, lf = float(start_f[j]), float(end_f[j]), float(first_f[j]), float(last_f[j])
            metres = (abs(ff - sf) * self.length[se] + float(lengths[a0:a1].sum()) + abs(ef - lf) * self.length[ee])
            used = ([(se, 1 if ff >= sf else -1)]
                    + list(zip(edges_l[a0:a1], directions_l[a0:a1], strict=True))
                    + [(ee, 1 if ef >= lf else -1)])
            out[i] = Route(seconds_l[i], float(metres), coords[kept_offs[j]:kept_offs[j + 1]], used)
        return out

    def _pieces(self, edges: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``_piece`` for many (edge, a, b) at once, to the bit: (coordinates one after another, the
        number of each). The end points are interpolated as numpy's ``interp`` does."""
        edges = np.asarray(edges, dtype=np.int64)
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        lo_f, hi_f = np.minimum(a, b), np.maximum(a, b)
        lo, cnt = self._ptr[edges], self._ptr[edges + 1] - self._ptr[edges]
        owner = np.repeat(np.arange(len(edges)), cnt)
        starts = np.cumsum(cnt) - cnt
        idx = np.repeat(lo, cnt) + np.arange(int(cnt.sum())) - np.repeat(starts, cnt)
        key = self._key[idx] - 2.0 * edges[owner]
        xy = self._coords[idx]
        ends = [_interp_rows(x, key, xy, owner, starts, cnt) for x in (lo_f, hi_f)]
        inner = (key > lo_f[owner]) & (key < hi_f[owner])
        inner_n = np.bincount(owner[inner], minlength=len(edges))
        counts = inner_n + 2
        offs = np.cumsum(counts) - counts
        out = np.empty((int(counts.sum()), 2))
        forward = b >= a
        out[np.where(forward, offs, offs + counts - 1)] = ends[0]
        out[np.where(forward, offs + counts - 1, offs)] = ends[1]
        inner_rank = np.arange(int(inner.sum())) - np.repeat(np.cumsum(inner_n) - inner_n, inner_n)
        inner_owner = owner[inner]
        out[np.where(forward[inner_owner], offs[inner_owner] + 1 + inner_rank,
                     offs[inner_owner] + counts[inner_owner] - 2 - inner_rank)] = xy[inner]
        return out, counts

    def _piece(self, edge: int, a: float, b: float) -> np.ndarray:
        """Coordinates of edge ``edge`` from fraction a to fraction b (b < a runs against the edge)."""
        lo, hi = self._ptr[edge], self._ptr[edge + 1]
        coords, key = self._coords[lo:hi], self._key[lo:hi] - 2.0 * edge
        lo_f, hi_f = min(a, b), max(a, b)
        inner = coords[(key > lo_f) & (key < hi_f)]
        ends = np.column_stack([np.interp([lo_f, hi_f], key, coords[:, 0]), np.interp([lo_f, hi_f], key, coords[:, 1])])
        out = np.concatenate([ends[:1], inner, ends[1:]])
        return out if b >= a else out[::-1]

    def interpolate(self, edges: np.ndarray, fractions: np.ndarray) -> np.ndarray:
        """Points at ``fractions`` along ``edges`` (vectorised; storage CRS)."""
        key = edges * 2.0 + np.clip(fractions, 0.0, 1.0)
        i = self._ptr[edges]
        bent = np.flatnonzero(self._ptr[edges + 1] - i > 2)  # straight edges need no search
        if len(bent):
            e = edges[bent]
            i[bent] = np.clip(np.searchsorted(self._key, key[bent], side="right") - 1, self._ptr[e],
                              self._ptr[e + 1] - 2)
        k0, k1 = self._key[i], self._key[i + 1]
        span = np.where(k1 > k0, k1 - k0, 1.0)
        t = np.clip((key - k0) / span, 0.0, 1.0)[:, None]
        return self._coords[i] * (1 - t) + self._coords[i + 1] * t

    def interpolate_runs(self, edges: np.ndarray, counts: np.ndarray, fractions: np.ndarray) -> np.ndarray:
        """``interpolate(np.repeat(edges, counts), fractions)`` to the bit, for samples that come in runs
        along one edge each: what depends on the edge alone is gathered once per edge and repeated."""
        edges = np.asarray(edges, dtype=np.int64)
        fractions = np.asarray(fractions, dtype=float)
        i = self._ptr[edges]
        k0, k1 = self._key[i], self._key[i + 1]
        span = np.where(k1 > k0, k1 - k0, 1.0)
        key = np.repeat(edges * 2.0, counts) + np.clip(fractions, 0.0, 1.0)
        t = np.clip((key - np.repeat(k0, counts)) / np.repeat(span, counts), 0.0, 1.0)[:, None]
        out = (np.repeat(self._coords[i], counts, axis=0) * (1 - t)
               + np.repeat(self._coords[i + 1], counts, axis=0) * t)
        bent = np.flatnonzero(np.repeat(self._ptr[edges + 1] - i > 2, counts))
        if len(bent):  # edges with inner vertices: the general way, for their samples only
            out[bent] = self.interpolate(np.repeat(edges, counts)[bent], fractions[bent])
        return out


def _interp_rows(x: np.ndarray, key: np.ndarray, xy: np.ndarray, owner: np.ndarray, starts: np.ndarray,
                 counts: np.ndarray) -> np.ndarray:
    """``np.interp(x[p], key[piece p], xy[piece p])`` for every piece p at once and to the bit (numpy's
    rule: below the first key the first value, above the last the last, on a key its value, else
    slope·(x − x_j) + y_j with slope = (y_{j+1} − y_j)/(x_{j+1} − x_j))."""
    j = np.add.reduceat((key <= x[owner]).astype(np.int64), starts) - 1
    last = starts + counts - 1
    jj = starts + np.clip(j, 0, counts - 2)
    x0, x1 = key[jj], key[jj + 1]
    y0, y1 = xy[jj], xy[jj + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (y1 - y0) / (x1 - x0)[:, None]
        value = slope * (x - x0)[:, None] + y0
    on_key = (j >= 0) & (j <= counts - 1)
    exact = np.where(j >= 0, key[starts + np.clip(j, 0, counts - 1)] == x, False)
    value = np.where((on_key & ((j == counts - 1) | exact))[:, None], xy[starts + np.clip(j, 0, counts - 1)], value)
    value = np.where((x < key[starts])[:, None], xy[starts], value)
    return np.where((x > key[last])[:, None], xy[last], value)


def _part(fraction: np.ndarray | float, cost: np.ndarray | float) -> np.ndarray:
    """Seconds for a fraction of an edge: zero for a zero fraction even when the direction is closed
    (a point at fraction 0 is the vertex itself), inf for any other fraction of a closed direction."""
    with np.errstate(invalid="ignore"):
        return np.where(np.asarray(fraction) > 0, np.asarray(fraction) * cost, 0.0)


def _scaled(values: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """values × factor where inf factor means "closed" even for a zero cost (0·inf would be nan)."""
    return np.where(np.isinf(factor), INF, values * np.where(np.isinf(factor), 1.0, factor))


# --- dispatch ----------------------------------------------------------------------------------

@dataclass
class Candidate:
    """One unit's answer: index into the candidates given, travel and ETA seconds, route."""

    index: int
    travel_s: float
    eta_s: float
    route: Route | None


def nearest_by_eta(graph: RoadGraph, incident: Points, units: Points, turnout_s: np.ndarray, n: int, *,
                   mask: CostMask | None = None, first_limit_s: float | None = None,
                   with_routes: bool = True) -> tuple[list[Candidate], np.ndarray]:
    """The ``n`` units with the smallest ETA (travel to the incident + turnout) in one search on the
    reversed graph, bounded, widened (doubled) only when the radius does not prove the answer: every
    unit not reached within the radius takes longer than it, so once the n-th ETA is within radius +
    the smallest turnout, no unit outside can come before. The answer is the same for any radius;
    only the work differs (a search costs with the area it covers: 0.6 ms for 10 min, 27 ms for 40
    min at 500,000 edges). Default first radius: the n-th nearest unit's straight-line distance at
    the network's median speed, plus a margin (``first_limit_s`` overrides).

    Returns the chosen candidates (ETA order) and every unit's travel time (inf where not reached
    within the final radius — those units are slower than every chosen one).
    """
    turnout_s = np.asarray(turnout_s, dtype=float)
    seeds = graph.seeds(incident, mask, reverse=True)
    min_turnout = float(turnout_s.min()) if len(turnout_s) else 0.0
    limit = first_limit_s if first_limit_s is not None else graph.first_radius(incident, units, n, turnout_s)
    while True:
        dist, pred, _ = graph.search(seeds, reverse=True, mask=mask, limit=limit, predecessors=with_routes)
        travel, how = graph.arrival(dist[0], units, mask, reverse=True, origin=incident)
        exact = travel <= limit
        eta = np.where(exact, travel + turnout_s, INF)
        order = np.argsort(eta, kind="stable")[: max(n, 0)]
        proven = len(order) == n and (n == 0 or eta[order[-1]] <= limit + min_turnout)
        if proven or np.isinf(limit) or exact.all():
            break
        limit = limit * 2 if limit * 2 < 86_400 else INF
    order = order[np.isfinite(eta[order])]
    routes: list[Route | None] = [None] * len(order)
    if with_routes and len(order):
        routes = list(graph.routes(pred[0], incident, units.take(order), how[order], travel[order], mask,
                                   reverse=True))
    chosen = [Candidate(int(i), float(travel[i]), float(eta[i]), route)
              for i, route in zip(order.tolist(), routes, strict=True)]
    return chosen, np.where(exact, travel, INF)


def route_between(graph: RoadGraph, origin: Points, target: Points, mask: CostMask | None = None) -> Route | None:
    """The fastest route from one attached point to another (None when unreachable)."""
    seeds = graph.seeds(origin, mask, reverse=False)
    dist, pred, _ = graph.search(seeds, reverse=False, mask=mask, predecessors=True)
    seconds, how = graph.arrival(dist[0], target, mask, reverse=False, origin=origin)
    if not np.isfinite(seconds[0]):
        return None
    return graph.route(pred[0], origin, target, int(how[0]), float(seconds[0]), mask, reverse=False)


def travel_time_matrix(graph: RoadGraph, origins: Points, destinations: Points, mask: CostMask | None = None,
                       chunk: int | None = None, workers: int | None = None) -> np.ndarray:
    """Seconds from every origin to every destination (inf: unreachable), one search per origin in
    chunks that keep each distance block under ~32 MB, the chunks shared among ``workers`` threads
    (default: the machine's cores, at most MATRIX_WORKERS; scipy's Dijkstra runs without the GIL).
    Each row is one origin's own search, so the answer does not depend on the split."""
    out = np.full((len(origins), len(destinations)), INF)
    chunk = chunk or max(1, min(128, 4_000_000 // max(graph.n_vertices, 1)))
    fwd, bwd = graph.edge_costs(mask)
    e, g = destinations.edge, destinations.fraction
    into_u, into_v = _part(g, fwd[e]), _part(1 - g, bwd[e])
    du, dv = graph.u[e], graph.v[e]

    def block(start: int) -> None:
        part = origins.take(np.arange(start, min(start + chunk, len(origins))))
        dist, _, _ = graph.search(graph.seeds(part, mask, reverse=False), reverse=False, mask=mask)
        out[start:start + len(part)] = np.minimum(dist[:, du] + into_u, dist[:, dv] + into_v)
        for k in range(len(part)):  # a destination on the origin's own edge may be reached directly
            same = np.flatnonzero(e == part.edge[k])
            if len(same):
                times, _ = graph.arrival(dist[k], destinations.take(same), mask, reverse=False, origin=part.take([k]))
                out[start + k, same] = times

    starts = list(range(0, len(origins), chunk))
    workers = min(workers or MATRIX_WORKERS, len(starts))
    if workers > 1:
        with ThreadPoolExecutor(workers, thread_name_prefix="emergency-matrix") as pool:
            list(pool.map(block, starts))
    else:
        for start in starts:
            block(start)
    return out


# --- isochrones and coverage -------------------------------------------------------------------

@dataclass
class Reach:
    """Result of a search from one or more origins: vertex times, the nearest origin per vertex and
    the polygons reached within each cutoff (storage CRS)."""

    vertex_s: np.ndarray
    nearest: np.ndarray | None
    polygons: list[BaseGeometry]


def reach(graph: RoadGraph, origins: Points, cutoffs_s: Sequence[float], *, mask: CostMask | None = None,
          offsets_s: np.ndarray | None = None, cell_m: float = 25.0, buffer_m: float = 50.0,
          hole_max_m2: float = 40_000.0) -> Reach:
    """Where the origins get to within each cutoff (seconds), as polygons that include partly reached
    edges. ``offsets_s`` delays an origin (a station's turnout). One multi-source search.

    ``cell_m`` and ``buffer_m`` are the grid and the buffer of the reached network (both grow for a
    city-wide polygon, see MAX_CELLS); holes up to ``hole_max_m2`` (a block ringed by reached streets)
    are filled.
    """
    cutoffs = sorted(float(c) for c in cutoffs_s)
    limit = cutoffs[-1] if cutoffs else 0.0
    seeds = graph.seeds(origins, mask, reverse=False, offsets=offsets_s)
    dist, _, nearest = graph.search(seeds, reverse=False, mask=mask, limit=limit, min_only=True,
                                    predecessors=len(origins) > 1)
    field, transform = _reach_field(graph, dist, origins, offsets_s, mask, limit, cell_m, buffer_m)
    polygons = [_polygonise(field, transform, cutoff, hole_max_m2) for cutoff in cutoffs]
    return Reach(dist, nearest, polygons)


def _reach_field(graph: RoadGraph, dist: np.ndarray, origins: Points, offsets_s: np.ndarray | None,
                 mask: CostMask | None, limit: float, cell_m: float, buffer_m: float
                 ) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Earliest arrival time per grid cell within ``buffer_m`` of the reached network."""
    fwd, bwd = graph.edge_costs(mask)
    du, dv = dist[graph.u], dist[graph.v]
    candidate = (np.minimum(du, dv) <= limit)
    candidate[origins.edge] = True
    edges = np.flatnonzero(candidate)
    # a city-wide polygon need not be drawn at street resolution: the grid stays under MAX_CELLS
    if len(edges):  # the extent of the edges' ends (min and max per axis, from contiguous columns)
        ue, ve = graph.u[edges], graph.v[edges]
        span = np.array([max(c[ue].max(), c[ve].max()) - min(c[ue].min(), c[ve].min())
                         for c in (graph.vertex_x, graph.vertex_y)]) + 2 * buffer_m
        cell_m = max(cell_m, float(np.sqrt(span[0] * span[1] / MAX_CELLS)))
        buffer_m = max(buffer_m, cell_m)
    # samples every buffer length: the discs of neighbouring samples overlap, so the buffered line has
    # no gaps (its width dips to √3/2 of the buffer between samples)
    step = buffer_m
    counts = np.maximum(2, np.ceil(graph.length[edges] / step).astype(np.int64) + 1)
    owner = np.repeat(edges, counts)
    start = np.repeat(np.cumsum(counts) - counts, counts)
    t = (np.arange(len(owner)) - start) / np.repeat(counts - 1, counts)
    times = np.minimum(du[owner] + _part(t, fwd[owner]), dv[owner] + _part(1 - t, bwd[owner]))
    offsets = np.zeros(len(origins)) if offsets_s is None else np.asarray(offsets_s, dtype=float)
    for k in range(len(origins)):  # along the origin's own edge, both ways from the point
        oe, of = int(origins.edge[k]), float(origins.fraction[k])
        on = owner == oe
        tk = t[on]
        along = np.where(tk >= of, _part(tk - of, fwd[oe]), _part(of - tk, bwd[oe])) + offsets[k]
        times[on] = np.minimum(times[on], along)
    keep = times <= limit
    xy = graph.interpolate_runs(edges, counts, t)[keep]
    times = times[keep]
    reached_vertices = np.flatnonzero(dist <= limit)
    xy = np.concatenate([xy, graph.vertex_xy[reached_vertices], origins.xy])
    times = np.concatenate([times, dist[reached_vertices], offsets])
    if not len(xy):
        return np.full((1, 1), INF), (0.0, 0.0, cell_m)
    pad = buffer_m + 2 * cell_m
    x0, y1 = xy[:, 0].min() - pad, xy[:, 1].max() + pad
    width = int(np.ceil((xy[:, 0].max() + pad - x0) / cell_m))
    height = int(np.ceil((y1 - (xy[:, 1].min() - pad)) / cell_m))
    col = np.floor((xy[:, 0] - x0) / cell_m).astype(np.int64)
    row = np.floor((y1 - xy[:, 1]) / cell_m).astype(np.int64)
    field = np.full((height, width), INF)
    np.minimum.at(field.reshape(-1), row * width + col, times)  # flat: numpy's fast path, same minima
    radius = int(np.ceil(buffer_m / cell_m))
    if radius > 0:
        yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
        disc = (xx ** 2 + yy ** 2) * cell_m ** 2 <= buffer_m ** 2
        field = minimum_filter(field, footprint=disc, mode="constant", cval=INF)
    return field, (x0, y1, cell_m)


def _polygonise(field: np.ndarray, transform: tuple[float, float, float], cutoff: float,
                hole_max_m2: float) -> BaseGeometry:
    from affine import Affine
    from rasterio import features

    inside = field <= cutoff
    if not inside.any():
        return shapely.MultiPolygon()
    x0, y1, cell = transform
    # the inside of a block ringed by reached streets is served from them: fill holes up to a block
    holes, count = label(~inside)
    if count:
        sizes = np.bincount(holes.ravel())
        edge_labels = np.unique(np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]]))
        small = sizes * cell * cell <= hole_max_m2
        small[0] = False
        small[edge_labels] = False
        inside |= small[holes]
    shapes = features.shapes(inside.astype(np.uint8), mask=inside, transform=Affine(cell, 0, x0, 0, -cell, y1),
                             connectivity=8)
    polygons = [shapely.geometry.shape(geom) for geom, value in shapes if value == 1]
    merged = shapely.union_all(polygons) if len(polygons) > 1 else polygons[0]
    merged = shapely.simplify(merged, 0.0)  # drop the collinear corners of the cell staircase
    return merged if merged.geom_type == "MultiPolygon" else shapely.MultiPolygon([merged])
