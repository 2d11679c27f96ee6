// The math and SDPA inner attention kernels (see inner.h).
#include "model/attention/inner.h"

#include <fmt/format.h>
#include <ATen/SDPBackend.h>
#include <torch/torch.h>

#include "core/error.h"
#include "runtime/autocast.h"

#include <limits>
#include <optional>

namespace attnlab::model {

Backend parse_backend(const std::string& name) {
  if (name == "auto") return Backend::kAuto;
  if (name == "math") return Backend::kMath;
  if (name == "sdpa") return Backend::kSdpa;
  throw_user_error("attention.backend", "", fmt::format("'{}' is not one of auto, math, sdpa", name));
}

DecodeMode parse_decode(const std::string& name) {
  if (name == "naive") return DecodeMode::kNaive;
  if (name == "absorbed") return DecodeMode::kAbsorbed;
  throw_user_error("attention.decode", "", fmt::format("'{}' is not one of naive, absorbed", name));
}

std::string path_name(InnerPath path) {
  switch (path) {
    case InnerPath::kMath: return "math";
    case InnerPath::kSdpa: return "sdpa";
    case InnerPath::kAbsorbed: return "absorbed";
    case InnerPath::kNone: break;
  }
  return "none";
}

torch::ScalarType accumulation_dtype(torch::ScalarType dtype) {
  return dtype == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

torch::Tensor causal_mask(int64_t t, int64_t s, torch::Device device) {
  return torch::ones({t, s}, torch::TensorOptions().dtype(torch::kBool).device(device)).tril(s - t);
}

namespace {

torch::Tensor math_attention(const torch::Tensor& q_BHTE, const torch::Tensor& k_BKSE,
                             const torch::Tensor& v_BKSF, double scale, const torch::Tensor& bias_HTS) {
  const int64_t h = q_BHTE.size(1), k = k_BKSE.size(1), t = q_BHTE.size(2), s = k_BKSE.size(2);
  const auto ct = accumulation_dtype(q_BHTE.scalar_type());
  AutocastOff fp32_reference;  // really in ct under bf16 autocast, then cast back below
  // Group the query heads by the kv head they read: [B, K, H/K * T, E], so
  // no copy of k or v is made for GQA/MQA.
  auto q = q_BHTE.to(ct).reshape({q_BHTE.size(0), k, (h / k) * t, q_BHTE.size(3)});
  auto scores = torch::matmul(q, k_BKSE.to(ct).transpose(-1, -2)).mul_(scale);
  scores = scores.view({q_BHTE.size(0), h, t, s});
  if (bias_HTS.defined()) scores = scores + bias_HTS.to(ct);
  scores = scores.masked_fill(causal_mask(t, s, q_BHTE.device()).logical_not(), -std::numeric_limits<double>::infinity());
  auto p = torch::softmax(scores, -1).view({q_BHTE.size(0), k, (h / k) * t, s});
  auto o = torch::matmul(p, v_BKSF.to(ct));
  return o.view({q_BHTE.size(0), h, t, v_BKSF.size(3)}).to(q_BHTE.scalar_type());
}

// True where causal SDPA (training, a whole prefill) would run math only
// because the value width is narrower than the query/key width, and a fused
// kernel takes the same call with equal widths. Never on the CPU, whose
// fused kernel takes unequal widths.
bool pads_values(const torch::Tensor& q, const torch::Tensor& v) {
  if (!q.is_cuda() || v.size(-1) >= q.size(-1)) return false;
  const auto math = static_cast<int64_t>(at::SDPBackend::math);
  if (at::_fused_sdp_choice(q, q, v, {}, 0.0, /*is_causal=*/true) != math) return false;
  return at::_fused_sdp_choice(q, q, q, {}, 0.0, /*is_causal=*/true) != math;
}

torch::Tensor sdpa_attention(const torch::Tensor& q_BHTE, const torch::Tensor& k_BKSE,
                             const torch::Tensor& v_BKSF, double scale, const torch::Tensor& bias_HTS) {
  const int64_t h = q_BHTE.size(1), k = k_BKSE.size(1), t = q_BHTE.size(2), s = k_BKSE.size(2);
  auto kk = k_BKSE.to(q_BHTE.scalar_type());
  auto vv = v_BKSF.to(q_BHTE.scalar_type());
  if (k != h) {  // grouped heads: expand is a view, repeat_interleave semantics via reshape
    kk = kk.unsqueeze(2).expand({kk.size(0), k, h / k, s, kk.size(3)}).reshape({kk.size(0), h, s, kk.size(3)});
    vv = vv.unsqueeze(2).expand({vv.size(0), k, h / k, s, vv.size(3)}).reshape({vv.size(0), h, s, vv.size(3)});
  }
  // MLA's value heads are narrower than its query/key heads (F < E), and a
  // fused CUDA kernel may refuse unequal widths; where SDPA would then fall
  // back to math, the values are zero-padded to E and the output cut back to
  // F (zero columns add nothing to the weighted sum).
  const int64_t f = vv.size(3);
  if (!bias_HTS.defined() && t == s && pads_values(q_BHTE, vv)) {
    vv = torch::constant_pad_nd(vv, {0, q_BHTE.size(3) - f});
    return sdpa_attention(q_BHTE, kk, vv, scale, bias_HTS).narrow(3, 0, f);
  }
  if (!bias_HTS.defined() && t == s)
    return at::scaled_dot_product_attention(q_BHTE, kk, vv, {}, 0.0, /*is_causal=*/true, scale);
  // SDPA's is_causal aligns to the top-left, wrong for T < S: pass the
  // end-aligned mask explicitly (as an additive float mask with a bias).
  torch::Tensor mask = causal_mask(t, s, q_BHTE.device());
  if (bias_HTS.defined()) {
    auto neg = torch::full({}, -std::numeric_limits<double>::infinity(), bias_HTS.options());
    mask = torch::where(mask, bias_HTS, neg).to(q_BHTE.scalar_type()).unsqueeze(0);
  }
  return at::scaled_dot_product_attention(q_BHTE, kk, vv, mask, 0.0, false, scale);
}

}  // namespace

std::string sdpa_kernel(int64_t batch, int64_t heads, int64_t t, int64_t qk_dim, int64_t v_dim, bool with_bias,
                        torch::ScalarType dtype, torch::Device device) {
  const auto options = torch::TensorOptions().dtype(dtype).device(device);
  const auto q = torch::empty({batch, heads, t, qk_dim}, options);
  const auto v = torch::empty({batch, heads, t, v_dim}, options);
  std::optional<torch::Tensor> mask;
  if (with_bias) mask = torch::zeros({1, heads, t, t}, options);
  // sdp::SDPBackend's order (ATen/native/transformers/sdp_utils_cpp.h).
  static const char* const kNames[] = {"math", "flash", "efficient", "cudnn", "overrideable"};
  const bool padded = !with_bias && pads_values(q, v);
  const int64_t choice = at::_fused_sdp_choice(q, q, padded ? q : v, mask, 0.0, /*is_causal=*/!with_bias);
  const std::string name = choice >= 0 && choice < static_cast<int64_t>(std::size(kNames))
                               ? kNames[choice]
                               : fmt::format("unknown ({})", choice);
  return padded ? name + " (values padded)" : name;
}

torch::Tensor inner_attention(const torch::Tensor& q_BHTE, const torch::Tensor& k_BKSE,
                              const torch::Tensor& v_BKSF, double scale, const torch::Tensor& bias_HTS,
                              Backend backend, InnerPath* ran) {
  if (q_BHTE.size(1) % k_BKSE.size(1) != 0)
    throw Error(fmt::format("attention: {} query heads do not group over {} kv heads", q_BHTE.size(1), k_BKSE.size(1)));
  // SDPA computes in the input dtype; with a reduced-precision cache (bf16
  // k/v under an fp32 model) it is still exact to the cached values.
  if (backend == Backend::kMath) {
    if (ran) *ran = InnerPath::kMath;
    return math_attention(q_BHTE, k_BKSE, v_BKSF, scale, bias_HTS);
  }
  if (ran) *ran = InnerPath::kSdpa;
  return sdpa_attention(q_BHTE, k_BKSE, v_BKSF, scale, bias_HTS);
}

}  // namespace attnlab::model
