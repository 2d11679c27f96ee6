// MLA specifics: naive and absorbed decode agree (tight in fp32, a looser
// band in bf16), switch at run time on the same weights, absorbed refuses
// coupled RoPE with a reason, and the softmax scale is 1/sqrt(d_n + d_r).
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "model/attention/latent.h"
#include "model/attention/registry.h"
#include "model/position/rope.h"
#include "model/transformer.h"
#include "tensor_match.h"

using namespace attnlab;
using namespace attnlab::model;
using attnlab::test::AllClose;
using attnlab::test::rel_error;
using attnlab::test::tiny_config;
using torch::indexing::Slice;

namespace {
// Prefill 5 tokens, then decode the remaining ones one at a time.
torch::Tensor decode_all(TransformerLM& lm, const torch::Tensor& tokens, torch::ScalarType cache_dtype) {
  auto cache = lm->make_cache(tokens.size(0), tokens.size(1), cache_dtype);
  std::vector<torch::Tensor> out{lm->forward(tokens.index({Slice(), Slice(0, 5)}), cache)};
  for (int64_t t = 5; t < tokens.size(1); ++t) out.push_back(lm->forward(tokens.index({Slice(), Slice(t, t + 1)}), cache));
  return torch::cat(out, 1);
}
}  // namespace

TEST_CASE("MLA naive and absorbed decode agree in fp32 on the same weights", "[attention][mla]") {
  auto q_rank = GENERATE(as<int64_t>{}, 0, 16);
  auto rope_mode = GENERATE(as<std::string>{}, "decoupled", "none");
  auto config = tiny_config("mla");
  config.attention.set("q_rank", q_rank);
  config.attention.set("rope_mode", rope_mode);
  config.position.kind = "rope";
  config.position.scaling.kind = "yarn";
  config.position.scaling.factor = 4.0;
  config.position.scaling.mscale_all_dim = 1.0;
  torch::manual_seed(11);
  TransformerLM lm(config);
  torch::NoGradGuard no_grad;
  auto tokens = torch::randint(config.vocab_size, {2, 14}, torch::kLong);
  lm->set_decode(DecodeMode::kNaive);
  auto naive = decode_all(lm, tokens, torch::kFloat32);
  CHECK(lm->last_path() != InnerPath::kAbsorbed);
  lm->set_decode(DecodeMode::kAbsorbed);  // same weights, no reload
  auto absorbed = decode_all(lm, tokens, torch::kFloat32);
  CHECK(lm->last_path() == InnerPath::kAbsorbed);
  const double err = rel_error(absorbed, naive);
  INFO("relative error naive vs absorbed (fp32): " << err);
  CHECK(err <= 1e-5);
  // The two paths really differ in what they cache.
  const int64_t absorbed_bytes = lm->make_cache(1, 1).bytes();
  lm->set_decode(DecodeMode::kNaive);
  CHECK(absorbed_bytes < lm->make_cache(1, 1).bytes());
}

TEST_CASE("MLA naive and absorbed stay within a bf16 band of the fp32 model", "[attention][mla]") {
  auto config = tiny_config("mla");
  torch::manual_seed(12);
  TransformerLM lm(config);
  torch::NoGradGuard no_grad;
  auto tokens = torch::randint(config.vocab_size, {2, 12}, torch::kLong);
  lm->set_decode(DecodeMode::kNaive);
  auto reference = decode_all(lm, tokens, torch::kFloat32);
  lm->to(torch::kBFloat16);
  auto naive = decode_all(lm, tokens, torch::kBFloat16);
  lm->set_decode(DecodeMode::kAbsorbed);
  auto absorbed = decode_all(lm, tokens, torch::kBFloat16);
  const double e_naive = rel_error(naive, reference), e_absorbed = rel_error(absorbed, reference);
  INFO("bf16 relative error: naive " << e_naive << ", absorbed " << e_absorbed);
  // bf16 carries 8 bits of mantissa (~4e-3): a few roundings deep, 3e-2 is
  // the band; an absorbed path without fp32 accumulation drifts well past it.
  CHECK(e_naive <= 3e-2);
  CHECK(e_absorbed <= 3e-2);
  CHECK(rel_error(absorbed, naive) <= 3e-2);
  // And the band is not vacuous: bf16 is measurably different from fp32.
  CHECK(e_naive > 1e-5);
}

TEST_CASE("MLA absorbed accumulates in fp32: fp16 scores past 65504 stay finite", "[attention][mla]") {
  // Pitfall 1 of MLA.md: q~ = q_nope W_UK and q~ . ckv are large. Weights are
  // scaled so that the unscaled scores reach ~1e5, past fp16's maximum; an
  // fp16-accumulated absorbed path turns them into inf and the output into NaN.
  auto config = tiny_config("mla");
  config.attention.set("decode", "absorbed");
  torch::manual_seed(13);
  auto attn = std::dynamic_pointer_cast<LatentAttention>(make_attention(config));
  {
    torch::NoGradGuard g;
    attn->wq_b->weight.mul_(1000.0);  // after q_norm, so the scale survives
    attn->wkv_b->weight.mul_(150.0);
  }
  auto position = make_position({config.position, config.d_model, config.max_seq_len});
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 6, config.d_model});
  auto run = [&](torch::ScalarType dt) {
    LayerCache cache(attn->cache_layout(), 1, 7, dt, torch::kCPU);
    // One zero latent first, so that every real token takes the absorbed path.
    cache.append({torch::zeros({1, 1, 12}), torch::zeros({1, 1, 4})});
    std::vector<torch::Tensor> out;
    for (int64_t t = 0; t < 6; ++t) {
      AttnContext ctx{t + 1, position.get(), &cache};
      out.push_back(attn->forward(x.narrow(1, t, 1).to(dt), ctx));
      CHECK(ctx.ran == InnerPath::kAbsorbed);
    }
    return torch::cat(out, 1);
  };
  auto fp32 = run(torch::kFloat32);
  attn->to(torch::kFloat16);
  auto fp16 = run(torch::kFloat16);
  CHECK(fp16.scalar_type() == torch::kFloat16);
  CHECK(torch::isfinite(fp16).all().item<bool>());
  CHECK(rel_error(fp16, fp32) <= 3e-2);
}

TEST_CASE("absorbed decode with coupled RoPE is refused, saying why", "[attention][mla]") {
  auto config = tiny_config("mla");
  config.attention.set("rope_mode", "coupled");
  config.attention.set("decode", "absorbed");
  try {
    TransformerLM lm(config);
    FAIL("constructing absorbed + coupled should throw");
  } catch (const UserError& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("attention.decode") && Catch::Contains("W_UK") &&
                                          Catch::Contains("decode=naive"));
  }
  config.attention.set("decode", "naive");
  TransformerLM lm(config);
  CHECK_THROWS_AS(lm->set_decode(DecodeMode::kAbsorbed), UserError);
  CHECK(lm->blocks()[0]->attn->decode() == DecodeMode::kNaive);  // the refused switch left it alone
}

TEST_CASE("MLA matches a hand-written fp64 naive forward with scale 1/sqrt(d_n + d_r)", "[attention][mla]") {
  auto config = tiny_config("mla");
  config.attention.set("q_rank", 0);
  config.position.scaling.kind = "yarn";
  config.position.scaling.factor = 8.0;
  config.position.scaling.mscale_all_dim = 0.7;
  torch::manual_seed(14);
  auto attn = std::dynamic_pointer_cast<LatentAttention>(make_attention(config));
  attn->to(torch::kFloat64);
  auto rope = std::make_shared<Rope>(PositionOptions{config.position, config.d_model, config.max_seq_len});
  const int64_t b = 1, t = 6, h = 4, n = 8, r = 4, v = 6, c = 12;
  auto x = torch::randn({b, t, config.d_model}, torch::kFloat64);
  AttnContext ctx{0, rope.get()};
  ctx.backend = Backend::kMath;
  auto got = attn->forward(x, ctx);

  torch::NoGradGuard no_grad;
  auto q = torch::matmul(x, attn->wq->weight.t()).view({b, t, h, n + r}).transpose(1, 2);
  auto kv = torch::matmul(x, attn->wkv_a->weight.t());
  auto ckv = kv.narrow(-1, 0, c);
  ckv = ckv * torch::rsqrt(ckv.pow(2).mean(-1, true) + 1e-6);
  auto kpe = rope->rotate(kv.narrow(-1, c, r).unsqueeze(1), 0).expand({b, h, t, r});
  auto up = torch::matmul(ckv, attn->wkv_b->weight.t()).view({b, t, h, n + v}).transpose(1, 2);
  auto qq = torch::cat({q.narrow(-1, 0, n), rope->rotate(q.narrow(-1, n, r), 0)}, -1);
  auto kk = torch::cat({up.narrow(-1, 0, n), kpe}, -1);
  const double m = 0.1 * 0.7 * std::log(8.0) + 1.0;
  const double scale = m * m / std::sqrt(double(n + r));
  auto scores = torch::matmul(qq, kk.transpose(-1, -2)) * scale;
  scores = scores.masked_fill(torch::ones({t, t}, torch::kBool).tril().logical_not(), -INFINITY);
  auto o = torch::matmul(torch::softmax(scores, -1), up.narrow(-1, n, v));
  auto expected = torch::matmul(o.transpose(1, 2).reshape({b, t, h * v}), attn->wo->weight.t());
  CHECK_THAT(got, AllClose(expected, 1e-12));
}
