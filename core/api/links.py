"""OpenAPI links: how ids from one response feed later requests (a job id from POST /jobs, an
upload link from POST /uploads, a plugin id from GET /plugins). Clients and the stateful
schemathesis run (tests/test_security_fuzz.py) follow them."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

P = "/api/v1"


def _ref(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def _job_links() -> dict[str, Any]:
    job = {"job_id": "$response.body#/id"}
    targets = {"GetJob": ("/jobs/{job_id}", "get"), "JobLog": ("/jobs/{job_id}/log", "get"),
               "JobEvents": ("/jobs/{job_id}/events", "get"), "JobFiles": ("/jobs/{job_id}/files", "get"),
               "JobZip": ("/jobs/{job_id}/zip", "get"), "CancelJob": ("/jobs/{job_id}/cancel", "post"),
               "RetryJob": ("/jobs/{job_id}/retry", "post"), "DeleteJob": ("/jobs/{job_id}", "delete")}
    return {name: {"operationRef": _ref(P + path, method), "parameters": job} for name, (path, method) in targets.items()}


LINKS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("/jobs", "post", "201"): _job_links(),
    ("/jobs/{job_id}/retry", "post", "201"): _job_links(),
    ("/uploads", "post", "201"): {"SubmitWithUpload": {
        "operationRef": _ref(P + "/jobs", "post"),
        "requestBody": {"plugin": "table_plot", "request": {"data": {"datTable": {"link": "$response.body#/link"}}}}}},
    ("/plugins", "get", "200"): {
        name: {"operationRef": _ref(P + path, method), "parameters": {"plugin_id": "$response.body#/plugins/0/id"}}
        for name, path, method in (("PluginCard", "/plugins/{plugin_id}", "get"),
                                   ("PluginSchema", "/plugins/{plugin_id}/schema", "get"),
                                   ("PluginUi", "/plugins/{plugin_id}/ui", "get"),
                                   ("ValidatePlugin", "/plugins/{plugin_id}/validate", "post"))},
}


def install(app: FastAPI) -> None:
    """Add :data:`LINKS` to the generated OpenAPI document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        for (path, method, status), links in LINKS.items():
            operation = schema["paths"].get(P + path, {}).get(method)
            if operation and status in operation.get("responses", {}):
                operation["responses"][status]["links"] = links
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
