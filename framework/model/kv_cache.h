// The decode-time KV cache, owned by whoever decodes (eval, generate, bench),
// never by the model. Each layer's storage is allocated from that layer's
// CacheLayout, so the analytic bytes per token and the bytes allocated agree.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace attnlab::model {

// One named tensor the cache holds per token, e.g. k[K,E] or ckv[C].
struct CachePart {
  std::string name;
  std::vector<int64_t> shape;  // per token, per layer (no batch, no length)

  int64_t elements() const;
  bool operator==(const CachePart&) const = default;
};

// What one token costs one layer: its parts, in the order the attention writes them.
struct CacheLayout {
  std::vector<CachePart> parts;

  int64_t elements_per_token() const;
  int64_t bytes_per_token(torch::ScalarType dtype) const;
  std::string describe() const;  // "k[4,16] + v[4,16]"
  bool operator==(const CacheLayout&) const = default;
};

// The cache of one layer: one [B, max_len, shape...] tensor per part.
class LayerCache {
 public:
  LayerCache(CacheLayout layout, int64_t batch, int64_t max_len, torch::ScalarType dtype,
             torch::Device device);

  // Stores T new tokens (part i is [B, T, shape_i...], in layout order, any
  // dtype: it is cast to the cache dtype), advances length() by T and returns
  // views [B, length(), shape_i...] of everything cached so far. A part of any
  // other shape (broadcastable or not) is an Error naming it.
  std::vector<torch::Tensor> append(const std::vector<torch::Tensor>& new_parts);

  const CacheLayout& layout() const { return layout_; }
  int64_t length() const { return length_; }
  int64_t max_length() const { return max_len_; }
  int64_t batch() const { return batch_; }
  torch::ScalarType dtype() const { return dtype_; }
  int64_t bytes() const;  // bytes really allocated

 private:
  CacheLayout layout_;
  int64_t batch_;
  int64_t max_len_;
  torch::ScalarType dtype_;
  int64_t length_ = 0;
  std::vector<torch::Tensor> storage_;  // per part: [B, max_len, shape...]
};

// The whole model's cache: one LayerCache per layer.
class KvCache {
 public:
  KvCache(const std::vector<CacheLayout>& layouts, int64_t batch, int64_t max_len,
          torch::ScalarType dtype, torch::Device device);

  int64_t n_layers() const { return static_cast<int64_t>(layers_.size()); }
  LayerCache& layer(int64_t i) { return layers_.at(static_cast<size_t>(i)); }
  const LayerCache& layer(int64_t i) const { return layers_.at(static_cast<size_t>(i)); }
  int64_t length() const;      // tokens cached (every layer holds the same number)
  int64_t max_length() const;
  int64_t bytes() const;       // sum over layers of the bytes really allocated

 private:
  std::vector<LayerCache> layers_;
};

// "fp32" | "bf16" | "fp16" (attention.cache_dtype) to a scalar type; else a UserError.
torch::ScalarType parse_cache_dtype(const std::string& name);

}  // namespace attnlab::model
