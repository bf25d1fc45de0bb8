"""SOQL against the org: resolve names (INVALID_TYPE / INVALID_FIELD), type-check, filter, sort, project.

A query compiles once into a ``Plan``: a ``Column`` per selected path (relationships followed
through ``fetch``), a predicate, a sort.  Every name is checked against the catalog and the API
user's field visibility before any row is read, and each literal against its field's type (a
quoted datetime is refused as Salesforce refuses it), so a wrong query is always an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from closedloop.sandbox.salesforce.ids import to_18
from closedloop.sandbox.salesforce.schema import FieldDef, ObjectDef
from closedloop.sandbox.salesforce.soql import BoolOp, Comparison, FieldPath, Literal, Node, Not, Query
from closedloop.sandbox.salesforce.values import csv_value, rest_value

Row = dict[str, Any]
Fetch = Callable[[str, str], Row | None]  # (sObject name, id) -> row, deleted rows included
Visible = Callable[[ObjectDef, FieldDef], bool]
Catalog = Callable[[str], ObjectDef | None]
_SOAP_NAMES = {"datetime": "dateTime", "number": "double", "string": "string", "boolean": "boolean", "date": "date"}
_HINT = ("If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. "
         "Please reference your WSDL or the describe call for the appropriate names.")


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid_type(name: str) -> SoqlError:
    return SoqlError("INVALID_TYPE", f"sObject type '{name}' is not supported. If you are attempting to use a "
                     "custom object, be sure to append the '__c' after the entity name. Please reference your "
                     "WSDL or the describe call for the appropriate names.")


def _at(query: Query, column: int, detail: str) -> str:
    return f"\n{query.text}\n{' ' * column}^\nERROR at Row:1:Column:{column + 1}\n{detail}"


@dataclass(slots=True)
class Column:
    steps: tuple[tuple[str, FieldDef, ObjectDef], ...]  # (relationship name, its id field, target)
    field: FieldDef
    fetch: Fetch

    @property
    def path(self) -> tuple[str, ...]:
        return (*(step[0] for step in self.steps), self.field.name)

    def chain(self, row: Row) -> list[Row | None]:
        rows: list[Row | None] = [row]
        current: Row | None = row
        for _, id_field, target in self.steps:
            ref = current.get(id_field.name) if current is not None else None
            current = self.fetch(target.name, ref) if ref else None
            rows.append(current)
            if current is None:
                break
        return rows

    def value(self, row: Row) -> Any:
        last = self.chain(row)[-1] if self.steps else row
        return None if last is None else last.get(self.field.name)


@dataclass(slots=True)
class Plan:
    query: Query
    sobject: ObjectDef
    columns: list[Column]
    predicate: Callable[[Row], bool]
    order: list[tuple[Column, bool, bool]]  # (column, descending, nulls last)

    def select(self, rows: Iterable[Row]) -> list[Row]:
        matched = [row for row in rows if self.predicate(row)]
        for column, descending, nulls_last in reversed(self.order):  # stable sorts, last key first
            keyed = [(column.value(r), r) for r in matched]
            present = [(v.lower() if isinstance(v, str) else v, r) for v, r in keyed if v is not None]
            absent = [r for v, r in keyed if v is None]
            present.sort(key=itemgetter(0), reverse=descending)
            ordered = [r for _, r in present]
            matched = ordered + absent if nulls_last else absent + ordered
        start = self.query.offset or 0
        end = None if self.query.limit is None else start + self.query.limit
        return matched[start:end]

    def rest_record(self, row: Row, version: str) -> dict[str, Any]:
        out = _attributes(self.sobject.name, row, version)
        for column in self.columns:
            if not column.steps:
                out[column.field.name] = rest_value(row.get(column.field.name))
                continue
            chain = column.chain(row)
            target = out
            for index, (name, _, target_obj) in enumerate(column.steps):
                parent = chain[index + 1] if index + 1 < len(chain) else None
                if parent is None:
                    target.setdefault(name, None)
                    break
                if not isinstance(target.get(name), dict):
                    target[name] = _attributes(target_obj.name, parent, version)
                target = target[name]
            else:
                target[column.field.name] = rest_value(column.value(row))
        return out

    def csv_header(self) -> list[str]:
        return [".".join(column.path) for column in self.columns]

    def csv_row(self, row: Row) -> list[str]:
        return [csv_value(column.value(row)) for column in self.columns]


def _attributes(sobject: str, row: Row, version: str) -> dict[str, Any]:
    return {"attributes": {"type": sobject, "url": f"/services/data/{version}/sobjects/{sobject}/{row['Id']}"}}


def compile_query(query: Query, catalog: Catalog, visible: Visible, fetch: Fetch) -> Plan:
    sobject = catalog(query.sobject)
    if sobject is None:
        raise invalid_type(query.sobject)
    resolve = _Resolver(query, catalog, visible, fetch, sobject)
    columns = [resolve(path) for path in query.fields]
    seen: set[tuple[str, ...]] = set()
    for column, path in zip(columns, query.fields, strict=True):
        key = tuple(p.lower() for p in column.path)
        if key in seen:
            raise SoqlError("INVALID_FIELD", _at(query, path.column, f"duplicate field selected: {path.text}"))
        seen.add(key)
    predicate = _predicate(query.where, resolve, query) if query.where is not None else (lambda row: True)
    order = [(resolve(item.path), item.descending, item.nulls_last) for item in query.order]
    return Plan(query, sobject, columns, predicate, order)


class _Resolver:
    def __init__(self, query: Query, catalog: Catalog, visible: Visible, fetch: Fetch, root: ObjectDef) -> None:
        self.query, self.catalog, self.visible, self.fetch, self.root = query, catalog, visible, fetch, root

    def __call__(self, path: FieldPath) -> Column:
        obj = self.root
        steps: list[tuple[str, FieldDef, ObjectDef]] = []
        parts = list(path.parts)
        if len(parts) > 1 and parts[0].lower() == obj.name.lower():
            parts = parts[1:]  # "Lead.Email" from Lead names the field itself
        for part in parts[:-1]:
            relation = obj.relationship(part)
            target = self.catalog(relation.reference_to) if relation and relation.reference_to else None
            if relation is None or target is None or not self.visible(obj, relation):
                raise SoqlError("INVALID_FIELD", _at(self.query, path.column, (
                    f"Didn't understand relationship '{part}' in field path. If you are attempting to use a custom "
                    "relationship, be sure to append the '__r' after the custom relationship name. Please reference "
                    "your WSDL or the describe call for the appropriate names.")))
            steps.append((relation.relationship or part, relation, target))
            obj = target
        found = obj.field(parts[-1])
        if found is None or not self.visible(obj, found):
            raise SoqlError("INVALID_FIELD", _at(self.query, path.column,
                                                 f"No such column '{parts[-1]}' on entity '{obj.name}'. {_HINT}"))
        return Column(tuple(steps), found, self.fetch)


def _predicate(node: Node, resolve: _Resolver, query: Query) -> Callable[[Row], bool]:
    if isinstance(node, BoolOp):
        parts = [_predicate(p, resolve, query) for p in node.parts]
        if node.op == "AND":
            return lambda row: all(p(row) for p in parts)
        return lambda row: any(p(row) for p in parts)
    if isinstance(node, Not):
        inner = _predicate(node.part, resolve, query)
        return lambda row: not inner(row)
    return _comparison(node, resolve(node.path), query)


def _comparison(node: Comparison, column: Column, query: Query) -> Callable[[Row], bool]:
    fd = column.field
    if fd.kind == "anyType":
        raise SoqlError("INVALID_FIELD", _at(query, node.path.column,
                                             f"field '{fd.name}' can not be filtered in a query call"))
    values = [_checked(literal, fd, node, query) for literal in node.values]
    get = column.value
    op = node.op
    if op == "LIKE":
        if fd.kind != "string" or node.values[0].kind != "string":
            raise SoqlError("INVALID_FIELD", _at(query, node.path.column,
                                                 f"invalid operator on {_SOAP_NAMES.get(fd.kind, fd.kind)} field"))
        pattern = _like(node.values[0].raw)
        return lambda row: isinstance(v := get(row), str) and pattern.fullmatch(v) is not None
    if op in ("IN", "NOT IN"):
        wanted = {_norm(v) for v in values}
        if op == "IN":
            return lambda row: (v := get(row)) is not None and _norm(v) in wanted
        return lambda row: (v := get(row)) is None or _norm(v) not in wanted
    target = values[0]
    if target is None:
        if op not in ("=", "!="):
            raise SoqlError("MALFORMED_QUERY", _at(query, node.values[0].column, "unexpected token: 'null'"))
        return (lambda row: get(row) is None) if op == "=" else (lambda row: get(row) is not None)
    if fd.kind == "boolean" and op not in ("=", "!="):
        raise SoqlError("INVALID_FIELD", _at(query, node.path.column, "invalid operator on boolean field"))
    wanted_value = _norm(target)
    compare = _OPS[op]
    if op == "!=":
        return lambda row: (v := get(row)) is None or compare(_norm(v), wanted_value)
    return lambda row: (v := get(row)) is not None and compare(_norm(v), wanted_value)


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _norm(value: Any) -> Any:
    """String comparison in SOQL ignores case; ids compare in their 18-character form."""
    if isinstance(value, str):
        return to_18(value).lower() if len(value) == 15 and value.isalnum() else value.lower()
    return value


def _checked(literal: Literal, fd: FieldDef, node: Comparison, query: Query) -> Any:
    if literal.kind == "null":
        return None
    kind = fd.kind
    ok = (literal.kind == kind or (kind == "number" and literal.kind == "number"))
    if kind == "datetime" and literal.kind == "date":
        ok = False
    if not ok:
        soap = _SOAP_NAMES.get(kind, kind)
        quoted = " and should not be enclosed in quotes" if literal.kind == "string" else ""
        if kind == "string":
            quoted = " and should be enclosed in quotes"
        raise SoqlError("INVALID_FIELD", _at(query, literal.column,
                                             f"value of filter criterion for field '{fd.name}' must be of type "
                                             f"{soap}{quoted}"))
    return literal.value


def _like(raw: str) -> re.Pattern[str]:
    out = []
    index = 0
    while index < len(raw):
        char = raw[index]
        if char == "\\" and index + 1 < len(raw):
            escaped = raw[index + 1]
            out.append(re.escape({"n": "\n", "t": "\t", "r": "\r"}.get(escaped, escaped)))
            index += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        index += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)
