"""The engine never changes an object it was handed by a watch or a write: runs of the
engine on the embedded cluster with read-only objects (`CYCLONE_READ_ONLY_OBJECTS`),
where any such change raises at the line that makes it.

The embedded store shares one object per change between itself and every watcher, so a
consumer that changed one would change the store's copy and every other watcher's. These
are cases of other modules run again under that check; more of the suite can be run the
same way with the variable set.
"""

from __future__ import annotations

import pytest

from cyclone.kube.embedded.frozen import enforcing

from .test_dag import test_diamond_dag_succeeds_in_dependency_order
from .test_finish import (
    test_deleting_a_run_cleans_up_first,
    test_gc_removes_pods_and_run_data_then_marks_cleaned,
    test_retry_of_reuses_succeeded_stages_and_outputs,
)
from .test_pods import test_warning_events_of_a_stage_pod_are_copied_to_the_stage
from .test_rerun import test_a_rerun_runs_every_stage_again_a_retry_reuses_them

__all__ = [
    "test_a_rerun_runs_every_stage_again_a_retry_reuses_them",
    "test_deleting_a_run_cleans_up_first",
    "test_diamond_dag_succeeds_in_dependency_order",
    "test_gc_removes_pods_and_run_data_then_marks_cleaned",
    "test_retry_of_reuses_succeeded_stages_and_outputs",
    "test_warning_events_of_a_stage_pod_are_copied_to_the_stage",
]


@pytest.fixture(autouse=True)
def read_only_objects():
    with enforcing():
        yield
