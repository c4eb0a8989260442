// Microphone, camera and speaker choices, and the voice preferences that go with them
// (noise suppression, echo cancellation, push-to-talk, per-person volume), remembered in this
// browser. Device ids are asked for as `ideal`, so a device since unplugged falls back to the
// default instead of failing the call.

const KEY = 'confab.voice';
const DEFAULTS = { mic: '', camera: '', speaker: '', noiseSuppression: true, echoCancellation: true, ptt: false, pttKey: 'Backquote', volumes: {} };

export function prefs() {
  try {
    return { ...DEFAULTS, ...JSON.parse(localStorage.getItem(KEY) ?? '{}') };
  } catch {
    return { ...DEFAULTS };
  }
}

export function savePrefs(change) {
  const next = { ...prefs(), ...change };
  localStorage.setItem(KEY, JSON.stringify(next));
  return next;
}

/** getUserMedia constraints for the microphone as chosen. */
export function audioConstraints(p = prefs()) {
  return {
    echoCancellation: p.echoCancellation, noiseSuppression: p.noiseSuppression, autoGainControl: true,
    ...(p.mic ? { deviceId: { ideal: p.mic } } : {}),
  };
}

/** getUserMedia constraints for the camera as chosen. */
export function videoConstraints(p = prefs()) {
  return { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 }, ...(p.camera ? { deviceId: { ideal: p.camera } } : {}) };
}

/** Inputs and outputs by kind (labels only once the page may use a device). */
export async function devices() {
  const all = (await navigator.mediaDevices?.enumerateDevices?.()) ?? [];
  return {
    mic: all.filter((d) => d.kind === 'audioinput'),
    camera: all.filter((d) => d.kind === 'videoinput'),
    speaker: all.filter((d) => d.kind === 'audiooutput'),
  };
}

/** Whether audio can be sent to a chosen output (Chromium's `setSinkId`). */
export const canPickSpeaker = () => typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;

/** Plays `el` on the chosen speaker, where the browser allows it. */
export async function route(el, speaker = prefs().speaker) {
  if (!canPickSpeaker()) return;
  try { await el.setSinkId(speaker || ''); } catch { /* gone: the default output plays it */ }
}
