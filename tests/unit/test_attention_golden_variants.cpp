// Golden values for the designs after MLA (gta, gla, tpa) from an independent
// PyTorch reference written from the papers and their reference code
// (scripts/reference/make_variant_fixtures.py; conventions cited in its
// docstring), in fp64: the full forward, cached decode in every decode path,
// and the cache contents at positions 3..8 (RoPE is relative, so only the
// cached rotated keys show absolute positions).
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "fixtures.h"
#include "model/attention/registry.h"
#include "model/kv_cache.h"
#include "tensor_match.h"

using namespace attnlab;
using namespace attnlab::model;
using attnlab::test::AllClose;
using torch::indexing::Slice;

namespace {

const std::map<std::string, torch::Tensor>& fixtures() {
  static const auto f =
      attnlab::test::read_fixtures(std::string(ATTNLAB_SOURCE_DIR) + "/tests/fixtures/variants_golden.txt");
  return f;
}

struct Golden {
  std::string prefix;                    // "gta", "gla_q", ...
  ModelConfig config;
  std::vector<std::string> cache_names;  // the compressed cache's parts, in layout order, as the fixture names them
};

ModelConfig shape(const std::string& kind) {
  ModelConfig c;  // make_variant_fixtures.py: D 24, H 4, E 16 (set, not D/H), RoPE theta 100
  c.d_model = 24;
  c.n_heads = 4;
  c.head_dim = 16;
  c.max_seq_len = 16;
  c.position.kind = "rope";
  c.position.theta = 100.0;
  c.attention.kind = kind;
  return c;
}

std::vector<Golden> goldens() {
  std::vector<Golden> out;
  const auto kinds = attention_kinds();
  auto registered = [&](const std::string& k) { return std::find(kinds.begin(), kinds.end(), k) != kinds.end(); };
  if (registered("gta")) {
    auto c = shape("gta");
    c.attention.set("n_kv_heads", 2).set("rope_dim", 8);
    out.push_back({"gta", c, {"kv", "k_rope"}});
  }
  if (registered("gla"))
    for (int64_t q_rank : {0, 10}) {
      auto c = shape("gla");
      c.attention.set("n_latent_heads", 2).set("kv_rank", 12).set("nope_dim", 8).set("rope_dim", 8).set("v_dim", 6);
      c.attention.set("q_rank", q_rank);
      out.push_back({q_rank ? "gla_q" : "gla", c, {"latent", "k_pe"}});
    }
  if (registered("tpa")) {
    auto c = shape("tpa");
    c.attention.set("q_rank", 3).set("k_rank", 2).set("v_rank", 2);
    out.push_back({"tpa", c, {"a_k", "b_k", "a_v", "b_v"}});
  }
  return out;
}

AttentionPtr load(const Golden& g, const std::string& decode) {
  auto config = g.config;
  if (!decode.empty()) config.attention.set("decode", decode);
  auto attn = make_attention(config);
  attn->to(torch::kFloat64);
  torch::NoGradGuard no_grad;
  for (auto& p : attn->named_parameters()) {
    INFO(g.prefix << "." << p.key());
    REQUIRE(fixtures().count(g.prefix + "." + p.key()));
    p.value().copy_(fixtures().at(g.prefix + "." + p.key()));
  }
  return attn;
}

std::vector<std::string> decodes(const Golden& g) {
  auto modes = attention_entry(g.config.attention.kind).decode_modes();
  return modes.empty() ? std::vector<std::string>{""} : modes;
}

}  // namespace

TEST_CASE("golden: gta, gla and tpa match the PyTorch reference, in every decode path", "[attention][golden]") {
  const auto all = goldens();
  REQUIRE_FALSE(all.empty());
  auto g = GENERATE_COPY(from_range(all));
  const auto& x = fixtures().at(g.prefix + ".x");
  const auto& expected = fixtures().at(g.prefix + ".out");
  auto position = make_position({g.config.position, g.config.d_model, g.config.max_seq_len});
  torch::NoGradGuard no_grad;

  for (const auto& decode : decodes(g)) {
    INFO(g.prefix << " decode " << decode);
    auto attn = load(g, decode);
    for (auto backend : {Backend::kMath, Backend::kSdpa}) {
      AttnContext ctx{0, position.get()};
      ctx.backend = backend;
      CHECK_THAT(attn->forward(x, ctx), AllClose(expected, 1e-12));
    }
    // Prefill three tokens, then decode the other three one at a time.
    LayerCache cache(attn->cache_layout(), 1, 6, torch::kFloat64, torch::kCPU);
    AttnContext prefill{0, position.get(), &cache};
    std::vector<torch::Tensor> out{attn->forward(x.index({Slice(), Slice(0, 3)}), prefill)};
    for (int64_t t = 3; t < 6; ++t) {
      AttnContext step{t, position.get(), &cache};
      out.push_back(attn->forward(x.index({Slice(), Slice(t, t + 1)}), step));
      if (decode == "absorbed") CHECK(step.ran == InnerPath::kAbsorbed);
    }
    CHECK_THAT(torch::cat(out, 1), AllClose(expected, 1e-12));
  }
}

TEST_CASE("golden: the compressed caches hold the reference's values at positions 3..8", "[attention][golden][kv]") {
  const auto all = goldens();
  REQUIRE_FALSE(all.empty());
  auto g = GENERATE_COPY(from_range(all));
  INFO(g.prefix);
  const auto modes = decodes(g);
  auto attn = load(g, modes.back());  // absorbed where there is a choice: the cache the paper counts
  auto position = make_position({g.config.position, g.config.d_model, g.config.max_seq_len});
  torch::NoGradGuard no_grad;
  LayerCache cache(attn->cache_layout(), 1, 6, torch::kFloat64, torch::kCPU);
  AttnContext ctx{3, position.get(), &cache};
  const auto out = attn->forward(fixtures().at(g.prefix + ".x"), ctx);
  CHECK_THAT(out, AllClose(fixtures().at(g.prefix + ".out_start3"), 1e-12));
  std::vector<torch::Tensor> none;
  for (const auto& part : attn->cache_layout().parts) {
    std::vector<int64_t> shape{1, 0};
    shape.insert(shape.end(), part.shape.begin(), part.shape.end());
    none.push_back(torch::zeros(shape, torch::kFloat64));
  }
  const auto cached = cache.append(none);  // views of what the forward cached
  REQUIRE(cached.size() == g.cache_names.size());
  for (size_t i = 0; i < cached.size(); ++i) {
    INFO(g.cache_names[i]);
    CHECK_THAT(cached[i], AllClose(fixtures().at(g.prefix + ".cache_start3." + g.cache_names[i]), 1e-12));
  }
}
