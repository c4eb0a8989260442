#!/usr/bin/env bash
# Install what confab needs on a fresh Debian bookworm machine. Idempotent: does nothing
# but check when everything is already there. Run as root, or as a user with sudo.
set -euo pipefail

# Debian packages the build and the tests need. Add new ones here (GStreamer, chromium, ...).
#   pkg-config, cmake: -sys crates (opus bundles libopus and builds it with cmake)
#   postgresql:        /usr/lib/postgresql/<ver>/bin for the throwaway test database
#   make:              the Makefile is the entry point (make run / make test)
#   gcc, python3:      the C ABI's examples (cc compiles embed.c; embed.py uses ctypes)
#   python3-venv:      tests/aiortc's venv (aiortc, an independent WebRTC stack, from PyPI)
#   ffmpeg:            live streaming's tests publish over RTMP with it (and read back with ffprobe)
#   nginx-light:       the viewer-spike benchmark's baseline (bench-smoke runs it); the testbed
#                      starts its own nginx on a free port, the packaged service is not used
#   gstreamer*:        the MCU (crates/mcu): dev headers for the gstreamer crates, plugins for
#                      compositor, vp8enc/vp8dec, appsrc/appsink, ...; not
#                      libgstreamer-plugins-bad1.0-dev (it pulls ~560 MB of OpenCV; unneeded)
#   libvpx-dev:        the testbed's VP8 encode/decode (env-libvpx-sys finds it with pkg-config)
#   chromium, nodejs:  the web client's end-to-end tests (tests/browser: playwright-core drives
#                      /usr/bin/chromium; npm, if `nodejs` does not bring it, is added below)
#   prometheus:        `promtool check metrics` on /metrics (tests/ops.rs); the service is not used
#   systemd:           `systemd-analyze verify` on deploy/confab.service (tests/ops.rs)
#   curl:              rustup's installer, when no Rust toolchain is found
#   coturn, nftables,  tests/aiortc/turn.sh: a TURN server, and a client in a network namespace
#   iproute2:          whose firewall drops UDP (the packaged coturn service is not used)
#   janus:             the forwarding benchmark's baseline (`confab-testbed forward`; the test
#                      command's forward-smoke phase); the testbed starts its own, configured
#                      on loopback, the packaged service is not used
DEBIAN_PACKAGES=(
    pkg-config
    cmake
    postgresql
    make
    gcc
    python3
    python3-venv
    libgstreamer1.0-dev
    libgstreamer-plugins-base1.0-dev
    gstreamer1.0-plugins-base
    gstreamer1.0-plugins-good
    gstreamer1.0-plugins-bad
    gstreamer1.0-plugins-ugly
    gstreamer1.0-libav
    gstreamer1.0-tools
    libvpx-dev
    chromium
    nodejs
    ffmpeg
    nginx-light
    nats-server
    prometheus
    systemd
    curl
    ca-certificates
    coturn
    nftables
    iproute2
    janus
)

MIN_RUST="1.95"

log() { echo "setup: $*"; }
die() { echo "setup: error: $*" >&2; exit 1; }

# --- Debian packages -------------------------------------------------------------------
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    log "Debian packages present: ${DEBIAN_PACKAGES[*]}"
else
    log "installing missing Debian packages: ${missing[*]}"
    SUDO=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 \
            || die "not root and sudo not found; install as root: apt-get install ${missing[*]}"
        SUDO=(sudo)
    fi
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
    log "installed: ${missing[*]}"
fi

# Debian's nodejs comes without npm (a package of its own); NodeSource's nodejs includes it, and
# conflicts with Debian's npm. So: Debian's npm only when no npm is there at all.
if ! command -v npm >/dev/null 2>&1; then
    log "installing npm"
    SUDO=()
    ((EUID == 0)) || SUDO=(sudo)
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm
fi

# --- Rust toolchain --------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1 && [[ -f "${HOME:-}/.cargo/env" ]]; then
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null 2>&1; then
    # rustup, non-interactive, minimal profile (rustc, cargo, rust-std) plus what the test command
    # uses (rustfmt, clippy), into $HOME/.cargo; nothing else on the machine changes.
    log "cargo not found: installing Rust $MIN_RUST+ with rustup into \$HOME/.cargo"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
        | sh -s -- -y --no-modify-path --profile minimal --default-toolchain stable -c rustfmt -c clippy \
        || die "rustup failed; install Rust >= $MIN_RUST by hand (https://rustup.rs) and re-run"
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
fi
rust_version=$(rustc --version 2>/dev/null | awk '{print $2}') || true
if [[ -n "$rust_version" ]] \
    && [[ "$(printf '%s\n%s\n' "$MIN_RUST" "${rust_version%%-*}" | sort -V | head -n1)" != "$MIN_RUST" ]]; then
    if command -v rustup >/dev/null 2>&1; then
        log "rustc $rust_version is older than $MIN_RUST: rustup update stable"
        rustup update stable --no-self-update || die "rustup update failed"
    else
        die "rustc $rust_version is older than $MIN_RUST and not managed by rustup; install Rust >= $MIN_RUST (https://rustup.rs)"
    fi
fi
log "cargo: $(cargo --version)"
log "ok"
