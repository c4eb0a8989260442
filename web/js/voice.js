// One voice session: microphone and camera, the voice gateway (/voice), and the one
// RTCPeerConnection. The browser offers once (m-lines in the order the protocol fixes), the ICE-lite
// server answers; after that only `slots` messages say whose media flows into which receive m-line.
// Emits 'change' whenever anything a view shows changed, and 'ended' ({detail: message | null}).

import { post } from './api.js';
import { audioConstraints, prefs, route, videoConstraints } from './devices.js';
import * as local from './voice_local.js';
import * as share from './voice_share.js';

const CONNECT_TIMEOUT_MS = 10000;
const RESUME_WINDOW_MS = 25000;

/** An error whose message is meant for the user as it is. */
export class VoiceError extends Error {}

/** Asks for the microphone (required) and the camera (optional), only now that the user joins. */
async function capture() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new VoiceError('This browser cannot use a microphone on this page (it needs HTTPS or localhost).');
  }
  try {
    return { stream: await navigator.mediaDevices.getUserMedia({ audio: audioConstraints(), video: videoConstraints() }), cameraError: null };
  } catch (both) {
    // Perhaps only the camera is missing or refused: a call without video is still a call.
    try {
      return { stream: await navigator.mediaDevices.getUserMedia({ audio: audioConstraints() }), cameraError: both };
    } catch (e) {
      throw new VoiceError({
        NotAllowedError: 'Microphone access was denied. Allow the microphone for this site (the icon in the address bar or the browser’s site settings), then join again.',
        SecurityError: 'Microphone access is blocked on this page by the browser’s settings.',
        NotFoundError: 'No microphone was found. Connect one, then join again.',
        NotReadableError: 'The microphone could not be started: another application may be using it.',
      }[e.name] ?? `The microphone could not be started (${e.name}: ${e.message}).`);
    }
  }
}

function preferVp8(transceiver) {
  const vp8 = (RTCRtpReceiver.getCapabilities?.('video')?.codecs ?? []).filter((c) => c.mimeType === 'video/VP8');
  if (vp8.length && transceiver.setCodecPreferences) transceiver.setCodecPreferences(vp8);
}

export class VoiceSession extends EventTarget {
  constructor(channel) {
    super();
    this.channel = channel;
    this.status = 'starting'; // starting → connecting → connected | ended
    this.participants = new Map(); // user id → {user_id, username, self_mute, server_mute, speaking, camera}
    this.slots = new Map(); // receive mid → {user_id, kind}
    this.receivers = []; // {mid, kind, stream, active}
    this.selfMute = false;
    this.selfDeaf = false;
    this.mutedBeforeDeaf = false;
    this.talking = false; // push-to-talk: the key is held
    this.camera = false;
    this.sharing = false; // my screen share
    this.watching = new Set(); // user ids whose share I chose to watch
    this.notice = null; // a non-fatal problem to show (camera refused, video ended, reconnecting)
    this.quality = null;
    this.dominant = null;
    this.audioEls = new Map();
  }

  change() { this.dispatchEvent(new Event('change')); }

  async join() {
    const { stream, cameraError } = await capture();
    this.local = stream;
    this.applyPtt();
    this.camera = stream.getVideoTracks().length > 0;
    if (cameraError) this.notice = `Joined without camera (${cameraError.name === 'NotAllowedError' ? 'camera access denied' : 'no camera available'}).`;
    try {
      this.grant = await post(`/channels/${this.channel.id}/voice`);
    } catch (e) {
      this.stopLocal();
      throw new VoiceError(e.message);
    }
    this.status = 'connecting';
    this.change();
    this.open();
  }

  open() {
    // A cluster may place the room on another node: its endpoint is then a full ws(s):// URL.
    const ep = this.grant.endpoint;
    const url = /^wss?:\/\//.test(ep) ? ep : `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${ep}`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onmessage = (e) => { ws.reached = true; this.frame(JSON.parse(e.data)); };
    ws.onclose = (e) => this.socketClosed(ws, e.code);
  }

  send(op, d = {}) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ op, d }));
  }

  frame({ op, d }) {
    switch (op) {
      case 'hello':
        clearInterval(this.beat);
        this.beat = setInterval(() => this.send('heartbeat', { nonce: Date.now() }), d.heartbeat_interval);
        if (this.sessionId) this.send('resume', { token: this.grant.token, session_id: this.sessionId });
        else this.send('identify', { token: this.grant.token });
        break;
      case 'ready':
        this.participants = new Map(d.participants.map((p) => [p.user_id, p]));
        this.userId = d.user_id;
        if (!this.sessionId) {
          this.sessionId = d.session_id;
          this.mode = d.mode ?? 'hybrid';
          this.shareMaxBitrate = d.share_max_bitrate || 2500000;
          this.iceServers = d.ice_servers ?? [];
          this.negotiate(d.audio_slots, d.video_slots ?? 0, d.share_slots ?? 0).catch((e) => this.fail(`Could not start the call: ${e.message}`));
        }
        break;
      case 'resumed':
        this.droppedAt = null;
        this.notice = null;
        break;
      case 'answer':
        this.answered(d.sdp).catch((e) => this.fail(`The server's answer was not usable: ${e.message}`));
        break;
      case 'participant_join':
      case 'participant_update':
        this.participants.set(d.participant.user_id, { ...this.participants.get(d.participant.user_id), ...d.participant });
        break;
      case 'participant_leave':
        this.participants.delete(d.user_id);
        break;
      case 'speaking': {
        const p = this.participants.get(d.user_id);
        if (p) p.speaking = d.speaking;
        break;
      }
      case 'dominant_speaker':
        this.dominant = d.user_id;
        break;
      case 'slots':
        for (const s of d.slots) this.slots.set(s.mid, s);
        this.applyVolumes();
        break;
      case 'video_ended':
        this.notice = `Video ended: ${d.message}. Audio goes on.`;
        break;
      case 'error':
        this.notice = `Voice server: ${d.message}`;
        if (d.code === 'bad_sdp' || d.code === 'no_opus' || d.code === 'unavailable') this.fail(`The voice server refused the call: ${d.message}`);
        if (d.code === 'media_unreachable') this.fail(`The call could not connect: ${d.message.replace(/^media could not connect: /, '')}.`);
        break;
    }
    this.change();
  }

  async negotiate(audioSlots, videoSlots, shareSlots) {
    // The server is ICE-lite and answers with the one address clients reach it at; the ICE
    // servers it hands out (TURN, with credentials minted for this join) are for networks that
    // cannot reach that address over UDP.
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require', iceServers: this.iceServers ?? [] });
    this.pc = pc;
    const [mic] = this.local.getAudioTracks();
    const [cam] = this.local.getVideoTracks();
    pc.addTransceiver(mic, { direction: 'sendonly', streams: [this.local] });
    for (let i = 0; i < audioSlots; i++) pc.addTransceiver('audio', { direction: 'recvonly' });
    if (cam) preferVp8(pc.addTransceiver(cam, { direction: 'sendonly', streams: [this.local] }));
    for (let i = 0; i < videoSlots; i++) preferVp8(pc.addTransceiver('video', { direction: 'recvonly' }));
    // The screen share: a send m-line after the receive ones, with no track until the user
    // shares (then the track replaces nothing: no renegotiation), and slots for others' shares.
    if (shareSlots > 0) {
      this.shareTransceiver = pc.addTransceiver('video', { direction: 'sendonly' });
      preferVp8(this.shareTransceiver);
      this.shareSlots = new Set();
      for (let i = 0; i < shareSlots; i++) this.shareSlots.add(pc.addTransceiver('video', { direction: 'recvonly' }));
    }
    pc.onconnectionstatechange = () => this.connectionChanged();
    await pc.setLocalDescription(await pc.createOffer());
    // No trickle in this protocol: send the offer with whatever candidates gathered quickly.
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
      setTimeout(resolve, 1500);
    });
    this.send('offer', { sdp: pc.localDescription.sdp });
  }

  async answered(sdp) {
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
    this.receivers = this.pc.getTransceivers()
      .filter((t) => t.direction === 'recvonly')
      .map((t) => ({
        mid: t.mid,
        kind: t.receiver.track.kind,
        stream: new MediaStream([t.receiver.track]),
        active: t.currentDirection !== 'inactive' && t.currentDirection !== 'stopped',
        share: this.shareSlots?.has(t) ?? false,
      }));
    const camera = this.pc.getTransceivers().find((t) => t.direction === 'sendonly' && t.sender.track?.kind === 'video');
    if (camera && camera.currentDirection !== 'sendonly') this.notice = 'The server did not accept video in this room; audio only.';
    if (this.receivers.some((r) => r.kind === 'video' && !r.active)) this.notice = 'The server sends no video in this room; audio only.';
    for (const r of this.receivers.filter((r) => r.kind === 'audio')) {
      const el = Object.assign(document.createElement('audio'), { autoplay: true, srcObject: r.stream, muted: this.selfDeaf });
      el.className = 'audio-sink';
      el.dataset.mid = r.mid;
      document.body.append(el);
      route(el);
      el.play().catch(() => { this.notice = 'Click anywhere to hear the call (the browser blocked autoplay).'; });
      this.audioEls.set(r.mid, el);
    }
    this.connectTimer = setTimeout(() => {
      if (this.pc?.connectionState !== 'connected') this.mediaFailed();
    }, CONNECT_TIMEOUT_MS);
    this.statsTimer = setInterval(() => this.sample(), 2000);
    this.change();
  }

  connectionChanged() {
    const s = this.pc.connectionState;
    if (s === 'connected') {
      clearTimeout(this.connectTimer);
      this.status = 'connected';
      this.wasConnected = true;
      if (this.notice?.startsWith('Media connection')) this.notice = null;
    } else if (s === 'disconnected') {
      this.notice = 'Media connection interrupted; trying to recover…';
    } else if (s === 'failed') {
      this.mediaFailed();
    }
    this.change();
  }

  mediaFailed() {
    // Connected before, then lost (a network change, a new address): a fresh join usually works.
    if (this.wasConnected) return this.end(null, { rejoin: true });
    this.fail('The media connection to the voice server failed. UDP traffic to the server’s media port may be blocked by a firewall or network; check it and join again.');
  }

  /** RTT from the selected candidate pair and loss over the last interval, from getStats(). */
  async sample() {
    if (!this.pc) return;
    const report = await this.pc.getStats();
    let rtt = null, lost = 0, received = 0, fps = null;
    for (const s of report.values()) {
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded' && s.currentRoundTripTime != null) rtt = s.currentRoundTripTime * 1000;
      if (s.type === 'remote-inbound-rtp' && rtt == null && s.roundTripTime != null) rtt = s.roundTripTime * 1000;
      if (s.type === 'inbound-rtp') {
        lost += s.packetsLost ?? 0;
        received += s.packetsReceived ?? 0;
        if (s.kind === 'video' && s.framesPerSecond != null) fps = s.framesPerSecond;
      }
    }
    const prev = this.prevStats ?? { lost: 0, received: 0 };
    const dl = lost - prev.lost, dr = received - prev.received;
    this.prevStats = { lost, received };
    const loss = dl + dr > 0 ? (100 * Math.max(0, dl)) / (dl + dr) : 0;
    const level = rtt == null ? 'fair' : rtt < 150 && loss < 2 ? 'good' : rtt < 400 && loss < 8 ? 'fair' : 'poor';
    this.quality = { rtt, loss, fps, level, received };
    this.change();
  }

  toggleMute() {
    if (this.selfDeaf) return this.toggleDeaf(); // as Discord: unmuting undeafens
    this.selfMute = !this.selfMute;
    this.sendMute();
  }

  /** Deafened: hears nobody (the server stops sending audio) and is muted; undeafening restores
   *  the mute as it was. */
  toggleDeaf() {
    this.selfDeaf = !this.selfDeaf;
    if (this.selfDeaf) this.mutedBeforeDeaf = this.selfMute;
    this.selfMute = this.selfDeaf || this.mutedBeforeDeaf;
    for (const el of this.audioEls.values()) el.muted = this.selfDeaf;
    this.sendMute();
  }

  sendMute() {
    this.applyPtt();
    this.send('mute', { self_mute: this.selfMute, self_deaf: this.selfDeaf });
    this.change();
  }

  /** The microphone sends while unmuted (and, in push-to-talk, while the key is held). */
  applyPtt() {
    const on = !this.selfMute && (!prefs().ptt || this.talking);
    for (const t of this.local?.getAudioTracks() ?? []) t.enabled = on;
  }

  pushToTalk(held) {
    if (this.talking === held) return;
    this.talking = held;
    this.applyPtt();
    this.change();
  }

  // Local media (devices, processing, push-to-talk, volumes) and the screen share live in
  // voice_local.js and voice_share.js; these delegate so views call the session.
  toggleShare() { return share.toggleShare(this); }
  stopShare() { return share.stopShare(this); }
  mixIn(extra) { return share.mixIn(this, extra); }
  watch(userId, on) { return share.watch(this, userId, on); }
  switchDevice(kind, id) { return local.switchDevice(this, kind, id); }
  setProcessing(change) { return local.setProcessing(this, change); }
  setSpeaker(id) { return local.setSpeaker(this, id); }
  setVolume(userId, volume) { return local.setVolume(this, userId, volume); }
  applyVolumes() { return local.applyVolumes(this); }

  toggleCamera() {
    const [cam] = this.local?.getVideoTracks() ?? [];
    if (!cam) return;
    this.camera = !this.camera;
    cam.enabled = this.camera; // off sends black frames; the server shows the placeholder
    this.send('camera', { on: this.camera });
    this.change();
  }

  socketClosed(ws, code) {
    if (ws !== this.ws || this.status === 'ended') return;
    clearInterval(this.beat);
    const reasons = {
      4004: 'You were signed out (or the voice token expired). Sign in and join again.',
      4011: 'You joined this voice channel from another window, tab or device.',
      4014: 'You were disconnected from the voice channel.',
      1001: 'The server is restarting. Join again in a moment.',
    };
    // The server drops a participant whose media never arrives: that is the media failing.
    if (code === 4014 && this.status !== 'connected' && this.pc) return this.mediaFailed();
    if (reasons[code]) return this.fail(reasons[code]);
    if (code === 4006) return this.end('The voice session ended while disconnected.', { rejoin: true });
    // Twice no answer at all: the voice server itself is gone (in a cluster, its node died). A
    // fresh join asks the API again, which places the room on a live node.
    this.unreached = ws.reached ? 0 : (this.unreached ?? 0) + 1;
    if (this.unreached >= 2) return this.end('The voice server went away.', { rejoin: true });
    // The media path is independent of this socket: resume the session over a new one.
    this.droppedAt ??= Date.now();
    // Too long to resume (or never started): a fresh join, if the view allows another try.
    if (!this.sessionId || Date.now() - this.droppedAt > RESUME_WINDOW_MS) return this.end('Lost the connection to the voice server.', { rejoin: true });
    this.notice = 'Reconnecting to the voice server…';
    this.change();
    setTimeout(() => this.status !== 'ended' && this.open(), 1000);
  }

  fail(message) { this.end(message); }

  leave() {
    this.send('leave');
    this.end(null);
  }

  stopLocal() {
    for (const t of this.local?.getTracks() ?? []) t.stop();
  }

  end(message, { rejoin = false } = {}) {
    if (this.status === 'ended') return;
    this.status = 'ended';
    clearInterval(this.beat);
    clearInterval(this.statsTimer);
    clearTimeout(this.connectTimer);
    this.ws?.close(1000);
    this.pc?.close();
    this.stopLocal();
    for (const x of this.shareStream?.getTracks() ?? []) x.stop();
    this.mix?.ctx.close();
    for (const el of this.audioEls.values()) el.remove();
    this.rejoin = rejoin;
    this.dispatchEvent(new CustomEvent('ended', { detail: message }));
  }
}
