"""Live progress in the browser: the job page and the jobs list change as the server
pushes events (EventSource), without a reload and without polling."""

from __future__ import annotations

import io
import re
import time

from PIL import Image

from tests.browser.conftest import shot
from tests.media_factory import grey_photo, grey_video

JOB_GET = re.compile(r"/api/v1/jobs/[0-9a-f]{32}$")

# Every text the watched elements take, recorded in the page as it changes (a MutationObserver
# set up before the page's scripts run), so a fast worker cannot slip a state past the test.
RECORD = """(() => {
  window.seen = { "job-stage": [], "job-progress-text": [], "job-live": [], "job-announce": [] };
  const watch = () => {
    for (const id of Object.keys(window.seen)) {
      const el = document.getElementById(id);
      if (!el) continue;
      const note = () => { const list = window.seen[id]; const now = el.textContent.trim();
                           if (list[list.length - 1] !== now) list.push(now); };
      new MutationObserver(note).observe(el, { childList: true, characterData: true, subtree: true });
      note();
    }
  };
  document.addEventListener("DOMContentLoaded", watch);
})()"""


def _requests(page) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    page.on("request", lambda request: seen.append((request.method, request.url)))
    return seen


def _text(page, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


def test_a_running_jobs_page_shows_progress_pushed_by_the_server(page, stack, browser_key, tmp_path):
    source = grey_video(tmp_path / "film.mp4", frames=96, audio=False)  # six chunks of 16 frames
    client = stack.client(browser_key)
    response = client.post(f"{stack.base}/api/v1/jobs", files={"file": ("film.mp4", source.read_bytes())},
                           data={"operations": "colorize"}, timeout=60)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    requests = _requests(page)
    page.add_init_script(RECORD)
    page.goto(f"/jobs/{job_id}")
    page.evaluate("window.notReloaded = true")

    shot_taken = False
    deadline = time.monotonic() + 240
    while page.locator("#job-status").get_attribute("data-status") != "succeeded":
        assert time.monotonic() < deadline, f"the page never said succeeded: {page.evaluate('window.seen')}"
        if not shot_taken and "left" in _text(page, "#job-live"):
            shot(page, "job-progress")  # the README's picture; the checks below use the record
            shot_taken = True
        time.sleep(0.2)

    seen = page.evaluate("window.seen")
    assert page.evaluate("window.notReloaded") is True, "the page was not reloaded"
    assert len(set(seen["job-stage"]) - {""}) >= 2, seen["job-stage"]
    assert "6 / 6 chunks" == _text(page, "#job-progress-text")
    progress = seen["job-progress-text"]
    assert [p for p in progress if re.fullmatch(r"[1-5] / 6 chunks", p)], f"no chunk count while running: {progress}"
    paces = seen["job-live"]
    assert any(re.fullmatch(r"[\d.,]+ frames/s · (about .+ left|finishing)", p) for p in paces), paces
    # Screen readers: the texts rewritten every second are not live regions; one quiet
    # region says the status and stage when they change and the progress every 10 %.
    live = page.locator("[aria-live]").evaluate_all("els => els.map(e => e.id)")
    assert not {"job-live", "job-progress-text"} & set(live), live
    assert page.locator("#job-status").evaluate("e => e.closest('[aria-live]')") is None
    announced = [a for a in seen["job-announce"] if a]
    assert announced and announced[-1].startswith("succeeded"), announced
    assert len(announced) <= 11 + len(set(seen["job-stage"])) * 2, f"announced too often: {announced}"
    assert page.locator("#job").get_attribute("data-live") == "events"
    streams = [url for method, url in requests if url.endswith(f"/api/v1/jobs/{job_id}/events")]
    polls = [url for method, url in requests if method == "GET" and JOB_GET.search(url)]
    assert streams and not polls, (streams, polls)
    assert _text(page, "#job-live") == "", "no pace once the job has ended"


def test_the_jobs_list_gets_a_row_for_a_job_submitted_elsewhere(page, stack, browser_key):
    requests = _requests(page)
    page.goto("/jobs")
    page.wait_for_function("document.getElementById('page-info').textContent.length > 0")
    page.evaluate("window.notReloaded = true")
    total = int(page.locator("#page-info").get_attribute("data-total"))
    # Away and Back again through the back/forward cache: the stream closed on pagehide is
    # opened again on pageshow (persisted), or nothing below would ever be pushed.
    with page.expect_request(lambda r: r.url.endswith("/api/v1/jobs/events")):
        page.evaluate("""() => {
          window.dispatchEvent(new PageTransitionEvent("pagehide", { persisted: true }));
          window.dispatchEvent(new PageTransitionEvent("pageshow", { persisted: true }));
        }""")

    job_id = _photo_job(stack, browser_key, "live-list.png")  # by the API, not the page

    row = page.locator(f'#jobs-body tr[data-job="{job_id}"]')
    row.wait_for(timeout=10_000)
    assert page.locator("#jobs-body tr").first.get_attribute("data-job") == job_id, "the new job is on top"
    assert "live-list.png" in row.inner_text()
    assert page.locator("#page-info").get_attribute("data-total") == str(total + 1), "the pager counts it"
    page.wait_for_function(f"""document.querySelector('#jobs-body tr[data-job="{job_id}"] td:nth-child(5)')
                               ?.textContent === 'succeeded'""", timeout=60_000)
    assert row.locator("td").nth(5).inner_text() == "100%"
    assert page.evaluate("window.notReloaded") is True
    lists = [url for method, url in requests if method == "GET" and "/api/v1/jobs?" in url]
    assert len(lists) == 1, f"the list was loaded once, then pushed to: {lists}"
    assert [url for _, url in requests if url.endswith("/api/v1/jobs/events")]
    shot(page, "jobs-live")


def _photo_job(stack, key: str, name: str) -> str:
    picture = io.BytesIO()
    Image.fromarray(grey_photo(), "L").save(picture, "PNG")
    response = stack.client(key).post(f"{stack.base}/api/v1/jobs", timeout=60, data={"colorize": "yes"},
                                      files={"file": (name, picture.getvalue())})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_a_refused_stream_falls_back_to_polling(page, stack, browser_key):
    job_id = _photo_job(stack, browser_key, "refused-stream.png")
    page.route("**/events", lambda route: route.fulfill(status=503, body="down"))
    requests = _requests(page)
    page.goto(f"/jobs/{job_id}")
    page.wait_for_function("document.getElementById('job-status').dataset.status === 'succeeded'", timeout=60_000)
    assert page.locator("#job").get_attribute("data-live") == "polling"
    assert [url for method, url in requests if method == "GET" and JOB_GET.search(url)], "it polled GET /jobs/<id>"


def test_without_eventsource_the_job_page_polls_as_before(page, stack, browser_key):
    job_id = _photo_job(stack, browser_key, "no-events.png")
    page.add_init_script("delete window.EventSource")
    requests = _requests(page)
    page.goto(f"/jobs/{job_id}")
    page.wait_for_function("document.getElementById('job-status').dataset.status === 'succeeded'", timeout=60_000)
    assert not [url for _, url in requests if url.endswith("/events")]
    assert [url for method, url in requests if method == "GET" and JOB_GET.search(url)], "it polled GET /jobs/<id>"
    assert page.locator("#job").get_attribute("data-live") is None
