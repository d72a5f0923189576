"""Bedrock Prompt Management's ``GetPrompt``, read with botocore's ``bedrock-agent`` client.

botocore, not tollgate's own HTTP client: it knows the service's endpoints per region and
partition, serialises and signs the call, parses AWS errors, retries throttling, and honours
the standard endpoint override ``AWS_ENDPOINT_URL_BEDROCK_AGENT`` (and ``AWS_ENDPOINT_URL``)
itself. Its calls block, so they run in a worker thread; prompts are cached by the caller, so
the thread hop is paid once per prompt and TTL, never per request. Credentials are the
deployment's own (its ``AwsSigner``, already resolved and refreshed for Bedrock runtime calls),
the region is the prompt ARN's. botocore is imported on the first call only.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tollgate.config import Deployment
from tollgate.errors import GatewayError, NotFound, UpstreamConnectionError, upstream_error_for_status

if TYPE_CHECKING:
    from botocore.credentials import ReadOnlyCredentials

    from tollgate.providers.aws import AwsSigner

_PROVIDER = "bedrock"
_MAX_CLIENTS = 32  # one per region and credential set; refreshed credentials make a new one


class BedrockPromptSource:
    def __init__(self, signer_for: Callable[[Deployment], AwsSigner]) -> None:
        self._signer_for = signer_for
        self._clients: dict[tuple[str, str, str, str | None], Any] = {}
        self._lock = threading.Lock()  # botocore sessions may not create clients concurrently
        self._session: Any = None

    async def get_prompt(
        self, deployment: Deployment, prompt_id: str, version: str | None, region: str
    ) -> Mapping[str, Any]:
        credentials = await self._signer_for(deployment).credentials()
        return await asyncio.to_thread(self._get, region, credentials, prompt_id, version)

    def _client(self, region: str, credentials: ReadOnlyCredentials) -> Any:
        key = (region, credentials.access_key, credentials.secret_key, credentials.token)
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                return client
            import botocore.session
            from botocore.config import Config

            if self._session is None:
                self._session = botocore.session.get_session()
            if len(self._clients) >= _MAX_CLIENTS:
                self._clients.clear()
            client = self._clients[key] = self._session.create_client(
                "bedrock-agent",
                region_name=region,
                aws_access_key_id=credentials.access_key,
                aws_secret_access_key=credentials.secret_key,
                aws_session_token=credentials.token,
                config=Config(
                    retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=15
                ),
            )
            return client

    def _get(
        self, region: str, credentials: ReadOnlyCredentials, prompt_id: str, version: str | None
    ) -> Mapping[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        arguments = {"promptIdentifier": prompt_id}
        if version is not None:
            arguments["promptVersion"] = version
        try:
            answer: dict[str, Any] = self._client(region, credentials).get_prompt(**arguments)
        except ClientError as exc:
            raise _prompt_error(exc.response, prompt_id, version) from exc
        except EndpointConnectionError as exc:
            message = f"cannot reach Bedrock Prompt Management: {exc}"
            raise UpstreamConnectionError(message, provider=_PROVIDER) from exc
        except BotoCoreError as exc:
            raise GatewayError(f"GetPrompt failed: {exc}") from exc
        answer.pop("ResponseMetadata", None)
        return answer


def _prompt_error(response: Mapping[str, Any], prompt_id: str, version: str | None) -> GatewayError:
    error = response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")) or code
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500)
    if code == "ResourceNotFoundException" or status == 404:
        shown = f"{prompt_id}:{version}" if version else prompt_id
        return NotFound(f"managed prompt {shown} not found: {message}")
    return upstream_error_for_status(status, f"GetPrompt {prompt_id}: {code}: {message}", provider=_PROVIDER)
