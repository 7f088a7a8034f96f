"""Every audit action an app registers is recorded somewhere: call sites pass the registered
AuditAction object (audit.record() refuses a string), so an action nobody records would be a
name the audit page promises and no code writes."""

import ast
from pathlib import Path

from audit import registry

ROOT = Path(__file__).resolve().parents[2]
APPS = (
    "tagsense",
    "audit",
    "accounts",
    "inventory",
    "policies",
    "evidence",
    "assistant",
    "dashboard",
    "demo",
)

# Registered but no longer written, kept so that older chains still read with a description.
HISTORICAL = {
    "audit.export": "written before every download was audited as export.download (536f5b4)",
}


def _constants() -> dict[str, str]:
    """CONSTANT -> action name, from every app's audit_events.py."""
    found = {}
    for app in APPS:
        path = ROOT / app / "audit_events.py"
        if not path.exists():
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                call = node.value
                if getattr(call.func, "id", "") == "register" and call.args:
                    found[node.targets[0].id] = call.args[0].value
    return found


def _names_used_in_code() -> set[str]:
    used = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if path.name == "audit_events.py" or "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute):
                    used.add(node.attr)
                elif isinstance(node, ast.Name | ast.alias):
                    used.add(node.id if isinstance(node, ast.Name) else node.name)
    return used


def test_every_registered_action_has_a_call_site():
    constants = _constants()
    assert len(constants) == len(registry.all_actions())
    used = _names_used_in_code()
    unused = sorted(name for constant, name in constants.items() if constant not in used)
    assert [name for name in unused if name not in HISTORICAL] == []
    # An action listed as historical that is written again belongs off the list.
    assert sorted(HISTORICAL) == unused


def test_no_call_site_names_an_action_by_a_string():
    offenders = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                first = node.args[0]
                if name == "record" and isinstance(first, ast.Constant):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
