"""The OpenAI wire formats: chat completions (``chat``, the dialect module) and embeddings."""
