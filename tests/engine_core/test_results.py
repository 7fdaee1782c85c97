import pytest

from cyclone.engine.core.results import parse_results


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (None, []),
        ("", []),
        ("a:1", [{"key": "a", "value": "1"}]),
        ("  a : 1 \n\n b:2\n", [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]),
        ("url:http://x:8080/p", [{"key": "url", "value": "http://x:8080/p"}]),
        ("garbage\n:novalue\nk:\n", [{"key": "k", "value": ""}]),
        ("a:1\nb:2\na:3", [{"key": "a", "value": "3"}, {"key": "b", "value": "2"}]),
        ("LastCommitID:abc123\r\n", [{"key": "LastCommitID", "value": "abc123"}]),
    ],
)
def test_parse_results(message, expected):
    assert parse_results(message) == expected
