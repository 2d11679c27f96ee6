// Norms and MLPs (see layers.h).
#include "model/layers.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/error.h"

namespace attnlab::model {

NormImpl::NormImpl(const std::string& kind, int64_t dim, double eps) : rms_(kind == "rms"), eps_(eps) {
  if (kind != "rms" && kind != "layer")
    throw_user_error("model.norm", "", fmt::format("'{}' is not one of rms, layer", kind));
  weight_ = register_parameter("weight", torch::ones({dim}));
  if (!rms_) bias_ = register_parameter("bias", torch::zeros({dim}));
}

torch::Tensor NormImpl::forward(const torch::Tensor& x) {
  const auto ct = x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  auto xf = x.to(ct);
  torch::Tensor y;
  if (rms_) {
    y = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps_) * weight_.to(ct);
  } else {
    auto mean = xf.mean(-1, true);
    auto var = (xf - mean).pow(2).mean(-1, true);
    y = (xf - mean) * torch::rsqrt(var + eps_) * weight_.to(ct) + bias_.to(ct);
  }
  return y.to(x.scalar_type());
}

MlpImpl::MlpImpl(const std::string& kind, int64_t d_model, int64_t d_ff) : swiglu_(kind == "swiglu") {
  if (kind != "gelu" && kind != "swiglu")
    throw_user_error("model.mlp", "", fmt::format("'{}' is not one of gelu, swiglu", kind));
  if (d_ff < 1) throw_user_error("model.d_ff", "", fmt::format("the MLP width came out as {}; it must be positive", d_ff));
  auto linear = [](int64_t in, int64_t out) { return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)); };
  up = register_module("up", linear(d_model, d_ff));
  if (swiglu_) gate = register_module("gate", linear(d_model, d_ff));
  down = register_module("down", linear(d_ff, d_model));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x_BTD) {
  if (swiglu_) return down(torch::silu(gate(x_BTD)) * up(x_BTD));
  return down(torch::gelu(up(x_BTD)));
}

int64_t mlp_params(const std::string& kind, int64_t d_model, int64_t d_ff) {
  return (kind == "swiglu" ? 3 : 2) * d_model * d_ff;
}

int64_t default_d_ff(const std::string& kind, int64_t d_model) {
  if (kind == "swiglu") return ((8 * d_model / 3 + 7) / 8) * 8;
  return 4 * d_model;
}

}  // namespace attnlab::model
