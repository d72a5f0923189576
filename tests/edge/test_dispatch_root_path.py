"""``route_path`` and ``SERVER_ROOT_PATH`` parsing: which requests are under the prefix."""

from __future__ import annotations

import pytest

from tollgate.config.environment import server_root_path
from tollgate.edge.dispatch import route_path
from tollgate.edge.limits import renderer_for_path
from tollgate.errors import ConfigError


@pytest.mark.parametrize(("path", "root", "expected"), [
    ("/llm-gateway/v1/chat/completions", "/llm-gateway", "/v1/chat/completions"),
    ("/v1/chat/completions", "/llm-gateway", "/v1/chat/completions"),  # a proxy stripped it
    ("/llm-gateway/", "/llm-gateway", "/"),
    ("/llm-gatewayx/key/list", "/llm-gateway", "/llm-gatewayx/key/list"),  # not the prefix
    ("/v1/v1/models", "/v1", "/v1/models"),
    ("/key/list", "", "/key/list"),
])
def test_route_path(path: str, root: str, expected: str) -> None:
    assert route_path({"type": "http", "path": path, "root_path": root}) == expected


def test_errors_keep_their_format_under_the_prefix() -> None:
    from tollgate.dialects.anthropic import messages
    from tollgate.dialects.bedrock import converse

    scope = {"type": "http", "path": "/llm-gateway/anthropic/v1/messages", "root_path": "/llm-gateway"}
    assert renderer_for_path(route_path(scope)) is messages.render_error
    scope = {"type": "http", "path": "/llm-gateway/model/x/converse", "root_path": "/llm-gateway"}
    assert renderer_for_path(route_path(scope)) is converse.render_error


@pytest.mark.parametrize(("raw", "expected"), [
    ("", ""), ("/", ""), ("llm-gateway", "/llm-gateway"), ("/llm-gateway/", "/llm-gateway"),
    ("/platform/llm-gateway", "/platform/llm-gateway"),
])
def test_server_root_path(raw: str, expected: str) -> None:
    assert server_root_path({"SERVER_ROOT_PATH": raw}) == expected


@pytest.mark.parametrize("raw", ["/a b", "/a/../b", "/a?x=1", "/a//b", "/a%2Fb"])
def test_a_root_path_that_is_not_a_plain_path_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="SERVER_ROOT_PATH"):
        server_root_path({"SERVER_ROOT_PATH": raw})
