"""Statement fingerprints: SQL with its values taken out, so that one shape is one entry.

``SELECT * FROM t WHERE id = 42`` and ``select *  from T where id=%s`` both become
``SELECT * FROM t WHERE id = ?``. Normalizing is a pure function run once per distinct
SQL text (the caller caches it); fingerprints never contain parameter values.
"""

from __future__ import annotations

import re
from hashlib import blake2b

import msgspec

__all__ = ["Fingerprint", "normalize_sql"]

# Longest fingerprint text kept for display; the id is computed on the whole text.
MAX_TEXT = 2048

_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<string>[eE]'(?:[^'\\]|\\.|'')*'|(?:[bBxXnN]|[uU]&)?'(?:[^']|'')*')
    | (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z0-9_]*|)\$.*?\$(?P=tag)\$)
    | (?P<ident>(?:[uU]&)?"(?:[^"]|"")*")
    | (?P<param>%\([^)]*\)[sbt]|%[sbt]|\$\d+)
    | (?P<number>0[xXoObB][0-9a-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?)
    | (?P<word>[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*)
    | (?P<cast>::)
    | (?P<op>%%|%|[+\-*/<>=~!@#^&|`?]+)
    | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)

# Words shown upper-cased; every other unquoted word is an identifier, which PostgreSQL
# folds to lower case, so folding it here cannot merge two different statements.
_KEYWORD_LIST = """
    ADD ALL ALTER ANALYZE AND ANY ARRAY AS ASC BEGIN BETWEEN BINARY BY CASE CAST CHECK CLOSE
    COLLATE COLUMN COMMIT CONFLICT CONSTRAINT COPY CREATE CROSS CSV CURSOR DECLARE DEFAULT
    DELETE DESC DISTINCT DO DROP ELSE END EXCEPT EXISTS EXPLAIN FALSE FETCH FILTER FIRST FOR
    FOREIGN FORMAT FORWARD FROM FULL GROUP HAVING HOLD IF ILIKE IN INDEX INNER INSERT
    INTERSECT INTERVAL INTO IS JOIN KEY LAST LATERAL LEFT LIKE LIMIT LOCK LOCKED NATURAL
    NEXT NO NOT NOTHING NOWAIT NULL NULLS OFFSET ON ONLY OR ORDER OUTER OVER PARTITION
    PRIMARY RECURSIVE REFERENCES RELEASE RESET RETURNING RIGHT ROLLBACK ROW ROWS SAVEPOINT
    SCROLL SELECT SET SHARE SHOW SIMILAR SKIP SOME STDIN STDOUT TABLE THEN TO TRANSACTION
    TRUE TRUNCATE UNION UNIQUE UPDATE USING VACUUM VALUES VIEW WHEN WHERE WINDOW WITH
    WITHOUT TEMP TEMPORARY EXECUTE PREPARE GRANT REVOKE
"""
_KEYWORDS = frozenset(_KEYWORD_LIST.split())

# After these pieces a ``-`` is a sign, not a subtraction: ``x = -1`` is ``x = ?``.
_SIGN_CONTEXT = frozenset({"(", ",", "[", "=", "<", ">", "<=", ">=", "<>", "!=", "+", "-", "*"})
_NO_SPACE_BEFORE = frozenset({",", ")", "]", ".", "::", ";"})
_NO_SPACE_AFTER = frozenset({"(", "[", ".", "::"})


def _tokens(sql: str) -> list[str]:
    out: list[str] = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        if kind in ("space", "comment"):
            continue
        if kind in ("string", "dollar", "param", "number"):
            if (
                kind == "number"
                and out
                and out[-1] == "-"
                and (len(out) == 1 or out[-2] in _SIGN_CONTEXT or out[-2] in _KEYWORDS)
            ):
                out.pop()
            out.append("?")
        elif kind == "word":
            upper = match.group().upper()
            out.append(upper if upper in _KEYWORDS else match.group().lower())
        elif kind == "tag":  # pragma: no cover - inner group of "dollar", never last
            continue
        else:
            out.append(match.group())
    return out


def _group_end(pieces: list[str], start: int) -> int:
    """Index just past the bracketed group opening at ``pieces[start]``, or -1."""
    depth = 0
    for index in range(start, len(pieces)):
        if pieces[index] in ("(", "["):
            depth += 1
        elif pieces[index] in (")", "]"):
            depth -= 1
            if depth == 0:
                return index + 1
    return -1


def _only_values(group: list[str]) -> bool:
    return all(piece in ("?", ",") for piece in group[1:-1])


def _collapse(pieces: list[str]) -> list[str]:
    """``IN (?, ?, ?)`` and ``ARRAY[?, ?]`` to ``(...)``; repeated VALUES rows to one."""
    out: list[str] = []
    index = 0
    while index < len(pieces):
        piece = pieces[index]
        out.append(piece)
        index += 1
        if piece in ("IN", "ARRAY") and index < len(pieces) and pieces[index] in ("(", "["):
            end = _group_end(pieces, index)
            if end > 0 and _only_values(pieces[index:end]):
                out += [pieces[index], "...", pieces[end - 1]]
                index = end
        elif piece == "VALUES" and index < len(pieces) and pieces[index] == "(":
            end = _group_end(pieces, index)
            if end < 0:
                continue
            row = pieces[index:end]
            out += row
            index = end
            repeated = False
            while (
                pieces[index : index + 1] == [","]
                and pieces[index + 1 : index + 1 + len(row)] == row
            ):
                index += 1 + len(row)
                repeated = True
            if repeated:
                out += [",", "..."]
    return out


def _join(pieces: list[str]) -> str:
    parts: list[str] = []
    previous = ""
    for piece in pieces:
        glued = (
            not parts
            or piece in _NO_SPACE_BEFORE
            or piece == "["
            or previous in _NO_SPACE_AFTER
            # a function call: lower(x), count(*) — but keep ``IN (`` and ``VALUES (``
            or (piece == "(" and previous not in _KEYWORDS and previous[:1].isalpha())
            or (piece == "(" and previous.startswith('"'))
        )
        parts.append(piece if glued else " " + piece)
        previous = piece
    return "".join(parts)


def normalize_sql(sql: str | bytes) -> str:
    """The fingerprint text of ``sql``: values out, whitespace and keyword case folded.

    String, number and dollar-quoted literals and ``%s`` / ``%(name)s`` / ``$1``
    placeholders become ``?``; comments go; ``IN (?, ?, ...)`` lists and repeated
    ``VALUES`` rows collapse, so that a statement's shape does not depend on how many
    values it was given.
    """
    text = sql.decode("utf-8", "replace") if isinstance(sql, bytes) else sql
    pieces = _collapse(_tokens(text))
    while pieces and pieces[-1] == ";":
        pieces.pop()
    return _join(pieces)


class Fingerprint(msgspec.Struct, frozen=True):
    """A statement shape: its normalized ``text`` and a short stable ``id`` (16 hex digits)."""

    text: str
    id: str

    @classmethod
    def of(cls, sql: str | bytes) -> Fingerprint:
        """Normalize ``sql`` and name it."""
        text = normalize_sql(sql)
        digest = blake2b(text.encode(), digest_size=8).hexdigest()
        if len(text) > MAX_TEXT:
            text = text[: MAX_TEXT - 1] + "…"
        return cls(text, digest)
