"""A real OpenID provider for the tests: node's oidc-provider (tests/oidc_provider/provider.js),
started as a child process on 127.0.0.1, and a browser-like `requests` driver for its forms.

`npm ci` installs the provider from the committed package-lock.json when node_modules is missing
(a clean clone, CI). Without node or npm the tests fail with a message saying so: they are never
skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

PROVIDER_DIR = Path(__file__).parent / "oidc_provider"
START_TIMEOUT = 30


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(
            f"`{tool}` was not found: the OIDC sign-in tests run a real OpenID provider on "
            "Node.js (tests/oidc_provider). Install Node.js 20 or later with npm.",
            pytrace=False,
        )
    return path


def install() -> None:
    """`npm ci` from the lock file, once, when node_modules is missing."""
    if (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    npm = _require("npm")
    result = subprocess.run(  # noqa: S603 (fixed arguments)
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=PROVIDER_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"npm ci in {PROVIDER_DIR} failed:\n{result.stderr[-2000:]}", pytrace=False)


@dataclass
class OpenIDProvider:
    issuer: str
    process: subprocess.Popen
    output: list[str] = field(default_factory=list)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start(clients: list[dict[str, Any]], accounts: dict[str, dict[str, Any]]) -> OpenIDProvider:
    """Run provider.js with these clients and accounts; returns once it listens."""
    install()
    node = _require("node")
    env = {**os.environ, "OIDC_TEST_CONFIG": json.dumps({"clients": clients, "accounts": accounts})}
    process = subprocess.Popen(  # noqa: S603 (fixed arguments)
        [node, str(PROVIDER_DIR / "provider.js")],
        cwd=PROVIDER_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ready = threading.Event()
    found: dict[str, str] = {}
    output: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if line.startswith("listening "):
                found["issuer"] = line.split(" ", 1)[1].strip()
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(START_TIMEOUT) or "issuer" not in found:
        process.kill()
        pytest.fail("the OpenID provider did not start:\n" + "".join(output), pytrace=False)
    return OpenIDProvider(issuer=found["issuer"], process=process, output=output)


# --- a browser made of requests --------------------------------------------------------------

_FORM = re.compile(r"<form\b[^>]*\baction=\"([^\"]*)\"[^>]*>(.*?)</form>", re.S | re.I)
_INPUT = re.compile(r"<input\b[^>]*>", re.I)
_ATTR = re.compile(r"(\w[\w-]*)=\"([^\"]*)\"")


def form(response: requests.Response, index: int = 0) -> tuple[str, dict[str, str]]:
    """A form's absolute action and its hidden and prefilled fields."""
    forms = _FORM.findall(response.text)
    assert forms, f"no form on {response.url}: {response.text[:500]}"
    action, body = forms[index]
    fields = {}
    for tag in _INPUT.findall(body):
        attrs = dict(_ATTR.findall(tag))
        if "name" in attrs:
            fields[attrs["name"]] = unescape(attrs.get("value", ""))
    return urljoin(response.url, unescape(action) or response.url), fields


def post_form(
    session: requests.Session, response: requests.Response, index: int = 0, **values: str
) -> requests.Response:
    action, fields = form(response, index)
    fields.update(values)
    return session.post(action, data=fields, timeout=30)


# --- a discovery document alone, for tests that only save a configuration -------------------

_discovery: dict[str, str] = {}


def shared_discovery_issuer() -> str:
    """An issuer on 127.0.0.1 serving only its discovery document (a thread, started once)."""
    if "issuer" in _discovery:
        return _discovery["issuer"]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            issuer = _discovery["issuer"]
            if self.path != "/.well-known/openid-configuration":
                self.send_error(404)
                return
            body = json.dumps(
                {
                    "issuer": issuer,
                    "authorization_endpoint": f"{issuer}/auth",
                    "token_endpoint": f"{issuer}/token",
                    "userinfo_endpoint": f"{issuer}/me",
                    "jwks_uri": f"{issuer}/jwks",
                    "response_types_supported": ["code"],
                    "code_challenge_methods_supported": ["S256"],
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    _discovery["issuer"] = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return _discovery["issuer"]
