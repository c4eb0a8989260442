# Sourced by run.sh and turn.sh: the aiortc venv in target/aiortc-venv ($VENV), rebuilt only when
# requirements.txt changes.
VENV="${CARGO_TARGET_DIR:-$ROOT/target}/aiortc-venv"
if [[ ! -f "$VENV/.installed" || requirements.txt -nt "$VENV/.installed" ]]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
    touch "$VENV/.installed"
fi
