// The mask painter: paint what to remove on any frame, draw boxes, preview tracking and
// detected damage; what it makes is exactly what REST v1 receives (a `mask` image, a ZIP of
// per-frame `masks`, and the `boxes` JSON). Loaded after app.js; uses tintype.t and csrfToken.
"use strict";
tintype.painter = (() => {
  const t = (m, p) => tintype.t(m, p);
  const MIN_SIZE = 2, MAX_SIZE = 200, HISTORY = 40;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (v === true) node.setAttribute(k, "");
      else if (v !== false && v != null) node.setAttribute(k, v);
    }
    node.append(...children);
    return node;
  }

  // ---------------------------------------------------------------- what the API receives

  const CRC_TABLE = (() => {
    const table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
    return table;
  })();
  function crc32(bytes) {
    let c = 0xffffffff;
    for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }

  // A ZIP of stored (uncompressed: PNGs are compressed already) files, in the order given.
  function zipStored(files) {
    const parts = [], central = [];
    let offset = 0;
    const enc = new TextEncoder();
    for (const { name, bytes } of files) {
      const nameBytes = enc.encode(name), crc = crc32(bytes);
      const local = new DataView(new ArrayBuffer(30));
      local.setUint32(0, 0x04034b50, true); local.setUint16(4, 20, true);
      local.setUint32(14, crc, true); local.setUint32(18, bytes.length, true); local.setUint32(22, bytes.length, true);
      local.setUint16(26, nameBytes.length, true);
      parts.push(local.buffer, nameBytes, bytes);
      const entry = new DataView(new ArrayBuffer(46));
      entry.setUint32(0, 0x02014b50, true); entry.setUint16(4, 20, true); entry.setUint16(6, 20, true);
      entry.setUint32(16, crc, true); entry.setUint32(20, bytes.length, true); entry.setUint32(24, bytes.length, true);
      entry.setUint16(28, nameBytes.length, true); entry.setUint32(42, offset, true);
      central.push(entry.buffer, nameBytes);
      offset += 30 + nameBytes.length + bytes.length;
    }
    const size = central.reduce((n, p) => n + p.byteLength, 0);
    const end = new DataView(new ArrayBuffer(22));
    end.setUint32(0, 0x06054b50, true); end.setUint16(8, files.length, true); end.setUint16(10, files.length, true);
    end.setUint32(12, size, true); end.setUint32(16, offset, true);
    return new Blob([...parts, ...central, end.buffer], { type: "application/zip" });
  }

  function pngBytes(canvas) {
    const binary = atob(canvas.toDataURL("image/png").split(",")[1]);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  // A painted layer (white strokes on transparent) as the API's mask: white on black, opaque.
  function maskCanvas(layer, width, height) {
    const out = document.createElement("canvas");
    out.width = width; out.height = height;
    const g = out.getContext("2d");
    g.fillStyle = "#000"; g.fillRect(0, 0, width, height);
    if (layer) g.drawImage(layer, 0, 0);
    return out;
  }

  function marks(layer) {
    const data = layer.getContext("2d").getImageData(0, 0, layer.width, layer.height).data;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 127) return true;
    return false;
  }

  // ---------------------------------------------------------------- the painter

  class Painter {
    // space: {kind, width, height, frames, frameUrl(n), damageUrl(n)|null, trackPreview(body)|null}
    constructor(root, space) {
      this.root = root;
      this.space = space;
      this.frame = 0;
      this.tool = "brush";
      this.size = Math.max(MIN_SIZE, Math.round(Math.max(space.width, space.height) / 40));
      this.layers = new Map(); // frame -> canvas (white strokes, transparent elsewhere)
      this.boxes = []; // {x, y, w, h, first, track}
      this.history = []; this.future = [];
      this.preview = null; // {frame -> [boxes]} from the track preview
      this.damage = null; // {frame, image}
      this.images = new Map();
      this.build();
      this.show(0);
    }

    build() {
      const s = this.space;
      this.canvas = el("canvas", { class: "painter-canvas", width: s.width, height: s.height, tabindex: "0",
        role: "img", "aria-label": t("Frame to paint on: drag to paint, erase or draw a box") });
      this.status = el("p", { class: "hint painter-status", "aria-live": "polite" });
      const tool = (name, label, key) => el("button", { type: "button", class: "painter-tool", "data-tool": name,
        "aria-pressed": "false", title: `${label} (${key})`, onclick: () => this.setTool(name), text: label });
      this.toolButtons = [tool("brush", t("Brush"), "B"), tool("eraser", t("Eraser"), "E"),
        tool("rect", t("Box"), "R")];
      this.sizeInput = el("input", { type: "range", min: MIN_SIZE, max: MAX_SIZE, value: this.size, "aria-label": t("Brush size"),
        oninput: (e) => this.setSize(+e.target.value) });
      this.sizeText = el("output", { text: String(this.size) });
      this.undoButton = el("button", { type: "button", onclick: () => this.undo(), text: t("Undo"),
        title: "Ctrl+Z" });
      this.redoButton = el("button", { type: "button", onclick: () => this.redo(), text: t("Redo"),
        title: "Ctrl+Shift+Z" });
      const last = s.frames - 1;
      this.slider = el("input", { type: "range", min: 0, max: last, value: 0, "aria-label": t("Frame"),
        oninput: (e) => this.show(+e.target.value) });
      this.number = el("input", { type: "number", min: 0, max: last, value: 0, class: "painter-frame",
        onchange: (e) => this.show(+e.target.value) });
      const step = (d, label) => el("button", { type: "button", "aria-label": label, text: d < 0 ? "◀" : "▶",
        onclick: () => this.show(this.frame + d) });
      const scrubber = el("div", { class: "painter-scrubber", hidden: s.frames < 2 },
        step(-1, t("Previous frame")), this.slider, step(1, t("Next frame")),
        el("label", {}, t("Frame") + " ", this.number), el("span", { class: "hint", text: "/ " + last }));
      this.boxList = el("ul", { class: "painter-boxes" });
      this.trackButton = el("button", { type: "button", text: t("Preview tracking"), hidden: !s.trackPreview,
        onclick: () => this.previewTracking() });
      this.damageButton = el("button", { type: "button", text: t("Detect damage on this frame"),
        hidden: !s.damageUrl, onclick: () => this.detectDamage() });
      this.useDamage = el("button", { type: "button", text: t("Use it"), hidden: true,
        onclick: () => this.addDamage() });
      this.root.replaceChildren(
        el("div", { class: "painter-bar", role: "toolbar", "aria-label": t("Painting tools") },
          ...this.toolButtons,
          el("span", { "aria-hidden": "true", text: t("Size") }), this.sizeInput, " ", this.sizeText,
          this.undoButton, this.redoButton, this.damageButton, this.useDamage, this.trackButton),
        el("div", { class: "painter-stage" }, this.canvas), scrubber, this.status,
        el("p", { class: "hint", text: s.frames > 1
          ? t("A mask painted on one frame is used for every frame; paint on more frames to give each its own. Boxes start on the frame they are drawn on.")
          : t("White marks what is removed.") }),
        this.boxList);
      this.bindPointer();
      this.canvas.addEventListener("keydown", (e) => this.key(e));
      this.root.addEventListener("keydown", (e) => { if (e.target !== this.canvas && !/INPUT|SELECT|TEXTAREA/.test(e.target.tagName)) this.key(e); });
      this.setTool("brush");
      this.renderBoxes();
    }

    // ------------------------------------------------------------ frames

    // Step to frame n. A frame not seen yet is asked for once the scrubber rests (each is a
    // decode on the server), so dragging the slider asks only for where it stops.
    show(n) {
      n = Math.max(0, Math.min(this.space.frames - 1, Number.isFinite(n) ? Math.round(n) : 0));
      this.frame = n;
      this.slider.value = n; this.number.value = n;
      this.damage = null; this.useDamage.hidden = true;
      this.render();
      clearTimeout(this.loading);
      return new Promise((resolve) => {
        this.loading = setTimeout(async () => {
          const image = await this.image(n);
          if (this.frame === n) { this.picture = image; this.render(); this.say(t("Frame {n}", { n })); }
          resolve();
        }, this.images.has(n) ? 0 : 120);
      });
    }

    image(n) {
      if (!this.images.has(n)) {
        this.images.set(n, new Promise((resolve) => {
          const img = new Image();
          img.onload = () => resolve(img);
          img.onerror = () => { this.images.delete(n); this.say(t("Frame {n} could not be loaded", { n })); resolve(null); };
          img.src = this.space.frameUrl(n);
        }));
      }
      return this.images.get(n);
    }

    layer(n, create) {
      if (!this.layers.has(n) && create) {
        const c = document.createElement("canvas");
        c.width = this.space.width; c.height = this.space.height;
        this.layers.set(n, c);
      }
      return this.layers.get(n);
    }

    render() {
      const g = this.canvas.getContext("2d"), { width, height } = this.space;
      g.clearRect(0, 0, width, height);
      g.fillStyle = "#333"; g.fillRect(0, 0, width, height);
      if (this.picture) g.drawImage(this.picture, 0, 0, width, height);
      if (this.damage && this.damage.frame === this.frame && this.damage.image) {
        g.globalAlpha = 0.8; g.drawImage(this.tinted(this.damage.image, "#ffd400"), 0, 0, width, height); g.globalAlpha = 1;
      }
      const layer = this.shownLayer();
      if (layer) { g.globalAlpha = 0.55; g.drawImage(this.tinted(layer, "#ff2020"), 0, 0); g.globalAlpha = 1; }
      const line = Math.max(1, Math.round(Math.max(width, height) / 300));
      g.lineWidth = line;
      for (const [i, b] of this.boxes.entries()) {
        if (b.first > this.frame || (b.last != null && b.last < this.frame)) continue;
        const moved = this.preview && this.preview[this.frame] && b.track ? this.preview[this.frame][i] : null;
        g.strokeStyle = "#ff2020"; g.setLineDash([]);
        g.fillStyle = "rgba(255,32,32,0.25)";
        if (!moved || b.first === this.frame) { g.fillRect(b.x, b.y, b.w, b.h); g.strokeRect(b.x, b.y, b.w, b.h); }
        if (moved && b.first !== this.frame) {
          g.strokeStyle = "#20c0ff"; g.setLineDash([4 * line, 3 * line]);
          g.strokeRect(moved.x, moved.y, moved.w, moved.h);
        }
      }
      if (this.drag && this.drag.box) {
        const r = this.drag.box;
        g.strokeStyle = "#fff"; g.setLineDash([3 * line, 3 * line]); g.strokeRect(r.x, r.y, r.w, r.h);
      }
      g.setLineDash([]);
    }

    // The layer this frame is masked with: its own, or the one mask used for every frame.
    shownLayer() {
      const own = this.layers.get(this.frame);
      if (own) return own;
      const painted = [...this.layers.keys()];
      return painted.length === 1 ? this.layers.get(painted[0]) : null;
    }

    tinted(source, colour) {
      const c = this._tint || (this._tint = document.createElement("canvas"));
      c.width = this.space.width; c.height = this.space.height;
      const g = c.getContext("2d");
      g.globalCompositeOperation = "source-over";
      g.clearRect(0, 0, c.width, c.height);
      g.drawImage(source, 0, 0, c.width, c.height);
      g.globalCompositeOperation = "source-in";
      g.fillStyle = colour; g.fillRect(0, 0, c.width, c.height);
      g.globalCompositeOperation = "source-over";
      return c;
    }

    // ------------------------------------------------------------ tools

    setTool(name) {
      this.tool = name;
      for (const b of this.toolButtons) b.setAttribute("aria-pressed", String(b.dataset.tool === name));
      this.canvas.dataset.tool = name;
    }

    setSize(size) {
      this.size = Math.max(MIN_SIZE, Math.min(MAX_SIZE, Math.round(size)));
      this.sizeInput.value = this.size; this.sizeText.value = String(this.size);
    }

    point(e) {
      const r = this.canvas.getBoundingClientRect();
      return { x: (e.clientX - r.left) * this.space.width / r.width, y: (e.clientY - r.top) * this.space.height / r.height };
    }

    bindPointer() {
      const c = this.canvas;
      c.addEventListener("pointerdown", (e) => {
        if (e.button !== 0) return;
        e.preventDefault();
        c.setPointerCapture(e.pointerId);
        c.focus();
        const p = this.point(e);
        if (this.tool === "rect") { this.drag = { start: p, box: { x: p.x, y: p.y, w: 0, h: 0 } }; return; }
        const layer = this.layer(this.frame, true);
        // The layer as it was, copied on the GPU; only the part the stroke touched is kept for undo.
        const before = document.createElement("canvas");
        before.width = layer.width; before.height = layer.height;
        before.getContext("2d").drawImage(layer, 0, 0);
        this.drag = { layer, before, last: p, area: { x0: p.x, y0: p.y, x1: p.x, y1: p.y } };
        this.stroke(p, p);
      });
      c.addEventListener("pointermove", (e) => {
        if (!this.drag) return;
        const p = this.point(e);
        if (this.drag.box) {
          const s = this.drag.start;
          this.drag.box = { x: Math.min(s.x, p.x), y: Math.min(s.y, p.y), w: Math.abs(p.x - s.x), h: Math.abs(p.y - s.y) };
        } else {
          for (const q of (e.getCoalescedEvents ? e.getCoalescedEvents() : [e])) {
            const pq = this.point(q); this.stroke(this.drag.last, pq); this.drag.last = pq;
          }
        }
        this.render();
      });
      const end = () => {
        const drag = this.drag;
        this.drag = null;
        if (!drag) return;
        if (drag.box) this.finishBox(drag.box);
        else this.finishStroke(drag);
        this.render();
      };
      c.addEventListener("pointerup", end);
      c.addEventListener("pointercancel", end);
    }

    stroke(a, b) {
      const g = this.drag.layer.getContext("2d"), area = this.drag.area;
      area.x0 = Math.min(area.x0, b.x); area.y0 = Math.min(area.y0, b.y);
      area.x1 = Math.max(area.x1, b.x); area.y1 = Math.max(area.y1, b.y);
      g.globalCompositeOperation = this.tool === "eraser" ? "destination-out" : "source-over";
      g.strokeStyle = "#fff"; g.lineWidth = this.size; g.lineCap = "round"; g.lineJoin = "round";
      g.beginPath(); g.moveTo(a.x, a.y); g.lineTo(b.x, b.y); g.stroke();
      g.globalCompositeOperation = "source-over";
      this.render();
    }

    finishStroke(drag) {
      const frame = this.frame, layer = drag.layer, a = drag.area, pad = this.size / 2 + 2;
      const x = Math.max(0, Math.floor(a.x0 - pad)), y = Math.max(0, Math.floor(a.y0 - pad));
      const w = Math.min(layer.width, Math.ceil(a.x1 + pad)) - x, h = Math.min(layer.height, Math.ceil(a.y1 + pad)) - y;
      if (w <= 0 || h <= 0) return;  // the whole stroke fell outside the frame
      const before = drag.before.getContext("2d").getImageData(x, y, w, h);
      const after = layer.getContext("2d").getImageData(x, y, w, h);
      this.remember({ undo: () => this.putLayer(frame, before, x, y), redo: () => this.putLayer(frame, after, x, y) });
      if (!marks(layer)) this.layers.delete(frame);
      this.changed();
    }

    putLayer(frame, data, x = 0, y = 0) {
      const layer = this.layer(frame, true);
      layer.getContext("2d").putImageData(data, x, y);
      if (!marks(layer)) this.layers.delete(frame);
    }

    finishBox(r) {
      const { width, height } = this.space;
      const x = Math.max(0, Math.floor(r.x)), y = Math.max(0, Math.floor(r.y));
      const w = Math.min(width, Math.ceil(r.x + r.w)) - x, h = Math.min(height, Math.ceil(r.y + r.h)) - y;
      if (w < 2 || h < 2) return;
      this.setBoxes([...this.boxes, { x, y, w, h, first: this.frame, track: false }]);
    }

    setBoxes(next) {
      const before = this.boxes;
      this.remember({ undo: () => { this.boxes = before; }, redo: () => { this.boxes = next; } });
      this.boxes = next;
      this.preview = null;
      this.changed();
    }

    renderBoxes() {
      const items = this.boxes.map((b, i) => {
        const follow = el("input", { type: "checkbox", checked: b.track, disabled: this.space.frames < 2,
          onchange: (e) => this.setBoxes(this.boxes.map((o, j) => (j === i ? { ...o, track: e.target.checked } : o))) });
        return el("li", {},
          t("Box {n}: {w}×{h} at {x},{y}, from frame {first}", { n: i + 1, w: b.w, h: b.h, x: b.x, y: b.y, first: b.first }), " ",
          el("label", {}, follow, " " + t("Follow it")), " ",
          el("button", { type: "button", text: t("Remove"), "aria-label": t("Remove box {n}", { n: i + 1 }),
            onclick: () => this.setBoxes(this.boxes.filter((_, j) => j !== i)) }));
      });
      this.boxList.replaceChildren(...items);
      this.trackButton.disabled = !this.boxes.some((b) => b.track);
    }

    // ------------------------------------------------------------ undo, keys

    remember(action) {
      this.history.push(action);
      if (this.history.length > HISTORY) this.history.shift();
      this.future = [];
    }

    undo() {
      const a = this.history.pop();
      if (!a) return;
      a.undo(); this.future.push(a); this.preview = null; this.changed(); this.say(t("Undone"));
    }

    redo() {
      const a = this.future.pop();
      if (!a) return;
      a.redo(); this.history.push(a); this.preview = null; this.changed(); this.say(t("Redone"));
    }

    changed() {
      this.undoButton.disabled = !this.history.length;
      this.redoButton.disabled = !this.future.length;
      this.renderBoxes();
      this.render();
      this.root.dispatchEvent(new CustomEvent("painter-change", { bubbles: true }));
    }

    key(e) {
      const k = e.key.toLowerCase();
      if ((e.ctrlKey || e.metaKey) && k === "z") { e.preventDefault(); e.shiftKey ? this.redo() : this.undo(); return; }
      if ((e.ctrlKey || e.metaKey) && k === "y") { e.preventDefault(); this.redo(); return; }
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const actions = { b: () => this.setTool("brush"), e: () => this.setTool("eraser"), r: () => this.setTool("rect"),
        "[": () => this.setSize(this.size - Math.max(1, Math.round(this.size / 5))),
        "]": () => this.setSize(this.size + Math.max(1, Math.round(this.size / 5))),
        arrowleft: () => this.show(this.frame - 1), arrowright: () => this.show(this.frame + 1) };
      if (actions[k]) { e.preventDefault(); actions[k](); }
    }

    say(message) { this.status.textContent = message; }

    // ------------------------------------------------------------ previews

    async previewTracking() {
      this.say(t("Following the boxes…"));
      try {
        const body = await this.space.trackPreview({ boxes: this.boxesJson() });
        const at = {};
        for (const item of body.frames) at[item.frame] = item.boxes;  // one per box sent, null where absent
        this.preview = at;
        const frames = body.frames.map((f) => f.frame);
        this.previewFrames = frames;
        this.say(t("Tracked boxes shown (blue) on frames {frames}", { frames: frames.join(", ") }) +
          (body.notes.length ? " — " + body.notes.join("; ") : ""));
        if (frames.length) this.show(frames[0]);
      } catch (err) {
        this.say(err.message);
      }
    }

    async detectDamage() {
      const frame = this.frame;
      this.say(t("Looking for damage…"));
      const img = new Image();
      img.onload = () => {
        if (this.frame !== frame) return;
        this.damage = { frame, image: img };
        this.useDamage.hidden = false;
        this.render();
        this.say(t("Detected damage shown in yellow; “Use it” adds it to this frame's mask."));
      };
      img.onerror = () => this.say(t("Damage detection failed"));
      img.src = this.space.damageUrl(frame);
    }

    addDamage() {
      if (!this.damage || this.damage.frame !== this.frame) return;
      const layer = this.layer(this.frame, true), g = layer.getContext("2d");
      const before = g.getImageData(0, 0, layer.width, layer.height);
      // The detector's mask is white on black: keep its white as strokes.
      const src = document.createElement("canvas");
      src.width = layer.width; src.height = layer.height;
      const sg = src.getContext("2d");
      sg.drawImage(this.damage.image, 0, 0, layer.width, layer.height);
      const data = sg.getImageData(0, 0, layer.width, layer.height);
      for (let i = 0; i < data.data.length; i += 4) {
        const on = data.data[i] > 127;
        data.data[i] = data.data[i + 1] = data.data[i + 2] = 255; data.data[i + 3] = on ? 255 : 0;
      }
      sg.putImageData(data, 0, 0);
      g.drawImage(src, 0, 0);
      const frame = this.frame, after = g.getImageData(0, 0, layer.width, layer.height);
      this.remember({ undo: () => this.putLayer(frame, before), redo: () => this.putLayer(frame, after) });
      if (!marks(layer)) this.layers.delete(frame);
      this.damage = null; this.useDamage.hidden = true;
      this.changed();
    }

    // ------------------------------------------------------------ output

    boxesJson() {
      return this.boxes.map((b) => {
        const out = { x: b.x, y: b.y, w: b.w, h: b.h };
        if (b.first > 0) out.first = b.first;
        if (b.last != null) out.last = b.last;
        if (b.track) out.track = true;
        return out;
      });
    }

    // The mask parts: {mask: Blob} for one painted frame, {masks: Blob} (a ZIP, one PNG per
    // frame, named in frame order) for several, {} for none.
    maskParts() {
      const { width, height, frames } = this.space;
      const painted = [...this.layers.keys()].sort((a, b) => a - b);
      if (!painted.length) return {};
      if (painted.length === 1) {
        return { mask: new Blob([pngBytes(maskCanvas(this.layers.get(painted[0]), width, height))], { type: "image/png" }) };
      }
      const blank = pngBytes(maskCanvas(null, width, height));
      const files = [];
      for (let n = 0; n < frames; n++) {
        const layer = this.layers.get(n);
        files.push({ name: `mask-${String(n).padStart(6, "0")}.png`, bytes: layer ? pngBytes(maskCanvas(layer, width, height)) : blank });
      }
      return { masks: zipStored(files) };
    }

    // Start from a job's own boxes (a correction rarely starts over); undo does not take them away.
    load(job) {
      const options = job.options || {};
      this.boxes = (options.boxes || []).map((b) => ({ x: b.x, y: b.y, w: b.w, h: b.h, first: b.first || 0,
        last: b.last, track: Boolean(b.track || options.track_boxes) }));
      this.changed();
    }

    isEmpty() { return !this.layers.size && !this.boxes.length; }

    // Put what was painted into a form's data, as the API takes it.
    fill(data) {
      const parts = this.maskParts();
      if (parts.mask) data.set("mask", parts.mask, "painted-mask.png");
      if (parts.masks) data.set("masks", parts.masks, "painted-masks.zip");
      if (this.boxes.length) data.set("boxes", JSON.stringify(this.boxesJson()));
      else if (data.get("boxes") === "") data.delete("boxes");
    }
  }

  // ---------------------------------------------------------------- where it appears

  async function readJson(response) {
    let body = {};
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    if (!response.ok) throw new Error((body.error && body.error.message) || ("HTTP " + response.status));
    return body;
  }

  // The frames of a job or staged upload, decoded by the server (GET <base>/frames).
  async function serverSpace(base) {
    const space = await readJson(await fetch(base + "/frames", { headers: { Accept: "application/json" } }));
    const side = Math.min(2048, Math.max(space.width, space.height));
    return {
      ...space,
      frameUrl: (n) => space.frame_url.replace("{n}", n) + "?size=" + side,
      damageUrl: (n) => `${base}/frames/${n}/damage?size=${side}`,
      trackPreview: space.frames > 1 ? async (body) => readJson(await fetch(base + "/track-preview", {
        method: "POST", body: JSON.stringify(body),
        headers: { "Content-Type": "application/json", "X-CSRF-Token": tintype.csrfToken(), Accept: "application/json" },
      })) : null,
    };
  }

  // A photograph chosen on the upload page: painted in the browser, no server involved.
  function photoSpace(file) {
    return new Promise((resolve, reject) => {
      const url = URL.createObjectURL(file), img = new Image();
      img.onload = () => resolve({ kind: "image", width: img.naturalWidth, height: img.naturalHeight, frames: 1,
        frameUrl: () => url, damageUrl: null, trackPreview: null });
      img.onerror = () => reject(new Error(t("The picture could not be shown")));
      img.src = url;
    });
  }

  function mount(root, space) { return new Painter(root, space); }

  // The job page: "Paint masks and inpaint again" → a new job from the stored input.
  function bindJobPainter(section) {
    const open = section.querySelector(".painter-open"), panel = section.querySelector(".painter-panel");
    const form = section.querySelector("form"), error = section.querySelector(".painter-error");
    let painter = null;
    open.addEventListener("click", async () => {
      open.disabled = true;
      try {
        painter = mount(panel.querySelector(".painter"), await serverSpace(section.dataset.base));
        painter.load(await readJson(await fetch(section.dataset.base, { headers: { Accept: "application/json" } })));
        panel.hidden = false;
        open.hidden = true;
        painter.canvas.focus();
      } catch (err) {
        error.textContent = err.message; open.disabled = false;
      }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      const data = new FormData(form);
      if (!painter || painter.isEmpty() && !data.get("detect_damage")) {
        error.textContent = t("Paint a mask, draw a box or choose damage detection first."); return;
      }
      painter.fill(data);
      const response = await fetch(form.action, { method: "POST", body: data,
        headers: { "X-CSRF-Token": tintype.csrfToken(), Accept: "application/json" } });
      try {
        const body = await readJson(response);
        window.location = body.links.page;
      } catch (err) {
        error.textContent = err.message;
      }
    });
  }

  // A film sent as a staged upload (POST /api/v1/uploads, its parts, complete), so the server
  // can decode its frames before any job is made of it; the job is then made with upload=<id>.
  async function stageFile(file, onProgress) {
    const headers = { "Content-Type": "application/json", "X-CSRF-Token": tintype.csrfToken(), Accept: "application/json" };
    const up = await readJson(await fetch("/api/v1/uploads", { method: "POST", headers,
      body: JSON.stringify({ filename: file.name, size: file.size, content_type: file.type || "application/octet-stream" }) }));
    const etags = [];
    let sent = 0;
    for (const part of up.part_urls) {
      const start = (part.number - 1) * up.part_size;
      const direct = up.transport === "s3";
      const response = await fetch(part.url, { method: "PUT", body: file.slice(start, start + part.size),
        headers: direct ? {} : { "X-CSRF-Token": tintype.csrfToken() } });
      if (!response.ok) throw new Error(t("Part {n} of the upload failed: HTTP {status}", { n: part.number, status: response.status }));
      const etag = response.headers.get("ETag");
      if (etag) etags.push({ number: part.number, etag });
      sent += part.size;
      if (onProgress) onProgress(sent / file.size);
    }
    await readJson(await fetch(up.links.complete, { method: "POST", headers,
      body: etags.length ? JSON.stringify({ parts: etags }) : "" }));
    return up.id;
  }

  // The upload page: a photograph is painted on in the browser; a film is first sent as a
  // staged upload ("Upload now and paint on its frames"), then painted on its frames decoded by
  // the server. The painter's parts join the submission whenever the form's data is built (the
  // `formdata` event of new FormData(form), which the drop zone's submit builds too); a film
  // staged here is submitted here, as upload=<id>, instead of being sent a second time.
  function bindUploadPainter(form, section) {
    const input = form.querySelector('input[type="file"][name="file"]');
    const holder = section.querySelector(".painter"), note = section.querySelector(".painter-note");
    const stage = section.querySelector(".painter-stage-film"), error = document.getElementById("submit-error");
    let painter = null, staged = null;
    const say = (m) => { note.textContent = m; };
    input.addEventListener("change", async () => {
      painter = null; staged = null;
      holder.replaceChildren();
      const files = [...input.files];
      section.hidden = !files.length;
      stage.hidden = true;
      say(files.length > 1 ? t("The painter works on one file at a time: choose a single file to paint on it.") : "");
      if (files.length !== 1) return;
      if (files[0].type.startsWith("image/")) {
        try { painter = mount(holder, await photoSpace(files[0])); } catch (err) { say(err.message); }
        return;
      }
      stage.hidden = false;
    });
    stage.addEventListener("click", async () => {
      const file = input.files[0];
      if (!file) return;
      stage.disabled = true;
      try {
        say(t("Uploading…"));
        const id = await stageFile(file, (f) => say(t("Uploading… {p}%", { p: Math.round(100 * f) })));
        painter = mount(holder, await serverSpace("/api/v1/uploads/" + id));
        staged = { id, file, key: crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) };
        stage.hidden = true;
        say(t("Uploaded: paint on its frames, then start."));
      } catch (err) {
        say(err.message);
      } finally {
        stage.disabled = false;
      }
    });
    form.addEventListener("formdata", (e) => {
      if (!painter || painter.isEmpty()) return;
      painter.fill(e.formData);
      const inpaint = form.querySelector('input[name="inpaint"]');
      if (inpaint && !inpaint.checked) e.formData.set("inpaint", "1");  // painted masks ask to inpaint
    });
    // Before the page's other submit handlers (capture on the document): a film already staged
    // here becomes its job with upload=<id>.
    document.addEventListener("submit", async (event) => {
      if (event.target !== form || !staged || input.files.length !== 1 || input.files[0] !== staged.file) return;
      event.preventDefault();
      event.stopImmediatePropagation();
      error.textContent = "";
      const data = new FormData(form);
      data.delete("file");
      const problem = tintype.appendKeyframes(form, data);
      if (problem) { error.textContent = problem; return; }
      data.set("upload", staged.id);
      try {
        const job = await readJson(await fetch(form.action, { method: "POST", body: data,
          headers: { "X-CSRF-Token": tintype.csrfToken(), "Idempotency-Key": staged.key, Accept: "application/json" } }));
        window.location = job.links.page;
      } catch (err) {
        error.textContent = err.message;
      }
    }, true);
  }

  return { mount, serverSpace, photoSpace, stageFile, bindJobPainter, bindUploadPainter, zipStored, crc32 };
})();
