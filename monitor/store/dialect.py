"""What SQLite and PostgreSQL spell differently, in one place (issue 13).

Store SQL is written once, with `?` placeholders, `ON CONFLICT`, `RETURNING` and standard
aggregates, which both engines take as they are. The few things they spell differently (JSON
arrays built or taken apart in SQL, string aggregation) go through these helpers, given the
store's `engine`. `pyformat` turns `?` into psycopg's `%s` for PostgreSQL.
"""

from __future__ import annotations

import functools
from typing import Literal

__all__ = ["Engine", "json_array_agg", "json_pair", "json_values", "pyformat", "string_agg"]

Engine = Literal["sqlite", "postgresql"]


def json_array_agg(engine: Engine, expr: str) -> str:
    """An aggregate: the group's values of `expr` as a JSON array, as text (NULL when empty on
    PostgreSQL, `[]` on SQLite: read both as `json.loads(value or "[]")`)."""
    if engine == "postgresql":
        return f"json_agg({expr})::text"
    return f"json_group_array({expr})"


def json_pair(engine: Engine, value: str, json_text: str) -> str:
    """A two-element JSON array of a plain value and a column holding JSON text."""
    if engine == "postgresql":
        return f"json_build_array({value}, ({json_text})::json)"
    return f"json_array({value}, json({json_text}))"


def json_values(engine: Engine, json_text: str, alias: str) -> str:
    """A FROM item: one row per element of the JSON array in `json_text`, as `alias.value`
    (text for strings; JSON text for objects on both engines)."""
    if engine == "postgresql":
        return f"json_array_elements_text(({json_text})::json) AS {alias}(value)"
    return f"json_each({json_text}) AS {alias}"


def string_agg(engine: Engine, expr: str, separator: str) -> str:
    """An aggregate: the group's values of `expr` joined by `separator` (an SQL literal)."""
    if engine == "postgresql":
        return f"string_agg({expr}, {separator})"
    return f"group_concat({expr}, {separator})"


@functools.lru_cache(maxsize=1024)
def pyformat(sql: str) -> str:
    """`?` placeholders as psycopg's `%s`, a literal `%` as `%%`; quoted strings, quoted
    names and `--` comments are left as they are (a `?` there is no placeholder)."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char in "'\"":
            end = i + 1
            while end < n:
                if sql[end] == char:
                    if end + 1 < n and sql[end + 1] == char:  # a doubled quote inside
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i : end + 1].replace("%", "%%"))
            i = end + 1
        elif char == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif char == "?":
            out.append("%s")
            i += 1
        elif char == "%":
            out.append("%%")
            i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out)
