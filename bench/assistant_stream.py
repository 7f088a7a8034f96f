"""Assistant streaming benchmark: what the portal adds to time-to-first-token, and how many
answers it streams at once.

Starts a local OpenAI-compatible streaming server (tests/assistant/llm_servers.py, the one the
tests use) and the portal under gunicorn (one process, gthread workers), against the bench
database holding one organization with --resources resources, the four built-in frameworks
enabled and evaluated, and the local server configured as its provider. Then:

(a) time to first token calling the local server directly through the openai SDK, --samples
    times, one at a time;
(b) time to first token through the portal, as the panel does it: POST the question, GET the
    answer's server-sent events until the first `token` event, --samples times (each question
    differs, so none is answered from the cache); the difference with (a) is what the portal
    adds (the grounding, the prompt, the audit event, the stream);
(c) --concurrent answers at once through the portal, each --words words of Markdown
    (paragraphs of 40 words, then a list and a code block) --delay seconds apart: how many
    complete with every word, the wall time, and the CPU the portal's process used.

    .venv/bin/python bench/assistant_stream.py --resources 2000 --samples 20 --concurrent 24
    .venv/bin/python bench/assistant_stream.py --samples 5 --concurrent 24 --words 600 --delay 0.01
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagsense.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tagsense_bench")

import argparse  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

_setup.configure()

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.utils import timezone  # noqa: E402

from tests.assistant.llm_servers import OpenAIServer, Reply  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PORTAL_LOG = "/tmp/tagsense-bench-portal.log"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(resources: int, llm_url: str):
    """An organization with an owner, `resources` instances, the built-in frameworks evaluated,
    and the local server as its provider. Returns (organization, user, password)."""
    from accounts.models import Membership, Organization
    from accounts.roles import Role
    from assistant import services as assistant_services
    from assistant.models import Provider
    from inventory.models import AwsAccount, Resource
    from policies import evaluation
    from policies import services as policy_services
    from tagsense.tenancy.db import tenant_scope

    slug = f"bench-assistant-{uuid.uuid4().hex[:6]}"
    organization = Organization.objects.create(slug=slug, name="Bench assistant")
    password = uuid.uuid4().hex
    user = get_user_model().objects.create_user(email=f"{slug}@bench.example", password=password)
    now = timezone.now()
    with tenant_scope(organization):
        Membership.objects.create(
            organization=organization, user=user, role=Role.OWNER, accepted_at=now
        )
        account = AwsAccount.objects.create(organization=organization, account_id="210987654321")
        Resource.objects.bulk_create(
            Resource(
                organization=organization,
                account=account,
                region="eu-west-1",
                arn=f"arn:aws:ec2:eu-west-1:210987654321:instance/i-{i:017x}",
                resource_type="ec2:instance",
                resource_id=f"i-{i:017x}",
                name=f"web-{i}",
                tags={"Environment": ("prod", "dev")[i % 2], **({"Owner": "a"} if i % 3 else {})},
                fingerprint=str(i),
                first_seen=now,
                last_written=now,
            )  # fmt: skip
            for i in range(resources)
        )
        for framework_id in sorted(policy_services.builtin_library()):
            policy_services.enable_framework(organization, framework_id)
        evaluation.evaluate_organization(organization, trigger="bench")
        assistant_services.save_provider(
            organization, None, api_key="", name="local", kind=Provider.COMPATIBLE,
            model="local-model", base_url=f"{llm_url}/v1", position=0, enabled=True,
            timeout_seconds=30,
        )  # fmt: skip
    from django.db import connection

    with connection.cursor() as cursor:  # as autovacuum would after the bulk load (it is off here)
        for table in ("inventory_resource", "policies_finding", "audit_auditevent"):
            cursor.execute(f"ANALYZE {table}")
    return organization, user, password


def start_portal(port: int) -> subprocess.Popen:
    # Persistent database connections, as production runs (production.py: 60 s).
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tagsense.settings.test",
           "DATABASE_CONN_MAX_AGE": "60"}  # fmt: skip
    log = open(PORTAL_LOG, "w")  # noqa: SIM115 - the portal writes it until it stops
    process = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "tagsense.wsgi:application", "-k", "gthread",
         "--threads", "64", "-w", "1", "-b", f"127.0.0.1:{port}", "--timeout", "120"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    for _ in range(200):
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            return process
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    sys.exit(Path(PORTAL_LOG).read_text()[-3000:])


def login(base: str, email: str, password: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    form = {"login": email, "password": password, "csrfmiddlewaretoken": token}
    session.post(
        f"{base}/accounts/login/", data=form, headers={"Referer": f"{base}/accounts/login/"}
    )
    return session


def direct_ttft(server: OpenAIServer) -> float:
    import openai

    client = openai.OpenAI(api_key="none", base_url=f"{server.url}/v1", max_retries=0)
    server.script.append(Reply(words=["Hello ", "there."]))
    start = time.perf_counter()
    stream = client.chat.completions.create(
        model="local-model", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            elapsed = time.perf_counter() - start
            break
    stream.close()
    return elapsed


def portal_answer(session, base, slug, question) -> tuple[float, int, str]:
    """(seconds to the first token event, token events, the last event's name)."""
    csrf = session.cookies.get("csrftoken")
    start = time.perf_counter()
    asked = session.post(f"{base}/o/{slug}/assistant/ask/", data={"question": question},
                         headers={"X-CSRFToken": csrf, "Referer": base})  # fmt: skip
    found = re.search(r'sse-connect="([^"]+)"', asked.text)
    if found is None:
        sys.exit(f"the question was refused ({asked.status_code} {asked.url}): {asked.text[:500]}")
    url = found.group(1)
    first, tokens, last = None, 0, ""
    with session.get(base + url, stream=True, timeout=60) as response:
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                last = line[7:]
                if last == "token":
                    tokens += 1
                    first = first or time.perf_counter() - start
    return first, tokens, last


def markdown_words(count: int) -> list[str]:
    """`count` words of an answer as a model streams it: paragraphs of 40 words with bold and
    inline code, then a list and a fenced command (one delta a word, as most models send)."""
    text, index = [], 0
    while index < count:
        words = [f"**w{index + i}**" if i % 9 == 0 else f"w{index + i}" for i in range(40)]
        words[20] = "`Owner`"
        text.append(" ".join(words))
        index += 40
    text.append("\n".join(f"- item{i} lacks an `Owner` tag" for i in range(5)))
    text.append("```bash\naws ec2 create-tags --resources i-1 --tags Key=Owner,Value=x\n```")
    whole = "\n\n".join(text) + "\n"
    return [word + " " for word in whole.split(" ")]


def process_cpu(pid: int) -> float:
    """CPU seconds (user and system) the process and its children (gunicorn's workers) have
    used, all their threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(process_cpu(int(child)) for child in children)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=24)
    parser.add_argument("--words", type=int, default=40, help="words in each concurrent answer")
    parser.add_argument("--delay", type=float, default=0.025, help="seconds between words")
    args = parser.parse_args()
    _setup.print_machine()
    print(f"database: {settings.DATABASES['default']['NAME']}")

    server = OpenAIServer()
    organization, user, password = seed(args.resources, server.url)
    port = free_port()
    portal = start_portal(port)
    base = f"http://127.0.0.1:{port}"
    try:
        session = login(base, user.email, password)
        for _ in range(3):  # warm both paths (imports, connections)
            direct_ttft(server)
            server.script.append(Reply(words=["Warm."]))
            portal_answer(session, base, organization.slug, f"warm {uuid.uuid4().hex}")

        direct = [direct_ttft(server) for _ in range(args.samples)]
        through = []
        for i in range(args.samples):
            server.script.append(Reply(words=["Hello ", "there."]))
            first, _, last = portal_answer(session, base, organization.slug, f"question {i}")
            assert last == "done", last
            through.append(first)
        med_direct, med_portal = statistics.median(direct), statistics.median(through)
        print(f"\n(a) direct to the local server: median {med_direct * 1000:.1f} ms "
              f"(min {min(direct) * 1000:.1f}, max {max(direct) * 1000:.1f})")  # fmt: skip
        print(f"(b) through the portal (ask + stream): median {med_portal * 1000:.1f} ms "
              f"(min {min(through) * 1000:.1f}, max {max(through) * 1000:.1f})")  # fmt: skip
        print(
            f"    added by the portal: {(med_portal - med_direct) * 1000:.1f} ms (target < 50 ms)"
        )

        words = markdown_words(args.words)
        for _ in range(args.concurrent):
            server.script.append(Reply(words=words, delay=args.delay))
        cpu_before = process_cpu(portal.pid)
        results: list = [None] * args.concurrent

        def one(index: int) -> None:
            own = requests.Session()  # the signed-in session's cookies (sign-in is rate-limited)
            own.cookies.update(session.cookies)
            try:
                results[index] = portal_answer(own, base, organization.slug, f"at once {index}")
            except SystemExit as refused:
                results[index] = ("refused", 0, str(refused))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(args.concurrent)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
        cpu = process_cpu(portal.pid) - cpu_before
        complete = sum(1 for r in results if r and r[2] == "done" and r[1] >= len(words))
        for index, r in enumerate(results):
            if not (r and r[2] == "done" and r[1] >= len(words)):
                print(f"    answer {index}: {r} (the portal's log: {PORTAL_LOG})")
        print(f"(c) {args.concurrent} answers of {len(words)} words at once: {complete} complete "
              f"with every word, {wall:.2f} s wall (each streams {len(words) * args.delay:.1f} s); "
              f"the portal's process used {cpu:.2f} CPU s, {cpu / args.concurrent * 1000:.0f} ms "
              "an answer")  # fmt: skip
    finally:
        portal.terminate()
        portal.wait(timeout=30)
        server.stop()


if __name__ == "__main__":
    main()
