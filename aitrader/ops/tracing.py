"""Optional OpenTelemetry spans for tick -> features -> predict -> rules -> risk -> order -> journal.

Off by default. :func:`span` is then a shared no-op context manager: no OpenTelemetry
import, no allocation beyond the call. :func:`configure` with ``console`` or ``otlp``
(endpoint from ``OTEL_EXPORTER_OTLP_ENDPOINT``) or an exporter object (tests use the SDK's
in-memory exporter) turns it on for the process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

_tracer: Any = None
_NULL = contextlib.nullcontext()


def configure(exporter: str | Any | None) -> bool:
    """Install a tracer provider with ``exporter``; ``None``/``"none"`` turns tracing off.

    Returns False (tracing stays off) when the OpenTelemetry packages are missing.
    """
    global _tracer
    if exporter in (None, "none"):
        _tracer = None
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": "aitrader"}))
    if exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            return False
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif isinstance(exporter, str):
        raise ValueError(f"tracing exporter {exporter!r}: use none, console or otlp")
    else:  # an SDK SpanExporter object (tests pass the in-memory one)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    _tracer = provider.get_tracer("aitrader")
    return True


def enabled() -> bool:
    return _tracer is not None


def span(name: str, **attributes: Any) -> contextlib.AbstractContextManager[Any]:
    """A span named ``name`` (nested under the current one) or a no-op when tracing is off."""
    if _tracer is None:
        return _NULL
    return _span(name, attributes)


@contextlib.contextmanager
def _span(name: str, attributes: dict[str, Any]) -> Iterator[Any]:
    with _tracer.start_as_current_span(name) as s:
        for key, value in attributes.items():
            if value is not None:
                s.set_attribute(f"aitrader.{key}", str(value) if not isinstance(value, int | float | bool) else value)
        yield s
