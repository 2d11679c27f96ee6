// KV cache storage and its byte accounting (see kv_cache.h).
#include "model/kv_cache.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include "core/error.h"

namespace attnlab::model {

int64_t CachePart::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t CachePart::vectors() const {
  if (shape.empty()) return 0;  // no last dim to scale along (LayerCache refuses it when quantized)
  int64_t n = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) n *= shape[i];
  return n;
}

int64_t CacheLayout::elements_per_token() const {
  int64_t n = 0;
  for (const auto& p : parts) n += p.elements();
  return n;
}

int64_t CacheLayout::vectors_per_token() const {
  int64_t n = 0;
  for (const auto& p : parts) n += p.vectors();
  return n;
}

int64_t CacheLayout::bytes_per_token(const CacheFormat& format) const {
  return elements_per_token() * format.storage_bytes() + scale_bytes_per_token(format);
}

int64_t CacheLayout::scale_bytes_per_token(const CacheFormat& format) const {
  return vectors_per_token() * format.scale_bytes();
}

std::string CacheLayout::describe() const {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += " + ";
    out += fmt::format("{}[{}]", p.name, fmt::join(p.shape, ","));
  }
  return out.empty() ? "(nothing)" : out;
}

LayerCache::LayerCache(CacheLayout layout, int64_t batch, int64_t max_len, const CacheFormat& format,
                       torch::Device device)
    : layout_(std::move(layout)), batch_(batch), max_len_(max_len), format_(format) {
  for (const auto& p : layout_.parts) {
    std::vector<int64_t> shape{batch, max_len};
    shape.insert(shape.end(), p.shape.begin(), p.shape.end());
    storage_.push_back(torch::zeros(shape, torch::TensorOptions().dtype(format_.storage).device(device)));
    if (format_.scaled) {
      // A scale per vector along the part's last dim; a part without dims has
      // no vector to scale (no layout declares one).
      if (p.shape.empty())
        throw Error(fmt::format("cache part '{}' has no dims: a {} cache scales vectors along the last dim", p.name,
                                format_.name));
      shape.pop_back();
      scales_.push_back(torch::ones(shape, torch::TensorOptions().dtype(format_.scale_dtype).device(device)));
    }
  }
}

std::vector<torch::Tensor> LayerCache::append(const std::vector<torch::Tensor>& new_parts) {
  if (new_parts.size() != storage_.size())
    throw Error(fmt::format("cache append: {} parts given, layout {} has {}", new_parts.size(),
                            layout_.describe(), storage_.size()));
  const int64_t t = new_parts.front().dim() >= 2 ? new_parts.front().size(1) : 0;
  // copy_ would broadcast a [B, T, 1, E] part into k[K, E] without a word, so
  // every part must be exactly [B, T, shape...].
  for (size_t i = 0; i < storage_.size(); ++i) {
    const auto& part = layout_.parts[i];
    std::vector<int64_t> expected{batch_, t};
    expected.insert(expected.end(), part.shape.begin(), part.shape.end());
    if (new_parts[i].sizes() != c10::IntArrayRef(expected))
      throw Error(fmt::format("cache append: part '{}' must be [{}] (batch, new tokens, {}[{}]), got [{}]", part.name,
                              fmt::join(expected, ","), part.name, fmt::join(part.shape, ","),
                              fmt::join(new_parts[i].sizes(), ",")));
  }
  if (length_ + t > max_len_)
    throw UserError(fmt::format("KV cache full: {} cached + {} new tokens exceed its max length {}",
                                length_, t, max_len_));
  std::vector<torch::Tensor> views;
  for (size_t i = 0; i < storage_.size(); ++i) {
    if (!format_.scaled) {
      storage_[i].narrow(1, length_, t).copy_(new_parts[i]);
      views.push_back(storage_[i].narrow(1, 0, length_ + t));
      continue;
    }
    // Quantize only the new tokens (their scales are theirs alone), then read
    // everything back dequantized: no kernel here consumes int8 or fp8.
    const auto q = quantize(new_parts[i], format_);
    storage_[i].narrow(1, length_, t).copy_(q.values);
    scales_[i].narrow(1, length_, t).copy_(q.scales);
    views.push_back(dequantize(storage_[i].narrow(1, 0, length_ + t), scales_[i].narrow(1, 0, length_ + t),
                               new_parts[i].scalar_type()));
  }
  length_ += t;
  return views;
}

int64_t LayerCache::bytes() const {
  int64_t n = 0;
  for (const auto& s : storage_) n += s.numel() * static_cast<int64_t>(s.element_size());
  for (const auto& s : scales_) n += s.numel() * static_cast<int64_t>(s.element_size());
  return n;
}

KvCache::KvCache(const std::vector<CacheLayout>& layouts, int64_t batch, int64_t max_len,
                 const CacheFormat& format, torch::Device device) {
  layers_.reserve(layouts.size());
  for (const auto& l : layouts) layers_.emplace_back(l, batch, max_len, format, device);
}

int64_t KvCache::length() const { return layers_.empty() ? 0 : layers_.front().length(); }
int64_t KvCache::max_length() const { return layers_.empty() ? 0 : layers_.front().max_length(); }

int64_t KvCache::bytes() const {
  int64_t n = 0;
  for (const auto& l : layers_) n += l.bytes();
  return n;
}

}  // namespace attnlab::model
