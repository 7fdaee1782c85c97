"""Signed SCM deliveries are known by what is signed, not by their delivery id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cyclone.engine.core.deliveries import (
    Seen,
    Verdict,
    claim,
    delivery_digest,
    parse_record,
    render_record,
)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
BODY = b'{"ref": "refs/heads/main"}'


def test_the_digest_covers_body_event_integration_and_provider():
    digest = delivery_digest("GitHub", "push", "gh", BODY)
    assert digest == delivery_digest("GitHub", "push", "gh", BODY)
    assert digest != delivery_digest("GitHub", "push", "gh", BODY + b" ")
    assert digest != delivery_digest("GitHub", "pull_request", "gh", BODY)
    assert digest != delivery_digest("GitHub", "push", "gh2", BODY)
    assert digest != delivery_digest("GitLab", "push", "gh", BODY)
    assert delivery_digest("a", "bc", "d", b"") != delivery_digest("ab", "c", "d", b"")


def test_a_first_delivery_is_new_and_recorded_for_the_window():
    verdict, record = claim({}, "d1", "id-1", NOW, HOUR)
    assert verdict is Verdict.NEW
    assert record is not None and record["d1"].expires == NOW + HOUR


def test_the_same_body_under_another_or_no_delivery_id_is_a_replay():
    _, record = claim({}, "d1", "id-1", NOW, HOUR)
    assert claim(record, "d1", "id-2", NOW + timedelta(minutes=5), HOUR) == \
        (Verdict.REPLAY, None)
    assert claim(record, "d1", "body-abc", NOW, HOUR) == (Verdict.REPLAY, None)


def test_the_same_delivery_again_is_a_retry_that_goes_ahead():
    _, record = claim({}, "d1", "id-1", NOW, HOUR)
    assert claim(record, "d1", "id-1", NOW + timedelta(minutes=1), HOUR) == \
        (Verdict.RETRY, None)


def test_after_the_window_the_same_body_is_new_again_and_expired_entries_go():
    _, record = claim({}, "d1", "id-1", NOW, HOUR)
    later = NOW + HOUR + timedelta(seconds=1)
    verdict, again = claim(record, "d2", "id-2", later, HOUR)
    assert verdict is Verdict.NEW and set(again) == {"d2"}
    assert claim(record, "d1", "id-3", later, HOUR)[0] is Verdict.NEW


def test_the_record_is_bounded_dropping_the_entries_closest_to_expiry():
    record = {f"d{i}": Seen(NOW + timedelta(minutes=i), "x") for i in range(1, 4)}
    verdict, kept = claim(record, "new", "id", NOW, HOUR, max_entries=3)
    assert verdict is Verdict.NEW
    assert set(kept) == {"d2", "d3", "new"}


def test_the_record_round_trips_through_configmap_data_and_skips_garbage():
    _, record = claim({}, "d1", "id-1", NOW, HOUR)
    data = render_record(record)
    assert all(isinstance(v, str) for v in data.values())
    assert parse_record(data) == record
    assert parse_record({**data, "bad": "not-a-time x"}) == record
    assert parse_record(None) == {}
