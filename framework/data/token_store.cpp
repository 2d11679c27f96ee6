// Token files on disk (memory-mapped uint16/uint32), the seeded training
// batcher, and the fixed validation windows.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "core/error.h"
#include "data/dataset.h"

namespace attnlab::data {

static_assert(std::endian::native == std::endian::little, "token files are little-endian; add a byte swap here");

namespace {
// splitmix64's finalizer: a bijective mix, so (seed, draws, row) -> start is
// a pure function and a resumed Batcher replays the identical stream.
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

void require_windows(const TokenStore& store, int64_t batch_size, int64_t seq_len) {
  if (batch_size <= 0) throw_user_error("train.batch_size", "", "must be positive");
  if (seq_len <= 0) throw_user_error("train.seq_len", "", "must be positive");
  if (store.size() < seq_len + 1) {
    throw_user_error("train.seq_len", "",
                     fmt::format("{} needs windows of {} tokens, but this split holds only {} tokens", seq_len,
                                 seq_len + 1, store.size()));
  }
}

std::pair<torch::Tensor, torch::Tensor> split_windows(const std::vector<torch::Tensor>& windows, int64_t seq_len) {
  auto w_BT1 = torch::stack(windows);
  return {w_BT1.narrow(1, 0, seq_len).contiguous(), w_BT1.narrow(1, 1, seq_len).contiguous()};
}
}  // namespace

TokenStore TokenStore::open(const std::filesystem::path& path) {
  auto meta_file = path.parent_path() / "meta.yaml";
  int bytes = 0;
  try {
    bytes = YAML::LoadFile(meta_file.string())["token_bytes"].as<int>();
  } catch (const YAML::Exception& e) {
    throw UserError(fmt::format("cannot read token_bytes from {} (prepare the dataset again): {}",
                                meta_file.string(), e.what()));
  }
  if (bytes != 2 && bytes != 4) {
    throw UserError(fmt::format("{}: token_bytes must be 2 or 4, not {}", meta_file.string(), bytes));
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw UserError(fmt::format("cannot open token file {}: {}", path.string(), std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw UserError(fmt::format("cannot stat token file {}: {}", path.string(), std::strerror(err)));
  }
  auto file_bytes = static_cast<size_t>(st.st_size);
  if (file_bytes % static_cast<size_t>(bytes) != 0) {
    ::close(fd);
    throw UserError(fmt::format("token file {} has {} bytes, not a multiple of {}", path.string(), file_bytes, bytes));
  }
  TokenStore store;
  store.bytes_per_token_ = bytes;
  store.size_ = static_cast<int64_t>(file_bytes / static_cast<size_t>(bytes));
  if (file_bytes > 0) {
    void* p = ::mmap(nullptr, file_bytes, PROT_READ, MAP_SHARED, fd, 0);
    int err = errno;
    ::close(fd);
    if (p == MAP_FAILED) throw UserError(fmt::format("cannot map token file {}: {}", path.string(), std::strerror(err)));
    store.mapping_ = std::shared_ptr<const void>(p, [file_bytes](const void* q) {
      ::munmap(const_cast<void*>(q), file_bytes);
    });
    store.data_ = p;
  } else {
    ::close(fd);
  }
  return store;
}

torch::Tensor TokenStore::slice(int64_t start, int64_t len) const {
  auto out = torch::empty({std::max<int64_t>(len, 0)}, torch::kInt64);
  copy_to(start, len, out.data_ptr<int64_t>());
  return out;
}

void TokenStore::copy_to(int64_t start, int64_t len, int64_t* dst) const {
  if (start < 0 || len < 0 || start + len > size_) {
    throw Error(fmt::format("token slice [{}, {}) is outside a store of {} tokens", start, start + len, size_));
  }
  if (bytes_per_token_ == 2) {
    const auto* src = static_cast<const uint16_t*>(data_) + start;
    std::copy(src, src + len, dst);
  } else {
    const auto* src = static_cast<const uint32_t*>(data_) + start;
    std::copy(src, src + len, dst);
  }
}

Batcher::Batcher(const TokenStore& store, int64_t batch_size, int64_t seq_len, uint64_t seed)
    : store_(store), batch_size_(batch_size), seq_len_(seq_len), seed_(seed) {
  require_windows(store, batch_size, seq_len);
}

std::pair<torch::Tensor, torch::Tensor> Batcher::next() {
  auto starts = static_cast<uint64_t>(store_.size() - seq_len_);  // valid starts: [0, size - seq_len - 1]
  uint64_t batch_key = mix(mix(seed_) ^ draws_);
  // One [B, T + 1] buffer filled row by row: no tensor per window, no stack.
  auto w_BT1 = torch::empty({batch_size_, seq_len_ + 1}, torch::kInt64);
  int64_t* rows = w_BT1.data_ptr<int64_t>();
  for (int64_t b = 0; b < batch_size_; ++b) {
    // Modulo bias is below starts / 2^64: irrelevant for any real corpus.
    auto start = static_cast<int64_t>(mix(batch_key ^ static_cast<uint64_t>(b)) % starts);
    store_.copy_to(start, seq_len_ + 1, rows + b * (seq_len_ + 1));
  }
  ++draws_;
  return {w_BT1.narrow(1, 0, seq_len_).contiguous(), w_BT1.narrow(1, 1, seq_len_).contiguous()};
}

torch::Tensor stacked_batch(const std::pair<torch::Tensor, torch::Tensor>& batch, bool pinned) {
  const auto& [inputs_BT, targets_BT] = batch;
  auto out_2BT = torch::empty({2, inputs_BT.size(0), inputs_BT.size(1)},
                              torch::TensorOptions().dtype(torch::kInt64).pinned_memory(pinned));
  out_2BT[0].copy_(inputs_BT);
  out_2BT[1].copy_(targets_BT);
  return out_2BT;
}

std::vector<std::pair<torch::Tensor, torch::Tensor>> validation_batches(const TokenStore& store, int64_t n_batches,
                                                                         int64_t batch_size, int64_t seq_len) {
  require_windows(store, batch_size, seq_len);
  if (n_batches <= 0) throw_user_error("train.eval_batches", "", "must be positive");
  int64_t n_windows = n_batches * batch_size;
  int64_t last_start = store.size() - seq_len - 1;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> batches;
  for (int64_t i = 0; i < n_batches; ++i) {
    std::vector<torch::Tensor> windows;
    for (int64_t b = 0; b < batch_size; ++b) {
      int64_t w = i * batch_size + b;
      // Evenly spaced from the first to the last possible window.
      int64_t start = n_windows == 1 ? 0
                                     : static_cast<int64_t>(static_cast<long double>(w) * last_start /
                                                            static_cast<long double>(n_windows - 1));
      windows.push_back(store.slice(start, seq_len + 1));
    }
    batches.push_back(split_windows(windows, seq_len));
  }
  return batches;
}

}  // namespace attnlab::data
