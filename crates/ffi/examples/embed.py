#!/usr/bin/env python3
"""Embedding confab from Python with ctypes, for benchmark scripts: start a server, create a room,
mint a token, let a real WebRTC client (confab-testbed) join, see the join through the event
callback, read stats, stop. Exits 0 only if every step happened.

    CONFAB_LIB=target/debug/libconfab_ffi.so CONFAB_TESTBED=target/debug/confab-testbed \\
        python3 crates/ffi/examples/embed.py

crates/ffi/run-examples.sh builds and runs it.
"""

import ctypes
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from ctypes import POINTER, c_char_p, c_int32, c_void_p

OK, ALREADY_STOPPED = 0, 5
EVENT_CALLBACK = ctypes.CFUNCTYPE(None, c_char_p, c_void_p)


def load(path):
    lib = ctypes.CDLL(path)
    out = POINTER(c_void_p)  # char** and ConfabServer**: raw pointers, freed through confab
    sigs = {
        "confab_server_start": [c_char_p, out],
        "confab_server_stop": [c_void_p],
        "confab_server_free": [c_void_p],
        "confab_server_http_addr": [c_void_p, out],
        "confab_room_create": [c_void_p, c_char_p, c_char_p, out],
        "confab_room_close": [c_void_p, c_char_p],
        "confab_token_mint": [c_void_p, c_char_p, c_char_p, out],
        "confab_room_participants": [c_void_p, c_char_p, out],
        "confab_stats_json": [c_void_p, out],
        "confab_set_event_callback": [c_void_p, EVENT_CALLBACK, c_void_p],
        "confab_string_free": [c_void_p],
    }
    for name, args in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, c_int32
    lib.confab_last_error.argtypes, lib.confab_last_error.restype = [], c_char_p
    return lib


class Confab:
    """A thin wrapper: raises on any status but OK; returns Python strings for char** outputs."""

    def __init__(self, lib, config):
        self.lib, self.srv = lib, c_void_p()
        self.check("confab_server_start", config.encode(), ctypes.byref(self.srv))

    def check(self, name, *args):
        status = getattr(self.lib, name)(*args)
        if status != OK:
            raise RuntimeError(f"{name}: status {status}: {self.lib.confab_last_error().decode()}")

    def string(self, name, *args):
        out = c_void_p()
        self.check(name, self.srv, *args, ctypes.byref(out))
        try:
            return ctypes.string_at(out.value).decode()
        finally:
            self.lib.confab_string_free(out)


def main():
    lib_path = os.environ.get("CONFAB_LIB", "target/debug/libconfab_ffi.so")
    testbed = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CONFAB_TESTBED")
    if not testbed:
        sys.exit("usage: embed.py PATH/TO/confab-testbed (or set CONFAB_TESTBED); CONFAB_LIB names the library")
    lib = load(lib_path)

    events, changed = [], threading.Condition()

    def on_event(raw, _user):  # runs on a confab thread
        print("embed.py: event", raw.decode(), flush=True)
        with changed:
            events.append(json.loads(raw))
            changed.notify_all()

    def wait_event(kind, timeout):
        with changed:
            return changed.wait_for(lambda: any(e["type"] == kind for e in events), timeout)

    callback = EVENT_CALLBACK(on_event)  # kept referenced while registered
    with tempfile.TemporaryDirectory(prefix="confab-embed-py-") as tmp:
        c = Confab(lib, json.dumps({"database_url": f"sqlite:{tmp}/embed.db"}))
        child = None
        try:
            c.check("confab_set_event_callback", c.srv, callback, None)
            room = c.string("confab_room_create", b"embed-py", b"hybrid")
            token = c.string("confab_token_mint", b"bob", room.encode())
            voice_url = f"ws://{c.string('confab_server_http_addr')}/voice"
            print(f"embed.py: room {room}, voice gateway {voice_url}", flush=True)
            cmd = [testbed, "join", "--voice-url", voice_url, "--token", token, "--tone", "660", "--seconds", "3"]
            child = subprocess.Popen(cmd)
            if not wait_event("participant_join", 20):
                raise RuntimeError("no participant_join event within 20 s")
            joined = next(e for e in events if e["type"] == "participant_join")
            assert joined["username"] == "bob" and joined["room_id"] == room, joined

            # The join is announced at identify; the media peer appears after the offer and
            # connects (ICE, DTLS) a moment later.
            def connected(stats):
                return any(p["connected"] and str(p["room"]) == room for p in stats["peers"])

            deadline = time.monotonic() + 10
            while not connected(stats := json.loads(c.string("confab_stats_json"))) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert connected(stats), stats
            print("embed.py: stats", json.dumps(stats), flush=True)
            people = json.loads(c.string("confab_room_participants", room.encode()))
            assert [p["username"] for p in people] == ["bob"], people

            assert child.wait(timeout=30) == 0, "confab-testbed failed"
            child = None
            if not wait_event("participant_leave", 10):
                raise RuntimeError("no participant_leave event")
            c.check("confab_server_stop", c.srv)
            assert lib.confab_server_stop(c.srv) == ALREADY_STOPPED
        finally:
            if child is not None:
                child.kill()
                child.wait()
            lib.confab_server_free(c.srv)
    print("embed.py: OK")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # report, exit non-zero
        print(f"embed.py: FAILED: {e!r}", file=sys.stderr)
        sys.exit(1)
