"""The web UI served by the gateway itself at ``/ui``, and the API docs at ``/`` and ``/docs``.

``static/`` is the UI: plain HTML, CSS and native ES modules with no build step, talking only
to the admin API (so authorisation lives in one place, the admin services). The Python modules
here are what must run on the server: sign-in, sign-out and SSO (``signin.py``), the session
cookie as an admin-API credential with CSRF checks (``gate.py``), the static files and the
security headers they are served with (``pages.py``), and the few read endpoints the pages need
that LiteLLM's admin API does not have (``usage_api.py``). Like ``edge``, this package may use
Starlette and FastAPI.
"""
