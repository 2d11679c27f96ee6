#!/usr/bin/env bash
# Run here, before a lent GPU's one call: puts into .gpu/ (git-ignored) what
# scripts/gpu/check.sh needs on a machine with no package registry, checks
# that what travels fits, and prints the exact device call.
#   .gpu/debs/   the Debian packages attnlab builds against (fetch-debs.sh)
#   .gpu/data/   the KJV corpus prepared with the byte tokenizer (the device
#                has no `bible` program), as data.dir for the quickstart
#   .gpu/build/  with --build DIR: DIR's attnlab and attnlab_tests, stripped,
#                with the torch version and the source hash they were built
#                from; check.sh uses them when both match the device, which
#                saves its build (several minutes of the 15)
# Usage: scripts/gpu/prepare.sh [--build DIR]   (builds attnlab here first if needed)
#   DIR: a build made against the device's torch version (docs/gpu.md, "The rehearsal")
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
CARRY=.gpu
LIMIT=$((64 * 1024 * 1024))
say() { echo "[prepare] $*" >&2; }

mkdir -p "$CARRY"
if ! ls "$CARRY"/debs/*.deb >/dev/null 2>&1; then
  say "fetching the .deb files into $CARRY/debs"
  bash scripts/gpu/fetch-debs.sh "$CARRY/debs" >&2
fi
if [ ! -f "$CARRY/data/kjv/byte/train.bin" ]; then
  [ -x build/release/bin/attnlab ] || scripts/setup.sh
  say "preparing the KJV corpus into $CARRY/data"
  build/release/bin/attnlab data prepare kjv "data.dir=$CARRY/data" >&2
fi

if [ "${1:-}" = --build ]; then
  from=${2:?--build needs the build directory}
  src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$from/CMakeCache.txt")
  torch_dir=$(sed -n 's/^Torch_DIR:PATH=//p' "$from/CMakeCache.txt")
  version=$(sed -n "s/^__version__ = '\(.*\)'.*/\1/p" "$torch_dir/../../../version.py")
  [ -n "$version" ] || { say "error: no torch version under $torch_dir"; exit 1; }
  rm -rf "$CARRY/build" && mkdir -p "$CARRY/build/bin"
  for b in attnlab attnlab_tests; do strip -o "$CARRY/build/bin/$b" "$from/bin/$b"; done
  echo "$version" > "$CARRY/build/torch_version"
  bash "$src/scripts/gpu/source_hash.sh" > "$CARRY/build/source_sha256"
  if [ "$(cat "$CARRY/build/source_sha256")" != "$(bash scripts/gpu/source_hash.sh)" ]; then
    say "warning: $from was built from other sources than this tree's; check.sh will build on the device"
  fi
  say "carried build: torch $version, $(du -sh "$CARRY/build" | cut -f1)"
fi

# What travels: tracked files and untracked ones git does not ignore, plus the carry.
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -n 1 | cut -f1)
carry_bytes=$(du -sb "$CARRY" | cut -f1)
total=$((tree_bytes + carry_bytes))
say "working tree $((tree_bytes / 1024)) KiB + $CARRY $((carry_bytes / 1024)) KiB = $((total / 1024)) KiB (limit $((LIMIT / 1024)) KiB)"
if ((total > LIMIT)); then
  say "error: over the device's 64 MiB limit; remove what is not needed from $CARRY"
  exit 1
fi

cat <<CALL
The device call (run it first in a session that is lent a GPU):
  command:   bash scripts/gpu/check.sh
  carry:     ["$CARRY"]
  timeout_s: 600
It writes at most 8 files to \$OUT (summary.json, build.log, ctest.log,
quickstart.log, quickstart.csv, bench.log, bench.h5, compare.csv) and ends
within ATTNLAB_GPU_CHECK_SECONDS (540 s by default).
CALL
