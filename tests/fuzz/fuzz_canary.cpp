// libFuzzer target that reads one byte past a heap buffer on purpose. If
// AddressSanitizer does not report it, the fuzz build is not instrumented and
// the other fuzzers' "no findings" would mean nothing (scripts/fuzz.sh checks).
#include <cstdint>
#include <cstring>
#include <memory>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto buffer = std::make_unique<uint8_t[]>(8);
  std::memset(buffer.get(), 0, 8);
  volatile size_t past_end = 8 + (size > 0 ? 0 : 0);
  return buffer[past_end] + (data == nullptr);
}
