#!/usr/bin/env bash
# Set up archviz in ./.venv:
#   - PyTorch 2.13.0 unless the venv already has a torch (set ARCHVIZ_TORCH to pick another
#     version, or install your own build into .venv first): without CUDA (no nvidia-smi) the CPU
#     build from PyTorch's CPU index (ARCHVIZ_TORCH_INDEX to use another), plain pip if that index
#     cannot be reached; with nvidia-smi, pip's default (CUDA) build;
#   - archviz itself (editable), plus the test tools with --dev;
#   - Graphviz's `dot` (needed for SVG/PNG/PDF diagrams and `archviz view`) where it can be installed;
#   - with --dev, Debian's chromium (for the browser tests of `archviz view`) where it can be
#     installed; playwright drives it and downloads no browser (never `playwright install`).
# Usage: ./install.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")"

extras=""
if [ "${1:-}" = "--dev" ]; then extras="[dev]"; fi
python=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
pip() {
  # (drop pip's notes about absent local package folders named in some machines' pip.conf)
  .venv/bin/python -m pip --disable-pip-version-check -q "$@" 2> >(grep -v "is ignored: it is neither a file" >&2)
}

# torch: where no CUDA is present (no nvidia-smi), the CPU build from PyTorch's CPU index (about
# 200 MB; PyPI's default Linux wheel is the CUDA build, several GB), falling back to plain pip
# (a local wheel, a mirror, or PyPI) when that index cannot be reached; with CUDA, PyPI's build.
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  torch_version=${ARCHVIZ_TORCH:-2.13.0}
  cpu_index=${ARCHVIZ_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
  if command -v nvidia-smi >/dev/null 2>&1; then
    echo "install.sh: nvidia-smi found: installing torch==$torch_version (the default build, with CUDA)"
    pip install "torch==$torch_version"
  elif pip install --timeout 15 --retries 0 --index-url "$cpu_index" "torch==$torch_version"; then
    echo "install.sh: no CUDA here (no nvidia-smi): installed torch==$torch_version, CPU build, from $cpu_index"
  else
    echo "install.sh: no CUDA here, but $cpu_index could not be used: installing torch==$torch_version" \
         "with plain pip (its configured index or a local wheel)" >&2
    pip install "torch==$torch_version"
    echo "install.sh: installed torch==$torch_version with plain pip"
  fi
fi
echo "install.sh: installing archviz${extras}"
pip install -e ".${extras}"

if command -v dot >/dev/null 2>&1; then
  :
elif [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "install.sh: installing Graphviz (apt-get install graphviz)"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz; } >/dev/null 2>&1; then
    echo "install.sh: could not install Graphviz with apt-get; 'archviz draw' will write .dot files only." >&2
  fi
elif command -v brew >/dev/null 2>&1; then
  brew install graphviz || echo "install.sh: 'brew install graphviz' failed; 'archviz draw' will write .dot files only." >&2
else
  cat >&2 <<'MSG'
install.sh: Graphviz's `dot` is not installed and this script cannot install it here
  (it needs root with apt-get, or Homebrew). Install it yourself for SVG/PNG/PDF diagrams:
    Debian/Ubuntu: sudo apt-get install graphviz     macOS: brew install graphviz
    conda: conda install -c conda-forge graphviz     Windows: winget install graphviz
  Everything else works without it; `archviz draw` then writes the .dot source only.
MSG
fi
if [ -n "$extras" ]; then
  if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    :
  elif [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: installing chromium for the browser tests (apt-get install chromium)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1; then
      echo "install.sh: could not install chromium with apt-get; the browser tests will skip." >&2
    fi
  else
    echo "install.sh: chromium is not installed and cannot be installed here; the browser tests will skip" \
         "(set ARCHVIZ_CHROMIUM to a chromium binary to run them)." >&2
  fi
fi
echo "install.sh: done. Run .venv/bin/archviz --help (or 'source .venv/bin/activate' first)."
