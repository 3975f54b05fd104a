//! The native fast path of fleetlens' event decoder.
//!
//! `parse_lines` reads NDJSON lines of the event contract into Arrow column buffers in the raw
//! shape of `fleetlens/contract/raw.py` (one row per line, fields typed by their wire type, `ts`
//! split into `ts_int` / `ts_str`, attributes in long form). It is type-strict and decides
//! nothing it is not sure of: a line it cannot decode exactly as the reference path would (not
//! an object, a wrong JSON type, a duplicate key, a number that might have lost precision, bad
//! JSON of any kind) is *punted*, i.e. handed back by index for the Python reference path, which
//! gives the verdict and the reason. So this path never accepts what the reference rejects; the
//! differential tests in `tests/contract` hold the two equal.
//!
//! The field list (names and wire types) comes from Python (`fleetlens.contract.schema`), so
//! the contract is written down once.

use std::borrow::Cow;
use std::fmt;
use std::os::raw::{c_int, c_void};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::ffi;
use pyo3::types::{PyDict, PyList};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

const SRC_ATTRS: i8 = 1; // from the event's "attrs" object
const SRC_TOP: i8 = 2; // an unknown top-level field
const EXACT_INT_LIMIT: f64 = 9007199254740992.0; // 2^53: integral floats beyond may be promoted integers

#[derive(Clone, Copy, PartialEq, Debug)]
enum Wire {
    Str,
    Int,
    Num,
    Ts,
    Attrs,
}

/// The contract's top-level fields, looked up by key length and last byte (one compare per key,
/// nearly always: no two contract fields share both).
struct Spec {
    wires: Vec<Wire>,
    column: Vec<usize>, // field -> its column among the scalar fields (Str/Int/Num)
    buckets: Vec<Vec<(Vec<u8>, usize)>>, // by bucket(key)
}

const MAX_FIELD_LEN: usize = 32; // longer keys are never contract fields

fn bucket(key: &[u8]) -> Option<usize> {
    let (&last, n) = (key.last()?, key.len());
    (n <= MAX_FIELD_LEN).then(|| n * 256 + last as usize)
}

impl Spec {
    fn new(fields: &[(String, String)]) -> PyResult<Spec> {
        let mut spec = Spec { wires: vec![], column: vec![], buckets: vec![vec![]; (MAX_FIELD_LEN + 1) * 256] };
        let mut scalar = 0;
        for (i, (name, wire)) in fields.iter().enumerate() {
            let w = match wire.as_str() {
                "string" => Wire::Str,
                "integer" => Wire::Int,
                "number" => Wire::Num,
                "ts" => Wire::Ts,
                "attrs" => Wire::Attrs,
                other => return Err(PyValueError::new_err(format!("unknown wire type {other:?} of {name:?}"))),
            };
            spec.wires.push(w);
            spec.column.push(scalar);
            if matches!(w, Wire::Str | Wire::Int | Wire::Num) {
                scalar += 1;
            }
            let Some(b) = bucket(name.as_bytes()) else {
                return Err(PyValueError::new_err(format!("field name {name:?} is empty or longer than {MAX_FIELD_LEN}")));
            };
            spec.buckets[b].push((name.as_bytes().to_vec(), i));
        }
        Ok(spec)
    }

    fn lookup(&self, key: &str) -> Option<usize> {
        let candidates = &self.buckets[bucket(key.as_bytes())?];
        candidates.iter().find(|(name, _)| name.as_slice() == key.as_bytes()).map(|(_, i)| *i)
    }
}

/// One JSON scalar as serde_json reports it (`U` for non-negative integers).
#[derive(Clone, Debug)]
enum Val<'de> {
    S(Cow<'de, str>),
    I(i64),
    U(u64),
    F(f64),
    B(bool),
}

impl<'de> Val<'de> {
    fn as_i64(&self) -> Option<i64> {
        match *self {
            Val::I(i) => Some(i),
            Val::U(u) => i64::try_from(u).ok(),
            _ => None,
        }
    }

    /// The value as a float the way Python's `float(v)` gives it, unless precision is in doubt.
    fn as_f64(&self) -> Option<f64> {
        match *self {
            Val::I(i) => Some(i as f64),
            Val::U(u) => i64::try_from(u).ok().map(|i| i as f64),
            // serde_json parses integers beyond u64 as floats: such a value (integral, >= 2^53)
            // is left to the reference path, which knows whether the JSON spelled an integer.
            Val::F(f) if f.fract() == 0.0 && f.abs() >= EXACT_INT_LIMIT => None,
            Val::F(f) => Some(f),
            _ => None,
        }
    }
}

/// What one line said, before it is known to be decodable (then it is appended to the columns).
struct Line<'de> {
    vals: Vec<Option<Val<'de>>>, // by field index; None = absent or null
    seen: Vec<bool>,
    attrs: Vec<(Cow<'de, str>, i8, Option<Val<'de>>)>, // null values kept until the duplicate check
}

impl<'de> Line<'de> {
    fn new(n: usize) -> Self {
        Line { vals: vec![None; n], seen: vec![false; n], attrs: vec![] }
    }

    fn clear(&mut self) {
        self.vals.iter_mut().for_each(|v| *v = None);
        self.seen.iter_mut().for_each(|s| *s = false);
        self.attrs.clear();
    }

    /// Whether a key repeats within one source (the reference keeps the last value: punt).
    fn has_duplicate_attr(&self) -> bool {
        let a = &self.attrs;
        if a.len() <= 24 {
            (1..a.len()).any(|j| (0..j).any(|i| a[i].1 == a[j].1 && a[i].0 == a[j].0))
        } else {
            let mut keys: Vec<(i8, &str)> = a.iter().map(|(k, s, _)| (*s, k.as_ref())).collect();
            keys.sort_unstable();
            keys.windows(2).any(|w| w[0] == w[1])
        }
    }
}

// ---------------------------------------------------------------- serde seeds

fn punt<E: de::Error>(what: &str) -> E {
    E::custom(what)
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeySeed)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// A JSON scalar or null; anything else (object, array) is an error, i.e. a punt.
struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Option<Val<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ScalarSeed)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Option<Val<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON scalar")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(Val::B(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Val::I(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Val::U(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(Val::F(v)))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Val::S(Cow::Borrowed(v))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Val::S(Cow::Owned(v.to_owned()))))
    }
}

/// The `attrs` object (or null), its entries appended to the line.
struct AttrsSeed<'a, 'de> {
    line: &'a mut Line<'de>,
}

impl<'a, 'de> DeserializeSeed<'de> for AttrsSeed<'a, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a, 'de> Visitor<'de> for AttrsSeed<'a, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let v = map.next_value_seed(ScalarSeed)?;
            self.line.attrs.push((key, SRC_ATTRS, v));
        }
        Ok(())
    }
}

/// One whole line: a JSON object of contract fields.
struct LineSeed<'a, 'de> {
    spec: &'a Spec,
    line: &'a mut Line<'de>,
}

impl<'a, 'de> DeserializeSeed<'de> for LineSeed<'a, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'a, 'de> Visitor<'de> for LineSeed<'a, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let spec = self.spec;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let Some(f) = spec.lookup(&key) else {
                let v = map.next_value_seed(ScalarSeed)?;
                self.line.attrs.push((key, SRC_TOP, v));
                continue;
            };
            if std::mem::replace(&mut self.line.seen[f], true) {
                return Err(punt("duplicate key"));
            }
            if spec.wires[f] == Wire::Attrs {
                map.next_value_seed(AttrsSeed { line: &mut *self.line })?;
                continue;
            }
            let v = map.next_value_seed(ScalarSeed)?;
            let ok = match (&v, spec.wires[f]) {
                (None, _) => true,
                (Some(Val::S(_)), Wire::Str | Wire::Ts) => true,
                (Some(v), Wire::Int | Wire::Ts) => v.as_i64().is_some(),
                (Some(v), Wire::Num) => !matches!(v, Val::B(_)) && v.as_f64().is_some(),
                _ => false,
            };
            if !ok {
                return Err(punt("wrong JSON type"));
            }
            self.line.vals[f] = v;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- column buffers

/// An Arrow validity (or boolean values) bitmap being built.
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    len: usize,
    zeros: usize,
}

impl Bits {
    fn with_capacity(bits: usize) -> Bits {
        Bits { bytes: Vec::with_capacity(bits.div_ceil(8)), len: 0, zeros: 0 }
    }

    #[inline]
    fn push(&mut self, bit: bool) {
        if self.len % 8 == 0 {
            self.bytes.push(0);
        }
        if bit {
            *self.bytes.last_mut().unwrap() |= 1 << (self.len % 8);
        } else {
            self.zeros += 1;
        }
        self.len += 1;
    }
}

enum Col {
    Str { valid: Bits, offsets: Vec<i32>, data: Vec<u8> },
    I64 { valid: Bits, values: Vec<i64> },
    F64 { valid: Bits, values: Vec<f64> },
    I8 { valid: Bits, values: Vec<i8> },
    Bool { valid: Bits, values: Bits },
}

impl Col {
    fn str(rows: usize) -> Col {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Col::Str { valid: Bits::with_capacity(rows), offsets, data: vec![] }
    }
    fn i64(rows: usize) -> Col {
        Col::I64 { valid: Bits::with_capacity(rows), values: Vec::with_capacity(rows) }
    }
    fn f64(rows: usize) -> Col {
        Col::F64 { valid: Bits::with_capacity(rows), values: Vec::with_capacity(rows) }
    }

    /// Appends `v` (None = null); the caller has checked that `v` fits the column's type.
    #[inline]
    fn push(&mut self, v: Option<&Val>) {
        match self {
            Col::Str { valid, offsets, data } => {
                if let Some(Val::S(s)) = v {
                    data.extend_from_slice(s.as_bytes());
                }
                valid.push(v.is_some());
                offsets.push(data.len() as i32);
            }
            Col::I64 { valid, values } => {
                valid.push(v.is_some());
                values.push(v.and_then(Val::as_i64).unwrap_or(0));
            }
            Col::F64 { valid, values } => {
                valid.push(v.is_some());
                values.push(v.and_then(Val::as_f64).unwrap_or(0.0));
            }
            Col::Bool { valid, values } => {
                valid.push(v.is_some());
                values.push(matches!(v, Some(Val::B(true))));
            }
            Col::I8 { .. } => unreachable!("int8 columns take push_i8"),
        }
    }

    fn push_i8(&mut self, x: i8) {
        if let Col::I8 { valid, values } = self {
            valid.push(true);
            values.push(x);
        }
    }

    fn data_len(&self) -> usize {
        match self {
            Col::Str { data, .. } => data.len(),
            _ => 0,
        }
    }

    /// [type, length, null count, validity bitmap or None, value buffers...]; the buffers are
    /// `Buffer`s: the column's own memory, handed over without a copy.
    fn into_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        let (kind, valid, buffers): (&str, Bits, Vec<Owned>) = match self {
            Col::Str { valid, offsets, data } => ("string", valid, vec![Owned::I32(offsets), Owned::U8(data)]),
            Col::I64 { valid, values } => ("int64", valid, vec![Owned::I64(values)]),
            Col::F64 { valid, values } => ("float64", valid, vec![Owned::F64(values)]),
            Col::I8 { valid, values } => ("int8", valid, vec![Owned::I8(values)]),
            Col::Bool { valid, values } => ("bool", valid, vec![Owned::U8(values.bytes)]),
        };
        let (len, zeros) = (valid.len, valid.zeros);
        let validity = (zeros > 0).then(|| Buffer { data: Owned::U8(valid.bytes) });
        let mut out: Vec<Bound<'_, PyAny>> = vec![
            kind.into_pyobject(py)?.into_any(),
            len.into_pyobject(py)?.into_any(),
            zeros.into_pyobject(py)?.into_any(),
            validity.into_pyobject(py)?.into_any(),
        ];
        for data in buffers {
            out.push(Bound::new(py, Buffer { data })?.into_any());
        }
        Ok(PyList::new(py, out)?.into_any())
    }
}

/// A column buffer's memory as Rust allocated it (kept typed so it is freed with its own layout).
enum Owned {
    U8(Vec<u8>),
    I8(Vec<i8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl Owned {
    fn bytes(&self) -> &[u8] {
        fn raw<T: Copy>(v: &[T]) -> &[u8] {
            // SAFETY: plain-old-data numbers viewed as their little-endian bytes (x86/ARM LE).
            unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
        }
        match self {
            Owned::U8(v) => v,
            Owned::I8(v) => raw(v),
            Owned::I32(v) => raw(v),
            Owned::I64(v) => raw(v),
            Owned::F64(v) => raw(v),
        }
    }
}

/// Read-only bytes owned by the extension, exported through the buffer protocol, so
/// `pyarrow.py_buffer` and `numpy.frombuffer` wrap the parser's memory instead of copying it
/// (a copy made while holding the GIL: megabytes per call, which stalled every other thread).
#[pyclass(frozen, module = "fleetlens_native")]
struct Buffer {
    data: Owned,
}

#[pymethods]
impl Buffer {
    fn __len__(&self) -> usize {
        self.data.bytes().len()
    }

    /// # Safety
    /// Called by CPython with a valid `view`; the exporter (`slf`) outlives the view because
    /// `PyBuffer_FillInfo` stores a new reference to it in `view.obj`.
    unsafe fn __getbuffer__(slf: Bound<'_, Self>, view: *mut ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        let bytes = slf.get().data.bytes();
        // readonly = 1: a request for a writable buffer fails with BufferError
        let rc = unsafe {
            ffi::PyBuffer_FillInfo(view, slf.as_ptr(), bytes.as_ptr() as *mut c_void, bytes.len() as ffi::Py_ssize_t, 1, flags)
        };
        if rc == -1 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }
}

/// The columns of one part of a call: rows (RAW_SCHEMA order) and attributes (ATTRS_SCHEMA order).
struct Part {
    rows: Vec<Col>,  // _row, ts_int, ts_str, then the scalar fields in contract order
    attrs: Vec<Col>, // _row, key, src, s, i, f, b
    punted: Vec<i64>,
}

impl Part {
    /// Empty columns sized for `n` lines (attributes: about two per line).
    fn new(spec: &Spec, n: usize) -> Part {
        let mut rows = vec![Col::i64(n), Col::i64(n), Col::str(n)];
        for w in &spec.wires {
            match w {
                Wire::Str => rows.push(Col::str(n)),
                Wire::Int => rows.push(Col::i64(n)),
                Wire::Num => rows.push(Col::f64(n)),
                Wire::Ts | Wire::Attrs => {}
            }
        }
        let a = 2 * n;
        let attrs = vec![
            Col::i64(a),
            Col::str(a),
            Col::I8 { valid: Bits::with_capacity(a), values: Vec::with_capacity(a) },
            Col::str(a),
            Col::i64(a),
            Col::f64(a),
            Col::Bool { valid: Bits::with_capacity(a), values: Bits::with_capacity(a) },
        ];
        Part { rows, attrs, punted: vec![] }
    }

    /// Appends a parsed line, or returns false (nothing appended) when it must be punted.
    fn commit(&mut self, spec: &Spec, row: i64, line: &Line) -> bool {
        if line.has_duplicate_attr() {
            return false;
        }
        for (_, _, v) in &line.attrs {
            if let Some(Val::U(_) | Val::F(_)) = v {
                if v.as_ref().and_then(Val::as_f64).is_none() && v.as_ref().and_then(Val::as_i64).is_none() {
                    return false;
                }
            }
        }
        let (mut ts_int, mut ts_str) = (None, None);
        let row_val = Val::I(row);
        self.rows[0].push(Some(&row_val));
        for (f, w) in spec.wires.iter().enumerate() {
            let v = line.vals[f].as_ref();
            match w {
                Wire::Ts => match v {
                    Some(Val::S(_)) => ts_str = v,
                    Some(_) => ts_int = v,
                    None => {}
                },
                Wire::Attrs => {}
                _ => self.rows[3 + spec.column[f]].push(v),
            }
        }
        self.rows[1].push(ts_int);
        self.rows[2].push(ts_str);
        for (key, src, v) in &line.attrs {
            let Some(v) = v else { continue };
            self.attrs[0].push(Some(&row_val));
            self.attrs[1].push(Some(&Val::S(Cow::Borrowed(key.as_ref()))));
            self.attrs[2].push_i8(*src);
            let int = v.as_i64().map(Val::I);
            let (s, i, f, b) = match v {
                Val::S(_) => (Some(v), None, None, None),
                Val::B(_) => (None, None, None, Some(v)),
                Val::I(_) | Val::U(_) if int.is_some() => (None, int.as_ref(), None, None),
                _ => (None, None, Some(v), None),
            };
            self.attrs[3].push(s);
            self.attrs[4].push(i);
            self.attrs[5].push(f);
            self.attrs[6].push(b);
        }
        true
    }

    fn too_big(&self) -> bool {
        self.rows.iter().chain(&self.attrs).any(|c| c.data_len() > i32::MAX as usize)
    }
}

fn parse_part(spec: &Spec, buf: &[u8], starts: &[i64], ends: &[i64], rows: &[i64]) -> Part {
    let mut part = Part::new(spec, rows.len());
    let mut line = Line::new(spec.wires.len());
    for k in 0..rows.len() {
        let (s, e) = (starts[k] as usize, ends[k] as usize);
        line.clear();
        // One UTF-8 check per line (fast on whole lines), then a &str reader that does not check
        // every string again. Invalid UTF-8: punted (the reference path rejects it).
        let Ok(text) = std::str::from_utf8(&buf[s..e]) else {
            part.punted.push(rows[k]);
            continue;
        };
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed = LineSeed { spec, line: &mut line }.deserialize(&mut de).and_then(|_| de.end());
        if parsed.is_err() || !part.commit(spec, rows[k], &line) {
            part.punted.push(rows[k]);
        }
    }
    part
}

fn as_i64s(name: &str, b: &[u8]) -> PyResult<Vec<i64>> {
    if b.len() % 8 != 0 {
        return Err(PyValueError::new_err(format!("{name}: not a whole number of int64")));
    }
    Ok(b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect())
}

/// Parse the lines `buf[starts[k]:ends[k]]` (int64 arrays as bytes), whose row numbers are
/// `rows[k]`, with the contract's `fields` (name, wire type) in order, on up to `threads` threads.
///
/// Returns a list of parts, each a dict: `rows` and `attrs` (lists of column buffers, see
/// `Col::into_py`) and `punted` (a `Buffer` of int64: the rows this path leaves to the reference path).
/// The GIL is released while parsing.
#[pyfunction]
#[pyo3(signature = (fields, buf, starts, ends, rows, threads=1))]
fn parse_lines<'py>(
    py: Python<'py>,
    fields: Vec<(String, String)>,
    buf: &[u8],
    starts: &[u8],
    ends: &[u8],
    rows: &[u8],
    threads: usize,
) -> PyResult<Bound<'py, PyList>> {
    let spec = Spec::new(&fields)?;
    let (starts, ends, rows) = (as_i64s("starts", starts)?, as_i64s("ends", ends)?, as_i64s("rows", rows)?);
    if starts.len() != rows.len() || ends.len() != rows.len() {
        return Err(PyValueError::new_err("starts, ends and rows differ in length"));
    }
    if starts.iter().zip(&ends).any(|(&s, &e)| s < 0 || e < s || e as usize > buf.len()) {
        return Err(PyValueError::new_err("a line lies outside the buffer"));
    }
    let n = rows.len();
    let threads = threads.clamp(1, 64).min(n.max(1));
    // A panic in a parse thread (a bug) becomes a RuntimeError, which the decoder turns into
    // rejections of the batch, rather than a PanicException that would stop the consumer.
    let parts: Result<Vec<Part>, _> = py.detach(|| {
        let per = n.div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (lo, hi) = ((t * per).min(n), ((t + 1) * per).min(n));
                    let (spec, starts, ends, rows) = (&spec, &starts[lo..hi], &ends[lo..hi], &rows[lo..hi]);
                    scope.spawn(move || parse_part(spec, buf, starts, ends, rows))
                })
                .collect();
            handles.into_iter().map(|h| h.join()).collect()
        })
    });
    let parts = parts.map_err(|_| PyRuntimeError::new_err("a parse thread of fleetlens_native panicked"))?;
    let out = PyList::empty(py);
    for part in parts {
        if part.too_big() {
            return Err(PyValueError::new_err("a column outgrew 2 GiB: decode fewer lines per call"));
        }
        let d = PyDict::new(py);
        let cols = |cs: Vec<Col>| -> PyResult<Bound<'py, PyList>> {
            PyList::new(py, cs.into_iter().map(|c| c.into_py(py)).collect::<PyResult<Vec<_>>>()?)
        };
        d.set_item("rows", cols(part.rows)?)?;
        d.set_item("attrs", cols(part.attrs)?)?;
        d.set_item("punted", Bound::new(py, Buffer { data: Owned::I64(part.punted) })?)?;
        out.append(d)?;
    }
    Ok(out)
}

#[pymodule]
fn fleetlens_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parse_lines, m)?)?;
    m.add_class::<Buffer>()?;
    Ok(())
}
