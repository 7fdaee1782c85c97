from support.xdist_groups import scope_of


def test_browser_and_real_node_files_share_one_scope_and_other_files_keep_their_own() -> None:
    browser = scope_of("tests/ui/test_dag_component.py::test_zoom[kube]")
    node = scope_of("tests/realnode/test_real_node.py::test_the_seed_steps_run_on_the_real_node")
    assert browser == node
    assert scope_of("tests/engine/test_shards.py::test_a[kube]") == "tests/engine/test_shards.py"
    assert scope_of("tests/engine/test_shards.py::test_b") != browser
    assert scope_of("tests/uitools/test_x.py::t") == "tests/uitools/test_x.py"
