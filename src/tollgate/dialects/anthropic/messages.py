"""The Anthropic Messages dialect (``POST /v1/messages``), both directions: Anthropic SDK clients
of the gateway and the Anthropic upstream API speak it (DESIGN.md §1.1). This module is what
``ChatDialect`` names, assembled from the package's parts: ``request`` parses and renders
requests, ``content`` the content blocks both ways, ``response`` the ``message`` objects,
``stream`` the SSE streams, ``errors`` the error bodies.
Imports only ``canonical``, ``errors`` and ``framing``.
"""

from __future__ import annotations

from tollgate.canonical import ChatRequest
from tollgate.dialects.anthropic.errors import parse_error as parse_error
from tollgate.dialects.anthropic.errors import render_error as render_error
from tollgate.dialects.anthropic.request import NAME
from tollgate.dialects.anthropic.request import parse_request as parse_request
from tollgate.dialects.anthropic.request import render_request as render_request
from tollgate.dialects.anthropic.response import parse_response as parse_response
from tollgate.dialects.anthropic.response import render_response as render_response
from tollgate.dialects.anthropic.stream import AnthropicStreamDecoder, AnthropicStreamEncoder

name = NAME


def stream_encoder(request: ChatRequest) -> AnthropicStreamEncoder:
    return AnthropicStreamEncoder(request.model)


def stream_decoder() -> AnthropicStreamDecoder:
    return AnthropicStreamDecoder()
