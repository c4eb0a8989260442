// For tests/aiortc/turn.sh: Chromium in the firewalled namespace (every UDP datagram dropped, no
// TURN offered) joins voice over ICE-TCP, the media port's passive TCP candidate, and receives the
// speaker's audio. Chromium runs through CHROMIUM (a wrapper that enters the namespace); the page
// speaks the voice protocol itself (a WebAudio tone as its microphone: getUserMedia needs a
// secure context, and the server is reached over plain HTTP on the veth).
// Usage: node ice-tcp.mjs BASE STATE.json   (STATE from `turn.py setup`)

import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [base, statePath] = process.argv.slice(2);
const state = JSON.parse(readFileSync(statePath, 'utf8'));
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, headless: true, args: FLAGS });
try {
  const page = await browser.newPage();
  await page.goto(base + '/');
  const result = await page.evaluate(async ({ token, voice }) => {
    const grant = await (await fetch(`/api/channels/${voice}/voice`, {
      method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: '{}',
    })).json();
    const ws = new WebSocket(location.origin.replace('http', 'ws') + grant.endpoint);
    const frames = [];
    let wake = null;
    ws.onmessage = (m) => { frames.push(JSON.parse(m.data)); wake?.(); };
    const next = async (op) => {
      for (;;) {
        const i = frames.findIndex((f) => f.op === op || f.op === 'error');
        if (i >= 0) return frames.splice(i, 1)[0];
        await new Promise((r) => { wake = r; setTimeout(r, 200); });
      }
    };
    await next('hello');
    ws.send(JSON.stringify({ op: 'identify', d: { token: grant.token } }));
    const ready = (await next('ready')).d;
    const beat = setInterval(() => ws.send(JSON.stringify({ op: 'heartbeat', d: { nonce: 1 } })), 1000);
    const audio = new AudioContext();
    const osc = audio.createOscillator();
    const mic = audio.createMediaStreamDestination();
    osc.connect(mic);
    osc.start();
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require', iceServers: ready.ice_servers ?? [] });
    pc.addTransceiver(mic.stream.getAudioTracks()[0], { direction: 'sendonly' });
    for (let i = 0; i < ready.audio_slots; i++) pc.addTransceiver('audio', { direction: 'recvonly' });
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((r) => {
      if (pc.iceGatheringState === 'complete') return r();
      pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r();
      setTimeout(r, 3000);
    });
    ws.send(JSON.stringify({ op: 'offer', d: { sdp: pc.localDescription.sdp } }));
    const answer = await next('answer');
    if (answer.op === 'error') return { error: answer.d };
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.d.sdp });
    const t0 = Date.now();
    while (pc.connectionState !== 'connected' && Date.now() - t0 < 20000) await new Promise((r) => setTimeout(r, 100));
    let packets = 0, protocol = null, candidateType = null;
    while (Date.now() - t0 < 30000) {
      const stats = await pc.getStats();
      packets = 0;
      for (const s of stats.values()) {
        if (s.type === 'inbound-rtp' && s.kind === 'audio') packets += s.packetsReceived ?? 0;
        if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
          const local = stats.get(s.localCandidateId);
          protocol = local?.protocol;
          candidateType = local?.candidateType;
        }
      }
      if (packets >= 50) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    clearInterval(beat);
    const state = pc.connectionState;
    pc.close();
    ws.close();
    return { state, packets, protocol, candidateType, connectMs: Date.now() - t0 };
  }, { token: state.tokens[1], voice: state.voice });
  if (result.error) throw new Error(`the server refused: ${JSON.stringify(result.error)}`);
  if (result.state !== 'connected' || result.protocol !== 'tcp' || result.packets < 50) {
    throw new Error(`no audio over ICE-TCP: ${JSON.stringify(result)}`);
  }
  console.log(`turn: Chromium without UDP joined over ICE-TCP (${result.candidateType} tcp candidate) and received ${result.packets} audio packets`);
} finally {
  await browser.close();
}
