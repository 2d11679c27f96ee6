// One training run, end to end: data, model, AdamW, schedule, evaluation,
// checkpoints and the run file. A run directory holds config.yaml,
// overrides.yaml, defaults.yaml, run.h5 and checkpoints/. Re-running the same
// config skips a complete run and resumes an unfinished one from its newest
// checkpoint; run.h5 always matches the last checkpoint or terminal state.
#pragma once

#include <filesystem>
#include <string>

#include "config/compose.h"
#include "data/dataset.h"
#include "model/transformer.h"

namespace attnlab::train {

struct TrainRequest {
  config::Composed composed;        // the validated config and its provenance
  std::filesystem::path run_dir;    // results/<run.name>[/<run id>]
  bool restart = false;             // discard an existing run in run_dir and start over
  int64_t stop_after = 0;           // > 0: checkpoint and stop after this many steps in this process
  bool show_progress = true;
};

struct TrainOutcome {
  std::string status;               // complete | diverged | interrupted | skipped
  int64_t steps = 0;                // optimizer steps completed
  double final_val_loss = 0.0;
  double final_val_ppl = 0.0;
  double ms_per_step = 0.0;         // median over this process's logged windows of the mean step time
  int signal = 0;                   // interrupted: the signal that stopped it (SIGINT, SIGTERM, SIGHUP)
  std::filesystem::path run_file;
};

// The model as a run starts it: initialised from `seed` alone, so changing
// data_seed never changes the initial weights.
model::TransformerLM init_model(const RunConfig& cfg, int64_t vocab_size);
// The training batch stream: ordered by data_seed alone (seed when -1).
data::Batcher training_batcher(const RunConfig& cfg, const data::TokenStore& train);

// Trains (or resumes, or skips) the run. UserError for bad input before
// anything is written; a crash mid-run marks run.h5 "failed" and rethrows.
TrainOutcome train(const TrainRequest& request);

}  // namespace attnlab::train
