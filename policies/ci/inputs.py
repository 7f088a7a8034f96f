"""What a document sent to the CI check is when it is a Terraform output other than a plan.
Standard library only: the command-line client (cli.py) refuses such a file before uploading
it, and the server (plan.py, cloudformation.py) says the same."""

from __future__ import annotations

import json

PLAN_COMMAND = "run `terraform show -json plan.tfplan` on the saved plan file and send its output"


def not_a_plan(data: bytes | str) -> str | None:
    """A binary plan file (`terraform plan -out`, a zip archive) or a `terraform plan -json`
    event stream, named with the command to run instead; None for anything else."""
    head = data[:65536]
    if isinstance(head, str):
        head = head.encode("utf-8", "replace")
    if head.startswith(b"PK\x03\x04"):
        return f"this is a binary plan file (terraform plan -out), not its JSON; {PLAN_COMMAND}"
    first = head.lstrip().split(b"\n", 1)[0]
    if first.startswith(b"{") and b'"@level"' in first:
        try:
            event = json.loads(first)
        except ValueError:
            return None
        if isinstance(event, dict) and "@message" in event and "type" in event:
            return (
                "this is a `terraform plan -json` event stream (log messages), not a plan; "
                + PLAN_COMMAND
            )
    return None
