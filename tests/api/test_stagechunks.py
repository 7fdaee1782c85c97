"""Splitting a large run's stage entries into chunks and assembling them again."""

from __future__ import annotations

from collections import Counter

from cyclone.api import keys, stagechunks
from cyclone.api.stagechunks import (
    assemble,
    assembled_version,
    chunk_count_for,
    chunk_index,
    chunk_object,
    group_by_chunk,
    split_status_patch,
    stage_counts,
)


def run_with(stages: dict, count: int | None, uid: str = "uid-1") -> dict:
    status: dict = {"overall": {"phase": "Running"}}
    if count is not None:
        status[stagechunks.CHUNKS_FIELD] = {"count": count}
    else:
        status["stages"] = stages
    return {"apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
            "metadata": {"name": "big", "namespace": "cyclone-t", "uid": uid,
                         "resourceVersion": "7"},
            "status": status}


def entry(phase: str | None) -> dict:
    return {"status": {"phase": phase} if phase else {}, "depends": []}


def test_a_stage_stays_in_one_chunk_for_a_given_count():
    assert chunk_index("build", 25) == chunk_index("build", 25)
    assert {chunk_index(f"s{i}", 7) for i in range(1000)} == set(range(7))


def test_ten_thousand_stages_spread_into_chunks_of_at_most_a_hundred_and_thirty():
    count = chunk_count_for(10_000)
    sizes = Counter(chunk_index(f"stage-{i}", count) for i in range(10_000))
    assert len(sizes) == count == 100
    assert max(sizes.values()) <= 130


def test_the_chunks_of_a_status_assemble_into_the_same_stages():
    stages = {f"s{i}": entry("Succeeded" if i % 3 else "Running") for i in range(40)}
    count = chunk_count_for(len(stages), per_chunk=8)
    run = run_with({}, count)
    chunks = {}
    for index, part in group_by_chunk(stages, count).items():
        chunk = chunk_object(run, index, part)
        chunk["metadata"]["resourceVersion"] = str(100 + index)
        chunks[chunk["metadata"]["name"]] = chunk
        assert chunk["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
        assert chunk["metadata"]["labels"] == {keys.LABEL_WORKFLOWRUN: "big"}
    assembled = assemble(run, chunks.get)
    assert assembled["status"]["stages"] == stages
    assert assembled["status"]["overall"] == {"phase": "Running"}
    assert "stages" not in run["status"], "the stored run is left as it is"
    assert stagechunks.VERSIONS_KEY not in assembled


def test_a_small_run_is_returned_as_it_is():
    run = run_with({"a": entry("Running")}, None)
    assert assemble(run, lambda name: None) is run


def test_a_chunk_of_another_run_of_the_same_name_is_not_taken():
    run = run_with({}, 1)
    leftover = chunk_object(run_with({}, 1, uid="uid-old"), 0, {"a": entry("Failed")})
    assert assemble(run, lambda name: leftover)["status"]["stages"] == {}


def test_the_assembled_version_names_every_chunk_version():
    run = run_with({}, 2)
    chunks = {stagechunks.chunk_name("big", i): {
        **chunk_object(run, i, {}), "metadata": {
            **chunk_object(run, i, {})["metadata"], "resourceVersion": str(10 + i)}}
        for i in range(2)}
    first = assemble(run, chunks.get, with_versions=True)
    chunks["big-stages-1"]["metadata"]["resourceVersion"] = "30"
    second = assemble(run, chunks.get, with_versions=True)
    assert assembled_version(first) != assembled_version(second)
    assert assembled_version(first).startswith("7/")
    assert assembled_version(run) == "7"


def test_a_status_patch_splits_into_the_run_and_the_chunks_it_touches():
    changes = {"overall": {"phase": "Succeeded"},
               "stages": {"s1": {"status": {"phase": "Succeeded"}}, "s2": {"events": None}}}
    run_patch, chunk_patches = split_status_patch(changes, 4)
    assert run_patch == {"overall": {"phase": "Succeeded"}}
    assert chunk_patches == group_by_chunk(changes["stages"], 4)
    assert sum(len(p) for p in chunk_patches.values()) == 2
    assert split_status_patch({"cleaned": True}, 4) == ({"cleaned": True}, {})


def test_stage_counts_are_entries_per_phase():
    assert stage_counts([entry("Succeeded"), entry("Succeeded"), entry(None), None]) == {
        "None": 2, "Succeeded": 2}
