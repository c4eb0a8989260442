// Live streaming in real browsers: the owner makes a live channel and its key; ffmpeg publishes
// over RTMP; a member (in the client, beside the chat) and a visitor without an account (the public
// watch page) play it with hls.js: time advances, frames decode, the tone is heard, the quality
// menu switches rendition, "Low latency" plays the stream over WebRTC (WHEP: the ladder's top
// rendition and Opus), the viewer count reads 2 then 1, and the end is shown without error loops. Then the owner goes live from the browser (WHIP, fake camera) and the member watches,
// over HLS and then with "Low latency" over WebRTC (WHEP).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { createGuild, eventually, joinGuild, launch, newPage, pages, screenshot, signUp, startServer } from './harness.mjs';

let server, browser, alice, bob, visitor, channelId, rtmpUrl, ffmpeg;
const refused = [];

before(async () => {
  server = await startServer();
  browser = await launch('live', { tone: 660, colour: [40, 160, 60] });
  alice = await newPage(browser, server.base);
  bob = await newPage(browser, server.base);
  // Every LL-HLS and WHIP request succeeds: no player retry loops, no stale publishes in caches.
  for (const p of [alice, bob]) p.on('response', (r) => { if (r.status() >= 400 && /\/(live|whip)\//.test(r.url())) refused.push(`${r.status()} ${r.url()}`); });
});

after(async () => {
  ffmpeg?.kill('SIGKILL');
  for (const p of pages) if (p.errors.length) console.log(`browser console errors:\n${p.errors.join('\n')}`);
  await browser?.close();
  await server?.stop();
  assert.deepEqual(pages.flatMap((p) => p.bugs), [], 'no uncaught exceptions or CSP violations');
  assert.deepEqual(refused, [], 'no refused stream requests');
});

async function pickChannel(page, name) {
  await page.click(`#channel-list button.channel:has(.name:text-is("${name}"))`);
}

/** The player's progress: media time, decoded frames, size, and the loudness of what it plays. */
function playback(page) {
  return page.evaluate(() => {
    const v = document.getElementById('live-video');
    if (!v) return null;
    // Tap the element's audio once (WebAudio), to measure what a listener would hear.
    if (!window.tap && v.currentTime > 0) {
      const ctx = new AudioContext();
      const src = ctx.createMediaElementSource(v);
      const analyser = ctx.createAnalyser();
      src.connect(analyser);
      analyser.connect(ctx.destination);
      window.tap = { ctx, analyser, peak: 0 };
      setInterval(() => {
        const buf = new Float32Array(analyser.fftSize);
        analyser.getFloatTimeDomainData(buf);
        window.tap.peak = Math.max(window.tap.peak, ...buf.map(Math.abs));
      }, 100);
    }
    const q = v.getVideoPlaybackQuality();
    return { time: v.currentTime, frames: q.totalVideoFrames, height: v.videoHeight, peak: window.tap?.peak ?? 0, paused: v.paused };
  });
}

async function plays(page, who) {
  await page.evaluate(() => { if (window.tap) window.tap.peak = 0; });
  const first = await eventually(`${who} starts playing`, async () => {
    const p = await playback(page);
    return p && p.time > 1 && p.frames > 20 ? p : null;
  }, 30000);
  await eventually(`${who}'s playback advances`, async () => {
    const p = await playback(page);
    return p.time > first.time + 1 && p.frames > first.frames ? p : null;
  });
  await eventually(`${who} hears the tone`, async () => (await playback(page)).peak > 0.05);
}

test('the owner makes a live channel, its key and settings', async () => {
  await signUp(alice, 'alice');
  await signUp(bob, 'bob');
  const code = await createGuild(alice, 'Streams');
  await joinGuild(bob, code);
  await alice.click('button[aria-label="Create a live channel"]');
  await alice.fill('#dialog-input', 'stage');
  await alice.keyboard.press('Enter');
  await alice.waitForSelector('#watch:not([hidden]) #live-badge:text("OFFLINE")');
  channelId = await alice.evaluate(() => window.confab.state.channelId);
  await alice.click('#live-owner summary');
  await alice.click('#live-key-rotate');
  await alice.waitForFunction(() => document.getElementById('live-key').value !== '');
  const key = await alice.inputValue('#live-key');
  assert.match(key, /^live_/);
  assert.equal(await alice.getAttribute('#live-key', 'type'), 'password', 'hidden until asked');
  await alice.click('#live-key-show');
  assert.equal(await alice.getAttribute('#live-key', 'type'), 'text');
  rtmpUrl = await alice.evaluate((id) => JSON.parse(localStorage.getItem(`confab.streamkey.${id}`)).rtmp_url, channelId);
  assert.match(rtmpUrl, /^rtmp:\/\/127\.0\.0\.1:\d+\/live\/live_/);
  await alice.fill('#live-title-input', 'Launch party');
  await alice.check('#live-public');
  await alice.click('#live-owner button[type=submit]');
  await alice.waitForSelector('#live-title:text("Launch party")');
  await screenshot(alice, 'live-owner');
  // The owner steps away: only Bob and the visitor watch from here.
  await pickChannel(alice, 'general');
});

test('ffmpeg publishes; a member and a visitor watch with hls.js', async () => {
  ffmpeg = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=854x480:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', '40', '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '60', '-c:a', 'aac', '-f', 'flv', rtmpUrl],
  { stdio: 'ignore' });
  await pickChannel(bob, 'stage');
  await bob.waitForSelector('#live-badge:text("LIVE")', { timeout: 20000 });
  await plays(bob, 'bob');
  visitor = await (await browser.newContext({ baseURL: server.base })).newPage();
  visitor.errors = [];
  visitor.bugs = [];
  visitor.on('pageerror', (e) => visitor.bugs.push(String(e)));
  pages.push(visitor);
  await visitor.goto(`/watch/${channelId}`);
  await visitor.waitForSelector('#live-title:text("Launch party")');
  await plays(visitor, 'the visitor');
  await eventually('two viewers', async () => (await bob.textContent('#live-viewers')) === '2 watching');
  await screenshot(bob, 'live-member');

  // The quality menu: the source (854x480) and the ladder's 360p.
  const options = await bob.$$eval('#live-quality option', (os) => os.map((o) => o.textContent));
  assert.deepEqual(options, ['Auto', '480p', '360p']);
  await bob.selectOption('#live-quality', { label: '360p' });
  await eventually('the 360p rendition plays', async () => (await playback(bob)).height === 360);

  // Low latency over WebRTC (WHEP): the ladder's top rendition (360p) in H.264 and the audio in Opus.
  await bob.check('#live-lowlatency');
  await eventually('bob plays the RTMP stream over WHEP', async () => bob.evaluate(async () => {
    const v = document.getElementById('live-video');
    const pc = window.confab.player?.pc;
    if (!pc || !v.srcObject || v.currentTime < 1 || v.getVideoPlaybackQuality().totalVideoFrames < 20) return false;
    const stats = [...(await pc.getStats()).values()].filter((s) => s.type === 'inbound-rtp');
    const video = stats.find((s) => s.kind === 'video');
    const audio = stats.find((s) => s.kind === 'audio');
    return v.videoHeight === 360 && video?.framesDecoded > 20 && audio?.totalAudioEnergy > 0;
  }), 30000);
  await bob.uncheck('#live-lowlatency');
  await plays(bob, 'bob back on HLS');

  // The chat beside the player.
  await bob.fill('#composer-input', 'what a stream');
  await bob.keyboard.press('Enter');
  await bob.waitForSelector('#messages .msg:has-text("what a stream")');

  // The visitor leaves: the count drops (its goodbye is sent as the page goes).
  await visitor.close();
  await eventually('one viewer', async () => (await bob.textContent('#live-viewers')) === '1 watching');
});

test('the stream ends: the page says so and the player stops', async () => {
  ffmpeg.kill('SIGINT');
  await bob.waitForSelector('#live-overlay:text("The stream has ended")', { timeout: 20000 });
  const stopped = await bob.evaluate(() => window.confab.player?.stopped);
  assert.equal(stopped, true);
  // No retries afterwards: the page makes no more playlist requests.
  let requests = 0;
  const count = (r) => { if (r.url().includes('/live/')) requests++; };
  bob.on('request', count);
  await new Promise((r) => setTimeout(r, 3000));
  bob.off('request', count);
  assert.equal(requests, 0, 'no error loop after the end');
});

test('the owner goes live from the browser (WHIP); a member watches', async () => {
  await pickChannel(alice, 'stage');
  await alice.click('#live-owner summary');
  await alice.click('#live-go');
  await alice.waitForSelector('#live-publish-state:text("Live: camera and microphone")', { timeout: 20000 });
  await bob.waitForSelector('#live-badge:text("LIVE")', { timeout: 20000 });
  await plays(bob, 'bob watching the browser stream');
  await screenshot(bob, 'live-whip');
  // Low latency: the same stream over WebRTC (WHEP), the publisher's own frames.
  await bob.check('#live-lowlatency');
  await eventually('bob plays over WHEP', async () => bob.evaluate(() => {
    const v = document.getElementById('live-video');
    return v.srcObject && v.currentTime > 1 && v.getVideoPlaybackQuality().totalVideoFrames > 20 && v.videoWidth > 0;
  }));
  await alice.click('#live-stop');
  await bob.waitForSelector('#live-overlay:text("The stream has ended")', { timeout: 20000 });
});
