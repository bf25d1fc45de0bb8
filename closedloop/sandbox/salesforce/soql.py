"""A SOQL parser for the subset the connector sends: tokens, then a recursive-descent tree.

Parsed properly, not pattern-matched: anything outside the subset (subqueries, GROUP BY, date
literals, bind variables) is refused with MALFORMED_QUERY, never answered with an empty list.
As in Salesforce, AND and OR cannot be mixed at one level without parentheses, keywords are
case-insensitive, and the message points at the row and column of the offending token.

    query   := SELECT (COUNT() | path {, path}) FROM name [WHERE expr]
               [ORDER BY path [ASC|DESC] [NULLS FIRST|LAST] {, ...}] [LIMIT n] [OFFSET n]
    expr    := factor {AND factor} | factor {OR factor}
    factor  := NOT factor | ( expr ) | path op value | path [NOT] IN ( value {, value} ) | path LIKE 'text'
    value   := 'string' | number | true | false | null | 2024-01-01T00:00:00Z | 2024-01-01
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

_TOKEN = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<string>'(?:[^'\\]|\\.)*')"
    r"|(?P<datetime>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d))"
    r"|(?P<date>\d{4}-\d\d-\d\d(?![\dT]))"
    r"|(?P<number>[+-]?\d+(?:\.\d+)?(?![\w.]))"
    r"|(?P<ident>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"
    r"|(?P<op>!=|<>|<=|>=|=|<|>)"
    r"|(?P<punct>[(),])"
    r"|(?P<other>\S)"
)
_ESCAPES = {"'": "'", "\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
_UNSUPPORTED = {"GROUP", "HAVING", "WITH", "FOR", "TYPEOF", "USING", "INCLUDES", "EXCLUDES", "FIELDS"}


class SoqlSyntaxError(Exception):
    """MALFORMED_QUERY, with Salesforce's caret-and-position message."""

    def __init__(self, text: str, column: int, detail: str) -> None:
        self.message = f"\n{text}\n{' ' * column}^\nERROR at Row:1:Column:{column + 1}\n{detail}"
        super().__init__(self.message)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    column: int

    @property
    def upper(self) -> str:
        return self.text.upper()


@dataclass(frozen=True, slots=True)
class FieldPath:
    parts: tuple[str, ...]
    column: int

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class Literal:
    kind: str  # string, number, boolean, null, datetime, date
    value: Any
    column: int
    raw: str = ""  # the string's body with LIKE escapes (\% \_) kept


@dataclass(frozen=True, slots=True)
class Comparison:
    path: FieldPath
    op: str  # = != < <= > >= LIKE IN NOT IN
    values: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # AND, OR
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Node


Node = Comparison | BoolOp | Not


@dataclass(frozen=True, slots=True)
class OrderItem:
    path: FieldPath
    descending: bool = False
    nulls_last: bool = False


@dataclass(slots=True)
class Query:
    text: str
    sobject: str
    sobject_column: int
    fields: list[FieldPath] = field(default_factory=list)
    count: bool = False
    where: Node | None = None
    order: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


def tokenize(text: str) -> list[Token]:
    tokens = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind == "ws":
            continue
        if kind == "other" and match.group() == ":":
            raise SoqlSyntaxError(text, match.start(), "bind variables are only valid in Apex code")
        if kind == "other":
            raise SoqlSyntaxError(text, match.start(), f"unexpected token: '{match.group()}'")
        tokens.append(Token(kind, match.group(), match.start()))
    return tokens


def parse(text: str) -> Query:
    return _Parser(text).query()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    # ---- token helpers -------------------------------------------------------------------

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> Token:
        token = self.peek()
        if token is None:
            raise SoqlSyntaxError(self.text, len(self.text), "unexpected token: <EOF>")
        self.pos += 1
        return token

    def fail(self, token: Token | None, detail: str | None = None) -> SoqlSyntaxError:
        if token is None:
            return SoqlSyntaxError(self.text, len(self.text), detail or "unexpected token: <EOF>")
        if detail is None and token.upper in _UNSUPPORTED:
            detail = f"{token.upper} is not supported by the closedloop sandbox"
        return SoqlSyntaxError(self.text, token.column, detail or f"unexpected token: '{token.text}'")

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "ident" and token.upper in words:
            self.pos += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            raise self.fail(self.peek())

    def expect_punct(self, char: str) -> None:
        token = self.peek()
        if token is None or token.text != char:
            raise self.fail(token)
        self.pos += 1

    # ---- grammar -------------------------------------------------------------------------

    def query(self) -> Query:
        self.expect_keyword("SELECT")
        fields, count = self.select_list()
        self.expect_keyword("FROM")
        name = self.next()
        if name.kind != "ident" or "." in name.text:
            raise self.fail(name)
        query = Query(self.text, name.text, name.column, fields, count)
        if self.keyword("WHERE"):
            query.where = self.expr()
        if self.keyword("ORDER"):
            self.expect_keyword("BY")
            query.order = self.order_list()
        if self.keyword("LIMIT"):
            query.limit = self.integer()
        if self.keyword("OFFSET"):
            query.offset = self.integer()
        if self.peek() is not None:
            raise self.fail(self.peek())
        return query

    def select_list(self) -> tuple[list[FieldPath], bool]:
        first = self.peek()
        if first is not None and first.upper == "COUNT" and self._at(1, "("):
            self.pos += 1
            self.expect_punct("(")
            closing = self.peek()
            if closing is None or closing.text != ")":
                raise self.fail(closing, "the closedloop sandbox supports COUNT() only, not aggregates")
            self.pos += 1
            return [], True
        fields = [self.path()]
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.pos += 1
            fields.append(self.path())
        return fields, False

    def _at(self, offset: int, text: str) -> bool:
        index = self.pos + offset
        return index < len(self.tokens) and self.tokens[index].text == text

    def path(self) -> FieldPath:
        token = self.next()
        if token.text == "(":
            raise self.fail(token, "relationship subqueries are not supported by the closedloop sandbox")
        if token.kind != "ident" or token.upper in ("FROM", "WHERE"):
            raise self.fail(token)
        if self._at(0, "("):
            raise self.fail(token, f"function {token.text}() is not supported by the closedloop sandbox")
        return FieldPath(tuple(token.text.split(".")), token.column)

    def expr(self) -> Node:
        parts = [self.factor()]
        op: str | None = None
        while True:
            token = self.peek()
            if token is None or token.kind != "ident" or token.upper not in ("AND", "OR"):
                break
            if op is not None and token.upper != op:
                raise self.fail(token)  # AND and OR mixed without parentheses
            op = token.upper
            self.pos += 1
            parts.append(self.factor())
        return parts[0] if op is None else BoolOp(op, tuple(parts))

    def factor(self) -> Node:
        if self.keyword("NOT"):
            return Not(self.factor())
        token = self.peek()
        if token is not None and token.text == "(":
            self.pos += 1
            inner = self.expr()
            self.expect_punct(")")
            return inner
        path = self.path()
        token = self.next()
        if token.kind == "op":
            op = "!=" if token.text == "<>" else token.text
            return Comparison(path, op, (self.value(),))
        word = token.upper
        if word == "LIKE":
            return Comparison(path, "LIKE", (self.value(),))
        if word == "NOT" and self.keyword("IN"):
            return Comparison(path, "NOT IN", self.value_list())
        if word == "IN":
            return Comparison(path, "IN", self.value_list())
        raise self.fail(token)

    def value_list(self) -> tuple[Literal, ...]:
        self.expect_punct("(")
        token = self.peek()
        if token is not None and token.upper == "SELECT":
            raise self.fail(token, "semi-join subqueries are not supported by the closedloop sandbox")
        values = [self.value()]
        while self._at(0, ","):
            self.pos += 1
            values.append(self.value())
        self.expect_punct(")")
        return tuple(values)

    def value(self) -> Literal:
        token = self.next()
        if token.kind == "string":
            body = token.text[1:-1]
            return Literal("string", self._unescape(body, token), token.column, body)
        if token.kind == "number":
            return Literal("number", float(token.text), token.column)
        if token.kind == "datetime":
            return Literal("datetime", _parse_datetime(token.text), token.column)
        if token.kind == "date":
            try:
                return Literal("date", date.fromisoformat(token.text), token.column)
            except ValueError:
                raise self.fail(token, f"line 1:{token.column} no viable alternative at character") from None
        if token.kind == "ident" and token.upper in ("TRUE", "FALSE"):
            return Literal("boolean", token.upper == "TRUE", token.column)
        if token.kind == "ident" and token.upper == "NULL":
            return Literal("null", None, token.column)
        if token.kind == "ident":
            raise self.fail(token, f"date literal or value '{token.text}' is not supported by the closedloop sandbox")
        raise self.fail(token)

    def _unescape(self, body: str, token: Token) -> str:
        out: list[str] = []
        chars = iter(enumerate(body))
        for index, char in chars:
            if char != "\\":
                out.append(char)
                continue
            _, escaped = next(chars, (index, ""))
            if escaped in _ESCAPES:
                out.append(_ESCAPES[escaped])
            elif escaped in "%_":
                out.append(escaped)
            else:
                raise self.fail(token, "Invalid string literal. Illegal character sequence '\\" + escaped + "'")
        return "".join(out)

    def order_list(self) -> list[OrderItem]:
        items = []
        while True:
            path = self.path()
            descending = self.keyword("DESC")
            if not descending:
                self.keyword("ASC")
            nulls_last = descending
            if self.keyword("NULLS"):
                if self.keyword("LAST"):
                    nulls_last = True
                else:
                    self.expect_keyword("FIRST")
                    nulls_last = False
            items.append(OrderItem(path, descending, nulls_last))
            if not self._at(0, ","):
                return items
            self.pos += 1

    def integer(self) -> int:
        token = self.next()
        if token.kind != "number" or not token.text.isdigit():
            raise self.fail(token)
        return int(token.text)


def _parse_datetime(text: str) -> datetime:
    head, zone = (text[:-1], "Z") if text.endswith("Z") else (text[:-6], text[-6:]) if text[-3] == ":" \
        else (text[:-5], text[-5:])
    moment = datetime.fromisoformat(head[:26])
    if zone == "Z":
        return moment.replace(tzinfo=UTC)
    sign = 1 if zone[0] == "+" else -1
    hours, minutes = int(zone[1:3]), int(zone[-2:])
    return moment.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes))).astimezone(UTC)
