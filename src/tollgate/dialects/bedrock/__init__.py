"""The Bedrock runtime wire formats: Converse / ConverseStream (``converse`` is the dialect module)
and the InvokeModel bodies of embedding models."""
