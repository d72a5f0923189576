"""Web UI session cookies: signed, expiring when idle or old, renewed as they are used; CSRF."""

from __future__ import annotations

from tollgate.auth.sessions import SessionCodec, csrf_ok, same_origin, signing_key

T0 = 1_800_000_000.0


def codec(password: str | None = "pw", secret: str = "secret") -> SessionCodec:
    return SessionCodec(signing_key(secret, password), idle_seconds=600, max_seconds=3600)


def test_round_trip_and_forgery() -> None:
    c = codec()
    session = c.issue("sso", "alice@example.com", "alice", T0)
    token = c.encode(session)
    assert c.decode(token, T0 + 1) == session
    payload, signature = token.split(".")
    assert c.decode(payload + "." + signature[:-2] + "AA", T0) is None
    assert c.decode(token + "x", T0) is None
    assert c.decode(None, T0) is None and c.decode("garbage", T0) is None


def test_other_secret_or_new_password_ends_sessions() -> None:
    token = codec().encode(codec().issue("password", "admin", None, T0))
    assert codec(secret="other").decode(token, T0) is None
    assert codec(password="new password").decode(token, T0) is None


def test_idle_and_maximum_age() -> None:
    c = codec()
    session = c.issue("password", "admin", None, T0)
    token = c.encode(session)
    assert c.decode(token, T0 + 600) is not None
    assert c.decode(token, T0 + 601) is None  # idle too long
    # kept busy, it still ends max_seconds after sign-in
    now = T0
    while now < T0 + 3600:
        now += 500
        renewed = c.renewed(session, now)
        assert renewed is not None and renewed.seen_at == int(now)
        session = renewed
    assert c.decode(c.encode(session), now) is None


def test_renewal_is_rate_limited() -> None:
    c = codec()
    session = c.issue("password", "admin", None, T0)
    assert c.renewed(session, T0 + 10) is None
    assert c.renewed(session, T0 + 61) is not None


def test_sealed_documents_expire_and_cannot_pass_as_sessions() -> None:
    c = codec()
    sealed = c.seal({"state": "s", "verifier": "v"}, T0)
    assert c.unseal(sealed, T0 + 599, 600) == {"state": "s", "verifier": "v", "_t": int(T0)}
    assert c.unseal(sealed, T0 + 601, 600) is None
    assert c.decode(sealed, T0) is None  # a different signature domain
    session_token = c.encode(c.issue("password", "admin", None, T0))
    assert c.unseal(session_token, T0, 600) is None


def test_csrf_and_origin() -> None:
    assert csrf_ok("abc", "abc")
    assert not csrf_ok("abc", None) and not csrf_ok("abc", "") and not csrf_ok("abc", "abd")
    assert same_origin(None, "gw:4000", "http")
    assert same_origin("http://gw:4000", "gw:4000", "http")
    assert same_origin("https://gw", "gw", "http")  # TLS ended at a proxy in front
    assert not same_origin("https://evil.test", "gw:4000", "http")
