"""Run the AWS GenAI Gateway README's client snippets ("Bedrock interface", "Bedrock Managed
Prompts", "Chat History"), copied unchanged into ``tests/fixtures/aws_genai_gateway/``, against a
running gateway. The snippets are fragments: this supplies what their README leaves to the
reader (the environment of ``00_environment.sh``, ``client``, ``model``, the prompts, ``requests``)
and wraps the one that ends in ``return`` in a function. Each snippet's namespace is returned.

    make run            # in one terminal: the embedded demo config, master key sk-1234
    .venv/bin/python -m tests.e2e.aws_snippets http://127.0.0.1:4000
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import requests

SNIPPETS = Path(__file__).resolve().parents[1] / "fixtures" / "aws_genai_gateway"
MODEL = "gpt-4o-mini"  # the OpenAI examples' ``model``: any model of the gateway
MODEL_ID = "anthropic.claude-3-5-sonnet-20240620-v1:0"  # the Bedrock example's own model id


def snippet(name: str) -> str:
    return (SNIPPETS / f"{name}.snippet").read_text()


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run(name: str, namespace: dict[str, Any], *, as_function: bool = False) -> dict[str, Any]:
    source = snippet(name)
    if as_function:  # the snippet ends in ``return``: its README shows a function's body
        source = "def snippet():\n" + textwrap.indent(source, "    ") + "\nresult = snippet()\n"
    exec(compile(source, f"{name}.snippet", "exec"), namespace)
    return namespace


def run_snippets(
    base_url: str, api_key: str = "sk-1234", *, quiet: bool = False
) -> dict[str, dict[str, Any]]:
    """Run every snippet in the README's order; returns each one's namespace by snippet name."""
    env = {"API_ENDPOINT": f"{base_url}/bedrock", "API_KEY": api_key, "AWS_REGION": "us-west-2"}
    out = io.StringIO() if quiet else sys.stdout
    done: dict[str, dict[str, Any]] = {}
    with _environment(env), contextlib.redirect_stdout(out):
        first = done["01_bedrock_interface"] = _run("01_bedrock_interface", {"__name__": "snippet"})
        bedrock = first["bedrock_client"]
        chat = openai.OpenAI(base_url=base_url, api_key=api_key)
        common = {
            "requests": requests,
            "api_key": api_key,
            "base_url": base_url,
            "prompt": "Name three fruits.",
            "prompt2": "Which of them is the sweetest?",
            "message": "Name three rivers.",
            "message2": "Which of them is the longest?",
            "model": MODEL,
            "model_id": MODEL_ID,
        }
        done["02_managed_prompt_boto3"] = _run("02_managed_prompt_boto3", {"client": bedrock})
        done["03_managed_prompt_openai"] = _run(
            "03_managed_prompt_openai", {"client": chat}, as_function=True
        )
        for name, client in (
            ("04_history_openai", chat),
            ("05_history_openai_stream", chat),
            ("06_history_bedrock", bedrock),
            ("07_history_bedrock_stream", bedrock),
        ):
            done[name] = _run(name, {**common, "client": client})
        session_id = done["04_history_openai"]["session_id"]
        done["08_chat_history_endpoints"] = _run(
            "08_chat_history_endpoints", {**common, "session_id": session_id}
        )
        done["09_session_ids"] = _run("09_session_ids", dict(common))
    return done


if __name__ == "__main__":
    run_snippets(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:4000")
    print("\nall README snippets ran")
