// The model's properties on CUDA, in fp32 and under bf16 autocast (what
// training and decoding run): causality, cached decode (naive and absorbed)
// and chunked prefill equal to the full forward for every variant, SDPA equal
// to the math reference, and every variant's logits equal to the CPU's, which
// the CPU golden tests hold to the PyTorch references. Skipped without CUDA;
// scripts/gpu/check.sh runs them (`ctest -L gpu`) on a lent GPU.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "model/attention/inner.h"
#include "model/attention/registry.h"
#include "model/transformer.h"
#include "runtime/autocast.h"
#include "skip.h"
#include "tensor_match.h"

using namespace attnlab;
using namespace attnlab::model;
using attnlab::test::AllClose;
using torch::indexing::Slice;

namespace {

const torch::Device kCuda(torch::kCUDA);

// Relative bands: fp32 on CUDA (no TF32 in LibTorch's defaults) and bf16
// autocast against the same model's fp32 CPU result.
double band(torch::ScalarType dtype) { return dtype == torch::kBFloat16 ? 3e-2 : 1e-4; }

}  // namespace

TEST_CASE("on CUDA every variant is causal", "[.gpu][attention]") {
  if (!torch::cuda::is_available()) ATTNLAB_SKIP("no CUDA device");
  auto variant = GENERATE(from_range(attnlab::test::registry_variants()));
  const auto dtype = GENERATE(torch::kFloat32, torch::kBFloat16);
  INFO(variant.name << " " << c10::toString(dtype));
  torch::manual_seed(5);
  auto attn = make_attention(variant.config);
  attn->to(kCuda);
  auto position = make_position({variant.config.position, variant.config.d_model, variant.config.max_seq_len});
  auto x = torch::randn({2, 8, variant.config.d_model}, kCuda);
  auto y = x.clone();
  y.index_put_({Slice(), 4}, torch::randn({2, variant.config.d_model}, kCuda));
  AutocastScope autocast(torch::kCUDA, dtype);
  AttnContext ca{0, position.get()}, cb{0, position.get()};
  auto oa = attn->forward(x, ca), ob = attn->forward(y, cb);
  CHECK(torch::equal(oa.index({Slice(), Slice(0, 4)}), ob.index({Slice(), Slice(0, 4)})));
  CHECK_FALSE(torch::allclose(oa.index({Slice(), Slice(4)}), ob.index({Slice(), Slice(4)})));
}

TEST_CASE("on CUDA cached decode and chunked prefill equal the full forward, and the CPU's logits",
          "[.gpu][attention][kv]") {
  if (!torch::cuda::is_available()) ATTNLAB_SKIP("no CUDA device");
  auto variant = GENERATE(from_range(attnlab::test::registry_variants()));
  const auto dtype = GENERATE(torch::kFloat32, torch::kBFloat16);
  INFO(variant.name << " " << c10::toString(dtype));
  torch::manual_seed(7);
  TransformerLM lm(variant.config);
  lm->eval();
  torch::NoGradGuard no_grad;
  auto tokens = torch::randint(variant.config.vocab_size, {2, 11}, torch::kLong);
  const auto cpu = lm->forward(tokens);
  lm->to(kCuda);
  tokens = tokens.to(kCuda);
  AutocastScope autocast(torch::kCUDA, dtype);
  const auto full = lm->forward(tokens);
  CHECK_THAT(full.cpu(), AllClose(cpu, band(dtype)));

  auto cache = lm->make_cache(2, 16);
  std::vector<torch::Tensor> steps;
  for (int64_t t = 0; t < 11; ++t) steps.push_back(lm->forward(tokens.index({Slice(), Slice(t, t + 1)}), cache));
  CHECK_THAT(torch::cat(steps, 1).cpu(), AllClose(cpu, band(dtype)));
  if (!attention_entry(variant.config.attention.kind).decode_modes().empty() &&
      variant.config.attention.word("decode") == "absorbed")
    CHECK(lm->last_path() == InnerPath::kAbsorbed);

  auto chunked = lm->make_cache(2, 11);
  auto a = lm->forward(tokens.index({Slice(), Slice(0, 4)}), chunked);
  auto b = lm->forward(tokens.index({Slice(), Slice(4, 5)}), chunked);
  auto c = lm->forward(tokens.index({Slice(), Slice(5, 11)}), chunked);
  CHECK_THAT(torch::cat({a, b, c}, 1).cpu(), AllClose(cpu, band(dtype)));
}

TEST_CASE("on CUDA SDPA equals the math reference, value widths narrower than keys included", "[.gpu][attention]") {
  if (!torch::cuda::is_available()) ATTNLAB_SKIP("no CUDA device");
  auto [h, k, t, s, e, f, biased] = GENERATE(table<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool>({
      {8, 8, 128, 128, 64, 64, false},  // training: square, causal
      {8, 2, 16, 80, 64, 64, false},    // chunked prefill over a grouped cache
      {8, 1, 1, 200, 64, 64, false},    // MQA decode
      {8, 8, 64, 64, 32, 32, true},     // ALiBi-style bias
      {8, 8, 128, 128, 96, 64, false},  // MLA training: q/k 64 + 32 rotary, v 64 (padded where flash needs it)
  }));
  const auto dtype = GENERATE(torch::kFloat32, torch::kBFloat16);
  INFO("H=" << h << " K=" << k << " T=" << t << " S=" << s << " E=" << e << " F=" << f << " bias=" << biased << " "
            << c10::toString(dtype));
  torch::manual_seed(31);
  const auto options = torch::TensorOptions().device(kCuda).dtype(dtype);
  auto q = torch::randn({2, h, t, e}, options), kk = torch::randn({2, k, s, e}, options),
       v = torch::randn({2, k, s, f}, options);
  torch::Tensor bias = biased ? torch::randn({h, t, s}, options) : torch::Tensor();
  const double scale = 1.0 / std::sqrt(static_cast<double>(e));
  // The reference in fp32 on the same (possibly bf16-rounded) inputs.
  auto math = inner_attention(q.to(torch::kFloat32), kk.to(torch::kFloat32), v.to(torch::kFloat32), scale,
                              biased ? bias.to(torch::kFloat32) : bias, Backend::kMath, nullptr);
  auto sdpa = inner_attention(q, kk, v, scale, bias, Backend::kSdpa, nullptr);
  CHECK(sdpa.sizes() == math.sizes());
  CHECK_THAT(sdpa.to(torch::kFloat32), AllClose(math, dtype == torch::kBFloat16 ? 2e-2 : 2e-5));
  if (!biased && t == s) {
    const std::string kernel = sdpa_kernel(2, h, t, e, f, false, dtype, kCuda);
    INFO("kernel " << kernel);
    CHECK(kernel.rfind("math", 0) != 0);  // a fused kernel, never math
  }
}
