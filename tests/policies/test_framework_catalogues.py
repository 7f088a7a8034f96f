"""Every control a built-in framework cites exists in the publisher's catalogue with the title
the catalogue gives it (tests/policies/catalogues.py, copied from the sources named there), and
every framework file says what it was checked against and when."""

import re

import pytest

from policies.engine.spec import DATA_DIR
from policies.frameworks import builtin_frameworks
from tests.policies.catalogues import CATALOGUES, SOC2_POINTS_OF_FOCUS

# Built-in frameworks whose catalogue is not copied here yet, and why.
NOT_PINNED = {"pci-dss-4.0": "checked requirement by requirement in its file; not copied here"}


def _normal(text: str) -> str:
    return " ".join(text.replace("\u2019", "'").split())


def test_every_built_in_framework_is_pinned_to_a_catalogue():
    assert set(builtin_frameworks()) == set(CATALOGUES) | set(NOT_PINNED)


@pytest.mark.parametrize("framework_id", sorted(CATALOGUES))
def test_every_control_is_in_the_official_catalogue_with_its_title(framework_id):
    catalogue = CATALOGUES[framework_id]
    framework = builtin_frameworks()[framework_id]
    problems = []
    for control in framework.controls:
        if control.id not in catalogue:
            problems.append(f"{control.id}: not in the catalogue")
        elif catalogue[control.id] is None:
            problems.append(f"{control.id}: its text is not recorded (with its source) yet")
        elif _normal(control.title) != _normal(catalogue[control.id]):
            problems.append(f"{control.id}: {control.title!r} != {catalogue[control.id]!r}")
    assert not problems, "\n".join(problems)


def test_the_soc2_rationales_quote_real_points_of_focus():
    for control in builtin_frameworks()["soc2"].controls:
        quoted = re.findall(r'"([^"]+)"', control.rationale)
        known = {p.lower() for p in SOC2_POINTS_OF_FOCUS.get(control.id, [])}
        assert {q.lower() for q in quoted} <= known, (control.id, quoted)


@pytest.mark.parametrize("path", sorted((DATA_DIR / "frameworks").glob("*.yaml")), ids=str)
def test_each_framework_file_names_its_sources_and_the_date_checked(path):
    header = "".join(line for line in path.read_text().splitlines(True) if line.startswith("#"))
    assert "Checked against" in header, path.name
    if path.stem in CATALOGUES:
        assert re.search(r"Checked on \d{4}-\d{2}-\d{2}", header), path.name
