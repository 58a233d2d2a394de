#!/usr/bin/env bash
# Builds the console from web/ into internal/web/dist (committed, so that
# `go build` needs no npm). Versions come from web/package-lock.json and the
# build has fixed options, so the output is the same byte for byte on every
# machine. Usage: scripts/web-build.sh [OUTDIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/internal/web/dist}"
command -v npm >/dev/null 2>&1 || { echo "web-build: npm is not installed (Debian: apt-get install npm)" >&2; exit 1; }
cd "$root/web"
# esbuild's install script only checks its binary, which comes from the
# locked @esbuild/<platform> package.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
node build.mjs "$out"
echo "web-build: wrote $out"
