"""A fake STS: AssumeRole (SigV4-signed, checked like AWS) and AssumeRoleWithWebIdentity. The
credentials it issues are added to a fake upstream's ``Script`` (``tollgate.fakes.script``), so
they sign Bedrock requests to it as they would to AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollgate.fakes.script import Script
from tollgate.fakes.sigv4 import TEST_ACCESS_KEY, TEST_SECRET_KEY, sigv4_problem


class FakeSts:
    def __init__(self, upstream: Script | None = None, *, lifetime: timedelta = timedelta(hours=1)) -> None:
        """``upstream``: whose accepted credentials grow (default: one accepting the test key)."""
        self.upstream = upstream or Script(aws_secrets={TEST_ACCESS_KEY: TEST_SECRET_KEY})
        self.lifetime = lifetime
        self.calls: list[dict[str, str]] = []

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/", self._handle, methods=["POST"])])

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        form = dict(parse_qsl(body.decode()))
        self.calls.append(form)
        action = form.get("Action")
        if action == "AssumeRole":
            headers = {name.lower(): value for name, value in request.headers.items()}
            raw_path = request.scope["raw_path"].decode("latin-1")
            problem = sigv4_problem("POST", raw_path, headers, body, self.upstream.aws_secrets)
            if problem is not None:
                return Response(_sts_error(problem[0], problem[1]), status_code=403, media_type="text/xml")
        elif action != "AssumeRoleWithWebIdentity":
            return Response(_sts_error("InvalidAction", str(action)), status_code=400, media_type="text/xml")
        number = len(self.calls)
        access_key, secret, token = f"ASIAFAKESTS{number:04d}", f"sts-secret-{number}", f"sts-token-{number}"
        self.upstream.aws_secrets[access_key] = secret
        self.upstream.aws_session_tokens[access_key] = token
        expiration = (datetime.now(UTC) + self.lifetime).strftime("%Y-%m-%dT%H:%M:%SZ")
        xml = (
            f'<{action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><{action}Result>'
            f"<Credentials><AccessKeyId>{access_key}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>"
            f"<SessionToken>{token}</SessionToken><Expiration>{expiration}</Expiration></Credentials>"
            f"<AssumedRoleUser><Arn>{form.get('RoleArn')}/{form.get('RoleSessionName')}</Arn>"
            f"<AssumedRoleId>AROAFAKE:{form.get('RoleSessionName')}</AssumedRoleId></AssumedRoleUser>"
            f"</{action}Result><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></{action}Response>"
        )
        return Response(xml.encode(), media_type="text/xml")


def _sts_error(code: str, message: str) -> bytes:
    return (
        f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>fake</RequestId></ErrorResponse>"
    ).encode()
