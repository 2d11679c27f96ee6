#!/usr/bin/env bash
# Installs what attnlab needs and builds it. Idempotent and non-interactive:
# a second run on an unchanged tree only checks and takes a few seconds.
#
# LibTorch, first match wins:
#   Torch_DIR=/path/to/share/cmake/Torch   or   LIBTORCH=/path/to/libtorch
#   a Python whose `import torch` works ($PYTHON, else python3), as on GPU machines
#   otherwise a virtual environment at $ATTNLAB_VENV (default
#   ~/.local/share/attnlab/venv) with a pinned torch from PyPI.
# Environment: ATTNLAB_PRESET (default release), ATTNLAB_VENV, PYTHON,
#              ATTNLAB_SKIP_APT=1 to never call apt-get.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PRESET=${ATTNLAB_PRESET:-release}
BUILD="$ROOT/build/$PRESET"
VENV=${ATTNLAB_VENV:-$HOME/.local/share/attnlab/venv}
TORCH_PIN=${ATTNLAB_TORCH_VERSION:-2.15.0}
say() { echo "[setup] $*" >&2; }
die() { echo "[setup] error: $*" >&2; exit 1; }

# --- 1. Debian packages --------------------------------------------------------
PKGS=(cmake ninja-build g++ pkg-config python3 python3-venv
      libyaml-cpp-dev libhdf5-dev libfmt-dev catch2 libcli11-dev
      libsentencepiece-dev bible-kjv)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  [ "${ATTNLAB_SKIP_APT:-0}" = 1 ] && die "missing Debian packages: ${missing[*]} (ATTNLAB_SKIP_APT=1 set)"
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get; install them by hand"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. LibTorch and Python -----------------------------------------------------
# The choice is remembered in $BUILD/setup.env so that a re-run does not pay
# for `import torch` (about two seconds).
STATE="$BUILD/setup.env"
TORCH_CMAKE="" ; TORCH_PY="" ; PLOT_PY=""
if [ -f "$STATE" ]; then
  # shellcheck disable=SC1090
  source "$STATE"
  [ -d "$TORCH_CMAKE" ] && [ -x "$PLOT_PY" ] || { TORCH_CMAKE=""; PLOT_PY=""; }
fi

has_torch() { "$1" -c 'import torch' >/dev/null 2>&1; }
ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtual environment $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
  fi
}

if [ -z "$TORCH_CMAKE" ]; then
  if [ -n "${Torch_DIR:-}" ]; then
    TORCH_CMAKE=$(cd "$Torch_DIR/../.." && pwd)     # .../share/cmake
  elif [ -n "${LIBTORCH:-}" ]; then
    TORCH_CMAKE="$LIBTORCH/share/cmake"
  elif [ -x "$VENV/bin/python" ] && has_torch "$VENV/bin/python"; then
    TORCH_PY="$VENV/bin/python"
  elif has_torch "${PYTHON:-python3}"; then
    TORCH_PY=$(command -v "${PYTHON:-python3}")
  else
    ensure_venv
    say "installing torch==$TORCH_PIN from PyPI into $VENV (a few GB, once)"
    "$VENV/bin/python" -m pip install -q "torch==$TORCH_PIN" numpy h5py matplotlib
    TORCH_PY="$VENV/bin/python"
  fi
  if [ -n "$TORCH_PY" ]; then
    TORCH_CMAKE=$("$TORCH_PY" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
  fi
  [ -f "$TORCH_CMAKE/Torch/TorchConfig.cmake" ] || die "no TorchConfig.cmake under $TORCH_CMAKE"

  # Plots and the PyTorch reference scripts need numpy, h5py and matplotlib.
  PLOT_PY=${TORCH_PY:-python3}
  if ! "$PLOT_PY" -c 'import numpy, h5py, matplotlib' >/dev/null 2>&1; then
    ensure_venv
    "$VENV/bin/python" -m pip install -q numpy h5py matplotlib \
      || say "warning: could not install numpy/h5py/matplotlib; plots will not work"
    PLOT_PY="$VENV/bin/python"
  fi
  mkdir -p "$BUILD"
  printf 'TORCH_CMAKE=%q\nPLOT_PY=%q\n' "$TORCH_CMAKE" "$PLOT_PY" > "$STATE"
  say "LibTorch: $TORCH_CMAKE"
fi

# --- 3. Configure and build ---------------------------------------------------------
cd "$ROOT"
if [ ! -f "$BUILD/build.ninja" ]; then
  say "configuring preset '$PRESET'"
  cmake --preset "$PRESET" -DCMAKE_PREFIX_PATH="$TORCH_CMAKE" -DATTNLAB_PYTHON="$PLOT_PY" >"$BUILD/configure.log" 2>&1 \
    || { cat "$BUILD/configure.log" >&2; die "cmake configure failed (log: $BUILD/configure.log)"; }
fi
say "building ($BUILD)"
cmake --build --preset "$PRESET"
