// The decode-time KV cache, owned by whoever decodes (eval, generate, bench),
// never by the model. Each layer's storage is allocated from that layer's
// CacheLayout in a CacheFormat, so the analytic bytes per token and the bytes
// allocated agree, quantization scales included.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model/cache_format.h"

namespace attnlab::model {

// One named tensor the cache holds per token, e.g. k[K,E] or ckv[C].
struct CachePart {
  std::string name;
  std::vector<int64_t> shape;  // per token, per layer (no batch, no length)

  int64_t elements() const;
  // Vectors along the last dim a token holds: one scale each in a quantized
  // cache (k[K,E] -> K, ckv[C] -> 1, latent[L,C] -> L).
  int64_t vectors() const;
  bool operator==(const CachePart&) const = default;
};

// What one token costs one layer: its parts, in the order the attention writes them.
struct CacheLayout {
  std::vector<CachePart> parts;

  int64_t elements_per_token() const;
  int64_t vectors_per_token() const;
  // elements x the storage size + vectors x the scale size (0 for a plain format).
  int64_t bytes_per_token(const CacheFormat& format) const;
  int64_t scale_bytes_per_token(const CacheFormat& format) const;
  std::string describe() const;  // "k[4,16] + v[4,16]"
  bool operator==(const CacheLayout&) const = default;
};

// The cache of one layer: one [B, max_len, shape...] tensor per part in the
// format's storage dtype and, for a quantized format, one fp16 scale tensor
// [B, max_len, shape[:-1]...] per part.
class LayerCache {
 public:
  LayerCache(CacheLayout layout, int64_t batch, int64_t max_len, const CacheFormat& format,
             torch::Device device);

  // Stores T new tokens (part i is [B, T, shape_i...], in layout order, any
  // dtype), advances length() by T and returns [B, length(), shape_i...] of
  // everything cached so far. A plain format casts the parts to its dtype and
  // returns views of the storage. A quantized format quantizes the new tokens
  // (cache_format.h) and returns everything cached DEQUANTIZED into new tokens'
  // dtype: storage and bytes are real, attention reads dequantized copies (no
  // int8 kernels). A part of any other shape (broadcastable or not) is an Error naming it.
  std::vector<torch::Tensor> append(const std::vector<torch::Tensor>& new_parts);

  const CacheLayout& layout() const { return layout_; }
  int64_t length() const { return length_; }
  int64_t max_length() const { return max_len_; }
  int64_t batch() const { return batch_; }
  const CacheFormat& format() const { return format_; }
  int64_t bytes() const;  // bytes really allocated, scales included
  // The stored tensors of part i: [B, max_len, shape...] in the storage dtype,
  // and its scales [B, max_len, shape[:-1]...] (undefined for a plain format).
  const torch::Tensor& storage(size_t i) const { return storage_.at(i); }
  torch::Tensor scales(size_t i) const { return format_.scaled ? scales_.at(i) : torch::Tensor(); }

 private:
  CacheLayout layout_;
  int64_t batch_;
  int64_t max_len_;
  CacheFormat format_;
  int64_t length_ = 0;
  std::vector<torch::Tensor> storage_;  // per part: [B, max_len, shape...]
  std::vector<torch::Tensor> scales_;   // per part: [B, max_len, shape[:-1]...], quantized formats only
};

// The whole model's cache: one LayerCache per layer.
class KvCache {
 public:
  KvCache(const std::vector<CacheLayout>& layouts, int64_t batch, int64_t max_len,
          const CacheFormat& format, torch::Device device);

  int64_t n_layers() const { return static_cast<int64_t>(layers_.size()); }
  LayerCache& layer(int64_t i) { return layers_.at(static_cast<size_t>(i)); }
  const LayerCache& layer(int64_t i) const { return layers_.at(static_cast<size_t>(i)); }
  int64_t length() const;      // tokens cached (every layer holds the same number)
  int64_t max_length() const;
  int64_t bytes() const;       // sum over layers of the bytes really allocated, scales included

 private:
  std::vector<LayerCache> layers_;
};

}  // namespace attnlab::model
