"""Per-sample (FORMAT) values added to a VCF record line, as text.

`set_format_fields(line, keys, values)` appends the FORMAT keys `keys` to a record line (replacing
values of the same keys from an earlier run) and fills each sample column: `values[column]` (the
0-based sample column) maps a key to a list of numbers (None: `.`); samples without values get `.`.
Sample columns that drop trailing fields (allowed by the VCF spec) are padded with `.` first, so
the new values line up with their keys.
"""

from __future__ import annotations

from typing import Sequence


def format_number(value: float | None) -> str:
    return "." if value is None else f"{value:.6g}"


def format_values(values: Sequence[float | None] | None) -> str:
    if not values:
        return "."
    return ",".join(format_number(value) for value in values)


def set_format_fields(line: str, keys: Sequence[str], values: dict[int, dict[str, Sequence]]) -> str:
    columns = line.split("\t")
    if len(columns) < 10:
        return line  # no sample columns: nothing to add to
    old_keys = columns[8].split(":") if columns[8] not in ("", ".") else []
    kept = [position for position, key in enumerate(old_keys) if key not in keys]
    new_keys = [old_keys[position] for position in kept] + list(keys)
    columns[8] = ":".join(new_keys)
    for column in range(len(columns) - 9):
        fields = columns[9 + column].split(":")
        fields += ["."] * (len(old_keys) - len(fields))
        sample_values = values.get(column, {})
        columns[9 + column] = ":".join([fields[position] for position in kept]
                                       + [format_values(sample_values.get(key)) for key in keys])
    return "\t".join(columns)


def format_header_lines(fields: Sequence[tuple]) -> list[str]:
    """`##FORMAT=<...>` lines for (id, number, type, description) tuples."""
    lines = []
    for field_id, number, field_type, description in fields:
        description = str(description).replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'##FORMAT=<ID={field_id},Number={number},Type={field_type},Description="{description}">')
    return lines
