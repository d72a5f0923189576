"""The container image without a container engine: its build stage's commands run on this machine
(a fresh wheel, the locked dependencies, in a clean virtual environment), and its final stage's
ENTRYPOINT, ENV and WORKDIR are what a process is started with.

Container paths are mapped onto temporary directories (``/opt/tollgate`` is the new virtual
environment, ``/app`` holds the config, ``/var/lib/tollgate`` and ``/tmp`` are the volumes); every
argument and variable is otherwise the Dockerfile's. One deviation: pip's ``--no-cache-dir`` is
dropped, so repeated runs may reuse downloads.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.artifacts import ROOT, dockerfile_stages

BASE_IMAGE_ENV = {"LANG": "C.UTF-8"}  # what python:*-slim sets besides PATH


@dataclass(frozen=True)
class Image:
    root: Path  # stands for the container's /
    paths: Mapping[str, Path]

    def map(self, value: str) -> str:
        """A container path (or a string holding one) as the path on this machine; one pass, so a
        mapped path (under this machine's /tmp) is never mapped again."""
        alternatives = "|".join(re.escape(p) for p in sorted(self.paths, key=len, reverse=True))
        pattern = rf"(?<![\w.-])({alternatives})(?=/|\b|$)"
        return re.sub(pattern, lambda m: str(self.paths[m.group(1)]), value)

    def env(self, extra: Mapping[str, str]) -> dict[str, str]:
        """The final stage's ENV (mapped) over a bare environment, then the deployment's."""
        stage = dockerfile_stages()[-1]
        env = {**BASE_IMAGE_ENV, "PATH": "/usr/local/bin:/usr/bin:/bin"}
        env.update({k: self.map(v) for k, v in stage.env.items()})
        env.update({k: self.map(v) for k, v in extra.items()})
        return env

    @property
    def workdir(self) -> Path:
        return Path(self.map(dockerfile_stages()[-1].workdir))

    def command(self, args: Sequence[str]) -> list[str]:
        """ENTRYPOINT + ``args`` (a CMD), resolved on this machine's PATH as the image's would be."""
        entrypoint = dockerfile_stages()[-1].entrypoint
        executable = shutil.which(entrypoint[0], path=self.env({})["PATH"])
        assert executable is not None, entrypoint
        return [executable, *entrypoint[1:], *(self.map(a) for a in args)]


def build(root: Path) -> Image:
    """Run the build stage: COPY the sources into its WORKDIR, then each RUN, paths mapped."""
    build_stage = dockerfile_stages()[0]
    paths = {
        "/opt/tollgate": root / "opt-tollgate",
        "/wheels": root / "wheels",
        "/src": root / "src-context",
        "/app": root / "app",
        "/var/lib/tollgate": root / "var-lib-tollgate",
        "/tmp": root / "tmp",
    }
    for path in (paths["/src"], paths["/app"], paths["/var/lib/tollgate"], paths["/tmp"]):
        path.mkdir(parents=True)
    image = Image(root, paths)
    workdir = Path(image.map(build_stage.workdir))
    for copy in build_stage.copies:
        *sources, destination = copy
        target = workdir / destination
        for source in sources:
            origin = ROOT / source
            into = target / origin.name if destination.endswith("/") or len(sources) > 1 else target
            into.parent.mkdir(parents=True, exist_ok=True)
            if origin.is_dir():
                shutil.copytree(origin, into, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            else:
                shutil.copy(origin, into)
    # The build image's `python` is the base interpreter; here, the one running the tests.
    tools = root / "build-bin"
    tools.mkdir()
    (tools / "python").symlink_to(sys.executable)
    env = {**{k: v for k, v in os.environ.items() if k.startswith(("PIP_", "SSL_", "HOME"))},
           **build_stage.env, "PATH": f"{tools}:{os.environ['PATH']}"}
    for run in build_stage.runs:
        command = image.map(run).replace("--no-cache-dir ", "")
        result = subprocess.run(
            ["/bin/sh", "-c", command], cwd=workdir, env=env, capture_output=True, text=True, timeout=600
        )
        output = result.stdout[-3000:] + result.stderr[-3000:]
        assert result.returncode == 0, f"RUN {shlex.quote(command)}:\n{output}"
    return image
