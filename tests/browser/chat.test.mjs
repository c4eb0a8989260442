// Text chat in two real browsers: sign up, guild, invite, messages both ways, typing, mentions,
// edit, delete, report, unread markers, scroll-back paging, and a resume after a dropped gateway.
// Alice is on a laptop-sized window, Bob on a phone-sized one (the channel list is a drawer there).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eventually, launch, newPage, pages, screenshot, signUp, startServer } from './harness.mjs';

let server, browser, alice, bob, code;
const PHONE = { width: 390, height: 844 };

before(async () => {
  server = await startServer();
  browser = await launch('chat', { tone: 440, colour: [200, 40, 40] });
  alice = await newPage(browser, server.base);
  bob = await newPage(browser, server.base, PHONE);
});

after(async () => {
  for (const p of pages) if (p.errors.length) console.log(`browser console errors:\n${p.errors.join('\n')}`);
  await browser?.close();
  await server?.stop();
  assert.deepEqual(pages.flatMap((p) => p.bugs), [], 'no uncaught exceptions or CSP violations');
});

/** On the phone layout the channel list is a drawer: open it, pick, and it closes again. */
async function pickChannel(page, name) {
  if (await page.isVisible('#toggle-sidebar')) await page.click('#toggle-sidebar');
  await page.click(`#channel-list button.channel:has(.name:text-is("${name}"))`);
}

const lastMessage = (page) => page.locator('#messages .msg').last();

/** The API as the page's user (its token is in localStorage). */
const apiAs = (page, path) => page.evaluate(async (path) => {
  const r = await fetch(`/api${path}`, { headers: { Authorization: `Bearer ${localStorage.getItem('confab.token')}` } });
  return r.json();
}, path);
const readStates = async (page) => apiAs(page, `/guilds/${await page.evaluate(() => window.confab.state.guildId)}/read-states`);

test('sign up, create a guild, invite, join by code', async () => {
  const t0 = Date.now();
  await signUp(alice, 'alice');
  await signUp(bob, 'bob');
  await alice.click('#guild-create');
  await alice.fill('#dialog-input', 'Test guild');
  await alice.keyboard.press('Enter');
  await alice.waitForSelector('#channel-title:text("# general")');
  await alice.click('#invite-create');
  code = await alice.textContent('#dialog-code');
  await alice.keyboard.press('Escape');
  assert.match(code, /\S{4,}/);
  await bob.click('#guild-join');
  await bob.fill('#dialog-input', code);
  await bob.keyboard.press('Enter');
  await bob.waitForSelector('#channel-title:text("# general")');
  // Presence: each sees the other online in the member list (Bob opens it on the phone).
  await alice.waitForSelector('#members .member.online:has-text("bob")');
  await bob.click('#toggle-members');
  await bob.waitForSelector('#members .member.online:has-text("alice")');
  await bob.click('#toggle-members');
  console.log(`signup+guild+join: ${Date.now() - t0} ms`);
});

test('messages both ways, typing, mention highlight', async () => {
  await alice.fill('#composer-input', 'hello from alice');
  await alice.keyboard.press('Enter');
  await bob.waitForSelector('#messages .msg:has-text("hello from alice")');
  // Bob types: Alice sees the indicator before the message lands.
  await bob.click('#composer-input');
  await bob.keyboard.type('hi @alice, welcome');
  await alice.waitForSelector('#typing:text("bob is typing…")');
  await bob.keyboard.press('Enter');
  const m = alice.locator('#messages .msg:has-text("welcome")');
  await m.waitFor();
  assert.match(await m.getAttribute('class'), /\bmention\b/, 'a mention of alice is highlighted for her');
  assert.equal(await m.locator('.at').textContent(), '@alice');
  await alice.waitForFunction(() => document.getElementById('typing').textContent === '');
  assert.doesNotMatch(await bob.locator('#messages .msg:has-text("welcome")').getAttribute('class'), /mention/);
  // Two messages do not fill the window: they sit at the bottom, by the composer, not the top.
  for (const page of [alice, bob]) {
    const gap = await page.evaluate(() => {
      const h = document.getElementById('history').getBoundingClientRect();
      return h.bottom - document.querySelector('#messages .msg:last-child').getBoundingClientRect().bottom;
    });
    assert.ok(gap >= 0 && gap < 48, `the newest message is at the history's bottom (${gap}px above it)`);
  }
});

test('edit and delete own messages, report another', async () => {
  // Keyboard: Up in the empty box edits one's last message.
  await alice.click('#composer-input');
  await alice.keyboard.press('ArrowUp');
  await alice.fill('#messages textarea', 'hello from alice, edited');
  await alice.keyboard.press('Enter');
  await bob.waitForSelector('#messages .msg:has-text("hello from alice, edited") .edited');
  await alice.fill('#composer-input', 'a message to delete');
  await alice.keyboard.press('Enter');
  await bob.waitForSelector('#messages .msg:has-text("a message to delete")');
  await lastMessage(alice).hover();
  await lastMessage(alice).getByRole('button', { name: 'Delete' }).click();
  await alice.click('#dialog button.danger');
  await bob.waitForSelector('#messages .msg:has-text("a message to delete")', { state: 'detached' });
  await alice.waitForSelector('#messages .msg:has-text("a message to delete")', { state: 'detached' });
  // On the phone a message's actions show once it is tapped.
  await bob.click('#messages .msg:has-text("edited") .content');
  await bob.locator('#messages .msg:has-text("edited")').getByRole('button', { name: 'Report' }).click();
  await bob.fill('#dialog-input', 'testing the report queue');
  await bob.keyboard.press('Enter');
  await bob.waitForSelector('#toast:text("Reported")');
  const reports = await apiAs(alice, `/guilds/${await alice.evaluate(() => window.confab.state.guildId)}/reports`);
  assert.equal(reports.length, 1);
  assert.equal(reports[0].reason, 'testing the report queue');
});

test('unread markers and the new-messages divider', async () => {
  await alice.click('#channel-list h3 button');
  await alice.fill('#dialog-input', 'random');
  await alice.keyboard.press('Enter');
  await alice.waitForSelector('#channel-title:text("# random")');
  await alice.fill('#composer-input', 'news in random');
  await alice.keyboard.press('Enter');
  await alice.fill('#composer-input', `ping @bob`);
  await alice.keyboard.press('Enter');
  // Bob (in #general) sees #random unread with one mention.
  await bob.click('#toggle-sidebar');
  const random = bob.locator('#channel-list button.channel:has(.name:text-is("random"))');
  await eventually('random unread for bob', async () => /\bunread\b/.test(await random.getAttribute('class')));
  assert.equal(await random.locator('.badge').textContent(), '1');
  await random.click();
  await bob.waitForSelector('#messages .divider + .msg:has-text("news in random")');
  await screenshot(bob, 'chat-phone-bob');
  await pickChannel(bob, 'general');
  // Leaving #random acknowledged what Bob saw there: no badge for it, on the server either.
  assert.doesNotMatch(await random.getAttribute('class'), /\bunread\b/);
  await eventually('random read on the server', async () => (await readStates(bob)).every((r) => r.unread_count === 0));
});

test('scroll-back paging loads older messages', async () => {
  const { token, channel } = await alice.evaluate(() => ({
    token: localStorage.getItem('confab.token'),
    channel: window.confab.state.guilds.get(window.confab.state.guildId).channels.find((c) => c.name === 'general').id,
  }));
  for (let i = 0; i < 70; i++) {
    const r = await fetch(`${server.base}/api/channels/${channel}/messages`, {
      method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ content: `backlog ${i}` }),
    });
    assert.equal(r.status, 201);
  }
  await bob.waitForSelector('#messages .msg:has-text("backlog 69")');
  // Bob watched them arrive at the bottom of #general, so his client acknowledged them.
  await eventually('bob acknowledged the backlog', async () => (await readStates(bob)).every((r) => r.unread_count === 0));
  await bob.reload();
  await bob.waitForSelector('#messages .msg:has-text("backlog 69")');
  assert.equal(await bob.locator('#messages .msg:has-text("hello from alice")').count(), 0, 'only the newest page at first');
  // Scrolling to the top pages in older messages, keeping the view in place.
  await eventually('older pages', async () => {
    await bob.evaluate(() => { const h = document.getElementById('history'); h.scrollTop = h.scrollHeight; h.scrollTop = 0; });
    return (await bob.locator('#messages .msg:has-text("hello from alice")').count()) === 1;
  });
  assert.equal(await bob.locator('#messages .msg:has-text("backlog 0")').count(), 1);
  assert.ok(await bob.isHidden('#load-older'), 'no more pages');
});

test('gateway resumes after a network drop and replays what was missed', async () => {
  await pickChannel(alice, 'general');
  const before = await bob.evaluate(() => window.confab.gateway.sessionId);
  // A real outage: the browser goes offline, the socket is dropped, a message is sent meanwhile.
  await bob.context().setOffline(true);
  await bob.evaluate(() => window.confab.gateway.drop());
  await alice.fill('#composer-input', 'sent while bob was offline');
  await alice.keyboard.press('Enter');
  await alice.waitForSelector('#messages .msg:has-text("sent while bob was offline")');
  await bob.waitForTimeout(1500);
  assert.equal(await bob.locator('#messages .msg:has-text("sent while bob was offline")').count(), 0);
  await bob.context().setOffline(false);
  await bob.waitForSelector('#messages .msg:has-text("sent while bob was offline")');
  await bob.waitForFunction(() => document.getElementById('app').dataset.gateway === 'connected');
  assert.equal(await bob.evaluate(() => window.confab.gateway.sessionId), before, 'resumed, not re-identified');
  await screenshot(alice, 'chat-laptop-alice');
});

test('slow mode: the owner sets it, a member is told when they may send again', async () => {
  const { token, channel } = await alice.evaluate(() => ({
    token: localStorage.getItem('confab.token'),
    channel: window.confab.state.guilds.get(window.confab.state.guildId).channels.find((c) => c.name === 'general').id,
  }));
  const r = await fetch(`${server.base}/api/channels/${channel}`, {
    method: 'PATCH', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ slow_mode_secs: 30 }),
  });
  assert.equal(r.status, 200);
  await pickChannel(bob, 'general');
  // CHANNEL_UPDATE reaches bob: the composer says slow mode is on.
  await bob.waitForSelector('#composer-input[placeholder*="slow mode: one message every 30 s"]');
  await bob.fill('#composer-input', 'first under slow mode');
  await bob.keyboard.press('Enter');
  await bob.waitForSelector('#messages .msg:has-text("first under slow mode")');
  await bob.fill('#composer-input', 'too soon');
  await bob.keyboard.press('Enter');
  await bob.waitForSelector('#composer-input[placeholder^="Slow mode: you can send again in"]');
  assert.equal(await bob.inputValue('#composer-input'), 'too soon', 'the text is kept for later');
  await bob.waitForSelector('#toast:has-text("slow mode")');
  assert.equal(await bob.locator('#messages .msg:has-text("too soon")').count(), 0);
});

test('direct messages: opened from the member list, unread on the rail, live both ways; a block stops them', async () => {
  await alice.click('#members button[aria-label="Message bob"]');
  await alice.waitForSelector('#channel-title:text("@ bob")');
  await alice.fill('#composer-input', 'psst, a secret');
  await alice.keyboard.press('Enter');
  await alice.waitForSelector('#messages .msg:has-text("psst, a secret")');
  // Bob, reading a guild channel, sees it counted on the rail's DM button, then opens it.
  await bob.waitForSelector('#dm-home[aria-label="Direct messages, 1 unread"]');
  await bob.click('#dm-home');
  // The newest DM opens (on the phone the list is in the drawer).
  await bob.waitForSelector('#channel-list button.channel[aria-current="true"]:has(.name:text-is("alice"))', { state: 'attached' });
  await bob.waitForSelector('#messages .msg:has-text("psst, a secret")');
  await bob.waitForSelector('#dm-home[aria-label="Direct messages"]', { state: 'attached' });
  await bob.fill('#composer-input', 'got it');
  await bob.keyboard.press('Enter');
  await alice.waitForSelector('#messages .msg:has-text("got it")');
  assert.equal(await alice.locator('#messages .msg:has-text("got it") button:text("Report")').count(), 0, 'no guild to report to');
  await screenshot(bob, 'dm');
  await screenshot(alice, 'dm-laptop');
  // Bob blocks alice (the people panel is a drawer on the phone): her next message is refused,
  // saying why; unblocked, it goes through.
  await bob.click('#toggle-members');
  await bob.click('#dm-block:text("Block alice")');
  await bob.waitForSelector('#dm-block:text("Unblock alice")');
  await alice.fill('#composer-input', 'hello?');
  await alice.keyboard.press('Enter');
  await alice.waitForSelector('#toast:has-text("cannot send messages to this user")');
  await bob.click('#dm-block:text("Unblock alice")');
  await bob.waitForSelector('#dm-block:text("Block alice")');
  await alice.keyboard.press('Enter');
  await bob.waitForSelector('#messages .msg:has-text("hello?")');
  await bob.click('#toggle-members'); // the drawer folds again
});

test('keyboard only: arrows reach a message, Tab its actions, Escape back to the composer', async () => {
  await alice.focus('#composer-input');
  await alice.keyboard.press('Shift+Tab');
  assert.equal(await alice.evaluate(() => document.activeElement.id), 'composer-attach');
  await alice.keyboard.press('Shift+Tab');
  assert.equal(await alice.evaluate(() => document.activeElement.id), 'history');
  await alice.keyboard.press('ArrowUp');
  const focused = () => alice.evaluate(() => ({ id: document.activeElement.id, text: document.activeElement.textContent }));
  assert.match((await focused()).id, /^m-\d+$/, 'the newest message');
  assert.match((await focused()).text, /hello\?/);
  await alice.keyboard.press('ArrowUp');
  assert.match((await focused()).text, /got it/);
  await alice.keyboard.press('ArrowDown');
  const actions = [];
  for (let i = 0; i < 4; i++) {
    await alice.keyboard.press('Tab');
    actions.push((await focused()).text);
  }
  assert.deepEqual(actions, ['Reply', 'React', 'Edit', 'Delete'], 'its actions are reachable');
  await alice.keyboard.press('Shift+Tab');
  await alice.keyboard.press('Enter');
  await alice.waitForSelector('#messages textarea');
  await alice.keyboard.press('Escape');
  assert.equal((await focused()).id, 'composer-input');
  // On the phone, no button row under every message; a tap shows one message's actions.
  const rows = await bob.$$eval('#messages .msg .actions', (as) => as.filter((a) => getComputedStyle(a).display !== 'none').length);
  assert.equal(rows, 0);
  await bob.click('#messages .msg:has-text("got it") .content');
  await bob.waitForSelector('#messages .msg:has-text("got it") .actions button:text("Edit")', { state: 'visible' });
  const shown = await bob.$$eval('#messages .msg .actions', (as) => as.filter((a) => getComputedStyle(a).display !== 'none').length);
  assert.equal(shown, 1, 'only the tapped message');
});

test('an image and markdown: the other side sees the preview, bold, code and a safe link', async () => {
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAACgAAAAeCAYAAABe3VzdAAAAPUlEQVR4nO3OIQEAIBAAMeJ8/xS0ggjIQ0zMb+2Z87NVBwQF64CgYB0QFKwDgoJ1QFCwDggK1gFBwTrwcgGpucxY/mlkMQAAAABJRU5ErkJggg==', 'base64');
  await alice.setInputFiles('#composer-files', { name: 'red.png', mimeType: 'image/png', buffer: png });
  await alice.waitForSelector('#composer-chosen li:has-text("red.png")');
  await alice.fill('#composer-input', 'a **red** square, `40x30`, see https://example.com/x and javascript:alert(1)');
  await alice.keyboard.press('Enter');
  const msg = bob.locator('#messages .msg:has-text("a red square")');
  await msg.waitFor();
  const seen = await msg.evaluate(async (li) => {
    const img = li.querySelector('.attachment.image img');
    if (img && !img.complete) await new Promise((r) => { img.onload = img.onerror = r; });
    const a = li.querySelector('.content a');
    return {
      img: img && { w: img.naturalWidth, h: img.naturalHeight, alt: img.alt },
      strong: li.querySelector('.content strong')?.textContent,
      code: li.querySelector('.content code')?.textContent,
      links: [...li.querySelectorAll('.content a')].map((l) => l.href),
      rel: a?.rel,
    };
  });
  assert.deepEqual(seen.img, { w: 40, h: 30, alt: 'red.png' }, 'the preview loaded');
  assert.equal(seen.strong, 'red');
  assert.equal(seen.code, '40x30');
  assert.deepEqual(seen.links, ['https://example.com/x'], 'javascript: is not a link');
  assert.match(seen.rel, /noopener/);
  await screenshot(alice, 'attachment');
});

test('notifications: a DM out of view notifies and counts in the title; a muted channel stays quiet', async () => {
  // Notifications are recorded rather than shown (headless Chromium shows none).
  await bob.evaluate(() => {
    window.notes = [];
    window.Notification = class {
      static permission = 'granted';
      static requestPermission() { return Promise.resolve('granted'); }
      constructor(title, options) { window.notes.push({ title, body: options.body }); }
      close() {}
    };
  });
  await bob.click('#guild-list button');
  await bob.waitForSelector('#channel-title:has-text("general")');
  await alice.fill('#composer-input', 'ping for bob');
  await alice.keyboard.press('Enter');
  await eventually('bob is notified', async () => (await bob.evaluate(() => window.notes.length)) === 1);
  assert.deepEqual(await bob.evaluate(() => window.notes[0]), { title: 'alice', body: 'ping for bob' });
  assert.equal(await bob.title(), '(1) confab');
  // Bob mutes the DM: the next message counts, but neither notifies nor chimes.
  await bob.click('#dm-home');
  await bob.waitForSelector('#messages .msg:has-text("ping for bob")');
  await bob.click('#channel-mute[aria-label="Mute this channel"]');
  await bob.click('#guild-list button');
  await bob.waitForSelector('#channel-title:has-text("general")');
  await alice.fill('#composer-input', 'are you there?');
  await alice.keyboard.press('Enter');
  await bob.waitForSelector('#dm-home[aria-label="Direct messages, 1 unread"]');
  assert.equal(await bob.evaluate(() => window.notes.length), 1, 'muted: no notification');
});

test('a reply and a reaction, seen live by the other side', async () => {
  // Bob (on the phone, in the DM) answers alice's last message and reacts to it.
  await bob.click('#dm-home');
  const target = bob.locator('#messages .msg:has(.content:text-is("are you there?"))');
  await target.locator('.content').click();
  await target.getByRole('button', { name: 'Reply' }).click();
  await bob.waitForSelector('#composer-reply:has-text("Replying to alice")');
  await bob.fill('#composer-input', 'yes, here');
  await bob.keyboard.press('Enter');
  const reply = alice.locator('#messages .msg:has-text("yes, here")');
  await reply.locator('.reply-ref:has-text("alice: are you there?")').waitFor();
  assert.equal(await reply.evaluate((li) => li.classList.contains('mention')), true, 'the answered author is mentioned');
  await target.locator('.content').click();
  await target.getByRole('button', { name: 'React' }).click();
  await bob.click('.picker button[aria-label="React with 🎉"]');
  const chip = alice.locator('#messages .msg:has(.content:text-is("are you there?")) .reaction');
  await chip.waitFor();
  assert.equal(await chip.textContent(), '🎉 1');
  // Alice adds hers by clicking the chip: two, pressed for her; bob sees it live.
  await chip.click();
  await alice.waitForSelector('#messages .msg:has(.content:text-is("are you there?")) .reaction[aria-pressed="true"]:text("🎉 2")');
  await bob.waitForSelector('#messages .msg:has(.content:text-is("are you there?")) .reaction:text("🎉 2")');
});

test('leaving a server: gone from the rail, out of the member list, back in the DMs', async () => {
  await bob.click('#guild-list button');
  await bob.click('#toggle-sidebar');
  await bob.click('#guild-leave');
  await bob.click('#dialog button.danger');
  await bob.waitForSelector('#guild-list button', { state: 'detached' });
  await bob.waitForSelector('#guild-name:text("Direct messages")', { state: 'attached' });
  await alice.click('#guild-list button');
  await alice.waitForSelector(`#members [data-user="${await bob.evaluate(() => window.confab.state.me.id)}"]`, { state: 'detached' });
  assert.equal(await alice.isVisible('#guild-leave'), false, 'the owner has no Leave');
});

test('the owner renames a channel and sets its topic from the header', async () => {
  await alice.click('#channel-edit');
  await alice.fill('#dialog-input', 'lounge');
  await alice.keyboard.press('Enter');
  await alice.fill('#dialog-input', 'where we hang out');
  await alice.keyboard.press('Enter');
  await alice.waitForSelector('#channel-topic:text("where we hang out")');
  await alice.waitForSelector('#channel-list button.channel:has(.name:text-is("lounge"))');
  await alice.waitForSelector('#channel-title:text("# lounge")');
});

test('moderation: a role made in settings, an invite with limits, a report resolved by banning its author', async () => {
  // Slow mode (from its test) off again, for Bob's post below.
  await alice.evaluate(async (c) => fetch(`/api/channels/${c}`, {
    method: 'PATCH', headers: { Authorization: `Bearer ${localStorage.getItem('confab.token')}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ slow_mode_secs: 0 }),
  }), await alice.evaluate(() => window.confab.state.channelId));
  // Bob comes back with an invite limited to one use, made in Server settings → Invites.
  await alice.click('#guild-settings');
  await alice.click('#panel [role=tab]:text("Invites")');
  await alice.selectOption('#invite-age', '3600');
  await alice.fill('#invite-uses', '1');
  await alice.click('#panel button:text("Create invite")');
  // The tab shows the older invites until it reopens with the new one: wait for that one.
  const row = alice.locator('#panel tr[data-code]', { hasText: '/ 1' }).first();
  await row.waitFor();
  const invite = await row.getAttribute('data-code');
  assert.match(await row.textContent(), /0 \/ 1/);
  // A role: created, given Manage messages.
  await alice.click('#panel [role=tab]:text("Roles")');
  await alice.click('#role-create');
  await alice.fill('#dialog-input', 'helpers');
  await alice.keyboard.press('Enter');
  await alice.click('#panel .role summary:text("helpers")');
  await alice.check('#panel .role:has(summary:text("helpers")) input[name=MANAGE_MESSAGES]');
  await alice.click('#panel .role:has(summary:text("helpers")) button:text("Save")');
  await alice.waitForSelector('#toast:text("Role saved")');
  const roles = await apiAs(alice, `/guilds/${await alice.evaluate(() => window.confab.state.guildId)}/roles`);
  assert.equal(BigInt(roles.find((r) => r.name === 'helpers').permissions), 1n << 13n);
  await alice.keyboard.press('Escape');

  await bob.click('#guild-join');
  await bob.fill('#dialog-input', invite);
  await bob.keyboard.press('Enter');
  await bob.waitForSelector('#guild-list button');
  await bob.waitForSelector('#composer-input');
  await bob.fill('#composer-input', 'cheap watches, click here');
  await bob.keyboard.press('Enter');
  await alice.waitForSelector('#messages .msg:has-text("cheap watches")');
  assert.equal(await bob.isVisible('#guild-settings'), false, 'a plain member has no settings');

  // Alice reports it, then resolves the report from the Reports tab: delete + ban.
  await alice.locator('#messages .msg:has-text("cheap watches")').hover();
  await alice.locator('#messages .msg:has-text("cheap watches")').getByRole('button', { name: 'Report' }).click();
  await alice.fill('#dialog-input', 'spam');
  await alice.keyboard.press('Enter');
  await alice.click('#guild-settings');
  await alice.click('#panel [role=tab]:text("Reports")');
  const report = alice.locator('#panel .report:has-text("spam")');
  await report.locator('.context .reported:has-text("cheap watches")').waitFor();
  await screenshot(alice, 'reports');
  await report.locator('button:text("Delete + ban")').click();
  // Bob's page is thrown out: the server leaves his rail, he is told, the message is gone.
  await bob.waitForSelector('#guild-list button', { state: 'detached' });
  await bob.waitForSelector('#toast:text("You are no longer in")');
  await alice.waitForSelector('#messages .msg:has-text("cheap watches")', { state: 'detached' });
  await alice.click('#panel [role=tab]:text("Bans")');
  await alice.waitForSelector('#panel li:has-text("bob")');
  await alice.click('#panel [role=tab]:text("Audit log")');
  await alice.waitForSelector('#panel .audit li[data-action="member_ban_add"]:has-text("bob")');
  await screenshot(alice, 'moderation');
  await alice.keyboard.press('Escape');
  // An invite does not bring him back.
  const code2 = (await alice.evaluate(async (g) => (await (await fetch(`/api/guilds/${g}/invites`, {
    method: 'POST', headers: { Authorization: `Bearer ${localStorage.getItem('confab.token')}`, 'Content-Type': 'application/json' }, body: '{}',
  })).json()).code, await alice.evaluate(() => window.confab.state.guildId)));
  await bob.click('#guild-join');
  await bob.fill('#dialog-input', code2);
  await bob.keyboard.press('Enter');
  await bob.waitForSelector('#toast:text("banned")');
});

test('my account: a display name and an avatar others see, then log out everywhere', async () => {
  await alice.click('#user-settings');
  await alice.fill('#display-name', 'Alice Liddell');
  await alice.click('#panel button:text("Save")');
  await alice.waitForSelector('#me-name:text("Alice Liddell")', { state: 'attached' });
  // A 300×200 PNG drawn in the page; the server makes it a 256 px square.
  const png = Buffer.from(await alice.evaluate(() => {
    const c = document.createElement('canvas');
    Object.assign(c, { width: 300, height: 200 });
    const g = c.getContext('2d');
    g.fillStyle = '#e33';
    g.fillRect(0, 0, 300, 200);
    return c.toDataURL('image/png').split(',')[1];
  }), 'base64');
  await alice.setInputFiles('#avatar-file', { name: 'me.png', mimeType: 'image/png', buffer: png });
  const img = alice.locator('#members .member:has-text("Alice Liddell") .avatar img');
  await img.waitFor();
  // In the page before it has loaded: decode() waits for it.
  assert.equal(await img.evaluate((i) => i.decode().then(() => i.naturalWidth)), 256);
  assert.equal((await apiAs(alice, '/users/@me')).display_name, 'Alice Liddell');
  await alice.click('#logout-all');
  await alice.click('#dialog button.danger');
  await alice.waitForSelector('#auth:not([hidden])');
});
