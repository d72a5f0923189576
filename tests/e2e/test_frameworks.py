"""Agent frameworks over a boto3 client pointed at the gateway: LangChain's ``ChatBedrockConverse``
and pydantic-ai's ``BedrockConverseModel`` — plain calls and streams."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_aws import ChatBedrockConverse
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic_ai import Agent
from pydantic_ai.models.bedrock import BedrockConverseModel
from pydantic_ai.providers.bedrock import BedrockProvider

from tests.e2e.conftest_native import CLAUDE_ID, REPLY


@pytest.mark.parametrize("model", ["claude-primary", "gpt-upstream", "claude-anthropic"])
def test_langchain_invoke(bedrock: Any, model: str) -> None:
    llm = ChatBedrockConverse(client=bedrock, model=model, region_name="us-east-1", max_tokens=100)
    answer = llm.invoke([SystemMessage("be nice"), HumanMessage("hello langchain")])
    assert answer.content == REPLY + "hello langchain"
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["output_tokens"] == 9
    assert answer.usage_metadata["input_tokens"] == 5


@pytest.mark.parametrize(
    ("model", "options"),
    [
        # A gateway model name tells LangChain nothing about the provider: streaming must be enabled.
        ("claude-primary", {"disable_streaming": False}),
        # The upstream Bedrock id of a deployment is accepted as the model id too.
        (CLAUDE_ID, {}),
    ],
)
def test_langchain_stream(bedrock: Any, model: str, options: dict[str, Any]) -> None:
    llm = ChatBedrockConverse(client=bedrock, model=model, region_name="us-east-1", **options)
    chunks = list(llm.stream("stream langchain"))
    text = "".join(
        c.content
        if isinstance(c.content, str)
        else "".join(part.get("text", "") for part in c.content if isinstance(part, dict))
        for c in chunks
    )
    assert text == REPLY + "stream langchain"
    assert len(chunks) > 5


def test_langchain_tool_call(bedrock: Any) -> None:
    def get_weather(city: str, days: int) -> str:
        """Weather for a city."""
        return "sunny"

    llm = ChatBedrockConverse(client=bedrock, model="gpt-upstream", region_name="us-east-1")
    answer = llm.bind_tools([get_weather]).invoke("weather in Paris?")
    assert answer.tool_calls[0]["name"] == "get_weather"  # type: ignore[attr-defined]
    assert answer.tool_calls[0]["args"] == {"city": "example", "days": 1}  # type: ignore[attr-defined]


def _agent(bedrock: Any, model: str) -> Agent[None, str]:
    return Agent(BedrockConverseModel(model, provider=BedrockProvider(bedrock_client=bedrock)))


@pytest.mark.parametrize("model", ["claude-primary", "claude-anthropic", "gpt-upstream"])
def test_pydantic_ai_run(bedrock: Any, model: str) -> None:
    result = _agent(bedrock, model).run_sync("hello pydantic")
    assert result.output == REPLY + "hello pydantic"
    assert result.usage.output_tokens == 9


def test_pydantic_ai_run_stream(bedrock: Any) -> None:
    async def run() -> list[str]:
        async with _agent(bedrock, "claude-primary").run_stream("stream pydantic") as result:
            return [text async for text in result.stream_text(delta=True)]

    import asyncio

    deltas = asyncio.run(run())
    assert "".join(deltas) == REPLY + "stream pydantic"
