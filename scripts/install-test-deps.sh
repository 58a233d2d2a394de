#!/usr/bin/env bash
# Installs what the test suite needs on a fresh machine of this kind, and
# nothing that is already there: Go tools from the module proxy, PostgreSQL,
# Chromium, tshark (the independent ASTERIX decoder that the decoder's
# tests compare with) and gcc (for the race detector) from Debian's packages.
set -euo pipefail
export PATH=/usr/local/go/bin:$HOME/go/bin:$PATH
STATICCHECK_VERSION=${STATICCHECK_VERSION:-v0.8.2}

if ! command -v staticcheck >/dev/null 2>&1; then
  echo "installing staticcheck $STATICCHECK_VERSION"
  GOFLAGS= go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

# litewitness and witnessctl of filippo.io/torchwood: an independent C2SP
# tlog-witness the witness tests push to. v0.10.0 needs Go 1.27; the go
# command fetches that toolchain from the module proxy for this build only
# (the project itself stays on its own Go).
TORCHWOOD_VERSION=${TORCHWOOD_VERSION:-v0.10.0}
gobin="$(go env GOPATH)/bin"
if [[ ! -x "$gobin/litewitness" || ! -x "$gobin/witnessctl" ]]; then
  echo "installing litewitness and witnessctl $TORCHWOOD_VERSION (GOTOOLCHAIN=go1.27.3)"
  GOTOOLCHAIN=go1.27.3 GOFLAGS= go install "filippo.io/torchwood/cmd/litewitness@$TORCHWOOD_VERSION" "filippo.io/torchwood/cmd/witnessctl@$TORCHWOOD_VERSION"
fi

need=()
# litewitness takes its key from an ssh-agent.
command -v ssh-agent >/dev/null 2>&1 || need+=(openssh-client)
[[ -x /usr/lib/postgresql/15/bin/initdb ]] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# npm rebuilds the console to check the committed build (scripts/web-check.sh).
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v tshark >/dev/null 2>&1 || need+=(tshark)
# The race detector (go test -race in make unit) needs cgo's C compiler.
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
if ((${#need[@]})); then
  if [[ $(id -u) != 0 ]]; then SUDO=sudo; else SUDO=; fi
  echo "installing from Debian: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Independent implementations of the standards the project speaks, which the
# Go tests run against (internal/testutil/nodejs): pinned by its lock file.
root="$(cd "$(dirname "$0")/.." && pwd)"
npmdir="$root/internal/testutil/nodejs/npm"
if [[ ! -f "$npmdir/node_modules/.package-lock.json" || "$npmdir/package-lock.json" -nt "$npmdir/node_modules/.package-lock.json" ]]; then
  echo "installing the npm packages of internal/testutil/nodejs/npm"
  (cd "$npmdir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
echo "test dependencies ready"
