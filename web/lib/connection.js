// The /ws client: signs in with the auth message, batch frames, request/reply by id,
// reconnect with backoff, and resume with {seq, epoch} per channel so nothing is missed
// and no stale value is shown as live.

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
const REQUEST_TIMEOUT_MS = 15000;

export class Connection extends EventTarget {
  /**
   * @param {string} url  ws:// or wss:// URL of /ws (without query)
   * @param {string} token
   * @param {string[]} channels  channels to keep subscribed
   */
  constructor(url, token, channels) {
    super();
    this.url = url;
    this.token = token;
    this.channels = channels;
    this.positions = new Map(); // channel -> {seq, epoch}
    this.pending = new Map(); // id -> {resolve, reject, timer}
    this.nextId = 1;
    this.attempt = 0;
    this.socket = null;
    this.state = "connecting";
    this.closedByUser = false;
    this.lastMessageAt = 0;
  }

  start() {
    this.closedByUser = false;
    this.open();
  }

  stop() {
    this.closedByUser = true;
    clearTimeout(this.retryTimer);
    if (this.socket) this.socket.close(1000, "bye");
  }

  open() {
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    // The token goes in the first message, never in the URL (which proxies and logs keep).
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener("open", () =>
      socket.send(JSON.stringify({ op: "auth", token: this.token, batch: true })),
    );
    socket.addEventListener("message", (ev) => this.receive(ev.data));
    socket.addEventListener("close", (ev) => this.closed(socket, ev));
  }

  /** Keep ``channels`` subscribed too (now, when live, and after every reconnect). */
  follow(channels) {
    const fresh = channels.filter((c) => !this.channels.includes(c));
    if (!fresh.length) return;
    this.channels = [...this.channels, ...fresh];
    if (this.state === "live") {
      this.request({ op: "subscribe", channels: fresh }).catch((err) =>
        this.emit("problem", { message: `subscribe failed: ${err.message}` }),
      );
    }
  }

  /** Stop following ``channels``. */
  unfollow(channels) {
    this.channels = this.channels.filter((c) => !channels.includes(c));
    for (const c of channels) this.positions.delete(c);
    if (this.state === "live") this.request({ op: "unsubscribe", channels }).catch(() => {});
  }

  subscribe() {
    const since = {};
    for (const [channel, pos] of this.positions) {
      since[channel] = pos.epoch ? { seq: pos.seq, epoch: pos.epoch } : pos.seq;
    }
    this.request({ op: "subscribe", channels: this.channels, since }).then(
      () => {
        this.attempt = 0;
        this.setState("live");
      },
      (err) => this.emit("problem", { message: `subscribe failed: ${err.message}` }),
    );
  }

  closed(socket, ev) {
    if (socket !== this.socket) return;
    this.socket = null;
    for (const [, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error("connection lost before the reply"));
    }
    this.pending.clear();
    if (ev.code === 4001) {
      this.setState("unauthorized");
      return;
    }
    if (this.closedByUser) {
      this.setState("closed");
      return;
    }
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.setState("offline");
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  receive(frame) {
    this.lastMessageAt = Date.now();
    for (const line of String(frame).split("\n")) {
      if (!line.trim()) continue;
      let msg;
      try {
        msg = JSON.parse(line);
      } catch (err) {
        this.emit("problem", { message: `unreadable message from the hub: ${err.message}` });
        continue;
      }
      this.dispatch(msg);
    }
  }

  dispatch(msg) {
    switch (msg.type) {
      case "subscribed":
        for (const [channel, epoch] of Object.entries(msg.epochs || {})) {
          const pos = this.positions.get(channel);
          if (!pos || pos.epoch !== epoch) this.positions.set(channel, { seq: 0, epoch });
        }
        this.settle(msg, true);
        break;
      case "snapshot":
        this.positions.set(msg.ch, { seq: msg.seq, epoch: msg.epoch });
        this.emit("publication", msg);
        break;
      case "event": {
        const pos = this.positions.get(msg.ch) || { seq: 0, epoch: null };
        if (msg.seq <= pos.seq) break; // a replayed duplicate
        this.positions.set(msg.ch, { seq: msg.seq, epoch: pos.epoch });
        this.emit("publication", msg);
        break;
      }
      case "result":
        this.settle(msg, msg.ok);
        break;
      case "error":
        if (!this.settle(msg, false)) this.emit("problem", msg.error || {});
        break;
      case "welcome":
        this.subscribe();
        break;
      default:
        break; // pong, heartbeat, unsubscribed
    }
  }

  settle(msg, ok) {
    const waiter = msg.id === undefined ? undefined : this.pending.get(String(msg.id));
    if (!waiter) return false;
    this.pending.delete(String(msg.id));
    clearTimeout(waiter.timer);
    if (ok) waiter.resolve(msg);
    else waiter.reject(Object.assign(new Error(msg.error?.message || "failed"), msg.error || {}));
    return true;
  }

  /** Send an op; resolves with the reply (result ok), rejects with the error body. */
  request(op) {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(
        Object.assign(new Error("not connected to the hub"), { code: "offline" }),
      );
    }
    const id = String(this.nextId++);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(Object.assign(new Error("no reply from the hub in time"), { code: "timeout" }));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      socket.send(JSON.stringify({ ...op, id }));
    });
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", { state });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
