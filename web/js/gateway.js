// The chat gateway (/gateway): HELLO → IDENTIFY → READY, heartbeats, and after a dropped socket a
// RESUME that replays what was missed (or INVALID_SESSION, then a fresh IDENTIFY and READY).
// Emits 'dispatch' ({t, d}) and 'state' ('connecting' | 'connected' | 'reconnecting' | 'closed').

const OP = { DISPATCH: 0, HEARTBEAT: 1, IDENTIFY: 2, RESUME: 6, REQUEST_GUILD_MEMBERS: 8, INVALID_SESSION: 9, HELLO: 10, ACK: 11 };
// Close codes after which retrying with the same token cannot help.
const FATAL = new Set([4004]);

export class Gateway extends EventTarget {
  constructor(token) {
    super();
    this.token = token;
    this.sessionId = null;
    this.seq = null;
    this.ws = null;
    this.beat = null;
    this.acked = true;
    this.retries = 0;
    this.stopped = false;
    this.retryTimer = null;
    // A network coming back is the best moment to retry: do not wait for the backoff.
    this.onOnline = () => { if (!this.ws) this.connectNow(); };
    addEventListener('online', this.onOnline);
  }

  connect() {
    if (this.stopped) return;
    this.state(this.sessionId ? 'reconnecting' : 'connecting');
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/gateway`);
    this.ws = ws;
    ws.onmessage = (e) => this.frame(JSON.parse(e.data));
    ws.onclose = (e) => this.closed(ws, e.code);
  }

  connectNow() {
    clearTimeout(this.retryTimer);
    this.retries = 0;
    this.connect();
  }

  /** Drops the socket as a network failure would (used by tests and by the heartbeat watchdog). */
  drop() {
    this.ws?.close(4000);
  }

  stop() {
    this.stopped = true;
    removeEventListener('online', this.onOnline);
    clearInterval(this.beat);
    clearTimeout(this.retryTimer);
    this.ws?.close(1000);
    this.state('closed');
  }

  /** A large guild's members (GUILD_MEMBERS_CHUNK) and its presence updates from now on. */
  requestMembers(guildId) {
    this.send(OP.REQUEST_GUILD_MEMBERS, { guild_id: guildId });
  }

  send(op, d) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ op, d }));
  }

  frame(f) {
    switch (f.op) {
      case OP.HELLO:
        this.heartbeat(f.d.heartbeat_interval);
        if (this.sessionId) {
          this.send(OP.RESUME, { token: this.token, session_id: this.sessionId, seq: this.seq ?? 0 });
        } else {
          this.send(OP.IDENTIFY, { token: this.token });
        }
        break;
      case OP.ACK:
        this.acked = true;
        break;
      case OP.INVALID_SESSION:
        // Too late to resume: start over; READY will bring the whole state again.
        this.sessionId = null;
        this.seq = null;
        this.send(OP.IDENTIFY, { token: this.token });
        break;
      case OP.DISPATCH:
        this.seq = f.s;
        if (f.t === 'READY') this.sessionId = f.d.session_id;
        if (f.t === 'READY' || f.t === 'RESUMED') {
          this.retries = 0;
          this.state('connected');
        }
        this.dispatchEvent(new CustomEvent('dispatch', { detail: { t: f.t, d: f.d } }));
        break;
    }
  }

  heartbeat(interval) {
    clearInterval(this.beat);
    this.acked = true;
    this.beat = setInterval(() => {
      // No ACK since the last beat: the connection is dead even if the socket has not noticed.
      if (!this.acked) return this.drop();
      this.acked = false;
      this.send(OP.HEARTBEAT, this.seq);
    }, interval);
  }

  closed(ws, code) {
    if (ws !== this.ws) return;
    this.ws = null;
    clearInterval(this.beat);
    if (this.stopped) return;
    if (FATAL.has(code)) {
      this.state('closed');
      this.dispatchEvent(new CustomEvent('auth-failed'));
      return;
    }
    this.state('reconnecting');
    // Backoff 0.5 s, 1 s, 2 s … capped at 10 s, with jitter so a restarted server is not stampeded.
    const delay = Math.min(10000, 500 * 2 ** this.retries++) * (0.75 + Math.random() / 2);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  state(s) {
    this.status = s;
    this.dispatchEvent(new CustomEvent('state', { detail: s }));
  }
}
