// A voice session's local media: switching microphone or camera mid-call (the new track
// replaces the old on the same sender: nothing is renegotiated), noise suppression and echo
// cancellation, the speaker, and per-person volume. Functions of a `VoiceSession` (voice.js).

import { audioConstraints, prefs, route, savePrefs, videoConstraints } from './devices.js';

/** Uses another microphone or camera without leaving: the new track replaces the old on the
 *  same sender, so nothing is renegotiated. */
export async function switchDevice(s, kind, deviceId) {
  savePrefs({ [kind === 'audio' ? 'mic' : 'camera']: deviceId });
  if (!s.local) return;
  const constraints = kind === 'audio' ? { audio: audioConstraints() } : { video: videoConstraints() };
  const fresh = await navigator.mediaDevices.getUserMedia(constraints);
  const [track] = kind === 'audio' ? fresh.getAudioTracks() : fresh.getVideoTracks();
  const [old] = kind === 'audio' ? s.local.getAudioTracks() : s.local.getVideoTracks();
  const sender = s.pc?.getSenders().find((s) => s.track === old || (old == null && s.track?.kind === kind));
  if (sender) await sender.replaceTrack(track);
  if (old) {
    s.local.removeTrack(old);
    old.stop();
  }
  s.local.addTrack(track);
  if (kind === 'audio' && s.mix) await s.mixIn(s.mix.extra); // the share's audio, with the new microphone
  if (kind === 'audio') s.applyPtt();
  else track.enabled = s.camera;
  s.change();
}

/** Noise suppression and echo cancellation, applied to the live microphone. */
export async function setProcessing(s, change) {
  savePrefs(change);
  const [mic] = s.local?.getAudioTracks() ?? [];
  await mic?.applyConstraints(audioConstraints()).catch(() => {});
  s.change();
}

export async function setSpeaker(s, id) {
  savePrefs({ speaker: id });
  await Promise.all([...s.audioEls.values()].map((el) => route(el, id)));
}

/** The volume chosen for a participant (0–1), applied to whichever slot carries them. */
export function setVolume(s, userId, volume) {
  const p = prefs();
  savePrefs({ volumes: { ...p.volumes, [userId]: volume } });
  s.applyVolumes();
}

export function applyVolumes(s) {
  const { volumes } = prefs();
  for (const [mid, el] of s.audioEls) {
    const user = s.slots.get(mid)?.user_id;
    el.volume = Math.min(1, Math.max(0, user != null ? volumes[user] ?? 1 : 1));
  }
}
