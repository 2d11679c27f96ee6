// MQAR and passkey sequences, generated from a seed.
#include "data/synthetic.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"

namespace attnlab::data {

uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b) {
  auto splitmix = [](uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
  };
  return splitmix(splitmix(splitmix(seed) ^ a) ^ b);
}

SyntheticSpec SyntheticSpec::from(const DataConfig& data, int64_t seq_len) {
  SyntheticSpec s;
  s.task = data.task;
  s.vocab_size = data.vocab_size;
  s.seq_len = seq_len;
  s.num_pairs = data.num_pairs;
  s.num_queries = data.num_queries;
  s.power_a = data.power_a;
  s.passkey_digits = data.passkey_digits;
  return s;
}

namespace {
// `n` distinct values from [lo, hi), in random order.
std::vector<int64_t> distinct(std::mt19937_64& rng, int64_t lo, int64_t hi, int64_t n) {
  std::vector<int64_t> all(static_cast<size_t>(hi - lo));
  std::iota(all.begin(), all.end(), lo);
  for (int64_t i = 0; i < n; ++i) {
    std::uniform_int_distribution<size_t> pick(static_cast<size_t>(i), all.size() - 1);
    std::swap(all[static_cast<size_t>(i)], all[pick(rng)]);
  }
  all.resize(static_cast<size_t>(n));
  return all;
}
}  // namespace

std::pair<torch::Tensor, torch::Tensor> mqar_example(const SyntheticSpec& spec, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t L = spec.seq_len, V = spec.vocab_size, n = spec.num_pairs;
  const int64_t context = 2 * n;
  auto keys = distinct(rng, 1, V / 2, n);
  auto values = distinct(rng, V / 2, V, n);

  // Zoology builds L+1 tokens and shifts: inputs = tokens[:-1], targets =
  // labels[1:]; the label sits one past the query key, so the target at the
  // query key's input position is its value.
  std::vector<int64_t> tokens(static_cast<size_t>(L + 1), 0), labels(static_cast<size_t>(L + 1), kIgnoreIndex);
  for (int64_t i = 0; i < n; ++i) {
    tokens[static_cast<size_t>(2 * i)] = keys[static_cast<size_t>(i)];
    tokens[static_cast<size_t>(2 * i + 1)] = values[static_cast<size_t>(i)];
  }
  // Query gaps: distinct even offsets into the query region, power-law weighted
  // (np.random.choice(space, size=num_queries, replace=False, p=p)).
  const int64_t space = (L - context) / 2;
  std::vector<double> weight(static_cast<size_t>(space));
  for (int64_t g = 0; g < space; ++g) weight[static_cast<size_t>(g)] = std::pow(static_cast<double>(g + 1), spec.power_a - 1.0);
  auto queried = distinct(rng, 0, n, spec.num_queries);  // which pairs are queried (all of them when equal)
  for (int64_t q = 0; q < spec.num_queries; ++q) {
    std::discrete_distribution<int64_t> pick(weight.begin(), weight.end());
    const int64_t gap = pick(rng);
    weight[static_cast<size_t>(gap)] = 0.0;  // without replacement
    const auto pair = static_cast<size_t>(queried[static_cast<size_t>(q)]);
    tokens[static_cast<size_t>(context + 2 * gap)] = keys[pair];
    labels[static_cast<size_t>(context + 2 * gap + 1)] = values[pair];
  }
  std::uniform_int_distribution<int64_t> any(0, V - 1);
  for (auto& t : tokens)
    if (t == 0) t = any(rng);  // random_non_queries
  auto all = torch::tensor(tokens, torch::kInt64);
  auto lab = torch::tensor(labels, torch::kInt64);
  return {all.narrow(0, 0, L).clone(), lab.narrow(0, 1, L).clone()};
}

std::pair<torch::Tensor, torch::Tensor> passkey_example(const SyntheticSpec& spec, double depth, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t L = spec.seq_len, k = spec.passkey_digits;
  std::uniform_int_distribution<int64_t> digit(0, 9), filler(kPasskeyFillerStart, spec.vocab_size - 1);
  std::vector<int64_t> key(static_cast<size_t>(k));
  for (auto& d : key) d = digit(rng);
  // L+1 tokens: filler with the needle [KEY, digits] inside, then [QUERY, digits] at the end.
  const int64_t n_filler = L + 1 - 2 * (k + 1);
  const auto at = static_cast<int64_t>(std::llround(std::clamp(depth, 0.0, 1.0) * static_cast<double>(n_filler)));
  std::vector<int64_t> tokens;
  for (int64_t i = 0; i < at; ++i) tokens.push_back(filler(rng));
  tokens.push_back(kPasskeyMarker);
  tokens.insert(tokens.end(), key.begin(), key.end());
  for (int64_t i = at; i < n_filler; ++i) tokens.push_back(filler(rng));
  tokens.push_back(kPasskeyQuery);
  tokens.insert(tokens.end(), key.begin(), key.end());
  std::vector<int64_t> labels(tokens.size(), kIgnoreIndex);
  for (int64_t i = 0; i < k; ++i) labels[tokens.size() - static_cast<size_t>(k - i)] = key[static_cast<size_t>(i)];
  auto all = torch::tensor(tokens, torch::kInt64);
  auto lab = torch::tensor(labels, torch::kInt64);
  return {all.narrow(0, 0, L).clone(), lab.narrow(0, 1, L).clone()};
}

std::pair<torch::Tensor, torch::Tensor> synthetic_batch(const SyntheticSpec& spec, int64_t batch, uint64_t seed) {
  std::vector<torch::Tensor> inputs, targets;
  for (int64_t b = 0; b < batch; ++b) {
    const uint64_t s = mix_seed(seed, static_cast<uint64_t>(b));
    std::mt19937_64 depth_rng(mix_seed(s, 1));
    const double depth = std::uniform_real_distribution<double>(0.0, 1.0)(depth_rng);
    auto [x, y] = spec.task == "passkey" ? passkey_example(spec, depth, s) : mqar_example(spec, s);
    inputs.push_back(x);
    targets.push_back(y);
  }
  return {torch::stack(inputs), torch::stack(targets)};
}

std::vector<int64_t> SyntheticTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    char* end = nullptr;
    const long long id = std::strtoll(word.c_str(), &end, 10);
    if (*end != '\0' || id < 0 || id >= vocab_size_)
      throw UserError(fmt::format("'{}' is not a token id of this synthetic task (0..{})", word, vocab_size_ - 1));
    ids.push_back(id);
  }
  return ids;
}

std::string SyntheticTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) out += fmt::format("{}{}", i ? " " : "", ids[i]);
  return out;
}

SyntheticBatcher::SyntheticBatcher(SyntheticSpec spec, int64_t batch_size, uint64_t seed, uint64_t stream)
    : spec_(std::move(spec)), batch_size_(batch_size), seed_(seed), stream_(stream) {}

std::pair<torch::Tensor, torch::Tensor> SyntheticBatcher::next() {
  return synthetic_batch(spec_, batch_size_, mix_seed(seed_, stream_, draws_++));
}

std::vector<std::pair<torch::Tensor, torch::Tensor>> synthetic_validation(const SyntheticSpec& spec,
                                                                          int64_t n_batches, int64_t batch_size,
                                                                          uint64_t seed) {
  SyntheticBatcher val(spec, batch_size, seed, /*stream=*/0x7661'6C69'6461'7465ULL);  // "validate"
  std::vector<std::pair<torch::Tensor, torch::Tensor>> out;
  for (int64_t i = 0; i < n_batches; ++i) out.push_back(val.next());
  return out;
}

}  // namespace attnlab::data
