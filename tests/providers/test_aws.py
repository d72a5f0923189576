"""AwsSigner: credential sources, region choice, and SigV4 identical to what boto3 sends."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.fakes.server import run_app_in_thread
from tests.fakes.sts import FakeSts
from tollgate.config import AwsSettings
from tollgate.errors import DeploymentMisconfigured
from tollgate.fakes.sigv4 import TEST_ACCESS_KEY, TEST_SECRET_KEY, sigv4_problem
from tollgate.providers.aws import (
    NO_CREDENTIALS,
    AwsSigner,
    credentials_problem,
    region_of_arn,
    resolve_region,
)

ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0"
ENCODED_ARN = (
    "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile"
    "%2Fus.anthropic.claude-3-5-sonnet-20240620-v1%3A0"
)
KEYS = AwsSettings(region="us-east-1", access_key_id=TEST_ACCESS_KEY, secret_access_key=TEST_SECRET_KEY)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No AWS credentials anywhere: no env keys, empty shared files, no metadata service."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


def test_region_prefers_settings_then_environment_then_default() -> None:
    assert resolve_region(AwsSettings(region="eu-west-3"), {"AWS_REGION": "us-west-2"}) == "eu-west-3"
    assert (
        resolve_region(AwsSettings(), {"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "x"}) == "us-west-2"
    )
    assert resolve_region(AwsSettings(), {"AWS_DEFAULT_REGION": "ap-south-1"}) == "ap-south-1"
    assert (
        resolve_region(AwsSettings(), {"AWS_REGION_NAME": "ca-central-1", "AWS_REGION": "x"})
        == "ca-central-1"
    )
    assert resolve_region(AwsSettings(), {}) == "us-east-1"


def test_region_of_arn() -> None:
    assert region_of_arn(ARN) == "us-east-1"
    assert region_of_arn("arn:aws:bedrock:eu-central-1::foundation-model/amazon.titan-embed-text-v2:0") == (
        "eu-central-1"
    )
    assert region_of_arn("anthropic.claude-3-haiku-20240307-v1:0") is None


async def test_explicit_keys_sign_with_scope() -> None:
    signer = AwsSigner(KEYS, env=os.environ)
    headers = await signer.sign(
        "POST",
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse",
        {"content-type": "a/b"},
        b"{}",
    )
    auth = headers["Authorization"]
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={TEST_ACCESS_KEY}/")
    assert "/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=" in auth
    assert "X-Amz-Security-Token" not in headers
    assert headers["content-type"] == "a/b"


async def test_signature_matches_boto3_for_an_encoded_arn(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = datetime.datetime(2024, 6, 1, 12, 0, 0)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: fixed)
    captured: dict[str, Any] = {}

    def before_send(request: Any, **_: Any) -> Any:
        captured["url"] = request.url
        captured["headers"] = {
            k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()
        }
        captured["body"] = request.body
        raise _Captured

    client = boto3.Session(
        aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY, region_name="us-east-1"
    ).client("bedrock-runtime")
    client.meta.events.register("before-send.*", before_send)
    with pytest.raises(_Captured):
        client.converse(modelId=ARN, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    url = f"https://bedrock-runtime.us-east-1.amazonaws.com/model/{ENCODED_ARN}/converse"
    assert captured["url"] == url
    signer = AwsSigner(KEYS, env=os.environ)
    ours = await signer.sign("POST", url, {"Content-Type": "application/json"}, captured["body"])
    assert ours["Authorization"] == captured["headers"]["Authorization"]
    assert ours["X-Amz-Date"] == "20240601T120000Z"
    # The fake's verifier accepts boto3's own request, so it checks what AWS checks.
    lowered = {k.lower(): v for k, v in captured["headers"].items()}
    lowered["host"] = "bedrock-runtime.us-east-1.amazonaws.com"
    path = f"/model/{ENCODED_ARN}/converse"
    secrets = {TEST_ACCESS_KEY: TEST_SECRET_KEY}
    assert sigv4_problem("POST", path, lowered, captured["body"], secrets) is None
    assert sigv4_problem("POST", path, lowered, captured["body"] + b" ", secrets) == (
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method.",
    )
    unencoded = path.replace(ENCODED_ARN, ARN.replace("/", "%2F"))
    assert sigv4_problem("POST", unencoded, lowered, captured["body"], secrets) is not None


class _Captured(Exception):
    pass


async def test_session_token_is_signed(clean_env: Path) -> None:
    signer = AwsSigner(
        AwsSettings(access_key_id="AKIA1", secret_access_key="s", session_token="tok", region="eu-west-1"),
        env=os.environ,
    )
    headers = await signer.sign("POST", "https://h/model/m/converse", {}, b"")
    assert headers["X-Amz-Security-Token"] == "tok"
    assert "host;x-amz-date;x-amz-security-token" in headers["Authorization"]
    assert "/eu-west-1/bedrock/" in headers["Authorization"]


async def test_environment_chain(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-token")
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    signer = AwsSigner(AwsSettings(), env=os.environ)
    assert signer.region == "us-west-2"
    creds = await signer.credentials()
    assert (creds.access_key, creds.secret_key, creds.token) == ("AKIAFROMENV", "env-secret", "env-token")


async def test_profile_from_shared_files(clean_env: Path) -> None:
    (clean_env / "credentials").write_text(
        "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n\n"
        "[team]\naws_access_key_id = AKIATEAM\naws_secret_access_key = team-secret\n"
    )
    creds = await AwsSigner(AwsSettings(profile_name="team"), env=os.environ).credentials()
    assert (creds.access_key, creds.secret_key) == ("AKIATEAM", "team-secret")
    default = await AwsSigner(AwsSettings(), env=os.environ).credentials()
    assert default.access_key == "AKIADEFAULT"


async def test_profile_in_config_file(clean_env: Path) -> None:
    (clean_env / "config").write_text(
        "[profile dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = dev-secret\n"
    )
    creds = await AwsSigner(AwsSettings(profile_name="dev"), env=os.environ).credentials()
    assert creds.access_key == "AKIADEV"


async def test_unknown_profile_is_a_configuration_error(clean_env: Path) -> None:
    with pytest.raises(DeploymentMisconfigured, match="profile") as info:
        await AwsSigner(AwsSettings(profile_name="nope"), env=os.environ).credentials()
    assert info.value.status >= 500  # the operator's problem, not a bad gateway key
    assert credentials_problem(AwsSettings(profile_name="nope"), os.environ) is not None


async def test_no_credentials_is_a_configuration_error(clean_env: Path) -> None:
    signer = AwsSigner(AwsSettings(), env=os.environ)
    with pytest.raises(DeploymentMisconfigured, match="no AWS credentials found") as info:
        await signer.sign("POST", "https://h/x", {}, b"")
    assert info.value.status == 500 and info.value.kind == "config"
    assert credentials_problem(AwsSettings(), os.environ) == NO_CREDENTIALS
    assert credentials_problem(AwsSettings(access_key_id="A", secret_access_key="s"), os.environ) is None


async def test_assume_role_through_sts_and_cache(clean_env: Path) -> None:
    sts = FakeSts()
    with run_app_in_thread(sts.app()) as sts_url:
        settings = AwsSettings(
            access_key_id=TEST_ACCESS_KEY,
            secret_access_key=TEST_SECRET_KEY,
            role_name="arn:aws:iam::123456789012:role/bedrock",
            sts_endpoint=sts_url,
            region="us-east-1",
        )
        signer = AwsSigner(settings, env=os.environ)
        first = await signer.credentials()
        second = await signer.credentials()
    assert first.access_key == "ASIAFAKESTS0001"
    assert first.token == "sts-token-1"
    assert second == first
    assert len(sts.calls) == 1
    assert sts.calls[0]["Action"] == "AssumeRole"
    assert sts.calls[0]["RoleArn"] == "arn:aws:iam::123456789012:role/bedrock"
    assert sts.calls[0]["RoleSessionName"] == "tollgate"


async def test_assumed_role_refreshes_before_expiry(clean_env: Path) -> None:
    # Five minutes is inside botocore's mandatory refresh window: every use refreshes.
    sts = FakeSts(lifetime=datetime.timedelta(minutes=5))
    with run_app_in_thread(sts.app()) as sts_url:
        settings = AwsSettings(
            access_key_id=TEST_ACCESS_KEY,
            secret_access_key=TEST_SECRET_KEY,
            session_name="batch-job",
            role_name="arn:aws:iam::123456789012:role/bedrock",
            sts_endpoint=sts_url,
        )
        signer = AwsSigner(settings, env=os.environ)
        first = await signer.credentials()
        second = await signer.credentials()
    assert first.access_key != second.access_key
    assert second.access_key.startswith("ASIAFAKESTS")
    assert len(sts.calls) >= 2
    assert {call["RoleSessionName"] for call in sts.calls} == {"batch-job"}


async def test_rejected_assume_role_is_a_configuration_error(clean_env: Path) -> None:
    sts = FakeSts()
    with run_app_in_thread(sts.app()) as sts_url:
        settings = AwsSettings(
            access_key_id="AKIAUNKNOWN",
            secret_access_key="x",
            role_name="arn:aws:iam::123456789012:role/bedrock",
            sts_endpoint=sts_url,
        )
        with pytest.raises(DeploymentMisconfigured, match="UnrecognizedClientException"):
            await AwsSigner(settings, env=os.environ).credentials()


async def test_web_identity_token_from_file(clean_env: Path) -> None:
    token_file = clean_env / "token"
    token_file.write_text("eyJ.fake.jwt\n")
    sts = FakeSts()
    with run_app_in_thread(sts.app()) as sts_url:
        settings = AwsSettings(
            role_name="arn:aws:iam::123456789012:role/irsa",
            web_identity_token=str(token_file),
            sts_endpoint=sts_url,
        )
        creds = await AwsSigner(settings, env=os.environ).credentials()
    assert creds.access_key == "ASIAFAKESTS0001"
    assert sts.calls[0]["Action"] == "AssumeRoleWithWebIdentity"
    assert sts.calls[0]["WebIdentityToken"] == "eyJ.fake.jwt"
