// The voice settings shown before joining and during a call: microphone, camera and speaker
// pickers, noise suppression and echo cancellation, push-to-talk, and (before joining) a preview:
// the camera's picture and the microphone's level, asked for only when the user clicks.

import { h, toast } from './dom.js';
import { audioConstraints, canPickSpeaker, devices, prefs, savePrefs, videoConstraints } from './devices.js';

/** Plain words for a room mode (what it means to the people in it, not how it works). */
export const MODE_WORDS = {
  hybrid: 'Balanced: voices go straight to everyone, cameras are combined into one picture',
  sfu: 'Optimised for many cameras: each camera is sent on its own, in full',
  mcu: 'Optimised for weak connections: one combined sound and one combined picture',
};

const KEYS = [['Backquote', '` (backquote)'], ['KeyV', 'V'], ['CapsLock', 'Caps Lock'], ['ControlLeft', 'Left Ctrl'], ['AltLeft', 'Left Alt']];

function select(id, label, list, chosen, onchange) {
  const el = h('select', { id, onchange: (e) => onchange(e.target.value) },
    h('option', { value: '' }, 'Default'),
    list.map((d, i) => h('option', { value: d.deviceId, selected: d.deviceId === chosen }, d.label || `${label} ${i + 1}`)));
  return h('label', { class: 'field' }, label, el);
}

/** The settings form. `session` (a call in progress) gets changes at once; without one they are
 *  remembered for the next call. */
export async function deviceForm(session, onChange = () => {}) {
  const p = prefs();
  const list = await devices();
  const check = (id, label, key) => h('label', { class: 'check' }, h('input', {
    type: 'checkbox', id, checked: p[key], onchange: async (e) => {
      if (session) await session.setProcessing({ [key]: e.target.checked });
      else savePrefs({ [key]: e.target.checked });
      onChange();
    },
  }), label);
  const use = (kind) => async (id) => {
    try {
      if (session) await session.switchDevice(kind, id);
      else savePrefs({ [kind === 'audio' ? 'mic' : 'camera']: id });
      onChange();
    } catch (e) { toast(`That device could not be started (${e.name}).`); }
  };
  return h('div', { class: 'device-form' },
    select('voice-mic', 'Microphone', list.mic, p.mic, use('audio')),
    select('voice-cam', 'Camera', list.camera, p.camera, use('video')),
    canPickSpeaker() ? select('voice-speaker', 'Speaker', list.speaker, p.speaker, async (id) => {
      if (session) await session.setSpeaker(id);
      else savePrefs({ speaker: id });
    }) : null,
    h('div', { class: 'checks' },
      check('voice-ns', 'Noise suppression', 'noiseSuppression'),
      check('voice-ec', 'Echo cancellation', 'echoCancellation'),
      h('label', { class: 'check' }, h('input', {
        type: 'checkbox', id: 'voice-ptt', checked: p.ptt, onchange: (e) => {
          savePrefs({ ptt: e.target.checked });
          session?.applyPtt();
          session?.change();
        },
      }), 'Push to talk, holding'),
      h('select', { id: 'voice-ptt-key', 'aria-label': 'Push-to-talk key', onchange: (e) => savePrefs({ pttKey: e.target.value }) },
        KEYS.map(([code, label]) => h('option', { value: code, selected: code === p.pttKey }, label)))));
}

/** Before joining: a button that previews the camera and the microphone's level, then offers the
 *  pickers (device names need the permission the preview asks for). */
export function preview() {
  const box = h('div', { class: 'preview', id: 'voice-preview' });
  let stream = null;
  let stopMeter = null;
  const stop = () => {
    stopMeter?.();
    for (const t of stream?.getTracks() ?? []) t.stop();
    stream = null;
  };
  const start = async () => {
    stop();
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: audioConstraints(), video: videoConstraints() })
        .catch(() => navigator.mediaDevices.getUserMedia({ audio: audioConstraints() }));
    } catch (e) {
      box.replaceChildren(h('p', { class: 'notice' }, `No microphone or camera could be started (${e.name}).`));
      return;
    }
    const video = h('video', { autoplay: true, playsinline: true, muted: true, id: 'voice-preview-video' });
    video.srcObject = stream;
    const level = h('meter', { id: 'voice-preview-level', min: 0, max: 1, value: 0, 'aria-label': 'Microphone level' });
    stopMeter = meter(stream, level);
    box.replaceChildren(stream.getVideoTracks().length ? video : h('p', { class: 'muted' }, 'No camera.'),
      h('label', { class: 'field' }, 'Microphone level', level),
      await deviceForm(null, start),
      h('button', { type: 'button', class: 'small', onclick: () => { stop(); box.replaceChildren(button); } }, 'Stop preview'));
  };
  const button = h('button', { type: 'button', id: 'voice-preview-start', class: 'small', onclick: start }, 'Check camera and microphone');
  box.replaceChildren(button);
  // Leaving the page (or joining) ends the preview's devices.
  box.stop = stop;
  return box;
}

/** Drives `el` (a meter) from the stream's loudness until the returned function is called. */
function meter(stream, el) {
  if (!stream.getAudioTracks().length || typeof AudioContext === 'undefined') return () => {};
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  ctx.createMediaStreamSource(stream).connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  let frame = requestAnimationFrame(function tick() {
    analyser.getFloatTimeDomainData(data);
    el.value = Math.min(1, Math.sqrt(data.reduce((s, x) => s + x * x, 0) / data.length) * 4);
    frame = requestAnimationFrame(tick);
  });
  return () => { cancelAnimationFrame(frame); ctx.close(); };
}
