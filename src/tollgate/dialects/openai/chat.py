"""The OpenAI chat completions dialect (``/chat/completions``), both directions: this module is what
``ChatDialect`` names, assembled from the package's parts.

Client side: OpenAI (and LiteLLM-extended) request bodies → ``ChatRequest``; canonical answers →
``chat.completion`` bodies, chunk streams and error bodies. Upstream side: ``ChatRequest`` →
OpenAI-compatible request bodies; their answers, streams and errors → canonical.
``request`` parses and renders requests, ``content`` the message parts both ways, ``response``
the whole answers, ``stream`` the chunk streams, ``errors`` the error bodies.
Imports ``canonical``, ``errors`` and ``framing`` only.
"""

from __future__ import annotations

from tollgate.canonical import ChatRequest
from tollgate.dialects.openai.errors import parse_error as parse_error
from tollgate.dialects.openai.errors import render_error as render_error
from tollgate.dialects.openai.request import NAME
from tollgate.dialects.openai.request import parse_request as parse_request
from tollgate.dialects.openai.request import render_request as render_request
from tollgate.dialects.openai.response import parse_response as parse_response
from tollgate.dialects.openai.response import render_response as render_response
from tollgate.dialects.openai.stream import ChunkDecoder, ChunkEncoder

name = NAME


def stream_encoder(request: ChatRequest) -> ChunkEncoder:
    return ChunkEncoder(request)


def stream_decoder() -> ChunkDecoder:
    return ChunkDecoder()
