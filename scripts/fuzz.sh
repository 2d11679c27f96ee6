#!/usr/bin/env bash
# Fuzzes the config parsers: builds the `fuzz` preset (clang, libFuzzer, ASan,
# UBSan, no LibTorch) into build/fuzz, proves the sanitizer is active with a
# canary that overflows a heap buffer on purpose, then runs each fuzzer for
# ATTNLAB_FUZZ_SECONDS (default 30) and fails on any finding.
# Environment: ATTNLAB_FUZZ_SECONDS, ATTNLAB_SKIP_APT=1 to never call apt-get.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$ROOT/build/fuzz"
SECONDS_EACH=${ATTNLAB_FUZZ_SECONDS:-30}
say() { echo "[fuzz] $*" >&2; }
die() { echo "[fuzz] error: $*" >&2; exit 1; }

# --- 1. clang and its libFuzzer/sanitizer runtimes (Debian 12) ---------------------
missing=()
command -v clang++ >/dev/null || missing+=(clang)
dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "install ok installed" || missing+=(libclang-rt-14-dev)
if ((${#missing[@]})); then
  [ "${ATTNLAB_SKIP_APT:-0}" = 1 ] && die "missing Debian packages: ${missing[*]} (ATTNLAB_SKIP_APT=1 set)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  say "installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. Build -------------------------------------------------------------------------
cd "$ROOT"
if [ ! -f "$BUILD/build.ninja" ]; then
  mkdir -p "$BUILD"
  cmake --preset fuzz >"$BUILD/configure.log" 2>&1 || { cat "$BUILD/configure.log" >&2; die "configure failed"; }
fi
cmake --build "$BUILD" -j "${ATTNLAB_JOBS:-2}" --target fuzz_canary fuzz_overrides fuzz_yaml >/dev/null \
  || die "build failed (run: cmake --build $BUILD)"

# --- 3. Canary: the sanitizer must report a deliberate heap-buffer-overflow -------------
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo x > "$WORK/input"
if "$BUILD/bin/fuzz_canary" -runs=1 "$WORK/input" >"$WORK/canary.log" 2>&1; then
  die "the canary did not crash: the fuzz build is not instrumented"
fi
grep -q "AddressSanitizer: heap-buffer-overflow" "$WORK/canary.log" \
  || { cat "$WORK/canary.log" >&2; die "the canary crashed without an AddressSanitizer report"; }
say "canary: AddressSanitizer reported the deliberate heap-buffer-overflow"

# --- 4. Fuzz ----------------------------------------------------------------------------------
for name in overrides yaml; do
  corpus="$BUILD/corpus/$name"
  mkdir -p "$corpus"
  cp -n "$ROOT/tests/fuzz/seeds/$name/"* "$corpus/" 2>/dev/null || true
  say "fuzz_$name for ${SECONDS_EACH}s"
  if ! "$BUILD/bin/fuzz_$name" -max_total_time="$SECONDS_EACH" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$BUILD/" -print_final_stats=1 "$corpus" >"$WORK/$name.log" 2>&1; then
    tail -n 60 "$WORK/$name.log" >&2
    die "fuzz_$name found a problem (input saved under $BUILD/)"
  fi
  grep -E "^stat::number_of_executed_units" "$WORK/$name.log" | sed "s/^/[fuzz] fuzz_$name /" >&2 || true
done
say "no findings"
