// The mask painter: paint what to remove on any frame, draw boxes, preview tracking and
// detected damage; what it makes is exactly what REST v1 receives (a `mask` image, a ZIP of
// per-frame `masks`, and the `boxes` JSON). Loaded after app.js; uses tintype.t and csrfToken.
"use strict";
tintype.painter = (() => {
  const t = (m, p) => tintype.t(m, p);
  const MIN_SIZE = 2, MAX_SIZE = 200, HISTORY = 40;
  const WORKING_SIDE = 2048;  // the painter's canvases at most this long (phones cap a canvas at ~16.7 MP)
  const KEPT_FRAMES = 16;  // decoded frames kept for stepping back and forth
  const ZIP_ENTRIES = 65535;  // a ZIP without ZIP64 holds at most this many files

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
    if (files.length > ZIP_ENTRIES) throw new Error(t("A ZIP of masks holds at most 65,535 frames"));
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

  // A painted layer (white strokes on transparent) as the API's mask: white on black, opaque,
  // scaled up from the painter's working size to the media's own.
  function maskCanvas(layer, width, height) {
    const out = document.createElement("canvas");
    out.width = width; out.height = height;
    const g = out.getContext("2d");
    g.fillStyle = "#000"; g.fillRect(0, 0, width, height);
    if (layer) g.drawImage(layer, 0, 0, width, height);
    return out;
  }

  function marks(layer) {
    const data = layer.getContext("2d").getImageData(0, 0, layer.width, layer.height).data;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 127) return true;
    return false;
  }

  // ---------------------------------------------------------------- the painter

  class Painter {
    // space: {kind, width, height, frames, frameUrl(n), damageUrl(n)|null, trackPreview(body)|null}.
    // The painter works at most WORKING_SIDE long (this.width × this.height); masks are scaled
    // up and boxes multiplied by this.scale to the media's own pixels when they are sent.
    constructor(root, space) {
      this.root = root;
      this.space = space;
      this.scale = Math.max(1, Math.max(space.width, space.height) / WORKING_SIDE);
      this.width = Math.max(1, Math.round(space.width / this.scale));
      this.height = Math.max(1, Math.round(space.height / this.scale));
      this.frame = 0;
      this.tool = "brush";
      this.size = Math.max(MIN_SIZE, Math.round(Math.max(this.width, this.height) / 40));
      this.layers = new Map(); // frame -> canvas (white strokes, transparent elsewhere)
      this.boxes = []; // {x, y, w, h, first, track}, in working pixels
      this.history = []; this.future = [];
      this.preview = null; // {frame -> [boxes]} from the track preview, in the media's pixels
      this.damage = null; // {frame, image}
      this.images = new Map(); // frame -> Promise<Image>, the most recently used last
      this.cursor = { x: Math.round(this.width / 2), y: Math.round(this.height / 2) };  // the keyboard's
      this.build();
      this.show(0);
    }

    build() {
      const s = this.space;
      this.canvas = el("canvas", { class: "painter-canvas", width: this.width, height: this.height, tabindex: "0",
        role: "application", "aria-roledescription": t("mask painter"),
        "aria-label": t("Frame to paint on: drag to paint, erase or draw a box; or arrows move the cursor, Space paints (with Box: Space starts a box, arrows size it, Enter keeps it), comma and full stop step frames") });
      this.status = el("p", { class: "hint painter-status", role: "status", "aria-live": "polite" });
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
      // Everything lives in a wrapper of its own: the keys are listened for there, so a painter
      // replaced by another (a new file chosen) stops hearing them with its wrapper.
      const body = el("div", { class: "painter-body" },
        el("div", { class: "painter-bar", role: "toolbar", "aria-label": t("Painting tools") },
          ...this.toolButtons,
          el("span", { "aria-hidden": "true", text: t("Size") }), this.sizeInput, " ", this.sizeText,
          this.undoButton, this.redoButton, this.damageButton, this.useDamage, this.trackButton),
        el("div", { class: "painter-stage" }, this.canvas), scrubber, this.status,
        el("p", { class: "hint", text: s.frames > 1
          ? t("A mask painted on one frame is used for every frame; paint on more frames to give each its own. Boxes start on the frame they are drawn on.")
          : t("White marks what is removed.") }),
        this.boxList);
      this.root.replaceChildren(body);
      this.bindPointer();
      body.addEventListener("keydown", (e) => {
        if (e.target === this.canvas) { this.key(e, true); return; }
        if (e.target.tagName === "INPUT") {
          // The painter may sit inside a form (the upload page): Enter in its fields must not submit it.
          if (e.key === "Enter") {
            e.preventDefault();
            if (e.target === this.number) this.show(+this.number.value);
          }
          return;
        }
        if (!/SELECT|TEXTAREA/.test(e.target.tagName)) this.key(e, false);
      });
      this.canvas.addEventListener("focus", () => this.render());
      this.canvas.addEventListener("blur", () => { this.lift(); this.render(); });
      this.setTool("brush");
      this.renderBoxes();
    }

    // ------------------------------------------------------------ frames

    // Step to frame n. A frame not seen yet is asked for once the scrubber rests (each is a
    // decode on the server), so dragging the slider asks only for where it stops; a step
    // superseded by the next one resolves at once.
    show(n) {
      n = Math.max(0, Math.min(this.space.frames - 1, Number.isFinite(n) ? Math.round(n) : 0));
      if (n !== this.frame) this.lift();
      this.frame = n;
      this.slider.value = n; this.number.value = n;
      this.damage = null; this.useDamage.hidden = true;
      this.render();
      clearTimeout(this.loading);
      if (this.superseded) this.superseded();
      return new Promise((resolve) => {
        this.superseded = resolve;
        this.loading = setTimeout(async () => {
          const image = await this.image(n);
          if (this.frame === n) { this.picture = image; this.render(); this.say(t("Frame {n}", { n })); }
          if (this.superseded === resolve) this.superseded = null;
          resolve();
        }, this.images.has(n) ? 0 : 120);
      });
    }

    image(n) {
      let found = this.images.get(n);
      if (!found) {
        found = new Promise((resolve) => {
          const img = new Image();
          img.onload = () => resolve(img);
          img.onerror = () => { this.images.delete(n); this.say(t("Frame {n} could not be loaded", { n })); resolve(null); };
          img.src = this.space.frameUrl(n);
        });
      }
      this.images.delete(n); this.images.set(n, found);  // the most recently used last
      while (this.images.size > KEPT_FRAMES) this.images.delete(this.images.keys().next().value);
      return found;
    }

    // Frame n's own layer. Made on first use: while one layer is the mask of every frame, a new
    // one starts as a copy of it, so painting or erasing on another frame changes what was shown.
    layer(n, create) {
      if (!this.layers.has(n) && create) {
        const c = document.createElement("canvas");
        c.width = this.width; c.height = this.height;
        const shared = this.layers.size === 1 ? [...this.layers.values()][0] : null;
        if (shared) {
          c.getContext("2d").drawImage(shared, 0, 0);
          this.say(t("Frame {n} now has its own mask, copied from the one used for every frame; frames not painted on get no mask.", { n }));
        }
        this.layers.set(n, c);
      }
      return this.layers.get(n);
    }

    // Whether frame n may be given a layer: a ZIP of masks holds at most 65,535 frames.
    mayPaint(n) {
      if (this.layers.has(n) || !this.layers.size || this.space.frames <= ZIP_ENTRIES) return true;
      this.say(t("This film has more than 65,535 frames: paint on one frame only (its mask is used for every frame), or send a mask video."));
      return false;
    }

    // Redraw once per animation frame however many pointer events arrive.
    schedule() {
      if (this.frameRequest) return;
      this.frameRequest = requestAnimationFrame(() => { this.frameRequest = 0; this.render(); });
    }

    render() {
      if (this.frameRequest) { cancelAnimationFrame(this.frameRequest); this.frameRequest = 0; }
      const g = this.canvas.getContext("2d"), { width, height } = this, k = this.scale;
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
          g.strokeRect(moved.x / k, moved.y / k, moved.w / k, moved.h / k);
        }
      }
      if (this.drag && this.drag.box) {
        const r = this.drag.box;
        g.strokeStyle = "#fff"; g.setLineDash([3 * line, 3 * line]); g.strokeRect(r.x, r.y, r.w, r.h);
      }
      if (document.activeElement === this.canvas) {  // where the keyboard's cursor is
        const { x, y } = this.cursor, r = this.tool === "rect" ? 3 * line : Math.max(this.size / 2, 2 * line);
        g.setLineDash([]); g.lineWidth = line;
        for (const [colour, grow] of [["#000", line], ["#fff", 0]]) {
          g.strokeStyle = colour;
          g.beginPath(); g.arc(x, y, r + grow, 0, 2 * Math.PI);
          g.moveTo(x - r - 2 * line, y); g.lineTo(x + r + 2 * line, y);
          g.moveTo(x, y - r - 2 * line); g.lineTo(x, y + r + 2 * line); g.stroke();
        }
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
      if (c.width !== this.width || c.height !== this.height) { c.width = this.width; c.height = this.height; }
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
      if (name !== this.tool) this.lift();
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
      return { x: (e.clientX - r.left) * this.width / r.width, y: (e.clientY - r.top) * this.height / r.height };
    }

    // Put the brush (or eraser) down at p on this frame; false when the frame may not be painted.
    startStroke(p) {
      if (!this.mayPaint(this.frame)) return false;
      const fresh = !this.layers.has(this.frame);
      const layer = this.layer(this.frame, true);
      // The layer as it was, copied on the GPU; only the part the stroke touched is kept for undo.
      const before = document.createElement("canvas");
      before.width = layer.width; before.height = layer.height;
      before.getContext("2d").drawImage(layer, 0, 0);
      this.drag = { layer, before, fresh, last: p, area: { x0: p.x, y0: p.y, x1: p.x, y1: p.y } };
      this.stroke(p, p);
      return true;
    }

    bindPointer() {
      const c = this.canvas;
      c.addEventListener("pointerdown", (e) => {
        if (e.button !== 0) return;
        e.preventDefault();
        c.setPointerCapture(e.pointerId);
        c.focus();
        this.lift();
        const p = this.point(e);
        if (this.tool === "rect") { this.drag = { start: p, box: { x: p.x, y: p.y, w: 0, h: 0 } }; return; }
        this.startStroke(p);
      });
      c.addEventListener("pointermove", (e) => {
        if (!this.drag || this.drag.keys) return;
        const p = this.point(e);
        if (this.drag.box) {
          const s = this.drag.start;
          this.drag.box = { x: Math.min(s.x, p.x), y: Math.min(s.y, p.y), w: Math.abs(p.x - s.x), h: Math.abs(p.y - s.y) };
        } else {
          for (const q of (e.getCoalescedEvents ? e.getCoalescedEvents() : [e])) {
            const pq = this.point(q); this.stroke(this.drag.last, pq); this.drag.last = pq;
          }
        }
        this.schedule();
      });
      const end = () => {
        if (this.drag && this.drag.keys) return;
        this.finish();
      };
      c.addEventListener("pointerup", end);
      c.addEventListener("pointercancel", end);
    }

    // End what is being drawn (a stroke, or a box: kept when commit is not false).
    finish(commit = true) {
      const drag = this.drag;
      this.drag = null;
      if (!drag) return;
      if (drag.box) { if (commit) this.finishBox(drag.box); }
      else this.finishStroke(drag);
      this.render();
    }

    // The keyboard's pen or box, if one is down, ends: a stroke is kept, a box is dropped.
    lift() {
      if (this.drag && this.drag.keys) this.finish(false);
    }

    stroke(a, b) {
      const g = this.drag.layer.getContext("2d"), area = this.drag.area;
      area.x0 = Math.min(area.x0, b.x); area.y0 = Math.min(area.y0, b.y);
      area.x1 = Math.max(area.x1, b.x); area.y1 = Math.max(area.y1, b.y);
      g.globalCompositeOperation = this.tool === "eraser" ? "destination-out" : "source-over";
      g.strokeStyle = "#fff"; g.lineWidth = this.size; g.lineCap = "round"; g.lineJoin = "round";
      g.beginPath(); g.moveTo(a.x, a.y); g.lineTo(b.x, b.y); g.stroke();
      g.globalCompositeOperation = "source-over";
      this.schedule();
    }

    finishStroke(drag) {
      const frame = this.frame, layer = drag.layer, a = drag.area, pad = this.size / 2 + 2;
      const x = Math.max(0, Math.floor(a.x0 - pad)), y = Math.max(0, Math.floor(a.y0 - pad));
      const w = Math.min(layer.width, Math.ceil(a.x1 + pad)) - x, h = Math.min(layer.height, Math.ceil(a.y1 + pad)) - y;
      if (w <= 0 || h <= 0) {  // the whole stroke fell outside the frame
        if (drag.fresh) this.layers.delete(frame);
        return;
      }
      const before = drag.before.getContext("2d").getImageData(x, y, w, h);
      const after = layer.getContext("2d").getImageData(x, y, w, h);
      // Undoing a frame's first stroke takes its layer away (the shared mask shows there again).
      this.remember({ undo: drag.fresh ? () => this.layers.delete(frame) : () => this.putLayer(frame, before, x, y),
        redo: () => this.putLayer(frame, after, x, y) });
      if (!marks(layer)) this.layers.delete(frame);
      this.changed();
    }

    putLayer(frame, data, x = 0, y = 0) {
      const layer = this.layer(frame, true);
      layer.getContext("2d").putImageData(data, x, y);
      if (!marks(layer)) this.layers.delete(frame);
    }

    finishBox(r) {
      const { width, height } = this;
      const x = Math.max(0, Math.floor(r.x)), y = Math.max(0, Math.floor(r.y));
      const w = Math.min(width, Math.ceil(r.x + r.w)) - x, h = Math.min(height, Math.ceil(r.y + r.h)) - y;
      if (w < 2 || h < 2) { if (this.drag === null && r.keys) this.say(t("The box is too small: it was not kept")); return; }
      this.setBoxes([...this.boxes, { x, y, w, h, first: this.frame, track: false }]);
      this.say(t("Box {n} kept: {w}×{h} at {x},{y}", { n: this.boxes.length, ...this.full({ x, y, w, h }) }));
    }

    // A box in the media's own pixels, as the API takes it.
    full(b) {
      const k = this.scale, { width, height } = this.space;
      const x = Math.min(width - 1, Math.round(b.x * k)), y = Math.min(height - 1, Math.round(b.y * k));
      return { x, y, w: Math.min(width - x, Math.round(b.w * k)), h: Math.min(height - y, Math.round(b.h * k)) };
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
          t("Box {n}: {w}×{h} at {x},{y}, from frame {first}", { n: i + 1, ...this.full(b), first: b.first }), " ",
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
      this.lift();
      const a = this.history.pop();
      if (!a) return;
      a.undo(); this.future.push(a); this.preview = null; this.changed(); this.say(t("Undone"));
    }

    redo() {
      this.lift();
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

    // The keyboard's cursor: arrows move it (Shift: ten times as far). With the brush or the
    // eraser Space puts the pen down and lifts it again; with Box, Space starts a box at the
    // cursor, arrows size it, Enter keeps it and Escape drops it.
    cursorKey(e) {
      const unit = Math.max(1, Math.round(Math.max(this.width, this.height) / 128)) * (e.shiftKey ? 10 : 1);
      const moves = { arrowleft: [-unit, 0], arrowright: [unit, 0], arrowup: [0, -unit], arrowdown: [0, unit] };
      const k = e.key.toLowerCase(), c = this.cursor, drag = this.drag && this.drag.keys ? this.drag : null;
      const at = () => this.full({ x: c.x, y: c.y, w: 0, h: 0 });
      if (moves[k]) {
        const [dx, dy] = moves[k], from = { ...c };
        c.x = Math.max(0, Math.min(this.width, c.x + dx)); c.y = Math.max(0, Math.min(this.height, c.y + dy));
        if (drag && drag.box) {
          const s = drag.start;
          drag.box = { x: Math.min(s.x, c.x), y: Math.min(s.y, c.y), w: Math.abs(c.x - s.x), h: Math.abs(c.y - s.y), keys: true };
          this.say(t("Box {w}×{h} at {x},{y}: Enter keeps it, Escape drops it", this.full(drag.box)));
        } else if (drag) {
          this.stroke(from, { ...c }); drag.last = { ...c };
          this.say(t("Cursor at {x},{y}", at()));
        } else {
          this.say(t("Cursor at {x},{y}", at()));
        }
        this.render();
      } else if (k === " ") {
        if (drag) {
          if (drag.box) return true;  // Enter keeps a box, Escape drops it
          this.finish(); this.say(this.tool === "eraser" ? t("Eraser lifted") : t("Brush lifted"));
        } else if (this.tool === "rect") {
          const p = { ...c };
          this.drag = { keys: true, start: p, box: { x: p.x, y: p.y, w: 0, h: 0, keys: true } };
          this.say(t("Box started at {x},{y}: arrows size it, Enter keeps it, Escape drops it", at()));
          this.render();
        } else if (this.startStroke({ ...c })) {
          this.drag.keys = true;
          this.say(this.tool === "eraser" ? t("Erasing at {x},{y}: arrows erase, Space lifts", at())
            : t("Painting at {x},{y}: arrows paint, Space lifts", at()));
          this.render();
        }
      } else if (k === "enter" && drag) {
        this.finish();
      } else if (k === "escape" && drag) {
        if (drag.box) { this.finish(false); this.say(t("Box dropped")); } else this.finish();
      } else {
        return false;
      }
      return true;
    }

    key(e, onCanvas) {
      const k = e.key.toLowerCase();
      if ((e.ctrlKey || e.metaKey) && k === "z") { e.preventDefault(); e.shiftKey ? this.redo() : this.undo(); return; }
      if ((e.ctrlKey || e.metaKey) && k === "y") { e.preventDefault(); this.redo(); return; }
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (onCanvas && this.cursorKey(e)) { e.preventDefault(); return; }
      const actions = { b: () => this.setTool("brush"), e: () => this.setTool("eraser"), r: () => this.setTool("rect"),
        "[": () => this.setSize(this.size - Math.max(1, Math.round(this.size / 5))),
        "]": () => this.setSize(this.size + Math.max(1, Math.round(this.size / 5))),
        ",": () => this.show(this.frame - 1), ".": () => this.show(this.frame + 1),
        pageup: () => this.show(this.frame - 1), pagedown: () => this.show(this.frame + 1) };
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
          (body.notes.length ? " — " + body.notes.map(noteText).join("; ") : ""));
        if (frames.length) this.show(frames[0]);
      } catch (err) {
        this.say(err.message);
      }
    }

    async detectDamage() {
      const frame = this.frame;
      this.say(t("Looking for damage…"));
      let url;
      try { url = await this.space.damageUrl(frame); } catch (err) { this.say(err.message); return; }  // a photo is staged first
      if (this.frame !== frame) return;
      const img = new Image();
      img.onload = () => {
        if (this.frame !== frame) return;
        this.damage = { frame, image: img };
        this.useDamage.hidden = false;
        this.render();
        this.say(t("Detected damage shown in yellow; “Use it” adds it to this frame's mask."));
      };
      img.onerror = () => this.say(t("Damage detection failed"));
      img.src = url;
    }

    addDamage() {
      if (!this.damage || this.damage.frame !== this.frame || !this.mayPaint(this.frame)) return;
      const fresh = !this.layers.has(this.frame);
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
      this.remember({ undo: fresh ? () => this.layers.delete(frame) : () => this.putLayer(frame, before),
        redo: () => this.putLayer(frame, after) });
      if (!marks(layer)) this.layers.delete(frame);
      this.damage = null; this.useDamage.hidden = true;
      this.changed();
    }

    // ------------------------------------------------------------ output

    boxesJson() {
      return this.boxes.map((b) => {
        const out = this.full(b);
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
      if (painted.length > 1 && frames > ZIP_ENTRIES) throw new Error(t("A ZIP of masks holds at most 65,535 frames"));
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
      const k = this.scale;
      this.boxes = (options.boxes || []).map((b) => ({ x: b.x / k, y: b.y / k, w: b.w / k, h: b.h / k, first: b.first || 0,
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

  // The answer's JSON; a refusal as an Error in the page's language (tintype.apiError).
  async function readJson(response) {
    let body = {};
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    if (!response.ok) throw new Error(tintype.apiError(body, t("the server answered HTTP {status}", { status: response.status })));
    return body;
  }

  // The one note the track preview gives (tintype/media/box_tracks.py), in the page's language;
  // boxes are counted from 1 here, as in the painter's list.
  function noteText(note) {
    const lost = /^box (\d+): tracking was lost at frame (\d+); the box where the object was last seen \(frame (\d+)\) is masked on frames (\d+)-(\d+)$/.exec(note);
    if (!lost) return note;
    return t("Box {n}: tracking was lost at frame {lost}; the box where it was last seen (frame {seen}) is masked on frames {lost}–{last}",
      { n: Number(lost[1]) + 1, lost: lost[2], seen: lost[3], last: lost[5] });
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

  // A photograph chosen on the upload page: painted in the browser, no server involved until
  // damage is asked for: then stage() (a Promise of a staged upload's id) sends it first and the
  // staged upload's damage route answers. Without stage() there is no damage detection. Its
  // object URL lives until release() (when another file replaces it).
  function photoSpace(file, stage) {
    return new Promise((resolve, reject) => {
      const url = URL.createObjectURL(file), img = new Image();
      const side = () => Math.min(2048, Math.max(img.naturalWidth, img.naturalHeight));
      const damageUrl = stage ? async (n) => {
        const id = await stage();
        if (!id) throw new Error(t("Damage detection failed"));
        return `/api/v1/uploads/${id}/frames/${n}/damage?size=${side()}`;
      } : null;
      img.onload = () => resolve({ kind: "image", width: img.naturalWidth, height: img.naturalHeight, frames: 1,
        frameUrl: () => url, damageUrl, trackPreview: null, release: () => URL.revokeObjectURL(url) });
      img.onerror = () => { URL.revokeObjectURL(url); reject(new Error(t("The picture could not be shown"))); };
      img.src = url;
    });
  }

  function mount(root, space) { return new Painter(root, space); }

  // The job page: "Paint masks and inpaint again" → a new job from the stored input.
  function bindJobPainter(section) {
    const open = section.querySelector(".painter-open"), panel = section.querySelector(".painter-panel");
    const form = section.querySelector("form"), error = section.querySelector(".painter-error");
    const submit = form.querySelector('[type="submit"]');
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
      if (submit) submit.disabled = true;
      try {
        painter.fill(data);
        const body = await readJson(await fetch(form.action, { method: "POST", body: data,
          headers: { "X-CSRF-Token": tintype.csrfToken(), Accept: "application/json" } }));
        window.location = body.links.page;
      } catch (err) {
        error.textContent = err.name === "TypeError" ? t("the connection was interrupted") : err.message;
      } finally {
        if (submit) submit.disabled = false;
      }
    });
  }

  // A film sent as a staged upload (REST /uploads) by the drop zone's own StagedUpload (parts in
  // parallel, retried, remembered in IndexedDB for a reload, shown on `row` with Cancel), so the
  // server can decode its frames before any job is made of it. It stops once complete: the job
  // is made later, with upload=<id>, when the form is submitted.
  function stagedUpload(file, row, entries, key) {
    const { StagedUpload } = tintype.uploads;
    return new (class extends StagedUpload {
      async submit() { return { id: this.id }; }
    })(row, file, entries, key);
  }

  // The form's options now, as a reload's Resume would submit them (painted masks are not kept).
  function formEntries(form) {
    const data = new FormData(form);
    data.delete("file");
    tintype.appendKeyframes(form, data);
    return [...data.entries()].filter(([name, value]) => name !== "csrf_token" && !(value instanceof File && !value.name));
  }

  // The upload page: a photograph is painted on in the browser (and staged, as a film is, only
  // when damage detection is asked for); a film is first sent as a staged upload ("Upload now
  // and paint on its frames"), then painted on its frames decoded by the server. The painter's parts join the submission whenever the form's data is built (the
  // `formdata` event of new FormData(form), which the drop zone's submit builds too); a film
  // or photo staged here is submitted here, as upload=<id>, instead of being sent a second time.
  function bindUploadPainter(form, section) {
    const input = form.querySelector('input[type="file"][name="file"]');
    const holder = section.querySelector(".painter"), note = section.querySelector(".painter-note");
    const stage = section.querySelector(".painter-stage-film"), error = document.getElementById("submit-error");
    let painter = null, staged = null, upload = null, pending = null;
    const say = (m) => { note.textContent = m; };
    input.addEventListener("change", async () => {
      if (painter && painter.space.release) painter.space.release();
      if (upload && !upload.cancelled && !(staged && staged.submitted)) upload.cancel();  // a film abandoned half-way
      if (upload) upload.row.li.remove();
      painter = null; staged = null; upload = null; pending = null;
      holder.replaceChildren();
      const files = [...input.files];
      section.hidden = !files.length;
      stage.hidden = true;
      say(files.length > 1 ? t("The painter works on one file at a time: choose a single file to paint on it.") : "");
      if (files.length !== 1) return;
      if (files[0].type.startsWith("image/")) {
        const file = files[0];
        try {
          const space = await photoSpace(file, () => stageNow(file));
          if (input.files[0] === file) painter = mount(holder, space); else space.release();
        } catch (err) { say(err.message); }
        return;
      }
      stage.hidden = false;
    });
    // Resolves to the staged upload's id, or null when it failed or was cancelled (said on its row).
    const run = async (current) => {
      const row = current.row;
      row.li.classList.remove("failed");
      try {
        await (current.id ? current.resume() : current.start());
        if (current !== upload) return;
        row.clearButtons(); row.progress(1);
        row.say(t("Uploaded"));
        const film = !painter;  // a photo is painted on already: its painter stays
        if (film) painter = mount(holder, await serverSpace("/api/v1/uploads/" + current.id));
        staged = { id: current.id, file: current.file, key: current.key };
        stage.hidden = true;
        say(film ? t("Uploaded: paint on its frames, then start.") : "");
        return current.id;
      } catch (err) {
        if (current !== upload) return null;
        if (err.name === "AbortError" || current.cancelled) {
          say(t("Cancelled")); stage.hidden = current.file.type.startsWith("image/"); return null;
        }
        row.clearButtons();
        row.say(err.message); row.li.classList.add("failed");
        say(err.message);
        if (current.id && !staged) {
          row.button(t("Resume"), () => run(current), t("Resume the upload of {name}", { name: current.file.name }));
          row.button(t("Cancel"), () => current.cancel(), t("Cancel the upload of {name}", { name: current.file.name }));
        }
        return null;
      }
    };
    // Stage `file` (once: a call while it is being sent waits for the same upload; one after a
    // failure resumes it, one after a cancel starts afresh) → its id, or null.
    const stageNow = (file) => {
      if (staged) return Promise.resolve(staged.id);
      if (pending) return pending;
      if (!upload || upload.cancelled) {
        const list = document.getElementById("upload-list") || section.appendChild(document.createElement("ul"));
        const row = tintype.uploads.fileRow(list, file.name, file.size);
        row.li.classList.add("painter-staging");
        upload = stagedUpload(file, row, formEntries(form), crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
      }
      say(t("Uploading…"));
      const done = run(upload);
      pending = done;
      done.finally(() => { if (pending === done) pending = null; });
      return done;
    };
    stage.addEventListener("click", () => {
      const file = input.files[0];
      if (!file || upload) return;
      stage.hidden = true;
      stageNow(file);
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
      try {
        const data = new FormData(form);
        data.delete("file");
        const problem = tintype.appendKeyframes(form, data);
        if (problem) { error.textContent = problem; return; }
        data.set("upload", staged.id);
        const job = await readJson(await fetch(form.action, { method: "POST", body: data,
          headers: { "X-CSRF-Token": tintype.csrfToken(), "Idempotency-Key": staged.key, Accept: "application/json" } }));
        staged.submitted = true;
        await tintype.uploads.forget(staged.id);  // made: nothing left for a reload to resume
        window.location = job.links.page;
      } catch (err) {
        error.textContent = err.name === "TypeError" ? t("the connection was interrupted") : err.message;
      }
    }, true);
  }

  return { mount, serverSpace, photoSpace, bindJobPainter, bindUploadPainter, zipStored, crc32 };
})();
