"""Traces: one trace per payment across client, workflow and activities; OTLP when enabled."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import uvicorn
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kernel.settings import Settings
from kernel.tracing import configure_tracing, temporal_interceptors
from ops.devstack import binary, free_port
from tests.workflows.test_payment_workflow import QUEUE, FakeBank, payment_input
from workflows.models import RailEvent
from workflows.payment import PaymentWorkflow
from workflows.queues import ROLES, queue_for
from workflows.search_attributes import register_search_attributes


async def test_a_payment_is_one_trace_from_start_to_every_activity() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    try:
        await register_search_attributes(env.client)
        config = env.client.config()
        config["interceptors"] = [TracingInterceptor(provider.get_tracer("test"))]
        client = Client(**config)
        bank = FakeBank()
        async with contextlib.AsyncExitStack() as workers:
            for role in ROLES:
                await workers.enter_async_context(
                    Worker(
                        client,
                        task_queue=queue_for(QUEUE, role),
                        workflows=[PaymentWorkflow] if role == "payments" else [],
                        activities=bank.activities(),
                    )
                )
            payment_id = f"pay_{uuid.uuid4().hex[:20]}"
            handle = await client.start_workflow(
                PaymentWorkflow.run, payment_input(payment_id), id=payment_id, task_queue=QUEUE
            )
            while (await handle.query(PaymentWorkflow.status)).status != "submitted":
                await asyncio.sleep(0.05)
            await handle.signal(PaymentWorkflow.rail_event, RailEvent(payment_id, "ACSC"))
            assert (await handle.result()).status == "settled"
    finally:
        await env.shutdown()
    spans = exporter.get_finished_spans()
    names = {span.name for span in spans}
    for expected in (
        "StartWorkflow:Payment",
        "RunWorkflow:Payment",
        "RunActivity:check_debtor_kyc",
        "RunActivity:hold_funds",
        "RunActivity:submit_to_rail",
        "RunActivity:post_hold",
        "SignalWorkflow:rail_event",
    ):
        assert expected in names, (expected, sorted(names))
    start = next(s for s in spans if s.name == "StartWorkflow:Payment")
    activities = [s for s in spans if s.name.startswith("RunActivity:")]
    assert {s.context.trace_id for s in activities} == {start.context.trace_id}


async def test_otlp_export_is_switched_on_by_settings() -> None:
    received: list[tuple[str, str]] = []

    async def collector(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        headers = dict((k.decode(), v.decode()) for k, v in scope["headers"])
        received.append((scope["path"], headers.get("content-type", "")))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(collector, port=port, log_level="error"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        assert configure_tracing(Settings().updated({"tracing.enabled": False}), "off") is None
        assert temporal_interceptors(Settings().updated({"tracing.enabled": False})) == []
        settings = Settings().updated(
            {
                "tracing.enabled": True,
                "tracing.exporter_otlp_endpoint": f"http://127.0.0.1:{port}/v1/traces",
            }
        )
        provider = configure_tracing(settings, "payments-test")
        assert provider is not None
        assert isinstance(temporal_interceptors(settings)[0], TracingInterceptor)
        with trace.get_tracer("test").start_as_current_span("payment.created"):
            pass
        await asyncio.to_thread(provider.force_flush)
    finally:
        server.should_exit = True
        await task
    assert ("/v1/traces", "application/x-protobuf") in received
