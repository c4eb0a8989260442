// A voice session's screen share: the share m-line was offered with no track, so sharing only
// replaces its (absent) track, capped at the server's bitrate; a shared tab's audio is mixed into
// what the microphone sends. Which shares the user watches is theirs to choose, as in Discord.
// Functions of a `VoiceSession` (voice.js).

/** Shares a screen or window (with its audio when the browser offers it, mixed into what the
 *  microphone sends), or stops. */
export async function toggleShare(s) {
  if (s.sharing) return s.stopShare();
  const t = s.shareTransceiver;
  if (!t || !navigator.mediaDevices?.getDisplayMedia) {
    s.notice = 'Screen sharing is not available in this call or browser.';
    return s.change();
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: true });
  } catch (e) {
    if (e.name !== 'NotAllowedError') s.notice = `Screen sharing could not start (${e.name}).`;
    return s.change();
  }
  if (s.status === 'ended') return stream.getTracks().forEach((x) => x.stop());
  const [video] = stream.getVideoTracks();
  video.contentHint = 'detail'; // text stays sharp: lower the frame rate before the resolution
  video.addEventListener('ended', () => s.stopShare());
  await t.sender.replaceTrack(video);
  const params = t.sender.getParameters();
  if (!params.encodings?.length) params.encodings = [{}];
  params.encodings[0].maxBitrate = s.shareMaxBitrate;
  params.degradationPreference = 'maintain-resolution';
  await t.sender.setParameters(params).catch(() => {});
  s.shareStream = stream;
  s.sharing = true;
  const [audio] = stream.getAudioTracks();
  if (audio) await s.mixIn(audio);
  s.send('share', { on: true });
  s.change();
}

export async function stopShare(s) {
  if (!s.sharing) return;
  s.sharing = false;
  for (const x of s.shareStream?.getTracks() ?? []) x.stop();
  s.shareStream = null;
  await s.shareTransceiver?.sender.replaceTrack(null).catch(() => {});
  await s.mixIn(null);
  s.send('share', { on: false });
  s.change();
}

/** Sends the microphone mixed with `extra` (a shared tab's audio), or the microphone alone. */
export async function mixIn(s, extra) {
  const sender = s.pc?.getSenders().find((s) => s.track?.kind === 'audio');
  const [mic] = s.local?.getAudioTracks() ?? [];
  s.mix?.ctx.close();
  s.mix = null;
  if (!sender || !mic) return;
  if (!extra) return sender.replaceTrack(mic);
  const ctx = new AudioContext();
  const out = ctx.createMediaStreamDestination();
  for (const t of [mic, extra]) ctx.createMediaStreamSource(new MediaStream([t])).connect(out);
  s.mix = { ctx, extra };
  await sender.replaceTrack(out.stream.getAudioTracks()[0]);
}

export function watch(s, userId, on) {
  if (on) s.watching.add(userId);
  else s.watching.delete(userId);
  s.change();
}
