"""Layered (Sugiyama) layout of a stage DAG, flowing left to right.

Steps: drop edges that are self-loops, name unknown stages or close a cycle (validation
reports those elsewhere; the picture must still draw); longest-path layering; a dummy node
in every layer a long edge crosses (a very long one only in the layers next to its ends);
crossing reduction by barycenter sweeps down and up,
keeping the ordering with the fewest crossings; coordinates (layers are columns, a layer's
nodes stacked and centred, then nudged towards their neighbours); each edge a polyline
through its dummies, drawn as a gentle curve.

Pure and deterministic: ties are broken by stage name, so the input order does not matter.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

NODE_HEIGHT = 44
MIN_NODE_WIDTH = 132
MAX_NODE_WIDTH = 232
CHAR_WIDTH = 7.2
NODE_GAP = 14
DUMMY_HEIGHT = 10
LAYER_GAP = 64
MARGIN = 16
SWEEPS = 4
MIN_BEND = 30
MAX_BENDS = 8

Point = tuple[float, float]


@dataclass(frozen=True)
class NodeBox:
    name: str
    x: float
    y: float
    width: float
    height: float
    layer: int
    order: int

    @property
    def cx(self) -> float:
        return self.x + self.width / 2

    @property
    def cy(self) -> float:
        return self.y + self.height / 2


@dataclass(frozen=True)
class EdgePath:
    source: str
    target: str
    points: tuple[Point, ...]

    @property
    def d(self) -> str:
        """SVG path data: horizontal cubic curves through every point."""
        return path_data(self.points)


@dataclass(frozen=True)
class DagLayout:
    nodes: dict[str, NodeBox]
    edges: list[EdgePath]
    width: float
    height: float
    dropped: list[tuple[str, str]] = field(default_factory=list)
    """Edges left out: self-loops, unknown stages, edges closing a cycle."""
    back_edges: list[EdgePath] = field(default_factory=list)
    """The dropped edges that close a cycle, drawn backwards so the cycle shows."""

    @property
    def layers(self) -> int:
        return 1 + max((n.layer for n in self.nodes.values()), default=-1)


def node_width(name: str) -> float:
    return float(min(MAX_NODE_WIDTH, max(MIN_NODE_WIDTH, round(len(name) * CHAR_WIDTH) + 28)))


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def path_data(points: Sequence[Point]) -> str:
    if not points:
        return ""
    parts = [f"M{_fmt(points[0][0])},{_fmt(points[0][1])}"]
    for (x0, y0), (x1, y1) in pairwise(points):
        bend = max((x1 - x0) / 2, MIN_BEND)
        parts.append(f"C{_fmt(x0 + bend)},{_fmt(y0)} {_fmt(x1 - bend)},{_fmt(y1)} "
                     f"{_fmt(x1)},{_fmt(y1)}")
    return " ".join(parts)


def _clean_edges(names: list[str], edges: Iterable[tuple[str, str]]
                 ) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """Successor lists without self-loops, unknown ends, duplicates or cycles."""
    known = set(names)
    succ: dict[str, set[str]] = {n: set() for n in names}
    dropped: list[tuple[str, str]] = []
    for source, target in edges:
        if source not in known or target not in known or source == target:
            dropped.append((source, target))
        else:
            succ[source].add(target)
    ordered = {n: sorted(succ[n]) for n in names}
    # Iterative DFS in name order: an edge to a node still on the stack closes a cycle.
    state: dict[str, int] = {}
    kept: dict[str, list[str]] = {n: [] for n in names}
    for root in names:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(ordered[root]))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                continue
            seen = state.get(child)
            if seen == 1:
                dropped.append((node, child))
                continue
            kept[node].append(child)
            if seen is None:
                state[child] = 1
                stack.append((child, iter(ordered[child])))
    return kept, sorted(set(dropped))


def _layers(names: list[str], succ: dict[str, list[str]]) -> dict[str, int]:
    """Longest-path layering; then each source moves right to just before its nearest
    successor, so a stage without dependencies sits next to what uses it."""
    indegree = {n: 0 for n in names}
    for targets in succ.values():
        for target in targets:
            indegree[target] += 1
    sources = [n for n in names if indegree[n] == 0]
    layer = {n: 0 for n in names}
    ready = list(sources)
    heapq.heapify(ready)
    while ready:
        node = heapq.heappop(ready)
        for target in succ[node]:
            layer[target] = max(layer[target], layer[node] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                heapq.heappush(ready, target)
    # Nodes with more dependents than dependencies move right towards their dependents,
    # latest first: each such move shortens more edges than it lengthens.
    preds: dict[str, int] = {n: 0 for n in names}
    for targets in succ.values():
        for target in targets:
            preds[target] += 1
    for node in sorted(names, key=lambda n: (-layer[n], n)):
        targets = succ[node]
        if targets and len(targets) >= preds[node]:
            layer[node] = min(layer[t] for t in targets) - 1
    return layer


def count_crossings(layers: Sequence[Sequence[int]], up: Sequence[Sequence[int]],
                    pos: Sequence[int]) -> int:
    """Crossings between adjacent layers (`up[n]`: n's neighbours in the layer before,
    `pos[n]`: n's place in its layer)."""
    total = 0
    for index in range(1, len(layers)):
        seen: list[int] = []
        for node in layers[index]:
            near = up[node]
            if len(near) == 1:
                upper = pos[near[0]]
                total += len(seen) - bisect_right(seen, upper)
                insort(seen, upper)
                continue
            above = sorted(pos[p] for p in near)
            for upper in above:
                total += len(seen) - bisect_right(seen, upper)
            for upper in above:
                insort(seen, upper)
    return total


def _sweep(layers: list[list[int]], neighbours: Sequence[Sequence[int]], pos: list[int],
           key: list[float], indices: range) -> None:
    """Reorder each layer of `indices` by the barycenter of its neighbours in the layer
    just visited; a node without neighbours keeps its place, equal ones their order."""
    for index in indices:
        layer = layers[index]
        for node in layer:
            near = neighbours[node]
            if len(near) == 1:
                key[node] = pos[near[0]]
            elif near:
                key[node] = sum(pos[n] for n in near) / len(near)
            else:
                key[node] = pos[node]
        layer.sort(key=key.__getitem__)
        for slot, node in enumerate(layer):
            pos[node] = slot


def _order(layers: list[list[int]], up: Sequence[Sequence[int]],
           down: Sequence[Sequence[int]], size: int) -> list[list[int]]:
    pos = [0] * size
    for layer in layers:
        for slot, node in enumerate(layer):
            pos[node] = slot
    key = [0.0] * size
    best = [list(layer) for layer in layers]
    best_crossings = count_crossings(best, up, pos)
    for _ in range(SWEEPS):
        if best_crossings == 0:
            break
        _sweep(layers, up, pos, key, range(1, len(layers)))
        _sweep(layers, down, pos, key, range(len(layers) - 2, -1, -1))
        crossings = count_crossings(layers, up, pos)
        if crossings >= best_crossings:
            break
        best, best_crossings = [list(layer) for layer in layers], crossings
    return best


def _place(column: list[int], heights: Sequence[float], wanted: Sequence[float],
           tops: list[float], top: float) -> None:
    """Tops of a column's nodes, in order, each as near its wanted centre as the order and
    the gaps allow (a forward then a backward pass, then the mean of both)."""
    forward: list[float] = []
    edge = top
    for node in column:
        y = max(edge, wanted[node] - heights[node] / 2)
        forward.append(y)
        edge = y + heights[node] + NODE_GAP
    backward = [0.0] * len(column)
    edge = float("inf")
    for i in range(len(column) - 1, -1, -1):
        node = column[i]
        y = min(edge - heights[node], wanted[node] - heights[node] / 2)
        backward[i] = y
        edge = y - NODE_GAP
    edge = top
    for i, node in enumerate(column):
        y = max(edge, (forward[i] + backward[i]) / 2)
        tops[node] = y
        edge = y + heights[node] + NODE_GAP


def _bends(first: int, last: int) -> list[int]:
    """The layers between `first` and `last` where an edge gets a dummy node: all of them,
    or for a very long edge only the ones next to its ends (it then crosses the middle
    layers in one curve: a few thousand stages with edges spanning hundreds of layers would
    otherwise mean a hundred thousand dummies)."""
    crossed = range(first + 1, last)
    if len(crossed) <= MAX_BENDS:
        return list(crossed)
    half = MAX_BENDS // 2
    return [*crossed[:half], *crossed[-half:]]


def layout_dag(nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> DagLayout:
    """Boxes and edge paths of the DAG; edge (a, b) means b depends on a."""
    names = sorted(set(nodes))
    if not names:
        return DagLayout({}, [], 2 * MARGIN, 2 * MARGIN, sorted(set(edges)))
    succ, dropped = _clean_edges(names, edges)
    by_name = _layers(names, succ)

    # Nodes are numbered: stages first (in name order), then one dummy per layer a long
    # edge crosses, so an edge becomes a chain of single-layer steps.
    ident = {n: i for i, n in enumerate(names)}
    layer_of = [by_name[n] for n in names]
    up: list[list[int]] = [[] for _ in names]
    down: list[list[int]] = [[] for _ in names]
    chains: list[tuple[int, int, list[int]]] = []
    for source in names:
        s = ident[source]
        for target in succ[source]:
            t = ident[target]
            chain = [s]
            for crossed in _bends(layer_of[s], layer_of[t]):
                chain.append(len(layer_of))
                layer_of.append(crossed)
                up.append([])
                down.append([])
            chain.append(t)
            for a, b in pairwise(chain):
                if layer_of[b] == layer_of[a] + 1:
                    down[a].append(b)
                    up[b].append(a)
            chains.append((s, t, chain[1:-1]))
    size = len(layer_of)
    real = len(names)

    count = 1 + max(layer_of)
    columns: list[list[int]] = [[] for _ in range(count)]
    for node in range(size):
        columns[layer_of[node]].append(node)
    columns = _order(columns, up, down, size)

    widths = [node_width(n) for n in names]
    heights = [float(NODE_HEIGHT)] * real + [float(DUMMY_HEIGHT)] * (size - real)
    column_width = [max((widths[n] for n in col if n < real), default=MIN_NODE_WIDTH)
                    for col in columns]
    lefts: list[float] = []
    x = float(MARGIN)
    for width in column_width:
        lefts.append(x)
        x += width + LAYER_GAP
    total_width = x - LAYER_GAP + MARGIN

    def stacked(col: list[int]) -> float:
        return sum(heights[n] for n in col) + NODE_GAP * max(len(col) - 1, 0)

    tallest = max(stacked(col) for col in columns)
    tops = [0.0] * size
    for col in columns:
        y = MARGIN + (tallest - stacked(col)) / 2
        for node in col:
            tops[node] = y
            y += heights[node] + NODE_GAP
    # Nudge each column towards the centres of its neighbours, forwards then backwards.
    wanted = [0.0] * size
    for neighbours, order in ((up, range(1, count)), (down, range(count - 2, -1, -1))):
        for index in order:
            col = columns[index]
            for node in col:
                near = neighbours[node]
                if near:
                    wanted[node] = sum(tops[n] + heights[n] / 2 for n in near) / len(near)
                else:
                    wanted[node] = tops[node] + heights[node] / 2
            _place(col, heights, wanted, tops, MARGIN)
    shift = MARGIN - min(tops)
    total_height = max(tops[n] + heights[n] for n in range(size)) + shift + MARGIN

    boxes: dict[str, NodeBox] = {}
    for index, col in enumerate(columns):
        order = 0
        for node in col:
            if node < real:
                boxes[names[node]] = NodeBox(names[node], lefts[index], tops[node] + shift,
                                             widths[node], NODE_HEIGHT, index, order)
                order += 1
    paths: list[EdgePath] = []
    for s, t, dummies in chains:
        a, b = boxes[names[s]], boxes[names[t]]
        points: list[Point] = [(a.x + a.width, a.cy)]
        for dummy in dummies:
            index = layer_of[dummy]
            y = tops[dummy] + shift + DUMMY_HEIGHT / 2
            points.append((lefts[index], y))
            points.append((lefts[index] + column_width[index], y))
        points.append((b.x, b.cy))
        paths.append(EdgePath(names[s], names[t], tuple(points)))
    back = []
    for source, target in dropped:
        if source != target and source in boxes and target in boxes:
            a, b = boxes[source], boxes[target]
            back.append(EdgePath(source, target, ((a.x + a.width, a.cy), (b.x, b.cy))))
    return DagLayout(boxes, paths, total_width, total_height, dropped, back)
