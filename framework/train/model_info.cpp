// /model attributes of the run file.
#include "train/model_info.h"

#include "model/attention/inner.h"
#include "model/attention/registry.h"
#include "model/kv_cache.h"
#include "runtime/device.h"

namespace attnlab::train {

void write_model_attrs(results::RunLog& log, model::TransformerLMImpl& model, const RunConfig& config) {
  const auto& m = config.model;
  log.set_attr("/model", "n_params", model.n_params());
  log.set_attr("/model", "n_params_attention", model.n_params_attention());
  log.set_attr("/model", "attention", m.attention.kind);
  const auto& variant = model::attention_entry(m.attention.kind);
  log.set_attr("/model", "decode", variant.declares("decode") ? m.attention.word("decode") : std::string("naive"));
  log.set_attr("/model", "position", m.position.kind);
  log.set_attr("/model", "n_layers", m.n_layers);
  log.set_attr("/model", "d_model", m.d_model);
  log.set_attr("/model", "n_heads", m.n_heads);
  log.set_attr("/model", "d_ff", model.d_ff());

  // The cache the model's decode path really allocates (MLA: per decode mode),
  // summed over layers; per layer too, since plots compare variants per layer.
  // A quantized cache's bytes include its scales, which are also given apart.
  const auto format = model::parse_cache_format(m.attention.cache_dtype);
  const int64_t bytes = model.kv_bytes_per_token(format);
  int64_t scale_bytes = 0;
  for (const auto& l : model.cache_layouts()) scale_bytes += l.scale_bytes_per_token(format);
  log.set_attr("/model", "kv_elements_per_token", model.kv_elements_per_token());
  log.set_attr("/model", "kv_bytes_per_token", bytes);
  log.set_attr("/model", "kv_scale_bytes_per_token", scale_bytes);
  log.set_attr("/model", "kv_bytes_per_token_per_layer", m.n_layers > 0 ? bytes / m.n_layers : 0);
  log.set_attr("/model", "kv_parts_per_layer", model.cache_layouts().front().describe());
  log.set_attr("/model", "kv_dtype", format.name);
}

std::string attention_kernel(const RunConfig& config, const torch::Device& device, torch::ScalarType dtype) {
  const auto& m = config.model;
  if (m.attention.backend == "math") return "math";
  const auto dims = model::attention_entry(m.attention.kind).head_dims(m);
  return "sdpa/" + model::sdpa_kernel(config.train.batch_size, m.n_heads, config.train.seq_len, dims.qk, dims.v,
                                      m.position.kind == "alibi", dtype, device);
}

}  // namespace attnlab::train
