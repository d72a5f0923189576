"""The HTTP edge: the Starlette/FastAPI app, request handlers that parse (dialect) → authenticate →
hand to the gateway or the admin services → render, health, metrics and passthrough routes.
The only package that knows Starlette."""
