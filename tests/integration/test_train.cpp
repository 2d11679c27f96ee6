// End-to-end training on real text: the loss goes down, the run file records
// it, a resumed run equals an uninterrupted one, and re-runs are safe.
#include <catch2/catch.hpp>

#include "data/dataset.h"
#include "eval/evaluate.h"
#include "model/transformer.h"
#include "results/run_log.h"
#include "runtime/device.h"
#include "test_support.h"
#include "train/trainer.h"

using namespace attnlab;
using attnlab::test::TempDir;

namespace {

// A CPU-sized run on the King James Bible (byte tokens), prepared into `root`.
config::Composed tiny_run(const std::filesystem::path& root, int64_t steps) {
  config::Composed c;
  RunConfig& r = c.run;
  r.seed = 7;
  r.data.kind = "kjv";
  r.data.dir = (root / "data").string();
  r.model.n_layers = 2;
  r.model.d_model = 64;
  r.model.n_heads = 4;
  r.model.max_seq_len = 64;
  r.train.steps = steps;
  r.train.batch_size = 8;
  r.train.seq_len = 64;
  r.train.eval_every = 10;
  r.train.eval_batches = 4;
  r.train.log_every = 5;
  r.train.device = "cpu";
  r.train.threads = 1;  // one thread: bitwise-reproducible reductions for the resume test
  r.optim.lr = 3e-3;
  r.optim.min_lr = 3e-4;
  r.optim.warmup_steps = 5;
  c.resolved_yaml = "# test config, steps=" + std::to_string(steps) + "\n";
  c.overrides_yaml = "[]\n";
  return c;
}

train::TrainOutcome run(const config::Composed& c, const std::filesystem::path& dir, int64_t stop_after = 0) {
  return train::train(train::TrainRequest{c, dir, false, stop_after, false});
}

}  // namespace

TEST_CASE("50 steps on the KJV lower validation loss by more than 1.5 nats", "[train][integration]") {
  TempDir tmp;
  auto c = tiny_run(tmp.path, 50);

  // The untrained model's loss, on the same validation windows the trainer uses.
  seed_everything(c.run.seed);
  auto dataset = data::load(c.run.data);
  auto model_cfg = c.run.model;
  model_cfg.vocab_size = dataset.tokenizer->vocab_size();
  model::TransformerLM untrained(model_cfg);
  auto val = data::validation_batches(dataset.val, c.run.train.eval_batches, c.run.train.batch_size,
                                      c.run.train.seq_len);
  const double initial = eval::evaluate(untrained, val, torch::kCPU, torch::kFloat32, *dataset.tokenizer).loss;
  CHECK(initial > 5.0);  // about ln(256) = 5.55 for a fresh byte-level model

  auto outcome = run(c, tmp.path / "run");
  REQUIRE(outcome.status == "complete");
  CHECK(outcome.steps == 50);
  INFO("initial val loss " << initial << ", final " << outcome.final_val_loss);
  CHECK(initial - outcome.final_val_loss > 1.5);

  // The run file says the same.
  auto log = results::RunLog::load(tmp.path / "run" / "run.h5");
  CHECK(std::get<std::string>(*log.attr("/", "status")) == "complete");
  CHECK(std::get<int64_t>(*log.attr("/", "status_step")) == 50);
  CHECK(std::get<double>(*log.attr("/summary", "final_val_ppl")) == Approx(outcome.final_val_ppl));
  CHECK(log.column("train", "loss").size() == 10);         // every 5th step
  CHECK(log.column("eval", "val_loss").size() == 5);       // every 10th step
  CHECK(log.column("eval", "val_loss").back() == Approx(outcome.final_val_loss));
  CHECK(std::get<int64_t>(*log.attr("/model", "n_params")) > 0);
}

TEST_CASE("a run stopped and resumed from its checkpoint equals an uninterrupted run", "[train][integration]") {
  TempDir tmp;
  auto c = tiny_run(tmp.path, 20);
  auto straight = run(c, tmp.path / "straight");
  REQUIRE(straight.status == "complete");

  auto first = run(c, tmp.path / "resumed", /*stop_after=*/12);
  CHECK(first.status == "interrupted");
  CHECK(first.steps == 12);
  auto paused = results::RunLog::load(tmp.path / "resumed" / "run.h5");
  CHECK(std::get<std::string>(*paused.attr("/", "status")) == "interrupted");

  auto second = run(c, tmp.path / "resumed");
  REQUIRE(second.status == "complete");
  auto a = results::RunLog::load(tmp.path / "straight" / "run.h5");
  auto b = results::RunLog::load(tmp.path / "resumed" / "run.h5");
  CHECK(a.column("train", "step") == b.column("train", "step"));
  CHECK(a.column("train", "loss") == b.column("train", "loss"));
  CHECK(a.column("eval", "val_loss") == b.column("eval", "val_loss"));
  CHECK(second.final_val_loss == straight.final_val_loss);
}

TEST_CASE("re-running a complete run skips it and a different config in its directory is refused",
          "[train][integration]") {
  TempDir tmp;
  auto c = tiny_run(tmp.path, 5);
  auto dir = tmp.path / "run";
  REQUIRE(run(c, dir).status == "complete");
  auto before = std::filesystem::last_write_time(dir / "run.h5");

  auto again = run(c, dir);
  CHECK(again.status == "skipped");
  CHECK(again.final_val_ppl > 1.0);
  CHECK(std::filesystem::last_write_time(dir / "run.h5") == before);

  auto changed = c;
  changed.resolved_yaml = "# a different config\n";
  CHECK_THROWS_WITH(run(changed, dir), Catch::Contains("run.name") && Catch::Contains("different config"));
  CHECK(std::filesystem::last_write_time(dir / "run.h5") == before);
}
