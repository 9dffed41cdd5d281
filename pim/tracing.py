"""OpenTelemetry traces, on when OTEL_EXPORTER_OTLP_ENDPOINT is set (the standard variable,
read by the OTLP exporter with its siblings OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_HEADERS…).

Off, nothing of OpenTelemetry is imported and every function here returns at once.
On: FastAPI, SQLAlchemy, asyncpg, httpx and Redis make spans, and a job's spans continue
the trace of the request that enqueued it (its context travels with the job).
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:  # the `pim` command uses this module without loading FastAPI
    from fastapi import FastAPI

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"

_tracer: Any = None  # an opentelemetry Tracer once set up


def enabled() -> bool:
    return _tracer is not None


def setup(service_name: str, exporter: Any = None) -> None:
    """Start tracing for this process: to the OTLP endpoint, or to `exporter` (tests).

    Once per process (OpenTelemetry's provider is global); later calls change nothing.
    """
    global _tracer
    if _tracer is not None or (exporter is None and not os.environ.get(ENDPOINT_ENV)):
        return
    from opentelemetry import trace
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processor: Any = BatchSpanProcessor(OTLPSpanExporter())
    else:
        processor = SimpleSpanProcessor(exporter)
    service = os.environ.get("OTEL_SERVICE_NAME", service_name)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument()
    RedisInstrumentor().instrument()
    AsyncPGInstrumentor().instrument()
    _tracer = trace.get_tracer("pim")


def instrument_app(app: "FastAPI") -> None:
    if enabled():
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app)


def instrument_engine(engine: AsyncEngine) -> None:
    """Spans for every statement of this engine (SQLite's too).

    The engine's tracer itself, not SQLAlchemyInstrumentor: the instrumentor refuses
    SQLAlchemy 2.1 (its declared range ends at 2.0) and instruments one engine per
    process, where a process here may make several (migrations, then the runtime).
    """
    if enabled():
        from opentelemetry import metrics
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

        usage = metrics.get_meter("pim").create_up_down_counter("db.client.connections.usage")
        EngineTracer(_tracer, engine.sync_engine, usage)


def inject(carrier: dict[str, str]) -> None:
    """Put the current trace context (traceparent) into `carrier`."""
    if enabled():
        from opentelemetry import propagate

        propagate.inject(carrier)


@contextmanager
def job_span(function: str, carrier: dict[str, str] | None, **attributes: str) -> Iterator[None]:
    """A span around one job run, child of the context in `carrier` when there is one (a job
    run by arq), else of the current one (a job run in process)."""
    if not enabled():
        yield
        return
    from opentelemetry import propagate, trace

    parent = propagate.extract(carrier) if carrier else None
    with _tracer.start_as_current_span(
        f"job {function}", context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
    ):
        yield
