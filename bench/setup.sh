#!/usr/bin/env bash
# Idempotent setup for the benchmark harness: bench/.venv with the peer servers, and wrk.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
STAMP=.venv/.installed

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
if [ ! -f "$STAMP" ] || [ setup.sh -nt "$STAMP" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    # One package at a time so a peer that fails to install is skipped, not fatal.
    ok=1
    for pkg in gunicorn 'uvicorn[standard]' httptools uvloop granian waitress hypercorn whitenoise zttp; do
        .venv/bin/python -m pip install --quiet "$pkg" \
            || { ok=0; echo "setup.sh: could not install $pkg; run.py will skip it" >&2; }
    done
    if [ "$ok" = 1 ]; then touch "$STAMP"; fi  # otherwise retried next time
fi

# The package as of the commit before the stream reshape, run beside today's (run.py BEFORE_REF).
REF=$(sed -n 's/^BEFORE_REF = "\(.*\)"$/\1/p' run.py)
if [ ! -d ".ref/$REF/hybridserve" ] && git -C .. cat-file -e "$REF^{commit}" 2>/dev/null; then
    mkdir -p ".ref/$REF" && git -C .. archive "$REF" hybridserve | tar -x -C ".ref/$REF"
fi

if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq wrk >/dev/null
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null
    fi
fi
command -v wrk >/dev/null || { echo "setup.sh: wrk is required" >&2; exit 1; }

# nginx for the static file scenarios (skipped by run.py when missing).
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -qq nginx-light >/dev/null || echo "setup.sh: no nginx" >&2
    else
        sudo apt-get install -y -qq nginx-light >/dev/null || echo "setup.sh: no nginx" >&2
    fi
fi

# h2load (Debian's nghttp2-client) for the HTTP/2 scenarios; without it they are skipped.
if ! command -v h2load >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -qq nghttp2-client >/dev/null || echo "setup.sh: no h2load" >&2
    else
        sudo apt-get install -y -qq nghttp2-client >/dev/null || echo "setup.sh: no h2load" >&2
    fi
fi
