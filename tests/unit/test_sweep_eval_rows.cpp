// How a sweep reads a run's evaluation rows: a row counts as the run's own
// evaluation only in the trained position scaling and KV-cache format; rows
// written before the cache format was recorded count as trained.
#include <catch2/catch.hpp>

#include "results/run_log.h"
#include "sweep/eval_rows.h"
#include "temp_dir.h"

using attnlab::results::RunLog;
using attnlab::test::TempDir;

TEST_CASE("eval rows through another cache format are not the run's own evaluation", "[sweep][quant]") {
  TempDir dir;
  attnlab::test::write_bytes(dir.path / "config.yaml",
                             "data:\n  kind: kjv\nattention:\n  kind: mha\n  cache_dtype: bf16\n"
                             "position:\n  kind: rope\n  theta: 10000.0\n  scaling:\n    kind: none\n    factor: 1.0\n");
  RunLog log(dir.path / "run.h5");
  // Codes as `attnlab eval` writes them: cache_dtype 1 = bf16 (trained), 3 = int8.
  for (double cache : {1.0, 3.0})
    log.append("eval/context", {{"context", 128}, {"ppl", 5.0 + cache}, {"decode", 0}, {"scaling_kind", 0},
                                {"scaling_factor", 1}, {"rope_theta", 10000}, {"cache_dtype", cache}});
  log.set_attr("/eval/context", "decode_codes", std::string("0=full, 1=naive, 2=absorbed"));
  log.set_attr("/eval/context", "scaling_kind_codes", std::string("0=none, 1=linear, 2=ntk, 3=yarn"));
  log.set_attr("/eval/context", "cache_dtype_codes", std::string("0=fp32, 1=bf16, 2=fp16, 3=int8, 4=fp8_e4m3"));
  const auto evals = attnlab::sweep::read_evaluations(log, dir.path);
  REQUIRE(evals.context.size() == 2);
  CHECK(evals.context[0].as_trained);
  CHECK_FALSE(evals.context[1].as_trained);

  // A file from before the column existed: its rows are as trained.
  RunLog old(dir.path / "old.h5");
  old.append("eval/context", {{"context", 128}, {"ppl", 5.0}, {"decode", 0}, {"scaling_kind", 0},
                              {"scaling_factor", 1}, {"rope_theta", 10000}});
  old.set_attr("/eval/context", "scaling_kind_codes", std::string("0=none, 1=linear, 2=ntk, 3=yarn"));
  const auto before = attnlab::sweep::read_evaluations(old, dir.path);
  REQUIRE(before.context.size() == 1);
  CHECK(before.context[0].as_trained);
}
