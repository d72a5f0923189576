"""Guardrails: Amazon Bedrock guardrails (ApplyGuardrail) on the prompt and the answer, an explicit
step of the gateway's lifecycle (DESIGN.md §1.3), configured as LiteLLM's top-level ``guardrails:``.

``registry`` builds them from the config and hands the gateway a ``Screen`` per request
(``screen``: pre_call, during_call, post_call, streams); ``selection`` decides which run,
``guard`` runs one (verdict, masking, failing closed), ``bedrock`` calls ApplyGuardrail, ``texts``
takes the checked texts out of canonical values and puts them back, ``verdict`` reads the answer.
May import ``call``, ``auth``, ``canonical``, ``config``, ``errors`` and ``providers``.
"""

from tollgate.guardrails.guard import APPLIED_HEADER
from tollgate.guardrails.registry import Guardrails
from tollgate.guardrails.screen import Screen

__all__ = ["APPLIED_HEADER", "Guardrails", "Screen"]
