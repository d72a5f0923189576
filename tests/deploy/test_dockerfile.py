"""deploy/Dockerfile: hadolint-clean, and built the way docs/deploy.md promises (multi-stage, slim
base, locked dependencies with hashes, non-root, only declared writable paths, a HEALTHCHECK on
liveliness, ``tollgate`` as the entrypoint so LiteLLM's arguments work)."""

from __future__ import annotations

import fnmatch
import subprocess
from pathlib import Path

from tests.deploy.artifacts import DEPLOY, DOCKERFILE, ROOT, dockerfile_stages, final_stage, run, tool
from tollgate.cli import parser


def test_hadolint_finds_nothing() -> None:
    run([tool("hadolint"), "--failure-threshold", "style", str(DOCKERFILE)])


def test_hadolint_would_catch_a_bad_line(tmp_path: Path) -> None:
    """The lint is live: an unpinned pip install in the same file fails it."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text() + "RUN pip install requests\n")
    result = subprocess.run([tool("hadolint"), str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DL3013" in result.stdout


def test_multi_stage_on_a_slim_base() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    assert all("-slim" in stage.base for stage in stages), [s.base for s in stages]
    assert stages[0].base == stages[-1].base  # the venv's interpreter path exists at run time


def test_dependencies_come_from_the_lock_with_hashes() -> None:
    installs = " ".join(dockerfile_stages()[0].runs)
    assert "--require-hashes" in installs
    assert "-r deploy/requirements.lock" in installs
    assert "--no-deps /wheels/tollgate-" in installs  # the wheel adds nothing unlocked


def test_runs_as_an_unprivileged_user() -> None:
    user = final_stage().user
    assert user is not None
    assert user.split(":")[0] not in ("0", "root")


def test_writable_paths_are_volumes() -> None:
    """Everything the gateway writes (spill files, SQLite, temp files) lies in a VOLUME, so a
    read-only root file system works and ECS copies the owner into its bind mounts."""
    stage = final_stage()
    written = [
        stage.env["TMPDIR"],
        stage.env["TOLLGATE_SPEND_SPILL_DIR"],
        stage.env["DATABASE_URL"].removeprefix("sqlite:///"),
    ]
    for path in written:
        assert any(path == v or path.startswith(v.rstrip("/") + "/") for v in stage.volumes), path
    assert stage.env.get("PYTHONDONTWRITEBYTECODE") == "1"


def test_entrypoint_takes_litellm_arguments() -> None:
    stage = final_stage()
    assert stage.entrypoint == ["tollgate"]
    args = parser({}).parse_args(["serve", *stage.cmd])
    assert args.port == 4000


def test_healthcheck_is_liveliness_with_a_short_start_period() -> None:
    check = final_stage().healthcheck
    assert check is not None
    assert '["tollgate", "healthcheck"]' in check
    assert "--start-period=10s" in check
    args = parser({}).parse_args(["healthcheck"])
    assert args.url is None  # liveliness on the configured port (cli.cmd_healthcheck)


def test_build_context_keeps_what_copy_needs() -> None:
    """deploy/Dockerfile.dockerignore excludes everything else; every COPY source survives it."""
    patterns = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def included(path: str) -> bool:
        keep = True
        for pattern in patterns:
            negated = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, bare) or path.startswith(bare + "/"):
                keep = negated
        return keep

    sources = [
        src for stage in dockerfile_stages() for copy in stage.copies
        if not copy[0].startswith("--from") for src in copy[:-1]
    ]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert included(source.rstrip("/")), f"{source} is excluded from the build context"
    assert not included(".venv")
    assert not included("tests")
