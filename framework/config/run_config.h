// The typed, validated configuration of one run. config::compose() builds it
// from YAML and overrides; everything downstream (model, data, train, eval)
// reads only these structs, never YAML. Defaults here mirror configs/.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace attnlab {

struct RunSection {
  std::string name = "default";   // run directory name under root/
  std::string root = "results";   // results root; run dirs never leave it
};

struct RopeScalingConfig {
  std::string kind = "none";        // none | linear | ntk | yarn
  double factor = 1.0;              // context extension factor (s)
  int64_t original_max_len = 0;     // pre-extension context (0: model.max_seq_len)
  double beta_fast = 32.0;          // YaRN ramp bounds, in rotations over the original context
  double beta_slow = 1.0;
  double mscale = 1.0;              // YaRN attention temperature terms (DeepSeek's mscale)
  double mscale_all_dim = 0.0;
};

struct PositionConfig {
  std::string kind = "rope";        // none | learned | alibi | rope (registry key)
  double theta = 10000.0;           // RoPE base
  double fraction = 1.0;            // share of head dims that rotate (partial RoPE)
  std::string dims = "first";       // partial RoPE: first (NeoX/HF) | high | low | uniform (MHA2MLA); see rope.h
  RopeScalingConfig scaling;
};

// The attention block. `kind` names a registry entry (model/attention/
// registry.h); every other attention.<key> belongs to the variants that
// declare it there (its type, range, default and rules), and is stored here by
// name, so adding a variant never touches this struct.
struct AttentionConfig {
  std::string kind = "mha";             // registry key
  std::string cache_dtype = "fp32";     // fp32 | bf16 | fp16 | int8 | fp8_e4m3 (model/cache_format.h)
  std::string backend = "auto";         // inner attention: auto | math | sdpa
  std::map<std::string, int64_t> ints;        // the variants' integer options, by key
  std::map<std::string, std::string> words;   // the variants' enum options, by key

  // The value of a variant option: what was set, else the default its
  // declaring variant gives (0 for integers means "derived by the variant").
  // A key no variant declares is an Error. Defined in config/attention_options.cpp.
  int64_t integer(const std::string& key) const;
  const std::string& word(const std::string& key) const;
  AttentionConfig& set(const std::string& key, int64_t value);
  AttentionConfig& set(const std::string& key, std::string value);
};

struct ModelConfig {
  int64_t n_layers = 2;
  int64_t d_model = 64;
  int64_t n_heads = 4;
  int64_t head_dim = 0;             // 0: d_model / n_heads
  int64_t d_ff = 0;                 // 0: 4 * d_model (gelu) or the SwiGLU 8/3 rule
  std::string mlp = "gelu";         // gelu | swiglu
  std::string norm = "rms";         // rms | layer
  bool tie_embeddings = true;
  int64_t max_seq_len = 256;
  bool match_params = false;        // size the MLP so every attention matches MHA's parameter count
  int64_t kv_share = 1;             // cross-layer KV sharing (CLA): every N consecutive layers share one cache
  int64_t vocab_size = 256;         // set from the tokenizer, not by the user
  AttentionConfig attention;
  PositionConfig position;

  int64_t resolved_head_dim() const { return head_dim > 0 ? head_dim : d_model / n_heads; }
};

struct DataConfig {
  std::string kind = "kjv";         // kjv | text | synthetic
  std::string path;                 // text: the UTF-8 file to train on
  std::string tokenizer = "byte";   // byte | char | sentencepiece
  int64_t vocab_size = 0;           // sentencepiece only; byte is 256
  double val_fraction = 0.05;       // tail of the corpus held out for validation
  std::string task = "mqar";        // synthetic only: mqar | passkey (data/synthetic.h)
  int64_t num_pairs = 8;            // mqar: key-value pairs per sequence
  int64_t num_queries = 8;          // mqar: keys queried again
  double power_a = 0.01;            // mqar: query-gap power law (Zoology's default)
  int64_t passkey_digits = 5;       // passkey: digits in the key
  std::string dir = "data";         // where prepared corpora live
};

struct OptimConfig {
  double lr = 1e-3;
  double min_lr = 1e-4;
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  int64_t warmup_steps = 10;
  std::string schedule = "cosine";  // cosine | wsd | constant
  double grad_clip = 1.0;           // 0 disables
  bool fused = true;                // ATen's fused AdamW step; false: torch::optim::AdamW, the reference
};

struct TrainConfig {
  int64_t steps = 100;              // 0 only with init_from: the converted model, evaluated
  int64_t batch_size = 8;
  int64_t seq_len = 64;
  int64_t grad_accum = 1;
  std::string device = "auto";      // auto | cpu | cuda
  std::string dtype = "fp32";       // fp32 | bf16 (autocast-style mixed precision)
  int64_t eval_every = 50;
  int64_t eval_batches = 8;
  int64_t checkpoint_every = 0;     // 0: only at the end
  int64_t keep_checkpoints = 2;
  int64_t log_every = 10;
  bool cuda_graph = false;
  int64_t threads = 0;              // CPU intra-op threads; 0 = LibTorch's default
  double peak_tflops = 0.0;         // device peak for MFU; 0: from the device table (none: MFU not reported)
  std::string init_from;            // a trained run directory whose weights, converted, start this run (attnlab convert)
};

struct RunConfig {
  int64_t seed = 0;                 // initialisation
  int64_t data_seed = -1;           // batch order; -1: the value of seed
  // The seed the Batcher draws with.
  int64_t resolved_data_seed() const { return data_seed >= 0 ? data_seed : seed; }
  RunSection run;
  ModelConfig model;                // model.attention / model.position mirror the top-level groups
  DataConfig data;
  OptimConfig optim;
  TrainConfig train;
};

}  // namespace attnlab
