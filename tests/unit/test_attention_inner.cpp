// The inner kernels: SDPA equals the math reference on random inputs (square,
// chunked, grouped, biased, different value width), masks align to the end,
// and the kernel that ran is reported.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <set>

#include "model/attention/inner.h"
#include "model/transformer.h"
#include "skip.h"
#include "tensor_match.h"

using namespace attnlab;
using namespace attnlab::model;
using attnlab::test::AllClose;
using attnlab::test::tiny_config;

TEST_CASE("causal masks align to the end: query t sees keys 0..S-T+t", "[attention]") {
  auto m = causal_mask(2, 5, torch::kCPU);
  auto expected = torch::tensor({{1, 1, 1, 1, 0}, {1, 1, 1, 1, 1}}, torch::kBool);
  CHECK(torch::equal(m, expected));
  CHECK(torch::equal(causal_mask(3, 3, torch::kCPU), torch::ones({3, 3}, torch::kBool).tril()));
}

TEST_CASE("SDPA equals the math reference on random inputs", "[attention]") {
  auto [h, k, t, s, f, biased] = GENERATE(table<int64_t, int64_t, int64_t, int64_t, int64_t, bool>({
      {4, 4, 6, 6, 8, false},   // training: square, causal
      {4, 2, 3, 9, 8, false},   // chunked prefill over a grouped cache
      {4, 1, 1, 7, 8, false},   // MQA decode
      {4, 4, 5, 5, 8, true},    // ALiBi-style bias
      {2, 2, 4, 6, 5, true},    // value width != key width (MLA naive)
  }));
  INFO("H=" << h << " K=" << k << " T=" << t << " S=" << s << " F=" << f << " bias=" << biased);
  torch::manual_seed(31);
  auto q = torch::randn({2, h, t, 8}), kk = torch::randn({2, k, s, 8}), v = torch::randn({2, k, s, f});
  torch::Tensor bias = biased ? torch::randn({h, t, s}) : torch::Tensor();
  InnerPath ran_math = InnerPath::kNone, ran_sdpa = InnerPath::kNone;
  auto a = inner_attention(q, kk, v, 0.3, bias, Backend::kMath, &ran_math);
  auto b = inner_attention(q, kk, v, 0.3, bias, Backend::kSdpa, &ran_sdpa);
  CHECK(ran_math == InnerPath::kMath);
  CHECK(ran_sdpa == InnerPath::kSdpa);
  CHECK(a.sizes() == torch::IntArrayRef({2, h, t, f}));
  CHECK_THAT(b, AllClose(a, 1e-5));
  // The last query sees every key: a top-left mask would hide S-T of them.
  if (t < s) {
    auto full = torch::softmax(torch::matmul(q, kk.repeat_interleave(h / k, 1).transpose(-1, -2)) * 0.3 +
                                   (biased ? bias : torch::zeros({h, t, s})),
                               -1);
    auto last = torch::matmul(full, v.repeat_interleave(h / k, 1)).select(2, t - 1);
    CHECK_THAT(a.select(2, t - 1), AllClose(last, 1e-5));
  }
}

TEST_CASE("the model reports its kernel and both kernels give the same logits", "[model][attention]") {
  auto kind = GENERATE(as<std::string>{}, "mha", "gqa", "mla");
  torch::manual_seed(32);
  TransformerLM lm(tiny_config(kind));
  auto tokens = torch::randint(50, {2, 9}, torch::kLong);
  lm->set_backend(Backend::kMath);
  auto math = lm->forward(tokens);
  CHECK(lm->last_path() == InnerPath::kMath);
  lm->set_backend(Backend::kSdpa);
  auto sdpa = lm->forward(tokens);
  CHECK(lm->last_path() == InnerPath::kSdpa);
  CHECK_THAT(sdpa, AllClose(math, 1e-5));
}

TEST_CASE("on CUDA the model matches the CPU", "[.gpu][model]") {
  if (!torch::cuda::is_available()) ATTNLAB_SKIP("no CUDA device");
  auto kind = GENERATE(as<std::string>{}, "mha", "gqa", "mla");
  torch::manual_seed(33);
  TransformerLM lm(tiny_config(kind));
  auto tokens = torch::randint(50, {2, 9}, torch::kLong);
  auto cpu = lm->forward(tokens);
  lm->to(torch::kCUDA);
  auto cache = lm->make_cache(2, 9);
  auto gpu = lm->forward(tokens.to(torch::kCUDA));
  CHECK_THAT(gpu.cpu(), AllClose(cpu, 1e-4));
  auto first = lm->forward(tokens.to(torch::kCUDA).narrow(1, 0, 5), cache);
  auto rest = lm->forward(tokens.to(torch::kCUDA).narrow(1, 5, 4), cache);
  CHECK_THAT(torch::cat({first, rest}, 1).cpu(), AllClose(cpu, 1e-4));
}

TEST_CASE("sdpa_kernel names the kernel SDPA dispatches to, and math configs say math", "[attention]") {
  const std::set<std::string> kernels = {"math", "flash", "efficient", "cudnn", "overrideable"};
  for (bool bias : {false, true})
    for (auto [qk, v] : {std::pair<int64_t, int64_t>{32, 32}, {48, 32}}) {
      INFO("bias " << bias << ", qk " << qk << ", v " << v);
      CHECK(kernels.contains(
          attnlab::model::sdpa_kernel(2, 4, 64, qk, v, bias, torch::kFloat32, torch::Device(torch::kCPU))));
    }
}

TEST_CASE("on CUDA, MLA's unequal query and value head dims get a fused kernel, not math", "[.gpu][attention]") {
  if (!torch::cuda::is_available()) ATTNLAB_SKIP("no CUDA device");
  const torch::Device cuda(torch::kCUDA);
  // B2's MLA shape: 12 heads, q/k 64 + 32 dims, v 64, T 1024, bf16.
  const std::string mla = attnlab::model::sdpa_kernel(8, 12, 1024, 96, 64, false, torch::kBFloat16, cuda);
  INFO("MLA: " << mla);
  CHECK(mla != "math");
  const std::string mha = attnlab::model::sdpa_kernel(8, 12, 1024, 64, 64, false, torch::kBFloat16, cuda);
  INFO("MHA: " << mha);
  CHECK(mha != "math");
}
