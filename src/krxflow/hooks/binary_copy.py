"""PostgreSQL's binary ``COPY`` format, built from the writer's validated Arrow batches with numpy.

Why: with text COPY the server parses every value (``float8in``, ``numeric_in``, ``date_in``) and
the client formats every float as text first; for a table of doubles such as ``daily_indicators``
that is most of a load's time. In the binary format each value travels as the bytes PostgreSQL
keeps (``float8``: its 8 IEEE bytes), so neither side formats or parses anything.

How: the format is a header, then per row a 16-bit field count and per field a 32-bit length
(−1 for NULL) followed by the value in network byte order, then a trailer. Rows whose NULLs and
text lengths are the same have the same byte layout, so rows are grouped by that layout and each
group is written as one ``rows x row-width`` byte matrix, column block by column block — numpy
assignments over whole columns, no Python loop over rows. A batch of a table like
``daily_prices`` or ``daily_indicators`` has a handful of layouts (the indicators' warm-up NULLs).

What it encodes, and only when every column is one of these (:func:`binary_fields` answers None
otherwise and the writer keeps the text COPY): ``smallint``/``integer``/``bigint``, ``double
precision``, ``boolean``, ``date``, ``timestamp with time zone``, ``text`` and ``numeric(p, s)``
with ``p <= 18``. The stored values are the ones the text COPY stores, to the bit:

* doubles are sent as they are (the text path sends their shortest round-trip repr, which
  parses back to the same double);
* a ``numeric(p, s)`` value arrives from validation as a double (the text path would send its
  shortest repr) or as exact decimal text (a Decimal, a number given as text); text is read as an
  integer mantissa and a decimal exponent and rounded to ``s`` decimals half away from zero,
  exactly as ``numeric_in`` followed by the column's typmod does; a double with at most ``s``
  decimals is scaled arithmetically to the same integer (:func:`_scaled_floats`, the others go
  through their repr); then it is sent as base-10000 digits with ``dscale = s`` (the server strips
  the zero digit groups and applies the typmod again, a no-op).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from krxflow.hooks.table_spec import ColumnSpec

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
TRAILER = struct.pack("!h", -1)

#: Days and microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
_PG_EPOCH_DAYS = 10_957
_PG_EPOCH_MICROS = _PG_EPOCH_DAYS * 86_400 * 1_000_000
_FIXED = {"smallint": ">i2", "integer": ">i4", "bigint": ">i8", "double precision": ">f8", "boolean": "u1",
          "date": ">i4", "timestamp with time zone": ">i8"}
_NUMERIC_MAX_PRECISION = 18  # the scaled value fits an int64
_DECIMAL_TEXT = r"^(?P<sign>[+-]?)(?P<whole>[0-9]*)(?:\.(?P<fraction>[0-9]*))?(?:[eE]\+?(?P<exp>-?[0-9]{1,6}))?$"
_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)
_NUMERIC_NEG = 0x4000
#: Scaled doubles below this are whole numbers a double holds exactly, far from any rounding doubt.
_FLOAT_EXACT_LIMIT = float(2**50)


@dataclass(frozen=True)
class _Field:
    """How one column is encoded: ``fixed`` numpy dtype, or ``text``, or ``numeric`` digit groups."""

    name: str
    kind: str  # fixed | text | numeric
    dtype: str = ""
    scale: int = 0
    whole_groups: int = 0  # base-10000 digit groups before the decimal point
    fraction_groups: int = 0

    @property
    def width(self) -> int:
        """Bytes of a non-NULL value (not for text)."""
        if self.kind == "numeric":
            return 8 + 2 * (self.whole_groups + self.fraction_groups)
        return np.dtype(self.dtype).itemsize


def binary_fields(columns: list[ColumnSpec]) -> list[_Field] | None:
    """The encoding of each column, or None when one of them has a type this module does not encode."""
    fields = []
    for col in columns:
        t = col.pg_type
        if t in _FIXED:
            fields.append(_Field(col.name, "fixed", _FIXED[t]))
        elif t == "text":
            fields.append(_Field(col.name, "text"))
        elif (t.startswith("numeric(") and col.numeric_precision is not None and col.numeric_scale is not None
              and 0 <= col.numeric_scale <= col.numeric_precision <= _NUMERIC_MAX_PRECISION):
            whole = col.numeric_precision - col.numeric_scale
            fields.append(_Field(col.name, "numeric", scale=col.numeric_scale, whole_groups=-(-whole // 4),
                                 fraction_groups=-(-col.numeric_scale // 4)))
        else:
            return None
    return fields


def encode_rows(table: pa.Table, fields: list[_Field]) -> list[memoryview]:
    """The rows of ``table`` (the writer's validated batch, columns in ``fields`` order) as binary COPY
    tuples, without the header and trailer: one block of bytes per row layout, each a view of the
    array it was encoded into, to be sent as it is (joining or copying them to ``bytes`` cost as much
    as encoding a table of doubles)."""
    n = table.num_rows
    if n == 0:
        return []
    valid, payloads, text_lengths = [], [], {}
    for i, field in enumerate(fields):
        column = table.column(i)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        valid.append(~np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool))
        if field.kind == "text":
            offsets, data = _text_buffers(column)
            payloads.append((offsets, data))
            text_lengths[i] = np.where(valid[i], np.diff(offsets), 0)
        elif field.kind == "numeric":
            payloads.append(_numeric_payload(column, field, valid[i]))
        else:
            payloads.append(_fixed_payload(column, field))
    layout = _layouts(valid, text_lengths)
    order = np.argsort(layout, kind="stable")
    bounds = np.flatnonzero(np.diff(layout[order])) + 1
    return [_encode_group(rows, fields, valid, payloads, text_lengths) for rows in np.split(order, bounds)]


def _layouts(valid: list[np.ndarray], text_lengths: dict[int, np.ndarray]) -> np.ndarray:
    """A number per row that is the same for rows with the same NULLs and text lengths."""
    nulls = np.zeros(len(valid[0]), dtype=np.int64)
    for i, present in enumerate(valid[:63]):
        nulls |= (~present).astype(np.int64) << i
    keys = {"nulls": nulls} | {f"v{i}": v for i, v in enumerate(valid[63:], 63)} | \
        {f"t{i}": lengths for i, lengths in text_lengths.items()}
    if len(keys) == 1:
        return nulls
    return pd.DataFrame(keys).groupby(list(keys), sort=False).ngroup().to_numpy()


def _encode_group(rows: np.ndarray, fields: list[_Field], valid, payloads, text_lengths) -> memoryview:
    """Rows of one layout, as one packed structured array: each column is one typed assignment (numpy
    writes big-endian fields itself), so no Python loop over rows and no byte-by-byte copies."""
    first = rows[0]
    names, formats, offsets, values = ["count"], [">i2"], [0], [len(fields)]
    at = 2
    for i, field in enumerate(fields):
        present = bool(valid[i][first])
        if field.kind == "text":
            width = int(text_lengths[i][first]) if present else 0
        else:
            width = field.width if present else 0
        names.append(f"length{i}"), formats.append(">i4"), offsets.append(at), values.append(width if present else -1)
        at += 4
        if not present or width == 0:
            continue
        if field.kind == "text":
            starts, data = payloads[i]
            names.append(f"value{i}"), formats.append(("u1", (width,))), offsets.append(at)
            values.append(data[starts[rows][:, None] + np.arange(width)])
        elif field.kind == "numeric":
            names.append(f"value{i}"), formats.append((">i2", (width // 2,))), offsets.append(at)
            values.append(payloads[i][rows])
        else:
            names.append(f"value{i}"), formats.append(field.dtype), offsets.append(at)
            values.append(payloads[i][rows])
        at += width
    out = np.empty(len(rows), dtype=np.dtype({"names": names, "formats": formats, "offsets": offsets,
                                              "itemsize": at}))
    for name, value in zip(names, values):
        out[name] = value
    return memoryview(out).cast("B")


def _text_buffers(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, UTF-8 bytes) of a string array: value ``k`` is ``data[offsets[k]:offsets[k + 1]]``."""
    if column.type != pa.string():
        column = column.cast(pa.string())
    _, offset_buffer, data_buffer = column.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=np.int32)[column.offset:column.offset + len(column) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return offsets.astype(np.int64), data


def _fixed_payload(column: pa.Array, field: _Field) -> np.ndarray:
    """The values of a fixed-width column as native numbers of its width (NULLs: zeros, never sent)."""
    if pa.types.is_date32(column.type):
        values = column.cast(pa.int32()).fill_null(0).to_numpy() - np.int32(_PG_EPOCH_DAYS)
    elif pa.types.is_timestamp(column.type):
        micros = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).fill_null(0).to_numpy()
        values = micros - np.int64(_PG_EPOCH_MICROS)
    elif pa.types.is_boolean(column.type):
        values = column.fill_null(False).to_numpy(zero_copy_only=False)
    else:
        if field.dtype == ">f8" and not pa.types.is_floating(column.type):  # exact text: parsed as float8in does
            column = column.cast(pa.float64())
        values = column.fill_null(0).to_numpy(zero_copy_only=False)
    return values.astype(np.dtype(field.dtype).newbyteorder("="), copy=False)


def _numeric_payload(column: pa.Array, field: _Field, valid: np.ndarray) -> np.ndarray:
    """``numeric(p, s)`` as rows of 16-bit words: ndigits, weight, sign, dscale and the digit groups."""
    scaled = scaled_integers(column, field.scale, valid)
    magnitude = np.abs(scaled)
    groups = field.whole_groups + field.fraction_groups
    words = np.zeros((len(scaled), 4 + groups), dtype=np.int16)
    words[:, 0] = groups
    words[:, 1] = field.whole_groups - 1
    words[:, 2] = np.where(scaled < 0, _NUMERIC_NEG, 0)
    words[:, 3] = field.scale
    whole = magnitude // _POW10[field.scale]
    fraction = (magnitude % _POW10[field.scale]) * _POW10[4 * field.fraction_groups - field.scale]
    for g in range(field.whole_groups):
        words[:, 4 + g] = (whole // 10_000 ** (field.whole_groups - 1 - g)) % 10_000
    for g in range(field.fraction_groups):
        words[:, 4 + field.whole_groups + g] = (fraction // 10_000 ** (field.fraction_groups - 1 - g)) % 10_000
    return words


def scaled_integers(column: pa.Array, scale: int, valid: np.ndarray | None = None) -> np.ndarray:
    """Exact decimal texts (or doubles, read as their shortest repr) as integers of ``10**-scale`` units,
    rounded half away from zero (``numeric_in`` and a typmod of that scale). NULLs (and rows not
    ``valid``) give 0."""
    if pa.types.is_floating(column.type):
        return _scaled_floats(column, scale, valid)
    if column.type != pa.string():
        column = column.cast(pa.string())
    n = len(column)
    if valid is None:
        valid = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    parts = pc.extract_regex(column, _DECIMAL_TEXT)
    matched = ~np.asarray(parts.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    whole = pc.fill_null(parts.field("whole"), "")
    fraction = pc.fill_null(parts.field("fraction"), "")
    digits = pc.utf8_ltrim(pc.binary_join_element_wise(whole, fraction, ""), "0")
    short = np.asarray(pc.less_equal(pc.utf8_length(digits), 18).to_numpy(zero_copy_only=False), dtype=bool)
    mantissa = pc.if_else(pc.equal(pc.utf8_length(digits), 0), "0", digits)
    mantissa = pc.if_else(pa.array(short & matched), mantissa, "0").cast(pa.int64()).to_numpy(zero_copy_only=False)
    exponent = pc.fill_null(pc.if_else(pc.equal(pc.fill_null(parts.field("exp"), ""), ""), "0",
                                       parts.field("exp")), "0").cast(pa.int64()).to_numpy(zero_copy_only=False)
    shift = exponent - np.asarray(pc.utf8_length(fraction).to_numpy(zero_copy_only=False), dtype=np.int64) + scale
    exact = short & matched & (shift <= 18)
    result = np.zeros(n, dtype=np.int64)
    up = exact & (shift >= 0)
    result[up] = mantissa[up] * _POW10[shift[up]]
    down = exact & (shift < 0) & (shift >= -18)
    divisor = _POW10[-shift[down]]
    quotient, remainder = np.divmod(mantissa[down], divisor)
    result[down] = quotient + (2 * remainder >= divisor)
    # shift < -18: the value is below half a unit (the mantissa has at most 18 digits): 0
    negative = np.asarray(pc.equal(pc.fill_null(parts.field("sign"), ""), "-").to_numpy(zero_copy_only=False),
                          dtype=bool)
    result = np.where(negative, -result, result)
    slow = valid & ~exact
    if slow.any():  # more than 18 significant digits, an unusual spelling: Python's exact Decimal
        texts = column.to_pylist()
        unit = Decimal(1).scaleb(-scale)
        for k in np.flatnonzero(slow):
            result[k] = int(Decimal(texts[k].strip()).quantize(unit, rounding=ROUND_HALF_UP).scaleb(scale))
    result[~valid] = 0
    return result


def _scaled_floats(column: pa.Array, scale: int, valid: np.ndarray | None) -> np.ndarray:
    """Doubles as :func:`scaled_integers` reads their shortest repr, without printing or parsing any.

    ``k = rint(x * 10**scale)`` is the answer whenever ``k / 10**scale`` (a correctly rounded
    division of exact operands) is ``x`` again and ``|k| < 2**50``: then ``k / 10**scale`` is the
    only decimal of at most ``scale`` fraction digits that reads back as ``x`` (such decimals lie
    ``10**-scale`` apart, more than the width of the interval that rounds to ``x``), so the shortest
    repr of ``x`` is that decimal — it needs no more digits — and ``numeric_in`` stores exactly
    ``k`` units. A price of at most ``scale`` decimals, the usual case, always passes. Any other
    double (more decimals, half-way cases to round, huge values) takes the text path.
    """
    values = column.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
    if valid is None:
        valid = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    unit = float(10**scale)
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.rint(values * unit)
        exact = (np.abs(scaled) < _FLOAT_EXACT_LIMIT) & (scaled / unit == values)
    result = np.where(exact, scaled, 0.0).astype(np.int64)
    slow = valid & ~exact
    if slow.any():
        result[slow] = scaled_integers(column.filter(pa.array(slow)).cast(pa.string()), scale)
    result[~valid] = 0
    return result
