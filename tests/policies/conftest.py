"""Shared fixtures of the policy tests."""

import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture
def terraform_mirror() -> Path:
    """The local hashicorp/aws provider mirror terraform plans with offline. Missing terraform
    or mirror is a failure that says what to install, never a skip: the CI machine has both."""
    mirror = Path(os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins"))
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not on PATH: install it to run the CI-check tests")
    if not mirror.is_dir():
        pytest.fail(
            f"no provider mirror at {mirror}: set TF_PLUGIN_DIR to the hashicorp/aws mirror"
        )
    return mirror
