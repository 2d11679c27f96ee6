// `attnlab bench`: the benchmarks of ../shared/reference/BENCHMARKS.md on one
// composed config (a preset's shape plus the user's overrides).
//
//   train    B1, B2, B5: whole training steps (train::train_step, the
//            trainer's own step) on random byte tokens, never zeros.
//   decode   B3: one-token cached decode steps after a random prefill of
//            `context` tokens; bytes read per step (weights + cache) and GB/s.
//   kv       B4: the cache bytes really allocated per token against the
//            analytic layout, for every attention variant at the shape.
//
// Times are medians over `steps` after `warmup`, each step closed by a device
// synchronize before the host clock. The figures go to a table and, through
// write_rows(), to an HDF5 file that h5py reads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "config/run_config.h"

namespace attnlab::bench {

// A benchmark's shape as overrides (BENCHMARKS.md), under the user's own.
// Names: b1, b2, b3, b5 (b4 is `bench kv`). UserError naming --preset otherwise.
std::vector<std::string> preset_overrides(const std::string& preset);

struct Timing {
  double median_ms = 0.0, p10_ms = 0.0, p90_ms = 0.0;
  int64_t steps = 0, warmup = 0;
};

struct TrainFigures {
  Timing timing;
  double tokens_per_s = 0.0;
  double mfu = -1.0;              // -1: the device's peak is unknown (every CPU)
  double flops_per_token = 0.0;
  int64_t n_params = 0;
  std::string attention_kernel;   // train::attention_kernel(): "math" or "sdpa/<kernel SDPA picks>"
};

struct DecodeFigures {
  Timing timing;
  double tokens_per_s = 0.0;      // batch / step time
  double weight_bytes = 0.0;      // every parameter, read once per step
  double cache_bytes = 0.0;       // the cache read by a step at the measured length (mean over steps)
  double gb_per_s = 0.0;          // (weights + cache) / median step time
  int64_t n_params = 0;
};

struct KvFigures {
  std::string variant;            // attention.kind
  std::string label;              // as `attnlab kv` names the row: "gqa (K=2)", "mla absorbed"
  int64_t n_kv_heads = 0;         // attention.n_kv_heads where the variant has it
  // Per token, summed over layers, in the cache format:
  int64_t formula_bytes = 0;      // the variant's paper formula (AttentionVariant::cache_elements) times L and the storage size
  int64_t scale_bytes = 0;        // a quantized cache's fp16 scales, one per vector of each layer's layout (else 0)
  int64_t layout_bytes = 0;       // model.kv_bytes_per_token(): what the attention declares it caches, scales included
  double measured_bytes = 0.0;    // bytes of a real cache's tensors after a prefill of batch x length tokens, per token
};

TrainFigures bench_train(const RunConfig& cfg, int64_t steps, int64_t warmup);
DecodeFigures bench_decode(const RunConfig& cfg, int64_t context, int64_t batch, const std::string& decode,
                           int64_t steps, int64_t warmup);
// One row per attention variant at the config's shape (the config's own
// attention first), each with a real cache of `batch` x `length` tokens.
std::vector<KvFigures> bench_kv(const RunConfig& cfg, int64_t batch, int64_t length);

// Appends one row per benchmark run to `file` (series `name`, numbers only)
// and sets its text attributes; a file written on another device is refused
// (UserError naming `key`).
void write_rows(const std::filesystem::path& file, const std::string& key, const std::string& name,
                const std::vector<std::map<std::string, double>>& rows,
                const std::map<std::string, std::string>& attributes);

}  // namespace attnlab::bench
