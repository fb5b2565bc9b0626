"""OpenTelemetry traces for the API, the Temporal client and the workers (off by default).

With `PAYMENTS_OTEL_ENABLED=true` every process exports spans over OTLP/HTTP to
`PAYMENTS_OTEL_EXPORTER_OTLP_ENDPOINT`: API requests, workflow starts, signals and updates,
and every workflow run and activity on the workers, joined into one trace per payment.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor

from kernel.settings import Settings

_configured: TracerProvider | None = None


def configure_tracing(settings: Settings, service_name: str) -> TracerProvider | None:
    """Install an OTLP-exporting tracer provider for this process if tracing is on."""
    global _configured
    if not settings.tracing.enabled:
        return None
    if _configured is None:
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        exporter = OTLPSpanExporter(endpoint=settings.tracing.exporter_otlp_endpoint)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _configured = provider
    return _configured


def temporal_interceptors(settings: Settings) -> list[Interceptor]:
    """Client interceptors (workers built from the client inherit them)."""
    return [TracingInterceptor()] if settings.tracing.enabled else []
