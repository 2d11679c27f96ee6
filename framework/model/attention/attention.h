// The attention interface every variant implements, and the context a layer
// receives: where its tokens sit, the model's position encoding, its cache.
//
// Shape-suffix legend used across model/: B batch, T tokens (this call),
// S cached tokens (keys visible, S >= T), D model width, H query heads,
// K kv heads, E head dim (query/key), F value head dim, C latent dim (MLA's
// d_c), R rope dim (MLA's d_r), P rotary pairs, V vocabulary.
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <memory>
#include <string>

#include "config/run_config.h"
#include "model/kv_cache.h"
#include "model/position/position.h"

namespace attnlab::model {

// The inner attention kernels (inner.h): the plain reference and SDPA.
enum class Backend { kAuto, kMath, kSdpa };
enum class InnerPath { kNone, kMath, kSdpa, kAbsorbed };
Backend parse_backend(const std::string& name);  // auto | math | sdpa, else UserError
std::string path_name(InnerPath path);

// MLA's two decode paths; grouped attention has only one and ignores the choice.
enum class DecodeMode { kNaive, kAbsorbed };
DecodeMode parse_decode(const std::string& name);  // naive | absorbed, else UserError

struct AttnContext {
  int64_t start = 0;                    // position of the first of the T tokens
  const Position* position = nullptr;   // the model's encoding (never null inside a model)
  LayerCache* cache = nullptr;          // this layer's cache; null when training
  Backend backend = Backend::kAuto;     // which inner kernel to use where shapes allow
  InnerPath ran = InnerPath::kNone;     // set by the attention: the kernel that ran
};

class Attention : public torch::nn::Module {
 public:
  // x_BTD: the T tokens at positions ctx.start..; returns [B, T, D]. With a
  // cache, the layer appends its T tokens and attends over everything cached.
  virtual torch::Tensor forward(const torch::Tensor& x_BTD, AttnContext& ctx) = 0;
  // What one token costs in this layer's cache, for the current decode mode.
  virtual CacheLayout cache_layout() const = 0;
  // Switches the decode path without touching weights (MLA); a cache must be
  // allocated after the switch, because the layout follows the mode.
  virtual void set_decode(DecodeMode mode) { (void)mode; }
  virtual DecodeMode decode() const { return DecodeMode::kNaive; }
  // The parameters that are residual-stream outputs, for scaled init.
  virtual torch::Tensor output_weight() = 0;
};

using AttentionPtr = std::shared_ptr<Attention>;

}  // namespace attnlab::model
