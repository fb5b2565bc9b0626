"""The partner client keeps up with the OpenAPI document (issue #22).

The committed copy of the document and the generated models must be what `make client`
renders from the app's document now; every operation of the document must have its client
method, and each method's body and answer types must be the schemas the document names.
A change to the API without `make client` (and, for a new operation, a method) fails here.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator
from typing import Any, get_args, get_origin

import pytest

from ops.client_codegen import (
    DOCUMENT,
    MODELS,
    app_document,
    render_document,
    render_models,
)
from payments_client import OPERATIONS, PaymentsClient

METHODS = ("get", "post", "put", "patch", "delete")
FIX = "the API changed: run `make client` (and give a new operation its client method)"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return app_document()


def test_the_committed_document_is_the_apps(document: dict[str, Any]) -> None:
    assert DOCUMENT.read_text() == render_document(document), FIX


def test_the_generated_models_are_the_documents(document: dict[str, Any]) -> None:
    assert MODELS.read_text() == render_models(document), FIX


def test_every_operation_has_its_method(document: dict[str, Any]) -> None:
    served = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }
    assert set(OPERATIONS.values()) == served, FIX
    for name in OPERATIONS:
        assert callable(getattr(PaymentsClient, name, None)), f"no method {name}"


def schema_name(schema: dict[str, Any]) -> str:
    return str(schema["$ref"]).rsplit("/", 1)[1]


def test_each_method_sends_and_answers_the_documents_schemas(document: dict[str, Any]) -> None:
    """The types a partner's type checker sees are the ones the document states."""
    for name, (method, path) in OPERATIONS.items():
        operation = document["paths"][path][method.lower()]
        hints = typing.get_type_hints(getattr(PaymentsClient, name))
        success = next(
            answer
            for status, answer in sorted(operation["responses"].items())
            if status.startswith("2")
        )
        answer = schema_name(success["content"]["application/json"]["schema"])
        returned = hints["return"]
        if get_origin(returned) is Iterator:
            # an iterator yields the items of the document's list schema
            items = document["components"]["schemas"][answer]["properties"]["data"]["items"]
            assert get_args(returned)[0].__name__ == schema_name(items), name
        else:
            assert returned.__name__ == answer, name
        body = operation.get("requestBody")
        parameters = inspect.signature(getattr(PaymentsClient, name)).parameters
        if body is None:
            assert "body" not in parameters, name
            continue
        expected = schema_name(body["content"]["application/json"]["schema"])
        sent = [arg for arg in get_args(hints["body"]) if arg is not type(None)] or [hints["body"]]
        assert sent[0].__name__ == expected, name
