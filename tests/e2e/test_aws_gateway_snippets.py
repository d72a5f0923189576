"""The AWS GenAI Gateway README's client snippets ("Bedrock interface", "Bedrock Managed Prompts",
"Chat History"), unchanged, against ``tollgate serve`` on its embedded demo config, the one
``make run`` serves (fake models, master key sk-1234). Only the SQLite file is put elsewhere."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from tests.e2e.aws_snippets import run_snippets
from tests.e2e.servers import _on_free_port, process

REPLY = "Hello from tollgate's fake upstream! You said: "


def test_the_readme_snippets_run_unchanged_against_the_demo_config(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/tollgate.db", "TOLLGATE_CONFIG": ""}

    def start(port: int) -> AbstractContextManager[Path]:
        args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
        return process(args, f"http://127.0.0.1:{port}/health/liveliness", env)

    with _on_free_port(start) as port:
        done = run_snippets(f"http://127.0.0.1:{port}", quiet=True)

    def converse_text(answer: dict[str, Any]) -> str:
        return str(answer["output"]["message"]["content"][0]["text"])

    assert converse_text(done["01_bedrock_interface"]["response"]) == REPLY + "Create a list of 3 pop songs."
    assert (
        converse_text(done["02_managed_prompt_boto3"]["response"])
        == REPLY + "Write one sentence about fruit."
    )
    assert done["03_managed_prompt_openai"]["result"] == REPLY + "Write one sentence about fruit."
    openai_whole = done["04_history_openai"]
    assert openai_whole["response_2"].model_extra["session_id"] == openai_whole["session_id"]
    assert openai_whole["response_2"].choices[0].message.content == REPLY + "Which of them is the sweetest?"
    sessions = [
        done[name]["session_id"]
        for name in (
            "04_history_openai",
            "05_history_openai_stream",
            "06_history_bedrock",
            "07_history_bedrock_stream",
        )
    ]
    assert all(sessions) and len(set(sessions)) == 4
    assert converse_text(done["06_history_bedrock"]["response2"]) == REPLY + "Which of them is the longest?"
    endpoints = done["08_chat_history_endpoints"]
    assert endpoints["response_openai"].status_code == 200
    assert [m["content"] for m in endpoints["response_openai"].json()["messages"]] == [
        "Name three fruits.",
        REPLY + "Name three fruits.",
        "Which of them is the sweetest?",
        REPLY + "Which of them is the sweetest?",
    ]
    assert endpoints["response_bedrock"].json()["messages"][0] == {
        "role": "user",
        "content": [{"text": "Name three fruits."}],
    }
    assert set(sessions) <= set(done["09_session_ids"]["response"].json()["session_ids"])
