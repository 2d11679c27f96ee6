// The small pieces of a transformer block: the norm (RMSNorm or LayerNorm,
// computed in fp32 for stability under bf16) and the MLP (GELU or SwiGLU).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <string>

namespace attnlab::model {

// kind "rms": x * rsqrt(mean(x^2) + eps) * w; "layer": standard LayerNorm with bias.
class NormImpl : public torch::nn::Module {
 public:
  NormImpl(const std::string& kind, int64_t dim, double eps = 1e-6);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  bool rms_;
  double eps_;
  torch::Tensor weight_, bias_;
};
TORCH_MODULE(Norm);

// gelu: down(gelu(up(x))); swiglu: down(silu(gate(x)) * up(x)). No biases.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(const std::string& kind, int64_t d_model, int64_t d_ff);
  torch::Tensor forward(const torch::Tensor& x_BTD);
  torch::nn::Linear down{nullptr};  // the residual projection (scaled init)

 private:
  bool swiglu_;
  torch::nn::Linear up{nullptr}, gate{nullptr};
};
TORCH_MODULE(Mlp);

// Parameters of one MLP: 2·D·F (gelu) or 3·D·F (swiglu).
int64_t mlp_params(const std::string& kind, int64_t d_model, int64_t d_ff);
// d_ff when model.d_ff = 0: 4·D for gelu, the SwiGLU 8/3·D rule rounded up to a multiple of 8.
int64_t default_d_ff(const std::string& kind, int64_t d_model);

}  // namespace attnlab::model
