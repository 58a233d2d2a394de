#!/usr/bin/env bash
# Checks that the committed console build (internal/web/dist) is exactly what
# a fresh build of web/ produces. It builds in a temporary copy of web/ (npm
# ci from the lock file), so it works on a fresh machine and leaves the tree
# alone. Exits non-zero, naming the files, when they differ.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v npm >/dev/null 2>&1 || { echo "web-check: npm is not installed (Debian: apt-get install npm)" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/web"
cp -R "$root/web/package.json" "$root/web/package-lock.json" "$root/web/build.mjs" "$root/web/src" "$tmp/web/"
(
  cd "$tmp/web"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  node build.mjs "$tmp/dist"
)
if ! diff -r "$tmp/dist" "$root/internal/web/dist" >"$tmp/diff.txt" 2>&1; then
  echo "web-check: internal/web/dist does not match a fresh build of web/:" >&2
  sed -n '1,40p' "$tmp/diff.txt" | cut -c1-200 >&2
  echo "web-check: run scripts/web-build.sh and commit internal/web/dist" >&2
  exit 1
fi
echo "web-check: internal/web/dist matches a fresh build"
