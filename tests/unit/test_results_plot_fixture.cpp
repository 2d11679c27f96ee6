// Writes two small but complete run files for the scripts/plot.py ctest entry
// (directory from ATTNLAB_PLOT_FIXTURE_DIR, else a scratch directory), and
// checks they read back as written.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>

#include "results/run_log.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using attnlab::results::RunLog;

namespace {
void write_run(const fs::path& dir, const std::string& attention, int64_t kv_bytes, double quality, bool complete) {
  RunLog log(dir / "run.h5");
  log.set_attr("/", "status", std::string(complete ? "complete" : "running"));
  log.set_attr("/", "seed", int64_t{0});
  log.set_attr("/model", "attention", attention);
  log.set_attr("/model", "position", std::string("rope"));
  log.set_attr("/model", "kv_bytes_per_token", kv_bytes);
  for (int step = 0; step <= 200; step += 10) {
    double loss = 5.5 * std::exp(-step / 80.0) + quality;
    log.append("train", {{"step", step}, {"tokens", step * 2048.0}, {"loss", loss}, {"lr", 1e-3}});
    if (step % 50 == 0) {
      log.append("eval", {{"step", step}, {"tokens", step * 2048.0}, {"val_loss", loss + 0.1},
                          {"val_ppl", std::exp(loss + 0.1)}});
    }
  }
  if (complete) log.set_attr("/summary", "final_val_ppl", std::exp(log.column("eval", "val_loss").back()));
  log.add_event({0, "start", "plot fixture"});
  log.commit();
}
}  // namespace

TEST_CASE("write the plot fixture runs", "[results]") {
  attnlab::test::TempDir scratch;
  const char* env = std::getenv("ATTNLAB_PLOT_FIXTURE_DIR");
  fs::path dir = env != nullptr && *env != '\0' ? fs::path(env) : scratch.path;
  write_run(dir / "mha-s0", "mha", 512, 1.2, true);
  write_run(dir / "mqa-s0", "mqa", 128, 1.4, true);
  write_run(dir / "gqa-s0", "gqa", 256, 1.3, false);

  RunLog mqa = RunLog::load(dir / "mqa-s0" / "run.h5");
  CHECK(std::get<std::string>(*mqa.attr("/model", "attention")) == "mqa");
  CHECK(std::get<int64_t>(*mqa.attr("/model", "kv_bytes_per_token")) == 128);
  CHECK(mqa.column("train", "step").size() == 21);
  CHECK(mqa.column("eval", "val_ppl").size() == 5);
  CHECK(RunLog::load(dir / "gqa-s0" / "run.h5").attr("/summary", "final_val_ppl") == nullptr);
}
