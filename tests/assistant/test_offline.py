"""The offline analyst as a user reads it: each mode's analysis of the small estate (figures,
keys, controls, dollars, commands), streamed in small pieces, the same every time; and the
question "which production instances lack an Owner tag?" answered with links to exactly the
resources the asking member may see."""

import copy
import re
from dataclasses import replace

import pytest
from django.urls import reverse

from assistant import chat
from assistant.backends.base import Done, Message, Request, TextDelta, ToolCallEvent, Usage
from assistant.backends.offline import OfflineAnalyst, missing_tag_question
from assistant.grounding import build_context, focus, named_frameworks
from assistant.tools import TOOLS, execute
from policies import services
from policies.services import builtin_library
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.assistant.conftest import membership_of
from tests.policies.test_rules import make_resources

pytestmark = pytest.mark.django_db
QUESTION = "Which production instances lack an Owner tag?"
LINK = re.compile(r"\[([^\]]+)\]\((/o/[^)]+)\)")


def ask(organization, user, mode, question="", *, tools=True):
    """The answer as streamed (joined) and the events, the analyst's tool call run as
    assistant.chat runs a model's: with the member's permissions, the result sent back."""
    membership = membership_of(organization, user)
    with tenant_scope(organization, membership=membership):
        facts = build_context(membership).facts
        request = Request(
            system="",
            messages=(Message("user", question),) if question else (),
            tools=TOOLS if tools else (),
            facts=facts,
            mode=mode,
        )
        analyst = OfflineAnalyst()
        events = list(analyst.stream(request))
        calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
        if calls:
            results = [
                Message("tool", execute(membership, call).content, tool_call_id=call.id)
                for call in calls
            ]
            turn = Message("assistant", "", tool_calls=tuple(calls))
            request = replace(request, messages=(*request.messages, turn, *results))
            events += list(analyst.stream(request))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    return text, events


def url_of(resource):
    return reverse(
        "resource-detail", kwargs={"org_slug": resource.organization.slug, "pk": resource.pk}
    )


def test_strategist_names_the_keys_to_standardise_first(org, estate, admin):
    text, _ = ask(org, admin, "strategist")

    assert "Of **9** live resources, **2** (22 %) carry no tag at all." in text
    first, second = re.findall(r"^\d\. (.*)$", text, re.MULTILINE)[:2]
    assert first.startswith("`Owner` — on 2 of 9 resources (22.2 %)")
    assert "has 8 open findings (missing 7, wrong case 1)" in first
    assert second.startswith("`Environment` — on 7 of 9 resources (77.8 %)")
    assert "- `Environment`: rename `environment` (1)" in text
    assert "- `Owner`: rename `owner` (1)" in text
    assert "| `CostCenter` | 1 | 11.1 % | 1 |" in text


def test_auditor_reports_failing_controls_with_evidence(org, estate, viewer):
    text, _ = ask(org, viewer, "auditor")

    assert "Overall: **0.0 % (0 of 6 compliant)**." in text
    assert "2 of 2 controls failing." in text
    evidence = text.split("**BL-1 fails** — evidence:")[1].split("**BL-2")[0]
    assert "[6 open findings](/o/acme/findings/?rule=owner-required&status=open)" in evidence
    assert "(missing 5, wrong case 1)" in evidence
    assert {name for name, _ in LINK.findall(evidence)} == {
        "owner-required",
        "6 open findings",
        "pay-api",
        "pay-batch",
        "pay-web",
    }
    assert "plat-" not in text


def test_cost_optimizer_shows_untagged_dollars_by_team(org, estate, costs, admin):
    text, _ = ask(org, admin, "cost")

    assert "- **Untagged dollars** (resources failing a rule): **$165.00**" in text
    assert "- Allocated (compliant resources): **$60.00** (26.7 % of spend)" in text
    assert "| platform | $160.00 | $100.00 | 37.5 % |" in text
    assert "| payments | $65.00 | $65.00 | 0.0 % |" in text
    assert "| 111111111111 (payments-prod) | $65.00 | $65.00 | 0.0 % |" in text


def test_cost_optimizer_says_plainly_when_there_is_no_cost_data(org, estate, admin):
    text, _ = ask(org, admin, "cost")

    assert "**There is no cost data**" in text
    assert "$" not in text


def test_remediation_gives_the_fixes_and_commands_to_copy(org, estate, viewer):
    text, _ = ask(org, viewer, "remediation")

    assert "### 1. [owner-required](/o/acme/policies/rules/owner-required/) (high): 6 open" in text
    assert "Fix: add tag Owner; rename tag owner to Owner." in text
    assert "TagSense has run nothing" in text
    [first_block, second_block] = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
    arn = estate["resources"]["pay-api"].arn
    assert (
        "aws resourcegroupstaggingapi tag-resources --region eu-west-1 \\\n"
        f"  --resource-arn-list {arn} {estate['resources']['pay-batch'].arn} \\\n"
        "  --tags 'Owner=<owner>'"
    ) in first_block
    assert (
        "aws resourcegroupstaggingapi untag-resources --region eu-west-1 \\\n"
        f"  --resource-arn-list {estate['resources']['pay-web'].arn} \\\n"
        "  --tag-keys owner"
    ) in first_block
    assert "--tag-keys environment" in second_block
    assert "3 more: [all open findings of owner-required]" in text


def test_remediation_commands_quote_what_came_from_aws(org, estate, viewer):
    membership = membership_of(org, viewer)
    with tenant_scope(org, membership=membership):
        facts = copy.deepcopy(build_context(membership).facts)
    example = facts["top_violations"][0]["examples"][2]
    example["found_key"], example["arn"] = "$(curl evil)", "arn:aws:ec2:x;rm -rf ~"
    text = OfflineAnalyst().answer(Request(system="", messages=(), facts=facts, mode="remediation"))

    assert "--tag-keys '$(curl evil)'" in text
    assert "'arn:aws:ec2:x;rm -rf ~'" in text


def test_the_answer_streams_in_small_pieces_and_is_deterministic(org, estate, admin):
    text, events = ask(org, admin, "chat")
    again, _ = ask(org, admin, "chat")

    assert text == again
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 20 and all(len(d.split()) <= 4 for d in deltas)
    assert events[-2:] == [Usage(0, 0), Done("end")]
    assert "Compliance: **11.1 % (1 of 9 compliant)**." in text


@pytest.mark.parametrize(
    "user, expected",
    [
        ("admin", {"pay-api", "pay-worker", "plat-api"}),
        ("viewer", {"pay-api", "pay-worker"}),
        ("editor", {"plat-api"}),
    ],
)
def test_the_example_question_is_answered_with_links_to_exactly_those_resources(
    org, estate, request, user, expected
):
    text, events = ask(org, request.getfixturevalue(user), "chat", QUESTION)

    [call] = [e.call for e in events if isinstance(e, ToolCallEvent)]  # one tool call, as a model
    assert call.name == "query_inventory" and call.arguments["missing_tag"] == "Owner"
    resources = estate["resources"]
    assert f"**{len(expected)} production instances lack the `Owner` tag:**" in text
    assert set(LINK.findall(text)) == {(name, url_of(resources[name])) for name in expected}


def test_the_question_without_the_tools_offered_gets_the_overview(org, estate, admin):
    text, _ = ask(org, admin, "chat", QUESTION, tools=False)

    assert "lack the" not in text and "Compliance: **11.1 %" in text


def test_the_question_is_read_for_type_environment_and_key():
    assert missing_tag_question(QUESTION)["arguments"] == {
        "missing_tag": "Owner",
        "resource_type": "ec2:instance",
        "tag": "Environment=prod",
        "limit": 50,
    }
    assert missing_tag_question("which buckets are missing the CostCenter tag")["arguments"] == {
        "missing_tag": "CostCenter",
        "resource_type": "s3:bucket",
        "limit": 50,
    }
    assert missing_tag_question("what is our compliance score?") is None


BUILTIN = [
    ("soc2", "SOC 2 Trust Services Criteria", ["SOC 2", "soc2", "SOC-2"]),
    ("pci-dss-4.0", "PCI DSS", ["PCI DSS", "PCI-DSS v4", "pci dss"]),
    ("hipaa", "HIPAA Security Rule", ["HIPAA", "hipaa"]),
    ("iso-27001-2022", "ISO/IEC 27001", ["ISO 27001", "ISO/IEC 27001:2022", "iso27001"]),
    ("internal-baseline", "Internal baseline", ["the internal baseline"]),
]


@pytest.mark.parametrize("slug, name, spellings", BUILTIN, ids=[b[0] for b in BUILTIN])
def test_a_question_naming_one_framework_is_focused_on_it_alone(slug, name, spellings):

    frameworks = [{"slug": s, "name": n} for s, n, _ in BUILTIN]
    for spelling in spellings:
        assert named_frameworks(f"Where do we stand on {spelling} today?", frameworks) == [slug]
    assert named_frameworks("Where do we stand?", frameworks) == []
    assert named_frameworks("Is our ISO process fine? And the SOC?", frameworks) == []


def test_the_policy_library_frameworks_are_each_recognised_by_name():

    library = builtin_library()
    frameworks = [{"slug": key, "name": fw.name} for key, fw in library.items()]
    assert len(frameworks) >= 4
    for framework in frameworks:
        asked = f"How compliant are we with {framework['name']}?"
        assert named_frameworks(asked, frameworks) == [framework["slug"]]


def test_the_auditor_asked_about_soc2_answers_about_soc2_only(org, admin):

    make_resources(org, tags_list=[{"Environment": "qa"}, {}])
    membership = membership_of(org, admin)
    with tenant_scope(org, membership=membership, actor=Actor.system("test")):
        for key in sorted(services.builtin_library()):
            services.enable_framework(org, key)
        grounding = build_context(membership)
        question = "How do we stand on SOC 2?"
        focused = focus(grounding, question, budget_tokens=3000)
    assert "PCI DSS" in grounding.text and "PCI DSS" not in focused.text
    request = Request(
        system="", messages=(Message("user", question),), facts=focused.facts, mode="auditor"
    )
    text = "".join(e.text for e in OfflineAnalyst().stream(request) if isinstance(e, TextDelta))
    assert "SOC 2 Trust Services Criteria" in text and "Focused on SOC 2" in text
    for other in ("PCI DSS", "HIPAA", "ISO/IEC 27001"):
        assert other not in text


def test_a_conversation_about_pci_dss_is_grounded_on_pci_dss_alone(org, admin):
    """Through assistant.chat as the stream view runs it: the prompt and the facts."""

    membership = membership_of(org, admin)
    with tenant_scope(org, membership=membership, actor=Actor.system("test")):
        for key in sorted(services.builtin_library()):
            services.enable_framework(org, key)
        _, pending = chat.ask(membership, "Which PCI DSS controls fail?", mode="auditor")
        prepared = chat.prepare(membership, pending.pk)
    names = [f["name"] for f in prepared.request.facts["compliance"]["frameworks"]]
    assert names == ["PCI DSS"]
    assert "PCI DSS" in prepared.request.system
    assert "SOC 2" not in prepared.request.system and "HIPAA" not in prepared.request.system
