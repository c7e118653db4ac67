// The console stream client every view shares. It remembers the last seq it handed on and
// reconnects with `since`, so a cut costs no message and repeats none; the server's `reset`
// (history gap) is followed by a fresh snapshot, which the views take as a full redraw.
import { api, ApiError, roomPath } from "./api.js";

const PING_EVERY_MS = 10_000;
// Stats come every second while live and pongs answer pings: this long without any frame
// means the connection is dead even if the socket has not noticed.
const SILENCE_LIMIT_MS = 25_000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15_000;

export class ConsoleSocket {
  constructor({ room, token, channel = "console", onMessage, onStatus, onRefused }) {
    this.room = room;
    this.token = token;
    this.channel = channel;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.onRefused = onRefused;
    this.lastSeq = null;
    this.attempt = 0;
    this.closed = false;
    this.ws = null;
    this.timers = [];
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const params = new URLSearchParams({ token: this.token, batch: "1" });
    if (this.lastSeq !== null) params.set("since", String(this.lastSeq));
    return `${scheme}//${location.host}${roomPath(this.room, `/${this.channel}`)}?${params}`;
  }

  connect() {
    this.onStatus(this.attempt === 0 ? "connecting" : "reconnecting");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    let opened = false;
    let lastFrameAt = Date.now();
    ws.onopen = () => {
      opened = true;
      this.onStatus("live");
      this.timers.push(
        setInterval(() => {
          if (Date.now() - lastFrameAt > SILENCE_LIMIT_MS) ws.close(4000, "silent");
          else if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"ping"}');
        }, PING_EVERY_MS),
      );
    };
    ws.onmessage = (event) => {
      lastFrameAt = Date.now();
      this.attempt = 0;
      for (const line of String(event.data).split("\n")) {
        if (line) this.deliver(JSON.parse(line));
      }
    };
    ws.onclose = () => {
      this.timers.forEach(clearInterval);
      this.timers = [];
      if (this.closed || ws !== this.ws) return;
      if (opened) this.retry();
      else this.diagnose();
    };
  }

  deliver(envelope) {
    if (envelope.type === "pong") return;
    if (envelope.type === "reset") {
      // A snapshot follows: it carries its own seq.
      this.onMessage(envelope);
      return;
    }
    if (envelope.type === "snapshot") {
      this.lastSeq = envelope.seq;
      this.onMessage(envelope);
      return;
    }
    if (typeof envelope.seq !== "number") {
      this.onMessage(envelope);
      return;
    }
    if (this.lastSeq !== null && envelope.seq <= this.lastSeq) return;
    this.lastSeq = envelope.seq;
    this.onMessage(envelope);
  }

  // A refused handshake looks like any other failed connection to a browser; ask the REST
  // API about the room to tell a bad token or an unknown room (final) from a network fault.
  async diagnose() {
    try {
      await api("GET", roomPath(this.room));
    } catch (error) {
      if (error instanceof ApiError && [401, 403, 404].includes(error.status)) {
        this.closed = true;
        this.onStatus("refused");
        this.onRefused(error);
        return;
      }
    }
    this.retry();
  }

  retry() {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    this.attempt += 1;
    this.onStatus("reconnecting");
    // Full jitter, so a room's consoles do not all return in the same instant after a restart.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.timers.push(setTimeout(() => this.connect(), delay));
  }

  close() {
    this.closed = true;
    this.timers.forEach(clearTimeout);
    this.ws?.close();
  }
}
