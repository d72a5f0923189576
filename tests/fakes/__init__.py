"""Fake upstream servers that speak the real wire formats, for provider and end-to-end tests."""
