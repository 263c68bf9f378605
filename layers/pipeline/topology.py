"""The in-memory network graph of one pipeline network, its valve segments and supply reachability.

How valves are modelled (and why it matches WNTR's ``valve_segments``):

* A pipe is an edge between two nodes. An isolation valve is a *node* on the pipe line (kind
  ``isolation_valve``) joining the pipes either side of it. A valve whose state is ``open`` or
  ``closed`` is a **barrier**: segments are the connected pieces of the network once every barrier
  node is taken out. A valve that is ``inoperable`` (or, for one query, "could not be closed") is an
  ordinary node that lets the segment pass through.
* Segment labelling is one ``connected_components`` call on a bipartite graph whose vertices are all
  pipes and all nodes, with an edge pipe—node for every pipe end whose node is not a barrier. A pipe's
  label is its segment; a non-barrier node shares the label of its pipes.
* Sources and tanks are feeders: a segment containing one is fed. Control valves (PRV, check) and
  pumps are ordinary nodes for segmentation — they are not isolation barriers (WNTR's segments).
* Supply reachability runs on the much smaller *segment graph*: vertices are segments, and each open
  barrier valve joins the segments of its pipes (a closed valve joins nothing). Collateral outage is
  what loses its path to a feeder once the burst segment(s) are gone and their valves closed. A
  breadth-first *supply tree* from the feeders over that graph, built with it, bounds the search:
  only the subtrees of the removed segments can lose supply (``cut_off``); a whole-network component
  search is the fallback for trunk mains near a source.

One-way supply. Physically, a pump, a PRV or PSV that is active, and a check valve (a node of
control type ``check``, or a pipe whose INP status is CV) pass water only from their inlet side; a
closed pump, control valve or pipe passes none. With ``one_way`` (the default) supply reachability
honours that: the network is cut further, at those elements, into *supply cells*, joined by directed
edges (open barrier valves join their cells both ways, a check pipe or a pump only forwards), and a
cell is fed when a directed path leads to it from a source or tank. Collateral outage is then what
loses every directed path; the supply tree becomes a breadth-first arborescence over the cells and
the same "only its subtrees can lose supply" bound applies. Without ``one_way`` every element is
two-way — WNTR's topological metric, physically wrong where pumps and check valves matter, kept for
comparison with it. A network without directed elements has one cell per segment and gets the
same answers either way.

The graph is built once per network and cached, keyed by the network's own graph version (bumped by
triggers on any change to its pipes, nodes or customers; other networks' edits leave it alone).

Pure: the service (layers/pipeline/service.py) reads the rows through the repository and passes them
in; this module builds the arrays, checks the topology and plans the topology build.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components
from shapely.ops import substring

from gis.crs import transformer
from layers.pipeline.models import CUSTOMER_CATEGORIES, NODE_KINDS, VALVE_STATES

KIND_CODE = {k: i for i, k in enumerate(NODE_KINDS)}
STATE_CODE = {s: i for i, s in enumerate(VALVE_STATES)}
VALVE = KIND_CODE["isolation_valve"]
OPEN, CLOSED, INOPERABLE = (STATE_CODE[s] for s in ("open", "closed", "inoperable"))
FEEDER_KINDS = np.array([KIND_CODE["source"], KIND_CODE["tank"]])
CATEGORY_CODE = {c: i for i, c in enumerate(CUSTOMER_CATEGORIES)}
# how a pipe passes supply: both ways, not at all (closed), or from from_node to to_node only (INP CV)
PIPE_OPEN, PIPE_CLOSED, PIPE_CHECK = 0, 1, 2
PIPE_MODE = {"open": PIPE_OPEN, "closed": PIPE_CLOSED, "check": PIPE_CHECK}
# how a node passes supply: as a junction, from its inlet pipe only, or not at all
NODE_PASS, NODE_ONE_WAY, NODE_CLOSED = 0, 1, 2
ONE_WAY_CONTROLS = ("PRV", "PSV", "check")  # control valves that pass flow one way while controlling


def node_mode(kind: str, control_type: str | None, link_state: str | None, inlet: int | None) -> int:
    """How a node passes supply (see the module docstring): pumps always forward only; PRV, PSV and
    check valves forward only unless fixed open; any pump or control valve closed passes nothing.
    Without a known inlet pipe the direction cannot be known and the node passes both ways (the
    topology check reports it)."""
    if kind not in ("pump", "control_valve"):
        return NODE_PASS
    if link_state == "closed":
        return NODE_CLOSED
    one_way = kind == "pump" or (control_type in ONE_WAY_CONTROLS and link_state != "open")
    return NODE_ONE_WAY if one_way and inlet is not None and inlet >= 0 else NODE_PASS


def _csr_groups(keys: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, order): members of group g are order[indptr[g]:indptr[g+1]]."""
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys, minlength=n_groups)
    indptr = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, order


@dataclass
class NetworkGraph:
    """Arrays describing one network. Index space: pipes 0..P-1, nodes 0..N-1 (not database ids)."""

    network_id: int
    utility: str
    name: str
    pipe_ids: np.ndarray
    pipe_codes: list[str]
    pipe_from: np.ndarray  # node index, -1 when the pipe has no start node
    pipe_to: np.ndarray
    pipe_length: np.ndarray
    pipe_diameter: np.ndarray  # mm, 0 when unknown
    pipe_mid: np.ndarray  # (P, 2) midpoint, storage CRS
    node_ids: np.ndarray
    node_codes: list[str]
    node_kind: np.ndarray
    node_state: np.ndarray  # -1 for non-valves
    node_xy: np.ndarray
    customer_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    customer_node: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    customer_category: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    customer_households: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    node_info: list[dict[str, Any]] = field(default_factory=list)  # attributes shown to crews
    pipe_geom: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))  # shapely lines
    version_key: tuple[int, ...] = ()
    pipe_mode: np.ndarray | None = None  # PIPE_OPEN / PIPE_CLOSED / PIPE_CHECK (default: all open)
    node_mode: np.ndarray | None = None  # NODE_PASS / NODE_ONE_WAY / NODE_CLOSED (default: all pass)
    node_inlet: np.ndarray | None = None  # pipe index a one-way node takes supply from, -1 otherwise
    pipe_stub: np.ndarray | None = None  # the short pieces between a node and an inserted valve
    pipe_link: list[str | None] | None = None  # the INP link a piece was cut from
    length_source: str = "drawn"  # which lengths pipe_length holds: drawn or recorded (INP)
    one_way: bool = True  # one-way supply through pumps and check valves; False: two-way (WNTR's)

    def __post_init__(self) -> None:
        self.pipe_index = {int(v): i for i, v in enumerate(self.pipe_ids)}
        self.node_index = {int(v): i for i, v in enumerate(self.node_ids)}
        n_nodes, n_pipes = len(self.node_ids), len(self.pipe_ids)
        # node → incident pipes (CSR)
        ends = np.concatenate([self.pipe_from, self.pipe_to])
        owners = np.concatenate([np.arange(n_pipes), np.arange(n_pipes)])
        keep = ends >= 0
        self.node_pipe_ptr, order = _csr_groups(ends[keep], n_nodes)
        self.node_pipes = owners[keep][order]
        self.is_valve = self.node_kind == VALVE
        self.is_feeder = np.isin(self.node_kind, FEEDER_KINDS)
        if self.pipe_mode is None:
            self.pipe_mode = np.zeros(n_pipes, dtype=np.int8)
        if self.node_mode is None:
            self.node_mode = np.zeros(n_nodes, dtype=np.int8)
        if self.node_inlet is None:
            self.node_inlet = np.full(n_nodes, -1, dtype=np.int64)
        if self.pipe_stub is None:
            self.pipe_stub = np.zeros(n_pipes, dtype=bool)
        if self.pipe_link is None:
            self.pipe_link = [None] * n_pipes
        self.segment()
        # directed supply only where it changes anything: a network without one-way or closed
        # elements keeps the segment-level search (one cell per segment)
        self.directed = bool(self.one_way and ((self.pipe_mode != PIPE_OPEN).any() or
                                               (self.node_mode != NODE_PASS).any()))
        if self.directed:
            self._build_cells()

    # --- segmentation -------------------------------------------------------------------------
    def segment(self) -> None:
        """Label valve segments and the segment graph (see module docstring)."""
        n_pipes, n_nodes = len(self.pipe_ids), len(self.node_ids)
        self.barrier = self.is_valve & (self.node_state != INOPERABLE)
        rows, cols = [], []
        for end in (self.pipe_from, self.pipe_to):
            ok = end >= 0
            ok[ok] = ~self.barrier[end[ok]]
            rows.append(np.flatnonzero(ok))
            cols.append(n_pipes + end[ok])
        r, c = np.concatenate(rows), np.concatenate(cols)
        size = n_pipes + n_nodes
        matrix = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(size, size)).tocsr()
        _, labels = connected_components(matrix, directed=False)
        # compact labels: segments are the components that hold a pipe or a non-barrier node
        member = np.concatenate([np.ones(n_pipes, bool), ~self.barrier])
        used, compact = np.unique(labels[member], return_inverse=True)
        full = np.full(size, -1, dtype=np.int64)
        full[member] = compact
        self.n_segments = len(used)
        self.pipe_seg = full[:n_pipes]
        self.node_seg = full[n_pipes:]
        self.seg_pipe_ptr, self.seg_pipes = _csr_groups(self.pipe_seg, self.n_segments)
        seg_of_nodes = np.where(self.node_seg >= 0, self.node_seg, self.n_segments)
        ptr, order = _csr_groups(seg_of_nodes, self.n_segments + 1)
        self.seg_node_ptr, self.seg_nodes = ptr[: self.n_segments + 1], order
        # valve sides: for each barrier valve, the segments of its pipes
        self.valve_nodes = np.flatnonzero(self.barrier)
        edges_a, edges_b, edge_valve = [], [], []
        for v in self.valve_nodes:
            segs = np.unique(self.pipe_seg[self.pipes_of(v)])
            if self.node_state[v] == OPEN and len(segs) > 1:
                for s in segs[1:]:
                    edges_a.append(segs[0])
                    edges_b.append(s)
                    edge_valve.append(v)
        # per valve: the segment of each of its pipes; per segment: the valves on its rim
        self.valve_sides: dict[int, list[int]] = {}
        self.seg_valves: list[list[int]] = [[] for _ in range(self.n_segments)]
        for v in self.valve_nodes.tolist():
            sides = self.pipe_seg[self.pipes_of(v)].tolist()
            self.valve_sides[v] = sides
            for s in set(sides):
                self.seg_valves[s].append(v)
        self.edge_a = np.asarray(edges_a, dtype=np.int64)
        self.edge_b = np.asarray(edges_b, dtype=np.int64)
        self.edge_valve = np.asarray(edge_valve, dtype=np.int64)
        self.feeder_seg = np.zeros(self.n_segments, dtype=bool)
        feeders = np.flatnonzero(self.is_feeder & (self.node_seg >= 0))
        self.feeder_seg[self.node_seg[feeders]] = True
        # customers on a barrier valve node take the segment of its first pipe
        cseg = self.node_seg[self.customer_node] if len(self.customer_node) else np.zeros(0, np.int64)
        for i in np.flatnonzero(cseg < 0):
            pipes = self.pipes_of(int(self.customer_node[i]))
            cseg[i] = self.pipe_seg[pipes[0]] if len(pipes) else -1
        self.customer_seg = cseg
        self.baseline_fed = self.fed_segments(np.zeros(0, np.int64), np.zeros(0, np.int64))
        # adjacency of the segment graph as Python lists: the local search below walks it
        adjacency: list[list[int]] = [[] for _ in range(self.n_segments)]
        for a, b in zip(self.edge_a.tolist(), self.edge_b.tolist(), strict=True):
            adjacency[a].append(b)
            adjacency[b].append(a)
        self.seg_adjacency = adjacency
        self._build_supply_tree()
        cseg_ok = np.where(self.customer_seg >= 0, self.customer_seg, self.n_segments)
        ptr, order = _csr_groups(cseg_ok, self.n_segments + 1)
        self.seg_customer_ptr, self.seg_customers = ptr[: self.n_segments + 1], order
        self.unfed_customers = np.flatnonzero(
            (self.customer_seg >= 0) & ~self.baseline_fed[np.where(self.customer_seg >= 0, self.customer_seg, 0)])
        _, base_labels = connected_components(self._segment_matrix(np.ones(len(self.edge_a), bool)),
                                              directed=False)
        self.base_component = base_labels
        self.component_feeders = np.bincount(base_labels, weights=self.feeder_seg.astype(float),
                                             minlength=base_labels.max() + 1 if len(base_labels) else 0)

    def _segment_matrix(self, keep: np.ndarray) -> csr_matrix:
        """The segment graph with only the ``keep`` edges, from a CSR structure built once (explicit
        zeros would count as edges in csgraph, so they are dropped)."""
        if not hasattr(self, "_csr_eid"):
            rows = np.concatenate([self.edge_a, self.edge_b])
            cols = np.concatenate([self.edge_b, self.edge_a])
            eid = np.concatenate([np.arange(len(self.edge_a))] * 2)
            order = np.lexsort((cols, rows))
            self._csr_indices = cols[order]
            self._csr_eid = eid[order]
            self._csr_indptr = np.zeros(self.n_segments + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows, minlength=self.n_segments), out=self._csr_indptr[1:])
        matrix = csr_matrix((keep[self._csr_eid].astype(np.int8), self._csr_indices, self._csr_indptr),
                            shape=(self.n_segments, self.n_segments))
        matrix.eliminate_zeros()
        return matrix

    def customers_in(self, segs: np.ndarray | list[int]) -> np.ndarray:
        parts = [self.seg_customers[self.seg_customer_ptr[s]:self.seg_customer_ptr[s + 1]] for s in segs]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def cut_off(self, removed: np.ndarray | list[int], boundary: np.ndarray, limit: int = 3000) -> np.ndarray:
        """Segments that had supply and lose it when ``removed`` segments are isolated (their
        ``boundary`` valves closed).

        Uses the supply tree built with the graph (a breadth-first tree from all feeders over the
        segment graph): a segment outside the subtrees of the removed ones keeps its tree path to a
        feeder, so only those subtrees can lose supply, and within them exactly the segments with no
        path to a segment outside. The search is over the subtrees only; past ``limit`` segments (a
        burst on a trunk main near a source) a whole-network component search answers instead, as it
        does when a closed valve joins two segments outside the removed set (a valve at a tee).
        """
        gone = {int(s) for s in removed}
        if self._multi_side(boundary, gone):
            return self._cut_off_full(np.array(sorted(gone), dtype=np.int64), boundary)
        lost = self._tree_cut(gone, limit)
        if lost is None:
            return self._cut_off_full(np.array(sorted(gone), dtype=np.int64), boundary)
        return np.array(sorted(lost), dtype=np.int64)

    def _multi_side(self, valves: np.ndarray, gone: set[int]) -> bool:
        """A closed valve joining two segments outside the removed set (a valve at a tee)."""
        for v in np.asarray(valves).tolist():
            if len(set(self.valve_sides[v]) - gone) > 1:
                return True
        return False

    def _build_supply_tree(self) -> None:
        n = self.n_segments
        feeders = np.flatnonzero(self.feeder_seg)
        rows = np.concatenate([self.edge_a, np.full(len(feeders), n)])
        cols = np.concatenate([self.edge_b, feeders])
        matrix = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n + 1, n + 1)).tocsr()
        _, pred = breadth_first_order(matrix, n, directed=False, return_predecessors=True)
        parents = np.where(pred[:n] >= 0, pred[:n], n + 1)
        ptr, order = _csr_groups(parents, n + 2)
        self.tree_children = [order[ptr[u]:ptr[u + 1]].tolist() for u in range(n)]

    def _tree_cut(self, gone: set[int], limit: int) -> list[int] | None:
        members: set[int] = set()
        stack = [s for s in gone if self.baseline_fed[s]]
        children = self.tree_children
        while stack:
            u = stack.pop()
            for c in children[u]:
                if c not in gone and c not in members:
                    members.add(c)
                    stack.append(c)
            if len(members) > limit:
                return None
        if not members:
            return []
        return self.stranded(members, gone)

    def stranded(self, members: set[int], gone: set[int]) -> list[int]:
        """The segments of ``members`` (cut from their feed in the supply tree) that stay unfed.

        A member touching a live segment outside the cut (not in ``gone``) is fed again by that side
        path, and so is every member it reaches; the rest has lost supply.
        """
        adjacency = self.seg_adjacency
        reached = {u for u in members if any(w not in members and w not in gone for w in adjacency[u])}
        stack = list(reached)
        while stack:
            u = stack.pop()
            for w in adjacency[u]:
                if w in members and w not in reached:
                    reached.add(w)
                    stack.append(w)
        return [u for u in members if u not in reached]

    def _cut_off_full(self, removed: np.ndarray, boundary: np.ndarray) -> np.ndarray:
        fed = self.fed_segments(removed, boundary)
        gone = np.zeros(self.n_segments, dtype=bool)
        gone[removed] = True
        return np.flatnonzero(self.baseline_fed & ~fed & ~gone)

    def pipes_of(self, node: int) -> np.ndarray:
        return self.node_pipes[self.node_pipe_ptr[node]:self.node_pipe_ptr[node + 1]]

    def pipes_in(self, segs: np.ndarray) -> np.ndarray:
        return np.concatenate([self.seg_pipes[self.seg_pipe_ptr[s]:self.seg_pipe_ptr[s + 1]] for s in segs])

    def nodes_in(self, segs: np.ndarray) -> np.ndarray:
        return np.concatenate([self.seg_nodes[self.seg_node_ptr[s]:self.seg_node_ptr[s + 1]] for s in segs])

    def fed_segments(self, removed_segs: np.ndarray, closed_valves: np.ndarray) -> np.ndarray:
        """Boolean per segment: still connected to a feeder with ``removed_segs`` gone and
        ``closed_valves`` (node indices) shut."""
        keep = np.ones(len(self.edge_a), dtype=bool)
        gone = np.zeros(self.n_segments, dtype=bool)
        gone[removed_segs] = True
        if len(keep):
            keep &= ~(gone[self.edge_a] | gone[self.edge_b])
            if len(closed_valves):
                keep &= ~np.isin(self.edge_valve, closed_valves)
        n = self.n_segments
        _, labels = connected_components(self._segment_matrix(keep), directed=False)
        feeding = self.feeder_seg & ~gone
        fed_labels = np.zeros(labels.max() + 1 if n else 0, dtype=bool)
        fed_labels[labels[feeding]] = True
        return fed_labels[labels] & ~gone


    # --- directed supply cells ------------------------------------------------------------------
    def _build_cells(self) -> None:
        """Supply cells and their directed edges (module docstring), the baseline fed cells, the
        directed supply tree, and the customers by cell."""
        n_pipes, n_nodes = len(self.pipe_ids), len(self.node_ids)
        pipe_mode, mode, inlet = self.pipe_mode, self.node_mode, self.node_inlet
        attach_r, attach_c, flow_a, flow_b = [], [], [], []
        for side, end in ((0, self.pipe_from), (1, self.pipe_to)):
            idx = np.flatnonzero(end >= 0)
            node = end[idx]
            usable = ~self.barrier[node] & (pipe_mode[idx] != PIPE_CLOSED) & (mode[node] != NODE_CLOSED)
            into_only = ((pipe_mode[idx] == PIPE_CHECK) & (side == 1)) | \
                        ((mode[node] == NODE_ONE_WAY) & (inlet[node] == idx))
            # a check pipe leaving a one-way node (other than through its inlet) attaches normally
            attach = usable & ~into_only
            attach_r.append(idx[attach])
            attach_c.append(n_pipes + node[attach])
            flow_a.append(idx[usable & into_only])
            flow_b.append(n_pipes + node[usable & into_only])
        size = n_pipes + n_nodes
        r, c = np.concatenate(attach_r), np.concatenate(attach_c)
        matrix = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(size, size)).tocsr()
        self.n_cells, self.vertex_cell = connected_components(matrix, directed=False)
        # open barrier valves join the cells of their pipes, each way a pipe end allows
        src, dst, via = [np.concatenate(flow_a)], [np.concatenate(flow_b)], [np.full(sum(map(len, flow_a)), -1)]
        for v in self.valve_nodes.tolist():
            if self.node_state[v] != OPEN:
                continue
            pipes = self.pipes_of(v)
            delivers_in = [q for q in pipes if pipe_mode[q] != PIPE_CLOSED and
                           not (pipe_mode[q] == PIPE_CHECK and self.pipe_from[q] == v)]
            takes_out = [q for q in pipes if pipe_mode[q] != PIPE_CLOSED and
                         not (pipe_mode[q] == PIPE_CHECK and self.pipe_to[q] == v)]
            pairs = [(a, b) for a in delivers_in for b in takes_out if a != b]
            if pairs:
                src.append(np.array([a for a, _ in pairs]))
                dst.append(np.array([b for _, b in pairs]))
                via.append(np.full(len(pairs), v))
        a = self.vertex_cell[np.concatenate(src).astype(np.int64)]
        b = self.vertex_cell[np.concatenate(dst).astype(np.int64)]
        valve = np.concatenate(via).astype(np.int64)
        keep = a != b
        self.cell_src, self.cell_dst, self.cell_valve = a[keep], b[keep], valve[keep]
        self.pipe_cell = self.vertex_cell[:n_pipes]
        self.node_cell = self.vertex_cell[n_pipes:].copy()
        # a customer on a barrier valve node (a cell of its own) takes the cell of the valve's first pipe
        cust_cell = self.node_cell[self.customer_node] if len(self.customer_node) else np.zeros(0, np.int64)
        for i, node in enumerate(self.customer_node.tolist()):
            if self.barrier[node]:
                pipes = self.pipes_of(node)
                cust_cell[i] = self.pipe_cell[pipes[0]] if len(pipes) else cust_cell[i]
        self.customer_cell = cust_cell
        # each cell lies in one segment (cells only cut segments further)
        self.cell_seg = np.full(self.n_cells, -1, dtype=np.int64)
        self.cell_seg[self.pipe_cell] = self.pipe_seg
        member = self.node_seg >= 0
        self.cell_seg[self.node_cell[member]] = self.node_seg[member]
        self.cell_feeder = np.zeros(self.n_cells, dtype=bool)
        self.cell_feeder[self.node_cell[self.is_feeder]] = True
        out_edges: list[list[int]] = [[] for _ in range(self.n_cells)]
        in_edges: list[list[int]] = [[] for _ in range(self.n_cells)]
        for x, y in zip(self.cell_src.tolist(), self.cell_dst.tolist(), strict=True):
            out_edges[x].append(y)
            in_edges[y].append(x)
        self.cell_out, self.cell_in = out_edges, in_edges
        ptr, order = _csr_groups(np.where(self.pipe_cell >= 0, self.pipe_cell, self.n_cells), self.n_cells + 1)
        self.cell_pipe_ptr, self.cell_pipes = ptr[: self.n_cells + 1], order
        ptr, order = _csr_groups(np.where(self.cell_seg >= 0, self.cell_seg, self.n_segments), self.n_segments + 1)
        self.seg_cell_ptr, self.seg_cells = ptr[: self.n_segments + 1], order
        cc = np.where(self.customer_cell >= 0, self.customer_cell, self.n_cells)
        ptr, order = _csr_groups(cc, self.n_cells + 1)
        self.cell_customer_ptr, self.cell_customers = ptr[: self.n_cells + 1], order
        self.cell_baseline_fed = self.fed_cells(np.zeros(0, np.int64), np.zeros(0, np.int64))
        self.unfed_customers = np.flatnonzero(~self.cell_baseline_fed[self.customer_cell]) \
            if len(self.customer_cell) else np.zeros(0, np.int64)
        # the directed supply tree: a breadth-first arborescence from every feeder cell
        n = self.n_cells
        feeders = np.flatnonzero(self.cell_feeder)
        rows = np.concatenate([self.cell_src, np.full(len(feeders), n)])
        cols = np.concatenate([self.cell_dst, feeders])
        tree = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n + 1, n + 1)).tocsr()
        _, pred = breadth_first_order(tree, n, directed=True, return_predecessors=True)
        parents = np.where(pred[:n] >= 0, pred[:n], n + 1)
        ptr, order = _csr_groups(parents, n + 2)
        self.cell_children = [order[ptr[u]:ptr[u + 1]].tolist() for u in range(n)]

    def cells_of(self, segs: np.ndarray | list[int]) -> np.ndarray:
        """The supply cells of some segments."""
        parts = [self.seg_cells[self.seg_cell_ptr[s]:self.seg_cell_ptr[s + 1]] for s in segs]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def customers_in_cells(self, cells: np.ndarray | list[int]) -> np.ndarray:
        parts = [self.cell_customers[self.cell_customer_ptr[c]:self.cell_customer_ptr[c + 1]] for c in cells]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def fed_cells(self, removed_cells: np.ndarray, closed_valves: np.ndarray) -> np.ndarray:
        """Boolean per cell: a directed path from a feeder reaches it with ``removed_cells`` gone and
        ``closed_valves`` (node indices) shut."""
        n = self.n_cells
        gone = np.zeros(n, dtype=bool)
        gone[removed_cells] = True
        keep = ~(gone[self.cell_src] | gone[self.cell_dst])
        if len(closed_valves):
            keep &= ~np.isin(self.cell_valve, closed_valves)
        feeders = np.flatnonzero(self.cell_feeder & ~gone)
        rows = np.concatenate([self.cell_src[keep], np.full(len(feeders), n)])
        cols = np.concatenate([self.cell_dst[keep], feeders])
        matrix = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n + 1, n + 1)).tocsr()
        reached = breadth_first_order(matrix, n, directed=True, return_predecessors=False)
        fed = np.zeros(n + 1, dtype=bool)
        fed[reached] = True
        return fed[:n] & ~gone

    def cells_cut_off(self, removed_cells: set[int], closed_valves: np.ndarray, limit: int = 3000) -> list[int]:
        """Cells that had supply and lose it when ``removed_cells`` are isolated (``closed_valves`` shut):
        only tree descendants of the removed cells can lose it, and of them those no directed path
        reaches from a fed cell outside — the directed twin of ``cut_off``, with the same fallback to a
        whole-network search for a big subtree or a closed valve joining two outside cells."""
        gone = removed_cells
        multi = any(len({int(self.pipe_cell[q]) for q in self.pipes_of(v)} - gone) > 1
                    for v in np.asarray(closed_valves).tolist())
        members: set[int] = set()
        if not multi:
            stack = [c for c in gone if self.cell_baseline_fed[c]]
            while stack and len(members) <= limit:
                u = stack.pop()
                for child in self.cell_children[u]:
                    if child not in gone and child not in members:
                        members.add(child)
                        stack.append(child)
        if multi or len(members) > limit:
            fed = self.fed_cells(np.array(sorted(gone), dtype=np.int64), np.asarray(closed_valves, dtype=np.int64))
            removed = np.zeros(self.n_cells, dtype=bool)
            removed[list(gone)] = True
            return np.flatnonzero(self.cell_baseline_fed & ~fed & ~removed).tolist()
        baseline = self.cell_baseline_fed
        reached = {u for u in members
                   if any(w not in members and w not in gone and baseline[w] for w in self.cell_in[u])}
        stack = list(reached)
        while stack:
            u = stack.pop()
            for w in self.cell_out[u]:
                if w in members and w not in reached:
                    reached.add(w)
                    stack.append(w)
        return sorted(u for u in members if u not in reached)

    # --- connectivity queries -----------------------------------------------------------------
    def connected(self, a: int, b: int) -> bool:
        """Are nodes a and b (indices) connected under the current valve states?"""
        fed_a = self._reach_from(a)
        return bool(fed_a[self._seg_of_node(b)])

    def feeders_of(self, node: int) -> list[int]:
        """Indices of the sources/tanks whose water can reach ``node`` under current valve states (along
        the direction of pumps and check valves when the graph is one-way)."""
        if self.directed:
            target = int(self.node_cell[node])
            if self.barrier[node] and len(self.pipes_of(node)):
                target = int(self.pipe_cell[self.pipes_of(node)[0]])
            out = []
            for f in np.flatnonzero(self.is_feeder).tolist():
                start = int(self.node_cell[f])
                seen, stack = {start}, [start]
                while stack:
                    u = stack.pop()
                    for w in self.cell_out[u]:
                        if w not in seen:
                            seen.add(w)
                            stack.append(w)
                if target in seen:
                    out.append(int(f))
            return out
        reach = self._reach_from(node)
        feeders = np.flatnonzero(self.is_feeder & (self.node_seg >= 0))
        return [int(f) for f in feeders if reach[self.node_seg[f]]]

    def _seg_of_node(self, node: int) -> int:
        seg = int(self.node_seg[node])
        if seg < 0:  # a barrier valve: take the segment of one of its pipes
            pipes = self.pipes_of(node)
            seg = int(self.pipe_seg[pipes[0]]) if len(pipes) else -1
        return seg

    def _reach_from(self, node: int) -> np.ndarray:
        n = self.n_segments
        matrix = coo_matrix((np.ones(len(self.edge_a), np.int8), (self.edge_a, self.edge_b)),
                            shape=(n, n)).tocsr()
        _, labels = connected_components(matrix, directed=False)
        seg = self._seg_of_node(node)
        if seg < 0:
            return np.zeros(n, dtype=bool)
        return labels == labels[seg]


# --- building and caching graphs -------------------------------------------------------------
class GraphCache:
    """Graphs by network id (and supply mode), each kept while its network's graph version stays what it
    was when the graph was built (an edit of that network bumps it, so the next query rebuilds)."""

    def __init__(self) -> None:
        self._graphs: dict[tuple[int, bool], NetworkGraph] = {}
        self._lock = threading.Lock()

    def get(self, network_id: int, key: tuple[int, ...], build: Callable[[], NetworkGraph],
            one_way: bool = True) -> NetworkGraph:
        """The cached graph when its version key is ``key``, else ``build()`` (once, under a lock)."""
        slot = (network_id, one_way)
        graph = self._graphs.get(slot)
        if graph is not None and graph.version_key == key:
            return graph
        with self._lock:
            graph = self._graphs.get(slot)
            if graph is None or graph.version_key != key:
                graph = build()
                self._graphs[slot] = graph
        return graph

    def clear(self) -> None:
        """Forget every graph (benchmarks measure a cold start with it)."""
        self._graphs.clear()


def graph_from_rows(net: dict[str, Any], node_rows: list[tuple], pipe_rows: list[tuple], cust_rows: list[tuple],
                    key: tuple[int, ...] = (), *, one_way: bool = True) -> NetworkGraph:
    """A NetworkGraph from a network's row and the rows the repository reads for it
    (``graph_nodes``, ``graph_pipes``, ``graph_customers``). Pipe lengths are the recorded ones when
    the network's ``length_source`` says so (a schematic drawing), the drawn ones otherwise."""
    node_ids = np.array([r[0] for r in node_rows], dtype=np.int64)
    index = {int(v): i for i, v in enumerate(node_ids)}
    pipe_index = {int(r[0]): i for i, r in enumerate(pipe_rows)}

    def idx(value: Any) -> int:
        return index.get(int(value), -1) if value is not None else -1

    recorded = net.get("length_source") == "recorded"
    lengths = [(r[10] if recorded and r[10] else r[4]) or 0.0 for r in pipe_rows]
    inlets = [pipe_index.get(int(r[13]), -1) if r[13] is not None else -1 for r in node_rows]
    cust_rows = [r for r in cust_rows if r[1] is not None and int(r[1]) in index]
    return NetworkGraph(
        network_id=int(net["id"]),
        utility=net["utility"],
        name=net["name"],
        pipe_ids=np.array([r[0] for r in pipe_rows], dtype=np.int64),
        pipe_codes=[r[1] for r in pipe_rows],
        pipe_from=np.array([idx(r[2]) for r in pipe_rows], dtype=np.int64),
        pipe_to=np.array([idx(r[3]) for r in pipe_rows], dtype=np.int64),
        pipe_length=np.array(lengths, dtype=float),
        pipe_diameter=np.array([r[5] or 0 for r in pipe_rows], dtype=float),
        pipe_mid=np.array([(r[6], r[7]) for r in pipe_rows], dtype=float).reshape(-1, 2),
        node_ids=node_ids,
        node_codes=[r[1] for r in node_rows],
        node_kind=np.array([KIND_CODE[r[2]] for r in node_rows], dtype=np.int8),
        node_state=np.array([STATE_CODE.get(r[3], -1) if r[3] else -1 for r in node_rows], dtype=np.int8),
        node_xy=np.array([(r[4], r[5]) for r in node_rows], dtype=float).reshape(-1, 2),
        node_info=[{"code": r[1], "kind": r[2], "valve_state": r[3], "diameter_mm": r[6],
                    "last_exercised": r[7], "access_note": r[8], "lon": r[9], "lat": r[10],
                    "control_type": r[11], "link_state": r[12]} for r in node_rows],
        pipe_geom=shapely.from_wkb(np.array([bytes(r[8]) for r in pipe_rows], dtype=object)),
        customer_ids=np.array([r[0] for r in cust_rows], dtype=np.int64),
        customer_node=np.array([index[int(r[1])] for r in cust_rows], dtype=np.int64),
        customer_category=np.array([CATEGORY_CODE[r[2]] for r in cust_rows], dtype=np.int8),
        customer_households=np.array([r[3] for r in cust_rows], dtype=np.int64),
        version_key=key,
        pipe_mode=np.array([PIPE_MODE[r[9] or "open"] for r in pipe_rows], dtype=np.int8),
        node_mode=np.array([node_mode(r[2], r[11], r[12], inlet) for r, inlet in zip(node_rows, inlets, strict=True)],
                           dtype=np.int8),
        node_inlet=np.array(inlets, dtype=np.int64),
        pipe_stub=np.array([bool(r[11]) for r in pipe_rows], dtype=bool),
        pipe_link=[r[12] for r in pipe_rows],
        length_source="recorded" if recorded else "drawn",
        one_way=one_way,
    )


# --- topology check -------------------------------------------------------------------------
ENDPOINT_KINDS = {"end", "source", "tank", "hydrant", "meter", "pump", "isolation_valve", "control_valve"}
CUSTOMER_LINK_MAX_M = 500.0  # a service point farther than this from its customer is suspicious


def topology_report(net: dict[str, Any], rows: dict[str, list[tuple]], storage_crs: str) -> dict[str, Any]:
    """A topology report for one network: what is wrong, where, and how many.

    ``net`` is the network's row, ``rows`` what the repository's ``topology_rows`` read for it,
    ``storage_crs`` the CRS of its coordinates (problems are placed in lon/lat).

    Checks: pipes without start/end node or whose line does not start/end at its node (unsnapped,
    beyond the network's snap tolerance); dangling ends (a junction with one pipe lying within ten
    tolerances of another pipe — a near miss; plain dead ends of kind ``end``/hydrant/… are fine);
    zero-length and self-loop pipes; duplicate pipes (same two nodes, same line); components (and
    those without a source or tank); isolation valves on no pipe; customers without a service node,
    with a node of another network, or far from it. ``features`` has every problem as a GeoJSON point
    for the map.
    """
    network_id = int(net["id"])
    tol = float(net["snap_tolerance_m"])
    node_rows, pipe_rows = rows["nodes"], rows["pipes"]
    index = {r[0]: i for i, r in enumerate(node_rows)}
    xy = np.array([(r[3], r[4]) for r in node_rows], dtype=float).reshape(-1, 2)
    geoms = shapely.from_wkb(np.array([bytes(r[5]) for r in pipe_rows], dtype=object))
    problems: dict[str, list[dict[str, Any]]] = {k: [] for k in (
        "missing_node", "unsnapped_endpoint", "dangling_end", "zero_length", "self_loop", "duplicate_pipe",
        "valve_not_on_pipe", "customer_not_linked", "component_without_feeder", "no_isolation_valves",
        "direction_unknown")}
    features: list[dict[str, Any]] = []
    to_lonlat = transformer(storage_crs, "EPSG:4326")

    def flag(kind: str, x: float, y: float, **info: Any) -> None:
        lon, lat = to_lonlat.transform(x, y)
        problems[kind].append({**info, "lon": round(lon, 7), "lat": round(lat, 7)})
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                         "properties": {"problem": kind, **info}})

    degree = np.zeros(len(node_rows), dtype=np.int64)
    seen_pairs: dict[tuple[int, int], list[int]] = {}
    for k, (pid, code, a, b, length, _wkb) in enumerate(pipe_rows):
        coords = shapely.get_coordinates(geoms[k])
        for end, point in ((a, coords[0]), (b, coords[-1])):
            if end is None or end not in index:
                flag("missing_node", *point, pipe_id=pid, pipe=code)
                continue
            degree[index[end]] += 1
            gap = float(np.hypot(*(xy[index[end]] - point)))
            if gap > tol:
                flag("unsnapped_endpoint", *point, pipe_id=pid, pipe=code, node_id=end, gap_m=round(gap, 3))
        if (length or 0) <= tol:
            flag("zero_length", *coords[0], pipe_id=pid, pipe=code, length_m=length)
        if a is not None and a == b:
            flag("self_loop", *coords[0], pipe_id=pid, pipe=code)
        if a is not None and b is not None:
            seen_pairs.setdefault((min(a, b), max(a, b)), []).append(k)
    for ks in seen_pairs.values():
        for i, k in enumerate(ks[1:], start=1):
            for j in ks[:i]:
                if shapely.equals(geoms[k], geoms[j]) or shapely.hausdorff_distance(geoms[k], geoms[j]) <= tol:
                    c = shapely.get_coordinates(geoms[k])[0]
                    flag("duplicate_pipe", *c, pipe_id=pipe_rows[k][0], pipe=pipe_rows[k][1],
                         duplicate_of=pipe_rows[j][0])
                    break
    tree = shapely.STRtree(geoms) if len(geoms) else None
    pipes_at: dict[int, set[int]] = {}
    for k, p in enumerate(pipe_rows):
        for end in (p[2], p[3]):
            if end is not None:
                pipes_at.setdefault(end, set()).add(k)
    ends_of = {r[0]: (r[2], r[3]) for r in pipe_rows}
    for i, r in enumerate(node_rows):
        kind = r[2]
        if kind == "isolation_valve" and degree[i] == 0:
            flag("valve_not_on_pipe", r[3], r[4], node_id=r[0], node=r[1])
        one_way = kind == "pump" or (kind == "control_valve" and r[8] in ONE_WAY_CONTROLS)
        if one_way and r[9] != "closed" and r[0] not in ends_of.get(r[10], ()):
            # supply direction unknown: the element is taken as two-way, which may count customers as fed
            flag("direction_unknown", r[3], r[4], node_id=r[0], node=r[1], element=kind, control_type=r[8],
                 reason="no inlet pipe recorded (pipeline_nodes.inlet_pipe): set the pipe supply enters from")
        if degree[i] == 1 and kind not in ENDPOINT_KINDS and tree is not None:
            point = shapely.points(xy[i])
            near = tree.query(point, predicate="dwithin", distance=10 * tol)
            own = pipes_at.get(r[0], set())
            others = [int(k) for k in near if int(k) not in own]
            if others:
                flag("dangling_end", r[3], r[4], node_id=r[0], node=r[1], near_pipe=pipe_rows[others[0]][0],
                     gap_m=round(float(shapely.distance(point, geoms[others[0]])), 3))
    for cid, account, node_id, node_net, distance, lon, lat in rows["customers"]:
        reason = None
        if node_id is None:
            reason = "no service node"
        elif node_net != network_id:
            reason = f"service node {node_id} belongs to network {node_net}"
        elif distance is not None and distance > CUSTOMER_LINK_MAX_M:
            reason = f"service node is {distance:.0f} m away"
        if reason:
            problems["customer_not_linked"].append({"customer_id": cid, "account_no": account, "reason": reason,
                                                    "lon": lon, "lat": lat})
            features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                             "properties": {"problem": "customer_not_linked", "customer_id": cid, "reason": reason}})
    # components over all pipes, whatever the valve states
    ends = [(index[a], index[b]) for (_, _, a, b, _, _) in pipe_rows if a in index and b in index]
    n = len(node_rows)
    if n:
        ea = np.array([e[0] for e in ends], dtype=np.int64)
        eb = np.array([e[1] for e in ends], dtype=np.int64)
        matrix = coo_matrix((np.ones(len(ea), np.int8), (ea, eb)), shape=(n, n)).tocsr()
        count, labels = connected_components(matrix, directed=False)
        feeders = np.isin(np.array([KIND_CODE[r[2]] for r in node_rows]), FEEDER_KINDS)
        fed = np.zeros(count, dtype=bool)
        fed[labels[feeders]] = True
        sizes = np.bincount(labels, minlength=count)
        for c in np.flatnonzero(~fed):
            members = np.flatnonzero(labels == c)
            flag("component_without_feeder", *xy[members[0]], component=int(c), nodes=int(sizes[c]),
                 sample_node=node_rows[members[0]][1])
    else:
        count = 0
    if pipe_rows and not any(r[2] == "isolation_valve" for r in node_rows):
        # every burst would isolate its whole connected network: say so instead of "ok"
        first = node_rows[0] if node_rows else None
        problems["no_isolation_valves"].append({
            "reason": "the network has no isolation valves: a burst isolates its whole connected network; import "
                      "the valve layer (POST /pipeline/networks/import-inp with valves) or add the valves",
            "lon": first[5] if first else None, "lat": first[6] if first else None})
    return {
        "network_id": network_id, "network": net["name"], "snap_tolerance_m": tol,
        "nodes": n, "pipes": len(pipe_rows), "components": int(count),
        "counts": {k: len(v) for k, v in problems.items()},
        "ok": not any(problems.values()) and count <= 1,
        "problems": problems,
        "features": {"type": "FeatureCollection", "features": features},
    }


# --- building the topology of imported pipes ------------------------------------------------
@dataclass
class SnapPlan:
    """The first step of building a network's topology: every pipe end gets a node.

    ``ends`` maps pipe id → [from node id, to node id]; an end that no node lies within tolerance of
    waits for one of ``new_nodes`` (junctions shared by all loose ends within tolerance of each
    other): ``loose`` lists (pipe id, side, index into new_nodes) until ``attach_new_nodes`` gives
    them their database ids.
    """

    geoms: dict[int, Any]
    ends: dict[int, list[int | None]]
    node_xy: dict[int, tuple[float, float]]
    snapped: int = 0
    new_nodes: list[dict[str, Any]] = field(default_factory=list)
    loose: list[tuple[int, int, int]] = field(default_factory=list)


def plan_snapping(network_id: int, tol: float, rows: dict[str, list[tuple]]) -> SnapPlan:
    """Snap pipe ends without a node to the nearest node within ``tol`` metres, and cluster the rest
    into new junctions. ``rows`` is what the repository's ``topology_rows`` read."""
    node_rows = rows["nodes"]
    pipe_rows = rows["pipes"]
    plan = SnapPlan(geoms={r[0]: shapely.from_wkb(bytes(r[5])) for r in pipe_rows},
                    ends={r[0]: [r[2], r[3]] for r in pipe_rows},
                    node_xy={r[0]: (r[3], r[4]) for r in node_rows})
    node_tree_ids = list(plan.node_xy)
    node_tree = shapely.STRtree(shapely.points(np.array([plan.node_xy[i] for i in node_tree_ids]).reshape(-1, 2))) \
        if node_tree_ids else None
    loose: list[tuple[int, int, np.ndarray]] = []
    for pid, geom in plan.geoms.items():
        coords = shapely.get_coordinates(geom)
        for side, point in ((0, coords[0]), (1, coords[-1])):
            if plan.ends[pid][side] is not None:
                continue
            if node_tree is not None:
                hit = node_tree.query_nearest(shapely.points(point), max_distance=tol)
                if len(hit):
                    plan.ends[pid][side] = node_tree_ids[int(hit[0])]
                    plan.snapped += 1
                    continue
            loose.append((pid, side, point))
    if loose:
        pts = np.array([p for _, _, p in loose])
        tree = shapely.STRtree(shapely.points(pts))
        left, right = tree.query(shapely.points(pts), predicate="dwithin", distance=tol)
        n = len(pts)
        matrix = coo_matrix((np.ones(len(left), np.int8), (left, right)), shape=(n, n)).tocsr()
        count, labels = connected_components(matrix, directed=False)
        for c in range(count):
            centre = pts[labels == c].mean(axis=0)
            plan.new_nodes.append({"code": f"AUTO-{network_id}-{len(plan.node_xy) + c + 1}", "kind": "junction",
                                   "geom": shapely.points(centre)})
        plan.loose = [(pid, side, int(labels[k])) for k, (pid, side, _p) in enumerate(loose)]
    return plan


def attach_new_nodes(plan: SnapPlan, ids: dict[str, int]) -> None:
    """Give the loose ends the database ids of the junctions created for them (code → id)."""
    for pid, side, k in plan.loose:
        code = plan.new_nodes[k]["code"]
        plan.ends[pid][side] = ids[code]
        plan.node_xy[ids[code]] = tuple(shapely.get_coordinates(plan.new_nodes[k]["geom"])[0])


SPLIT_INHERITS = ("material", "diameter_mm", "install_year", "burial_depth_m", "pressure_class")


def plan_tees(plan: SnapPlan, tol: float, attributes: dict[int, dict[str, Any]]
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """The second step: a node lying on another pipe's interior (a tee) splits that pipe there.

    Returns the pipe updates (id, from_node, to_node, and the shortened line where split), the new
    pipes (the far pieces, inheriting ``attributes`` of the pipe they come from) and how many splits.
    A pipe with several tees is split once per pass; the service repeats the pass.
    """
    geoms, ends, node_xy = plan.geoms, plan.ends, plan.node_xy
    updates = [{"id": pid, "from_node": e[0], "to_node": e[1]} for pid, e in ends.items()]
    line_ids = list(geoms)
    line_tree = shapely.STRtree([geoms[i] for i in line_ids])
    by_id = {u["id"]: u for u in updates}
    new_pipes: list[dict[str, Any]] = []
    split = 0
    used = {n for e in ends.values() for n in e if n is not None}
    for node in used:
        point = shapely.points(node_xy[node])
        for k in line_tree.query(point, predicate="dwithin", distance=tol):
            pid = line_ids[int(k)]
            if node in ends[pid]:
                continue
            line = geoms[pid]
            d = float(shapely.line_locate_point(line, point))
            if d <= tol or d >= line.length - tol:
                continue
            first, second = substring(line, 0, d), substring(line, d, line.length)
            attrs = attributes[pid]
            by_id[pid].update(geom=first, to_node=node)
            new_pipes.append({"code": f"{attrs['code']}-{split + 1}", "from": node, "to": ends[pid][1],
                              "geom": second, **{f: attrs.get(f) for f in SPLIT_INHERITS}})
            geoms[pid] = first
            ends[pid][1] = node
            split += 1
    return list(by_id.values()), new_pipes, split
