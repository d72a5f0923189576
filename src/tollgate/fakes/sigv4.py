"""SigV4 verification for the fake Bedrock upstream (``tollgate fake-upstream``) and the test fakes.

The signature is recomputed with botocore from the method, the raw path as received, the headers
named in ``SignedHeaders``, the body and ``X-Amz-Date``, using the secret of the access key it
names, and compared the way AWS does: an unknown key is ``UnrecognizedClientException``, a wrong
signature ``InvalidSignatureException`` (both HTTP 403). Never used on the gateway's request path.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

# The fake upstream's default test credentials (``--aws-access-key-id`` / ``--aws-secret-access-key``).
TEST_ACCESS_KEY = "AKIDTOLLGATETEST0001"
TEST_SECRET_KEY = "tollgate/test/secret/key/0001"

SIGV4_PREFIX = "AWS4-HMAC-SHA256 "


def _fields(auth: str) -> dict[str, str]:
    items = (item.strip().split("=", 1) for item in auth[len(SIGV4_PREFIX) :].split(","))
    return {pair[0]: pair[1] for pair in items if len(pair) == 2}


def sigv4_problem(
    method: str,
    raw_path: str,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Mapping[str, str],
    session_tokens: Mapping[str, str] | None = None,
) -> tuple[str, str] | None:
    """``None`` if the SigV4 signature is valid, else (AWS error type, message). ``headers`` must
    have lower-case names; ``raw_path`` is the path (and query) exactly as received."""
    auth = headers.get("authorization", "")
    if not auth.startswith(SIGV4_PREFIX):
        return "MissingAuthenticationTokenException", "Missing Authentication Token"
    fields = _fields(auth)
    try:
        access_key, date, region, service, terminator = fields["Credential"].split("/")
        signed = fields["SignedHeaders"].split(";")
        signature = fields["Signature"]
    except (KeyError, ValueError):
        return (
            "IncompleteSignatureException",
            "Authorization header requires Credential, SignedHeaders, Signature",
        )
    secret = secrets.get(access_key)
    if secret is None:
        return "UnrecognizedClientException", "The security token included in the request is invalid."
    token = headers.get("x-amz-security-token")
    expected_token = (session_tokens or {}).get(access_key)
    if expected_token is not None and token != expected_token:
        return "UnrecognizedClientException", "The security token included in the request is invalid."
    amz_date = headers.get("x-amz-date", "")
    if "host" not in signed or not amz_date.startswith(date) or terminator != "aws4_request":
        return "IncompleteSignatureException", "host and x-amz-date must be signed with a matching scope"
    missing = [name for name in signed if name not in headers]
    if missing:
        return "IncompleteSignatureException", f"signed headers missing from the request: {missing}"
    request = AWSRequest(
        method=method,
        url=f"http://{headers['host']}{raw_path}",
        data=body,
        headers={name: headers[name] for name in signed},
    )
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(access_key, secret, token), service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, signature):
        return (
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )
    return None
