"""The OpenAPI document is an exact contract (DESIGN §7, issue #22): valid OpenAPI, required
headers required, every error declared with its codes, an example on every operation, 405
answers listing the allowed methods. The live API is fuzzed against it in
tests/integration/test_openapi_fuzz.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from pydantic import ValidationError

from api.app import create_app
from api.fields import WEBHOOK_URL
from api.problems import PROBLEM_SCHEMA_REF, catalogue
from api.schemas import WebhookEndpointCreate
from kernel.settings import PROJECT_ROOT

METHODS = ("get", "post", "put", "patch", "delete")
# the modules whose refusals reach operations of the document (the codec server and the
# bank's callbacks are not in it: include_in_schema=False)
DOCUMENTED_SOURCES = [
    *sorted((PROJECT_ROOT / "api").glob("*.py")),
    *(
        path
        for path in sorted((PROJECT_ROOT / "api" / "routers").glob("*.py"))
        if path.stem not in ("codec", "rails")
    ),
    *sorted((PROJECT_ROOT / "services").glob("*.py")),
]
SERVICE_ERRORS = {"ServiceError", "NotFoundError", "ConflictError", "ForbiddenError"}
SERVICE_ERRORS |= {"InvalidRequestError"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app().openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)  # raises on the first violation
    assert document["openapi"].startswith("3.1")


def test_idempotency_key_is_required_where_design_says(document: dict[str, Any]) -> None:
    for path in ("/v1/payments", "/v1/deposits", "/v1/payment-batches"):
        headers = {
            p["name"]: p
            for p in document["paths"][path]["post"]["parameters"]
            if p["in"] == "header"
        }
        assert headers["Idempotency-Key"]["required"] is True, path
        assert headers["Idempotency-Key"]["schema"]["maxLength"] == 255


def test_every_error_is_a_problem_document_with_its_codes(document: dict[str, Any]) -> None:
    known = {problem.code for problem in catalogue()}
    for label, operation in operations(document):
        errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
        assert "500" in errors, label
        for status, response in errors.items():
            if label == "GET /readyz" and status == "503":
                continue  # readiness answers its own document
            media = response["content"]["application/problem+json"]
            base, narrowed = media["schema"]["allOf"]
            assert base == {"$ref": PROBLEM_SCHEMA_REF}, (label, status)
            codes = narrowed["properties"]["code"]["enum"]
            assert codes and set(codes) <= known, (label, status, codes)
            assert media["example"]["status"] == int(status), (label, status)
            assert media["example"]["code"] in codes, (label, status)
        if operation.get("security"):
            assert {"401", "403", "429"} <= errors.keys(), label
            assert "Retry-After" in errors["429"]["headers"], label


def test_every_operation_has_an_example_request_and_answer(document: dict[str, Any]) -> None:
    for label, operation in operations(document):
        if "requestBody" in operation:
            assert "example" in operation["requestBody"]["content"]["application/json"], label
        success = [r for s, r in operation["responses"].items() if s.startswith("2")]
        assert success, label
        for response in success:
            assert "example" in response["content"]["application/json"], label


def _raised_codes(path: Path) -> set[str]:
    """The literal codes `path` raises: ProblemError(status, code, …), a service error
    (code, …), or a problem answered by the request limits middleware."""
    codes: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        position = {"ProblemError": 1, "problem_response": 1, "_send_problem": 2}.get(name)
        if name in SERVICE_ERRORS:
            position = 0
        if position is None or len(node.args) <= position:
            continue
        argument = node.args[position]
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            codes.add(argument.value)
    return codes


def test_every_code_the_api_raises_is_in_the_catalogue() -> None:
    raised = {code: path.name for path in DOCUMENTED_SOURCES for code in _raised_codes(path)}
    assert len(raised) > 20  # the scan finds the refusals (it would pass vacuously otherwise)
    known = {problem.code for problem in catalogue()}
    assert set(raised) - known == set(), {c: raised[c] for c in set(raised) - known}


def test_the_catalogue_scan_sees_an_undeclared_code(tmp_path: Path) -> None:
    module = tmp_path / "refusal.py"
    module.write_text('raise ProblemError(409, "made_up_code", "x")\n')
    assert _raised_codes(module) == {"made_up_code"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("TRACE", "/v1/payments/pay_01jdz3m9x1y3z5a7b9c1d3e5f7", "GET"),
        ("DELETE", "/v1/payments", "GET, POST"),
        ("PUT", "/v1/webhook-endpoints/we_01jdz3n2p4q6r8s0t2v4w6x8y0", "DELETE"),
        ("OPTIONS", "/v1/webhook-endpoints", "GET, POST"),
        ("HEAD", "/v1/payments", "GET, POST"),  # FastAPI serves no implicit HEAD
    ],
)
async def test_405_lists_every_method_of_the_path(method: str, path: str, allowed: str) -> None:
    # no lifespan: routing answers before anything reaches the database
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    if method != "HEAD":  # a HEAD answer has no body
        assert response.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        ("https://partner.example/hooks?a=1", True),
        ("https://exämple.de/hooks", True),
        ("https://partner.example/\x1chooks", False),  # white space to Python's \\s only
        ("https://partner.example/\x01", False),
        ("https://partner.example/\ufeff", False),  # white space to ECMA's \\s only
        ("ftp://partner.example/", False),
    ],
)
def test_webhook_url_pattern_reads_the_same_to_generators_and_the_server(
    url: str, valid: bool
) -> None:
    # generators (schemathesis, hypothesis) read patterns with Python's `re`; the server
    # validates with pydantic-core's Rust `regex`
    assert bool(re.search(WEBHOOK_URL, url)) is valid
    try:
        WebhookEndpointCreate(url=url)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted is valid
