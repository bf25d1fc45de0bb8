"""POST /crm/v3/objects/{type}/batch/{read,update,upsert,create}.

Failures are shaped the way HubSpot shapes them, because the writeback retries by them: a
property that does not exist or is read-only fails the whole request (400 VALIDATION_ERROR);
unknown ids and values that do not fit a property's type fail only their records (207, with
``errors[].context.ids`` naming them); everything else is written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from closedloop.sandbox.hubspot.errors import (
    batch_error,
    invalid_property_values,
    property_problem,
    validation_error,
)
from closedloop.sandbox.hubspot.state import HubSpotState, StoredObject
from closedloop.sandbox.hubspot.values import InvalidValue, format_instant, normalise_value
from closedloop.sandbox.hubspot.wire import (
    BadRequest,
    object_type_of,
    read_json,
    render,
    string_list,
)
from closedloop.sandbox.server import Handler, Request, Response

MAX_INPUTS = 100
MAX_INPUTS_WITH_HISTORY = 50
_LABEL = {"contacts": "CONTACT", "deals": "DEAL"}


class Batches:
    def __init__(self, state: HubSpotState, now: Callable[[], datetime]) -> None:
        self.state = state
        self.now = now

    def routes(self) -> list[tuple[str, str, Handler]]:
        base = "/crm/v3/objects/{objectType}/batch"
        return [
            ("POST", f"{base}/read", self.read),
            ("POST", f"{base}/update", self.update),
            ("POST", f"{base}/upsert", self.upsert),
            ("POST", f"{base}/create", self.create),
        ]

    # ---- read ------------------------------------------------------------------------------

    def read(self, request: Request, params: dict[str, str]) -> Response:
        object_type = object_type_of(params["objectType"])
        body = read_json(request)
        with_history = string_list(body.get("propertiesWithHistory"), "propertiesWithHistory")
        inputs = _inputs(body, MAX_INPUTS_WITH_HISTORY if with_history else MAX_INPUTS)
        properties = string_list(body.get("properties"), "properties") or None
        id_property = body.get("idProperty")
        started = self.now()
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        with self.state.lock:
            for item in inputs:
                wanted = str(item.get("id", ""))
                stored = self._lookup(object_type, wanted, id_property)
                if stored is None:
                    missing.append(wanted)
                    continue
                results.append(
                    render(self.state, object_type, stored, properties, with_history=with_history)
                )
        errors = [self._not_found(object_type, missing)] if missing else []
        return _batch_response(results, errors, started, self.now(), success_status=200)

    # ---- writes ----------------------------------------------------------------------------

    def update(self, request: Request, params: dict[str, str]) -> Response:
        object_type = object_type_of(params["objectType"])
        inputs = _inputs(read_json(request), MAX_INPUTS)
        self._check_property_names(object_type, inputs)
        ids = [str(item.get("id", "")) for item in inputs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise BadRequest(
                validation_error(
                    f"Duplicate IDs found in batch input: {duplicates}", ids=duplicates
                )
            )
        started = self.now()
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        missing: list[str] = []
        with self.state.lock:
            for item, wanted in zip(inputs, ids, strict=True):
                stored = self._lookup(object_type, wanted, item.get("idProperty"))
                if stored is None:
                    missing.append(wanted)
                    continue
                values = self._values(object_type, item, wanted, errors)
                if values is None:
                    continue
                written = self.state.write(object_type, stored.id, values, now=self.now())
                results.append(render(self.state, object_type, written, list(values)))
        if missing:
            errors.insert(0, self._not_found(object_type, missing))
        return _batch_response(results, errors, started, self.now(), success_status=200)

    def create(self, request: Request, params: dict[str, str]) -> Response:
        object_type = object_type_of(params["objectType"])
        inputs = _inputs(read_json(request), MAX_INPUTS)
        self._check_property_names(object_type, inputs)
        started = self.now()
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        with self.state.lock:
            for index, item in enumerate(inputs):
                trace = str(item.get("objectWriteTraceId") or index)
                values = self._values(
                    object_type, item, trace, errors, context_key="objectWriteTraceId"
                )
                if values is None:
                    continue
                created = self.state.create(object_type, values, now=self.now())
                results.append(render(self.state, object_type, created, list(values)))
        return _batch_response(results, errors, started, self.now(), success_status=201)

    def upsert(self, request: Request, params: dict[str, str]) -> Response:
        object_type = object_type_of(params["objectType"])
        inputs = _inputs(read_json(request), MAX_INPUTS)
        self._check_property_names(object_type, inputs)
        for item in inputs:
            id_property = item.get("idProperty")
            definition = (
                self.state.property_definition(object_type, str(id_property))
                if id_property
                else None
            )
            if definition is None or not definition.get("hasUniqueValue"):
                raise BadRequest(
                    validation_error(
                        f"Unable to perform update/upsert by non-unique {object_type} "
                        f"property {id_property}"
                    )
                )
        started = self.now()
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        with self.state.lock:
            for item in inputs:
                wanted, id_property = str(item.get("id", "")), str(item["idProperty"])
                values = self._values(object_type, item, wanted, errors)
                if values is None:
                    continue
                stored = self.state.find_unique(object_type, id_property, wanted)
                if stored is None:
                    values.setdefault(id_property, wanted)
                    stored = self.state.create(object_type, values, now=self.now())
                    is_new = True
                else:
                    stored = self.state.write(object_type, stored.id, values, now=self.now())
                    is_new = False
                result = render(self.state, object_type, stored, list(values))
                result["new"] = is_new
                results.append(result)
        return _batch_response(results, errors, started, self.now(), success_status=200)

    # ---- helpers ---------------------------------------------------------------------------

    def _lookup(self, object_type: str, wanted: str, id_property: object) -> StoredObject | None:
        if id_property:
            return self.state.find_unique(object_type, str(id_property), wanted)
        stored = self.state.get(object_type, wanted)
        return None if stored is None or stored.archived else stored

    def _not_found(self, object_type: str, ids: list[str]) -> dict[str, Any]:
        return batch_error(
            "OBJECT_NOT_FOUND",
            f"Could not get some {_LABEL[object_type]} objects, they may be deleted or not exist. "
            "Check that ids are valid.",
            ids,
        )

    def _check_property_names(self, object_type: str, inputs: list[dict[str, Any]]) -> None:
        """Unknown or read-only names fail the whole request, as HubSpot does."""
        problems: list[dict[str, Any]] = []
        seen: set[str] = set()
        for item in inputs:
            properties = item.get("properties")
            if not isinstance(properties, dict):
                raise BadRequest(validation_error("each input needs a properties object"))
            for name in properties:
                if name in seen:
                    continue
                seen.add(name)
                definition = self.state.property_definition(object_type, name)
                if definition is None:
                    problems.append(
                        property_problem(
                            name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
                        )
                    )
                elif definition["modificationMetadata"].get("readOnlyValue"):
                    problems.append(
                        property_problem(
                            name,
                            "READ_ONLY_VALUE",
                            f'"{name}" is a read only property; its value cannot be set.',
                        )
                    )
        if problems:
            raise BadRequest(validation_error(invalid_property_values(problems)))

    def _values(
        self,
        object_type: str,
        item: dict[str, Any],
        record: str,
        errors: list[dict[str, Any]],
        *,
        context_key: str = "ids",
    ) -> dict[str, str | None] | None:
        """The normalised values of one input, or None after recording its per-record error."""
        values: dict[str, str | None] = {}
        problems: list[dict[str, Any]] = []
        for name, raw in item["properties"].items():
            definition = self.state.property_definition(object_type, name)
            assert definition is not None  # checked for the whole request first
            try:
                values[name] = normalise_value(definition, raw)
            except InvalidValue as exc:
                problems.append(property_problem(name, exc.code, exc.message))
        if problems:
            errors.append(
                batch_error(
                    "VALIDATION_ERROR",
                    invalid_property_values(problems),
                    [record],
                    context_key=context_key,
                )
            )
            return None
        return values


def _inputs(body: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise BadRequest(validation_error("Invalid input JSON: inputs must be a list of objects"))
    if len(inputs) > limit:
        raise BadRequest(
            validation_error(
                f"Batch input limit exceeded: at most {limit} inputs are allowed in this request, "
                f"{len(inputs)} were given.",
                inputs=[str(len(inputs))],
            )
        )
    return inputs


def _batch_response(
    results: list[dict[str, Any]],
    errors: list[dict[str, Any]],
    started: datetime,
    completed: datetime,
    *,
    success_status: int,
) -> Response:
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": format_instant(started),
        "completedAt": format_instant(completed),
    }
    if not errors:
        return Response(success_status, body)
    body["numErrors"] = len(errors)
    body["errors"] = errors
    return Response(207, body)
