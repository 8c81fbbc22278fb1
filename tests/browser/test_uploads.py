"""The upload page as a person uses it: files dropped onto the drop zone, a film sent in parts
straight to S3, a reload in the middle and the upload resumed from the missing part (not
offered in a second tab while the first still sends it), an upload cancelled, no Cancel once
the upload is whole, three photographs dropped at once made one batch."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import time
from pathlib import Path

from PIL import Image

from tests.browser.conftest import shot
from tests.media_factory import grey_photo, grey_video
from tests.stack import BUCKET
from tests.test_api_uploads import allow_browsers

MIB = 1024**2
PART_2 = re.compile(r".*[?&]partNumber=2(&.*)?$")

DROP = """(files) => {
  const dt = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
    dt.items.add(new File([bytes], f.name, { type: f.type }));
  }
  const zone = document.getElementById("drop-zone");
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  }
}"""
FETCH = """async ([method, url]) => {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const r = await fetch(url, { method, headers: { "X-CSRF-Token": token } });
  return { status: r.status, body: r.status === 204 ? null : await r.json() };
}"""


def _drop(page, files: list[tuple[str, str, bytes]]) -> None:
    page.evaluate(DROP, [{"name": n, "type": t, "data": base64.b64encode(b).decode()} for n, t, b in files])


def _film(tmp_path: Path) -> bytes:
    """A grey film of noise, lossless: over S3's 5 MiB part, so it goes in two parts."""
    path = grey_video(tmp_path / "reel.mp4", size="320x240", frames=66, rate="24", audio=False,
                      extra=("-vf", "noise=c0s=60:c0f=t,hue=s=0,format=yuv420p", "-qp", "0"))
    data = path.read_bytes()
    assert 5 * MIB < len(data) < 8 * MIB
    return data


def _parts_sent(page) -> list[str]:
    sent: list[str] = []
    page.on("request", lambda r: sent.append(re.search(r"partNumber=(\d+)", r.url).group(1))
            if r.method == "PUT" and "partNumber=" in r.url else None)
    return sent


def test_a_film_goes_up_in_parts_and_resumes_after_a_reload(page, stack, tmp_path):
    allow_browsers(stack)
    film = _film(tmp_path)
    sent = _parts_sent(page)
    page.goto("/")
    held = []
    page.route(PART_2, lambda route: held.append(route))  # part 2 hangs on a slow network, never answered
    _drop(page, [("reel.mp4", "video/mp4", film)])
    assert page.get_by_text(re.compile(r"^reel\.mp4 \(\d+\.\d MiB\)$")).is_visible()
    with page.expect_response(lambda r: r.url.endswith("/api/v1/uploads") and r.request.method == "POST") as made:
        page.get_by_role("button", name="Upload and start").click()
    upload = made.value.json()
    assert upload["transport"] == "s3" and upload["parts"] == 2
    status = f"/api/v1/uploads/{upload['id']}"
    deadline = time.monotonic() + 30
    while page.evaluate(FETCH, ["GET", status])["body"]["received"] != [1]:
        assert time.monotonic() < deadline, "part 1 never reached S3"
        page.wait_for_timeout(200)
    assert held and page.locator(".upload-row progress").evaluate("e => e.value") < 100  # still uploading
    other = page.context.new_page()  # a second tab while this one still sends the film
    other.goto("/")
    other.wait_for_selector("#upload-list[data-restored]", state="attached")
    assert other.get_by_text("Being sent from another tab").is_visible()
    assert other.get_by_role("button", name="Resume the upload of reel.mp4").count() == 0
    other.close()
    page.reload()  # mid-upload: part 2 is still on its way
    page.get_by_text("Interrupted by a reload").wait_for()
    # The options the job will be made with, shown on the row (they are not in the form now).
    assert re.search(r"^Saved options: [a-z_]+: \S", page.locator(".upload-row .upload-detail").inner_text())
    page.unroute(PART_2)
    assert page.evaluate(FETCH, ["GET", status])["body"]["missing"] == [2]
    shot(page, "upload-resume")
    sent.clear()
    page.get_by_role("button", name="Resume the upload of reel.mp4").click()
    try:
        page.wait_for_url(re.compile(r"/jobs/[0-9a-f]{32}$"), timeout=30_000)
    except Exception as exc:
        shown = page.locator("#upload-list").evaluate("e => e.outerHTML")
        raise AssertionError(f"no job page; the list says: {shown}") from exc
    assert sent == ["2"]  # only the missing part went up after the reload
    job_id = page.url.rsplit("/", 1)[-1]
    job = page.evaluate(FETCH, ["GET", f"/api/v1/jobs/{job_id}"])["body"]
    assert job["input"]["name"] == "reel.mp4" and job["input"]["sha256"] == hashlib.sha256(film).hexdigest()
    assert page.evaluate(FETCH, ["DELETE", f"/api/v1/jobs/{job_id}"])["status"] == 200  # spare the workers


EXPIRED = """() => new Promise((resolve, reject) => {
  const open = indexedDB.open("tintype-uploads", 1);
  open.onupgradeneeded = () => open.result.createObjectStore("pending", { keyPath: "id" });
  open.onsuccess = () => {
    const tx = open.result.transaction("pending", "readwrite");
    tx.objectStore("pending").put({ id: "expired-upload", file: new File(["x"], "old.mp4"), entries: [],
                                    key: "k", saved: 0, expires: "2000-01-01T00:00:00Z" });
    tx.oncomplete = () => { open.result.close(); resolve(); };
    tx.onerror = () => reject(tx.error);
  };
})"""
KEPT = """() => new Promise((resolve) => {
  const open = indexedDB.open("tintype-uploads", 1);
  open.onsuccess = () => {
    const request = open.result.transaction("pending").objectStore("pending").getAllKeys();
    request.onsuccess = () => { open.result.close(); resolve(request.result); };
  };
})"""


def test_an_upload_is_cancelled(page, stack, tmp_path):
    allow_browsers(stack)  # part 1 goes to S3 as in use; only part 2 is held
    film = _film(tmp_path)
    page.goto("/")
    page.route(PART_2, lambda route: None)  # part 2 hangs: the upload is cancelled mid-flight
    _drop(page, [("reel.mp4", "video/mp4", film)])
    with page.expect_response(lambda r: r.url.endswith("/api/v1/uploads") and r.request.method == "POST") as made:
        page.get_by_role("button", name="Upload and start").click()
    upload_id = made.value.json()["id"]
    deadline = time.monotonic() + 30
    while page.evaluate(FETCH, ["GET", f"/api/v1/uploads/{upload_id}"])["body"]["received"] != [1]:
        assert time.monotonic() < deadline, "part 1 never reached S3"
        page.wait_for_timeout(200)
    page.evaluate(EXPIRED)  # a record from long ago, past the server's expiry
    page.get_by_role("button", name="Cancel the upload of reel.mp4").click()
    page.get_by_text("Cancelled", exact=True).wait_for()
    assert page.evaluate(FETCH, ["GET", f"/api/v1/uploads/{upload_id}"])["status"] == 404
    pending = stack.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    assert not [u for u in pending if upload_id in u["Key"]]  # the multipart upload was aborted
    page.reload()
    page.wait_for_selector("#upload-list[data-restored]", state="attached")  # IndexedDB has been read
    assert page.locator(".upload-row").count() == 0  # forgotten by the browser too
    assert page.evaluate(KEPT) == [], "the expired record was pruned"


FULL_STORAGE = """IDBObjectStore.prototype.put = function () {
  throw new DOMException("the quota has been exceeded", "QuotaExceededError");
};"""


def test_cancel_goes_once_the_upload_is_whole(page, stack):
    """Cancel during "Checking the file…" would delete the upload the job is about to use.
    And a browser whose storage is full says the upload will not survive a reload."""
    allow_browsers(stack)
    picture = io.BytesIO()
    Image.fromarray(grey_photo(64, 48), "L").save(picture, "PNG")
    page.add_init_script(FULL_STORAGE)
    page.goto("/")
    held = []
    page.route(re.compile(r".*/api/v1/uploads/[^/]+/complete$"), lambda route: held.append(route))
    _drop(page, [("plate.png", "image/png", picture.getvalue())])
    page.get_by_role("button", name="Upload and start").click()
    page.get_by_text("Checking the file…").wait_for()
    assert page.get_by_role("button", name="Cancel the upload of plate.png").count() == 0
    assert "could not keep the file" in page.locator(".upload-row .upload-detail").inner_text()
    held[0].continue_()
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f]{32}$"), timeout=30_000)


def test_three_photos_dropped_at_once_make_a_batch(page, stack):
    # The drop zone is no control of its own around the file input: one tab stop, the input.
    zone = page.locator("#drop-zone")
    photos = []
    for n, (width, height) in enumerate([(64, 48), (48, 40), (56, 56)]):
        out = io.BytesIO()
        Image.fromarray(grey_photo(width, height), "L").save(out, "PNG")
        photos.append((f"plate-{n}.png", "image/png", out.getvalue()))
    page.goto("/")
    assert zone.evaluate("e => [e.tabIndex, e.getAttribute('role')]") == [-1, None]
    assert zone.locator("input[type=file]").evaluate("e => e.tabIndex") == 0
    _drop(page, photos)
    with page.expect_response(lambda r: r.url.endswith("/api/v1/batches")) as answered:
        page.get_by_role("button", name="Upload and start").click()
    assert answered.value.status == 202
    batch = answered.value.json()
    assert [item["name"] for item in batch["items"]] == ["plate-0.png", "plate-1.png", "plate-2.png"]
    page.get_by_text("Batch of 3 photographs started").wait_for()
    links = page.get_by_role("link", name="Open the job")
    assert links.count() == 3
    assert [links.nth(i).get_attribute("href") for i in range(3)] == [f"/jobs/{i['job_id']}" for i in batch["items"]]
    bars = page.locator(".upload-row progress").evaluate_all("els => els.map(e => e.value)")
    assert bars == [100, 100, 100]
    shot(page, "upload-drop")
    for item in batch["items"]:
        assert stack.db("SELECT owner FROM jobs WHERE id = :id", id=item["job_id"])[0][0] == "browser"
