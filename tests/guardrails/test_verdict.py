"""ApplyGuardrail answers → pass, block or anonymize; assessments without the checked text."""

from __future__ import annotations

from tollgate.fakes.guardrails import assess
from tollgate.guardrails.verdict import redact, verdict


def test_no_intervention_passes() -> None:
    found = verdict(assess("block-secret", ["all good"]))
    assert found.action == "NONE" and found.outputs == ()


def test_a_blocked_entry_blocks_and_keeps_no_matched_text() -> None:
    found = verdict(assess("block-secret+anonymize-email", ["the secret is at a@b.co"]))
    assert found.action == "BLOCKED" and found.reason == "Guardrail blocked."
    assert found.assessments == (
        {"wordPolicy": {"customWords": [{"action": "BLOCKED", "detected": True}], "managedWordLists": []}},
    )
    assert "secret" not in repr(found.summary())


def test_anonymized_entries_give_the_masked_texts() -> None:
    found = verdict(assess("anonymize-email", ["mail a@b.co", "or c@d.org and e@f.io"]))
    assert found.action == "ANONYMIZED" and found.masked == 3
    assert found.outputs == ("mail {EMAIL}", "or {EMAIL} and {EMAIL}")
    entities = found.assessments[0]["sensitiveInformationPolicy"]["piiEntities"]
    assert entities[0] == {"type": "EMAIL", "action": "ANONYMIZED", "detected": True}


def test_an_intervention_naming_no_known_action_blocks() -> None:
    answer = {
        "action": "GUARDRAIL_INTERVENED",
        "assessments": [{"automatedReasoningPolicy": {"findings": []}}],
    }
    assert verdict(answer).action == "BLOCKED"


def test_redact_keeps_numbers_booleans_and_policy_names_only() -> None:
    assessment = {
        "topicPolicy": {
            "topics": [{"name": "Coffee", "type": "DENY", "action": "BLOCKED", "match": "latte"}]
        },
        "contextualGroundingPolicy": {"filters": [{"type": "GROUNDING", "threshold": 0.5, "score": 0.1}]},
        "automatedReasoningPolicy": {
            "findings": [{"invalid": {"translation": {"premises": [{"statement": "x"}]}}}]
        },
    }
    assert redact(assessment) == {
        "topicPolicy": {"topics": [{"name": "Coffee", "type": "DENY", "action": "BLOCKED"}]},
        "contextualGroundingPolicy": {"filters": [{"type": "GROUNDING", "threshold": 0.5, "score": 0.1}]},
        "automatedReasoningPolicy": {"findings": [{"invalid": {"translation": {"premises": [{}]}}}]},
    }
