import pytest

from cyclone.engine.core.podvolumes import preset_volumes
from cyclone.engine.core.requirements import container_resources, quota_requirements


@pytest.mark.parametrize(
    ("quota", "expected"),
    [
        (None, {}),
        ({"requests.cpu": "1"}, {"requests": {"cpu": "1"}}),
        (
            {"limits.memory": "1Gi", "cpu": 2},
            {"limits": {"memory": "1Gi"}, "requests": {"cpu": "2"}},
        ),
        ({"pods": "10", "count/pods": "3", "requests.storage": "5Gi"},
         {"requests": {"storage": "5Gi"}}),
    ],
)
def test_quota_requirements(quota, expected):
    assert quota_requirements(quota) == expected


def test_container_resources_fill_per_entry_in_order():
    own = {"requests": {"cpu": "1"}, "claims": [{"name": "gpu"}]}
    first = {"requests": {"cpu": "9", "memory": "1Gi"}}
    second = {"requests": {"memory": "9Gi"}, "limits": {"memory": "2Gi"}}
    assert container_resources(own, [first, second]) == {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"memory": "2Gi"},
        "claims": [{"name": "gpu"}],
    }
    assert container_resources(None, []) == {}


def test_unknown_preset_volume_type_is_an_error():
    with pytest.raises(ValueError, match=r"spec.volumes\[0\]: unknown volume type"):
        preset_volumes([{"type": "NFS", "mountPath": "/x"}])
