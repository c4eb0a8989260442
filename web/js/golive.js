// "Go live from the browser": the camera and microphone (or a screen share) published to a live
// channel by WHIP (RFC 9725) with the channel's stream key, as OBS would. The server answers in
// one round trip with every candidate (no trickle), so the offer waits for ICE gathering.

/** Resolves when `pc` has gathered its candidates (or after `ms`). */
export function gathered(pc, ms = 3000) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((ok) => {
    const done = () => { if (pc.iceGatheringState === 'complete') ok(); };
    pc.addEventListener('icegatheringstatechange', done);
    setTimeout(ok, ms);
  });
}

/** Publishes; resolves to {stream, stop()} once the server accepted the offer. */
export async function goLive(channelId, key, { screen = false } = {}) {
  const stream = screen
    ? await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 30 }, audio: true })
    : await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720, frameRate: 30 }, audio: true });
  const pc = new RTCPeerConnection();
  try {
    for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const r = await fetch(`/whip/${channelId}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${key}` },
      body: pc.localDescription.sdp,
    });
    if (r.status !== 201) {
      const err = await r.json().catch(() => null);
      throw new Error(err?.message ?? `the server refused the stream (HTTP ${r.status})`);
    }
    const location = r.headers.get('Location');
    await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
    return {
      stream,
      pc,
      async stop() {
        for (const t of stream.getTracks()) t.stop();
        await fetch(location, { method: 'DELETE' }).catch(() => {});
        pc.close();
      },
    };
  } catch (e) {
    for (const t of stream.getTracks()) t.stop();
    pc.close();
    throw e;
  }
}
