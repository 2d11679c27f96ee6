// The decoder-only transformer LM: token embedding, n_layers pre-norm blocks
// (Norm -> Attention -> Norm -> MLP), final norm, LM head (optionally tied).
// Attention and position encoding come from their registries by config name.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "config/run_config.h"
#include "model/attention/attention.h"
#include "model/layers.h"

namespace attnlab::model {

class KvCache;  // model/kv_cache.h

// One pre-norm block: x + attn(norm(x)), then + mlp(norm(.)).
class BlockImpl : public torch::nn::Module {
 public:
  // reads_shared: the block's attention reads its model.kv_share group's state.
  BlockImpl(const ModelConfig& config, int64_t d_ff, bool reads_shared = false);
  torch::Tensor forward(const torch::Tensor& x_BTD, AttnContext& ctx);

  Norm norm1{nullptr}, norm2{nullptr};
  AttentionPtr attn;
  Mlp mlp{nullptr};
};
TORCH_MODULE(Block);

class TransformerLMImpl : public torch::nn::Module {
 public:
  explicit TransformerLMImpl(const ModelConfig& config);

  // tokens_BT: int64 token ids. Returns logits_BTV (float32, or the autocast dtype).
  torch::Tensor forward(const torch::Tensor& tokens_BT);

  // Incremental forward: the T tokens sit at positions cache.length() ..
  // cache.length()+T-1; each layer reads and extends its part of `cache`.
  torch::Tensor forward(const torch::Tensor& tokens_BT, KvCache& cache);

  const ModelConfig& config() const { return config_; }

  // Total trainable parameters, and those inside attention blocks.
  int64_t n_params() const;
  int64_t n_params_attention() const;

  // A cache for this model's layers, in attention.cache_dtype unless given
  // (a plain dtype converts to its format), on the model's device. Allocate it
  // after set_decode: layouts follow the mode.
  KvCache make_cache(int64_t batch, int64_t max_len) const;
  KvCache make_cache(int64_t batch, int64_t max_len, const CacheFormat& format) const;
  std::vector<CacheLayout> cache_layouts() const;
  // Per token, summed over layers (the run file's /model kv_* attributes);
  // bytes in attention.cache_dtype unless given, quantization scales included.
  int64_t kv_elements_per_token() const;
  int64_t kv_bytes_per_token() const;
  int64_t kv_bytes_per_token(const CacheFormat& format) const;

  // MLA: switch naive/absorbed decoding without touching weights. A no-op
  // for grouped attention; absorbed with coupled RoPE is a UserError.
  void set_decode(DecodeMode mode);
  // Inner kernel for every layer (math is the reference; auto = the config's).
  void set_backend(Backend backend) { backend_ = backend; }
  // The kernel the last layer ran in the most recent forward.
  InnerPath last_path() const { return last_path_; }

  int64_t d_ff() const { return d_ff_; }  // after model.match_params
  const std::vector<Block>& blocks() const { return blocks_; }
  const Position& position() const { return *position_; }

 private:
  torch::Tensor run(const torch::Tensor& tokens_BT, KvCache* cache);

  ModelConfig config_;
  int64_t d_ff_ = 0;
  torch::nn::Embedding wte{nullptr};
  PositionPtr position_;
  std::vector<Block> blocks_;
  Norm norm_f{nullptr};
  torch::nn::Linear lm_head{nullptr};  // untied only
  Backend backend_ = Backend::kAuto;
  InnerPath last_path_ = InnerPath::kNone;
};
TORCH_MODULE(TransformerLM);

// model.d_ff after model.match_params: widened or narrowed so that the model's
// total parameter count matches the MHA model of the same shape.
int64_t resolved_d_ff(const ModelConfig& config);

}  // namespace attnlab::model
