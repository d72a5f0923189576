"""OpenTelemetry traces: the span tree of one request, per-attempt spans, traceparent upstream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.testclient import TestClient

from tests.fakes.server import run_app_in_thread
from tollgate.bootstrap import build
from tollgate.config import Config, parse_config
from tollgate.fakes.script import Script
from tollgate.fakes.server import create_fake_app
from tollgate.telemetry.tracing import NO_TRACING, OtelTracing, build_tracing, wanted

MASTER_KEY = "sk-tracing-master"
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, Script]]:
    """The fake upstream, recording each request (the traceparent it was sent)."""
    script = Script(record=True)
    with run_app_in_thread(create_fake_app(script=script)) as url:
        yield url, script


def _config(upstream_url: str, **litellm: Any) -> dict[str, Any]:
    return {
        "model_list": [
            {"model_name": "traced", "litellm_params": {
                "model": "openai/up", "api_base": f"{upstream_url}/v1", "api_key": "sk-up"}},
            {"model_name": "local", "litellm_params": {"model": "fake/local"}},
        ],
        "router_settings": {"num_retries": 1, "retry_after": 0},
        "litellm_settings": litellm,
        "general_settings": {
            "master_key": MASTER_KEY, "database_url": "memory", "disable_spend_logs": True},
    }


def _parse(raw: dict[str, Any]) -> Config:
    return parse_config(raw, env={})


def _tracing() -> tuple[OtelTracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OtelTracing(provider), exporter


def _post(upstream_url: str, tracing: OtelTracing, body: dict[str, Any]) -> httpx.Response:
    """One request through the whole app, with its lifespan (so its HTTP client is closed)."""
    app = build(_parse(_config(upstream_url)), tracing=tracing)
    with TestClient(app) as client:
        return client.post("/v1/chat/completions", json=body, headers=AUTH)


def _by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        out.setdefault(span.name, []).append(span)
    return out


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def _span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def test_success_span_tree_and_traceparent(upstream: tuple[str, Script]) -> None:
    url, fake = upstream
    fake.reset()
    tracing, exporter = _tracing()
    response = _post(url, tracing, {"model": "traced", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 200

    spans = _by_name(exporter.get_finished_spans())
    assert sorted(spans) == ["accounting", "admission", "auth", "tollgate.request", "upstream.attempt"]
    (root,) = spans["tollgate.request"]
    assert root.parent is None
    attrs = dict(root.attributes or {})
    assert attrs["model"] == "traced"
    assert attrs["client_format"] == "openai"
    assert attrs["request_id"] == response.headers["x-request-id"]
    assert attrs["status"] == 200
    for name in ("auth", "admission", "upstream.attempt", "accounting"):
        (child,) = spans[name]
        assert _parent_id(child) == _span_id(root), name
    (attempt,) = spans["upstream.attempt"]
    attempt_attrs = dict(attempt.attributes or {})
    assert attempt_attrs["deployment"] == response.headers["x-tollgate-deployment"]
    assert attempt_attrs["provider"] == "openai"
    assert attempt_attrs["attempt"] == 1

    # The upstream continues the attempt's trace: W3C traceparent 00-<trace>-<span>-01.
    (headers,) = [r.headers for r in fake.requests]
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert version == "00"
    assert int(flags, 16) & 1  # sampled
    assert root.context is not None
    assert int(trace_id, 16) == root.context.trace_id
    assert int(span_id, 16) == _span_id(attempt)


def test_retry_gives_one_span_per_attempt(upstream: tuple[str, Script]) -> None:
    url, fake = upstream
    fake.reset()
    fake.fail_next(500, "server_error", "boom")
    tracing, exporter = _tracing()
    response = _post(url, tracing, {"model": "traced", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 200
    assert response.headers["x-tollgate-attempts"] == "2"

    spans = _by_name(exporter.get_finished_spans())
    (root,) = spans["tollgate.request"]
    attempts = sorted(spans["upstream.attempt"], key=lambda s: s.start_time or 0)
    assert [dict(s.attributes or {})["attempt"] for s in attempts] == [1, 2]
    assert all(_parent_id(s) == _span_id(root) for s in attempts)
    failed = dict(attempts[0].attributes or {})
    assert failed["status"] == 500
    assert failed["error.type"] == "UpstreamError"
    assert not attempts[0].status.is_ok
    assert "error.type" not in dict(attempts[1].attributes or {})
    # Each attempt carries its own span id upstream.
    sent = [h["traceparent"].split("-")[2] for h in [r.headers for r in fake.requests]]
    assert [int(s, 16) for s in sent] == [_span_id(s) for s in attempts]


def test_failed_request_marks_the_root_span(upstream: tuple[str, Script]) -> None:
    url, _ = upstream
    tracing, exporter = _tracing()
    response = _post(url, tracing, {"model": "nope", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 400
    spans = _by_name(exporter.get_finished_spans())
    assert dict(spans["tollgate.request"][0].attributes or {})["status"] == 400
    assert "upstream.attempt" not in spans
    assert "error.type" in dict(spans["admission"][0].attributes or {})


def test_stream_span_ends_with_the_stream(upstream: tuple[str, Script]) -> None:
    url, _ = upstream
    tracing, exporter = _tracing()
    body = {"model": "local", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    response = _post(url, tracing, body)
    assert response.status_code == 200
    assert b"[DONE]" in response.content
    spans = _by_name(exporter.get_finished_spans())
    (root,) = spans["tollgate.request"]
    assert dict(root.attributes or {})["status"] == 200
    (accounting,) = spans["accounting"]
    assert _parent_id(accounting) == _span_id(root)
    assert dict(spans["upstream.attempt"][0].attributes or {})["provider"] == "fake"


def test_no_op_unless_enabled(upstream: tuple[str, Script]) -> None:
    url, _ = upstream
    plain = _parse(_config(url))
    assert build_tracing(plain, {}, pytest.fail) is NO_TRACING
    assert not NO_TRACING.enabled
    assert wanted(plain, {"TOLLGATE_OTEL": "1"})
    assert wanted(_parse(_config(url, callbacks=["otel"])), {})
    assert wanted(_parse(_config(url, success_callback=["langfuse", "otel"])), {})
    assert not wanted(_parse(_config(url, callbacks=["prometheus"])), {"TOLLGATE_OTEL": "0"})
    enabled = build_tracing(_parse(_config(url, callbacks=["otel"])), {}, pytest.fail)
    assert isinstance(enabled, OtelTracing)
    enabled.shutdown()


def test_no_op_spans_are_one_shared_object() -> None:
    first = NO_TRACING.span("a", {"k": 1})
    assert first is NO_TRACING.span("b") is NO_TRACING.open("c") is NO_TRACING.current(first)
    headers: dict[str, str] = {}
    NO_TRACING.inject(headers)
    assert headers == {}


def test_missing_otel_warns_once_and_stays_off(
    upstream: tuple[str, Script], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    warnings: list[str] = []
    tracing = build_tracing(_parse(_config(upstream[0])), {"TOLLGATE_OTEL": "1"}, warnings.append)
    assert tracing is NO_TRACING
    assert len(warnings) == 1 and "tollgate[otel]" in warnings[0]
