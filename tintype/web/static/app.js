// tintype pages: everything goes through REST v1, like any other client.
"use strict";
const tintype = (() => {
  function text(el, value) { if (el) el.textContent = value == null ? "" : String(value); }

  // The page's message catalogue (tintype/web/i18n.py): t("Frame {n}", {n: 3}) in the
  // visitor's language; a string not in the catalogue stays as written (English).
  const messages = (() => {
    // Pages always have a document; the node checks of this file (tests) pass a bare one.
    const el = typeof document !== "undefined" && document.getElementById ? document.getElementById("tintype-messages") : null;
    try { return el ? JSON.parse(el.textContent) : {}; } catch (e) { return {}; }
  })();
  function t(message, params) {
    const found = messages[message] || message;
    return params ? found.replace(/\{(\w+)\}/g, (all, name) => (name in params ? String(params[name]) : all)) : found;
  }

  // Numbers and dates in the page's language (<html lang>), as Intl writes them there; in the
  // browser's own regional form of it when it has one (en-GB: 3 Dec 2026, not Dec 3).
  function lang() {
    const page = (typeof document !== "undefined" && document.documentElement.lang) || "en";
    const own = typeof navigator !== "undefined" ? navigator.language || "" : "";
    return own.split("-")[0] === page ? own : page;
  }
  function number(value, digits) {
    const fixed = digits == null ? {} : { minimumFractionDigits: digits, maximumFractionDigits: digits };
    return new Intl.NumberFormat(lang(), fixed).format(value);
  }
  function percent(fraction) {
    return new Intl.NumberFormat(lang(), { style: "percent", maximumFractionDigits: 0 }).format(fraction);
  }
  function date(iso) {
    const when = iso ? new Date(iso) : null;
    if (!when || Number.isNaN(when.getTime())) return iso || "";
    return new Intl.DateTimeFormat(lang(), { dateStyle: "medium", timeStyle: "short" }).format(when);
  }

  // The words the API says in English (statuses, stages, operations, kinds), for the page.
  const WORDS = {
    queued: t("queued"), running: t("running"), succeeded: t("succeeded"), failed: t("failed"),
    cancelled: t("cancelled"), image: t("image"), video: t("video"), inpaint: t("inpaint"), colorize: t("colorize"),
    probing: t("probing"), image_queued: t("waiting for a worker"), track_queued: t("waiting to track"),
    tracking: t("tracking"), planning_colour: t("planning the colour"), colour_queued: t("waiting to colour"),
    processing: t("processing"), finalize_queued: t("waiting to finish"), finalizing: t("finishing"), done: t("done"),
  };
  // Where a keyframe came from (GET /jobs/<id>/keyframes "source").
  const SOURCES = { user: t("given by you"), auto: t("chosen automatically"), reference: t("from the reference") };
  function word(value) { return Object.prototype.hasOwnProperty.call(WORDS, value) ? WORDS[value] : value; }

  // The API's error messages are English (clients parse them). A page in another language
  // says what went wrong in its own words, from the error's code, with the API's detail after.
  const ERRORS = {
    upload_too_large: t("The file is larger than this server accepts."),
    media_too_large: t("The picture or film is too large to restore here."),
    corrupt_media: t("The file could not be read: it may be damaged."),
    not_media: t("This is not a picture, a film or a ZIP of frames."),
    missing_file: t("Choose a file to restore."), empty_file: t("The file is empty."),
    no_operation: t("There is nothing to do: choose Colorize or Inpaint."),
    bad_option: t("One of the options is not valid."), unknown_field: t("The form sent a field the server does not know."),
    bad_boxes: t("The boxes are not valid."), bad_mask: t("The mask is not a picture."),
    empty_mask: t("The mask marks nothing: paint white where something should be removed."),
    mask_size_mismatch: t("The mask is not the same size as the picture."),
    mask_count_mismatch: t("There are not as many masks as frames."),
    mask_covers_frame: t("The mask covers the whole frame: nothing would be left to fill from."),
    mask_too_large: t("The mask file is too large."),
    unsupported_zip: t("This ZIP holds no frames tintype can read."), bad_sequence: t("The frames in the ZIP are not a sequence."),
    keyframe_out_of_range: t("A keyframe's frame number is past the end of the film."),
    keyframe_not_image: t("A keyframe is not a picture."), keyframe_greyscale: t("A keyframe has no colour."),
    keyframe_mismatch: t("A keyframe does not look like its frame."),
    bad_keyframes_zip: t("The ZIP of keyframes could not be read."),
    quota_bytes_per_day: t("You have uploaded as much as you may today."),
    quota_jobs_in_flight: t("You have as many jobs running as you may: wait for one to finish."),
    rate_limited: t("Too many requests: wait a minute and try again."),
    unauthorized: t("Sign in again."), csrf_failed: t("The page is out of date: reload it and try again."),
    parent_not_succeeded: t("Only a job that succeeded can be coloured again."),
    storage_unavailable: t("The server cannot store files just now: try again later."),
    database_unavailable: t("The server is not ready just now: try again later."),
    service_unavailable: t("The server is not ready just now: try again later."),
  };
  function apiError(body, fallback) {
    const error = body && body.error;
    if (!error) return fallback;
    const translated = Object.keys(messages).length > 0 && ERRORS[error.code];
    return translated ? `${translated} (${error.message})` : error.message || fallback;
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function newKey() {
    return window.crypto && crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
  }

  // "Add keyframe" rows (templates/_keyframe_rows.html): a frame number and a picture each.
  function bindKeyframeRows(form) {
    const rows = form.querySelector(".keyframe-rows");
    const template = form.querySelector("template.keyframe-row");
    const add = form.querySelector(".add-keyframe");
    add.addEventListener("click", () => {
      const row = template.content.firstElementChild.cloneNode(true);
      // Keyboard focus goes back to "Add keyframe", not to the top of the page.
      row.querySelector(".remove-keyframe").addEventListener("click", () => { row.remove(); add.focus(); });
      rows.append(row);
      row.querySelector(".keyframe-frame").focus();
    });
  }

  // Each picture becomes a `keyframes` part named <frame>.<ext>, as REST v1 takes them;
  // returns a message when a row is incomplete.
  function appendKeyframes(form, data) {
    for (const row of form.querySelectorAll(".keyframe-rows .keyframe-row")) {
      const frame = row.querySelector(".keyframe-frame").value.trim();
      const file = row.querySelector(".keyframe-file").files[0];
      if (!frame && !file) continue;
      if (!/^\d+$/.test(frame) || !file) return t("each keyframe needs a frame number (0 or more) and a picture");
      const dot = file.name.lastIndexOf(".");
      const ext = dot > 0 ? file.name.slice(dot + 1).toLowerCase() : "png";
      data.append("keyframes", file, `${frame}.${ext}`);
    }
    return "";
  }

  // CIE Lab of one sRGB pixel (0..255), D65, as OpenCV converts it (tintype.media.color).
  function lab(r, g, b) {
    const lin = (c) => { c /= 255; return c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
    const R = lin(r), G = lin(g), B = lin(b);
    const f = (t) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);
    const x = f((0.412453 * R + 0.357580 * G + 0.180423 * B) / 0.950456);
    const y = f(0.212671 * R + 0.715160 * G + 0.072169 * B);
    const z = f((0.019334 * R + 0.119193 * G + 0.950227 * B) / 1.088754);
    return [116 * y - 16, 500 * (x - y), 200 * (y - z)];
  }

  // The colour of a picture (an <img>, <video> or ImageBitmap), measured as intake measures
  // it (tintype.media.tone): mean Lab chroma at most `side` px, and how much the hue agrees.
  function measureTone(source, width, height, side) {
    const scale = Math.min(1, side / Math.max(width, height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(width * scale));
    canvas.height = Math.max(1, Math.round(height * scale));
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(source, 0, 0, canvas.width, canvas.height);
    const px = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let sum = 0, sumA = 0, sumB = 0;
    for (let i = 0; i < px.length; i += 4) {
      const [, a, b] = lab(px[i], px[i + 1], px[i + 2]);
      sum += Math.hypot(a, b); sumA += a; sumB += b;
    }
    return { chroma: sum / (px.length / 4), coherence: sum > 0 ? Math.hypot(sumA, sumB) / sum : 0 };
  }

  function loadImage(url) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img); img.onerror = reject; img.src = url;
    });
  }

  // A film's tone: the median of three frames spread over it, as intake takes five.
  async function filmTone(url, side) {
    const video = document.createElement("video");
    video.muted = true; video.preload = "auto"; video.src = url;
    await new Promise((resolve, reject) => { video.onloadeddata = resolve; video.onerror = reject; });
    const tones = [];
    for (const at of [1 / 6, 3 / 6, 5 / 6]) {
      await new Promise((resolve, reject) => {
        video.onseeked = resolve; video.onerror = reject; video.currentTime = at * (video.duration || 0);
      });
      tones.push(measureTone(video, video.videoWidth, video.videoHeight, side));
    }
    tones.sort((p, q) => p.chroma - q.chroma);
    return tones[1];
  }

  async function toneOfFile(file, side) {
    const url = URL.createObjectURL(file);
    try {
      if (file.type.startsWith("video/")) return await filmTone(url, side);
      const img = await loadImage(url);
      return measureTone(img, img.naturalWidth, img.naturalHeight, side);
    } finally {
      URL.revokeObjectURL(url);
    }
  }

  // What colorize will do with this picture, in the words of the job's note.
  function colourPlan(tone, limits, choice, guided, inpaint) {
    if (choice === "no") return t("It will not be colorized.");
    if (!tone) return t("Its colour is measured when it is uploaded: black and white is colorized, colour is kept.");
    const colour = tone.chroma >= limits.hasColour;
    const kind = !colour ? t("black and white") : tone.coherence >= limits.toned ? t("toned in one hue (like sepia)") : t("in colour");
    const measured = t("This picture is {kind} (mean colour {chroma}; below {limit} counts as black and white)",
      { kind, chroma: number(tone.chroma, 1), limit: number(limits.hasColour) });
    if (choice === "yes") {
      return colour ? t("{measured}: it will be colorized, its own colour replaced.", { measured })
        : t("{measured}: it will be colorized.", { measured });
    }
    if (!colour || guided) {
      return colour ? t("{measured}: it will be colorized (you chose a colour reference or keyframes).", { measured })
        : t("{measured}: it will be colorized.", { measured });
    }
    const kept = t('{measured}: its colour will be kept (choose "yes" under Colorize to recolour it).', { measured });
    return inpaint ? kept : kept + " " + t("As it is, there is nothing to do: tick Inpaint with something to remove.");
  }

  function bindColourHint(form) {
    const hint = document.getElementById("colour-hint");
    const limits = { hasColour: Number(form.dataset.hasColour), toned: Number(form.dataset.toned) };
    const side = Number(form.dataset.side);
    let tone = null, measured = null, pending = false;
    const show = () => {
      if (!measured || pending) return;
      const keyframes = [...form.querySelectorAll(".keyframe-rows .keyframe-file")].some((f) => f.files.length);
      const guided = Boolean(form.elements.reference.files.length) || keyframes;
      text(hint, colourPlan(tone, limits, form.elements.colorize.value, guided, form.elements.inpaint.checked));
    };
    form.elements.file.addEventListener("change", async () => {
      const file = form.elements.file.files[0];
      measured = file || null; tone = null; pending = Boolean(file);
      if (!file) return;
      try { tone = await toneOfFile(file, side); } catch (_) { tone = null; /* the browser cannot decode it */ }
      if (measured === file) { pending = false; show(); }
    });
    form.addEventListener("change", show);
  }

  function bindUploadForm(form) {
    const bar = document.getElementById("upload-progress");
    const error = document.getElementById("submit-error");
    let submissionKey = newKey();
    bindKeyframeRows(form);
    bindColourHint(form);
    form.addEventListener("change", () => { submissionKey = newKey(); });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      text(error, "");
      const data = new FormData(form);
      const problem = appendKeyframes(form, data);
      if (problem) { text(error, problem); return; }
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-CSRF-Token", csrfToken());
      // A resubmitted form (double click, flaky network) gets the same job back.
      xhr.setRequestHeader("Idempotency-Key", submissionKey);
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) { bar.hidden = false; bar.value = 100 * e.loaded / e.total; } };
      xhr.onload = () => {
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
        if (xhr.status === 202) { window.location = body.links.page; return; }
        bar.hidden = true;
        text(error, apiError(body, t("upload failed: HTTP {status}", { status: xhr.status })));
      };
      xhr.onerror = () => { bar.hidden = true; text(error, t("the upload was interrupted")); };
      xhr.send(data);
    });
  }

  // The job page's "colour again" form: POST /jobs/<id>/recolour, then the new job's page.
  function bindRecolourForm(form) {
    const error = document.getElementById("recolour-error");
    bindKeyframeRows(form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      text(error, "");
      const data = new FormData(form);
      const problem = appendKeyframes(form, data);
      if (problem) { text(error, problem); return; }
      const response = await fetch(form.action, { method: "POST", body: data,
        headers: { "X-CSRF-Token": csrfToken(), Accept: "application/json" } });
      let body = {};
      try { body = await response.json(); } catch (_) { /* not JSON */ }
      if (response.status === 202) { window.location = body.links.page; return; }
      text(error, apiError(body, t("recolour failed: HTTP {status}", { status: response.status })));
    });
  }

  // A strip of the job's keyframes: thumbnail, frame number, source, download link.
  // Fetched again when the count changes (the pipeline adds automatic ones).
  async function showKeyframes(job) {
    const view = document.getElementById("keyframes-view");
    if (!view || view.dataset.count === String(job.keyframes.length)) return;
    view.dataset.count = String(job.keyframes.length);
    if (!job.keyframes.length) { view.hidden = true; return; }
    const response = await fetch(job.links.keyframes, { headers: { Accept: "application/json" } });
    if (!response.ok) { delete view.dataset.count; return; }
    const body = await response.json();
    document.getElementById("keyframes-strip").replaceChildren(...body.items.map((k) => {
      const li = document.createElement("li");
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      img.src = k.thumbnail_url; img.alt = t("keyframe of frame {n}", { n: k.frame }); img.loading = "lazy";
      // Opens the colour-hint painter (hints.js) on this keyframe.
      const opener = document.createElement("button");
      opener.type = "button"; opener.className = "keyframe-open";
      opener.dataset.frame = String(k.frame); opener.dataset.url = k.url;
      opener.setAttribute("aria-label", t("Paint colour hints on keyframe {n}", { n: k.frame }));
      opener.append(img);
      const caption = document.createElement("figcaption");
      const link = document.createElement("a");
      link.href = `${k.url}?download=1`; link.textContent = "PNG";
      const source = Object.prototype.hasOwnProperty.call(SOURCES, k.source) ? SOURCES[k.source] : k.source;
      caption.append(t("frame {n}", { n: k.frame }) + ` · ${source} · `, link);
      figure.append(opener, caption); li.append(figure);
      return li;
    }));
    view.hidden = false;
  }

  function mediaElement(kind, url, poster, alt) {
    if (kind === "video") {
      const v = document.createElement("video");
      v.controls = true; v.preload = "metadata"; v.src = url;
      if (poster) v.poster = poster;
      return v;
    }
    const img = document.createElement("img");
    img.src = url; img.alt = alt || "";
    return img;
  }

  function showInput(root, job) {
    const view = document.getElementById("input-view");
    if (view.dataset.shown) return;
    if (job.kind === "video") {
      if (!job.preview_url) return;  // poster frame appears once the video is probed
      const img = mediaElement("image", job.preview_url, null, t("the input's first frame"));
      const link = document.createElement("a");
      link.href = job.input.url + "?download=1"; link.textContent = t("original file");
      view.append(img, link);
    } else {
      view.append(mediaElement("image", job.input.url, null, t("the input")));
    }
    view.dataset.shown = "1";
  }

  function showResult(job) {
    const view = document.getElementById("result-view");
    if (view.dataset.shown || !job.result) return;
    view.replaceChildren(mediaElement(job.kind, job.result.url, null, t("the result")));
    const link = document.getElementById("download-link");
    link.href = job.result.url + "?download=1"; link.hidden = false;
    showOutputs(job.outputs || {});
    showProvenance(job.provenance);
    view.dataset.shown = "1";
  }

  // Files made beside the result (an archival master, a manifest): one download link each.
  function showOutputs(outputs) {
    const list = document.getElementById("outputs-list");
    const names = Object.keys(outputs);
    if (!list || !names.length) return;
    list.replaceChildren(...names.map((name) => {
      const item = document.createElement("li");
      const a = document.createElement("a");
      a.href = `${outputs[name].url}?download=1`;
      a.dataset.output = name;
      text(a, t("Download {what}", { what: outputs[name].label }));
      item.append(a, ` (${number(Math.ceil(outputs[name].bytes / 1024))} KiB)`);
      return item;
    }));
    list.hidden = false;
  }

  // What the result's C2PA manifest says, and whether it is signed (the manifest is an output).
  function showProvenance(provenance) {
    const line = document.getElementById("provenance");
    if (!line || !provenance) return;
    const steps = provenance.actions.filter((a) => a.action !== "c2pa.opened").map((a) => a.description);
    const kind = provenance.signed ? t("signed C2PA manifest embedded in the result")
      : t("unsigned C2PA manifest (sidecar; no signing key configured)");
    text(line, t("Provenance: {kind}: {steps}.", { kind, steps: steps.join("; ") }));
    line.hidden = false;
  }

  // The result area of a job that ended without a result says how it ended.
  function showOutcome(root, job) {
    const note = document.getElementById("result-note");
    if (!note || !["cancelled", "failed"].includes(job.status)) return;
    const words = JSON.parse(root.dataset.outcome);
    note.className = job.status === "failed" ? "error" : "hint";
    text(note, job.status === "failed" ? `${words.failed} ${jobError(job) || words.no_reason}`
      : words.cancelled);
  }

  function showQuality(job) {
    if (job.masks && job.masks.poster_url) {
      document.getElementById("masks-img").src = job.masks.poster_url;
      document.getElementById("masks-link").href = `${job.masks.url}?download=1`;
      document.getElementById("masks-view").hidden = false;
    }
    if (job.compare_url) {
      document.getElementById("compare-img").src = job.compare_url;
      document.getElementById("compare-view").hidden = false;
    }
    if (!job.quality) return;
    const q = job.quality;
    const rows = [[t("Frames"), number(q.frames)],
      [t("Scene cuts"), q.scene_cuts.length ? q.scene_cuts.map((n) => number(n)).join(", ") : t("none")],
      [t("Warping error"), q.warping_error.toExponential(2)], [t("Chroma warping error"), q.chroma_warping_error.toExponential(2)],
      [t("Colourfulness"), number(q.colourfulness, 1)], [t("Smoothing strength"), number(q.temporal_strength)]];
    document.getElementById("quality-body").replaceChildren(...rows.map(([k, v]) => {
      const tr = document.createElement("tr");
      const th = document.createElement("th"); th.textContent = k;
      const td = document.createElement("td"); td.textContent = String(v);
      tr.append(th, td); return tr;
    }));
    document.getElementById("quality").hidden = false;
  }

  // A job's error ({code, message}) in the page's language, as tintype.apiError says it.
  function jobError(job) {
    if (!job.error) return "";
    return typeof job.error === "object" ? apiError({ error: job.error }, job.error.message || "") : String(job.error);
  }

  // Screen readers hear the status and stage when they change and the progress every 10 %,
  // from one quiet live region; the visible texts, rewritten every second, are not live.
  let announced = null;
  function announce(job) {
    const el = document.getElementById("job-announce");
    if (!el) return;
    const fraction = job.status === "succeeded" ? 1 : job.progress.fraction || 0;
    const now = { status: job.status, stage: job.stage, tenth: Math.floor(fraction * 10) };
    if (announced && announced.status === now.status && announced.stage === now.stage && announced.tenth === now.tenth) return;
    const first = announced === null;
    announced = now;
    if (first) return;  // the page already shows it; nothing has changed yet
    text(el, [word(job.status), word(job.stage), percent(fraction)].join(" · "));
  }

  function render(root, job) {
    text(document.getElementById("job-status"), word(job.status));
    document.getElementById("job-status").dataset.status = job.status;
    text(document.getElementById("job-stage"), word(job.stage));
    document.getElementById("job-stage").dataset.stage = job.stage;  // the API's word, for scripts and tests
    text(document.getElementById("job-ops"), job.operations.map(word).join(" + "));
    const bar = document.getElementById("job-progress");
    bar.value = job.status === "succeeded" ? 1 : job.progress.fraction;
    text(document.getElementById("job-progress-text"),
      job.progress.total ? t("{done} / {total} chunks", { done: number(job.progress.done), total: number(job.progress.total) }) : "");
    text(document.getElementById("job-error"), jobError(job));
    announce(job);
    const notes = document.getElementById("job-notes");
    notes.replaceChildren(...job.notes.map((n) => { const li = document.createElement("li"); li.textContent = n; return li; }));
    document.getElementById("cancel-button").hidden = !["queued", "running"].includes(job.status);
    document.getElementById("delete-button").hidden = ["queued", "running"].includes(job.status);
    text(document.getElementById("job-json"), JSON.stringify(job, null, 2));
    showInput(root, job);
    showResult(job);
    showOutcome(root, job);
    showQuality(job);
    showKeyframes(job);
    const recolour = document.getElementById("recolour-form");
    if (recolour) recolour.hidden = job.status !== "succeeded";
    root.dispatchEvent(new CustomEvent("tintype:job", { detail: job, bubbles: true }));  // compare.js, ...
  }

  // <time data-local> written by the server (in UTC): in the visitor's own time zone.
  function localTimes() {
    for (const el of document.querySelectorAll("time[data-local]")) {
      if (el.dateTime) el.textContent = date(el.dateTime);
    }
  }

  function watchJob(root) {
    const api = root.dataset.api;
    localTimes();
    const tick = async () => {
      const response = await fetch(api, { headers: { Accept: "application/json" } });
      if (!response.ok) { setTimeout(tick, 3000); return; }
      const job = await response.json();
      render(root, job);
      if (["queued", "running"].includes(job.status)) setTimeout(tick, 1000);
    };
    const recolour = document.getElementById("recolour-form");
    if (recolour) bindRecolourForm(recolour);
    document.getElementById("cancel-button").addEventListener("click", async () => {
      await fetch(api, { method: "DELETE", headers: { "X-CSRF-Token": csrfToken() } });
      tick();
    });
    const remove = document.getElementById("delete-button");
    remove.addEventListener("click", async () => {
      if (!window.confirm(t("Delete this job, its input and its results?"))) return;
      const response = await fetch(api, { method: "DELETE", headers: { "X-CSRF-Token": csrfToken() } });
      if (response.status === 204) window.location = remove.dataset.after;
    });
    // Pushed by the server (static/live.js) where the browser can; else polled.
    const live = typeof tintypeLive !== "undefined" && tintypeLive.watchJob(root, (job) => render(root, job), tick);
    if (!live) tick();
  }

  // The gallery picture of a job: before | after for video, the result for an image,
  // else the input's poster frame.
  function thumbnail(job) {
    const image = job.kind === "image" && job.result ? job.result.url : null;
    const src = job.compare_url || image || job.preview_url;
    if (!src) return "";
    const img = document.createElement("img");
    img.src = src; img.loading = "lazy"; img.className = "thumb";
    img.alt = job.compare_url ? t("before | after") : t("preview");
    return img;
  }

  const PER_PAGE = 20;

  // One row of the jobs list (also built by static/live.js as the server pushes changes).
  function row(job) {
    const headings = [...document.querySelectorAll("table.jobs thead th")].map((th) => th.textContent);
    const tr = document.createElement("tr");
    tr.dataset.job = job.id;
    const link = document.createElement("a");
    link.href = job.links.page; link.textContent = job.input.name;
    const created = document.createElement("time");
    created.dateTime = job.created_at || ""; created.textContent = date(job.created_at);
    const cells = [thumbnail(job), link, word(job.kind), job.operations.map(word).join(" + "), word(job.status),
      percent(job.status === "succeeded" ? 1 : job.progress.fraction), created];
    // Each cell carries its column's heading: a phone shows the rows as cards (style.css).
    cells.forEach((c, i) => {
      const td = document.createElement("td");
      td.dataset.label = headings[i] || ""; td.append(c); tr.append(td);
    });
    return tr;
  }

  function listJobs(api) {
    let page = 1, total = 0, perPage = PER_PAGE, newest = null;
    // "page 2 of 3" and Newer/Older from the total the server last said, kept up to date
    // as pushed jobs join or leave the filtered list (static/live.js).
    const pager = () => {
      text(document.getElementById("page-info"), t("page {page} of {pages}",
        { page: number(page), pages: number(Math.max(1, Math.ceil(total / perPage))) }));
      document.getElementById("page-info").dataset.total = String(total);  // for scripts and tests
      document.getElementById("prev-page").disabled = page <= 1;
      document.getElementById("next-page").disabled = page * perPage >= total;
    };
    const load = async () => {
      const params = new URLSearchParams({ page, per_page: PER_PAGE });
      const status = document.getElementById("filter-status").value;
      const kind = document.getElementById("filter-kind").value;
      if (status) params.set("status", status);
      if (kind) params.set("kind", kind);
      const body = await (await fetch(`${api}?${params}`)).json();
      document.getElementById("jobs-body").replaceChildren(...body.items.map(row));
      total = body.total; perPage = body.per_page || PER_PAGE;
      newest = page === 1 && body.items.length ? body.items[0].created_at : new Date().toISOString();
      pager();
    };
    document.getElementById("prev-page").onclick = () => { page -= 1; load(); };
    document.getElementById("next-page").onclick = () => { page += 1; load(); };
    document.getElementById("filter-status").onchange = () => { page = 1; load(); };
    document.getElementById("filter-kind").onchange = () => { page = 1; load(); };
    load();
    // Rows change as the server pushes (static/live.js) where the browser can; else polled.
    const matches = (job) => [["filter-status", job.status], ["filter-kind", job.kind]]
      .every(([id, value]) => !document.getElementById(id).value || document.getElementById(id).value === value);
    const poll = () => setInterval(load, 5000);
    const live = typeof tintypeLive !== "undefined" && tintypeLive.watchList(api, {
      row, matches, page: () => page, perPage: () => perPage,
      listed: (job) => newest !== null && Date.parse(job.created_at) <= Date.parse(newest),  // counted by the last load
      counted: (change) => { total = Math.max(0, total + change); pager(); },
    }, poll);
    if (!live) poll();
  }

  return { bindUploadForm, watchJob, listJobs, appendKeyframes, measureTone, colourPlan, lab, t, text, csrfToken,
    number, percent, date, word, localTimes, apiError };
})();
