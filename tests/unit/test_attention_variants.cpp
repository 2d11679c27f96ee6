// Properties every registered attention variant must have, checked through
// GENERATE over the registry (and MLA's decode and rope modes): causality,
// cached decode and chunked prefill equal to the full forward, cache layouts
// as DeepSeek-V2 Table 1 counts them and allocated as laid out.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include "core/error.h"
#include "model/attention/registry.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "tensor_match.h"

using namespace attnlab;
using namespace attnlab::model;
using attnlab::test::AllClose;
using attnlab::test::tiny_config;
using torch::indexing::Slice;

TEST_CASE("every variant is causal in fp64 at the attention level", "[attention]") {
  auto variant = GENERATE(from_range(attnlab::test::registry_variants()));
  INFO(variant.name);
  torch::manual_seed(5);
  auto attn = make_attention(variant.config);
  attn->to(torch::kFloat64);
  auto position = make_position({variant.config.position, variant.config.d_model, variant.config.max_seq_len});
  auto x = torch::randn({2, 8, variant.config.d_model}, torch::kFloat64);
  auto y = x.clone();
  y.index_put_({Slice(), 4}, torch::randn({2, variant.config.d_model}, torch::kFloat64));
  AttnContext ca{0, position.get()}, cb{0, position.get()};
  auto oa = attn->forward(x, ca), ob = attn->forward(y, cb);
  CHECK(torch::equal(oa.index({Slice(), Slice(0, 4)}), ob.index({Slice(), Slice(0, 4)})));
  CHECK_FALSE(torch::allclose(oa.index({Slice(), Slice(4)}), ob.index({Slice(), Slice(4)})));
}

TEST_CASE("cached decode token by token and chunked prefill equal the full forward", "[attention][kv]") {
  auto variant = GENERATE(from_range(attnlab::test::registry_variants()));
  auto position = GENERATE(as<std::string>{}, "rope", "alibi", "learned");
  auto config = variant.config;
  config.position.kind = position;
  INFO(variant.name << " with " << position);
  torch::manual_seed(7);
  TransformerLM lm(config);
  lm->eval();
  torch::NoGradGuard no_grad;
  auto tokens = torch::randint(config.vocab_size, {2, 11}, torch::kLong);
  auto full = lm->forward(tokens);

  SECTION("one token at a time") {
    auto cache = lm->make_cache(2, 16);
    std::vector<torch::Tensor> steps;
    for (int64_t t = 0; t < 11; ++t) steps.push_back(lm->forward(tokens.index({Slice(), Slice(t, t + 1)}), cache));
    CHECK(cache.length() == 11);
    CHECK_THAT(torch::cat(steps, 1), AllClose(full, 1e-5));
    // Absorbed MLA really ran the absorbed kernel when decoding.
    if (!attention_entry(config.attention.kind).decode_modes().empty() && config.attention.word("decode") == "absorbed")
      CHECK(lm->last_path() == InnerPath::kAbsorbed);
  }
  SECTION("chunked prefill: chunks of 4, 1, 6 at non-zero starts") {
    auto cache = lm->make_cache(2, 11);
    auto a = lm->forward(tokens.index({Slice(), Slice(0, 4)}), cache);
    auto b = lm->forward(tokens.index({Slice(), Slice(4, 5)}), cache);
    auto c = lm->forward(tokens.index({Slice(), Slice(5, 11)}), cache);
    CHECK_THAT(torch::cat({a, b, c}, 1), AllClose(full, 1e-5));
  }
}

TEST_CASE("cache layouts follow DeepSeek-V2 Table 1 and the cache allocates exactly them", "[kv]") {
  auto variant = GENERATE(from_range(attnlab::test::registry_variants()));
  auto dtype_name = GENERATE(as<std::string>{}, "fp32", "bf16", "fp16", "int8", "fp8_e4m3");
  INFO(variant.name << " " << dtype_name);
  auto config = variant.config;
  config.attention.cache_dtype = dtype_name;
  TransformerLM lm(config);
  const auto layout = attention_entry(config.attention.kind).layout(config);
  // The registry's weight-free layout (what `attnlab kv` reports) is the built layer's layout.
  CHECK(layout == lm->blocks()[0]->attn->cache_layout());

  // Per token per layer, the variant's paper formula, written apart from its layout.
  const int64_t expected = attention_entry(config.attention.kind).cache_elements(config);
  CHECK(layout.elements_per_token() == expected);
  // And for the designs DeepSeek-V2 Table 1 covers, the table's formulas as written here.
  const int64_t h = config.n_heads, e = config.resolved_head_dim();
  const auto& a = config.attention;
  if (a.kind == "mha") CHECK(layout.elements_per_token() == 2 * h * e);
  if (a.kind == "gqa") CHECK(layout.elements_per_token() == 2 * a.integer("n_kv_heads") * e);
  if (a.kind == "mqa") CHECK(layout.elements_per_token() == 2 * e);
  if (a.kind == "mla") {
    const int64_t r = a.word("rope_mode") == "decoupled" ? a.integer("rope_dim") : 0;
    // naive caches what it attends with: full per-head keys and values; absorbed
    // d_c + d_R, and d_c + G·d_R with G rotary keys (MHA2MLA: one per head).
    CHECK(layout.elements_per_token() == (a.word("decode") == "absorbed"
                                              ? a.integer("kv_rank") + a.integer("rope_heads") * r
                                              : h * (a.integer("nope_dim") + r + a.integer("v_dim"))));
  }

  // The memory behind what the model really wrote: run a prefill through the
  // cache, then measure each layer's storage (not numel times element size).
  torch::NoGradGuard no_grad;
  auto cache = lm->make_cache(3, 20);
  lm->forward(torch::randint(config.vocab_size, {3, 5}, torch::kLong), cache);
  // Storage element sizes and scales written out here, not taken from CacheFormat.
  const bool quantized = dtype_name == "int8" || dtype_name == "fp8_e4m3";
  const auto storage_dtype = dtype_name == "fp32"   ? torch::kFloat32
                             : dtype_name == "bf16" ? torch::kBFloat16
                             : dtype_name == "fp16" ? torch::kFloat16
                             : dtype_name == "int8" ? torch::kInt8
                                                    : torch::kFloat8_e4m3fn;
  const int64_t elem = dtype_name == "fp32" ? 4 : quantized ? 1 : 2;
  // One fp16 scale per vector along each part's last dim: k[K,E] holds K vectors.
  int64_t vectors = 0;
  for (const auto& part : layout.parts) {
    int64_t n = 1;
    for (size_t d = 0; d + 1 < part.shape.size(); ++d) n *= part.shape[d];
    vectors += n;
  }
  const int64_t scale_bytes = quantized ? vectors * 2 : 0;
  int64_t allocated = 0;
  for (int64_t l = 0; l < cache.n_layers(); ++l) {
    std::vector<torch::Tensor> empty;
    for (const auto& part : layout.parts) {
      std::vector<int64_t> shape{3, 0};
      shape.insert(shape.end(), part.shape.begin(), part.shape.end());
      empty.push_back(torch::zeros(shape));
    }
    // Zero new tokens: what is cached, as attention reads it (a quantized
    // cache dequantizes into the new parts' dtype, here fp32).
    for (const auto& view : cache.layer(l).append(empty)) {
      CHECK(view.scalar_type() == (quantized ? torch::kFloat32 : storage_dtype));
      CHECK(view.size(1) == 5);
    }
    for (size_t i = 0; i < layout.parts.size(); ++i) {
      const auto& stored = cache.layer(l).storage(i);
      CHECK(stored.scalar_type() == storage_dtype);
      allocated += static_cast<int64_t>(stored.storage().nbytes());
      if (quantized) {
        CHECK(cache.layer(l).scales(i).scalar_type() == torch::kFloat16);
        allocated += static_cast<int64_t>(cache.layer(l).scales(i).storage().nbytes());
      } else {
        CHECK_FALSE(cache.layer(l).scales(i).defined());
      }
    }
  }
  CHECK(allocated == config.n_layers * 3 * 20 * (expected * elem + scale_bytes));
  CHECK(cache.bytes() == allocated);
  CHECK(cache.bytes() == 3 * 20 * lm->kv_bytes_per_token());
  CHECK(lm->kv_bytes_per_token() == config.n_layers * (expected * elem + scale_bytes));
}

TEST_CASE("cache append refuses a part whose shape differs from the layout", "[kv]") {
  // k[2,4] + v[2,4]: a batch of 3, room for 8 tokens.
  CacheLayout layout{{{"k", {2, 4}}, {"v", {2, 4}}}};
  LayerCache cache(layout, 3, 8, torch::kFloat32, torch::kCPU);
  const auto good = torch::ones({3, 2, 2, 4});
  // Broadcastable ones too: copy_ would silently fill every head from one.
  const auto bad = GENERATE(as<std::vector<int64_t>>{},
                            std::vector<int64_t>{3, 2, 1, 4},   // one kv head
                            std::vector<int64_t>{3, 2, 2, 1},   // size-1 head dim
                            std::vector<int64_t>{1, 2, 2, 4},   // batch 1
                            std::vector<int64_t>{3, 2, 4},      // head axis missing
                            std::vector<int64_t>{3, 2, 2, 5},   // wrong head dim
                            std::vector<int64_t>{3, 1, 2, 4});  // fewer tokens than k
  INFO("v of shape " << torch::IntArrayRef(bad));
  CHECK_THROWS_WITH(cache.append({good, torch::ones(bad)}),
                    Catch::Contains("part 'v'") && Catch::Contains("must be [3,2,2,4]") &&
                        Catch::Contains(fmt::format("got [{}]", fmt::join(bad, ","))));
  CHECK(cache.length() == 0);  // nothing was written
  auto views = cache.append({good, 2 * good});
  CHECK(cache.length() == 2);
  CHECK(torch::equal(views[1], 2 * good));
}

TEST_CASE("a full cache refuses more tokens with a UserError", "[kv]") {
  TransformerLM lm(tiny_config());
  auto cache = lm->make_cache(1, 4);
  lm->forward(torch::zeros({1, 3}, torch::kLong), cache);
  CHECK_THROWS_AS(lm->forward(torch::zeros({1, 2}, torch::kLong), cache), UserError);
}
