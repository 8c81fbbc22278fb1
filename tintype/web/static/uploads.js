// The upload page's drop zone: many files at once, each with its own progress bar. Photos
// dropped together become one batch (REST /batches); every other file is sent as a staged
// upload (REST /uploads) in parts, several at a time, each retried, straight to S3 when the
// server says so; the File waits in IndexedDB so a reload resumes from the missing parts.
// When its upload completes the job is submitted with upload=<id>.
"use strict";
(() => {
  const t = tintype.t;
  const PARALLEL = 3;  // parts in flight per file
  const TRIES = 4;  // attempts per part before the file waits for Resume
  const DB_NAME = "tintype-uploads", STORE = "pending";

  // -- IndexedDB: one record per unfinished upload {id, file, entries, key, saved} --------
  function openDb() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id" });
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  async function dbDo(mode, action) {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = action(tx.objectStore(STORE));
      tx.oncomplete = () => { db.close(); resolve(request.result); };
      tx.onerror = () => { db.close(); reject(tx.error); };
    });
  }
  // False where the browser would not keep the record (storage quota, private mode).
  const remember = (record) => dbDo("readwrite", (s) => s.put(record)).then(() => true, () => false);
  const forget = (id) => dbDo("readwrite", (s) => s.delete(id)).catch(() => null);
  // The server removes an unfinished upload at its expires_at: a record kept past then
  // could never resume, so it is dropped (and its File's space given back).
  const DAY_MS = 24 * 3600 * 1000;
  const expired = (record) => (record.expires ? Date.parse(record.expires) : (record.saved || 0) + DAY_MS) < Date.now();
  async function remembered() {
    const records = await dbDo("readonly", (s) => s.getAll()).catch(() => []);
    for (const record of records.filter(expired)) await forget(record.id);
    return records.filter((record) => !expired(record));
  }

  // Web Locks: the tab sending an upload holds its lock, so another tab neither offers nor
  // starts a Resume of it. hold() resolves to a release function, or null if another tab
  // holds it; where the browser has no Web Locks every upload counts as free.
  const lockName = (id) => `tintype-upload-${id}`;
  function hold(id) {
    if (!navigator.locks) return Promise.resolve(() => {});
    return new Promise((resolve) => {
      navigator.locks.request(lockName(id), { ifAvailable: true }, (lock) => {
        if (!lock) { resolve(null); return null; }
        return new Promise((release) => resolve(release));
      }).catch(() => resolve(() => {}));
    });
  }
  async function heldElsewhere() {
    if (!navigator.locks || !navigator.locks.query) return new Set();
    const state = await navigator.locks.query().catch(() => ({ held: [] }));
    return new Set((state.held || []).map((lock) => lock.name));
  }

  // What the saved job options say, for the row of an interrupted upload (files by name).
  function optionsSummary(entries) {
    return entries.filter(([name, value]) => name !== "upload" && value !== "")
      .map(([name, value]) => `${name}: ${value instanceof Blob ? value.name || "…" : value}`).join(", ");
  }

  // -- HTTP ----------------------------------------------------------------------------
  function request(method, url, body, { headers = {}, onprogress = null, track = null } = {}) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, url);
      for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
      if (onprogress) xhr.upload.onprogress = (e) => onprogress(e.loaded);
      xhr.onload = () => {
        let json = null;
        try { json = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
        resolve({ status: xhr.status, json, etag: xhr.getResponseHeader("ETag") });
      };
      xhr.onerror = () => reject(new Error(t("the connection was interrupted")));
      xhr.onabort = () => reject(new DOMException("cancelled", "AbortError"));
      if (track) track.add(xhr);
      xhr.send(body);
    }).finally(() => { if (track) for (const x of track) if (x.readyState === 4) track.delete(x); });
  }
  const api = (method, url, body, extra = {}) => request(method, url, body,
    { ...extra, headers: { "X-CSRF-Token": tintype.csrfToken(), ...(extra.headers || {}) } });
  // The API's refusal in the page's language (tintype.apiError), else what went wrong in words.
  const message = (response, fallback) => tintype.apiError(response.json, t(fallback, { status: response.status }));
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const sizeOf = (bytes) => (bytes < 1048576 ? t("{n} KiB", { n: Math.max(1, Math.round(bytes / 1024)) })
    : t("{n} MiB", { n: (bytes / 1048576).toFixed(1) }));

  // -- One row of the list per file ------------------------------------------------------
  function fileRow(list, name, size) {
    const li = document.createElement("li");
    li.className = "upload-row";
    const title = document.createElement("span");
    title.className = "upload-name";
    title.textContent = `${name} (${sizeOf(size)})`;
    const bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", t("Upload progress of {name}", { name }));
    const state = document.createElement("span");
    state.className = "upload-state";
    const actions = document.createElement("span");
    actions.className = "upload-actions";
    const detail = document.createElement("span");
    detail.className = "upload-detail hint";
    li.append(title, bar, state, actions, detail);
    list.append(li);
    const row = {
      li, bar,
      say(text) { state.textContent = text; },
      detail(text) { detail.textContent = text; },
      progress(fraction) { bar.value = Math.round(1000 * fraction) / 10; },
      button(label, onclick, aria) {
        const b = document.createElement("button");
        b.type = "button"; b.textContent = label;
        if (aria) b.setAttribute("aria-label", aria);
        b.addEventListener("click", onclick);
        actions.append(b);
        return b;
      },
      clearButtons() { actions.replaceChildren(); },
      link(href, label) {
        const a = document.createElement("a");
        a.href = href; a.textContent = label;
        actions.replaceChildren(a);
      },
    };
    return row;
  }

  // -- A staged upload of one file ----------------------------------------------------
  class StagedUpload {
    constructor(row, file, entries, key, uploadId = null) {
      Object.assign(this, { row, file, entries, key, id: uploadId, inFlight: new Set(), cancelled: false,
                            done: new Map(), loading: new Map() });
    }

    showProgress() {
      let sent = 0;
      for (const size of this.done.values()) sent += size;
      for (const loaded of this.loading.values()) sent += loaded;
      this.row.progress(this.file.size ? sent / this.file.size : 1);
    }

    async start() {
      this.row.say(t("Starting…"));
      const created = await api("POST", "/api/v1/uploads",
        JSON.stringify({ filename: this.file.name, size: this.file.size,
                         content_type: this.file.type || "application/octet-stream" }),
        { headers: { "Content-Type": "application/json" } });
      if (created.status !== 201) throw new Error(message(created, "the upload was refused: HTTP {status}"));
      this.id = created.json.id;
      this.release = await hold(this.id);
      const kept = await remember({ id: this.id, file: this.file, entries: this.entries, key: this.key,
                                    saved: Date.now(), expires: created.json.expires_at });
      if (!kept) this.row.detail(t("This browser could not keep the file (storage full?): a reload will not resume this upload."));
      return this.send(created.json);
    }

    async resume() {
      this.release = await hold(this.id);
      if (!this.release) throw new Error(t("this upload is being sent from another tab"));
      this.row.say(t("Resuming…"));
      const found = await api("GET", `/api/v1/uploads/${this.id}`);
      if (found.status === 404) { await forget(this.id); throw new Error(t("the server no longer has this upload (it expired or was cancelled); drop the file again")); }
      if (found.status !== 200) throw new Error(message(found, "the upload could not be resumed: HTTP {status}"));
      return this.send(found.json);
    }

    async send(upload) {
      this.row.clearButtons();
      this.row.button(t("Cancel"), () => this.cancel(), t("Cancel the upload of {name}", { name: this.file.name }));
      for (const n of upload.received) this.done.set(n, n < upload.parts ? upload.part_size : upload.size - upload.part_size * (upload.parts - 1));
      this.showProgress();
      const queue = [...upload.part_urls];
      const etags = {};
      this.row.say(t("Sending part {done} of {parts}…", { done: this.done.size, parts: upload.parts }));
      const worker = async () => {
        while (queue.length && !this.cancelled) {
          const part = queue.shift();
          const etag = await this.sendPart(upload, part);
          if (etag) etags[part.number] = etag;
          this.row.say(t("Sending part {done} of {parts}…", { done: this.done.size, parts: upload.parts }));
        }
      };
      await Promise.all(Array.from({ length: Math.min(PARALLEL, queue.length) }, worker));
      if (this.cancelled) throw new DOMException("cancelled", "AbortError");
      // From here the upload is whole: completing it and starting the job are quick and
      // cannot be undone halfway, so Cancel goes (a cancel now would delete what the job needs).
      this.row.clearButtons();
      if (upload.status !== "completed") {
        this.row.say(t("Checking the file…"));
        const parts = Object.entries(etags).map(([number, etag]) => ({ number: Number(number), etag }));
        const done = await api("POST", `/api/v1/uploads/${this.id}/complete`, JSON.stringify({ parts }),
                               { headers: { "Content-Type": "application/json" } });
        if (done.status !== 200) throw new Error(message(done, "the upload could not be completed: HTTP {status}"));
      }
      this.row.progress(1);
      return this.submit();
    }

    async sendPart(upload, part) {
      const blob = this.file.slice((part.number - 1) * upload.part_size, (part.number - 1) * upload.part_size + part.size);
      // Parts sent to the app carry the page's CSRF token; presigned S3 URLs need no header.
      const headers = upload.transport === "app" ? { "X-CSRF-Token": tintype.csrfToken() } : {};
      for (let attempt = 1; ; attempt += 1) {
        if (this.cancelled) throw new DOMException("cancelled", "AbortError");
        try {
          const sent = await request("PUT", part.url, blob, {
            headers, track: this.inFlight,
            onprogress: (loaded) => { this.loading.set(part.number, loaded); this.showProgress(); } });
          this.loading.delete(part.number);
          if (sent.status >= 200 && sent.status < 300) {
            this.done.set(part.number, part.size);
            this.showProgress();
            return sent.etag;
          }
          if (sent.status < 500 && sent.status !== 429 && sent.status !== 408) {
            throw Object.assign(new Error(message(sent, "part refused: HTTP {status}")), { final: true });
          }
        } catch (error) {
          this.loading.delete(part.number);
          if (error.name === "AbortError" || error.final || attempt >= TRIES) throw error;
        }
        if (attempt >= TRIES) throw new Error(t("part {n} could not be sent", { n: part.number }));
        await sleep(400 * 2 ** attempt);
      }
    }

    async submit() {
      if (this.cancelled) throw new DOMException("cancelled", "AbortError");
      this.row.say(t("Starting the job…"));
      const data = new FormData();
      for (const [name, value] of this.entries) data.append(name, value);
      data.append("upload", this.id);
      const made = await api("POST", "/api/v1/jobs", data, { headers: { "Idempotency-Key": this.key } });
      if (made.status !== 202 && made.status !== 200) throw new Error(message(made, "the job was refused: HTTP {status}"));
      await forget(this.id);
      return made.json;
    }

    async cancel() {
      this.cancelled = true;
      for (const xhr of this.inFlight) xhr.abort();
      this.row.clearButtons();
      this.row.say(t("Cancelling…"));
      if (this.id) {
        await api("DELETE", `/api/v1/uploads/${this.id}`).catch(() => null);
        await forget(this.id);
      }
      this.row.say(t("Cancelled"));
    }
  }

  // -- The form -------------------------------------------------------------------------
  const FILE_FIELDS = ["file", "mask", "masks", "reference", "keyframes"];

  // The job's fields from the form, files included (structured clone keeps them in IndexedDB).
  function jobEntries(form) {
    const data = new FormData(form);
    data.delete("file");
    const problem = tintype.appendKeyframes(form, data);
    if (problem) throw new Error(problem);
    return [...data.entries()].filter(([name, value]) => name !== "csrf_token" && !(value instanceof File && !value.name));
  }

  // The same options for a batch: a batch takes no masks, reference or keyframes.
  function batchData(form, files) {
    const data = new FormData(form);
    for (const name of FILE_FIELDS) data.delete(name);
    data.delete("csrf_token");
    for (const file of files) data.append("files", file, file.name);
    return data;
  }

  function pageOf(job) { return job.links ? job.links.page : `/jobs/${job.id}`; }

  async function runStaged(upload, single) {
    try {
      const job = await (upload.id ? upload.resume() : upload.start());
      upload.row.clearButtons();
      upload.row.say(t("Job started"));
      upload.row.link(pageOf(job), t("Open the job"));
      if (single) window.location = pageOf(job);
      return job;
    } catch (error) {
      if (error.name === "AbortError" || upload.cancelled) return null;
      if (upload.release === null) { upload.row.say(error.message); return null; }  // another tab sends it
      upload.row.clearButtons();
      upload.row.say(error.message);
      upload.row.li.classList.add("failed");
      if (single) tintype.text(document.getElementById("submit-error"), error.message);  // an alert, read out
      if (upload.id) {
        upload.row.button(t("Resume"), () => { upload.row.li.classList.remove("failed"); runStaged(upload, single); },
                          t("Resume the upload of {name}", { name: upload.file.name }));
        upload.row.button(t("Cancel"), () => upload.cancel(), t("Cancel the upload of {name}", { name: upload.file.name }));
      }
      return null;
    } finally {
      if (upload.release) { upload.release(); upload.release = undefined; }
    }
  }

  async function runBatch(form, files, rows, error) {
    const offsets = [];
    let total = 0;
    for (const file of files) { offsets.push(total); total += file.size; }
    rows.forEach((row) => row.say(t("Uploading with the batch…")));
    const answer = await api("POST", "/api/v1/batches", batchData(form, files), {
      onprogress: (loaded) => rows.forEach((row, i) => row.progress(Math.max(0, Math.min(1, (loaded - offsets[i]) / (files[i].size || 1))))),
    }).catch((e) => ({ status: 0, json: null, failed: e }));
    if (answer.status !== 202) {
      rows.forEach((row) => row.say(t("Not uploaded")));
      tintype.text(error, answer.failed ? answer.failed.message : message(answer, "the batch was refused: HTTP {status}"));
      return;
    }
    answer.json.items.forEach((item, i) => {
      rows[i].progress(1);
      rows[i].say(t("Job started"));
      rows[i].link(`/jobs/${item.job_id}`, t("Open the job"));
    });
    tintype.text(document.getElementById("batch-note"), t("Batch of {n} photographs started", { n: answer.json.total }));
  }

  const isPhoto = (file) => /^image\//.test(file.type);
  const newKey = () => (window.crypto && crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());

  function bindDropUploads(form) {
    const zone = document.getElementById("drop-zone");
    const list = document.getElementById("upload-list");
    const input = form.elements.file;
    const error = document.getElementById("submit-error");
    const note = document.createElement("p");
    note.id = "batch-note"; note.setAttribute("role", "status");
    list.after(note);

    for (const type of ["dragenter", "dragover"]) {
      zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("dragging"); });
    }
    zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("dragging");
      if (!e.dataTransfer || !e.dataTransfer.files.length) return;
      input.files = e.dataTransfer.files;
      input.dispatchEvent(new Event("change", { bubbles: true }));  // the colour hint measures the first file
    });
    const listChosen = () => {
      list.querySelectorAll(".upload-row.chosen").forEach((li) => li.remove());
      for (const file of input.files) fileRow(list, file.name, file.size).li.classList.add("chosen");
    };
    input.addEventListener("change", listChosen);

    // Registered in the capture phase so it runs before app.js's single-file submit, which
    // it replaces on this page.
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      event.stopImmediatePropagation();
      tintype.text(error, "");
      const files = [...input.files];
      if (!files.length) { tintype.text(error, t("choose or drop at least one file")); return; }
      let entries;
      try { entries = jobEntries(form); } catch (e) { tintype.text(error, e.message); return; }
      list.querySelectorAll(".upload-row.chosen").forEach((li) => li.remove());
      const rows = files.map((file) => fileRow(list, file.name, file.size));
      input.value = "";
      if (files.length > 1 && files.every(isPhoto)) { await runBatch(form, files, rows, error); return; }
      const single = files.length === 1;
      for (const [i, file] of files.entries()) {
        await runStaged(new StagedUpload(rows[i], file, entries, newKey()), single);
      }
    }, true);

    offerInterrupted(list).finally(() => { list.dataset.restored = "true"; });  // tests wait on it
  }

  // Uploads a reload interrupted: offer to resume each from its missing parts, or discard it.
  async function offerInterrupted(list) {
    const busy = await heldElsewhere();
    for (const record of await remembered()) {
      const row = fileRow(list, record.file.name, record.file.size);
      row.li.classList.add("interrupted");
      row.detail(t("Saved options: {options}", { options: optionsSummary(record.entries) || t("none") }));
      if (busy.has(lockName(record.id))) { row.say(t("Being sent from another tab")); continue; }
      row.say(t("Interrupted by a reload"));
      const upload = new StagedUpload(row, record.file, record.entries, record.key, record.id);
      row.button(t("Resume"), () => runStaged(upload, true), t("Resume the upload of {name}", { name: record.file.name }));
      row.button(t("Discard"), () => upload.cancel(), t("Discard the upload of {name}", { name: record.file.name }));
    }
  }

  tintype.bindDropUploads = bindDropUploads;
  tintype.uploads = { StagedUpload, fileRow, forget };  // painter.js stages a film to paint on with these
})();
