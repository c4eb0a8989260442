// Test harness: the real `confab` binary on free ports, Debian's Chromium driven by playwright-core
// (never a browser Playwright downloads), fake media devices fed from files this harness writes,
// and the getStats() probes the tests assert on.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const ARTIFACTS = join(ROOT, 'target', 'browser');
mkdirSync(ARTIFACTS, { recursive: true });
const BIN = process.env.CONFAB_BIN ?? join(ROOT, 'target', 'debug', 'confab');

// Whatever happens to the test process, its servers and temporary files go with it.
const children = new Set();
const tempDirs = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(prefix) {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** `confab serve` on 127.0.0.1:0 with a throwaway SQLite store (plus `extra` arguments); resolves
 *  once both ports are up. */
export async function startServer(...extra) {
  const dir = tempDir('confab-browser-');
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--media-bind', '127.0.0.1:0',
    '--database-url', `sqlite:${join(dir, 'confab.db')}`, ...extra], {
    // The tests post backlogs faster than a person types: the per-user posting limit is raised.
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info', CONFAB_CHAT_MESSAGE_BURST_PER_USER: '1000', CONFAB_LIVE_RTMP_BIND: '127.0.0.1:0' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  const log = [];
  const base = await new Promise((ok, fail) => {
    let http = null, udp = false, buf = '';
    const timer = setTimeout(() => fail(new Error(`confab did not start:\n${log.join('\n')}`)), 30000);
    child.on('exit', (code) => fail(new Error(`confab exited (${code}):\n${log.join('\n')}`)));
    child.stderr.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        log.push(line);
        if (log.length > 2000) log.shift();
        const m = line.match(/listening on (http:\/\/\S+)/);
        if (m) http = m[1];
        if (line.includes('media engine ready')) udp = true;
        if (http && udp) { clearTimeout(timer); ok(http); }
      }
    });
  });
  return {
    base, log,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode != null ? r() : child.on('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A mono 16-bit WAV of a sine in syllables (300 ms on, 100 ms off, 10 ms ramps): steady enough for
 *  the server to hear someone speaking all along, varied enough that the sender's noise suppression
 *  does not take it for background noise and damp it. */
export function toneWav(path, hz, seconds = 2) {
  const rate = 48000, n = rate * seconds, data = Buffer.alloc(n * 2);
  const ramp = rate / 100;
  for (let i = 0; i < n; i++) {
    const t = i % (0.4 * rate);
    const env = t >= 0.3 * rate ? 0 : Math.min(1, t / ramp, (0.3 * rate - t) / ramp);
    data.writeInt16LE(Math.round(8000 * env * Math.sin((2 * Math.PI * hz * i) / rate)), i * 2);
  }
  const head = Buffer.alloc(44);
  head.write('RIFF', 0); head.writeUInt32LE(36 + data.length, 4); head.write('WAVEfmt ', 8);
  head.writeUInt32LE(16, 16); head.writeUInt16LE(1, 20); head.writeUInt16LE(1, 22);
  head.writeUInt32LE(rate, 24); head.writeUInt32LE(rate * 2, 28); head.writeUInt16LE(2, 32); head.writeUInt16LE(16, 34);
  head.write('data', 36); head.writeUInt32LE(data.length, 40);
  writeFileSync(path, Buffer.concat([head, data]));
}

/** A Y4M video of one solid colour (RGB): a camera whose tile the tests can recognise by colour. */
export function colourY4m(path, [r, g, b], w = 320, h = 180, frames = 30) {
  const y = Math.round(0.257 * r + 0.504 * g + 0.098 * b + 16);
  const u = Math.round(-0.148 * r - 0.291 * g + 0.439 * b + 128);
  const v = Math.round(0.439 * r - 0.368 * g - 0.071 * b + 128);
  const frame = Buffer.concat([Buffer.from('FRAME\n'), Buffer.alloc(w * h, y), Buffer.alloc((w * h) / 4, u), Buffer.alloc((w * h) / 4, v)]);
  const header = Buffer.from(`YUV4MPEG2 W${w} H${h} F30:1 Ip A1:1 C420jpeg\n`);
  writeFileSync(path, Buffer.concat([header, ...Array(frames).fill(frame)]));
}

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--allow-loopback-in-peer-connection',
  // Players start with sound, as after a click: the tests listen to what they play.
  '--autoplay-policy=no-user-gesture-required'];

/** Chromium with a fresh profile. `media`: {tone, colour} for fake devices fed from files, with the
 *  permission prompt auto-accepted; `media: 'deny'`: fake devices but no auto-accept, so the
 *  browser's own permission machinery answers (and a context denies it; see `deniedContext`). */
export async function launch(name, media) {
  const args = [...FLAGS, '--use-fake-device-for-media-stream'];
  if (media !== 'deny') {
    const dir = tempDir(`confab-media-${name}-`);
    toneWav(join(dir, 'mic.wav'), media.tone);
    colourY4m(join(dir, 'cam.y4m'), media.colour);
    args.push('--use-fake-ui-for-media-stream', `--use-file-for-fake-audio-capture=${join(dir, 'mic.wav')}`,
      `--use-file-for-fake-video-capture=${join(dir, 'cam.y4m')}`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args, ignoreDefaultArgs: ['--mute-audio'] });
}

/** A page in a new context. `page.errors`: console errors (expected ones too, such as refused
 *  connections while offline); `page.bugs`: uncaught exceptions and Content-Security-Policy
 *  violations, which the test files assert are none. */
export const pages = [];
export async function newPage(browser, base, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, baseURL: base });
  const page = await context.newPage();
  pages.push(page);
  page.errors = [];
  page.bugs = [];
  page.on('pageerror', (e) => page.bugs.push(String(e)));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    page.errors.push(m.text());
    if (m.text().includes('Content Security Policy')) page.bugs.push(m.text());
  });
  await page.goto('/');
  return page;
}

export async function signUp(page, username, password = 'correct horse battery') {
  await page.click('#auth-switch');
  await page.fill('#auth-username', username);
  await page.fill('#auth-password', password);
  await page.click('#auth-submit');
  await page.waitForSelector('#app:not([hidden])');
  await page.waitForFunction(() => document.getElementById('app').dataset.gateway === 'connected');
}

/** Polls `fn` until it returns a truthy value (returned), or throws with the last value seen. */
export async function eventually(what, fn, timeout = 20000, every = 250) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** What the page's voice connection receives, from its own RTCPeerConnection.getStats(). */
export function mediaStats(page) {
  return page.evaluate(async () => {
    const pc = window.confab.voice()?.pc;
    if (!pc) return null;
    const out = { state: pc.connectionState, audio: [], video: [], rtt: null };
    for (const s of (await pc.getStats()).values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        out.audio.push({ mid: s.mid, packets: s.packetsReceived, level: s.audioLevel ?? 0, energy: s.totalAudioEnergy ?? 0 });
      }
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        out.video.push({ mid: s.mid, packets: s.packetsReceived, decoded: s.framesDecoded ?? 0, width: s.frameWidth, height: s.frameHeight });
      }
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') out.rtt = s.currentRoundTripTime;
    }
    return out;
  });
}

/** Mean colour of a grid of regions of a <video>, drawn into a canvas (what the user sees). */
export function videoColours(page, selector, cols = 2, rows = 1) {
  return page.evaluate(({ selector, cols, rows }) => {
    const v = document.querySelector(selector);
    if (!v || !v.videoWidth) return null;
    const c = document.createElement('canvas');
    c.width = v.videoWidth; c.height = v.videoHeight;
    const g = c.getContext('2d');
    g.drawImage(v, 0, 0);
    const out = [];
    for (let j = 0; j < rows; j++) {
      for (let i = 0; i < cols; i++) {
        // A patch around each cell's centre: away from borders, letterboxing and labels.
        const w = c.width / cols, h = c.height / rows;
        const px = g.getImageData(i * w + 0.4 * w, j * h + 0.4 * h, 0.2 * w, 0.2 * h).data;
        const sum = [0, 0, 0];
        for (let k = 0; k < px.length; k += 4) { sum[0] += px[k]; sum[1] += px[k + 1]; sum[2] += px[k + 2]; }
        out.push(sum.map((s) => Math.round(s / (px.length / 4))));
      }
    }
    return { width: c.width, height: c.height, cells: out };
  }, { selector, cols, rows });
}

export async function screenshot(page, name) {
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/** Creates a guild as `owner` through the UI and returns an invite code made there. */
export async function createGuild(owner, name) {
  await owner.click('#guild-create');
  await owner.fill('#dialog-input', name);
  await owner.keyboard.press('Enter');
  await owner.waitForSelector('#channel-title:text("# general")');
  await owner.click('#invite-create');
  const code = await owner.textContent('#dialog-code');
  await owner.keyboard.press('Escape');
  return code;
}

export async function joinGuild(page, code) {
  await page.click('#guild-join');
  await page.fill('#dialog-input', code);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#channel-title:text("# general")');
}
