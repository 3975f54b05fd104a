"""ingest/batch.py helpers that work without a store."""

from __future__ import annotations

from fleetlens.ingest.batch import estimate_events
from fleetlens.sources.base import Delivery


def test_estimate_events_counts_the_lines_of_every_payload():
    payloads = [b'{"a":1}', b'{"a":1}\n{"a":2}\n{"a":3}', b'{"a":1}\n', b""]
    delivery = Delivery("s", 0, [b"1-0", b"2-0", b"3-0", b"4-0"], payloads)
    # as many as lines of the payloads joined by newlines (a trailing newline or an empty payload counts one)
    assert estimate_events(delivery) == b"\n".join(payloads).count(b"\n") + 1 == 7
    assert estimate_events(Delivery("s", 0, [], [])) == 0
