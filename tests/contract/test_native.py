"""The native fast path (``native/``, the ``fleetlens_native`` extension) at the edges where a JSON
parser can differ from orjson: number precision and range, escapes, duplicate keys, nulls, and
the split of a call across threads. Every case is compared with the reference path."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from fleetlens.contract import nativepath
from fleetlens.contract.decode import decode_payloads, decode_payloads_native, decode_payloads_reference
from fleetlens.contract.lines import index_lines

from .conftest import as_comparable


def test_the_extension_is_built_and_is_the_default() -> None:
    """scripts/setup.sh builds it; without it ingest would silently run on the slower Arrow path."""
    assert nativepath.AVAILABLE
    line = b'{"event_id":"a","ts":1,"kind":"metric","service":"s","name":"n","value":1}'
    index = index_lines([line])
    batch, punted = nativepath.parse_lines(index, np.array([0]))
    assert batch.rows.num_rows == 1 and len(punted) == 0


def test_without_the_extension_the_arrow_path_decodes() -> None:
    """A machine without cargo still runs fleetlens: the decoder falls back to the Arrow fast path."""
    code = (
        "import sys; sys.modules['fleetlens_native'] = None  # import fails as if not installed\n"
        "from fleetlens.contract import decode\n"
        "line = b'{\"event_id\":\"a\",\"ts\":1,\"kind\":\"metric\",\"service\":\"s\",\"name\":\"n\",\"value\":1}'\n"
        "print(decode.FAST_PATH, decode.decode_payloads([line, b'{\"x\":1}']).metrics.num_rows)\n"
        "decode.decode_payloads_native([line])\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.split() == ["arrow", "1"], run.stderr
    assert "RuntimeError: the fleetlens_native extension is not installed" in run.stderr


def metric(value_json: str, extra: str = "") -> bytes:
    return ('{"event_id":"m","ts":1795165200000,"kind":"metric","service":"s","name":"n","value":%s%s}'
            % (value_json, extra)).encode()


def log(extra: str) -> bytes:
    return ('{"event_id":"l","ts":"2026-11-20T09:00:00Z","kind":"log","service":"s","level":"info",'
            '"event_type":"t","message":"m"%s}' % extra).encode()


def same(lines: list[bytes]) -> None:
    payloads = [b"\n".join(lines)]
    assert as_comparable(decode_payloads_native(payloads)) == as_comparable(decode_payloads_reference(payloads))


@pytest.mark.parametrize(
    "value",
    ["0.1", "1e-7", "2.2250738585072011e-308", "4.9e-324", "1.7976931348623157e308", "-0.0", "0", "-5",
     "9007199254740993", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
     "-9223372036854775809", "18446744073709551615", "18446744073709551621", "1e400", "123456789012345678901234567890",
     "3.141592653589793238462643383279", "1E2", "1.0", "true", "null", '"5"', "[]", "{}"],
)
def test_numbers_in_a_number_field_and_in_attrs(value: str) -> None:
    same([metric(value), metric("1", ',"extra":%s' % value), metric("1", ',"attrs":{"k":%s}' % value)])


@pytest.mark.parametrize("value", ["1", "-1", "0", "1.0", "1e2", "9223372036854775807", "9223372036854775808",
                                   "-9223372036854775809", "true", '"1"'])
def test_integer_fields(value: str) -> None:
    same([log(',"line":%s' % value), log(',"attempt":%s' % value)])


@pytest.mark.parametrize(
    "extra",
    [
        ',"ev\\u0065nt_id":"x"',  # an escaped key spelling a contract field: a duplicate event_id
        ',"\\u006cevel":"error"',
        ',"message":"caf\\u00e9 \\ud83d\\ude00 \\n\\t\\"q\\" \\\\"',
        ',"message":"\\ud800"',  # lone surrogate: not valid JSON for orjson
        ',"message":"é😀"',
        ',"attrs":{"a":1,"a":2}',
        ',"attrs":{"a":1,"a":null}',
        ',"x":1,"x":null',
        ',"x":null',
        ',"attrs":null',
        ',"attrs":{"a":null,"b":true,"c":false,"d":"s","e":1.5,"f":-3}',
        ',"attrs":{"a":{"b":1}}',
        ',"attrs":[1]',
        ',"x":[1]',
        ',"attrs":{"a":1},"a":2',  # same key in attrs and top level: both kept, attrs wins in validation
        ',"level":null',
        ',"ts":null',
        ',"ts":1.5',
        ',"ts":true',
        ',"user_id":5',
        ',"duration_ms":"5"',
        ',"duration_ms":-1',
        ',"attrs":{"' + "k" * 200 + '":1}',
        ',"attrs":{"":1}',
    ],
)
def test_keys_escapes_duplicates_and_types(extra: str) -> None:
    same([log(extra), log("")])


@pytest.mark.parametrize("tail", [b" ", b"\t", b" {}", b"x", b",", b" null"])
def test_trailing_bytes(tail: bytes) -> None:
    same([log("") + tail, log("")])


def test_many_attributes_use_the_sorted_duplicate_check() -> None:
    attrs = ",".join(f'"k{i}":{i}' for i in range(40))
    same([log(',"attrs":{%s}' % attrs), log(',"attrs":{%s,"k7":1}' % attrs), log(',"attrs":{%s}' % attrs)])


def test_a_call_split_across_threads_keeps_order_and_punts_in_every_part() -> None:
    lines = []
    for i in range(30_000):
        e = {"event_id": f"e{i}", "ts": 1795165200000 + i, "kind": "log", "service": "s", "level": "info",
             "event_type": "t", "message": "m" * (1 + i % 50), "attrs": {"i": i}}
        if i % 997 == 0:
            e["line"] = 1.5  # wrong type: punted, rejected by the reference path
        lines.append(json.dumps(e).encode())
    payloads = [b"\n".join(lines[i : i + 100]) for i in range(0, len(lines), 100)]
    native = decode_payloads_native(payloads)
    assert as_comparable(native) == as_comparable(decode_payloads_reference(payloads))
    assert len(native.rejections) == len(range(0, 30_000, 997))
    assert as_comparable(decode_payloads(payloads)) == as_comparable(native)  # native is the default


def test_columns_are_the_parsers_own_memory_read_only_and_outlive_the_call() -> None:
    """The extension hands its column memory to Arrow without a copy (a copy under the GIL stalled other
    threads); the buffers refuse writes and stay valid once everything but the table is gone."""
    import ctypes
    import gc

    import fleetlens_native

    lines = [log(',"attrs":{"k":%d}' % i) for i in range(5000)]
    index = index_lines([b"\n".join(lines)])
    parts = fleetlens_native.parse_lines(nativepath._FIELDS, index.buf,
                                         np.asarray(index.starts, np.int64).tobytes(),
                                         np.asarray(index.ends, np.int64).tobytes(),
                                         np.arange(len(lines), dtype=np.int64).tobytes(), 2)
    _, _, _, _, *buffers = parts[0]["rows"][0]  # the _row column: int64 values
    assert all(isinstance(b, fleetlens_native.Buffer) for b in buffers)  # not a bytes copy
    view = memoryview(buffers[0])
    assert view.readonly and view.nbytes == len(buffers[0]) == 8 * len(np.frombuffer(buffers[0], np.int64))
    with pytest.raises(TypeError):
        view[0] = 1
    with pytest.raises(TypeError, match="not writable"):  # a request for a writable buffer is refused
        ctypes.c_char.from_buffer(buffers[0])
    view.release()
    batch, punted = nativepath.parse_lines(index, np.arange(len(lines)))
    expected = decode_payloads_reference([b"\n".join(lines)])
    del parts, buffers, index
    gc.collect()
    assert len(punted) == 0 and batch.rows.num_rows == 5000
    table = decode_payloads_native([b"\n".join(lines)])
    gc.collect()
    assert as_comparable(table) == as_comparable(expected)
