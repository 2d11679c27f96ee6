// Integrity: run.h5 lists the run's checkpoints with their sha256. A
// checkpoint garbled in place is caught on resume and the run falls back to
// the previous verified one (or to step 0), recording an event, and still
// ends bit for bit equal to an uninterrupted run; eval skips it too.
#include <catch2/catch.hpp>

#include <cstdint>

#include "results/run_log.h"
#include "run_compare.h"
#include "test_support.h"

using attnlab::results::RunLog;
using attnlab::testing::differences;
using attnlab::testing::run_cli;
using attnlab::testing::text_corpus;
using attnlab::test::read_bytes;
using attnlab::test::TempDir;
using attnlab::test::write_bytes;
namespace fs = std::filesystem;

namespace {

std::string args_for(const TempDir& tmp, int keep) {
  return "train run.name=r run.root=" + (tmp.path / "runs").string() +
         text_corpus(tmp.path, "In the beginning was the Word ", 500) +
         " model=tiny model.max_seq_len=32 train.seq_len=32 train.batch_size=4 train.device=cpu train.threads=1"
         " train.steps=16 train.checkpoint_every=4 train.eval_every=4 train.eval_batches=2 train.keep_checkpoints=" +
         std::to_string(keep);
}

// Flips bytes in the middle of a file, keeping its size: damage a size check cannot see.
void garble(const fs::path& file) {
  std::string bytes = read_bytes(file);
  REQUIRE(bytes.size() > 4096);
  for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 64; ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0xff);
  write_bytes(file, bytes);
}

bool has_event(const RunLog& log, const std::string& kind, int64_t step, const std::string& text) {
  for (const auto& e : log.events())
    if (e.kind == kind && e.step == step && e.message.find(text) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("the comparison of run files sees a single flipped bit", "[reliability]") {
  RunLog a("a.h5"), b("b.h5");
  a.append("train", {{"step", 1}, {"loss", 2.5}});
  b.append("train", {{"step", 1}, {"loss", std::nextafter(2.5, 3.0)}});
  CHECK(differences(a, a).empty());
  CHECK(differences(a, b) == std::vector<std::string>{"column train/loss"});
  b = a;
  b.set_attr("/summary", "final_val_ppl", 1.0);
  CHECK(differences(a, b) == std::vector<std::string>{"attribute /summary/final_val_ppl"});
  b = a;
  b.set_attr("/summary", "train_seconds", 1.0);  // a timing: may differ
  CHECK(differences(a, b).empty());
}

TEST_CASE("a garbled newest checkpoint falls back to the previous verified one, with an event",
          "[reliability][integration]") {
  TempDir tmp;  // one directory for both runs: the recorded config's paths agree
  const fs::path dir = tmp.path / "runs" / "r";
  REQUIRE(run_cli(args_for(tmp, 2)).exit_code == 0);
  const RunLog reference = RunLog::load(dir / "run.h5");
  fs::remove_all(dir);

  REQUIRE(run_cli(args_for(tmp, 2) + " --stop-after 8").exit_code == 130);
  REQUIRE(attnlab::testing::checkpoint_names(dir) == std::vector<std::string>{"step-0000004.pt", "step-0000008.pt"});
  garble(dir / "checkpoints" / "step-0000008.pt");

  const auto resumed = run_cli(args_for(tmp, 2));
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  const RunLog log = RunLog::load(dir / "run.h5");
  CHECK(has_event(log, "checkpoint_corrupt", 8, "step-0000008.pt does not match its recorded sha256"));
  CHECK(has_event(log, "resume", 4, "step-0000004.pt"));
  CHECK(differences(reference, log).empty());

  // eval takes the newest checkpoint that verifies: garble step 16, it evaluates step 12.
  garble(dir / "checkpoints" / "step-0000016.pt");
  const auto eval = run_cli("eval " + dir.string() + " --context 32");
  INFO(eval.output);
  REQUIRE(eval.exit_code == 0);
  const auto steps = RunLog::load(dir / "run.h5").column("eval/context", "step");
  REQUIRE(!steps.empty());
  CHECK(steps.back() == 12.0);
}

TEST_CASE("a garbled only checkpoint means training again from step 0, with an event", "[reliability][integration]") {
  TempDir tmp;  // one directory for both runs: the recorded config's paths agree
  const fs::path dir = tmp.path / "runs" / "r";
  REQUIRE(run_cli(args_for(tmp, 1)).exit_code == 0);
  const RunLog reference = RunLog::load(dir / "run.h5");
  fs::remove_all(dir);

  REQUIRE(run_cli(args_for(tmp, 1) + " --stop-after 8").exit_code == 130);
  REQUIRE(attnlab::testing::checkpoint_names(dir) == std::vector<std::string>{"step-0000008.pt"});
  garble(dir / "checkpoints" / "step-0000008.pt");
  const auto resumed = run_cli(args_for(tmp, 1));
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  const RunLog log = RunLog::load(dir / "run.h5");
  CHECK(has_event(log, "checkpoint_corrupt", 8, "step-0000008.pt"));
  CHECK(has_event(log, "resume", 0, "training again from step 0"));
  CHECK(differences(reference, log).empty());
}

TEST_CASE("a complete run re-run after a kill between its final commit and the prune removes the old checkpoint",
          "[reliability][integration]") {
  TempDir tmp;
  const std::string args = args_for(tmp, 2);
  REQUIRE(run_cli(args).exit_code == 0);
  const fs::path dir = tmp.path / "runs" / "r";
  const fs::path checkpoints = dir / "checkpoints";
  REQUIRE(fs::exists(checkpoints / "step-0000012.pt"));
  REQUIRE(fs::exists(checkpoints / "step-0000016.pt"));
  // What the kill leaves: run.h5 committed as complete, listing steps 12 and
  // 16, while step 8 (dropped from the list by that commit) is still on disk.
  fs::copy_file(checkpoints / "step-0000012.pt", checkpoints / "step-0000008.pt");
  const std::string record = read_bytes(dir / "run.h5");

  const auto again = run_cli(args);
  INFO(again.output);
  REQUIRE(again.exit_code == 0);
  CHECK_FALSE(fs::exists(checkpoints / "step-0000008.pt"));
  CHECK(fs::exists(checkpoints / "step-0000012.pt"));
  CHECK(fs::exists(checkpoints / "step-0000016.pt"));
  CHECK(read_bytes(dir / "run.h5") == record);  // the complete record is not touched
}
