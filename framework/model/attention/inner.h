// Inner attention: softmax(q k^T * scale + bias + causal) v. The math path is
// the reference (fp32 softmax and accumulation); SDPA is the fast path and is
// tested against it. Causal masks align to the end: query t (of T) sees keys
// 0 .. S-T+t, so chunked prefill at a non-zero start is right.
#pragma once

#include "model/attention/attention.h"

namespace attnlab::model {

// q_BHTE, k_BKSE, v_BKSF with H a multiple of K (grouped heads share k/v:
// head h reads kv head h / (H/K)). bias_HTS: additive, may be undefined.
// Returns o_BHTF in q's dtype and records the kernel in *ran.
torch::Tensor inner_attention(const torch::Tensor& q_BHTE, const torch::Tensor& k_BKSE,
                              const torch::Tensor& v_BKSF, double scale, const torch::Tensor& bias_HTS,
                              Backend backend, InnerPath* ran);

// [T, S] boolean, true where query t may see key s (s <= t + S - T).
torch::Tensor causal_mask(int64_t t, int64_t s, torch::Device device);

// The kernel SDPA dispatches to for a training forward of this shape
// (at::_fused_sdp_choice): "math", "flash", "efficient", "cudnn" or
// "overrideable". q and k have qk_dim per head, v has v_dim (MLA's differ);
// with_bias: an additive float mask (ALiBi) instead of is_causal.
std::string sdpa_kernel(int64_t batch, int64_t heads, int64_t t, int64_t qk_dim, int64_t v_dim, bool with_bias,
                        torch::ScalarType dtype, torch::Device device);

// The dtype attention accumulates in: fp64 stays fp64, everything else fp32.
torch::ScalarType accumulation_dtype(torch::ScalarType dtype);

}  // namespace attnlab::model
