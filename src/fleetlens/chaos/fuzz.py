"""Coverage-guided fuzzing (atheris / libFuzzer) of the event decoder and the NDJSON splitter.

Each input is cut into 1–4 MQ payloads and decoded by both paths (``decode_payloads``: the
numpy line splitter, the Arrow fast path and bisection; ``decode_payloads_reference``: orjson per
line). A crash is any of: an exception, a process crash (pyarrow once segfaulted on a bare
``null`` line), the decoder's internal-error fallback firing, the two paths disagreeing, or a
non-blank line that is neither stored nor rejected exactly once.

Run: ``python -m fleetlens.chaos.fuzz [libFuzzer flags] [corpus dir]``, e.g. ``-runs=100000`` or
``-max_total_time=600``; ``fleetlens chaos fuzz`` wraps it. The seed corpus (``write_seeds``) is
good events plus one line of every kind in ``hostile.BAD_MAKERS`` (``fuzz_seeds``).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["fleetlens.contract"]):
    from fleetlens.contract.decode import decode_payloads, decode_payloads_reference


def _comparable(d) -> tuple:
    return (d.events.to_pylist(), d.metrics.to_pylist(), [tuple(vars(r).values()) for r in d.rejections])


def split_input(data: bytes) -> list[bytes]:
    """The fuzzer's bytes as 1–4 payloads (the first byte picks the count, 0xFE separates)."""
    if not data:
        return [b""]
    count = data[0] % 4 + 1
    return data[1:].split(b"\xfe", count - 1)


def check(data: bytes) -> None:
    """Decode ``data`` both ways; raise on any disagreement or lost line."""
    payloads = split_input(data)
    fast = decode_payloads(payloads)
    for r in fast.rejections:
        if r.reason.startswith("internal decoder error"):
            raise AssertionError(r.reason)
    if _comparable(fast) != _comparable(decode_payloads_reference(payloads)):
        raise AssertionError("fast and reference paths disagree")
    lines = sum(1 for p in payloads for line in p.split(b"\n") if line.strip(b" \t\r"))
    outcomes = fast.events.num_rows + fast.metrics.num_rows + len(fast.rejections)
    if outcomes != lines:
        raise AssertionError(f"{lines} non-blank lines but {outcomes} stored or rejected")


def main(argv: list[str]) -> None:
    """libFuzzer entry point: ``argv`` holds its flags and corpus directories."""
    atheris.Setup(argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
