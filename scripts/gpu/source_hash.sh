#!/usr/bin/env bash
# One sha256 over the sources a build is made from (framework/, tests/,
# cmake/ and the top CMake files), computed from the files themselves so that
# it needs no git: prepare.sh records it with a carried build, and check.sh
# uses that build only when the tree it runs in hashes the same.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
find framework tests cmake CMakeLists.txt CMakePresets.json -type f -print0 | LC_ALL=C sort -z \
  | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
