"""The layered layout of a stage DAG: geometry, layers, crossings, determinism and the
graphs it must survive (no server)."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from datetime import UTC, datetime

import pytest

from cyclone.ui.dag_view import run_node_info, workflow_graph
from cyclone.ui.layout import MAX_BENDS, DagLayout, count_crossings, layout_dag, path_data
from cyclone.ui.pages.run_detail import run_layout

DIAMOND = (["version", "build-linux", "build-mac", "report"],
           [("version", "build-linux"), ("version", "build-mac"),
            ("build-linux", "report"), ("build-mac", "report")])


def random_dag(count: int, seed: int = 7) -> tuple[list[str], list[tuple[str, str]]]:
    """Each stage depends on up to three of the fifty stages before it."""
    rng = random.Random(seed)
    names = [f"stage-{i:04d}" for i in range(count)]
    edges = []
    for i in range(1, count):
        for _ in range(rng.randint(0, 3)):
            edges.append((names[rng.randint(max(0, i - 50), i - 1)], names[i]))
    return names, edges


def assert_well_formed(layout: DagLayout, names: list[str]) -> None:
    assert sorted(layout.nodes) == sorted(set(names))
    columns: dict[int, list] = defaultdict(list)
    for box in layout.nodes.values():
        columns[box.layer].append(box)
        assert box.x >= 0 and box.y >= 0
        assert box.x + box.width <= layout.width and box.y + box.height <= layout.height
    for layer, boxes in columns.items():
        assert len({b.x for b in boxes}) == 1, f"layer {layer} is not one column"
        boxes.sort(key=lambda b: b.order)
        assert [b.order for b in boxes] == list(range(len(boxes)))
        for upper, lower in itertools.pairwise(boxes):
            assert upper.y + upper.height <= lower.y, f"{upper.name} overlaps {lower.name}"
    lefts = sorted((boxes[0].x, max(b.width for b in boxes)) for boxes in columns.values())
    for (x, width), (next_x, _) in itertools.pairwise(lefts):
        assert x + width < next_x, "two columns overlap"
    for edge in layout.edges:
        source, target = layout.nodes[edge.source], layout.nodes[edge.target]
        assert source.layer < target.layer
        assert edge.points[0] == (source.x + source.width, source.cy)
        assert edge.points[-1] == (target.x, target.cy)
        xs = [x for x, _ in edge.points]
        assert xs == sorted(xs)


def test_an_empty_graph_lays_out_to_an_empty_picture() -> None:
    layout = layout_dag([], [])
    assert layout.nodes == {} and layout.edges == [] and layout.layers == 0
    assert layout.width > 0 and layout.height > 0


def test_one_stage_is_one_box_in_layer_zero() -> None:
    layout = layout_dag(["only"], [])
    assert list(layout.nodes) == ["only"]
    assert layout.nodes["only"].layer == 0 and layout.edges == []


def test_the_diamond_flows_left_to_right_with_the_join_centred() -> None:
    layout = layout_dag(*DIAMOND)
    assert_well_formed(layout, DIAMOND[0])
    layers = {name: box.layer for name, box in layout.nodes.items()}
    assert layers == {"version": 0, "build-linux": 1, "build-mac": 1, "report": 2}
    nodes = layout.nodes
    assert nodes["version"].x < nodes["build-linux"].x < nodes["report"].x
    middle = (nodes["build-linux"].cy + nodes["build-mac"].cy) / 2
    assert nodes["version"].cy == pytest.approx(middle)
    assert nodes["report"].cy == pytest.approx(middle)
    assert {(e.source, e.target) for e in layout.edges} == set(DIAMOND[1])


def test_the_same_graph_in_any_order_gives_the_same_layout() -> None:
    names, edges = random_dag(300, seed=3)
    expected = layout_dag(names, edges)
    rng = random.Random(11)
    for _ in range(3):
        shuffled_names, shuffled_edges = names[:], edges[:]
        rng.shuffle(shuffled_names)
        rng.shuffle(shuffled_edges)
        assert layout_dag(shuffled_names, shuffled_edges) == expected


def test_barycenter_sweeps_remove_the_crossings_of_name_order() -> None:
    # In name order every edge crosses every other: a-z, b-y, c-x, d-w.
    names = ["a", "b", "c", "d", "w", "x", "y", "z"]
    edges = [("a", "z"), ("b", "y"), ("c", "x"), ("d", "w")]
    ident = {n: i for i, n in enumerate(names)}
    up: list[list[int]] = [[] for _ in names]
    for source, target in edges:
        up[ident[target]].append(ident[source])
    by_name = [[ident[n] for n in "abcd"], [ident[n] for n in "wxyz"]]
    pos = [slot for layer in by_name for slot in range(len(layer))]
    assert count_crossings(by_name, up, pos) == 6

    layout = layout_dag(names, edges)
    ordered = [sorted((n for n in names if layout.nodes[n].layer == layer),
                      key=lambda n: layout.nodes[n].order) for layer in (0, 1)]
    placed = [[ident[n] for n in layer] for layer in ordered]
    pos = [0] * len(names)
    for layer in placed:
        for slot, node in enumerate(layer):
            pos[node] = slot
    assert count_crossings(placed, up, pos) == 0
    for source, target in edges:
        assert layout.nodes[source].cy == pytest.approx(layout.nodes[target].cy)


def test_a_long_edge_bends_around_the_stages_of_the_layers_it_crosses() -> None:
    names = ["a", "b", "c", "d", "e"]
    edges = [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d"), ("a", "e"), ("e", "d")]
    layout = layout_dag(names, edges)
    assert_well_formed(layout, names)
    long = next(e for e in layout.edges if (e.source, e.target) == ("a", "d"))
    assert len(long.points) == 2 + 2 * 2
    for x, y in long.points[1:-1]:
        for box in layout.nodes.values():
            inside = box.x <= x <= box.x + box.width and box.y <= y <= box.y + box.height
            assert not inside, f"the a→d edge runs through {box.name}"
    assert long.d.startswith("M") and long.d.count("C") == len(long.points) - 1


def test_five_hundred_parallel_stages_stack_in_one_column() -> None:
    names = [f"job-{i:03d}" for i in range(500)]
    layout = layout_dag(names, [])
    assert_well_formed(layout, names)
    assert {b.layer for b in layout.nodes.values()} == {0}


def test_a_chain_of_three_hundred_stages_is_one_straight_row() -> None:
    names = [f"step-{i:03d}" for i in range(300)]
    layout = layout_dag(names, list(itertools.pairwise(names)))
    assert_well_formed(layout, names)
    assert [layout.nodes[n].layer for n in names] == list(range(300))
    assert len({b.y for b in layout.nodes.values()}) == 1


def test_two_thousand_random_stages_lay_out_without_overlaps() -> None:
    names, edges = random_dag(2000)
    layout = layout_dag(names, edges)
    assert_well_formed(layout, names)
    assert len(layout.edges) == len(set(edges)) and layout.dropped == []


def test_cycles_unknown_stages_and_self_loops_are_dropped_not_fatal() -> None:
    names = ["a", "b", "c", "d"]
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("ghost", "d"), ("d", "d"), ("a", "d"),
             ("a", "b")]
    layout = layout_dag(names, edges)
    assert_well_formed(layout, names)
    assert layout.dropped == [("c", "a"), ("d", "d"), ("ghost", "d")]
    assert {(e.source, e.target) for e in layout.edges} == {("a", "b"), ("b", "c"), ("a", "d")}


def test_a_graph_that_is_only_a_cycle_still_draws_every_stage() -> None:
    layout = layout_dag(["x", "y"], [("x", "y"), ("y", "x")])
    assert_well_formed(layout, ["x", "y"])
    assert layout.dropped == [("y", "x")]


def test_edge_curves_leave_and_enter_horizontally() -> None:
    assert path_data([(0, 0), (100, 50)]) == "M0,0 C50,0 50,50 100,50"
    assert path_data([]) == ""


def test_workflow_graph_reads_names_and_dependencies_in_spec_order() -> None:
    workflow = {"spec": {"stages": [
        {"name": "build"}, {"name": "test", "depends": ["build"]}, "junk", {"depends": ["x"]},
        {"name": "ship", "depends": ["build", "test"]}]}}
    assert workflow_graph(workflow) == (
        ["build", "test", "ship"], [("build", "test"), ("build", "ship"), ("test", "ship")])
    assert workflow_graph({}) == ([], [])


def test_run_node_info_gives_phase_duration_and_attempts() -> None:
    now = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
    run = {"status": {"stages": {
        "done": {"status": {"phase": "Succeeded", "startTime": "2026-01-01T12:00:00Z",
                            "lastTransitionTime": "2026-01-01T12:01:05Z"}, "attempts": 2},
        "going": {"status": {"phase": "Running", "startTime": "2026-01-01T12:00:18Z"},
                  "depends": ["done"]},
        "failed": {"status": {"phase": "Failed", "message": "exit code 1"}},
        "queued": {}}}}
    info = run_node_info(run, now)
    assert info["done"].phase == "Succeeded" and info["done"].duration == "1m5s"
    assert info["done"].attempt == 2 and info["done"].finished == "2026-01-01T12:01:05Z"
    assert info["going"].duration == "12s" and info["going"].finished is None
    assert info["failed"].duration == "" and info["failed"].message == "exit code 1"
    assert info["queued"].phase == "Pending" and info["queued"].duration == ""
    assert info["going"].as_update() == {"phase": "Running", "duration": "12s"}
    workflow = {"spec": {"stages": [{"name": "done"}, {"name": "going", "depends": ["done"]}]}}
    layout = run_layout(workflow, run)
    assert set(layout.nodes) == {"done", "going", "failed", "queued"}
    assert [(e.source, e.target) for e in layout.edges] == [("done", "going")]


def test_a_very_long_edge_gets_dummies_only_next_to_its_ends() -> None:
    chain = [f"c{i:02d}" for i in range(30)]
    layout = layout_dag(chain, [*itertools.pairwise(chain), ("c00", "c29")])
    assert_well_formed(layout, chain)
    long = next(e for e in layout.edges if (e.source, e.target) == ("c00", "c29"))
    assert len(long.points) == 2 + 2 * MAX_BENDS
    half, width = MAX_BENDS // 2, layout.nodes["c00"].width
    near_ends = [layout.nodes[chain[i]].x for i in [*range(1, 1 + half), *range(29 - half, 29)]]
    assert {x for x, _ in long.points[1:-1]} == {*near_ends, *(x + width for x in near_ends)}
    for x, y in long.points[1:-1]:
        for box in layout.nodes.values():
            assert not (box.x <= x <= box.x + box.width and box.y <= y <= box.y + box.height)


def test_an_edge_closing_a_cycle_is_drawn_backwards_to_show_the_cycle() -> None:
    layout = layout_dag(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a"), ("ghost", "a")])
    assert [(e.source, e.target) for e in layout.back_edges] == [("c", "a")]
    back = layout.back_edges[0]
    c, a = layout.nodes["c"], layout.nodes["a"]
    assert back.points == ((c.x + c.width, c.cy), (a.x, a.cy))
    assert back.d.startswith(f"M{c.x + c.width:g},") and back.d.count("C") == 1
