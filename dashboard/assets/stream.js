// The project's change feed, held by the page itself: Server-Sent Events over fetch (a small parser,
// so heartbeats are visible and Last-Event-ID is ours to send), resumed after any outage from the last
// feed sequence seen. Nothing here depends on the Bokeh websocket staying up. The Live badge is this
// stream's truth: `live` while events or heartbeats arrive, `offline` once they stop.

import { LOG, h, sleep } from "./dom.js";
import { t } from "./i18n.js";

const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000];
// Silence that counts as a lost connection: at least 4 s (the badge's promise is `offline` within 5 s
// at the 1.5 s heartbeat a served page asks for), and always more than two heartbeats.
const MIN_OFFLINE_AFTER_MS = 4000;
const HEARTBEATS_MISSED = 2.5;

// The badge's text and title in each state (catalogue keys).
const BADGE = {
  live: ["live.live", "live.live.title"],
  offline: ["live.offline", "live.offline.title"],
  connecting: ["live.connecting", "live.connecting.title"],
};

export class Stream {
  // `url()`: the events URL; `headers(extra)`: the API's headers; `ready`: resolves when requests may
  // start; `start()`: loads what is shown and returns the feed sequence it was read at (once, before the
  // first connection); `onEvent(kind, payload)`: one change.
  constructor({ model, url, headers, ready, start, onEvent }) {
    this.model = model;
    this.url = url;
    this.headers = headers;
    this.ready = ready;
    this.start = start;
    this.onEvent = onEvent;
    this.cursor = null; // last feed sequence seen
    this.controller = null;
    this.everLive = false;
    this.stopped = false;
    this.badge = h("span", { class: "ff-live", "data-testid": "live-indicator", "data-state": "connecting",
      title: t(BADGE.connecting[1]), text: t(BADGE.connecting[0]) });
  }

  get state() {
    return this.badge.dataset.state;
  }

  setState(state) {
    if (this.state === state) return;
    this.badge.dataset.state = state;
    [this.badge.textContent, this.badge.title] = BADGE[state].map((key) => t(key));
    if (this.model.state !== state) this.model.state = state;
  }

  async run() {
    await this.ready;
    let attempt = 0;
    while (!this.stopped) {
      try {
        if (this.cursor === null) this.cursor = await this.start();
        if (this.stopped) return; // the gallery went (or started again) while its first page loaded
        await this.connect(() => { attempt = 0; });
      } catch (err) {
        if (this.stopped) return;
        if (this.state === "live") console.warn(`${LOG} connection lost: ${err.message || err}`);
        else console.warn(`${LOG} cannot connect: ${err.message || err}`);
      }
      if (this.stopped) return;
      this.setState("offline");
      const base = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
      attempt += 1;
      await sleep(base * (0.75 + Math.random() * 0.5));
    }
  }

  stop() {
    this.stopped = true;
    this.controller?.abort();
  }

  async connect(onOpen) {
    const controller = new AbortController();
    this.controller = controller;
    const heartbeatS = this.model.heartbeat_s;
    const offlineAfterMs = Math.max(MIN_OFFLINE_AFTER_MS, HEARTBEATS_MISSED * heartbeatS * 1000);
    let watchdog = null;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(new Error("no heartbeat")), offlineAfterMs);
    };
    try {
      arm();
      const resp = await fetch(`${this.url()}?heartbeat=${heartbeatS}`, {
        headers: this.headers({ Accept: "text/event-stream", "Last-Event-ID": String(this.cursor) }),
        cache: "no-store",
        signal: controller.signal,
      });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      onOpen();
      if (this.everLive) console.info(`${LOG} connection re-established, resuming after #${this.cursor}`);
      else console.info(`${LOG} connection opened, live after #${this.cursor}`);
      this.everLive = true;
      this.setState("live");
      arm();
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error("the server closed the stream");
        arm();
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          this.handle(block);
        }
      }
    } finally {
      clearTimeout(watchdog);
      controller.abort();
    }
  }

  handle(block) {
    let id = null;
    let kind = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") kind = value;
      else if (field === "data") data.push(value);
    }
    if (data.length) this.onEvent(kind, JSON.parse(data.join("\n")));
    if (id !== null && /^\d+$/.test(id)) this.cursor = Math.max(this.cursor, Number(id));
  }
}
