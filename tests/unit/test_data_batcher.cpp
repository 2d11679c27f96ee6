// TokenStore slices, the seeded Batcher (same seed, same stream; set_state
// resumes it exactly; targets are the inputs shifted by one), and the fixed,
// evenly spaced validation windows.
#include <catch2/catch.hpp>

#include <cstring>
#include <optional>

#include "core/error.h"
#include "data/dataset.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using namespace attnlab::data;
using attnlab::test::TempDir;
using attnlab::test::write_bytes;

namespace {

// A token file whose token at position i is (i * 7 + offset) % modulus.
TokenStore make_store(const fs::path& dir, int64_t n, int token_bytes, int64_t offset = 0, int64_t modulus = 65536) {
  std::string bytes(static_cast<size_t>(n * token_bytes), '\0');
  for (int64_t i = 0; i < n; ++i) {
    auto v = static_cast<uint32_t>((i * 7 + offset) % modulus);
    if (token_bytes == 2) {
      auto v16 = static_cast<uint16_t>(v);
      std::memcpy(bytes.data() + 2 * i, &v16, 2);
    } else {
      std::memcpy(bytes.data() + 4 * i, &v, 4);
    }
  }
  fs::create_directories(dir);
  write_bytes(dir / "train.bin", bytes);
  write_bytes(dir / "meta.yaml", "token_bytes: " + std::to_string(token_bytes) + "\n");
  return TokenStore::open(dir / "train.bin");
}

// The token value at store position i, as make_store() wrote it.
int64_t token_at(int64_t i, int64_t offset = 0, int64_t modulus = 65536) { return (i * 7 + offset) % modulus; }

bool same(const std::pair<torch::Tensor, torch::Tensor>& a, const std::pair<torch::Tensor, torch::Tensor>& b) {
  return torch::equal(a.first, b.first) && torch::equal(a.second, b.second);
}

// Every row is one contiguous window of the store: recover its start from the
// first token and check all of inputs and targets against the store.
void check_windows(const std::pair<torch::Tensor, torch::Tensor>& batch, int64_t size, int64_t seq_len) {
  const auto& [x, y] = batch;
  REQUIRE(x.dtype() == torch::kInt64);
  REQUIRE(x.sizes() == y.sizes());
  REQUIRE(x.size(1) == seq_len);
  for (int64_t b = 0; b < x.size(0); ++b) {
    int64_t first = x[b][0].item<int64_t>();
    REQUIRE(first % 7 == 0);  // make_store with offset 0 and no wrap in these tests
    int64_t start = first / 7;
    CHECK(start + seq_len + 1 <= size);
    for (int64_t t = 0; t < seq_len; ++t) {
      CHECK(x[b][t].item<int64_t>() == token_at(start + t));
      CHECK(y[b][t].item<int64_t>() == token_at(start + t + 1));
    }
  }
}

}  // namespace

TEST_CASE("a token store slices uint16 and uint32 files into int64 tensors", "[data]") {
  TempDir dir;
  auto s16 = make_store(dir.path / "u16", 1000, 2);
  CHECK(s16.size() == 1000);
  auto t = s16.slice(10, 5);
  CHECK(t.dtype() == torch::kInt64);
  CHECK(t[0].item<int64_t>() == 70);
  CHECK(t[4].item<int64_t>() == 98);
  CHECK_THROWS_AS(s16.slice(998, 3), attnlab::Error);

  auto s32 = make_store(dir.path / "u32", 100, 4, 4'000'000'000LL, 1LL << 32);
  CHECK(s32.slice(99, 1)[0].item<int64_t>() == token_at(99, 4'000'000'000LL, 1LL << 32));
  CHECK(s32.slice(0, 100).max().item<int64_t>() > 65535);

  write_bytes(dir.path / "u16" / "train.bin", "odd");
  CHECK_THROWS_AS(TokenStore::open(dir.path / "u16" / "train.bin"), attnlab::UserError);
}

TEST_CASE("the batcher is a pure function of seed and draws", "[data]") {
  TempDir dir;
  auto store = make_store(dir.path, 5000, 2);
  Batcher a(store, 4, 32, 1234), b(store, 4, 32, 1234), c(store, 4, 32, 99);
  std::vector<std::pair<torch::Tensor, torch::Tensor>> stream;
  for (int i = 0; i < 10; ++i) {
    stream.push_back(a.next());
    CHECK(same(stream.back(), b.next()));
    check_windows(stream.back(), store.size(), 32);
  }
  CHECK_FALSE(same(stream[0], c.next()));
  CHECK_FALSE(same(stream[0], stream[1]));
  CHECK(a.state() == 10);

  // A resumed batcher continues the identical stream.
  Batcher resumed(store, 4, 32, 1234);
  resumed.set_state(6);
  for (int i = 6; i < 10; ++i) CHECK(same(resumed.next(), stream[static_cast<size_t>(i)]));
  CHECK(same(a.next(), resumed.next()));
}

TEST_CASE("batch windows cover the whole store, including its last token", "[data]") {
  TempDir dir;
  auto store = make_store(dir.path, 40, 2);
  Batcher batcher(store, 8, 8, 7);
  std::vector<bool> seen_start(40, false);
  for (int i = 0; i < 200; ++i) {
    auto batch = batcher.next();
    check_windows(batch, store.size(), 8);
    for (int64_t r = 0; r < 8; ++r) seen_start[static_cast<size_t>(batch.first[r][0].item<int64_t>() / 7)] = true;
  }
  for (int64_t s = 0; s + 9 <= 40; ++s) CHECK(seen_start[static_cast<size_t>(s)]);  // every valid start drawn
}

TEST_CASE("validation windows are fixed and evenly spaced from the start to the end", "[data]") {
  TempDir dir;
  auto store = make_store(dir.path, 1001, 2);
  auto batches = validation_batches(store, 3, 2, 100);
  REQUIRE(batches.size() == 3);
  for (const auto& b : batches) check_windows(b, store.size(), 100);
  CHECK(batches[0].first[0][0].item<int64_t>() == 0);
  CHECK(batches[2].second[1][99].item<int64_t>() == token_at(1000));  // the last window ends at the last token
  // Six windows over 900 possible starts: starts 0, 180, 360, ...
  CHECK(batches[1].first[0][0].item<int64_t>() == token_at(360));
  auto again = validation_batches(store, 3, 2, 100);
  for (size_t i = 0; i < 3; ++i) CHECK(same(batches[i], again[i]));
}

TEST_CASE("windows longer than the split are a user error naming train.seq_len", "[data]") {
  TempDir dir;
  auto store = make_store(dir.path, 50, 2);
  CHECK_THROWS_WITH(Batcher(store, 2, 50, 0), Catch::Contains("train.seq_len"));
  CHECK_THROWS_WITH(validation_batches(store, 1, 1, 64), Catch::Contains("train.seq_len"));
  Batcher ok(store, 2, 49, 0);
  check_windows(ok.next(), store.size(), 49);
}

TEST_CASE("a batcher keeps its token file mapped after the store it was built from is gone", "[data]") {
  TempDir dir;
  std::optional<TokenStore> store = make_store(dir.path, 300, 2);
  Batcher batcher(*store, 2, 16, 5);
  Batcher twin(*store, 2, 16, 5);
  store.reset();
  auto batch = batcher.next();
  check_windows(batch, 300, 16);
  CHECK(same(batch, twin.next()));
}
