// Live progress: the job page and the jobs list fed by Server-Sent Events
// (GET /api/v1/jobs/<id>/events, GET /api/v1/jobs/events). Each stream ends after a
// while and EventSource reconnects by itself with Last-Event-ID; where EventSource is
// missing, or a stream keeps failing, the pages go back to polling REST v1 (app.js).
"use strict";
const tintypeLive = (() => {
  const t = (message, params) => (typeof tintype !== "undefined" ? tintype.t(message, params) : message);
  // Connections that fail in a row (no successful open between) before polling instead.
  const FAILURES_BEFORE_POLLING = 3;
  const ACTIVE = ["queued", "running"];

  // An EventSource on `url` (same origin: the session cookie goes with it) calling
  // handlers[name](data) for each event; `fallback()` once if it cannot be kept open.
  // Returns false where the browser has no EventSource.
  function subscribe(url, handlers, fallback) {
    if (typeof window.EventSource !== "function") return false;
    let source = null, failures = 0, given_up = false, closedByPagehide = false;
    const giveUp = () => { if (given_up) return; given_up = true; source.close(); fallback(); };
    const open = () => {
      const opened = new EventSource(url);
      source = opened;
      opened.onopen = () => { failures = 0; };
      for (const [name, handle] of Object.entries(handlers)) {
        opened.addEventListener(name, (event) => {
          let data;
          try { data = JSON.parse(event.data); } catch (_) { return; }
          handle(data, opened);
        });
      }
      // Fired when a stream ends (then EventSource reconnects) and when a connection fails;
      // CLOSED means the server refused it (401, 404) and EventSource will not retry.
      opened.onerror = () => {
        if (opened !== source) return;
        failures += 1;
        if (opened.readyState === EventSource.CLOSED || failures >= FAILURES_BEFORE_POLLING) giveUp();
      };
    };
    open();
    // Leaving the page closes the stream; coming Back to it from the back/forward cache
    // (pageshow with persisted) opens it again, unless it had been closed on purpose
    // (the job ended) before the page was left.
    window.addEventListener("pagehide", () => {
      closedByPagehide = !given_up && source.readyState !== EventSource.CLOSED;
      source.close();
    });
    window.addEventListener("pageshow", (event) => {
      if (!event.persisted || !closedByPagehide) return;
      closedByPagehide = false;
      failures = 0;
      open();
    });
    return true;
  }

  function duration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return t("{s} s", { s });
    const m = Math.floor(s / 60);
    if (m < 60) return t("{m} min {s} s", { m, s: s % 60 });
    return t("{h} h {m} min", { h: Math.floor(m / 60), m: m % 60 });
  }

  function number(value, digits) {
    const lang = document.documentElement.lang || undefined;
    return Number(value).toLocaleString(lang, { maximumFractionDigits: digits, minimumFractionDigits: digits });
  }

  // "12.5 frames/s · about 1 min 20 s left" beside the progress bar, counting down
  // between events from the estimate the server sent.
  function paceView(el) {
    let estimate = null, received = 0, timer = null;
    const show = () => {
      if (!estimate || estimate.fps == null) { el.textContent = ""; return; }
      const parts = [t("{fps} frames/s", { fps: number(estimate.fps, 1) })];
      if (estimate.eta_seconds != null) {
        const left = estimate.eta_seconds - (Date.now() - received) / 1000;
        parts.push(left > 0.5 ? t("about {time} left", { time: duration(left) }) : t("finishing"));
      }
      el.textContent = parts.join(" · ");
    };
    return {
      update(job) {
        estimate = ACTIVE.includes(job.status) ? job.live : null;
        received = Date.now();
        show();
        if (estimate && !timer) timer = setInterval(show, 1000);
        if (!estimate && timer) { clearInterval(timer); timer = null; }
      },
    };
  }

  // The job page: render(job) for each state pushed; poll() if the stream cannot be kept.
  function watchJob(root, render, poll) {
    const pace = paceView(document.getElementById("job-live"));
    const onJob = (job, source) => {
      render(job);
      pace.update(job);
      root.dataset.live = "events";
      if (!ACTIVE.includes(job.status)) source.close();
    };
    return Boolean(subscribe(`${root.dataset.api}/events`, {
      job: onJob,
      end: (_data, source) => source.close(),
      gone: (_data, source) => source.close(),
    }, () => { root.dataset.live = "polling"; poll(); }));
  }

  // The jobs list: a changed job's row is redrawn in place, a new job that belongs on
  // the page shown is added at the top. `view` is app.js's list: row(job), page(),
  // matches(job), perPage(), counted(change) (the total and the pager follow a job that
  // joins or leaves the filtered list); poll() if the stream cannot be kept.
  function watchList(api, view, poll) {
    const body = document.getElementById("jobs-body");
    const known = new Set();  // jobs this stream has seen match the filters
    const onJob = (job) => {
      const existing = body.querySelector(`tr[data-job="${CSS.escape(job.id)}"]`);
      if (!view.matches(job)) {
        if (existing || known.has(job.id)) view.counted(-1);
        known.delete(job.id);
        if (existing) existing.remove();
        return;
      }
      const row = view.row(job);
      if (existing) { known.add(job.id); existing.replaceWith(row); return; }
      if (!known.has(job.id) && !view.listed(job)) view.counted(+1);  // new to the filtered list
      known.add(job.id);
      if (view.page() !== 1) return;  // newer jobs go on page 1
      body.prepend(row);
      while (body.rows.length > view.perPage()) body.rows[body.rows.length - 1].remove();
    };
    const onGone = (data) => {
      const existing = body.querySelector(`tr[data-job="${CSS.escape(data.id)}"]`);
      if (existing || known.has(data.id)) view.counted(-1);
      known.delete(data.id);
      if (existing) existing.remove();
    };
    return subscribe(`${api}/events`, { job: onJob, gone: onGone }, () => { body.dataset.live = "polling"; poll(); });
  }

  return { subscribe, watchJob, watchList, duration };
})();
