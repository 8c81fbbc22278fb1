// Colour hints in the page (templates/_hint_editor.html): paint a few strokes on a keyframe
// or a photograph's result, preview the recoloured picture (POST .../hints), then re-colour
// the film with the edited keyframes (POST .../recolour) or download the photo.
// Everything goes through REST v1; the strokes are an RGBA PNG whose alpha marks them.
"use strict";
(() => {
  const editor = document.getElementById("hint-editor");
  const root = document.getElementById("job");
  if (!editor || !root) return;
  const t = tintype.t;
  const api = root.dataset.api;
  const $ = (id) => document.getElementById(id);
  const canvas = $("hint-canvas");
  const view = canvas.getContext("2d");
  const colour = $("hint-colour"), size = $("hint-size"), dropper = $("hint-eyedropper");
  const previewView = $("hint-preview-view"), previewImg = $("hint-preview-img");
  const state = {
    target: null,       // {frame, hintsUrl} for a keyframe; {frame: null, hintsUrl} for a photo
    base: null,         // the picture painted on (an ImageBitmap-like drawable), native size
    pixels: null,       // its RGBA pixels, for the eyedropper
    strokes: [],        // {colour, size, points: [[x, y], ...]} in the picture's pixels
    current: null,
    cursor: null,       // keyboard brush position
    penDown: false,
    edits: new Map(),   // frame -> Blob sent as keyframe <frame>.png (hinted, or a dropped photo)
    dropped: false,     // the picture is a dropped photo: it is sent as it is
    kept: new Map(),    // frame (or "photo") -> {target, strokes, base, dropped}: what reopening shows again
    dirty: new Set(),   // keyframes whose strokes changed since their edit was last previewed
    revision: 0,        // counts stroke changes: a preview answered after a change is not the edit's last word
    opening: 0,         // counts open() calls: a picture that loads after a newer open is dropped
    loading: Promise.resolve(),  // settles once the picture last opened is shown (or failed)
    opener: null,       // the button that opened the editor: Close gives it the focus back
  };

  function say(message) { tintype.text($("hint-status"), message); }
  function fail(message) { tintype.text($("hint-error"), message); }

  // The API's refusal in the page's language where the code is known (tintype.apiError).
  function errorOf(body, status) {
    return tintype.apiError(body, t("The request failed: HTTP {status}", { status }));
  }

  // The picture as same-origin pixels: fetched directly, or (when the store answers with a
  // presigned URL on another origin) through the hints endpoint with no strokes, which
  // returns the stored picture unchanged.
  async function loadPicture(url, hintsUrl) {
    try {
      const response = await fetch(url);
      if (response.ok) return await createImageBitmap(await response.blob());
    } catch (_) { /* another origin without CORS: below */ }
    const probe = new Image();
    await new Promise((resolve, reject) => { probe.onload = resolve; probe.onerror = reject; probe.src = url; });
    const blank = document.createElement("canvas");
    blank.width = probe.naturalWidth; blank.height = probe.naturalHeight;
    const response = await postStrokes(hintsUrl, await toBlob(blank));
    if (!response.ok) throw new Error(errorOf(await response.json().catch(() => null), response.status));
    return createImageBitmap(await response.blob());
  }

  function toBlob(c) { return new Promise((resolve) => c.toBlob(resolve, "image/png")); }

  function postStrokes(url, blob) {
    const data = new FormData();
    data.append("strokes", blob, "strokes.png");
    return fetch(url, { method: "POST", body: data, headers: { "X-CSRF-Token": tintype.csrfToken() } });
  }

  function setBase(drawable) {
    state.base = drawable;
    canvas.width = drawable.width; canvas.height = drawable.height;
    const scratch = document.createElement("canvas");
    scratch.width = drawable.width; scratch.height = drawable.height;
    const context = scratch.getContext("2d", { willReadFrequently: true });
    context.drawImage(drawable, 0, 0);
    state.pixels = context.getImageData(0, 0, drawable.width, drawable.height).data;
    state.cursor = [drawable.width / 2, drawable.height / 2];
    fit();
    redraw();
  }

  // Shown as wide as its column allows, but never taller than 60% of the window, so the
  // whole picture can be painted without scrolling.
  function fit() {
    if (!state.base) return;
    const tallest = 0.6 * window.innerHeight * canvas.width / canvas.height;
    canvas.style.width = `${Math.min(canvas.parentElement.clientWidth, tallest)}px`;
  }
  window.addEventListener("resize", fit);

  function paintStroke(context, stroke) {
    context.strokeStyle = stroke.colour; context.fillStyle = stroke.colour;
    context.lineWidth = stroke.size; context.lineCap = "round"; context.lineJoin = "round";
    const [first, ...rest] = stroke.points;
    if (!rest.length) {
      context.beginPath(); context.arc(first[0], first[1], stroke.size / 2, 0, 2 * Math.PI); context.fill(); return;
    }
    context.beginPath(); context.moveTo(first[0], first[1]);
    for (const [x, y] of rest) context.lineTo(x, y);
    context.stroke();
  }

  function redraw() {
    if (!state.base) return;
    view.clearRect(0, 0, canvas.width, canvas.height);
    view.drawImage(state.base, 0, 0);
    for (const stroke of state.strokes) paintStroke(view, stroke);
    if (state.current) paintStroke(view, state.current);
    if (document.activeElement === canvas && state.cursor) {  // where the keyboard brush is
      view.save(); view.strokeStyle = "#fff"; view.setLineDash([3, 3]); view.lineWidth = 1;
      view.beginPath(); view.arc(state.cursor[0], state.cursor[1], Number(size.value) / 2, 0, 2 * Math.PI);
      view.stroke(); view.restore();
    }
  }

  // The strokes alone, opaque where painted, transparent elsewhere: what the endpoint takes.
  // Drawn at the size of the picture they were painted on (`base`), which need not be the one
  // on the canvas now: Re-colour renders the strokes of every kept keyframe.
  function strokesBlob(strokes = state.strokes, base = state.base) {
    const layer = document.createElement("canvas");
    layer.width = base.width; layer.height = base.height;
    const context = layer.getContext("2d");
    for (const stroke of strokes) paintStroke(context, stroke);
    return toBlob(layer);
  }

  function pointAt(event) {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  }

  function pick([x, y]) {
    const i = 4 * (Math.min(canvas.height - 1, Math.max(0, Math.round(y))) * canvas.width
      + Math.min(canvas.width - 1, Math.max(0, Math.round(x))));
    const hex = (v) => v.toString(16).padStart(2, "0");
    colour.value = `#${hex(state.pixels[i])}${hex(state.pixels[i + 1])}${hex(state.pixels[i + 2])}`;
    setDropper(false);
    say(t("Picked {colour}", { colour: colour.value }));
  }

  function setDropper(on) { dropper.setAttribute("aria-pressed", String(on)); canvas.classList.toggle("picking", on); }
  const picking = () => dropper.getAttribute("aria-pressed") === "true";

  function startStroke(point) {
    state.current = { colour: colour.value, size: Number(size.value), points: [point] };
    redraw();
  }
  function endStroke() {
    if (!state.current) return;
    state.strokes.push(state.current); state.current = null;
    changed();
  }
  // Any change of a keyframe's strokes makes its edit stale (previewed again by Re-colour);
  // with no strokes left it is no edit at all. A dropped photo stays the edit, strokes or not.
  function changed() {
    state.revision += 1;
    const frame = state.target && state.target.frame;
    if (frame !== null && frame !== undefined && !state.dropped) {
      if (state.strokes.length) state.dirty.add(frame);
      else { state.dirty.delete(frame); unmarkEdited(frame); }
    }
    redraw();
    say(t("Strokes: {n}", { n: state.strokes.length }));
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (!state.base || event.button > 0) return;
    event.preventDefault();
    canvas.focus({ preventScroll: true });
    if (picking()) { pick(pointAt(event)); return; }
    canvas.setPointerCapture(event.pointerId);
    startStroke(pointAt(event));
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!state.current) return;
    for (const e of event.getCoalescedEvents ? event.getCoalescedEvents() : [event]) state.current.points.push(pointAt(e));
    redraw();
  });
  for (const name of ["pointerup", "pointercancel"]) canvas.addEventListener(name, endStroke);

  // Keyboard: arrows move the brush (painting while Space has put it down), Space toggles
  // the pen, Enter picks a colour when the eyedropper is on, Ctrl+Z undoes, [ ] resize.
  canvas.addEventListener("keydown", (event) => {
    if (!state.base) return;
    const step = event.shiftKey ? 20 : 5;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[event.key]) {
      const [dx, dy] = moves[event.key];
      state.cursor = [Math.min(canvas.width, Math.max(0, state.cursor[0] + dx)),
        Math.min(canvas.height, Math.max(0, state.cursor[1] + dy))];
      if (state.penDown && state.current) state.current.points.push([...state.cursor]);
      redraw();
    } else if (event.key === " ") {
      state.penDown = !state.penDown;
      if (state.penDown) startStroke([...state.cursor]); else endStroke();
    } else if (event.key === "Enter" && picking()) {
      pick(state.cursor);
    } else if (event.key === "z" && (event.ctrlKey || event.metaKey)) {
      undo();
    } else if (event.key === "[" || event.key === "]") {
      size.value = String(Number(size.value) + (event.key === "]" ? 2 : -2)); redraw();
    } else {
      return;
    }
    event.preventDefault();
  });
  canvas.addEventListener("focus", redraw);
  canvas.addEventListener("blur", () => { if (state.penDown) { state.penDown = false; endStroke(); } redraw(); });

  function undo() {
    if (state.strokes.length) { state.strokes.pop(); changed(); }
  }
  $("hint-undo").addEventListener("click", undo);
  $("hint-clear").addEventListener("click", () => { state.strokes = []; changed(); });
  dropper.addEventListener("click", () => setDropper(!picking()));

  // The picture recoloured by `strokes` (POST .../hints): a Blob, or null with the reason shown.
  // A network failure is a message too, never an unhandled rejection.
  async function hinted(hintsUrl, strokes, base) {
    let response;
    try {
      response = await postStrokes(hintsUrl, await strokesBlob(strokes, base));
      if (response.ok) return await response.blob();
    } catch (_) {
      fail(t("The request failed: the server could not be reached.")); return null;
    }
    fail(errorOf(await response.json().catch(() => null), response.status));
    return null;
  }

  // Preview: the picture recoloured by the strokes; for a keyframe it becomes the edit.
  async function preview() {
    fail("");
    if (!state.base) return false;  // still loading
    if (state.dropped) {
      if (state.strokes.length) fail(t("Strokes apply to the stored keyframe; a dropped photo is sent as it is."));
      return true;
    }
    if (!state.strokes.length) { fail(t("Paint a stroke first.")); return false; }
    say(t("Working…"));
    const target = state.target, revision = state.revision;
    const blob = await hinted(target.hintsUrl, state.strokes, state.base);
    if (!blob) { say(""); return false; }
    // Strokes changed while it was asked for: not the edit (the frame is dirty, Re-colour asks again).
    if (target.frame !== null && revision === state.revision) {
      markEdited(target.frame, blob);
      state.dirty.delete(target.frame);
    }
    if (target !== state.target) return true;  // another picture was opened meanwhile
    if (previewImg.src.startsWith("blob:")) URL.revokeObjectURL(previewImg.src);
    previewImg.src = URL.createObjectURL(blob);
    previewView.hidden = false;
    const download = $("hint-download");
    if (download) { download.href = previewImg.src; download.download = "hinted.png"; download.hidden = false; }
    say(t("Preview ready"));
    return true;
  }
  $("hint-preview").addEventListener("click", preview);

  function markEdited(frame, blob) {
    state.edits.set(frame, blob);
    const opener = document.querySelector(`.keyframe-open[data-frame="${frame}"]`);
    if (opener) opener.classList.add("edited");
  }
  function unmarkEdited(frame) {
    state.edits.delete(frame);
    const opener = document.querySelector(`.keyframe-open[data-frame="${frame}"]`);
    if (opener) opener.classList.remove("edited");
  }

  // A colour photo dropped on the picture (or chosen) replaces the keyframe as it is.
  async function usePhoto(file) {
    const target = state.target;
    if (!target || target.frame === null || !file || !file.type.startsWith("image/")) return;
    fail("");
    await state.loading;  // its size is the keyframe's, known once it has loaded
    if (target !== state.target || !state.base) return;
    try {
      const bitmap = await createImageBitmap(file);
      if (target !== state.target) return;  // another keyframe was opened meanwhile
      const fitted = document.createElement("canvas");  // at the keyframe's size
      fitted.width = canvas.width; fitted.height = canvas.height;
      fitted.getContext("2d").drawImage(bitmap, 0, 0, fitted.width, fitted.height);
      state.strokes = []; state.dropped = true; state.dirty.delete(target.frame);
      setBase(fitted);
      markEdited(target.frame, await toBlob(fitted));
      say(t("The photo replaces keyframe {frame}", { frame: target.frame }));
    } catch (_) {
      fail(t("That file cannot be read as a picture."));
    }
  }
  canvas.addEventListener("dragover", (event) => { event.preventDefault(); canvas.classList.add("dropping"); });
  canvas.addEventListener("dragleave", () => canvas.classList.remove("dropping"));
  canvas.addEventListener("drop", (event) => {
    event.preventDefault(); canvas.classList.remove("dropping");
    usePhoto(event.dataTransfer.files[0]);
  });
  const photo = $("hint-photo");
  if (photo) photo.addEventListener("change", () => usePhoto(photo.files[0]));

  // Every keyframe painted in this visit, the open one included: {target, strokes, base, dropped}.
  function paintedKeyframes() {
    const all = new Map(state.kept);
    if (state.target && state.base) all.set(keyOf(state.target), current());
    return [...all.values()].filter((entry) => entry.target.frame !== null);
  }

  // Whatever strokes changed since their preview (on any keyframe, open or not) is previewed
  // again first, so the job gets exactly what is painted now.
  async function refreshEdits() {
    for (const entry of paintedKeyframes()) {
      const frame = entry.target.frame;
      if (entry.dropped || !state.dirty.has(frame) || !entry.strokes.length) continue;
      if (entry.target === state.target) { if (!(await preview())) return false; continue; }
      say(t("Working…"));
      const revision = state.revision;
      const blob = await hinted(entry.target.hintsUrl, entry.strokes, entry.base);
      if (!blob) { say(""); return false; }
      if (revision === state.revision) { markEdited(frame, blob); state.dirty.delete(frame); }
    }
    if (paintedKeyframes().some((entry) => !entry.dropped && state.dirty.has(entry.target.frame))) {
      say(""); fail(t("The strokes changed meanwhile: press Re-colour again.")); return false;
    }
    return true;
  }

  // Re-colour: every edited keyframe as a `keyframes` part <frame>.png, then the new job.
  const recolour = $("hint-recolour");
  if (recolour) {
    recolour.addEventListener("click", async () => {
      fail("");
      recolour.disabled = true;
      try {
        if (!(await refreshEdits())) return;
        if (!state.edits.size) { fail(t("Paint a stroke first.")); return; }
        const data = new FormData();
        for (const [frame, blob] of state.edits) data.append("keyframes", blob, `${frame}.png`);
        data.append("colour_mode", "keyframes");  // keyframes are carried only in this mode
        say(t("Starting the recolour…"));
        const response = await fetch(`${api}/recolour`, { method: "POST", body: data,
          headers: { "X-CSRF-Token": tintype.csrfToken(), Accept: "application/json" } });
        const body = await response.json().catch(() => null);
        if (response.status === 202) { window.location = body.links.page; return; }
        say("");
        fail(errorOf(body, response.status));
      } catch (_) {
        say(""); fail(t("The request failed: the server could not be reached."));
      } finally {
        recolour.disabled = false;
      }
    });
  }

  const keyOf = (target) => (target.frame === null ? "photo" : target.frame);

  const current = () => ({ target: state.target, strokes: state.strokes, base: state.base, dropped: state.dropped });

  // Opening another picture keeps this one's strokes. Until the new picture has loaded there is
  // no base, so nothing can be painted and nothing is kept under the new target; a picture that
  // loads after a newer open() (two keyframes clicked quickly) is dropped.
  async function open(target, pictureUrl, title, opener) {
    if (state.target && state.base) state.kept.set(keyOf(state.target), current());
    const token = ++state.opening;
    const kept = state.kept.get(keyOf(target));
    state.target = target; state.current = null; state.penDown = false;
    state.base = null; view.clearRect(0, 0, canvas.width, canvas.height);
    state.strokes = kept ? kept.strokes : []; state.dropped = kept ? kept.dropped : false;
    state.opener = opener || null;
    previewView.hidden = true; fail(""); say(t("Loading…"));
    editor.hidden = false;
    tintype.text($("hint-title"), title);
    $("hint-title").focus();
    editor.setAttribute("aria-busy", "true");
    state.loading = (async () => {
      try {
        const base = kept ? kept.base : await loadPicture(pictureUrl, target.hintsUrl);
        if (token !== state.opening) return;
        setBase(base);
        say(state.strokes.length ? t("Strokes: {n}", { n: state.strokes.length }) : "");
      } catch (e) {
        if (token === state.opening) fail(t("The picture could not be loaded: {why}", { why: e.message || e }));
      } finally {
        if (token === state.opening) editor.removeAttribute("aria-busy");
      }
    })();
    await state.loading;
  }

  // Close gives the focus back to what opened the editor (the strip may have been drawn
  // again meanwhile: then its button for the same keyframe).
  $("hint-close").addEventListener("click", () => {
    editor.hidden = true;
    const frame = state.target && state.target.frame;
    let back = state.opener;
    if (!back || !back.isConnected) {
      back = frame === null || frame === undefined ? $("hint-open-photo")
        : document.querySelector(`.keyframe-open[data-frame="${frame}"]`);
    }
    if (back) back.focus();
  });

  // The keyframe strip (app.js showKeyframes) puts a button on each keyframe.
  const strip = document.getElementById("keyframes-strip");
  if (strip) {
    strip.addEventListener("click", (event) => {
      const button = event.target.closest(".keyframe-open");
      if (!button) return;
      const frame = Number(button.dataset.frame);
      open({ frame, hintsUrl: `${api}/keyframes/${frame}/hints` }, button.dataset.url,
        t("Keyframe of frame {n}", { n: frame }), button);
    });
  }

  // A photograph: "Paint colour hints" once it has a result.
  const openPhoto = $("hint-open-photo");
  const status = $("job-status");
  if (editor.dataset.kind === "image" && openPhoto && status) {
    const offer = () => { $("hint-open-photo-row").hidden = status.dataset.status !== "succeeded"; };
    new MutationObserver(offer).observe(status, { attributes: true, attributeFilter: ["data-status"] });
    offer();
    openPhoto.addEventListener("click", () => open({ frame: null, hintsUrl: `${api}/result/hints` },
      `${api}/result`, t("Colour hints on the result"), openPhoto));
  }
})();
