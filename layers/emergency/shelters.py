"""Shelter allocation as a minimum-cost flow (pure computation, networkx's network simplex).

People in origin zones go to shelters within each shelter's free capacity so that the total
person-seconds of travel is least. Anyone who cannot be placed (no shelter reachable within the time
limit, or not enough places) flows to an "unplaced" sink whose cost exceeds every real trip, so the
optimum places as many people as possible first and only then minimises travel. The flow is integral
(persons), and network simplex is exact on integer costs (seconds are rounded to whole seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np


@dataclass
class Allocation:
    """flows: (origin, shelter, persons) with persons > 0; unplaced persons per origin; the total cost
    in person-seconds of the placed persons."""

    flows: list[tuple[int, int, int]]
    unplaced: np.ndarray
    person_seconds: int


def allocate(population: np.ndarray, capacity: np.ndarray, seconds: np.ndarray,
             max_seconds: float | None = None) -> Allocation:
    """Assign ``population[i]`` persons of origin i to shelters j (free ``capacity[j]``) minimising
    Σ persons·seconds[i, j]; ``inf`` or over ``max_seconds`` means shelter j is not an option for i."""
    population = np.asarray(population, dtype=np.int64)
    capacity = np.asarray(capacity, dtype=np.int64)
    cost = np.asarray(seconds, dtype=float)
    allowed = np.isfinite(cost) & (cost <= (max_seconds if max_seconds is not None else np.inf))
    whole = np.where(allowed, np.rint(cost), 0).astype(np.int64)
    total = int(population.sum())
    graph = nx.DiGraph()
    graph.add_node("source", demand=-total)
    graph.add_node("sink", demand=total)
    unplaced_cost = int(whole.max()) + 1 if whole.size else 1
    for i, persons in enumerate(population.tolist()):
        if persons <= 0:
            continue
        graph.add_edge("source", ("o", i), capacity=persons, weight=0)
        # placing is always preferred: not placing costs more than the longest allowed trip
        graph.add_edge(("o", i), "unplaced", capacity=persons, weight=unplaced_cost)
        for j in np.flatnonzero(allowed[i]).tolist():
            if capacity[j] > 0:
                graph.add_edge(("o", i), ("s", j), capacity=persons, weight=int(whole[i, j]))
    for j, places in enumerate(capacity.tolist()):
        if places > 0:
            graph.add_edge(("s", j), "sink", capacity=places, weight=0)
    graph.add_edge("unplaced", "sink", capacity=total, weight=0)
    if total == 0:
        return Allocation([], np.zeros(len(population), dtype=np.int64), 0)
    _, flow = nx.network_simplex(graph)
    flows, unplaced = [], np.zeros(len(population), dtype=np.int64)
    person_seconds = 0
    for node, out in flow.items():
        if not (isinstance(node, tuple) and node[0] == "o"):
            continue
        for target, persons in out.items():
            if persons <= 0:
                continue
            if target == "unplaced":
                unplaced[node[1]] += persons
            else:
                flows.append((node[1], target[1], int(persons)))
                person_seconds += int(persons) * int(whole[node[1], target[1]])
    flows.sort()
    return Allocation(flows, unplaced, person_seconds)
