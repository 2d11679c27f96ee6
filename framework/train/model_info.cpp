// /model attributes of the run file.
#include "train/model_info.h"

namespace attnlab::train {

void write_model_attrs(results::RunLog& log, model::TransformerLMImpl& model, const RunConfig& config) {
  log.set_attr("/model", "n_params", model.n_params());
  log.set_attr("/model", "n_params_attention", model.n_params_attention());
  log.set_attr("/model", "attention", config.model.attention.kind);
  log.set_attr("/model", "position", config.model.position.kind);
  log.set_attr("/model", "n_layers", config.model.n_layers);
  log.set_attr("/model", "d_model", config.model.d_model);
  log.set_attr("/model", "n_heads", config.model.n_heads);
}

}  // namespace attnlab::train
