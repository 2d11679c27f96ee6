// Perplexity against context length: chunked prefill through the KV cache and
// token-by-token decode give the full forward's loss, windows are where they
// should be, and bits per byte counts the bytes of exactly the scored tokens.
#include <catch2/catch.hpp>

#include <cctype>
#include <cmath>
#include <fstream>
#include <numbers>

#include "data/dataset.h"
#include "eval/context.h"
#include "eval/recall.h"
#include "data/tokenizer.h"
#include "model/transformer.h"
#include "tensor_match.h"
#include "temp_dir.h"

using namespace attnlab;

namespace {
// A validation split of `n` random tokens < vocab, as prepare() would write it.
data::TokenStore random_split(const std::filesystem::path& dir, int64_t n, int64_t vocab) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "meta.yaml") << "token_bytes: 2\n";
  torch::manual_seed(11);
  auto t = torch::randint(0, vocab, {n}, torch::kInt64).to(torch::kInt16);
  std::ofstream out(dir / "val.bin", std::ios::binary);
  out.write(static_cast<const char*>(t.data_ptr()), n * 2);
  out.close();
  return data::TokenStore::open(dir / "val.bin");
}

ModelConfig model_for(const std::string& attention, const std::string& position) {
  auto c = test::tiny_config(attention);
  c.position.kind = position;
  if (attention == "mla" && position != "rope") c.attention.set("rope_mode", "none");
  c.max_seq_len = 48;
  return c;
}
}  // namespace

TEST_CASE("window starts are evenly spaced, inside the split, and a window that does not fit names --context",
          "[eval][context]") {
  CHECK(eval::window_starts(100, 11, 1) == std::vector<int64_t>{0});
  CHECK(eval::window_starts(100, 11, 4) == std::vector<int64_t>{0, 29, 59, 89});  // last ends at 100
  CHECK_THROWS_WITH(eval::window_starts(10, 11, 1), Catch::Contains("--context"));
}

TEST_CASE("chunked prefill and cached decode give the full-forward perplexity, every attention", "[eval][context]") {
  test::TempDir tmp;
  auto val = random_split(tmp.path / "split", 2000, 50);
  auto bytes_of = [](const torch::Tensor& ids) { return ids.numel(); };
  for (auto [attention, position] : std::vector<std::pair<std::string, std::string>>{
           {"mha", "rope"}, {"gqa", "rope"}, {"mqa", "alibi"}, {"mla", "rope"}, {"mla", "none"}}) {
    for (auto decode : {model::DecodeMode::kAbsorbed, model::DecodeMode::kNaive}) {
      if (attention != "mla" && decode == model::DecodeMode::kNaive) continue;
      INFO(attention << " + " << position << (decode == model::DecodeMode::kNaive ? " naive" : " absorbed"));
      torch::manual_seed(3);
      model::TransformerLM m(model_for(attention, position));
      m->to(torch::kFloat64);
      m->set_decode(decode);
      eval::ContextOptions o;
      o.tokens = 3 * 40;
      o.batch = 2;  // two forwards of 2 and 1 windows
      o.chunk = 0;
      auto full = eval::evaluate_context(m, val, 40, 16, o, bytes_of);
      o.chunk = 7;  // chunks that do not divide the window
      auto chunked = eval::evaluate_context(m, val, 40, 16, o, bytes_of);
      o.chunk = 1;  // every token through the decode path
      auto decoded = eval::evaluate_context(m, val, 40, 16, o, bytes_of);
      CHECK(full.windows == 3);
      CHECK(full.tokens == 120);
      CHECK_THAT(chunked.loss, Catch::WithinRel(full.loss, 1e-10));
      CHECK_THAT(decoded.loss, Catch::WithinRel(full.loss, 1e-10));
      CHECK_THAT(decoded.tail_loss, Catch::WithinRel(full.tail_loss, 1e-10));
      CHECK(chunked.cache_bytes > 0);
      CHECK(full.cache_bytes == 0);
    }
  }
}

TEST_CASE("context rows: loss is the mean over every position, the tail over positions >= tail_from, "
          "bits per byte over the scored bytes",
          "[eval][context]") {
  test::TempDir tmp;
  auto val = random_split(tmp.path / "split", 500, 50);
  torch::manual_seed(5);
  model::TransformerLM m(model_for("mha", "rope"));
  m->to(torch::kFloat64);
  // An independent computation: one full forward per window, per-position
  // cross-entropy by hand (log-softmax, gather).
  eval::ContextOptions o;
  o.tokens = 2 * 30;
  const auto starts = eval::window_starts(val.size(), 31, 2);
  double all = 0.0, tail = 0.0;
  int64_t n_bytes = 0;
  for (auto s : starts) {
    auto w = val.slice(s, 31);
    auto logp = torch::log_softmax(m->forward(w.narrow(0, 0, 30).unsqueeze(0))[0].to(torch::kFloat64), -1);
    auto nll = -logp.gather(1, w.narrow(0, 1, 30).unsqueeze(1)).squeeze(1);
    all += nll.sum().item<double>();
    tail += nll.narrow(0, 10, 20).sum().item<double>();
    n_bytes += 3 * 30;
  }
  // Every token "is" three bytes here, so bits per byte is a third of bits per token.
  auto row = eval::evaluate_context(m, val, 30, 10, o, [](const torch::Tensor& ids) { return 3 * ids.numel(); });
  CHECK_THAT(row.loss, Catch::WithinRel(all / 60.0, 1e-10));
  CHECK_THAT(row.ppl, Catch::WithinRel(std::exp(all / 60.0), 1e-10));
  CHECK_THAT(row.tail_loss, Catch::WithinRel(tail / 40.0, 1e-10));
  CHECK_THAT(row.bits_per_byte, Catch::WithinRel(all / std::numbers::ln2 / static_cast<double>(n_bytes), 1e-10));
  CHECK(row.tail_from == 10);
}

TEST_CASE("RoPE models evaluate beyond model.max_seq_len, and YaRN at evaluation changes long-context loss only "
          "through positions",
          "[eval][context]") {
  test::TempDir tmp;
  auto val = random_split(tmp.path / "split", 3000, 50);
  auto bytes_of = [](const torch::Tensor& ids) { return ids.numel(); };
  auto base = model_for("gqa", "rope");
  torch::manual_seed(7);
  model::TransformerLM plain(base);
  auto yarn_cfg = base;
  yarn_cfg.position.scaling.kind = "yarn";
  yarn_cfg.position.scaling.factor = 4.0;
  model::TransformerLM yarn(yarn_cfg);
  // Same weights: RoPE has none, so copying the parameters is the whole model.
  {
    torch::NoGradGuard g;
    auto src = plain->named_parameters();
    for (auto& p : yarn->named_parameters()) p.value().copy_(src[p.key()]);
  }
  eval::ContextOptions o;
  o.tokens = 2 * 192;
  o.chunk = 48;
  auto a = eval::evaluate_context(plain, val, 192, 48, o, bytes_of);  // 4x max_seq_len
  auto b = eval::evaluate_context(yarn, val, 192, 48, o, bytes_of);
  CHECK(std::isfinite(a.loss));
  CHECK(std::isfinite(b.loss));
  CHECK(a.loss != b.loss);
}

TEST_CASE("the text passkey prompt: exact length, the key hidden at its depth, targets on the key's digits only",
          "[eval][recall]") {
  data::ByteTokenizer bytes;
  for (double depth : {0.0, 0.5, 1.0}) {
    auto [x, y] = eval::text_passkey(bytes, 600, depth, 42);
    REQUIRE(x.numel() == 600);
    REQUIRE(y.numel() == 600);
    std::vector<int64_t> ids(x.data_ptr<int64_t>(), x.data_ptr<int64_t>() + x.numel());
    const std::string text = bytes.decode(ids);
    // The targets spell a 5-digit key, and that key is what the needle says.
    std::string key;
    for (int64_t i = 0; i < y.numel(); ++i)
      if (y[i].item<int64_t>() != data::kIgnoreIndex) key += static_cast<char>(y[i].item<int64_t>());
    INFO("depth " << depth << " key " << key);
    REQUIRE(key.size() == 5);
    for (char c : key) CHECK(std::isdigit(static_cast<unsigned char>(c)));
    const auto needle = text.find("The pass key is " + key + ". Remember it.");
    REQUIRE(needle != std::string::npos);
    // Depth places the needle between the intro and the question.
    const auto question = text.rfind("What is the pass key? The pass key is ");
    REQUIRE(question != std::string::npos);
    const auto intro_end = text.find("information there. ") + 19;
    const std::string needle_text = "The pass key is " + key + ". Remember it. " + key + " is the pass key. ";
    const double filler = static_cast<double>(question - intro_end - needle_text.size());
    const double where = static_cast<double>(needle - intro_end) / filler;
    CHECK(std::abs(where - depth) < 0.01);
    // The last input is the key's 4th digit; its target is the 5th.
    CHECK(text.substr(text.size() - 4) == key.substr(0, 4));
  }
  CHECK_THROWS_WITH(eval::text_passkey(bytes, 100, 0.5, 1), Catch::Contains("--context"));
}
