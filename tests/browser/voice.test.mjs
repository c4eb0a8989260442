// Voice and video in real browsers: Alice and Bob (separate Chromium processes, so each has its own
// fake microphone tone and camera colour) join the same voice channel and each checks, through
// getStats() and the pixels of the <video> it shows, that it receives the other's audio and video;
// then they chat in the text channel with the call docked above the messages.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  createGuild, eventually, joinGuild, launch, mediaStats, newPage, pages, screenshot, signUp, startServer, videoColours,
} from './harness.mjs';

const RED = [220, 40, 40], BLUE = [40, 80, 220];
const PHONE = { width: 390, height: 844 };
let server, browsers = [], alice, bob, ids = {};

before(async () => {
  server = await startServer();
  browsers = [await launch('alice', { tone: 440, colour: RED }), await launch('bob', { tone: 660, colour: BLUE })];
  alice = await newPage(browsers[0], server.base);
  bob = await newPage(browsers[1], server.base);
  await signUp(alice, 'alice');
  await signUp(bob, 'bob');
  await joinGuild(bob, await createGuild(alice, 'Voice test'));
  for (const [name, p] of [['alice', alice], ['bob', bob]]) ids[name] = await p.evaluate(() => window.confab.state.me.id);
});

after(async () => {
  for (const p of pages) if (p.errors.length) console.log(`browser console errors:\n${p.errors.join('\n')}`);
  for (const b of browsers) await b.close();
  await server?.stop();
  assert.deepEqual(pages.flatMap((p) => p.bugs), [], 'no uncaught exceptions or CSP violations');
});

async function joinVoice(page, channel) {
  await page.click(`#channel-list button.channel:has(.name:text-is("${channel}"))`);
  await page.click('#voice-join');
  await page.waitForFunction(() => window.confab.voice()?.status === 'connected', null, { timeout: 20000 });
}

async function openText(page, channel) {
  await page.click(`#channel-list button.channel:has(.name:text-is("${channel}"))`);
  await page.waitForSelector(`#channel-title:text("# ${channel}")`);
}

async function say(page, text) {
  await page.fill('#composer-input', text);
  await page.keyboard.press('Enter');
  await page.locator('#messages .msg', { hasText: text }).waitFor();
}

async function leaveVoice(page) {
  await page.click('#voice-leave');
  await page.waitForSelector('#voice-join');
}

/** Audio from the other participant: inbound packets and an audible level (above -60 dBFS; the
 *  sender's noise suppression damps a steady tone, so not much more), on some receive slot. */
async function receivesAudio(page) {
  let level = 0;
  return eventually('inbound audio with a level', async () => {
    const s = await mediaStats(page);
    const live = (s?.audio ?? []).filter((a) => a.packets > 0);
    level = Math.max(level, ...live.map((a) => a.level));
    return live.length && level > 0.001 && live.some((a) => a.energy > 0)
      ? { packets: Math.max(...live.map((a) => a.packets)), level: +level.toPrecision(2), rtt: s.rtt } : null;
  });
}

async function receivesVideo(page) {
  return eventually('decoded inbound video', async () => {
    const s = await mediaStats(page);
    const v = (s?.video ?? []).filter((x) => x.decoded > 0);
    return v.length ? v : null;
  });
}

const isColour = ([r, g, b], [R, G, B]) => Math.abs(r - R) < 60 && Math.abs(g - G) < 60 && Math.abs(b - B) < 60;

/** The composite, sampled as a 2x1 grid, shows both cameras (Alice's red, Bob's blue). On timeout
 *  the error carries what the page decoded, to tell a missing stream from a wrong picture. */
async function seesBothCameras(page, selector = '#voice-stage video') {
  try {
    return await eventually('two coloured tiles', async () => {
      const c = await videoColours(page, selector, 2, 1);
      return c && c.cells.some((x) => isColour(x, RED)) && c.cells.some((x) => isColour(x, BLUE)) ? c : null;
    }, 30000);
  } catch (e) {
    const video = await page.evaluate((selector) => [...document.querySelectorAll(selector)].map((v) =>
      ({ paused: v.paused, width: v.videoWidth, ready: v.readyState, connected: v.isConnected })), selector);
    throw new Error(`${e.message}; <video>: ${JSON.stringify(video)}; stats: ${JSON.stringify(await mediaStats(page))}; ` +
      `colours: ${JSON.stringify(await videoColours(page, selector, 2, 1))}`);
  }
}

/** The <video> plays: not paused, a frame to show, and more frames decoded a moment later. */
async function plays(page, selector) {
  const frames = () => page.evaluate((selector) => {
    const v = document.querySelector(selector);
    return v && !v.paused && v.readyState >= 2 && v.checkVisibility() ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
  }, selector);
  const first = await eventually(`${selector} playing`, frames);
  return eventually(`${selector} decoding new frames`, async () => {
    const n = await frames();
    return n > first ? n : null;
  });
}

test('hybrid room: both hear each other and see the composite of both cameras', async () => {
  const t0 = Date.now();
  await joinVoice(alice, 'General');
  await joinVoice(bob, 'General');
  console.log(`both connected in ${Date.now() - t0} ms`);
  // The chat plane shows who is in the channel.
  await alice.waitForFunction(() => document.querySelectorAll('#channel-list .voice-users li').length === 2);
  for (const [page, other] of [[alice, 'bob'], [bob, 'alice']]) {
    const audio = await receivesAudio(page);
    console.log(`${other === 'bob' ? 'alice' : 'bob'} receives audio: ${JSON.stringify(audio)}`);
    // The other's tone makes the server announce them speaking: a ring on their avatar.
    await page.waitForSelector(`#voice-people .person.speaking[data-user="${ids[other]}"]`);
    const video = await receivesVideo(page);
    console.log(`${other === 'bob' ? 'alice' : 'bob'} decodes video: ${JSON.stringify(video)}`);
  }
  // The composite is a 2x1 grid: Alice's red camera and Bob's blue one, each seen by both.
  for (const page of [alice, bob]) {
    const seen = await seesBothCameras(page);
    console.log(`composite ${seen.width}x${seen.height}, tile colours ${JSON.stringify(seen.cells)}`);
  }
  await alice.waitForSelector('#voice-quality:has-text("RTT")');
  await screenshot(alice, 'voice-hybrid-alice');
  await screenshot(bob, 'voice-hybrid-bob');
});

test('hybrid room: chatting in the text channel, the call stays docked above the messages', async () => {
  await openText(alice, 'general');
  await say(alice, 'Camera on. Can you see me?');
  await openText(bob, 'general');
  await say(bob, 'Yes, red and blue side by side.');
  await alice.locator('#messages .msg', { hasText: 'side by side' }).waitFor();
  await say(alice, 'Then let us keep chatting here while the call goes on.');
  await bob.locator('#messages .msg', { hasText: 'keep chatting' }).waitFor();
  for (const [page, me, other] of [[alice, 'alice', 'bob'], [bob, 'bob', 'alice']]) {
    assert.ok(await page.locator(`#messages .msg[data-author="${other}"]`).count() >= 1, `${me} sees ${other}'s messages`);
    // The dock: the composite of both cameras, playing, the other's speaking ring, the controls.
    await page.waitForSelector('#call-dock:not([hidden]) #voice-stage video');
    assert.equal(await page.getAttribute('#dock-toggle', 'aria-expanded'), 'true');
    const frames = await plays(page, '#call-dock #voice-stage video');
    const seen = await seesBothCameras(page, '#call-dock #voice-stage video');
    console.log(`${me}'s dock: ${frames} frames decoded, composite ${seen.width}x${seen.height}, tiles ${JSON.stringify(seen.cells)}`);
    await page.waitForSelector(`#call-dock #voice-people .person.speaking[data-user="${ids[other]}"]`);
    for (const b of ['#voice-mute', '#voice-camera', '#voice-leave']) assert.ok(await page.isVisible(`#call-dock ${b}`), `${b} in the dock`);
    await page.waitForSelector('#call-dock .dock-bar .quality:has-text("RTT")');
  }
  await screenshot(alice, 'voice-dock-alice');
  await screenshot(bob, 'voice-dock-bob');

  // At phone width the dock is a slim bar (controls, no video) until the user expands it, here
  // from the keyboard; the user's choice then holds at any width. The member list, open since the
  // page loaded wide, folds away by itself rather than cover the conversation.
  await bob.setViewportSize(PHONE);
  await bob.waitForSelector('#toggle-members[aria-expanded="false"]');
  assert.equal(await bob.isVisible('#members'), false, 'the member list folds on a narrow window');
  await bob.waitForSelector('#call-dock.collapsed #dock-toggle[aria-expanded="false"]');
  assert.equal(await bob.isVisible('#call-dock #voice-stage'), false, 'no video in the slim bar');
  assert.ok(await bob.isVisible('#call-dock #voice-mute') && await bob.isVisible('#call-dock #voice-leave'));
  const bar = await bob.locator('#call-dock').boundingBox();
  assert.ok(bar.height < 60, `the slim bar is one line (${bar.height}px)`);
  await screenshot(bob, 'voice-dock-phone-collapsed-bob');
  await bob.focus('#dock-toggle');
  await bob.keyboard.press('Enter');
  await bob.waitForSelector('#dock-toggle[aria-expanded="true"]');
  await plays(bob, '#call-dock #voice-stage video');
  await screenshot(bob, 'voice-dock-phone-bob');
  await bob.setViewportSize({ width: 1280, height: 800 });
  await bob.waitForSelector('#members:visible');
  assert.equal(await bob.getAttribute('#dock-toggle', 'aria-expanded'), 'true');

  // The dock's title opens the voice channel: the same video, moved back, plays on there.
  for (const page of [alice, bob]) {
    await page.click('#dock-open');
    await page.waitForSelector('#voice:not([hidden]) #voice-stage video');
    assert.equal(await page.isHidden('#call-dock'), true);
    await plays(page, '#voice #voice-stage video');
  }
});

test('a dropped voice socket resumes; mute and camera off reach the other side', async () => {
  // The signaling socket drops; the client resumes over a new one, media untouched.
  await alice.evaluate(() => window.confab.voice().ws.close(4000));
  await alice.waitForFunction(() => window.confab.voice()?.ws.readyState === WebSocket.OPEN && window.confab.voice().droppedAt === null);
  await bob.click('#voice-mute');
  await alice.waitForSelector(`#voice-people .person[data-user="${ids.bob}"][aria-label*="muted"]`);
  await alice.waitForSelector(`#voice-people .person.speaking[data-user="${ids.bob}"]`, { state: 'detached' });
  await bob.click('#voice-mute');
  await alice.waitForSelector(`#voice-people .person.speaking[data-user="${ids.bob}"]`);
  // Camera off: Bob's tile in the composite becomes a placeholder, no longer his blue camera.
  await bob.click('#voice-camera');
  await eventually('bob placeholder', async () => {
    const c = await videoColours(alice, '#voice-stage video', 2, 1);
    return c && c.cells.some((x) => isColour(x, RED)) && !c.cells.some((x) => isColour(x, BLUE));
  });
  await bob.click('#voice-camera');
  await eventually('bob camera back', async () => {
    const c = await videoColours(alice, '#voice-stage video', 2, 1);
    return c?.cells.some((x) => isColour(x, BLUE));
  });
  await leaveVoice(alice);
  await leaveVoice(bob);
  await alice.waitForFunction(() => document.querySelectorAll('#channel-list .voice-users li').length === 0);
});

test('before joining: who is in and the mode in plain words; deafen, a switched microphone and a reload mid-call', async () => {
  const connected = () => window.confab?.voice()?.status === 'connected';
  await joinVoice(alice, 'General');
  await bob.click('#channel-list button.channel:has(.name:text-is("General"))');
  await bob.waitForSelector('#voice-inside:has-text("alice")');
  assert.match(await bob.textContent('#voice-mode'), /Balanced/);
  assert.ok(!/\bnull\b/.test(await bob.textContent('#voice')), 'no stray "null" on the page');
  // The preview: the camera's picture, the microphone's level, the device pickers.
  await bob.click('#voice-preview-start');
  await bob.waitForSelector('#voice-preview-video');
  await bob.waitForSelector('#voice-mic');
  await bob.click('#voice-join');
  await bob.waitForFunction(connected, null, { timeout: 20000 });
  await receivesAudio(alice);
  await receivesAudio(bob);
  await bob.click('#voice-mute');
  assert.equal(await bob.textContent('#voice-mute'), 'Unmute');
  await bob.click('#voice-mute');
  assert.equal(await bob.textContent('#voice-mute'), 'Mute');

  // Deafen: Bob is sent no audio at all (getStats), is muted, and Alice sees it.
  const packets = async (page) => (await mediaStats(page)).audio.reduce((n, a) => n + a.packets, 0);
  await bob.click('#voice-deafen');
  await alice.waitForSelector(`#voice-people .person[data-user="${ids.bob}"][aria-label*="deafened"]`);
  assert.equal(await bob.textContent('#voice-mute'), 'Unmute', 'deafened means muted');
  await new Promise((r) => setTimeout(r, 500));
  const before = await packets(bob);
  await new Promise((r) => setTimeout(r, 1500));
  const during = await packets(bob);
  assert.ok(during - before < 5, `no audio while deafened (${during - before} packets in 1.5 s)`);
  await bob.click('#voice-deafen');
  await alice.waitForSelector(`#voice-people .person[data-user="${ids.bob}"][aria-label*="deafened"]`, { state: 'detached' });
  await eventually('audio again after undeafening', async () => (await packets(bob)) > during + 20);

  // Another microphone mid-call: the track is replaced, Alice goes on hearing Bob.
  await bob.click('#voice-settings summary');
  await bob.waitForSelector('#voice-settings #voice-mic');
  await bob.evaluate(() => { window.confab.voice().local.getAudioTracks()[0].oldMic = true; });
  const mics = await bob.$$eval('#voice-settings #voice-mic option', (os) => os.map((o) => o.value).filter(Boolean));
  const current = await bob.evaluate(() => window.confab.voice().local.getAudioTracks()[0].getSettings().deviceId);
  await bob.selectOption('#voice-settings #voice-mic', mics.find((m) => m !== current) ?? mics[0] ?? '');
  await bob.waitForFunction(() => !window.confab.voice().local.getAudioTracks()[0].oldMic);
  const energy = async () => (await mediaStats(alice)).audio.reduce((n, a) => n + a.energy, 0);
  const e0 = await energy();
  await eventually('Alice hears the new microphone', async () => (await energy()) > e0 + 1e-4);

  // A reload mid-call: back in the room by itself, and Alice sees one Bob, not two.
  await bob.reload();
  await bob.waitForFunction(connected, null, { timeout: 20000 });
  await receivesAudio(alice);
  await alice.waitForFunction((id) => window.confab.voice().participants.size === 2
    && document.querySelectorAll(`#voice-people .person[data-user="${id}"]`).length === 1, ids.bob);
  // The media path lost after it worked (a network change): a fresh join, by itself, no ghost.
  const oldSession = await bob.evaluate(() => window.confab.voice().sessionId);
  await bob.evaluate(() => window.confab.voice().mediaFailed());
  await bob.waitForFunction((old) => window.confab.voice()?.status === 'connected' && window.confab.voice().sessionId !== old, oldSession, { timeout: 20000 });
  await receivesAudio(alice);
  await alice.waitForFunction((id) => window.confab.voice().participants.size === 2
    && document.querySelectorAll(`#voice-people .person[data-user="${id}"]`).length === 1, ids.bob);
  await leaveVoice(bob);
  await leaveVoice(alice);
});

test('screen share: Bob shares, Alice watches it large at its own resolution beside the composite', async () => {
  await joinVoice(alice, 'General');
  await joinVoice(bob, 'General');
  // A fake display: a 1600x900 canvas with text, where the browser would ask which screen.
  await bob.evaluate(() => {
    navigator.mediaDevices.getDisplayMedia = async () => {
      const c = Object.assign(document.createElement('canvas'), { width: 1600, height: 900 });
      const g = c.getContext('2d');
      const draw = () => {
        g.fillStyle = '#fff';
        g.fillRect(0, 0, 1600, 900);
        g.fillStyle = '#000';
        g.font = '48px sans-serif';
        g.fillText(`a slide with small text ${Date.now() % 1000}`, 40, 120);
      };
      draw();
      setInterval(draw, 100);
      return c.captureStream(10);
    };
  });
  await bob.click('#voice-share');
  await bob.waitForSelector('#voice-share:text("Stop sharing")');
  await alice.waitForSelector(`#voice-people .person[data-user="${ids.bob}"][aria-label*="sharing their screen"]`);
  const card = `#voice-screens .share[data-user="${ids.bob}"]`;
  await alice.waitForSelector(`${card} .live`);
  await alice.click(`${card} button:text("Watch")`);
  await plays(alice, `${card} video`);
  // Decoded at the share's own size, on its own receive m-line, while the composite goes on.
  const sizes = await eventually('the share decoded at 1600x900', async () => {
    const s = await mediaStats(alice);
    const shareMids = await alice.evaluate(() => window.confab.voice().receivers.filter((r) => r.share).map((r) => r.mid));
    const share = s.video.find((v) => shareMids.includes(v.mid) && v.decoded > 0);
    const composite = s.video.find((v) => !shareMids.includes(v.mid) && v.decoded > 0);
    return share?.width === 1600 && share.height === 900 && composite ? { share, composite } : null;
  });
  console.log(`share ${sizes.share.width}x${sizes.share.height}, composite ${sizes.composite.width}x${sizes.composite.height}`);
  assert.notEqual(sizes.composite.width, 1600);
  await screenshot(alice, 'screen-share');
  await bob.click('#voice-share');
  await alice.waitForSelector(card, { state: 'hidden' });
  await leaveVoice(bob);
  await leaveVoice(alice);
});

test('sfu room: one tile per camera, each showing the other participant', async () => {
  await alice.click('#channel-list h3:has-text("Voice") button');
  await alice.fill('#dialog-input', 'Stage');
  await alice.selectOption('#dialog-kind', 'voice');
  await alice.selectOption('#dialog-mode', 'sfu');
  await alice.keyboard.press('Enter');
  await bob.waitForSelector('#channel-list button.channel:has(.name:text-is("Stage"))');
  await joinVoice(alice, 'Stage');
  await joinVoice(bob, 'Stage');
  for (const [page, other, colour] of [[alice, 'bob', BLUE], [bob, 'alice', RED]]) {
    await receivesAudio(page);
    const tile = page.locator('#voice-stage .tile:not([hidden])');
    await eventually(`one tile on ${other === 'bob' ? 'alice' : 'bob'}'s page`, async () => (await tile.count()) === 1);
    assert.equal(await tile.locator('.label').textContent(), other);
    const video = await receivesVideo(page);
    const seen = await eventually(`${other}'s camera colour`, async () => {
      const c = await videoColours(page, '#voice-stage .tile:not([hidden]) video', 1, 1);
      return c && isColour(c.cells[0], colour) ? c : null;
    });
    console.log(`sfu: ${other}'s camera ${seen.width}x${seen.height} ${JSON.stringify(seen.cells[0])}, ${JSON.stringify(video)}`);
  }
  await screenshot(alice, 'voice-sfu-alice');
  // Looking at another voice channel during the call, then back: the call's video plays on.
  await alice.click('#channel-list button.channel:has(.name:text-is("General"))');
  await alice.waitForSelector('#voice-join');
  await alice.click('#channel-list button.channel:has(.name:text-is("Stage"))');
  await alice.waitForFunction(() => {
    const v = document.querySelector('#voice-stage .tile:not([hidden]) video');
    return v && !v.paused && v.isConnected;
  });
  await leaveVoice(alice);
  await leaveVoice(bob);
});

test('mcu room: the mix of the others and the composite', async () => {
  await alice.click('#channel-list h3:has-text("Voice") button');
  await alice.fill('#dialog-input', 'Mixed');
  await alice.selectOption('#dialog-kind', 'voice');
  await alice.selectOption('#dialog-mode', 'mcu');
  await alice.keyboard.press('Enter');
  await bob.waitForSelector('#channel-list button.channel:has(.name:text-is("Mixed"))');
  await joinVoice(alice, 'Mixed');
  await joinVoice(bob, 'Mixed');
  for (const page of [alice, bob]) {
    const audio = await receivesAudio(page);
    const slots = (await mediaStats(page)).audio.length;
    assert.equal(await page.evaluate(() => window.confab.voice().mode), 'mcu');
    const seen = await seesBothCameras(page);
    console.log(`mcu: audio ${JSON.stringify(audio)} on ${slots} slot(s), composite ${JSON.stringify(seen.cells)}`);
  }
  await leaveVoice(alice);
  await leaveVoice(bob);
});

test('a browser that denies the microphone gets a clear error', async () => {
  // No --use-fake-ui-for-media-stream here: the browser's own permission state answers.
  const denying = await launch('carol', 'deny');
  browsers.push(denying);
  const carol = await newPage(denying, server.base);
  await signUp(carol, 'carol');
  const code = await createGuild(alice, 'Another');
  await joinGuild(carol, code);
  await carol.click('#channel-list button.channel:has(.name:text-is("General"))');
  await carol.click('#voice-join');
  const error = await carol.waitForSelector('#voice-error');
  assert.match(await error.textContent(), /Microphone access was denied/);
  assert.equal(await carol.evaluate(async () => (await navigator.permissions.query({ name: 'microphone' })).state), 'denied');
  assert.equal(await carol.evaluate(() => window.confab.voice()), null, 'not in the call');
  await screenshot(carol, 'voice-denied-carol');
});

test('a media connection that cannot be made gets a clear error', async () => {
  // The server advertises an address nothing listens on (the media port is bound to 127.0.0.1), as
  // when a firewall drops UDP: signaling works, ICE never connects.
  const unreachable = await startServer('--public-ip', '127.0.0.2');
  try {
    const dave = await newPage(browsers[0], unreachable.base);
    await signUp(dave, 'dave');
    await createGuild(dave, 'Unreachable');
    await dave.click('#channel-list button.channel:has(.name:text-is("General"))');
    const t0 = Date.now();
    await dave.click('#voice-join');
    const error = await dave.waitForSelector('#voice-error', { timeout: 40000 });
    // Whichever comes first: the browser's own ICE failure, or the server's media_unreachable
    // (its peer timeout), both in words the user can act on.
    assert.match(await error.textContent(), /media connection .* failed|could not connect: the media port was reachable neither/);
    console.log(`media failure reported after ${Date.now() - t0} ms`);
    await dave.context().close();
  } finally {
    await unreachable.stop();
  }
});
