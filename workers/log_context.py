"""Bind tenant, payment, workflow and activity ids to every log line an activity writes.

The workflow side stamps each activity it schedules with the tenant (from its `TenantId`
search attribute) in a header; the activity side binds that and the activity's own
identifiers into structlog's context for the duration of the activity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.converter import default as default_converter
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    StartActivityInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from workflows.search_attributes import TENANT_ID

TENANT_HEADER = "payments-tenant-id"


class LogContextInterceptor(Interceptor):
    """Install on workers: carries the tenant to activities and binds log context."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        """Bind ids around each activity."""
        return _BindActivityContext(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        """Stamp scheduled activities with the tenant."""
        return _StampTenantInbound


class _StampTenantInbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_StampTenantOutbound(outbound))


def _with_tenant(headers: Mapping[str, Payload]) -> Mapping[str, Payload]:
    tenant = workflow.info().typed_search_attributes.get(TENANT_ID)
    if not tenant:
        return headers
    return {**headers, TENANT_HEADER: workflow.payload_converter().to_payload(tenant)}


class _StampTenantOutbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> Any:
        input.headers = _with_tenant(input.headers)
        return super().start_activity(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> Any:
        input.headers = _with_tenant(input.headers)
        return super().start_local_activity(input)


class _BindActivityContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        ids: dict[str, Any] = {
            "workflow_id": info.workflow_id,
            "activity_id": info.activity_id,
            "activity_type": info.activity_type,
            "attempt": info.attempt,
        }
        if info.workflow_id and info.workflow_id.startswith("pay_"):
            ids["payment_id"] = info.workflow_id
        header: Payload | None = input.headers.get(TENANT_HEADER)
        if header is not None:
            ids["tenant_id"] = default_converter().payload_converter.from_payload(header, str)
        with structlog.contextvars.bound_contextvars(**ids):
            return await self.next.execute_activity(input)
