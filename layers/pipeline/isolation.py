"""Burst isolation on the in-memory graph: segment, boundary valves, collateral outage, failed valves.

Pure array work on a ``NetworkGraph`` (index space, no database): the service turns the indices into
ids, places and people. Rules:

* The isolated segment of a pipe is its valve segment (topology.py). A valve that fails to close
  (``failed``) joins the segments on both its sides; this repeats until no failed valve is on the
  boundary, so several failed valves grow the ring as far as needed.
* Boundary valves are barrier valves with at least one pipe inside and at least one outside (or a
  dead-end valve with one pipe). Already-closed ones need no action; an open one whose far side has
  no path to a feeder once the ring is closed need not be closed.
* Customers cut off: those whose node lies in the segment, plus those (collateral) whose segment had
  a path to a source or tank before and has none once the segment is removed and its boundary valves
  are closed. Customers without supply before the burst are reported apart.
* On a one-way graph (topology.py: pumps, PRV/PSV and check valves pass supply forwards only) the
  paths are directed and supply is judged per supply cell, so part of a segment can lose supply; a
  boundary valve must be closed when water can reach it from its far side after the isolation.
* The water to drain is the isolated pipes' and that of the pipes which stay open to them behind the
  valves not closed: every unfed pipe from which water can still flow into the isolated segment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from layers.pipeline.topology import CLOSED, PIPE_CHECK, PIPE_CLOSED, NetworkGraph

# segments a subtree search may visit before a whole-network search is cheaper
TREE_LIMIT = 1000


@dataclass
class Isolation:
    """Result of one isolation, as indices into the graph's arrays."""

    pipe: int
    failed: np.ndarray
    segments: np.ndarray
    pipes: np.ndarray
    nodes: np.ndarray
    boundary: np.ndarray
    to_close: np.ndarray
    already_closed: np.ndarray
    not_needed: np.ndarray
    customers_inside: np.ndarray
    customers_collateral: np.ndarray
    customers_already_unfed: np.ndarray
    cut_off: np.ndarray  # segments that lose supply (collateral; on a one-way graph: wholly or in part)
    cut_cells: np.ndarray | None = None  # one-way graph: the supply cells that lose supply


def merged_segments(graph: NetworkGraph, pipe: int, failed: Iterable[int] = ()) -> np.ndarray:
    """The segment labels the isolation of ``pipe`` spans when the ``failed`` valves cannot close."""
    failed_set = {int(v) for v in failed}
    segs = [int(graph.pipe_seg[pipe])]
    seen = set(segs)
    if failed_set:
        for s in segs:  # grows while iterating: a breadth-first walk over failed rim valves
            for v in graph.seg_valves[s]:
                if v in failed_set:
                    for t in graph.valve_sides[v]:
                        if t not in seen:
                            seen.add(t)
                            segs.append(t)
    return np.array(sorted(seen), dtype=np.int64)


def isolate(graph: NetworkGraph, pipe: int, failed: Iterable[int] = (), *, tree_limit: int | None = None
            ) -> Isolation:
    """Isolate a burst on pipe index ``pipe``; ``failed`` are valve node indices that cannot close.
    ``tree_limit`` caps the supply-tree search (0 = go straight to the whole-network search)."""
    failed_set = {int(v) for v in failed}
    segs = merged_segments(graph, pipe, failed_set)
    inside = set(segs.tolist())
    pipes = graph.pipes_in(segs)
    boundary, far_sides, rim_failed = [], [], []
    for v in sorted({v for s in inside for v in graph.seg_valves[s]}):
        if v in failed_set:
            rim_failed.append(v)
            continue
        sides = graph.valve_sides[v]
        inner = [t in inside for t in sides]
        if not all(inner) or len(sides) == 1:
            boundary.append(v)
            far_sides.append(np.array(sorted(set(sides) - inside), dtype=np.int64))
    failed_arr = np.array(rim_failed, dtype=np.int64)
    boundary_arr = np.array(boundary, dtype=np.int64)
    limit = TREE_LIMIT if tree_limit is None else tree_limit
    nodes = np.concatenate([graph.nodes_in(segs), failed_arr])
    c_inside = graph.customers_in(segs)
    if graph.directed:
        return _isolate_directed(graph, pipe, segs, pipes, nodes, boundary, failed_arr, c_inside, limit)
    cut = graph.cut_off(segs, boundary_arr, limit)
    lost = np.zeros(graph.n_segments, dtype=bool)
    lost[cut] = True
    to_close, already, not_needed = [], [], []
    for v, far in zip(boundary, far_sides, strict=True):
        if graph.node_state[v] == CLOSED:
            already.append(v)
        elif len(far) and (graph.baseline_fed[far] & ~lost[far]).any():
            to_close.append(v)
        else:
            not_needed.append(v)
    return Isolation(
        pipe=pipe, failed=failed_arr, segments=segs, pipes=pipes, nodes=nodes, boundary=boundary_arr,
        to_close=np.array(to_close, dtype=np.int64), already_closed=np.array(already, dtype=np.int64),
        not_needed=np.array(not_needed, dtype=np.int64),
        customers_inside=c_inside,
        customers_collateral=graph.customers_in(cut),
        customers_already_unfed=np.setdiff1d(graph.unfed_customers, c_inside),
        cut_off=cut,
    )


def _isolate_directed(graph: NetworkGraph, pipe: int, segs: np.ndarray, pipes: np.ndarray, nodes: np.ndarray,
                      boundary: list[int], failed: np.ndarray, c_inside: np.ndarray, limit: int) -> Isolation:
    """The rest of ``isolate`` on a one-way graph: cut-off cells along directed paths, and a boundary
    valve to close when a fed cell outside can deliver water into it."""
    removed = set(graph.cells_of(segs).tolist())
    boundary_arr = np.array(boundary, dtype=np.int64)
    cut = graph.cells_cut_off(removed, boundary_arr, limit)
    lost = set(cut)
    inside = set(segs.tolist())
    to_close, already, not_needed = [], [], []
    for v in boundary:
        if graph.node_state[v] == CLOSED:
            already.append(v)
            continue
        feeding = False
        for q in graph.pipes_of(v).tolist():
            cell = int(graph.pipe_cell[q])
            if graph.pipe_seg[q] in inside or cell in lost or not graph.cell_baseline_fed[cell]:
                continue
            # the far pipe can push water into the valve unless it is closed or a check valve leaving it
            if graph.pipe_mode[q] == PIPE_CLOSED or (graph.pipe_mode[q] == PIPE_CHECK and graph.pipe_from[q] == v):
                continue
            feeding = True
            break
        (to_close if feeding else not_needed).append(v)
    cut_arr = np.array(sorted(lost), dtype=np.int64)
    return Isolation(
        pipe=pipe, failed=failed, segments=segs, pipes=pipes, nodes=nodes, boundary=boundary_arr,
        to_close=np.array(to_close, dtype=np.int64), already_closed=np.array(already, dtype=np.int64),
        not_needed=np.array(not_needed, dtype=np.int64),
        customers_inside=c_inside,
        customers_collateral=np.setdiff1d(graph.customers_in_cells(cut_arr), c_inside),
        customers_already_unfed=np.setdiff1d(graph.unfed_customers, c_inside),
        cut_off=np.array(sorted({int(graph.cell_seg[c]) for c in lost if graph.cell_seg[c] >= 0}), dtype=np.int64),
        cut_cells=cut_arr,
    )


def drained_pipes(graph: NetworkGraph, iso: Isolation) -> np.ndarray:
    """The pipes whose water drains out at the burst: the isolated ones, and every pipe without supply
    after the isolation from which water can still flow into them through valves left open (the
    "not needed" valves and what lies behind them)."""
    closed = set(iso.to_close.tolist()) | set(iso.already_closed.tolist())
    if graph.directed:
        removed = set(graph.cells_of(iso.segments).tolist())
        lost = set((iso.cut_cells if iso.cut_cells is not None else np.zeros(0, np.int64)).tolist())
        incoming: dict[int, list[tuple[int, int]]] = {}
        for a, b, v in zip(graph.cell_src.tolist(), graph.cell_dst.tolist(), graph.cell_valve.tolist(), strict=True):
            incoming.setdefault(b, []).append((a, v))

        def unfed(c: int) -> bool:
            return c in lost or not graph.cell_baseline_fed[c]

        drained, stack = set(removed), list(removed)
        while stack:
            u = stack.pop()
            for w, v in incoming.get(u, []):
                if w not in drained and v not in closed and unfed(w):
                    drained.add(w)
                    stack.append(w)
        parts = [graph.cell_pipes[graph.cell_pipe_ptr[c]:graph.cell_pipe_ptr[c + 1]] for c in sorted(drained)]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
    lost_segments = set(iso.cut_off.tolist())
    drained, stack = set(iso.segments.tolist()), list(iso.segments.tolist())
    neighbours: dict[int, list[tuple[int, int]]] = {}
    for a, b, v in zip(graph.edge_a.tolist(), graph.edge_b.tolist(), graph.edge_valve.tolist(), strict=True):
        neighbours.setdefault(a, []).append((b, v))
        neighbours.setdefault(b, []).append((a, v))
    while stack:
        u = stack.pop()
        for w, v in neighbours.get(u, []):
            if w not in drained and v not in closed and (w in lost_segments or not graph.baseline_fed[w]):
                drained.add(w)
                stack.append(w)
    return graph.pipes_in(np.array(sorted(drained), dtype=np.int64))


def network_distances(graph: NetworkGraph, iso: Isolation, fraction: float = 0.5) -> dict[int, float]:
    """Distance in metres along the segment's pipes from the burst point to each node of the segment
    and its boundary valves (for ordering the valves the crew closes)."""
    pipes = iso.pipes
    a, b = graph.pipe_from[pipes], graph.pipe_to[pipes]
    ok = (a >= 0) & (b >= 0)
    local, inverse = np.unique(np.concatenate([a[ok], b[ok]]), return_inverse=True)
    n = len(local)
    if n == 0:
        return {}
    ia, ib = inverse[: ok.sum()], inverse[ok.sum():]
    w = np.maximum(graph.pipe_length[pipes][ok], 1e-6)
    matrix = coo_matrix((np.concatenate([w, w]), (np.concatenate([ia, ib]), np.concatenate([ib, ia]))),
                        shape=(n, n)).tocsr()
    burst_len = float(graph.pipe_length[iso.pipe])
    starts, offsets = [], []
    for end, off in ((graph.pipe_from[iso.pipe], fraction * burst_len),
                     (graph.pipe_to[iso.pipe], (1 - fraction) * burst_len)):
        if end >= 0:
            starts.append(int(np.searchsorted(local, end)))
            offsets.append(off)
    dist = dijkstra(matrix, directed=False, indices=starts)
    best = np.min(np.atleast_2d(dist) + np.array(offsets)[:, None], axis=0)
    return {int(node): float(d) for node, d in zip(local, best, strict=True)}


class AfterIsolationTree:
    """Breadth-first supply tree of the segment graph without the isolated segments: removing one
    more segment can only cut off its subtree here, and of that only what has no edge leading out."""

    def __init__(self, graph: NetworkGraph, inside: set[int], limit: int = TREE_LIMIT) -> None:
        from scipy.sparse.csgraph import breadth_first_order

        self.graph, self.inside, self.limit = graph, inside, limit
        n = graph.n_segments
        gone = np.zeros(n, dtype=bool)
        gone[list(inside)] = True
        keep = ~(gone[graph.edge_a] | gone[graph.edge_b])
        feeders = np.flatnonzero(graph.feeder_seg & ~gone)
        rows = np.concatenate([graph.edge_a[keep], np.full(len(feeders), n)])
        cols = np.concatenate([graph.edge_b[keep], feeders])
        matrix = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n + 1, n + 1)).tocsr()
        _, pred = breadth_first_order(matrix, n, directed=False, return_predecessors=True)
        parents = np.where(pred[:n] >= 0, pred[:n], n + 1)
        self.order = np.argsort(parents, kind="stable")
        self.ptr = np.zeros(n + 3, dtype=np.int64)
        np.cumsum(np.bincount(parents, minlength=n + 2), out=self.ptr[1:])

    def cut_by(self, b: int, lost: set[int]) -> list[int] | None:
        members: set[int] = set()
        stack = [b]
        while stack:
            u = stack.pop()
            kids = self.order[self.ptr[u]:self.ptr[u + 1]].tolist()
            members.update(kids)
            stack.extend(kids)
            if len(members) > self.limit:
                return None
        return self.graph.stranded(members, self.inside | {b} | lost)


def second_ring(graph: NetworkGraph, iso: Isolation) -> list[dict[str, object]]:
    """For each valve to close: what happens if it cannot be closed (the fallback valves and the
    extra pipes and customers), prepared before the crew leaves.

    The segment beyond the failed valve joins the isolation; the supply tree answers what the two
    together cut off (see NetworkGraph.cut_off), with a full recompute as the fallback.
    """
    out = []
    inside = set(iso.segments.tolist())
    lost = set(iso.cut_off.tolist())
    failed = set(iso.failed.tolist())
    base_close = set(iso.to_close.tolist())
    base_customers = len(iso.customers_inside) + len(iso.customers_collateral)
    if graph.directed:  # one-way supply: each fallback recomputed (the segment-level trees do not apply)
        for v in iso.to_close.tolist():
            alt = isolate(graph, iso.pipe, [*failed, v])
            out.append({"valve": v, "fallback_valves": [int(x) for x in alt.to_close if int(x) not in base_close],
                        "extra_pipes": int(len(alt.pipes) - len(iso.pipes)),
                        "extra_customers": int(len(alt.customers_inside) + len(alt.customers_collateral)
                                               - base_customers)})
        return out
    tee_on_ring = graph._multi_side(iso.boundary, inside)
    tree: AfterIsolationTree | None = None
    for v in iso.to_close.tolist():
        far = sorted(set(graph.valve_sides[v]) - inside)
        b = far[0] if len(far) == 1 else None
        rim = [] if b is None else [w for w in graph.seg_valves[b] if w != v and w not in failed]
        both = None
        if b is not None and not tee_on_ring and \
                not graph._multi_side(np.array(rim, dtype=np.int64), inside | {b}):
            both = graph._tree_cut(inside | {b}, TREE_LIMIT)
        if both is None and b is not None and not tee_on_ring and \
                not graph._multi_side(np.array(rim, dtype=np.int64), inside | {b}):
            # a trunk: the baseline subtree is too big; try the supply tree of the network as it
            # stands after the first isolation, built once for all valves of this answer
            tree = tree or AfterIsolationTree(graph, inside)
            extra = tree.cut_by(b, lost)
            both = None if extra is None else sorted(lost | set(extra))
        if both is None:
            alt = isolate(graph, iso.pipe, [*failed, v], tree_limit=0)  # the trees already gave up
            out.append({"valve": v, "fallback_valves": [int(x) for x in alt.to_close if int(x) not in base_close],
                        "extra_pipes": int(len(alt.pipes) - len(iso.pipes)),
                        "extra_customers": int(len(alt.customers_inside) + len(alt.customers_collateral)
                                               - base_customers)})
            continue
        lost_after = set(both)
        gone = inside | {b}
        fallback = []
        for w in rim:
            if graph.node_state[w] == CLOSED or w in base_close:
                continue
            beyond = set(graph.valve_sides[w]) - gone
            if any(graph.baseline_fed[t] and t not in lost_after for t in beyond):
                fallback.append(w)
        extra_customers = len(graph.customers_in([b])) + len(graph.customers_in(sorted(lost_after - lost)))
        out.append({"valve": v, "fallback_valves": sorted(fallback),
                     "extra_pipes": int(graph.seg_pipe_ptr[b + 1] - graph.seg_pipe_ptr[b]),
                     "extra_customers": int(extra_customers)})
    return out
