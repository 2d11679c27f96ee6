// A test that cannot run here (no GPU, a missing program) must not pass: it
// prints the marker ctest turns into "Skipped" (SKIP_REGULAR_EXPRESSION in
// tests/CMakeLists.txt) and a Catch warning for runs of the binary itself.
#pragma once

#include <catch2/catch.hpp>

#include <iostream>

#define ATTNLAB_SKIP(reason)                                      \
  do {                                                            \
    std::cout << "ATTNLAB_SKIP: " << (reason) << std::endl;       \
    WARN("skipped: " << (reason));                                \
    return;                                                       \
  } while (false)
