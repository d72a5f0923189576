"""Amazon Bedrock's ApplyGuardrail, called the way boto3 calls it, without a blocking client.

botocore does the AWS parts: its ``bedrock-runtime`` service model and rest-json serializer build
the request (path quoting, validation), ``providers.aws.AwsSigner`` signs it (SigV4, credentials
resolved off the event loop and cached) and botocore's parser reads the answer and AWS error
types. The bytes travel on the gateway's pooled aiohttp client (``providers.http``): a boto3
client is synchronous, so using one would mean a worker thread per check on the hot path.

The endpoint is the guardrail's ``api_base``, else ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` (then
``AWS_ENDPOINT_URL``) as the SDKs read it, else ``aws_bedrock_runtime_endpoint``, else
``https://bedrock-runtime.{region}.amazonaws.com``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from botocore.awsrequest import HeadersDict, prepare_request_dict
from botocore.exceptions import BotoCoreError
from botocore.model import ServiceModel
from botocore.parsers import ResponseParserError, create_parser
from botocore.serialize import create_serializer
from yarl import URL

from tollgate.config import GuardrailConfig
from tollgate.config.environment import BEDROCK_RUNTIME_ENDPOINTS
from tollgate.errors import UpstreamError, upstream_error_for_status
from tollgate.providers.aws import AwsSigner
from tollgate.providers.http import HttpClient

PROVIDER = "bedrock-guardrails"
Source = Literal["INPUT", "OUTPUT"]


def bedrock_runtime_model() -> ServiceModel:
    """botocore's ``bedrock-runtime`` service model (read from botocore's data files: call once,
    at start-up)."""
    import botocore.session

    model: ServiceModel = botocore.session.get_session().get_service_model("bedrock-runtime")
    return model


def endpoint_for(config: GuardrailConfig, env: Mapping[str, str], region: str) -> str:
    if config.api_base:
        return config.api_base
    for name in BEDROCK_RUNTIME_ENDPOINTS:
        if env.get(name):
            return env[name].rstrip("/")
    if config.aws.bedrock_runtime_endpoint:
        return config.aws.bedrock_runtime_endpoint.rstrip("/")
    return f"https://bedrock-runtime.{region}.amazonaws.com"


class ApplyGuardrailClient:
    """ApplyGuardrail for one configured guardrail."""

    def __init__(
        self, config: GuardrailConfig, http: HttpClient, env: Mapping[str, str], model: ServiceModel
    ) -> None:
        self._config = config
        self._http = http
        self._operation = model.operation_model("ApplyGuardrail")
        self._serializer = create_serializer("rest-json", include_validation=True)
        self._parser = create_parser("rest-json")
        self._signer = AwsSigner(config.aws, env=env)
        self.endpoint = endpoint_for(config, env, self._signer.region)

    async def apply(self, source: Source, texts: Sequence[str]) -> dict[str, Any]:
        """The parsed ApplyGuardrail answer for ``texts`` (one content block each). Any failure,
        an AWS error answer included, is an ``UpstreamError`` (or a credential ``GatewayError``)."""
        params = {
            "guardrailIdentifier": self._config.identifier,
            "guardrailVersion": self._config.version,
            "source": source,
            "content": [{"text": {"text": text}} for text in texts],
        }
        try:
            request = self._serializer.serialize_to_request(params, self._operation)
            prepare_request_dict(request, endpoint_url=self.endpoint)
        except (BotoCoreError, ValueError) as exc:
            raise UpstreamError(f"cannot build the ApplyGuardrail request: {exc}", provider=PROVIDER) from exc
        url: str = request["url"]
        body: bytes = request["body"]
        signed = await self._signer.sign("POST", url, dict(request["headers"]), body)
        # encoded=True: the path sent must stay the path botocore quoted and signed.
        answer = await self._http.post(
            URL(url, encoded=True), body, signed, timeout=self._config.timeout, provider=PROVIDER
        )
        try:
            parsed: dict[str, Any] = self._parser.parse(
                {"status_code": answer.status, "headers": HeadersDict(answer.headers), "body": answer.body},
                self._operation.output_shape,
            )
        except ResponseParserError as exc:
            raise UpstreamError(f"unreadable ApplyGuardrail answer: {exc}", provider=PROVIDER) from exc
        if answer.status >= 300:
            error = parsed.get("Error") or {}
            code = str(error.get("Code") or answer.status)
            message = f"ApplyGuardrail answered {code}: {error.get('Message', '')}"
            err = upstream_error_for_status(answer.status, message.rstrip(": "), provider=PROVIDER)
            err.code = code
            raise err
        parsed.pop("ResponseMetadata", None)
        return parsed
