#!/usr/bin/env bash
# Install real VS Code (code-server 4.100.3, the newest that runs on node 20) and playwright-core
# into tests/editors/harness/node_modules for the VS Code end-to-end test. Offline-safe: only the
# npm registry is used; @vscode/ripgrep's postinstall (which downloads rg from GitHub) is fed a
# tarball of the system's `rg` instead. Idempotent: skips when the lockfile has not changed.
# Needs: node 20 + npm first on PATH (`make editors` puts PyPI's in .venv/node20/bin), and apt
# packages build-essential pkg-config libkrb5-dev libxkbfile-dev libsecret-1-dev ripgrep
# (code-server's native modules compile here, against the headers in node's own folder).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
harness="$here/harness"
stamp="$harness/node_modules/.budgetpass-installed"
lock_hash="$(sha256sum "$harness/package-lock.json" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_hash" ] \
   && [ -x "$harness/node_modules/.bin/code-server" ]; then
  echo "code-server already installed ($harness/node_modules)"
  exit 0
fi
command -v node >/dev/null || { echo "install-code-server: node is missing (make editors installs node 20)" >&2; exit 3; }
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" != 20 ]; then
  echo "install-code-server: code-server 4.100.3 needs node 20, found $(node --version)" >&2
  exit 3
fi
rg_bin="$(command -v rg || true)"
[ -n "$rg_bin" ] || { echo "install-code-server: ripgrep is missing (apt-get install ripgrep)" >&2; exit 3; }

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# @vscode/ripgrep looks for its download in $TMPDIR/vscode-ripgrep-cache-<its version>/.
rg_version="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["packages"]["node_modules/@vscode/ripgrep"]["version"])' \
  "$harness/node_modules/code-server/lib/vscode/npm-shrinkwrap.json" 2>/dev/null || echo 1.15.11)"
mkdir -p "$scratch/tmp/vscode-ripgrep-cache-$rg_version" "$scratch/rg"
cp "$rg_bin" "$scratch/rg/rg"
tar -C "$scratch/rg" -czf "$scratch/tmp/vscode-ripgrep-cache-$rg_version/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" rg

start=$(date +%s)
cd "$harness"
# node-gyp builds against the running node's headers: its folder holds include/node.
nodedir="$(cd "$(dirname "$(readlink -f "$(command -v node)")")/.." && pwd)"
[ -f "$nodedir/include/node/node.h" ] || { echo "install-code-server: no node headers in $nodedir/include/node" >&2; exit 3; }
TMPDIR="$scratch/tmp" npm_config_nodedir="$nodedir" npm_config_unsafe_perm=true npm_config_yes=true \
  npm ci --no-audit --no-fund --loglevel=error
echo "$lock_hash" > "$stamp"
echo "code-server installed in $(( $(date +%s) - start )) s"
