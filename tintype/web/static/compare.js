// Compare on a job's page: the result over the input with a divider the user drags (pointer,
// touch, pen or keyboard). A film's two players are locked to one timeline: one play button,
// one seek bar, frame stepping; the input follows the result within a frame. A toggle shows
// what inpainting filled (on a film, the mask of the frame shown, fetched from the server);
// a button shows it all full screen.
// app.js announces each fetched job with a "tintype:job" event; nothing else couples them.
"use strict";
tintype.compare = (() => {
  const t = tintype.t;
  const STEP = 1, BIG_STEP = 10;  // divider keys: percent per arrow key, per Page key
  let built = false;
  let film = null;  // a film's { toFrame, frame, playing } once its players are built
  let filmMasks = null;  // a film's mask fetcher (filmMaskLayer) once the toggle is bound

  // "30000/1001" (the job's input facts) → 29.97; a missing or odd rate gives 25.
  function frameRate(text) {
    const [num, den] = String(text || "").split("/").map(Number);
    const rate = den ? num / den : num;
    return Number.isFinite(rate) && rate > 0 ? rate : 25;
  }

  function el(id) { return document.getElementById(id); }

  // The divider at `percent` of the stage's width: the result shows right of it.
  function placeDivider(percent) {
    const value = Math.min(100, Math.max(0, percent));
    const stage = el("cmp-stage");
    stage.style.setProperty("--cmp-at", `${value}%`);
    const divider = el("cmp-divider");
    divider.setAttribute("aria-valuenow", String(Math.round(value)));
    divider.setAttribute("aria-valuetext", t("{before}% before, {after}% after",
      { before: Math.round(value), after: Math.round(100 - value) }));
    return value;
  }

  function dividerAt() { return Number(el("cmp-divider").getAttribute("aria-valuenow")); }

  // Drag anywhere on the picture with a mouse, a finger or a pen; the divider follows.
  function bindPointer(stage) {
    const follow = (event) => {
      const box = stage.getBoundingClientRect();
      placeDivider(100 * (event.clientX - box.left) / box.width);
    };
    stage.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 || event.target.closest("button, input, a")) return;
      stage.setPointerCapture(event.pointerId);
      stage.classList.add("cmp-dragging");
      el("cmp-divider").focus({ preventScroll: true });
      follow(event);
      event.preventDefault();
    });
    stage.addEventListener("pointermove", (event) => {
      if (stage.hasPointerCapture(event.pointerId)) follow(event);
    });
    const stop = (event) => {
      if (stage.hasPointerCapture(event.pointerId)) stage.releasePointerCapture(event.pointerId);
      stage.classList.remove("cmp-dragging");
    };
    stage.addEventListener("pointerup", stop);
    stage.addEventListener("pointercancel", stop);
  }

  // The divider is a slider: arrows move it a little, Page keys a lot, Home/End to the ends.
  function bindDividerKeys(divider) {
    divider.addEventListener("keydown", (event) => {
      const moves = { ArrowLeft: -STEP, ArrowDown: -STEP, ArrowRight: STEP, ArrowUp: STEP,
        PageDown: -BIG_STEP, PageUp: BIG_STEP };
      let to = null;
      if (event.key in moves) to = dividerAt() + (event.shiftKey ? 10 : 1) * moves[event.key];
      else if (event.key === "Home") to = 0;
      else if (event.key === "End") to = 100;
      if (to === null) return;
      placeDivider(to);
      event.preventDefault();
    });
  }

  // Full screen through the Fullscreen API; where it is missing or refused, the compare
  // box covers the window instead (Escape or the button leaves either).
  function bindFullscreen(section) {
    const button = el("cmp-fullscreen");
    const isFull = () => document.fullscreenElement === section || section.classList.contains("cmp-full");
    const label = () => {
      const full = isFull();
      button.setAttribute("aria-pressed", String(full));
      tintype.text(button, full ? t("Exit full screen") : t("Full screen"));
    };
    const fallback = (on) => { section.classList.toggle("cmp-full", on); label(); };
    button.addEventListener("click", async () => {
      if (isFull()) {
        if (document.fullscreenElement) await document.exitFullscreen(); else fallback(false);
        return;
      }
      if (section.requestFullscreen && document.fullscreenEnabled) {
        try { await section.requestFullscreen(); return; } catch (_) { /* refused: cover the window */ }
      }
      fallback(true);
    });
    document.addEventListener("fullscreenchange", label);
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && section.classList.contains("cmp-full")) fallback(false);
    });
  }

  function picture(url, alt) {
    const img = document.createElement("img");
    img.src = url; img.alt = alt; img.draggable = false;
    return img;
  }

  // The stage keeps the result's shape, so both layers and the masks line up.
  function shapeStage(width, height) {
    if (width > 0 && height > 0) el("cmp-stage").style.setProperty("--cmp-aspect", String(width / height));
  }

  function showPhotos(job) {
    const after = picture(job.result.url, t("Result"));
    after.addEventListener("load", () => shapeStage(after.naturalWidth, after.naturalHeight));
    const before = picture(job.input.url, t("Input"));
    // A scan the browser cannot draw (a TIFF, say) is shown by its preview, if it has one.
    before.addEventListener("error", () => {
      if (job.preview_url && before.src !== job.preview_url) before.src = job.preview_url;
      else tintype.text(el("cmp-note"), t("This browser cannot show the input picture."));
    });
    el("cmp-before").replaceChildren(before);
    el("cmp-after").replaceChildren(after);
  }

  // Two players on one timeline. The result leads (it has the sound); the input follows its
  // currentTime, re-seeked whenever they drift apart by more than half a frame.
  function showFilms(job) {
    const facts = job.input.facts || {};
    const fps = frameRate(facts.fps);
    const frames = Math.max(1, Number(facts.frames) || 1);
    const lead = document.createElement("video");
    const follower = document.createElement("video");
    for (const [video, url, name] of [[lead, job.result.url, t("Result")], [follower, job.input.url, t("Input")]]) {
      video.preload = "auto"; video.playsInline = true; video.src = url; video.controls = false;
      video.setAttribute("aria-label", name);
      if (job.preview_url) video.poster = job.preview_url;
    }
    follower.muted = true;
    lead.addEventListener("loadedmetadata", () => shapeStage(lead.videoWidth, lead.videoHeight));
    follower.addEventListener("error", () => tintype.text(el("cmp-note"),
      t("This browser cannot play the input film; the divider shows the result over its poster frame.")));
    el("cmp-before").replaceChildren(follower);
    el("cmp-after").replaceChildren(lead);

    const seek = el("cmp-seek");
    const play = el("cmp-play");
    seek.max = String(frames - 1);
    const frameOf = (time) => Math.min(frames - 1, Math.max(0, Math.floor(time * fps + 1e-3)));
    // One seek at a time: a follower still seeking is left to land before it is moved again.
    const keepUp = () => {
      if (!follower.seeking && Math.abs(follower.currentTime - lead.currentTime) > 0.5 / fps) {
        follower.currentTime = lead.currentTime;
      }
      if (!lead.paused && follower.paused && !follower.ended) follower.play().catch(() => null);
    };
    const show = () => {
      const frame = frameOf(lead.currentTime);
      seek.value = String(frame);
      seek.setAttribute("aria-valuetext", t("Frame {n} of {total}", { n: frame + 1, total: frames }));
      tintype.text(el("cmp-frame"), t("Frame {n} of {total}", { n: frame + 1, total: frames }));
      tintype.text(play, lead.paused ? t("Play") : t("Pause"));
      el("cmp-stage").dataset.frame = String(frame);
      if (lead.paused || lead.ended) showMasksHere(frame);
    };
    // Frame n is shown from n/fps to (n+1)/fps: aim at its middle, clear of rounding.
    const toFrame = (frame) => {
      const n = Math.min(frames - 1, Math.max(0, frame));
      lead.pause(); follower.pause();
      lead.currentTime = follower.currentTime = (n + 0.5) / fps;
      show();
    };
    const loop = () => {
      keepUp(); show();
      if (!lead.paused && !lead.ended) requestAnimationFrame(loop);
    };
    const start = async () => {
      if (lead.ended) lead.currentTime = 0;
      follower.currentTime = lead.currentTime;
      try { await Promise.all([lead.play(), follower.play().catch(() => null)]); } catch (_) { show(); return; }
      requestAnimationFrame(loop);
    };
    play.addEventListener("click", () => { if (lead.paused || lead.ended) start(); else { lead.pause(); follower.pause(); } });
    lead.addEventListener("pause", () => { follower.pause(); keepUp(); show(); });
    lead.addEventListener("ended", () => { follower.pause(); show(); });
    lead.addEventListener("seeked", () => { keepUp(); show(); });
    // While playing, the masks follow at the media's own modest pace, not every painted frame.
    lead.addEventListener("timeupdate", () => { if (!lead.paused) showMasksHere(frameOf(lead.currentTime)); });
    seek.addEventListener("input", () => toFrame(Number(seek.value)));
    el("cmp-prev").addEventListener("click", () => toFrame(frameOf(lead.currentTime) - 1));
    el("cmp-next").addEventListener("click", () => toFrame(frameOf(lead.currentTime) + 1));
    // , and . step a frame, as in most editors, unless the keys are being typed into a field.
    document.addEventListener("keydown", (event) => {
      if (event.key !== "," && event.key !== ".") return;
      if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
      toFrame(frameOf(lead.currentTime) + (event.key === "," ? -1 : 1));
      event.preventDefault();
    });
    el("cmp-film-controls").hidden = false;
    film = { toFrame, frame: () => frameOf(lead.currentTime), playing: () => !lead.paused && !lead.ended };
    show();
  }

  function typing(target) {
    if (!target || !target.closest) return false;
    if (target.isContentEditable || target.closest("textarea, select")) return true;
    const input = target.closest("input");
    return Boolean(input) && !["range", "checkbox", "radio", "button", "submit"].includes(input.type);
  }

  // "Show what was filled": the mask is laid over the picture in red (an SVG filter turns
  // its white into translucent red, its black into nothing). A photo's is its PNG; a film's
  // is kept as a lossless video no browser decodes, so the server sends the shown frame's
  // mask as a PNG (GET .../masks/frames/<n>).
  function showMasksHere(frame) {
    const layer = el("cmp-masks");
    const on = el("cmp-masks-toggle").checked;
    layer.hidden = !on;
    if (on && filmMasks) filmMasks.want(frame);
  }

  // One request at a time: frames asked for while one loads are skipped but the latest, and
  // a paused film never shows a mask from another frame than its own (the layer's
  // data-frame says which frame it shows).
  function filmMaskLayer(url) {
    const layer = el("cmp-masks");
    let wanted = null, loading = null, shown = null;
    const next = () => {
      if (loading !== null || wanted === null || wanted === shown) return;
      const frame = loading = wanted;
      const img = picture(`${url}/frames/${frame}`, t("What was filled"));
      const done = (ok) => {
        loading = null;
        if (ok && (frame === wanted || film.playing())) {
          layer.replaceChildren(img);
          layer.dataset.frame = String(frame);
          shown = frame;
        } else if (!ok && frame === wanted) {
          layer.replaceChildren();
          delete layer.dataset.frame;
          shown = null; wanted = null;
          tintype.text(el("cmp-note"), t("What was filled on frame {n} could not be shown.", { n: frame + 1 }));
        }
        next();
      };
      img.addEventListener("load", () => done(true));
      img.addEventListener("error", () => done(false));
    };
    return { want: (frame) => { wanted = frame; next(); } };
  }

  function bindMasks(job) {
    const masks = job.masks;
    if (!masks || !masks.url) return;
    const layer = el("cmp-masks");
    const toggle = el("cmp-masks-toggle");
    if (film) filmMasks = filmMaskLayer(masks.url);
    toggle.addEventListener("change", () => {
      if (!film && !layer.firstChild) layer.append(picture(masks.url, t("What was filled")));
      showMasksHere(film ? film.frame() : 0);
    });
    el("cmp-masks-control").hidden = false;
  }

  function show(job) {
    if (built || job.status !== "succeeded" || !job.result) return;
    const section = el("compare-slider");
    if (!section) return;
    built = true;
    placeDivider(50);
    bindPointer(el("cmp-stage"));
    bindDividerKeys(el("cmp-divider"));
    bindFullscreen(section);
    if (job.kind === "video") showFilms(job); else showPhotos(job);
    bindMasks(job);
    section.hidden = false;
  }

  document.addEventListener("tintype:job", (event) => show(event.detail));
  return { show, frameRate, placeDivider };
})();
