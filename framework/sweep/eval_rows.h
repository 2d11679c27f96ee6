// A run's /eval/context rows as a sweep reads them: which were evaluated the
// way the run was trained (its own position scaling and rotary base), and
// through which path (the full forward, or MLA's cached naive or absorbed
// decode). Rows evaluated with another scaling (`attnlab eval RUN
// position.scaling.kind=yarn ...`) are separate experiments: they are listed
// with as_trained false, and so are rows scored through another KV-cache
// format (`attnlab eval RUN attention.cache_dtype=int8`). Recall rows
// (/eval/recall) likewise.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "results/run_log.h"
#include "sweep/manifest.h"

namespace attnlab::sweep {

struct ContextRow {
  int64_t context = 0;
  double ppl = 0.0;
  std::string decode;       // full, naive or absorbed
  bool as_trained = false;  // the run's own position settings and cache format
};

struct RecallRow {
  int64_t context = 0;
  double depth = 0.0;       // passkey needle depth; -1 for MQAR
  double accuracy = 0.0;    // share of trials with every answer token right
  std::string decode;
  bool as_trained = false;
};

struct Evaluations {
  bool synthetic = false;            // a recall-task run: no text to score, only /eval/recall
  std::vector<ContextRow> context;   // /eval/context, in file order
  std::vector<RecallRow> recall;     // /eval/recall, in file order

  // Whether the rows `plan` asks for are all there, evaluated as trained: at
  // each context length a full-forward row (a recall row for a synthetic
  // run), one per decode mode, and recall rows when it asks for recall.
  bool covers(const EvalPlan& plan) const;
};

// `run_dir` holds the run's config.yaml (the trained settings).
Evaluations read_evaluations(const results::RunLog& log, const std::filesystem::path& run_dir);

}  // namespace attnlab::sweep
