"""Authentication: who is calling. Credentials become a ``Principal`` (the caller and the chain of
entities it belongs to); ``keys.py`` handles master and virtual keys, ``oidc.py`` JWT identities."""
