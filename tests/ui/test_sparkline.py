"""The run-history sparkline: one fixed-width slot per run, newest at the right, height by
duration."""

from __future__ import annotations

from cyclone.ui.sparkline import RunPoint, sparkline


def test_bars_are_as_high_as_their_share_of_the_longest_run() -> None:
    spark = sparkline([RunPoint("a", "Succeeded", 10), RunPoint("b", "Failed", 40),
                       RunPoint("c", "Succeeded", 20)], width=300, height=40, slots=30)
    heights = {bar.name: bar.height for bar in spark.bars}
    assert heights == {"a": 10, "b": 40, "c": 20}
    assert spark.longest == 40
    assert all(bar.y + bar.height == 40 for bar in spark.bars)


def test_the_newest_run_is_at_the_right_edge_and_slots_keep_their_width() -> None:
    spark = sparkline([RunPoint("old", "Succeeded", 1), RunPoint("new", "Succeeded", 1)],
                      width=300, slots=30, gap=2)
    old, new = spark.bars
    assert new.x + new.width + 2 == 300
    assert new.x - old.x == 10
    assert old.width == new.width == 8


def test_only_the_last_slots_runs_are_drawn() -> None:
    points = [RunPoint(f"r{i}", "Succeeded", i + 1) for i in range(100)]
    spark = sparkline(points, slots=30)
    assert [bar.name for bar in spark.bars] == [f"r{i}" for i in range(70, 100)]
    assert spark.bars[0].x == 0


def test_a_run_without_duration_still_gets_a_visible_bar() -> None:
    spark = sparkline([RunPoint("waiting", "Pending", None), RunPoint("quick", "Succeeded", 0)],
                      height=48, floor=2)
    assert [bar.height for bar in spark.bars] == [2, 2]
    assert spark.longest == 0
    assert spark.bars[0].phase == "Pending"


def test_no_runs_no_bars() -> None:
    spark = sparkline([])
    assert spark.bars == () and spark.longest == 0
