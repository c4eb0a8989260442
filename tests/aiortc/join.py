"""Two stock aiortc peers join one confab voice room and hear each other.

aiortc reads ICE candidates from the last bundled m-section (its open bundling bug): against an
answer that carried the candidate only in the first, it never connected. This checks the answer's
shape (the candidate in every m-section, end-of-candidates, no trickle) and that two aiortc peers
connect and receive each other's audio through the SFU. Exits non-zero on any failure.
Usage: join.py http://127.0.0.1:PORT
"""
import asyncio
import fractions
import json
import sys
import time

import aiohttp
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame

BASE = sys.argv[1]
TIMEOUT = 15


class Tone(MediaStreamTrack):
    """A 20 ms, 48 kHz sine every 20 ms."""

    kind = "audio"

    def __init__(self, hz):
        super().__init__()
        self.hz, self.t = hz, 0

    async def recv(self):
        await asyncio.sleep(0.02)
        n = 960
        s = (np.sin(2 * np.pi * self.hz * (np.arange(n) + self.t) / 48000) * 8000).astype(np.int16)
        f = AudioFrame.from_ndarray(s.reshape(1, -1), format="s16", layout="mono")
        f.sample_rate, f.pts, f.time_base = 48000, self.t, fractions.Fraction(1, 48000)
        self.t += n
        return f


async def api(http, path, token=None, body=None, base=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.post(f"{base or BASE}/api{path}", json=body or {}, headers=headers) as r:
        assert r.status < 300, f"POST {path}: {r.status} {await r.text()}"
        return await r.json()


def hear(pc):
    """An event set once any received track carries sound (a tone)."""
    heard = asyncio.Event()

    @pc.on("track")
    def on_track(track):
        async def listen():
            try:
                while True:
                    frame = await track.recv()
                    if np.abs(frame.to_ndarray()).max() > 500:
                        heard.set()
                        return
            except MediaStreamError:  # the peer connection closed
                return

        asyncio.ensure_future(listen())

    return heard


async def join(http, token, voice, hz):
    """A peer in the room: identify, one offer, the answer; returns (pc, ws, answer sdp)."""
    grant = await api(http, f"/channels/{voice}/voice", token)
    ws = await http.ws_connect(BASE.replace("http", "ws", 1) + grant["endpoint"])
    assert json.loads((await ws.receive(timeout=TIMEOUT)).data)["op"] == "hello"
    await ws.send_str(json.dumps({"op": "identify", "d": {"token": grant["token"]}}))
    ready = json.loads((await ws.receive(timeout=TIMEOUT)).data)
    assert ready["op"] == "ready", ready
    pc = RTCPeerConnection()
    pc.heard = hear(pc)

    pc.addTransceiver(Tone(hz), direction="sendonly")
    for _ in range(ready["d"]["audio_slots"]):
        pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    await ws.send_str(json.dumps({"op": "offer", "d": {"sdp": pc.localDescription.sdp}}))
    while True:
        m = json.loads((await ws.receive(timeout=TIMEOUT)).data)
        assert m["op"] != "error", m
        if m["op"] == "answer":
            break
    sdp = m["d"]["sdp"]
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
    # Heartbeats, and the room's frames read off the socket, while the test runs.
    async def pump():
        nonce = 0
        while not ws.closed:
            nonce += 1
            await ws.send_str(json.dumps({"op": "heartbeat", "d": {"nonce": nonce}}))
            try:
                await ws.receive(timeout=1)
            except asyncio.TimeoutError:
                pass

    pc.pump = asyncio.ensure_future(pump())
    return pc, ws, sdp


def check_answer(sdp):
    sections = sdp.split("\r\nm=")[1:]
    media = [s for s in sections if s.split(" ")[1] != "0"]
    assert media and all("a=candidate:" in s for s in media), "a candidate in every m-section"
    assert all("a=end-of-candidates" in s for s in media), "end-of-candidates in every m-section"
    assert "trickle" not in sdp, "no trickle from an ICE-lite server"


async def main():
    async with aiohttp.ClientSession() as http:
        tag = str(time.time_ns())[-9:]
        tokens = []
        for name in ("aio_a", "aio_b"):
            s = await api(http, "/auth/signup", body={"username": f"{name}{tag}", "password": "password-aiortc"})
            tokens.append(s["token"])
        g = await api(http, "/guilds", tokens[0], {"name": "aiortc"})
        voice = g["channels"][1]["id"]
        inv = await api(http, f"/guilds/{g['guild']['id']}/invites", tokens[0])
        await api(http, f"/invites/{inv['code']}", tokens[1])
        a, ws_a, sdp = await join(http, tokens[0], voice, 440)
        check_answer(sdp)
        b, ws_b, _ = await join(http, tokens[1], voice, 880)
        t0 = time.time()
        while {a.connectionState, b.connectionState} != {"connected"}:
            assert time.time() - t0 < TIMEOUT, f"not connected: {a.connectionState}, {b.connectionState}"
            await asyncio.sleep(0.1)
        print(f"aiortc: both connected in {time.time() - t0:.1f} s")
        await asyncio.wait_for(asyncio.gather(a.heard.wait(), b.heard.wait()), TIMEOUT)
        print("aiortc: each hears the other")
        for pc, ws in ((a, ws_a), (b, ws_b)):
            pc.pump.cancel()
            await pc.close()
            await ws.close()


if __name__ == "__main__":
    asyncio.run(main())
    print("aiortc: 1 passed, 0 failed")
