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

#include <functional>
#include <memory>
#include <string>
#include <vector>

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

// Cross-layer KV sharing (model.kv_share = N, CLA): the first layer of each
// group of N computes its state, the per-token tensors its cache holds when
// it caches least (k and v; MLA's latent and rotary key; TPA's factors); the
// other layers of the group have no weights for it and read it from here.
struct SharedKv {
  std::vector<torch::Tensor> fresh;  // this call's T tokens, [B, T, shape...]
  std::vector<torch::Tensor> all;    // every visible token, [B, S, shape...] (== fresh without a cache)
};

struct AttnContext {
  int64_t start = 0;                    // position of the first of the T tokens
  const Position* position = nullptr;   // the model's encoding (never null inside a model)
  LayerCache* cache = nullptr;          // this layer's cache; null when training or when it caches nothing
  SharedKv* shared = nullptr;           // its group's state under model.kv_share > 1, else null
  Backend backend = Backend::kAuto;     // which inner kernel to use where shapes allow
  InnerPath ran = InnerPath::kNone;     // set by the attention: the kernel that ran
};

class Attention : public torch::nn::Module {
 public:
  // reads_shared: the layer is not the first of its model.kv_share group, so
  // it builds no weights for the state and reads the group's.
  explicit Attention(bool reads_shared = false) : reads_shared_(reads_shared) {}
  bool reads_shared() const { return reads_shared_; }

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

 protected:
  // This call's state, [B, T, shape...] per part: `compute()` in a layer that
  // owns it (which offers it to the rest of its group), the group's first
  // layer's in a layer that reads it.
  std::vector<torch::Tensor> fresh_state(AttnContext& ctx,
                                         const std::function<std::vector<torch::Tensor>()>& compute) const;
  // The state of every visible token, where the cache holds the state as it
  // is: an owning layer appends `fresh` to its cache (when it has one) and
  // offers the result; a reading layer takes its group's.
  std::vector<torch::Tensor> all_state(AttnContext& ctx, const std::vector<torch::Tensor>& fresh) const;

 private:
  bool reads_shared_ = false;
};

using AttentionPtr = std::shared_ptr<Attention>;

}  // namespace attnlab::model
