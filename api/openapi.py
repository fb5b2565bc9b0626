"""The OpenAPI document: FastAPI's, completed into the exact contract (DESIGN §7).

FastAPI derives paths, parameters and bodies from the code. This adds what it cannot know:
the problem-document schema every declared error refers to, and an example request and
answer on every operation (from the models' own examples, see api.examples).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.examples import response_example
from api.schemas import Problem

JSON = "application/json"
REF_PREFIX = "#/components/schemas/"


def _schema_name(media: dict[str, Any]) -> str | None:
    ref = media.get("schema", {}).get("$ref", "")
    return ref.removeprefix(REF_PREFIX) if ref.startswith(REF_PREFIX) else None


def _add_request_example(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    media = operation.get("requestBody", {}).get("content", {}).get(JSON)
    if media is None or "example" in media:
        return
    name = _schema_name(media)
    examples = schemas.get(name or "", {}).get("examples")
    if examples:
        media["example"] = examples[0]


def _add_response_examples(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    for response in operation.get("responses", {}).values():
        media = response.get("content", {}).get(JSON)
        if media is None or "example" in media:
            continue
        name = _schema_name(media) or ""
        example = response_example(name) or next(
            iter(schemas.get(name, {}).get("examples", [])), None
        )
        if example is not None:
            media["example"] = example


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The document `GET /openapi.json` serves (built once per process)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template=REF_PREFIX + "{model}")
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            _add_request_example(operation, schemas)
            _add_response_examples(operation, schemas)
    app.openapi_schema = document
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve the completed document at /openapi.json."""

    def openapi() -> dict[str, Any]:
        return build_openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]
