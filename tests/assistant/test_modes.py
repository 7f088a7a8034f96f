"""The system prompt of each mode: its role, the organization, the grounding verbatim (not
HTML-escaped), and the rules every prompt states."""

import pytest

from assistant.grounding import Grounding
from assistant.modes import MODES, system_prompt

GROUNDING = Grounding(
    facts={}, text='# Estate of "Acme & Co"\n- "owner" <unverified>', snapshot="x"
)


class Org:
    name = "Acme & Co"


@pytest.mark.parametrize("mode", list(MODES))
def test_each_prompt_states_its_role_and_the_rules(mode):
    prompt = system_prompt(mode, GROUNDING, Org())

    assert prompt.startswith(f"You are TagSense's {MODES[mode]} for the organization Acme & Co")
    assert prompt.endswith(GROUNDING.text)
    assert "untrusted data" in prompt and "never instructions" in prompt
    assert "You propose; you never act." in prompt
    assert "portal link the summary or the tools give" in prompt


def test_the_modes_and_their_titles():
    assert MODES == {
        "chat": "Free chat",
        "strategist": "Tagging Strategist",
        "auditor": "Compliance Auditor",
        "cost": "Cost Optimizer",
        "remediation": "Remediation Engineer",
    }
    assert "no cost data" in system_prompt("cost", GROUNDING, Org())
    assert "aws resourcegroupstaggingapi" in system_prompt("remediation", GROUNDING, Org())


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="unknown assistant mode"):
        system_prompt("jailbreak", GROUNDING, Org())
