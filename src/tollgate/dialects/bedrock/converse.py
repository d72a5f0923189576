"""The Bedrock Converse / ConverseStream dialect, both ways: boto3 clients call the gateway with it
(``POST /model/{modelId}/converse`` and ``/converse-stream``; the model id comes from the path)
and the Bedrock upstream speaks it. This module is what ``ChatDialect`` names, assembled from the
package's parts: ``request`` parses and renders requests, ``content`` the content blocks both
ways, ``response`` whole answers, ``stream`` the event streams, ``errors`` the error answers.

The path decides streaming: ``parse_request`` cannot see it, so the edge sets ``stream=True`` on the
parsed request for ``/converse-stream``.
"""

from __future__ import annotations

from tollgate.canonical import ChatRequest
from tollgate.dialects.bedrock.errors import parse_error as parse_error
from tollgate.dialects.bedrock.errors import render_error as render_error
from tollgate.dialects.bedrock.request import NAME
from tollgate.dialects.bedrock.request import parse_request as parse_request
from tollgate.dialects.bedrock.request import render_request as render_request
from tollgate.dialects.bedrock.response import parse_response as parse_response
from tollgate.dialects.bedrock.response import render_response as render_response
from tollgate.dialects.bedrock.stream import BedrockStreamDecoder, BedrockStreamEncoder

name = NAME


def stream_encoder(request: ChatRequest) -> BedrockStreamEncoder:
    return BedrockStreamEncoder()


def stream_decoder() -> BedrockStreamDecoder:
    return BedrockStreamDecoder()
