"""The Anthropic Messages wire format (``messages`` is the dialect module)."""
