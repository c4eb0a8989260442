// A live stream's player: LL-HLS through hls.js (vendored, pinned: web/vendor/hls.js-1.7.4), or
// the browser's own HLS where it has one (Safari). The watch token travels in the playlist URL
// (the server carries it into every URI the playlists list). While it plays, the player counts
// itself as a viewer: it joins, beats every few seconds and leaves when it stops.
//
// WhepPlayer plays a WHIP-published stream over WebRTC instead, sub-second.
//
// Events: 'levels' (detail: [{height, bitrate}], best first), 'level' (detail: index playing),
// 'playing', 'ended' (the stream finished), 'error' (detail: message; the player has stopped).
// A fatal error is retried a bounded number of times, never in a loop.

import Hls from '/vendor/hls.js-1.7.4/hls.light.min.mjs';
import { gathered } from './golive.js';

const MAX_RECOVERIES = 3;

export class LivePlayer extends EventTarget {
  /** `token`: the watch token ('' for a public stream watched anonymously). */
  constructor(video, channelId, token) {
    super();
    this.video = video;
    this.channelId = channelId;
    this.token = token;
    this.hls = null;
    this.counted = null;
    this.recoveries = 0;
    this.stopped = false;
  }

  get query() {
    return this.token ? `?a=${encodeURIComponent(this.token)}` : '';
  }

  start() {
    const url = `/live/${this.channelId}/index.m3u8${this.query}`;
    const v = this.video;
    v.addEventListener('playing', () => this.dispatchEvent(new Event('playing')));
    v.addEventListener('ended', () => this.finish('ended'));
    if (Hls.isSupported()) {
      // No worker: the page's Content-Security-Policy allows scripts from this origin only.
      const hls = new Hls({ lowLatencyMode: true, enableWorker: false, backBufferLength: 30, liveDurationInfinity: true });
      this.hls = hls;
      hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => {
        const levels = data.levels.map((l, index) => ({ index, height: l.height, width: l.width, bitrate: l.bitrate }))
          .sort((a, b) => b.height - a.height || b.bitrate - a.bitrate);
        this.dispatchEvent(new CustomEvent('levels', { detail: levels }));
        this.play();
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => this.dispatchEvent(new CustomEvent('level', { detail: data.level })));
      hls.on(Hls.Events.FRAG_BUFFERED, () => { this.recoveries = 0; });
      hls.on(Hls.Events.ERROR, (_, data) => this.onError(data));
      hls.loadSource(url);
      hls.attachMedia(v);
    } else if (v.canPlayType('application/vnd.apple.mpegurl')) {
      v.src = url;
      this.play();
    } else {
      this.finish('error', 'This browser cannot play live streams (no Media Source Extensions).');
      return;
    }
    this.join();
  }

  /** Plays with sound if the browser lets it, else muted (the page offers to unmute). */
  async play() {
    try {
      await this.video.play();
    } catch {
      this.video.muted = true;
      await this.video.play().catch(() => {});
    }
  }

  /** -1: automatic. */
  setLevel(index) {
    if (this.hls) this.hls.currentLevel = index;
  }

  onError(data) {
    if (!data.fatal || this.stopped) return;
    // A playlist gone (404) or refused (403) after the start: the stream ended or access lapsed.
    const status = data.response?.code;
    if (status === 404 || status === 403 || this.recoveries >= MAX_RECOVERIES) {
      this.finish(status === 404 ? 'ended' : 'error', status === 403 ? 'Access to this stream lapsed; reopen it.' : 'The stream stopped playing.');
      return;
    }
    this.recoveries++;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR) this.hls.recoverMediaError();
    else this.hls.startLoad();
  }

  finish(kind, message) {
    if (this.stopped) return;
    this.stop(kind === 'ended');
    this.dispatchEvent(new CustomEvent(kind, { detail: message }));
  }

  join() {
    this.counted = new ViewerCount(this.channelId, this.query);
  }

  stop() {
    this.stopped = true;
    this.counted?.stop();
    this.hls?.destroy();
    this.hls = null;
    this.video.removeAttribute('src');
    this.video.load();
  }
}

/** Counts a player as one viewer while it plays: joins, beats, and says goodbye as it stops. */
class ViewerCount {
  constructor(channelId, query) {
    this.base = `/live/${channelId}/viewers`;
    this.query = query;
    this.viewer = null;
    this.beat = null;
    this.stopped = false;
    this.join();
  }

  async join() {
    try {
      const r = await fetch(`${this.base}${this.query}`, { method: 'POST' });
      if (!r.ok || this.stopped) return;
      const { viewer, heartbeat_secs: every } = await r.json();
      this.viewer = viewer;
      clearInterval(this.beat);
      this.beat = setInterval(() => this.heartbeat(), every * 1000);
    } catch { /* counted or not, playback goes on */ }
  }

  async heartbeat() {
    if (!this.viewer || this.stopped) return;
    const r = await fetch(`${this.base}/${this.viewer}`, { method: 'POST' }).catch(() => null);
    if (r?.status === 404) this.join(); // expired while the tab slept: count again
  }

  stop() {
    this.stopped = true;
    clearInterval(this.beat);
    // keepalive: the goodbye still goes out when the page is closing.
    if (this.viewer) fetch(`${this.base}/${this.viewer}`, { method: 'DELETE', keepalive: true }).catch(() => {});
    this.viewer = null;
  }
}

/** Sub-second playback over WebRTC (WHEP): the publisher's own frames, for streams published by
 *  WHIP. Same events as LivePlayer ('playing', 'ended', 'error'); no quality levels. */
export class WhepPlayer extends EventTarget {
  constructor(video, channelId, token) {
    super();
    Object.assign(this, { video, channelId, token, pc: null, location: null, counted: null, stopped: false });
  }

  async start() {
    const pc = new RTCPeerConnection();
    this.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const stream = new MediaStream();
    pc.ontrack = (e) => {
      stream.addTrack(e.track);
      this.video.srcObject = stream;
    };
    pc.onconnectionstatechange = () => {
      if (['failed', 'closed'].includes(pc.connectionState)) this.finish('ended');
    };
    this.video.addEventListener('playing', () => this.dispatchEvent(new Event('playing')), { once: true });
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const headers = { 'Content-Type': 'application/sdp' };
      if (this.token) headers.Authorization = `Bearer ${this.token}`;
      const r = await fetch(`/whep/${this.channelId}`, { method: 'POST', headers, body: pc.localDescription.sdp });
      if (r.status !== 201) {
        const err = await r.json().catch(() => null);
        return this.finish('error', err?.message ?? `HTTP ${r.status}`);
      }
      this.location = r.headers.get('Location');
      await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
    } catch (e) {
      return this.finish('error', e.message);
    }
    this.counted = new ViewerCount(this.channelId, this.token ? `?a=${encodeURIComponent(this.token)}` : '');
    this.video.play().catch(() => { this.video.muted = true; this.video.play().catch(() => {}); });
  }

  setLevel() {}

  finish(kind, message) {
    if (this.stopped) return;
    this.stop(kind === 'ended');
    this.dispatchEvent(new CustomEvent(kind, { detail: message }));
  }

  /** `gone`: the stream ended, and the server with it ended this session: no DELETE. */
  stop(gone = false) {
    this.stopped = true;
    this.counted?.stop();
    if (this.location && !gone) fetch(this.location, { method: 'DELETE', keepalive: true }).catch(() => {});
    this.pc?.close();
    this.video.srcObject = null;
  }
}
