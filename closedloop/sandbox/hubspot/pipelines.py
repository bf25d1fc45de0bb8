"""GET /crm/v3/pipelines/deals(/{id}): stages with ``isClosed`` and ``probability`` metadata,
which is how closedloop tells a won deal (closed, probability 1.0) from a lost one."""

from __future__ import annotations

from closedloop.sandbox.hubspot.errors import not_found
from closedloop.sandbox.hubspot.state import HubSpotState
from closedloop.sandbox.hubspot.wire import object_type_of
from closedloop.sandbox.server import Handler, Request, Response


class Pipelines:
    def __init__(self, state: HubSpotState) -> None:
        self.state = state

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/crm/v3/pipelines/{objectType}", self.list_all),
            ("GET", "/crm/v3/pipelines/{objectType}/{pipelineId}", self.get_one),
        ]

    def list_all(self, request: Request, params: dict[str, str]) -> Response:
        object_type = object_type_of(params["objectType"])
        return Response(200, {"results": self.state.pipelines(object_type)})

    def get_one(self, request: Request, params: dict[str, str]) -> Response:
        object_type = object_type_of(params["objectType"])
        for pipeline in self.state.pipelines(object_type):
            if pipeline["id"] == params["pipelineId"]:
                return Response(200, pipeline)
        return not_found(
            f"Unable to find pipeline {params['pipelineId']} for {object_type}",
            id=[params["pipelineId"]],
        )
