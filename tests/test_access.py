"""Access control against the real stack: hashed, revocable keys; owners isolated with
404; operators; short-lived presigned downloads; CSRF; rate limits, quotas and
idempotent submission."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
import requests
from PIL import Image

from tests.media_factory import grey_photo, grey_video
from tests.stack import ROOT
from tintype.web.limits import RateLimiter


def _png(path, seed: int = 0):
    Image.fromarray(np.roll(grey_photo(64, 48), seed, axis=1)).save(path)
    return path


def _post(client: requests.Session, stack, path, headers=None, **form):
    return client.post(f"{stack.base}/api/v1/jobs", files={"file": (path.name, path.read_bytes())},
                       data={"operations": "colorize", **form}, headers=headers or {}, timeout=60)


@pytest.mark.integration
@pytest.mark.reliability
def test_keys_are_stored_hashed_and_can_be_revoked(stack, reliability):
    reliability.injected("requests with no key, a malformed key, the right key id with a wrong secret, Basic auth, "
                         "and a revoked key")
    token = stack.new_key("keyholder")
    key_id = token.split("_")[1]
    client = stack.client(token)
    assert client.get(f"{stack.base}/api/v1/jobs", timeout=10).status_code == 200
    rows = stack.db("SELECT id, owner, role, token_sha256 FROM api_keys WHERE id = :id", id=key_id)
    assert rows and rows[0].owner == "keyholder" and rows[0].role == "user"
    secret = token.split("_", 2)[2]  # tt_<id>_<secret>; the secret itself may contain "_"
    dumped = " ".join(str(v) for v in stack.db("SELECT * FROM api_keys")[0]) + str(rows)
    assert secret not in dumped and secret[:12] not in dumped

    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")  # right id, wrong secret
    for headers in ({}, {"Authorization": f"Bearer {wrong}"}, {"Authorization": "Bearer nonsense"},
                    {"Authorization": f"Basic {token}"}):
        refused = requests.get(f"{stack.base}/api/v1/jobs", headers=headers, timeout=10)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")

    done = subprocess.run([sys.executable, "-m", "tintype.cli", "keys", "revoke", key_id], env=stack.env, cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert client.get(f"{stack.base}/api/v1/jobs", timeout=10).status_code == 401
    listed = subprocess.run([sys.executable, "-m", "tintype.cli", "keys", "list"], env=stack.env, cwd=ROOT,
                            capture_output=True, text=True).stdout
    assert re.search(rf"{key_id}\s+keyholder\s+user\s+revoked", listed) and secret not in listed
    reliability.saw("each answered 401 with WWW-Authenticate: Bearer; revocation took effect on the next request")
    reliability.check("the database row holds the key id and a SHA-256 only, no part of the secret")


@pytest.mark.integration
@pytest.mark.reliability
def test_other_owners_get_404_for_everything_and_operators_see_all(stack, tmp_path, reliability):
    reliability.injected("owner B asks for owner A's job, result, input, preview, masks and page, cancels it, "
                         "lists A's jobs")
    alice, bob = stack.client(stack.new_key("alice")), stack.client(stack.new_key("bob"))
    operator = stack.client(stack.new_key("ops", "--operator"))
    job_id = _post(alice, stack, _png(tmp_path / "a.png")).json()["id"]
    deadline = time.monotonic() + 120
    while alice.get(f"{stack.base}/api/v1/jobs/{job_id}", timeout=10).json()["status"] != "succeeded":
        assert time.monotonic() < deadline, stack.tail()
        time.sleep(0.3)
    api = f"{stack.base}/api/v1/jobs/{job_id}"
    for url in (api, f"{api}/result", f"{api}/input", f"{api}/preview", f"{api}/masks", f"{stack.base}/jobs/{job_id}"):
        assert bob.get(url, timeout=10, allow_redirects=False).status_code == 404, url
    assert bob.delete(api, timeout=10).status_code == 404
    assert job_id not in [j["id"] for j in bob.get(f"{stack.base}/api/v1/jobs", timeout=10).json()["items"]]
    assert bob.get(f"{stack.base}/api/v1/jobs", params={"owner": "alice"}, timeout=10).status_code == 403

    assert alice.get(api, timeout=10).json()["status"] == "succeeded"  # untouched by bob's attempts
    mine = alice.get(f"{stack.base}/api/v1/jobs", timeout=10).json()
    assert {j["owner"] for j in mine["items"]} == {"alice"} and job_id in [j["id"] for j in mine["items"]]
    seen = operator.get(f"{stack.base}/api/v1/jobs", params={"owner": "alice"}, timeout=10).json()
    assert [j["id"] for j in seen["items"]] == [job_id]
    assert operator.get(api, timeout=10).json()["owner"] == "alice"

    redirect = alice.get(f"{api}/result", timeout=10, allow_redirects=False)
    assert redirect.status_code == 302
    query = parse_qs(urlparse(redirect.headers["Location"]).query)
    assert int(query["X-Amz-Expires"][0]) <= 300  # short-lived: PRESIGN_SECONDS
    assert requests.get(redirect.headers["Location"], timeout=10).status_code == 200
    reliability.saw("404 for every read and the cancel, 403 for the owner filter; A's job untouched")
    reliability.check(f"operators see all; downloads are presigned for {query['X-Amz-Expires'][0]} s "
                      "(the test S3 server does not enforce expiry, real S3 does)")


@pytest.mark.integration
@pytest.mark.reliability
def test_browser_session_needs_the_csrf_token(stack, tmp_path, reliability):
    reliability.injected("a signed-in browser session posts without the page's CSRF token, and from a "
                         "foreign Origin")
    token = stack.new_key("browser")
    browser = requests.Session()
    assert browser.get(f"{stack.base}/jobs", timeout=10).url.startswith(f"{stack.base}/login")
    login = browser.get(f"{stack.base}/login", timeout=10).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
    assert browser.post(f"{stack.base}/login", data={"api_key": token}, timeout=10).status_code == 403  # no token
    signed_in = browser.post(f"{stack.base}/login", data={"api_key": token, "csrf_token": csrf}, timeout=10)
    assert signed_in.status_code == 200 and "browser" in signed_in.text
    page_token = re.search(r'name="csrf-token" content="([^"]+)"', signed_in.text).group(1)
    photo = _png(tmp_path / "p.png")
    forged = _post(browser, stack, photo)
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "csrf_failed"
    cross_site = _post(browser, stack, photo, headers={"X-CSRF-Token": page_token, "Origin": "https://evil.example"})
    assert cross_site.status_code == 403
    accepted = _post(browser, stack, photo, headers={"X-CSRF-Token": page_token})
    assert accepted.status_code == 202 and accepted.json()["owner"] == "browser"
    reliability.saw("both refused with 403 csrf_failed; the same post with the token was accepted")
    reliability.check("sign-in itself needs the token; Bearer API clients need none")


@pytest.mark.integration
@pytest.mark.reliability
def test_rate_limit_and_quotas_answer_429_with_retry_after(stack, tmp_path, reliability):
    reliability.injected("7 requests from a key limited to 5/min; a 3rd job from an owner allowed 2 in flight; "
                         "an upload over an owner's bytes-per-day")
    limited = stack.client(stack.new_key("chatty", "--per-minute", "5"))
    codes = [limited.get(f"{stack.base}/api/v1/jobs", timeout=10) for _ in range(7)]
    assert [r.status_code for r in codes[:5]] == [200] * 5
    assert codes[5].status_code == 429 and 1 <= int(codes[5].headers["Retry-After"]) <= 61
    other = stack.client(stack.new_key("quiet"))
    assert other.get(f"{stack.base}/api/v1/jobs", timeout=10).status_code == 200  # per key, not global

    busy = stack.client(stack.new_key("busy", "--jobs-in-flight", "2"))
    video = grey_video(tmp_path / "v.mp4", frames=96, audio=False)
    first = [_post(busy, stack, video).status_code for _ in range(2)]
    third = _post(busy, stack, video)
    assert first == [202, 202]
    assert third.status_code == 429 and third.json()["error"]["code"] == "quota_jobs_in_flight"
    assert int(third.headers["Retry-After"]) > 0
    assert stack.db("SELECT count(*) FROM jobs WHERE owner = 'busy'")[0][0] == 2

    small = stack.client(stack.new_key("small", "--bytes-per-day", "100"))
    refused = _post(small, stack, _png(tmp_path / "big.png"))
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "quota_bytes_per_day"
    assert stack.db("SELECT count(*) FROM jobs WHERE owner = 'small'")[0][0] == 0
    reliability.saw(f"429 rate_limited (Retry-After {codes[5].headers['Retry-After']} s), 429 "
                    f"quota_jobs_in_flight (Retry-After {third.headers['Retry-After']} s), 429 quota_bytes_per_day")
    reliability.check("other keys unaffected; refused jobs leave no row; limiter fails open if Redis is down")


def test_rate_limiter_fails_open_when_its_store_is_down():
    limiter = RateLimiter("redis://127.0.0.1:1/0")  # nothing listens on port 1
    assert all(limiter.hit("k", 1) is None for _ in range(3))
    memory = RateLimiter("memory://")
    assert [memory.hit("k", 2) is None for _ in range(3)] == [True, True, False]


@pytest.mark.integration
def test_a_retried_submission_returns_the_same_job(stack, tmp_path):
    photo = _png(tmp_path / "retry.png", seed=3)
    headers = {"Idempotency-Key": "scan-0042-attempt"}
    first = _post(stack.http, stack, photo, headers=headers)
    again = _post(stack.http, stack, photo, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"]
    assert stack.db("SELECT count(*) FROM jobs WHERE idempotency_key = :k", k=headers["Idempotency-Key"])[0][0] == 1
    other_owner = _post(stack.client(stack.new_key("someone-else")), stack, photo, headers=headers)
    assert other_owner.status_code == 202 and other_owner.json()["id"] != first.json()["id"]


@pytest.mark.integration
@pytest.mark.reliability
def test_fifty_concurrent_submissions_from_five_owners(stack, tmp_path, reliability):
    reliability.injected("50 concurrent submissions (10 threads) from 5 owners")
    began = time.monotonic()
    owners = {f"owner{n}": stack.client(stack.new_key(f"owner{n}")) for n in range(5)}
    photos = [_png(tmp_path / f"p{i}.png", seed=i) for i in range(10)]
    work = [(name, photo) for name in owners for photo in photos]
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda item: _post(owners[item[0]], stack, item[1]), work))
    assert [a.status_code for a in answers] == [202] * 50
    submitted: dict[str, set[str]] = {}
    for (name, _), answer in zip(work, answers):
        submitted.setdefault(name, set()).add(answer.json()["id"])
    assert sum(len(ids) for ids in submitted.values()) == 50  # no duplicates
    deadline = time.monotonic() + 240
    for name, client in owners.items():
        while True:
            listed = client.get(f"{stack.base}/api/v1/jobs", params={"per_page": 100}, timeout=10).json()
            if all(j["status"] in ("succeeded", "failed") for j in listed["items"]) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert {j["id"] for j in listed["items"]} == submitted[name]  # exactly its own, none lost
        assert {j["status"] for j in listed["items"]} == {"succeeded"}, stack.tail()
    for job_id in submitted["owner0"]:
        assert sum(1 for k in stack.objects(job_id) if "/output" in k) == 1
        result = owners["owner0"].get(f"{stack.base}/api/v1/jobs/{job_id}/result", timeout=10)
        assert Image.open(io.BytesIO(result.content)).size == (64, 48)
    reliability.saw(f"all 50 accepted and succeeded in {time.monotonic() - began:.0f} s")
    reliability.check("none lost or duplicated; each owner's list is exactly its own 10 jobs; one output each")


def test_the_embedded_default_has_one_local_owner_and_says_so(tmp_path, monkeypatch):
    from tintype.settings import load_settings
    from tintype.web.app import create_app

    monkeypatch.setenv("TINTYPE_DATA_DIR", str(tmp_path))
    for name in ("DATABASE_URL", "AUTH_REQUIRED", "BROKER_URL", "STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    client = create_app(load_settings()).test_client()
    assert "one local owner, no API keys" in client.get("/").get_data(as_text=True)
    assert client.get("/api/v1/jobs").status_code == 200  # no key needed
    monkeypatch.setenv("AUTH_REQUIRED", "1")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(load_settings())  # a shared server must not sign sessions with the default secret
