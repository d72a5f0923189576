"""The fake upstream: one server speaking OpenAI, Anthropic and Bedrock (SigV4-checked) wire formats,
for ``tollgate fake-upstream``, ``make run``, the tests and the benchmark."""
