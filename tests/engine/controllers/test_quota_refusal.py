"""Which refusals of a stage's pod leave the stage waiting for quota rather than failing it."""

from __future__ import annotations

import pytest

from cyclone.engine.controllers.launch import is_quota_refusal
from cyclone.kube.errors import Conflict, Forbidden


@pytest.mark.parametrize("message", [
    'pods "wf-a-1" is forbidden: exceeded quota: one-pod, requested: pods=1, used: pods=1, '
    "limited: pods=1",
    'pods "wf-a-1" is forbidden: status unknown for quota: one-pod, resources: pods',
])
def test_quota_refusals_are_waited_out(message):
    assert is_quota_refusal(Forbidden(message))


@pytest.mark.parametrize("error", [
    Forbidden('pods "wf-a-1" is forbidden: failed quota: q: must specify limits.cpu'),
    Forbidden('pods "wf-a-1" is forbidden: unable to validate against any pod security policy'),
    Conflict("exceeded quota"),
])
def test_other_refusals_are_not(error):
    assert not is_quota_refusal(error)
