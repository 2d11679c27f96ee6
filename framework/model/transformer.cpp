// The transformer LM (see transformer.h): blocks, tied head, scaled init, and
// the MLP sizing that makes every attention variant cost the same parameters.
#include "model/transformer.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>

#include "core/error.h"
#include "model/attention/registry.h"
#include "model/kv_cache.h"

namespace attnlab::model {

namespace {
int64_t count(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}
}  // namespace

int64_t resolved_d_ff(const ModelConfig& config) {
  int64_t d_ff = config.d_ff > 0 ? config.d_ff : default_d_ff(config.mlp, config.d_model);
  if (!config.match_params || (config.attention.kind == "mha" && config.kv_share == 1)) return d_ff;
  // Give the MLPs what the attention saves against MHA without sharing (or
  // take what it spends), by each variant's closed-form count over all
  // layers (a test holds it to the built model's), spread over the layers.
  ModelConfig mha = config;
  mha.attention = AttentionConfig{};
  mha.attention.kind = "mha";
  mha.kv_share = 1;
  const int64_t delta = attention_params(mha) - attention_params(config);
  const int64_t per_unit = mlp_params(config.mlp, config.d_model, 1) * config.n_layers;
  const double units = static_cast<double>(delta) / static_cast<double>(per_unit);
  d_ff += static_cast<int64_t>(std::llround(units));
  if (d_ff < 1)
    throw_user_error("model.match_params", "",
                     fmt::format("attention '{}' has {} more parameters than MHA, more than the MLPs hold; "
                                 "set model.match_params=false or shrink the attention",
                                 config.attention.kind, -delta));
  return d_ff;
}

BlockImpl::BlockImpl(const ModelConfig& config, int64_t d_ff, bool reads_shared) {
  norm1 = register_module("norm1", Norm(config.norm, config.d_model));
  attn = register_module("attn", make_attention(config, reads_shared));
  norm2 = register_module("norm2", Norm(config.norm, config.d_model));
  mlp = register_module("mlp", Mlp(config.mlp, config.d_model, d_ff));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x_BTD, AttnContext& ctx) {
  auto x = x_BTD + attn->forward(norm1(x_BTD), ctx);
  return x + mlp(norm2(x));
}

TransformerLMImpl::TransformerLMImpl(const ModelConfig& config) : config_(config) {
  d_ff_ = resolved_d_ff(config_);
  wte = register_module("wte", torch::nn::Embedding(config_.vocab_size, config_.d_model));
  position_ = register_module("position", make_position({config_.position, config_.d_model, config_.max_seq_len}));
  for (int64_t i = 0; i < config_.n_layers; ++i)
    blocks_.push_back(register_module(fmt::format("block{}", i), Block(config_, d_ff_, reads_shared(config_, i))));
  norm_f = register_module("norm_f", Norm(config_.norm, config_.d_model));
  if (!config_.tie_embeddings)
    lm_head = register_module("lm_head", torch::nn::Linear(torch::nn::LinearOptions(config_.d_model, config_.vocab_size).bias(false)));

  // GPT-2 init: N(0, 0.02) everywhere, and residual projections (attention
  // output, MLP down) scaled by 1/sqrt(2·n_layers) so the residual stream's
  // variance does not grow with depth. Norm gains stay 1, biases 0.
  torch::NoGradGuard no_grad;
  for (auto& p : named_parameters()) {
    if (p.value().dim() >= 2) p.value().normal_(0.0, 0.02);
  }
  const double residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(config_.n_layers));
  for (auto& block : blocks_) {
    block->attn->output_weight().normal_(0.0, residual_std);
    block->mlp->down->weight.normal_(0.0, residual_std);
  }
}

torch::Tensor TransformerLMImpl::run(const torch::Tensor& tokens_BT, KvCache* cache) {
  const int64_t start = cache ? cache->length() : 0;
  if (cache && cache->n_layers() != config_.n_layers)
    throw Error(fmt::format("cache has {} layers, the model {}", cache->n_layers(), config_.n_layers));
  // The token lookup as index_select, whose gradient is one index_add_: on
  // CUDA, nn::Embedding's backward sorts the indices and reads a count back
  // to the host (a sync in every training step) above 4096 tokens; on the CPU
  // both add the rows in the same order, so the result is the same.
  auto tokens_D = torch::index_select(wte->weight, 0, tokens_BT.reshape({-1}));
  auto x = position_->embed(tokens_D.view({tokens_BT.size(0), tokens_BT.size(1), -1}), start);
  // model.kv_share: one state per group of layers, handed from its first layer to the rest.
  const size_t share = static_cast<size_t>(config_.kv_share);
  std::vector<SharedKv> groups(share > 1 ? (blocks_.size() + share - 1) / share : 0);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    AttnContext ctx;
    ctx.start = start;
    ctx.position = position_.get();
    // A layer that caches nothing of its own (it reads its group's) gets no cache.
    LayerCache* layer_cache = cache ? &cache->layer(static_cast<int64_t>(i)) : nullptr;
    ctx.cache = layer_cache && !layer_cache->layout().parts.empty() ? layer_cache : nullptr;
    if (!groups.empty()) ctx.shared = &groups[i / share];
    ctx.backend = backend_;
    x = blocks_[i]->forward(x, ctx);
    last_path_ = ctx.ran;
  }
  x = norm_f(x);
  // Tied: the head is the embedding matrix, one tensor (not a copy).
  return config_.tie_embeddings ? torch::matmul(x, wte->weight.t()) : lm_head(x);
}

torch::Tensor TransformerLMImpl::forward(const torch::Tensor& tokens_BT) { return run(tokens_BT, nullptr); }

torch::Tensor TransformerLMImpl::forward(const torch::Tensor& tokens_BT, KvCache& cache) { return run(tokens_BT, &cache); }

int64_t TransformerLMImpl::n_params() const { return count(*this); }

int64_t TransformerLMImpl::n_params_attention() const {
  int64_t n = 0;
  for (const auto& b : blocks_) n += count(*b->attn);
  return n;
}

std::vector<CacheLayout> TransformerLMImpl::cache_layouts() const {
  std::vector<CacheLayout> layouts;
  for (const auto& b : blocks_) layouts.push_back(b->attn->cache_layout());
  return layouts;
}

int64_t TransformerLMImpl::kv_elements_per_token() const {
  int64_t n = 0;
  for (const auto& l : cache_layouts()) n += l.elements_per_token();
  return n;
}

int64_t TransformerLMImpl::kv_bytes_per_token() const {
  return kv_bytes_per_token(parse_cache_format(config_.attention.cache_dtype));
}

int64_t TransformerLMImpl::kv_bytes_per_token(const CacheFormat& format) const {
  // Per layer: a quantized format's scales depend on each layout's vectors.
  int64_t n = 0;
  for (const auto& l : cache_layouts()) n += l.bytes_per_token(format);
  return n;
}

KvCache TransformerLMImpl::make_cache(int64_t batch, int64_t max_len) const {
  return make_cache(batch, max_len, parse_cache_format(config_.attention.cache_dtype));
}

KvCache TransformerLMImpl::make_cache(int64_t batch, int64_t max_len, const CacheFormat& format) const {
  return KvCache(cache_layouts(), batch, max_len, format, wte->weight.device());
}

void TransformerLMImpl::set_decode(DecodeMode mode) {
  for (auto& b : blocks_) b->attn->set_decode(mode);
}

}  // namespace attnlab::model
