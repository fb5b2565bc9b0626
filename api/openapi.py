"""The OpenAPI document: FastAPI's, completed into the exact contract (DESIGN §7).

FastAPI derives paths, parameters and bodies from the code. This adds what it cannot know:
the problem-document schema every declared error refers to, an example request and answer
on every operation (from the models' own examples, see api.examples), and the links from
what an operation creates to the operations that use it (clients and the fuzzer's stateful
phase follow them: customer -> account -> deposit -> review, and payment -> review, cancel, retry).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.examples import response_example
from api.schemas import PaymentBatchCreate, Problem

JSON = "application/json"
REF_PREFIX = "#/components/schemas/"
ID = "$response.body#/id"

# (method, path, status) of a creation -> link name -> (target method, target path, the
# target's parameters, the target's body: values or runtime expressions merged into it)
Target = tuple[str, str, dict[str, str], dict[str, Any] | None]
LINKS: dict[tuple[str, str, str], dict[str, Target]] = {
    ("post", "/v1/customers", "201"): {
        "GetCustomer": ("get", "/v1/customers/{customer_id}", {"customer_id": ID}, None),
        "ReviewCustomer": ("post", "/v1/customers/{customer_id}/review", {"customer_id": ID}, None),
        "OpenAccount": ("post", "/v1/accounts", {}, {"customer_id": ID}),
    },
    ("post", "/v1/accounts", "201"): {
        "GetAccount": ("get", "/v1/accounts/{account_id}", {"account_id": ID}, None),
        "ListEntries": ("get", "/v1/accounts/{account_id}/entries", {"account_id": ID}, None),
        "Deposit": (
            "post",
            "/v1/deposits",
            {},
            {"account_id": ID, "currency": "$response.body#/currency"},
        ),
        "Pay": ("post", "/v1/payments", {}, {"account_id": ID}),
        "ListPayments": ("get", "/v1/payments", {"query.account_id": ID}, None),
    },
    ("post", "/v1/payments", "202"): {
        "GetPayment": ("get", "/v1/payments/{payment_id}", {"payment_id": ID}, None),
        "CancelPayment": ("post", "/v1/payments/{payment_id}/cancel", {"payment_id": ID}, None),
        "ReviewPayment": ("post", "/v1/payments/{payment_id}/review", {"payment_id": ID}, None),
        "RetryPayment": ("post", "/v1/payments/{payment_id}/retry", {"payment_id": ID}, None),
        "PaymentEvents": ("get", "/v1/events", {"query.payment_id": ID}, None),
    },
    ("post", "/v1/payment-batches", "202"): {
        "GetBatch": ("get", "/v1/payment-batches/{batch_id}", {"batch_id": ID}, None),
        "ListBatchItems": ("get", "/v1/payment-batches/{batch_id}/items", {"batch_id": ID}, None),
        "ReviewBatch": ("post", "/v1/payment-batches/{batch_id}/review", {"batch_id": ID}, None),
        "CancelBatch": ("post", "/v1/payment-batches/{batch_id}/cancel", {"batch_id": ID}, None),
        "ListBatchPayments": ("get", "/v1/payments", {"query.batch_id": ID}, None),
    },
    ("post", "/v1/deposits", "201"): {
        "GetDeposit": ("get", "/v1/deposits/{deposit_id}", {"deposit_id": ID}, None),
        "ReviewDeposit": ("post", "/v1/deposits/{deposit_id}/review", {"deposit_id": ID}, None),
    },
    ("post", "/v1/webhook-endpoints", "201"): {
        "DisableEndpoint": (
            "delete",
            "/v1/webhook-endpoints/{endpoint_id}",
            {"endpoint_id": ID},
            None,
        ),
    },
    ("post", "/v1/reconciliations", "200"): {
        "GetReconciliation": (
            "get",
            "/v1/reconciliations/{run_id}",
            {"run_id": "$response.body#/data/0/id"},
            None,
        ),
    },
}


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


def _add_links(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for (method, path, status), links in LINKS.items():
        response = paths[path][method]["responses"][status]
        response["links"] = {}
        for name, (target_method, target_path, parameters, body) in links.items():
            link: dict[str, Any] = {"operationId": paths[target_path][target_method]["operationId"]}
            if parameters:
                link["parameters"] = parameters
            if body is not None:
                link["requestBody"] = body
            response["links"][name] = link


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
    # models a body names by reference only (`POST /v1/payment-batches` reads its body by
    # hand: JSON, CSV or XML), with the models they use
    for model in (Problem, PaymentBatchCreate):
        schema = model.model_json_schema(ref_template=REF_PREFIX + "{model}")
        for name, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas[model.__name__] = schema
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            _add_request_example(operation, schemas)
            _add_response_examples(operation, schemas)
    _add_links(document)
    app.openapi_schema = document
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve the completed document at /openapi.json."""

    def openapi() -> dict[str, Any]:
        return build_openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]
