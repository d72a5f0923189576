"""The embedded demo config of ``make run`` and ``tollgate serve`` without a config file: fake
upstream models (``providers/fake.py``) with demo prices and the README's managed-prompt ARNs,
master key ``sk-1234``."""

from __future__ import annotations

from collections.abc import Mapping

from tollgate.config import Config, parse_config

# Demo prices, so spend shows up in /spend/logs and /key/info (USD per token).
_DEMO_PRICE = {"input_cost_per_token": "0.000001", "output_cost_per_token": "0.000002"}

DEFAULT_CONFIG = {
    "model_list": [
        {
            "model_name": "gpt-4o-mini",
            "litellm_params": {"model": "fake/gpt-4o-mini"},
            "model_info": _DEMO_PRICE,
        },
        {
            # The upstream id lets boto3 clients name it as on Bedrock (modelId=…), and the demo
            # managed prompts below run on it.
            "model_name": "claude-sonnet",
            "litellm_params": {"model": "fake/anthropic.claude-3-5-sonnet-20240620-v1:0"},
            "model_info": _DEMO_PRICE,
        },
        {
            # Bedrock managed prompts by ARN, read from the fake's catalog (providers/fake_prompts.py).
            "model_name": "arn:aws:bedrock:us-west-2:123456789012:prompt/*",
            "litellm_params": {"model": "fake/arn:aws:bedrock:us-west-2:123456789012:prompt/*"},
        },
        {
            "model_name": "nova-micro",
            "litellm_params": {"model": "fake/nova-micro"},
            "model_info": _DEMO_PRICE,
        },
        {
            "model_name": "text-embedding-3-small",
            "litellm_params": {"model": "fake/text-embedding-3-small"},
            "model_info": {"mode": "embedding", "input_cost_per_token": "0.00000002"},
        },
    ],
    # No database_url: DATABASE_URL if set (the container image sets one in its data volume),
    # else store.DEFAULT_DATABASE_URL in the working directory.
    "general_settings": {"master_key": "sk-1234"},
}


def default_config(env: Mapping[str, str]) -> Config:
    """The embedded config of ``make run``: fake upstream models, master key ``sk-1234``."""
    return parse_config(DEFAULT_CONFIG, env=env)
