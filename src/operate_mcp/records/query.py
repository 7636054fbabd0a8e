"""The run-search query language: a lark grammar, a small syntax tree, and its compilation to parameterised SQL.

Everything the user typed reaches SQLite as a bound parameter. The SQL text is assembled only from
the constant fragments in this module, and free text becomes an FTS5 expression in which every
word is a quoted phrase, so FTS5 operators in the input (`NEAR(`, `*`, `"`, `:`) are just data.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import cache

from lark import Lark, Token, Transformer, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from operate_mcp.errors import OperateError
from operate_mcp.model.observation import CATEGORIES
from operate_mcp.model.resources import singular
from operate_mcp.records.models import RunStatus

GRAMMAR = r"""
?start: or_expr?
?or_expr: and_expr (_OR and_expr)*
?and_expr: unary (_AND? unary)*
?unary: _NOT unary -> negate
      | _NEG unary -> negate
      | primary
?primary: "(" or_expr ")"
        | QUALIFIED -> qualifier
        | STRING -> phrase
        | WORD -> word

_OR.4: /OR(?![^\s()])/
_AND.4: /AND(?![^\s()])/
_NOT.4: /NOT(?![^\s()])/
_NEG.4: /-(?=[^\s\-)])/
QUALIFIED.3: /[A-Za-z_][A-Za-z0-9_]*:("(?:[^"\\]|\\.)*"|[^\s()"]*)/
STRING.2: /"(?:[^"\\]|\\.)*"/
WORD.1: /[^\s()"]+/

%ignore /\s+/
"""


class QuerySyntaxError(OperateError):
    """A query that cannot be read; the message shows the query with a caret under the problem."""

    def __init__(self, query: str, position: int, problem: str) -> None:
        self.query = query
        self.position = max(0, min(position, len(query)))
        self.column = self.position + 1
        self.problem = problem
        shown = re.sub(r"\s", " ", query)
        super().__init__(f"{problem} (column {self.column})\n  {shown}\n  {' ' * self.position}^")


# -- syntax tree ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """Free text: a word (`timeout`, `deploy*` for a prefix) or a quoted phrase."""

    value: str
    quoted: bool
    position: int


@dataclass(frozen=True)
class Qualifier:
    name: str
    value: str
    position: int  # where the qualifier starts
    value_position: int  # where its value starts, for error carets


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


Node = Text | Qualifier | Not | And | Or


def _unquote(quoted: str) -> str:
    return re.sub(r"\\(.)", r"\1", quoted[1:-1], flags=re.S)


class _ToTree(Transformer[Token, "Node | None"]):
    def word(self, items: list[Token]) -> Node:
        tok = items[0]
        return Text(str(tok), quoted=False, position=tok.start_pos or 0)

    def phrase(self, items: list[Token]) -> Node:
        tok = items[0]
        return Text(_unquote(str(tok)), quoted=True, position=tok.start_pos or 0)

    def qualifier(self, items: list[Token]) -> Node:
        tok = items[0]
        start = tok.start_pos or 0
        name, _, raw = str(tok).partition(":")
        value = _unquote(raw) if raw.startswith('"') else raw
        return Qualifier(name.lower(), value, start, start + len(name) + 1)

    def negate(self, items: list[Node]) -> Node:
        return Not(items[0])

    def and_expr(self, items: list[Node]) -> Node:
        return And(tuple(items))

    def or_expr(self, items: list[Node]) -> Node:
        return Or(tuple(items))

    def start(self, items: list[Node]) -> Node | None:
        return items[0] if items else None


@cache
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", lexer="basic", maybe_placeholders=False)


_TOKEN_NAMES = {"_OR": "'OR'", "_AND": "'AND'", "_NOT": "'NOT'", "_NEG": "'-'", "RPAR": "')'", "LPAR": "'('"}


def _unclosed_paren(query: str) -> int | None:
    """Where the first '(' that is never closed sits, skipping quoted strings."""
    opened: list[int] = []
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"?|[()]', query):
        if m.group() == "(":
            opened.append(m.start())
        elif m.group() == ")" and opened:
            opened.pop()
    return opened[0] if opened else None


def _explain(query: str, error: UnexpectedInput) -> QuerySyntaxError:
    if isinstance(error, UnexpectedCharacters):
        pos = error.pos_in_stream or 0
        if query[pos] == '"':
            return QuerySyntaxError(query, pos, 'unterminated quote: close it with " (write \\" for a literal quote)')
        return QuerySyntaxError(query, pos, f"unexpected character {query[pos]!r}")
    if isinstance(error, UnexpectedToken) and error.token.type != "$END":
        tok = error.token
        pos = tok.start_pos or 0
        if tok.type == "RPAR":
            before = query[:pos].rstrip()
            if before.endswith("("):
                return QuerySyntaxError(query, pos, "empty parentheses: put a term or qualifier inside them")
            if _unclosed_paren(query[:pos]) is None:
                return QuerySyntaxError(query, pos, "')' without a matching '('")
            return QuerySyntaxError(query, pos, "expected a term before ')'")
        name = _TOKEN_NAMES.get(tok.type, repr(str(tok)))
        if tok.type in ("_OR", "_AND"):
            return QuerySyntaxError(query, pos, f"{name} needs a term on each side")
        return QuerySyntaxError(query, pos, f"unexpected {name}")
    # the input ended too early
    unclosed = _unclosed_paren(query)
    if unclosed is not None:
        return QuerySyntaxError(query, unclosed, "this '(' is never closed: add ')'")
    last = re.search(r"(\S+)\s*$", query)
    after = f" after {last.group(1)!r}" if last else ""
    return QuerySyntaxError(query, len(query), f"the query ends too early: expected a term{after}")


MAX_QUERY_CHARS = 2_000
MAX_NESTING = 32


def _check_size(query: str) -> None:
    """Bounds that keep a hostile query from exhausting lark's, Python's or SQLite's recursion.

    Counted on the tokens before anything recursive runs: parentheses may nest 32 deep, and at most
    32 `NOT`s or `-`s may apply to any one term (`NOT NOT a`, `-(-(a))` and `NOT (x -(y))` all count).
    """
    if len(query) > MAX_QUERY_CHARS:
        raise QuerySyntaxError(query[:80] + "…", 80, f"the query is longer than {MAX_QUERY_CHARS} characters")
    opened: list[int] = []  # negations in force outside each open '('
    negated = 0  # negations in force on the current group
    pending = 0  # NOT / - tokens waiting for their term or group
    try:
        for tok in _parser().lex(query):
            pos = tok.start_pos or 0
            if tok.type in ("_NOT", "_NEG"):
                pending += 1
                if negated + pending > MAX_NESTING:
                    raise QuerySyntaxError(
                        query, pos, f"NOT and - nest deeper than {MAX_NESTING} levels; simplify the query "
                        "(NOT NOT x is just x)"
                    )
            elif tok.type == "LPAR":
                if len(opened) == MAX_NESTING:
                    raise QuerySyntaxError(query, pos, f"parentheses nest deeper than {MAX_NESTING} levels")
                opened.append(negated)
                negated, pending = negated + pending, 0
            elif tok.type == "RPAR":
                negated, pending = (opened.pop() if opened else 0), 0
            else:
                pending = 0
    except UnexpectedInput:
        return  # a lexing error: the parser reports it, with its caret


def parse_query(query: str) -> Node | None:
    """The syntax tree of `query`, or None for an empty query (which matches every run)."""
    _check_size(query)
    try:
        tree = _parser().parse(query)
    except UnexpectedEOF as exc:
        raise _explain(query, exc) from None
    except UnexpectedInput as exc:
        raise _explain(query, exc) from None
    result = _ToTree().transform(tree)
    assert result is None or isinstance(result, Text | Qualifier | Not | And | Or)
    return result


# -- compilation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledQuery:
    """A WHERE clause over `runs` made of constant SQL, and the values to bind to its `?`s.

    `ctes` is empty, or a `WITH ... ` clause (ending in a space) that must start the statement: very
    deeply nested queries are split into named parts there (see `_SPILL_DEPTH`). `params` binds the
    `?`s of `ctes` first, then those of `where`.
    """

    where: str
    params: tuple[object, ...]
    ctes: str = ""


Clause = tuple[str, list[object]]


class _Problem(Exception):
    """A bad qualifier or value found while compiling; `compile_query` adds the query and the caret."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


_FTS_MATCH = "runs.seq IN (SELECT rowid FROM runs_fts WHERE runs_fts MATCH ?)"

# qualifier -> (column or side-table subquery) ; the keys are the only SQL that depends on input shape
# Free-form values are compared case-folded (see `fold`): store.py keeps a folded copy of intent,
# triggered_by, caller and failed step in the *_key columns, and stores tags folded. Ids, purposes,
# namespaces and resource names are ASCII, which the columns' NOCASE collation already folds.
_COLUMNS = {
    "intent": "runs.intent_key",
    "triggered_by": "runs.triggered_by_key",
    "caller": "runs.caller_key",
    "parent": "runs.parent_id",
    "session": "runs.session_id",
    "step": "runs.failed_step_key",
    "purpose": "runs.purpose",
}
_FOLDED = frozenset({"intent", "triggered_by", "caller", "step", "tag"})
_SIDE = {
    "tag": ("SELECT run FROM run_tags WHERE tag = ?", "SELECT run FROM run_tags WHERE tag LIKE ? ESCAPE '\\'"),
    "namespace": (
        "SELECT run FROM run_namespaces WHERE namespace = ?",
        "SELECT run FROM run_namespaces WHERE namespace LIKE ? ESCAPE '\\'",
    ),
    # every image and image id in the record's before/after snapshots (pods and workloads)
    "image": (
        "SELECT run FROM run_images WHERE image = ?",
        "SELECT run FROM run_images WHERE image LIKE ? ESCAPE '\\'",
    ),
    # pod waiting / last termination reasons in the snapshots, and the reasons of Warning events
    "reason": (
        "SELECT run FROM run_reasons WHERE reason = ?",
        "SELECT run FROM run_reasons WHERE reason LIKE ? ESCAPE '\\'",
    ),
}
_RESOURCE = {
    "ref": (
        "SELECT run FROM run_resources WHERE ref = ?",
        "SELECT run FROM run_resources WHERE ref LIKE ? ESCAPE '\\'",
    ),
    "name": (
        "SELECT run FROM run_resources WHERE name = ?",
        "SELECT run FROM run_resources WHERE name LIKE ? ESCAPE '\\'",
    ),
}
_DURATION = re.compile(r"^(>=|<=|>|<|=)?(\d+(?:\.\d+)?)(s|m|h)?$")
_DURATION_RANGE = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h)?\.\.(\d+(?:\.\d+)?)(s|m|h)?$")
_UNIT = {None: 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def fold(text: str) -> str:
    """Unicode case folding, composed (NFC): how qualifier values are stored and compared.

    SQLite's NOCASE and LIKE fold ASCII letters only, so `intent:"DÉPLOYER …"` would miss
    "déployer …"; folding both sides in Python makes every script case-insensitive.
    """
    return unicodedata.normalize("NFC", text.casefold())


def _like(value: str) -> str:
    """A `*` glob as a LIKE pattern; LIKE's own wildcards in the value are escaped to stay literal."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _eq_or_glob(column: str, value: str) -> Clause:
    if "*" in value:
        return f"{column} LIKE ? ESCAPE '\\'", [_like(value)]
    return f"{column} = ?", [value]


_SIDE_IN = "runs.seq IN ("


def _in_side(queries: tuple[str, str], value: str) -> Clause:
    exact, glob = queries
    if "*" in value:
        return f"runs.seq IN ({glob})", [_like(value)]
    return f"runs.seq IN ({exact})", [value]


def _status(q: Qualifier) -> Clause:
    value = q.value.lower()
    known = [s.value for s in RunStatus]
    if value not in known:
        raise _Problem(q.value_position, f"status: unknown status {q.value!r}; use one of {', '.join(known)}")
    return "runs.status = ?", [value]


def _category(q: Qualifier) -> Clause:
    value = q.value.lower()
    if value not in CATEGORIES:
        raise _Problem(
            q.value_position, f"category: unknown category {q.value!r}; use one of {', '.join(CATEGORIES)}"
        )
    return "runs.category = ?", [value]


def _resource(q: Qualifier) -> Clause:
    kind, slash, name = q.value.partition("/")
    if not slash:
        return _in_side(_RESOURCE["name"], q.value)
    ref = f"{singular(kind)}/{name}"  # records name resources kind/name, the kind in lower case
    return _in_side(_RESOURCE["ref"], ref)


def _duration(q: Qualifier) -> Clause:
    value = q.value.replace(" ", "")
    ranged = _DURATION_RANGE.match(value)
    if ranged:
        low = float(ranged.group(1)) * _UNIT[ranged.group(2)]
        high = float(ranged.group(3)) * _UNIT[ranged.group(4)]
        return "runs.duration_seconds BETWEEN ? AND ?", [low, high]
    m = _DURATION.match(value)
    if m is None:
        raise _Problem(
            q.value_position,
            f"duration: expected seconds with an optional comparison (duration:>60, duration:<=5m, "
            f"duration:30..90), got {q.value!r}",
        )
    op = m.group(1) or "="
    seconds = float(m.group(2)) * _UNIT[m.group(3)]
    return f"runs.duration_seconds {op} ?", [seconds]


def _instant(q: Qualifier) -> float:
    """A date is midnight UTC of that day; a time without a zone is UTC."""
    text = q.value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC).timestamp()
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _Problem(
            q.value_position,
            f"{q.name}: expected a date like 2026-01-31 or a time like 2026-01-31T14:00:00Z, got {q.value!r}",
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _after(q: Qualifier) -> Clause:
    return "runs.started_at >= ?", [_instant(q)]


def _before(q: Qualifier) -> Clause:
    return "runs.started_at < ?", [_instant(q)]


def _column(name: str) -> Callable[[Qualifier], Clause]:
    def handler(q: Qualifier) -> Clause:
        return _eq_or_glob(_COLUMNS[name], fold(q.value) if name in _FOLDED else q.value)

    return handler


def _side(name: str) -> Callable[[Qualifier], Clause]:
    def handler(q: Qualifier) -> Clause:
        return _in_side(_SIDE[name], fold(q.value) if name in _FOLDED else q.value)

    return handler


QUALIFIERS: dict[str, Callable[[Qualifier], Clause]] = {
    "status": _status,
    "intent": _column("intent"),
    "tag": _side("tag"),
    "namespace": _side("namespace"),
    "resource": _resource,
    "triggered_by": _column("triggered_by"),
    "duration": _duration,
    "after": _after,
    "before": _before,
    "caller": _column("caller"),
    "parent": _column("parent"),
    "session": _column("session"),
    "step": _column("step"),
    "purpose": _column("purpose"),
    "category": _category,
    "image": _side("image"),
    "reason": _side("reason"),
}

def _phrase(text: Text) -> str:
    """One FTS5 phrase: the user's text inside double quotes (doubled within), optionally a prefix."""
    prefix = not text.quoted and text.value.endswith("*")
    core = text.value.rstrip("*") if prefix else text.value
    quoted = '"' + core.replace('"', '""') + '"'
    return f"{quoted} *" if prefix and core else quoted


def _normal(node: Node, negated: bool = False) -> Node:
    """Negation normal form: NOT pushed down to the terms (De Morgan), double negations dropped, nested
    ANDs merged into their AND and ORs into their OR. The SQL is then only as deep as AND and OR
    alternate, never as deep as the NOTs. Equivalent to the tree as typed, because a negated term is
    made two-valued (NULL is false) before NOT, and a formula without NOT treats NULL as false anyway.
    """
    if isinstance(node, Not):
        return _normal(node.item, not negated)
    if isinstance(node, And | Or):
        kind = Or if isinstance(node, And) == negated else And
        items: list[Node] = []
        for item in node.items:
            child = _normal(item, negated)
            items.extend(child.items if isinstance(child, kind) else (child,))
        return kind(tuple(items))
    return Not(node) if negated else node


# FTS5's expression parser has a fixed stack like SQLite's: deeper free-text structures are split
# into several MATCHes combined in SQL instead.
_MAX_FTS_DEPTH = 8


def _fts_depth(node: Node) -> tuple[str, int] | None:
    """The FTS5 expression for a subtree made only of free text and how deeply its groups nest,
    else None (FTS5 has no unary NOT). The deepest part goes first: nesting costs the parser least there.
    """
    if isinstance(node, Text):
        return _phrase(node), 0
    if isinstance(node, Or):
        parts = [_fts_depth(item) for item in node.items]
        if any(p is None for p in parts):
            return None
        ordered = sorted((p for p in parts if p), key=lambda p: -p[1])
        depth = 1 + ordered[0][1]
        return ("(" + " OR ".join(e for e, _ in ordered) + ")", depth) if depth <= _MAX_FTS_DEPTH else None
    if isinstance(node, And):
        positive: list[tuple[str, int]] = []
        negative: list[tuple[str, int]] = []
        for item in node.items:
            part = _fts_depth(item.item) if isinstance(item, Not) else _fts_depth(item)
            if part is None:
                return None
            (negative if isinstance(item, Not) else positive).append(part)
        if not positive:
            return None
        positive.sort(key=lambda p: -p[1])
        depth = 1 + max(d for _, d in positive + negative)
        if depth > _MAX_FTS_DEPTH:
            return None
        expr = "(" + " AND ".join(e for e, _ in positive) + ")"
        return "(" + expr + "".join(f" NOT {n}" for n, _ in negative) + ")", depth
    return None


def _fts(node: Node) -> str | None:
    found = _fts_depth(node)
    return None if found is None else found[0]


def _is_textual(node: Node) -> bool:
    return _fts(node.item if isinstance(node, Not) else node) is not None


@dataclass(frozen=True)
class _Sql:
    """A compiled subtree: its SQL, its parameters in order, and how deeply ANDs and ORs nest in it."""

    text: str
    params: list[object]
    depth: int = 0
    joiner: str = ""  # " AND " or " OR " for a compound, "" for one term


def _group_text(node: And | Or) -> list[Node]:
    """The free-text parts of an AND or OR, merged into as few FTS5 MATCHes as possible."""
    items = list(node.items)
    textual = [i for i in items if _is_textual(i)]
    positive: list[Node] = [t for t in textual if not isinstance(t, Not)]
    negative = [t.item for t in textual if isinstance(t, Not)]
    groups: list[tuple[list[Node], Node]] = []
    if isinstance(node, And) and len(textual) > 1 and positive:
        groups.append((textual, And(tuple(textual))))
    elif isinstance(node, And) and len(textual) > 1:  # -a -b is NOT (a OR b): still one MATCH
        groups.append((textual, Not(Or(tuple(negative)))))
    if isinstance(node, Or) and len(positive) > 1:
        groups.append((positive, Or(tuple(positive))))
    if isinstance(node, Or) and len(negative) > 1:  # -a OR -b is NOT (a AND b)
        groups.append(([t for t in textual if isinstance(t, Not)], Not(And(tuple(negative)))))
    for members, grouped in reversed(groups):
        if not _is_textual(grouped):  # too deep for one FTS5 expression: each part on its own
            continue
        items = [i for i in items if not any(i is m for m in members)]
        items.insert(0, grouped)
    return items


# SQLite's parser has a fixed stack of 100 entries; each level of AND/OR nesting takes one to three
# of them. A part that nests this deep becomes a named subquery in a WITH clause instead, whose body
# the parser reads on its own, so no statement nests deeper than this whatever the query's shape.
_SPILL_DEPTH = 12
_CTE = "{name}(seq) AS (SELECT seq FROM runs WHERE {where})"


class _Compiler:
    """Turns a normalised tree into SQL, collecting the parts it moves into the WITH clause."""

    def __init__(self) -> None:
        self.ctes: list[tuple[str, list[object]]] = []

    def sql(self, node: Node) -> _Sql:
        fts = _fts(node)
        if fts is not None:
            return _Sql(_FTS_MATCH, [fts])
        if isinstance(node, Qualifier):
            handler = QUALIFIERS.get(node.name)
            if handler is None:
                raise _Problem(
                    node.position,
                    f"unknown qualifier {node.name + ':'!r}; known: {', '.join(q + ':' for q in QUALIFIERS)} "
                    '(quote text that contains a colon: "error: x")',
                )
            if node.value == "":
                raise _Problem(node.value_position, f"{node.name}: needs a value right after the colon")
            text, params = handler(node)
            return _Sql(text, params)
        if isinstance(node, Not):  # after _normal, only around a term or a group of free text
            inner = self.sql(node.item)
            side = inner.text.removeprefix(_SIDE_IN)
            if side != inner.text and side.startswith("SELECT run FROM ") and side.endswith(")"):
                # -tag:ci as a probe of run_tags per candidate run, not a list of every tagged run to build first
                probe = side[:-1].replace("SELECT run FROM ", "SELECT 1 FROM ", 1)
                return _Sql(f"NOT EXISTS ({probe} AND run = runs.seq)", inner.params, inner.depth)
            return _Sql(f"NOT COALESCE(({inner.text}), 0)", inner.params, inner.depth)
        assert isinstance(node, And | Or)
        joiner = " AND " if isinstance(node, And) else " OR "
        # Deepest part first: the parser's stack grows by one '(' per level there, but by '( expr AND'
        # for a part further right. ORs inside an AND need their parentheses; nothing else does.
        parts = sorted((self.sql(i) for i in _group_text(node)), key=lambda p: -p.depth)
        text = joiner.join(f"({p.text})" if p.joiner == " OR " and joiner == " AND " else p.text for p in parts)
        compiled = _Sql(text, [x for p in parts for x in p.params], 1 + parts[0].depth, joiner)
        if compiled.depth < _SPILL_DEPTH:
            return compiled
        name = f"q{len(self.ctes) + 1}"  # a constant name, numbered: never user text
        self.ctes.append((_CTE.format(name=name, where=compiled.text), compiled.params))
        return _Sql(f"runs.seq IN {name}", [])


def compile_query(query: str) -> CompiledQuery:
    """Parse and compile; raises QuerySyntaxError naming the position, the qualifier or the value at fault."""
    tree = parse_query(query)
    if tree is None:
        return CompiledQuery("1", ())
    compiler = _Compiler()
    try:
        compiled = compiler.sql(_normal(tree))
    except _Problem as problem:
        raise QuerySyntaxError(query, problem.position, problem.message) from None
    if not compiler.ctes:
        return CompiledQuery(compiled.text, tuple(compiled.params))
    ctes = "WITH " + ", ".join(text for text, _ in compiler.ctes) + " "
    params = [x for _, ps in compiler.ctes for x in ps] + compiled.params
    return CompiledQuery(compiled.text, tuple(params), ctes)
