#!/usr/bin/env bash
# The system packages budgetpass needs, checked first by `make demo` and `make test`.
#
#   scripts/system-deps.sh demo   # the sandbox (bubblewrap, setpriv) and a C compiler for llama.cpp
#   scripts/system-deps.sh test   # + what tests/editors needs: chromium, ripgrep and the headers
#                                 #   code-server's native modules compile against (node 20 itself
#                                 #   comes from PyPI: scripts/node20.sh); Python's headers (vLLM)
#
# Missing packages are installed with apt-get when running as root or with passwordless sudo.
# Otherwise it prints one line with the exact command to run and exits 1 before changing anything.
# Without bwrap (and no way to install it, or bwrap blocked by AppArmor/seccomp) the demo stops
# unless you ask for the unsandboxed mode yourself: BUDGETPASS_SANDBOX=process make demo.
set -euo pipefail

mode="${1:-}"
case "$mode" in
  demo|test) ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac

missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || missing+=("$1"); }

need_cmd bwrap bubblewrap
need_cmd setpriv util-linux
# llama-cpp-python compiles from source the first time (pip brings cmake and ninja itself).
need_cmd g++ build-essential
if ! "${PYTHON:-python3}" -c "import ensurepip, venv" >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
if [ "$mode" = test ]; then
  # tests/editors: headless Chromium drives code-server; code-server's native modules compile
  # against these headers and its search uses the system's ripgrep.
  need_cmd chromium chromium
  need_cmd rg ripgrep
  for pkg in build-essential pkg-config libkrb5-dev libxkbfile-dev libsecret-1-dev; do
    need_pkg "$pkg"
  done
  # The vLLM tests: torch compiles its CPU kernels against the interpreter's headers.
  if ! "${PYTHON:-python3}" -c "import os, sysconfig; raise SystemExit(not os.path.isfile(
      os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" >/dev/null 2>&1; then
    missing+=(python3-dev)
  fi
fi
# One name once, in a stable order.
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
fi

unsandboxed_ok() { [ "${BUDGETPASS_SANDBOX:-}" = process ]; }

sudo=""
can_install=false
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    can_install=true
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    can_install=true
    sudo="sudo"
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  if ! $can_install; then
    # The demo may go on without bwrap only when the user said so.
    only_bwrap=false
    if [ "$mode" = demo ] && [ "${missing[*]}" = bubblewrap ]; then only_bwrap=true; fi
    if $only_bwrap && unsandboxed_ok; then
      echo "budgetpass: bubblewrap is missing: candidates will run UNSANDBOXED (BUDGETPASS_SANDBOX=process)" >&2
      exit 0
    fi
    if command -v apt-get >/dev/null 2>&1; then
      fix="sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    else
      fix="install with your package manager: ${missing[*]}"
    fi
    extra=""
    if $only_bwrap; then
      extra="; or run the demo UNSANDBOXED (candidates can read your files): BUDGETPASS_SANDBOX=process make demo"
    fi
    echo "budgetpass: missing system packages; run: $fix, then make $mode again$extra" >&2
    exit 1
  fi
  log="$(mktemp -t budgetpass-apt.XXXXXX)"
  echo "installing system packages with apt-get: ${missing[*]} (usually 1-3 minutes)"
  if ! { $sudo apt-get update -qq \
         && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"; } \
       >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "budgetpass: apt-get failed installing ${missing[*]} (full log: $log)" >&2
    exit 1
  fi
  rm -f "$log"
fi

# bwrap can be installed and still not work (Ubuntu 24.04's AppArmor, Docker's seccomp): the same
# probe the sandbox makes at run time.
if [ "$mode" = demo ] && ! unsandboxed_ok; then
  if ! err="$(bwrap --ro-bind / / --dev /dev --unshare-all --die-with-parent true 2>&1)"; then
    echo "budgetpass: bwrap is installed but does not work here (${err:0:200}); fix that, or run the demo UNSANDBOXED (candidates can read your files): BUDGETPASS_SANDBOX=process make demo" >&2
    exit 1
  fi
fi

