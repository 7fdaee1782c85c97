"""A run assembled from the last assembly of its chunks (`chunks.StageChunks.assemble`)
against the assembly of every chunk (`stagechunks.assemble`): random chunk versions that
change a few entries, add or drop some, move an entry out of its place, belong to another
run or go missing, and restarts that drop what was kept."""

from __future__ import annotations

import copy
import random

import pytest

from cyclone.api import stagechunks
from cyclone.engine.controllers.chunks import StageChunks

NAMESPACE = "default"
PHASES = ["Pending", "Running", "Succeeded", "Failed"]


class Cache:
    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}

    def get(self, namespace: str | None, name: str) -> dict | None:
        return self.objects.get(name)

    def list(self, namespace: str | None = None, label_selector: str | None = None
             ) -> list[dict]:
        return list(self.objects.values())


def run_object(uid: str, count: int) -> dict:
    return {"metadata": {"name": "r", "namespace": NAMESPACE, "uid": uid,
                         "resourceVersion": "1"},
            "status": {"overall": {"phase": "Running"},
                       stagechunks.CHUNKS_FIELD: {"count": count}}}


def chunk(run: dict, index: int, stages: dict, version: int, owner: str | None = None
          ) -> dict:
    obj = stagechunks.chunk_object(run, index, stages)
    obj["metadata"]["resourceVersion"] = str(version)
    if owner is not None:
        obj["metadata"]["ownerReferences"][0]["uid"] = owner
    return obj


@pytest.mark.parametrize("seed", range(40))
def test_assembly_from_the_last_one_equals_the_assembly_of_every_chunk(seed):
    rng = random.Random(seed)
    count = rng.randint(1, 4)
    run = run_object("uid-1", count)
    names = [f"s{index}" for index in range(rng.randint(0, 30))]
    cache = Cache()
    version = 1
    for index, part in stagechunks.group_by_chunk(
            {name: {"status": {"phase": "Pending"}} for name in names}, count).items():
        cache.objects[stagechunks.chunk_name("r", index)] = chunk(run, index, part, version)
    chunks = StageChunks(None, cache)  # type: ignore[arg-type]
    for _ in range(60):
        roll = rng.random()
        name = stagechunks.chunk_name("r", rng.randrange(count))
        found = cache.objects.get(name)
        version += 1
        if roll < 0.05:
            chunks = StageChunks(None, cache)  # type: ignore[arg-type]
        elif roll < 0.1:
            cache.objects.pop(name, None)
        elif roll < 0.15:
            run = run_object(rng.choice(["uid-1", "uid-2"]), count)
        elif roll < 0.2 and found is not None:
            cache.objects[name] = chunk(run, found["spec"]["index"],
                                        found["status"]["stages"], version, owner="other")
        elif roll < 0.25 and found is not None:
            stages = dict(found["status"]["stages"])
            stages[rng.choice(names or ["s0"])] = {"status": {"phase": "Failed"}}
            cache.objects[name] = chunk(run, found["spec"]["index"], stages, version)
        elif found is not None:
            stages = dict(found["status"]["stages"])
            for stage in rng.sample(list(stages), min(len(stages), rng.randint(0, 3))):
                if rng.random() < 0.1:
                    stages.pop(stage)
                else:
                    stages[stage] = {"status": {"phase": rng.choice(PHASES)}}
            cache.objects[name] = chunk(run, found["spec"]["index"], stages, version)
        else:
            index = int(name.rpartition("-")[2])
            part = stagechunks.group_by_chunk(
                {stage: {"status": {"phase": "Pending"}} for stage in names}, count)
            cache.objects[name] = chunk(run, index, part.get(index) or {}, version)
        before = copy.deepcopy(cache.objects)
        assembled = chunks.assemble(run)
        assert assembled == stagechunks.assemble(
            run, lambda chunk_name: cache.get(NAMESPACE, chunk_name), with_versions=True)
        assert cache.objects == before
