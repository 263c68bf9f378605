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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from layers.pipeline.topology import CLOSED, NetworkGraph


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
    cut_off: np.ndarray  # segments that lose supply (collateral)


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


def isolate(graph: NetworkGraph, pipe: int, failed: Iterable[int] = ()) -> Isolation:
    """Isolate a burst on pipe index ``pipe``; ``failed`` are valve node indices that cannot close."""
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
    cut = graph.cut_off(segs, boundary_arr)
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
    nodes = np.concatenate([graph.nodes_in(segs), failed_arr])
    c_inside = graph.customers_in(segs)
    return Isolation(
        pipe=pipe, failed=failed_arr, segments=segs, pipes=pipes, nodes=nodes, boundary=boundary_arr,
        to_close=np.array(to_close, dtype=np.int64), already_closed=np.array(already, dtype=np.int64),
        not_needed=np.array(not_needed, dtype=np.int64),
        customers_inside=c_inside,
        customers_collateral=graph.customers_in(cut),
        customers_already_unfed=np.setdiff1d(graph.unfed_customers, c_inside),
        cut_off=cut,
    )


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


def second_ring(graph: NetworkGraph, iso: Isolation) -> list[dict[str, object]]:
    """For each valve to close: what happens if it cannot be closed (the fallback valves and the
    extra pipes and customers), prepared before the crew leaves.

    The segment beyond the failed valve joins the isolation; only what that segment's removal cuts
    off is searched (from the state after the first isolation), with a full recompute as fallback.
    """
    out = []
    inside = set(iso.segments.tolist())
    lost = set(iso.cut_off.tolist())
    failed = set(iso.failed.tolist())
    for v in iso.to_close.tolist():
        far = sorted(set(graph.valve_sides[v]) - inside)
        extra_lost = graph.cut_off_more(inside, lost, far[0]) if len(far) == 1 else None
        if extra_lost is None:
            alt = isolate(graph, iso.pipe, [*failed, v])
            out.append({
                "valve": v,
                "fallback_valves": [int(x) for x in alt.to_close if int(x) not in set(iso.to_close.tolist())],
                "extra_pipes": int(len(alt.pipes) - len(iso.pipes)),
                "extra_customers": int(len(alt.customers_inside) + len(alt.customers_collateral)
                                       - len(iso.customers_inside) - len(iso.customers_collateral)),
            })
            continue
        b = far[0]
        gone = inside | {b}
        lost_after = lost | set(extra_lost)
        fallback = []
        for w in graph.seg_valves[b]:
            if w == v or w in failed or graph.node_state[w] == CLOSED:
                continue
            beyond = set(graph.valve_sides[w]) - gone
            if any(graph.baseline_fed[t] and t not in lost_after for t in beyond) and w not in iso.to_close:
                fallback.append(w)
        extra_customers = len(graph.customers_in([b])) + len(graph.customers_in(extra_lost))
        out.append({"valve": v, "fallback_valves": sorted(fallback),
                    "extra_pipes": int(graph.seg_pipe_ptr[b + 1] - graph.seg_pipe_ptr[b]),
                    "extra_customers": int(extra_customers)})
    return out
