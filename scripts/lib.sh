# Shared by scripts/serve, scripts/test and scripts/bench (sourced, not run): Debian packages and the venv.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
_apt_updated=0

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }

# Run a command as root: directly when we are root, else through passwordless sudo; fail otherwise.
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo "$@"
    else
        return 1
    fi
}

can_be_root() { [[ $EUID -eq 0 ]] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; }

# ensure_apt PKG...: install the Debian packages that are missing (one `apt-get update` per run).
# Without root or sudo, or off Debian, warn and go on: whatever needs them will say so.
ensure_apt() {
    local missing=() pkg
    command -v dpkg-query >/dev/null 2>&1 || { warn "not Debian: make sure these are installed: $*"; return 0; }
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if ! can_be_root; then
        warn "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
        return 0
    fi
    if [[ $_apt_updated -eq 0 ]]; then
        say "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _apt_updated=1
    fi
    say "apt-get install ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The Python to build the venv with: $PYTHON, else the first python3.x >= 3.11 on PATH.
find_python() {
    local py
    for py in ${PYTHON:-} python3 python3.13 python3.12 python3.11; do
        if command -v "$py" >/dev/null 2>&1 \
            && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$py"
            return 0
        fi
    done
    echo "error: Fotoflo needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

# Create $VENV unless it already has a working pip (a half-made one from a failed run is replaced).
ensure_venv() {
    if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        return 0
    fi
    local py
    py="$(find_python)"
    if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
        ensure_apt python3-venv  # Debian ships venv's pip bootstrap separately
    fi
    say "creating $VENV with $py"
    rm -rf "$VENV"
    "$py" -m venv "$VENV"
}

# install_project [EXTRAS]: `pip install -e .[EXTRAS]` into the venv, skipped while pyproject.toml is unchanged
# since the last install of the same extras (the checkout is installed editable, so code changes need none).
install_project() {
    local target="." stamp key
    [[ -n "${1:-}" ]] && target=".[$1]"
    stamp="$VENV/.fotoflo-installed${1:+-$1}"
    key="$(cat "$ROOT/pyproject.toml" "$VENV/pyvenv.cfg" | cksum)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
        return 0
    fi
    say "pip install -e '$target'"
    (cd "$ROOT" && "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e "$target")
    echo "$key" >"$stamp"
}

# step CMD...: show and run one step; `set -e` in the caller stops at the first failure.
step() {
    say "$*"
    "$@"
}
