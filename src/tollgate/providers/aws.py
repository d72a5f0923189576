"""AWS credentials and SigV4 signing for the Bedrock provider.

Credentials come from botocore, never hand-rolled: explicit keys, a named profile, an assumed
role (STS ``AssumeRole``, or ``AssumeRoleWithWebIdentity`` when a web identity token is given),
or botocore's default chain (environment, shared files, ECS task role, IRSA / Pod Identity,
instance profile). They are resolved once, lazily, in a worker thread; afterwards signing costs
only an HMAC, and the blocking STS / metadata-service refresh runs in a thread only when botocore
says the credentials are about to expire. Signing failures of this kind are converted to
``GatewayError``s here, the one boundary between botocore's credential code and the gateway:
missing or refused credentials are the operator's problem (``DeploymentMisconfigured``, a 5xx the
Bedrock provider names the deployment in), never a 401 that would read as a bad gateway key.
``credentials_problem`` is the same check made at start (``check-config``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import botocore.session
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotocoreConfig
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from tollgate.config import AwsSettings, Deployment
from tollgate.config.environment import AWS_REGION_NAMES
from tollgate.errors import DeploymentMisconfigured, GatewayError, UpstreamConnectionError

DEFAULT_REGION = "us-east-1"
NO_CREDENTIALS = (
    "no AWS credentials found: set aws_access_key_id/aws_secret_access_key, aws_profile_name "
    "or aws_role_name, or provide them through the environment"
)
SERVICE = "bedrock"  # the SigV4 signing name of bedrock-runtime
DEFAULT_SESSION_NAME = "tollgate"
_PROVIDER = "bedrock"


def resolve_region(settings: AwsSettings, env: Mapping[str, str]) -> str:
    """``aws_region_name``, else the usual environment variables, else us-east-1."""
    if settings.region:
        return settings.region
    for name in AWS_REGION_NAMES:
        value = env.get(name)
        if value:
            return value
    return DEFAULT_REGION


def region_of_arn(model_id: str) -> str | None:
    """The region inside a Bedrock ARN (``arn:aws:bedrock:<region>:…``), if it is one."""
    if not model_id.startswith("arn:"):
        return None
    fields = model_id.split(":", 5)
    return (fields[3] or None) if len(fields) > 4 else None


@contextmanager
def credential_errors() -> Iterator[None]:
    """Convert botocore's credential and STS failures into gateway errors, once, here."""
    try:
        yield
    except GatewayError:
        raise
    except EndpointConnectionError as exc:
        raise UpstreamConnectionError(
            f"cannot reach the AWS credential endpoint: {exc}", provider=_PROVIDER
        ) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise DeploymentMisconfigured(
            f"AWS credentials could not be obtained: {error.get('Code', 'error')}: "
            f"{error.get('Message', '')}",
            provider=_PROVIDER,
        ) from exc
    except BotoCoreError as exc:
        raise DeploymentMisconfigured(
            f"AWS credentials could not be obtained: {exc}", provider=_PROVIDER
        ) from exc


class AwsSigner:
    """SigV4 signer for one ``AwsSettings``; keep one per distinct settings value."""

    __slots__ = ("_credentials", "_lock", "region", "settings")

    def __init__(self, settings: AwsSettings, *, env: Mapping[str, str]) -> None:
        self.settings = settings
        self.region = resolve_region(settings, env)
        self._credentials: Credentials | None = None
        self._lock: asyncio.Lock | None = None

    async def credentials(self) -> ReadOnlyCredentials:
        """Frozen credentials; resolved on first use, refreshed in a thread when expiring."""
        creds = self._credentials
        if creds is None:
            creds = await self._resolve_once()
        if isinstance(creds, RefreshableCredentials) and creds.refresh_needed():
            with credential_errors():
                return await asyncio.to_thread(creds.get_frozen_credentials)
        return creds.get_frozen_credentials()

    async def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, *, region: str | None = None
    ) -> dict[str, str]:
        """Headers for the request with SigV4 added (``Authorization``, ``X-Amz-Date`` and
        ``X-Amz-Security-Token`` for temporary credentials). ``url`` must be the exact URL sent:
        botocore re-encodes its path for the canonical request, as AWS expects of every service
        but S3, so an already percent-encoded model id is signed as boto3 signs it."""
        frozen = await self.credentials()
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(frozen, SERVICE, region or self.region).add_auth(request)
        return {str(name): _text(value) for name, value in request.headers.items()}

    async def _resolve_once(self) -> Credentials:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._credentials is None:
                with credential_errors():
                    self._credentials = await asyncio.to_thread(self._resolve)
            return self._credentials

    def _resolve(self) -> Credentials:
        """Blocking: may read files, call STS or the instance metadata service."""
        settings = self.settings
        if settings.role_name:
            return self._assumed_role(settings.role_name)
        creds = self._base_credentials()
        if creds is None:
            raise DeploymentMisconfigured(NO_CREDENTIALS, provider=_PROVIDER)
        return creds

    def _base_credentials(self) -> Credentials | None:
        settings = self.settings
        if settings.access_key_id and settings.secret_access_key:
            return Credentials(settings.access_key_id, settings.secret_access_key, settings.session_token)
        creds: Credentials | None = self._session().get_credentials()
        return creds

    def _session(self) -> Any:
        if self.settings.profile_name:
            return botocore.session.Session(profile=self.settings.profile_name)
        return botocore.session.get_session()

    def _sts_client(self, *, unsigned: bool) -> Any:
        settings = self.settings
        kwargs: dict[str, Any] = {"region_name": self.region, "endpoint_url": settings.sts_endpoint}
        if unsigned:
            kwargs["config"] = BotocoreConfig(signature_version=UNSIGNED)
            return botocore.session.get_session().create_client("sts", **kwargs)
        base = self._base_credentials()
        if base is None:
            raise DeploymentMisconfigured(
                f"no AWS credentials found to assume role {settings.role_name}", provider=_PROVIDER
            )
        frozen = base.get_frozen_credentials()
        return self._session().create_client(
            "sts",
            aws_access_key_id=frozen.access_key,
            aws_secret_access_key=frozen.secret_key,
            aws_session_token=frozen.token,
            **kwargs,
        )

    def _assumed_role(self, role_arn: str) -> RefreshableCredentials:
        session_name = self.settings.session_name or DEFAULT_SESSION_NAME
        token = self.settings.web_identity_token
        client = self._sts_client(unsigned=token is not None)

        def fetch() -> dict[str, str]:
            if token is not None:
                answer = client.assume_role_with_web_identity(
                    RoleArn=role_arn, RoleSessionName=session_name, WebIdentityToken=_token_value(token)
                )
            else:
                answer = client.assume_role(RoleArn=role_arn, RoleSessionName=session_name)
            issued = answer["Credentials"]
            return {
                "access_key": issued["AccessKeyId"],
                "secret_key": issued["SecretAccessKey"],
                "token": issued["SessionToken"],
                "expiry_time": issued["Expiration"].isoformat(),
            }

        method = "assume-role-with-web-identity" if token is not None else "sts-assume-role"
        return RefreshableCredentials.create_from_metadata(fetch(), fetch, method)


def _token_value(token: str) -> str:
    # IRSA mounts the token as a file that is rotated; accept its path as well as the token itself.
    if token.startswith("/"):
        path = Path(token)
        if path.is_file():
            return path.read_text(encoding="utf-8").strip()
    return token


def _text(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def credentials_problem(settings: AwsSettings, env: Mapping[str, str]) -> str | None:
    """Why requests with ``settings`` would find no AWS credentials, or None. Blocking (reads the
    shared files; may ask the instance metadata service); assumed roles are not tried here."""
    if settings.role_name or (settings.access_key_id and settings.secret_access_key):
        return None
    quiet = logging.getLogger("botocore.credentials")  # it says where it found them, at INFO
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        found = AwsSigner(settings, env=env)._base_credentials()
    except (BotoCoreError, ClientError) as exc:
        return f"AWS credentials could not be obtained: {exc}"
    finally:
        quiet.setLevel(level)
    return None if found is not None else NO_CREDENTIALS


def credential_warnings(deployments: Iterable[Deployment], env: Mapping[str, str]) -> list[str]:
    """One warning per Bedrock deployment whose requests would find no AWS credentials."""
    problems: dict[AwsSettings, str | None] = {}
    warnings: list[str] = []
    for deployment in deployments:
        if deployment.provider != _PROVIDER:
            continue
        settings = deployment.aws or AwsSettings()
        if settings not in problems:
            problems[settings] = credentials_problem(settings, env)
        problem = problems[settings]
        if problem is not None:
            warnings.append(
                f"deployment '{deployment.id}' of model '{deployment.model_name}': {problem}; "
                "its requests will fail with a configuration error (500)"
            )
    return warnings
