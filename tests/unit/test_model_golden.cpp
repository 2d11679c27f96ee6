// Golden fixtures from the PyTorch reference (scripts/reference/make_fixtures.py):
// RoPE with YaRN, GQA, and MLA naive and absorbed (against HF transformers'
// DeepseekV3Attention), in fp64, must match the C++ modules given the same weights.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <sstream>

#include "model/attention/grouped.h"
#include "model/attention/latent.h"
#include "model/position/rope.h"
#include "fixtures.h"
#include "tensor_match.h"

using namespace attnlab;
using namespace attnlab::model;
using attnlab::test::AllClose;
using attnlab::test::read_fixtures;
using torch::indexing::Slice;

namespace {

const std::map<std::string, torch::Tensor>& fixtures() {
  static const auto f = read_fixtures(std::string(ATTNLAB_SOURCE_DIR) + "/tests/fixtures/model_golden.txt");
  return f;
}

void load(torch::nn::Module& m, const std::string& prefix) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.named_parameters()) p.value().copy_(fixtures().at(prefix + p.key()));
}

PositionConfig yarn(double mscale, double mscale_all_dim, int64_t original_max_len = 16) {
  PositionConfig c;
  c.scaling.kind = "yarn";
  c.scaling.factor = 4.0;
  c.scaling.original_max_len = original_max_len;
  c.scaling.mscale = mscale;
  c.scaling.mscale_all_dim = mscale_all_dim;
  return c;
}

}  // namespace

TEST_CASE("golden: RoPE with YaRN matches the PyTorch reference", "[model][golden]") {
  Rope rope({yarn(1.0, 0.0), 8, 64});
  CHECK_THAT(rope.rotate(fixtures().at("rope.x"), 3), AllClose(fixtures().at("rope.out_start3"), 1e-12));
}

TEST_CASE("golden: GQA matches the PyTorch reference", "[model][golden]") {
  auto backend = GENERATE(Backend::kMath, Backend::kSdpa);
  GroupedAttention attn(GroupedOptions{8, 4, 2, 4});
  attn.to(torch::kFloat64);
  load(attn, "gqa.");
  Rope rope({yarn(1.0, 0.0), 8, 64});
  AttnContext ctx{0, &rope};
  ctx.backend = backend;
  CHECK_THAT(attn.forward(fixtures().at("gqa.x"), ctx), AllClose(fixtures().at("gqa.out"), 1e-12));
}

TEST_CASE("golden: MLA naive and absorbed decode match HF's DeepseekV3Attention", "[model][golden][mla]") {
  // 8 rotary pairs, YaRN factor 4 over 4096 with mscale 1 and mscale_all_dim
  // 0.707 (make_fixtures.py): both YaRN factors and a partial ramp.
  auto decode = GENERATE(DecodeMode::kNaive, DecodeMode::kAbsorbed);
  LatentOptions o;
  o.d_model = 8;
  o.n_heads = 2;
  o.kv_rank = 6;
  o.nope_dim = 4;
  o.rope_dim = 16;
  o.v_dim = 3;
  o.decode = decode;
  LatentAttention attn(o);
  attn.to(torch::kFloat64);
  load(attn, "mla.");
  Rope rope({yarn(1.0, 0.707, 4096), 8, 64});
  const auto& x = fixtures().at("mla.x");
  const auto& expected = fixtures().at("mla.out");
  // Prefill two tokens, then decode the other three one at a time.
  LayerCache cache(attn.cache_layout(), 1, 5, torch::kFloat64, torch::kCPU);
  std::vector<torch::Tensor> out;
  AttnContext prefill{0, &rope, &cache};
  out.push_back(attn.forward(x.index({Slice(), Slice(0, 2)}), prefill));
  for (int64_t t = 2; t < 5; ++t) {
    AttnContext step{t, &rope, &cache};
    out.push_back(attn.forward(x.index({Slice(), Slice(t, t + 1)}), step));
    CHECK(step.ran == (decode == DecodeMode::kAbsorbed ? InnerPath::kAbsorbed : InnerPath::kSdpa));
  }
  CHECK_THAT(torch::cat(out, 1), AllClose(expected, 1e-12));
}
