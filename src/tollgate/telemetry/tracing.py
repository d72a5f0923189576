"""Optional OpenTelemetry traces: the ``Tracing`` seam the edge and the gateway write spans to.

``NO_TRACING`` (the default) does nothing and allocates nothing: every span is one shared
no-op object. ``OtelTracing`` needs the ``tollgate[otel]`` extra; OpenTelemetry is imported
only when it is built, so a gateway without tracing never loads it. ``build_tracing`` decides
from the config (LiteLLM's ``callbacks: ["otel"]``) or ``TOLLGATE_OTEL=1``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

    from tollgate.config import Config

Attribute = str | int | float | bool
Attributes = Mapping[str, Attribute]
ENV = "TOLLGATE_OTEL"


class SpanHandle(Protocol):
    def set(self, key: str, value: Attribute) -> None: ...

    def end(self) -> None: ...


class Tracing(Protocol):
    enabled: bool

    def span(self, name: str, attributes: Attributes | None = None) -> AbstractContextManager[SpanHandle]:
        """A child of the current span, current inside the block and ended when it exits; an
        exception leaving the block marks the span failed (``error.type``, ``status``)."""
        ...

    def open(self, name: str, attributes: Attributes | None = None) -> SpanHandle:
        """A span started but neither current nor ended: a request that outlives its handler
        (a stream) ends its span when the stream ends."""
        ...

    def current(self, span: SpanHandle) -> AbstractContextManager[SpanHandle]:
        """Make ``span`` current inside the block, without ending it."""
        ...

    def inject(self, headers: dict[str, str]) -> None:
        """Add the W3C ``traceparent`` (and ``tracestate``) of the current span to ``headers``."""
        ...

    def shutdown(self) -> None:
        """Flush and stop exporting (blocking)."""
        ...


class _NoSpan:
    """One object is every no-op span and every no-op context manager."""

    __slots__ = ()

    def set(self, key: str, value: Attribute) -> None:
        pass

    def end(self) -> None:
        pass

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


_NO_SPAN = _NoSpan()


class NoTracing:
    enabled = False

    def span(self, name: str, attributes: Attributes | None = None) -> _NoSpan:
        return _NO_SPAN

    def open(self, name: str, attributes: Attributes | None = None) -> _NoSpan:
        return _NO_SPAN

    def current(self, span: SpanHandle) -> _NoSpan:
        return _NO_SPAN

    def inject(self, headers: dict[str, str]) -> None:
        pass

    def shutdown(self) -> None:
        pass


NO_TRACING: Tracing = NoTracing()


class _OtelSpan:
    __slots__ = ("_ended", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self._ended = False

    def set(self, key: str, value: Attribute) -> None:
        self.span.set_attribute(key, value)

    def end(self) -> None:
        if not self._ended:  # a stream's span may be ended by the stream and by its cleanup
            self._ended = True
            self.span.end()


class OtelTracing:
    """Spans through an OpenTelemetry SDK ``TracerProvider`` (tests pass one with an in-memory
    exporter). The provider is this object's own, never installed as the process-wide one."""

    enabled = True

    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._provider = provider
        self._tracer: Tracer = provider.get_tracer("tollgate")
        self._use_span = trace.use_span
        self._propagator = TraceContextTextMapPropagator()

    @contextmanager
    def span(self, name: str, attributes: Attributes | None = None) -> Iterator[SpanHandle]:
        with self._tracer.start_as_current_span(name, attributes=attributes) as span:
            try:
                yield _OtelSpan(span)
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__name__)
                status = getattr(exc, "status", None)
                if isinstance(status, int):
                    span.set_attribute("status", status)
                raise

    def open(self, name: str, attributes: Attributes | None = None) -> SpanHandle:
        return _OtelSpan(self._tracer.start_span(name, attributes=attributes))

    @contextmanager
    def current(self, span: SpanHandle) -> Iterator[SpanHandle]:
        assert isinstance(span, _OtelSpan)
        with self._use_span(span.span, end_on_exit=False):
            yield span

    def inject(self, headers: dict[str, str]) -> None:
        self._propagator.inject(headers)

    def shutdown(self) -> None:
        self._provider.shutdown()


def wanted(config: Config, env: Mapping[str, str]) -> bool:
    """LiteLLM's switch (``"otel"`` in ``callbacks`` or ``success_callback``) or ``TOLLGATE_OTEL=1``."""
    if env.get(ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    names: list[Any] = []
    for setting in (config.litellm.callbacks, config.litellm.success_callback):
        if isinstance(setting, str):
            names.append(setting)
        elif setting:
            names.extend(setting)
    return any(isinstance(name, str) and name.strip().lower() == "otel" for name in names)


def build_tracing(config: Config, env: Mapping[str, str], warn: Callable[[str], None]) -> Tracing:
    """OTLP/HTTP export (configured by the standard ``OTEL_EXPORTER_OTLP_*`` and
    ``OTEL_SERVICE_NAME`` variables) when wanted and installed; else ``NO_TRACING``."""
    if not wanted(config, env):
        return NO_TRACING
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        warn("OpenTelemetry tracing was requested but is not installed "
             "(pip install 'tollgate[otel]'); tracing is off")
        return NO_TRACING
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or "tollgate"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return OtelTracing(provider)
