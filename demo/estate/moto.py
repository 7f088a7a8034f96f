"""moto's standalone server: started from this venv, stopped, reset; and the check that an
endpoint is a moto server's, never real AWS."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _log_tail(proc: subprocess.Popen, limit: int = 2000) -> str:
    log = getattr(proc, "tagsense_log", None)
    if log is None:
        return ""
    log.flush()
    log.seek(0)
    return log.read().decode("utf-8", "replace")[-limit:]


def start_moto_server(
    port: int | None = None,
    host: str = "127.0.0.1",
    *,
    load_default_amis: bool = False,
    timeout: float = 30.0,
) -> tuple[subprocess.Popen, str]:
    """Start moto_server (from this interpreter's venv) and wait until it answers.

    Returns the process and the endpoint URL. The default AMIs are off unless asked for: moto
    ignores DescribeSnapshots' OwnerIds, so their snapshots would show up as every account's own.
    The server's log goes to an unnamed temporary file (a pipe nobody reads would fill and stall
    it); its tail is in the error if the server dies or does not answer in time.
    """
    executable = Path(sys.executable).parent / "moto_server"
    if not executable.exists():
        raise FileNotFoundError(f"{executable} not found: install moto[server] in this venv")
    port = _free_port(host) if port is None else port
    env = dict(os.environ)
    env["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "true" if load_default_amis else "false"
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server; closed in stop
    proc = subprocess.Popen(  # noqa: S603 - our own venv's console script, fixed arguments
        [str(executable), "-H", host, "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    proc.tagsense_log = log  # type: ignore[attr-defined]
    endpoint = f"http://{host}:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            tail = _log_tail(proc)
            log.close()
            raise RuntimeError(f"moto_server exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return proc, endpoint
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            tail = _log_tail(proc)
            stop_moto_server(proc)
            raise TimeoutError(f"moto_server did not answer on {endpoint} in {timeout}s:\n{tail}")
        time.sleep(0.1)


def stop_moto_server(proc: subprocess.Popen) -> None:
    """Stop a server started by start_moto_server (terminate, then kill after 10 s)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    log = getattr(proc, "tagsense_log", None)
    if log is not None:
        log.close()


def reset_moto(endpoint_url: str) -> None:
    """Forget everything the moto server holds (its POST /moto-api/reset)."""
    check_endpoint(endpoint_url)
    url = f"{endpoint_url.rstrip('/')}/moto-api/reset"
    request = urllib.request.Request(url, method="POST")  # noqa: S310 - http(s), checked above
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310
        pass


def check_endpoint(endpoint_url: str) -> None:
    parsed = urlparse(endpoint_url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"not an endpoint URL: {endpoint_url!r}")
    if parsed.hostname.endswith(("amazonaws.com", "amazonaws.com.cn", "api.aws")):
        raise ValueError("seed_estate only seeds a moto server, never real AWS")
