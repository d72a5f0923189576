"""The fake Bedrock's Prompt Management: ``GET /prompts/{promptIdentifier}/`` (``GetPrompt``,
optional ``?promptVersion=``) answering from ``providers/fake_prompts.py``'s catalog, as
botocore's ``bedrock-agent`` client expects it (point it here with
``AWS_ENDPOINT_URL_BEDROCK_AGENT``). Signed requests are verified like the other Bedrock routes;
an unknown prompt is 404 ``ResourceNotFoundException``. Each call is counted as
``GetPrompt:<id>`` in ``/_fake/calls``, so tests can see the gateway's cache at work.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollgate.errors import NotFound
from tollgate.providers import fake_prompts

SignatureCheck = Callable[[Request, bytes], Response | None]
_SCOPE_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


def get_prompt_route(
    signature_problem: SignatureCheck, count: Callable[[str], int]
) -> Callable[[Request], Awaitable[Response]]:
    async def get_prompt(request: Request) -> Response:
        rejected = signature_problem(request, b"")
        if rejected is not None:
            return rejected
        prompt_id: str = request.path_params["prompt_id"]
        count(f"GetPrompt:{prompt_id}")
        scope = _SCOPE_REGION.search(request.headers.get("authorization", ""))
        try:
            answer = fake_prompts.get_prompt(
                prompt_id.rsplit("/", 1)[-1],
                request.query_params.get("promptVersion"),
                scope.group(1) if scope else "us-east-1",
            )
        except NotFound as exc:
            body = orjson.dumps({"message": exc.message})
            headers = {"x-amzn-ErrorType": "ResourceNotFoundException"}
            return Response(body, 404, headers=headers, media_type="application/json")
        return Response(orjson.dumps(answer), media_type="application/json")

    return get_prompt
