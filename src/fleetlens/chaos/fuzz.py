"""Coverage-guided fuzzing (atheris / libFuzzer) of the event decoder and the NDJSON splitter.

Each input is cut into 1–4 MQ payloads and decoded by every path: the numpy line splitter with
the native fast path (``decode_payloads_native``, when built) and with the Arrow fast path and
bisection (``decode_payloads_arrow``), and ``decode_payloads_reference`` (orjson per line). A
crash is any of: an exception, a process crash (pyarrow once segfaulted on a bare ``null``
line), the decoder's internal-error fallback firing, a fast path disagreeing with the reference,
or a non-blank line that is neither stored nor rejected exactly once. (The native extension is
compiled code: libFuzzer's coverage does not see inside it, the comparison still checks it.)

Run: ``python -m fleetlens.chaos.fuzz [libFuzzer flags] [corpus dir]``, e.g. ``-runs=100000`` or
``-max_total_time=600``; ``fleetlens chaos fuzz`` wraps it. The seed corpus (``write_seeds``) is
good events plus one line of every kind in ``hostile.BAD_MAKERS`` (``fuzz_seeds``).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["fleetlens.contract"]):
    from fleetlens.contract import nativepath
    from fleetlens.contract.decode import decode_payloads_arrow, decode_payloads_native, decode_payloads_reference

FAST_PATHS = [decode_payloads_arrow] + ([decode_payloads_native] if nativepath.AVAILABLE else [])


def _comparable(d) -> tuple:
    return (d.events.to_pylist(), d.metrics.to_pylist(), [tuple(vars(r).values()) for r in d.rejections])


def split_input(data: bytes) -> list[bytes]:
    """The fuzzer's bytes as 1–4 payloads (the first byte picks the count, 0xFE separates)."""
    if not data:
        return [b""]
    count = data[0] % 4 + 1
    return data[1:].split(b"\xfe", count - 1)


def check(data: bytes) -> None:
    """Decode ``data`` every way; raise on any disagreement or lost line."""
    payloads = split_input(data)
    reference = _comparable(decode_payloads_reference(payloads))
    for path in FAST_PATHS:
        fast = path(payloads)
        for r in fast.rejections:
            if r.reason.startswith("internal decoder error"):
                raise AssertionError(f"{path.__name__}: {r.reason}")
        if _comparable(fast) != reference:
            raise AssertionError(f"{path.__name__} and the reference path disagree")
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
