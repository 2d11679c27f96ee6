// SHA-256 (FIPS 180-4), for the content hashes a run file records (the
// prepared corpus and the tokenizer's saved model, so a reader can tell
// exactly which bytes a run was trained and evaluated on) and for the
// checksums that catch a checkpoint or token file garbled on disk.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace attnlab::data {

// Incremental SHA-256: update() any number of times, then hex() once.
class Sha256 {
 public:
  Sha256();
  void update(std::string_view bytes);
  std::string hex();  // lower-case hex digest; the object is spent afterwards

 private:
  std::array<uint32_t, 8> h_;
  std::array<unsigned char, 64> block_{};
  size_t buffered_ = 0;  // bytes of block_ in use
  uint64_t length_ = 0;  // message bytes so far
};

// Lower-case hex digest of `bytes`.
std::string sha256_hex(std::string_view bytes);

// Lower-case hex digest of a file's bytes, read in 1 MiB pieces; Error naming
// the file when it cannot be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace attnlab::data
