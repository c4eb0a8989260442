"""Voice through TURN over TCP, for tests/aiortc/turn.sh (which builds the network around it).

  turn.py setup BASE STATE          two accounts in a guild with a voice channel, written to STATE
  turn.py speak BASE STATE          the first account joins and plays a 440 Hz tone until killed
  turn.py listen BASE STATE         the second joins with the READY's ICE servers and must hear the
                                    tone over a relayed pair (run inside a namespace without UDP)
  turn.py unreachable BASE STATE    the second joins a server without TURN, from the same
                                    namespace, and must be told media_unreachable, not left hanging
Exits non-zero on any failure.
"""
import asyncio
import json
import sys
import time

import aiohttp
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

import join
from join import TIMEOUT, Tone

MODE, BASE, STATE = sys.argv[1], sys.argv[2], sys.argv[3]


async def api(http, path, token=None, body=None):
    return await join.api(http, path, token, body, base=BASE)


async def setup(http):
    tag = str(time.time_ns())[-9:]
    tokens = []
    for name in ("turn_a", "turn_b"):
        s = await api(http, "/auth/signup", body={"username": f"{name}{tag}", "password": "password-turn"})
        tokens.append(s["token"])
    g = await api(http, "/guilds", tokens[0], {"name": "turn"})
    inv = await api(http, f"/guilds/{g['guild']['id']}/invites", tokens[0])
    await api(http, f"/invites/{inv['code']}", tokens[1])
    with open(STATE, "w") as f:
        json.dump({"tokens": tokens, "voice": g["channels"][1]["id"]}, f)


async def connect(http, token, voice):
    """Identify; returns (ws, READY's d)."""
    grant = await api(http, f"/channels/{voice}/voice", token)
    ws = await http.ws_connect(BASE.replace("http", "ws", 1) + grant["endpoint"])
    assert json.loads((await ws.receive(timeout=TIMEOUT)).data)["op"] == "hello"
    await ws.send_str(json.dumps({"op": "identify", "d": {"token": grant["token"]}}))
    ready = json.loads((await ws.receive(timeout=TIMEOUT)).data)
    assert ready["op"] == "ready", ready
    return ws, ready["d"]


async def offer(ws, pc, ready, hz):
    pc.addTransceiver(Tone(hz), direction="sendonly")
    for _ in range(ready["audio_slots"]):
        pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    await ws.send_str(json.dumps({"op": "offer", "d": {"sdp": pc.localDescription.sdp}}))


async def frames(ws, until):
    """Reads frames (heartbeating each second) until `until(frame)`; returns it, or None on close."""
    nonce, beat = 0, 0.0
    while True:
        if time.time() - beat >= 1:
            nonce, beat = nonce + 1, time.time()
            await ws.send_str(json.dumps({"op": "heartbeat", "d": {"nonce": nonce}}))
        try:
            m = await ws.receive(timeout=1)
        except asyncio.TimeoutError:
            continue
        if m.type != aiohttp.WSMsgType.TEXT:
            return None
        frame = json.loads(m.data)
        if until(frame):
            return frame


async def main():
    async with aiohttp.ClientSession() as http:
        if MODE == "setup":
            return await setup(http)
        state = json.load(open(STATE))
        if MODE == "speak":
            ws, ready = await connect(http, state["tokens"][0], state["voice"])
            pc = RTCPeerConnection()
            await offer(ws, pc, ready, 440)
            answer = await frames(ws, lambda f: f["op"] == "answer")
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["d"]["sdp"], type="answer"))
            print("turn: speaker joined", flush=True)
            await frames(ws, lambda f: False)
            return
        ws, ready = await connect(http, state["tokens"][1], state["voice"])
        servers = [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
                   for s in ready.get("ice_servers", [])]
        if MODE == "unreachable":
            assert not servers, f"this server has no TURN, yet READY lists {servers}"
            pc = RTCPeerConnection()
            await offer(ws, pc, ready, 880)
            t0 = time.time()
            told = await asyncio.wait_for(frames(ws, lambda f: f["op"] == "error"), 30)
            assert told and told["d"]["code"] == "media_unreachable", told
            print(f"turn: without TURN, told in {time.time() - t0:.1f} s: {told['d']['message']}")
            closed = await asyncio.wait_for(frames(ws, lambda f: False), 10)
            assert closed is None and ws.close_code == 4014, ws.close_code
            return
        assert servers and all("credential" in s for s in ready["ice_servers"]), ready
        username = ready["ice_servers"][0]["username"]
        assert int(username.split(":")[0]) > time.time(), f"the credential expires in the future: {username}"
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        got = join.hear(pc)
        await offer(ws, pc, ready, 880)
        answer = await frames(ws, lambda f: f["op"] == "answer")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["d"]["sdp"], type="answer"))
        t0 = time.time()
        pump = asyncio.ensure_future(frames(ws, lambda f: False))
        while pc.connectionState != "connected":
            assert time.time() - t0 < 30, f"not connected through TURN: {pc.connectionState}"
            await asyncio.sleep(0.1)
        # The pair in use: ours is a relayed candidate (the namespace drops every UDP datagram).
        ice = pc.getTransceivers()[0].sender.transport.transport
        pair = ice._connection._nominated[1]
        assert pair.local_candidate.type == "relay", pair
        print(f"turn: connected through TURN over TCP in {time.time() - t0:.1f} s ({pair.local_candidate.type} "
              f"{pair.local_candidate.host}:{pair.local_candidate.port} -> {pair.remote_candidate.host})")
        await asyncio.wait_for(got.wait(), TIMEOUT)
        print("turn: the listener behind the firewall hears the tone")
        pump.cancel()
        await pc.close()
        await ws.close()


asyncio.run(main())
