"""GET/POST /crm/v3/properties/{type} (+ /{name}, /batch/create, /groups): the portal's schema.

closedloop creates its writeback properties here before writing them, so creation checks what
HubSpot checks: required fields, known type and fieldType, an existing group (else 400) and a
new name (else 409).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from closedloop.sandbox.hubspot.definitions import definition, group, options
from closedloop.sandbox.hubspot.errors import (
    batch_error,
    error_response,
    not_found,
    validation_error,
)
from closedloop.sandbox.hubspot.state import HubSpotState
from closedloop.sandbox.hubspot.values import format_instant
from closedloop.sandbox.hubspot.wire import BadRequest, object_type_of, read_json
from closedloop.sandbox.server import Handler, Request, Response

PROPERTY_TYPES = {"string", "number", "date", "datetime", "enumeration", "bool"}
FIELD_TYPES = {
    "textarea",
    "text",
    "date",
    "file",
    "number",
    "select",
    "radio",
    "checkbox",
    "booleancheckbox",
    "calculation_equation",
}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_BATCH = 100


class Properties:
    def __init__(self, state: HubSpotState, now: Callable[[], datetime]) -> None:
        self.state = state
        self.now = now

    def routes(self) -> list[tuple[str, str, Handler]]:
        base = "/crm/v3/properties/{objectType}"
        return [
            ("GET", f"{base}/groups", self.list_groups),
            ("POST", f"{base}/groups", self.create_group),
            ("POST", f"{base}/batch/create", self.batch_create),
            ("GET", base, self.list_properties),
            ("POST", base, self.create_property),
            ("GET", f"{base}/{{propertyName}}", self.get_property),
        ]

    def list_properties(self, request: Request, params: dict[str, str]) -> Response:
        object_type = object_type_of(params["objectType"])
        wanted = set(request.args("properties"))
        results = [
            d
            for d in self.state.property_definitions(object_type).values()
            if not d.get("archived") and (not wanted or d["name"] in wanted)
        ]
        return Response(200, {"results": results})

    def get_property(self, request: Request, params: dict[str, str]) -> Response:
        object_type = object_type_of(params["objectType"])
        found = self.state.property_definition(object_type, params["propertyName"])
        if found is None:
            return not_found(
                f"Unable to find property {params['propertyName']} for object type {object_type}"
            )
        return Response(200, dict(found))

    def create_property(self, request: Request, params: dict[str, str]) -> Response:
        object_type = object_type_of(params["objectType"])
        body = read_json(request)
        with self.state.lock:
            problem = self._problem(object_type, body)
            if problem is not None:
                return problem
            created = self._build(body)
            self.state.add_property(object_type, created)
        return Response(201, created)

    def batch_create(self, request: Request, params: dict[str, str]) -> Response:
        object_type = object_type_of(params["objectType"])
        inputs = read_json(request).get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise BadRequest(
                validation_error("Invalid input JSON: inputs must be a list of objects")
            )
        if len(inputs) > MAX_BATCH:
            raise BadRequest(
                validation_error(
                    f"Batch input limit exceeded: at most {MAX_BATCH} inputs, {len(inputs)} given"
                )
            )
        started = self.now()
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        with self.state.lock:
            for body in inputs:
                problem = self._problem(object_type, body)
                if problem is not None:
                    assert isinstance(problem.body, dict)
                    errors.append(
                        batch_error(
                            problem.body["category"],
                            problem.body["message"],
                            [str(body.get("name"))],
                            context_key="names",
                        )
                    )
                    continue
                created = self._build(body)
                self.state.add_property(object_type, created)
                results.append(created)
        out: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": format_instant(started),
            "completedAt": format_instant(self.now()),
        }
        if not errors:
            return Response(201, out)
        out["numErrors"] = len(errors)
        out["errors"] = errors
        return Response(207, out)

    def list_groups(self, request: Request, params: dict[str, str]) -> Response:
        object_type = object_type_of(params["objectType"])
        return Response(200, {"results": list(self.state.groups(object_type).values())})

    def create_group(self, request: Request, params: dict[str, str]) -> Response:
        object_type = object_type_of(params["objectType"])
        body = read_json(request)
        name, label = body.get("name"), body.get("label")
        if (
            not isinstance(name, str)
            or not _NAME.match(name)
            or not isinstance(label, str)
            or not label
        ):
            return validation_error(
                "A property group needs a lowercase name and a label", name=[str(name)]
            )
        with self.state.lock:
            if name in self.state.groups(object_type):
                return error_response(
                    409,
                    f"A property group named '{name}' already exists.",
                    "CONFLICT",
                    context={"name": [name]},
                )
            created = group(name, label, int(body.get("displayOrder", -1)))
            self.state.add_group(object_type, created)
        return Response(201, created)

    def _problem(self, object_type: str, body: dict[str, Any]) -> Response | None:
        missing = [
            f for f in ("name", "label", "type", "fieldType", "groupName") if not body.get(f)
        ]
        if missing:
            return validation_error(
                f"Missing required fields: {', '.join(missing)}", missing=missing
            )
        name = str(body["name"])
        if not _NAME.match(name):
            return validation_error(
                f"Invalid property name {name!r}: use lowercase letters, digits and _"
            )
        if body["type"] not in PROPERTY_TYPES:
            return validation_error(
                f"Invalid property type {body['type']!r}", type=[str(body["type"])]
            )
        if body["fieldType"] not in FIELD_TYPES:
            return validation_error(
                f"Invalid fieldType {body['fieldType']!r}", fieldType=[str(body["fieldType"])]
            )
        if (
            body["type"] == "enumeration"
            and not body.get("options")
            and body["fieldType"] != "booleancheckbox"
        ):
            return validation_error(f"Enumeration property {name} needs options")
        if body["groupName"] not in self.state.groups(object_type):
            return validation_error(
                f"Property group {body['groupName']!r} does not exist for {object_type}",
                groupName=[str(body["groupName"])],
            )
        if self.state.property_definition(object_type, name) is not None:
            return error_response(
                409,
                f"Object already exists: a property named '{name}' already exists.",
                "OBJECT_ALREADY_EXISTS",
                context={"name": [name]},
            )
        return None

    def _build(self, body: dict[str, Any]) -> dict[str, Any]:
        created = definition(
            str(body["name"]),
            str(body["type"]),
            str(body["groupName"]),
            label=str(body["label"]),
            field_type=str(body["fieldType"]),
            unique=bool(body.get("hasUniqueValue", False)),
            hubspot_defined=False,
            display_order=int(body.get("displayOrder", -1)),
            description=str(body.get("description", "")),
        )
        created["options"] = [
            {
                "label": str(o.get("label", o.get("value"))),
                "value": str(o.get("value")),
                "displayOrder": int(o.get("displayOrder", i)),
                "hidden": bool(o.get("hidden", False)),
                "description": str(o.get("description", "")),
            }
            for i, o in enumerate(body.get("options") or [])
        ] or options([])
        created["hidden"] = bool(body.get("hidden", False))
        created["formField"] = bool(body.get("formField", False))
        stamp = format_instant(self.now())
        created["createdAt"] = created["updatedAt"] = stamp
        return created
