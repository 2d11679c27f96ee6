// End-to-end training on real text: the loss goes down, the run file records
// it, a resumed run equals an uninterrupted one, and re-runs are safe.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>

#include "config/node.h"
#include "config/schema.h"
#include "data/dataset.h"
#include "eval/evaluate.h"
#include "model/attention/inner.h"
#include "model/transformer.h"
#include "results/run_log.h"
#include "runtime/device.h"
#include "../unit/tensor_match.h"
#include "test_support.h"
#include "train/optimizer.h"
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

// A run of a few steps on a small generated text file (no external data): a
// 1-layer model of width 32, byte tokens, one thread.
config::Composed text_run(const std::filesystem::path& root, int64_t steps) {
  const auto corpus = root / "corpus.txt";
  if (!std::filesystem::exists(corpus)) {
    std::ofstream out(corpus);
    for (int i = 0; i < 400; ++i) out << "Line " << i << ": the quick brown fox " << (i * 7919) % 1000 << " jumps.\n";
  }
  auto c = tiny_run(root, steps);
  c.run.data.kind = "text";
  c.run.data.path = corpus.string();
  c.run.model.n_layers = 1;
  c.run.model.d_model = 32;
  c.run.model.max_seq_len = 32;
  c.run.train.batch_size = 4;
  c.run.train.seq_len = 32;
  c.run.train.eval_every = 0;
  c.run.train.eval_batches = 1;
  c.run.train.log_every = 1;
  c.resolved_yaml = "# text test config, steps=" + std::to_string(steps) + "\n";
  return c;
}

std::vector<std::string> checkpoint_names(const std::filesystem::path& run_dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(run_dir / "checkpoints"))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Trains `c` into `dir`, with c.run written out as its resolved config (the
// trainer identifies a run directory by these values).
train::TrainOutcome run(const config::Composed& c, const std::filesystem::path& dir, int64_t stop_after = 0) {
  auto composed = c;
  composed.resolved_yaml = config::to_yaml(config::to_tree(c.run, "test"));
  return train::train(train::TrainRequest{composed, dir, false, stop_after, false});
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
  // The kernel the training forward ran, as SDPA's dispatcher picks it for this shape.
  CHECK(std::get<std::string>(*log.attr("/model", "attention_kernel")) ==
        "sdpa/" + model::sdpa_kernel(c.run.train.batch_size, c.run.model.n_heads, c.run.train.seq_len,
                                     c.run.model.resolved_head_dim(), c.run.model.resolved_head_dim(), false,
                                     torch::kFloat32, torch::Device(torch::kCPU)));
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
  changed.run.optim.lr = 2e-3;
  CHECK_THROWS_WITH(run(changed, dir), Catch::Contains("run.name") && Catch::Contains("different config (optim.lr)"));
  CHECK(std::filesystem::last_write_time(dir / "run.h5") == before);
}

TEST_CASE("AdamW: matrices decay, vectors do not, and decay touches only the decay group", "[train]") {
  auto config = test::tiny_config("mha");
  model::TransformerLM model(config);
  OptimConfig optim;
  optim.lr = 0.1;
  optim.weight_decay = 0.5;
  auto adamw = train::make_adamw(*model, optim);
  REQUIRE(adamw->param_groups().size() == 2);
  const auto& decay = adamw->param_groups()[0];
  const auto& no_decay = adamw->param_groups()[1];
  CHECK(static_cast<const torch::optim::AdamWOptions&>(decay.options()).weight_decay() == 0.5);
  CHECK(static_cast<const torch::optim::AdamWOptions&>(no_decay.options()).weight_decay() == 0.0);

  // Every trainable parameter lands in exactly one group: weight matrices and
  // embeddings (dim >= 2) decay, norm gains and biases (dim 1) do not.
  std::set<const void*> in_decay, in_no_decay;
  for (const auto& p : decay.params()) in_decay.insert(p.data_ptr());
  for (const auto& p : no_decay.params()) in_no_decay.insert(p.data_ptr());
  int64_t vectors = 0;
  for (const auto& item : model->named_parameters()) {
    const auto& p = item.value();
    INFO(item.key() << " " << p.sizes());
    CHECK(in_decay.count(p.data_ptr()) == (p.dim() >= 2 ? 1u : 0u));
    CHECK(in_no_decay.count(p.data_ptr()) == (p.dim() >= 2 ? 0u : 1u));
    if (p.dim() < 2) ++vectors;
  }
  CHECK(vectors > 0);  // the model has norm gains: the no-decay group is not vacuous
  CHECK(in_decay.size() + in_no_decay.size() == model->parameters().size());

  // With zero gradients Adam's update is 0, so one step is decay alone:
  // p <- p * (1 - lr * weight_decay) in the decay group, p unchanged in the other.
  std::vector<torch::Tensor> before;
  for (auto& p : model->parameters()) {
    before.push_back(p.detach().clone());
    p.mutable_grad() = torch::zeros_like(p);
  }
  adamw->step();
  size_t i = 0;
  for (const auto& item : model->named_parameters()) {
    const auto& p = item.value();
    INFO(item.key());
    const auto& b = before[i++];
    if (p.dim() >= 2)
      CHECK(torch::allclose(p.detach(), b * (1 - 0.1 * 0.5), 1e-6, 0));
    else
      CHECK(torch::equal(p.detach(), b));
  }
}

TEST_CASE("gradient accumulation over 2 micro-batches equals one batch of both", "[train][integration]") {
  TempDir tmp;
  auto c = text_run(tmp.path, 1);
  c.run.train.grad_accum = 2;
  REQUIRE(run(c, tmp.path / "accum").status == "complete");
  auto log = results::RunLog::load(tmp.path / "accum" / "run.h5");
  REQUIRE(log.column("train", "loss").size() == 1);

  // The same model (same seed) on the two micro-batches the trainer drew,
  // concatenated into one batch of 8: mean loss and gradient norm.
  seed_everything(c.run.seed);
  auto dataset = data::load(c.run.data);
  auto model_cfg = c.run.model;
  model_cfg.vocab_size = dataset.tokenizer->vocab_size();
  model::TransformerLM model(model_cfg);
  model->train();
  data::Batcher batcher(dataset.train, 4, 32, static_cast<uint64_t>(c.run.seed));
  auto [x0, y0] = batcher.next();
  auto [x1, y1] = batcher.next();
  auto logits = model->forward(torch::cat({x0, x1}, 0));
  auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), torch::cat({y0, y1}, 0).reshape({-1}));
  loss.backward();
  const double grad_norm =
      torch::nn::utils::clip_grad_norm_(model->parameters(), std::numeric_limits<double>::infinity());
  CHECK_THAT(log.column("train", "loss")[0], Catch::WithinRel(loss.item<double>(), 1e-5));
  CHECK_THAT(log.column("train", "grad_norm")[0], Catch::WithinRel(grad_norm, 1e-4));
  CHECK(log.column("train", "tokens")[0] == 2 * 4 * 32);
}

TEST_CASE("periodic checkpoints: keep the newest keep_checkpoints, resume truncates the log to the checkpoint",
          "[train][integration]") {
  TempDir tmp;
  auto c = text_run(tmp.path, 12);
  c.run.train.checkpoint_every = 4;
  c.run.train.keep_checkpoints = 2;
  auto straight = run(c, tmp.path / "straight");
  REQUIRE(straight.status == "complete");
  // Checkpoints at 4 and 8, and the final one at 12: the newest two remain.
  CHECK(checkpoint_names(tmp.path / "straight") ==
        std::vector<std::string>{"step-0000008.pt", "step-0000012.pt"});

  // Stop at step 10, then lose the step-10 checkpoint (as a crash between the
  // log commit and the checkpoint would): run.h5 holds rows up to step 10, the
  // newest checkpoint is step 8.
  const auto dir = tmp.path / "resumed";
  REQUIRE(run(c, dir, /*stop_after=*/10).status == "interrupted");
  CHECK(checkpoint_names(dir) == std::vector<std::string>{"step-0000008.pt", "step-0000010.pt"});
  CHECK(results::RunLog::load(dir / "run.h5").column("train", "step").back() == 10);
  std::filesystem::remove(dir / "checkpoints" / "step-0000010.pt");

  REQUIRE(run(c, dir).status == "complete");
  auto a = results::RunLog::load(tmp.path / "straight" / "run.h5");
  auto b = results::RunLog::load(dir / "run.h5");
  // Steps 9 and 10 were logged twice; truncate_after(8) dropped the first copies.
  CHECK(b.column("train", "step") == a.column("train", "step"));
  CHECK(b.column("train", "loss") == a.column("train", "loss"));
  bool resumed_at_8 = false;
  for (const auto& e : b.events()) resumed_at_8 |= e.kind == "resume" && e.step == 8;
  CHECK(resumed_at_8);
  CHECK(checkpoint_names(dir) == std::vector<std::string>{"step-0000008.pt", "step-0000012.pt"});
}

TEST_CASE("a run whose loss becomes non-finite stops as diverged at that step", "[train][integration]") {
  TempDir tmp;
  auto c = text_run(tmp.path, 10);
  // Step 1's loss is the initial model's (finite); with this rate the weights
  // overflow within a few updates. log_every = 1, so every finite step is
  // logged and the run must stop at the first step whose loss is not finite.
  c.run.optim.lr = 1e30;
  c.run.optim.min_lr = 1e30;
  c.run.optim.warmup_steps = 0;
  auto outcome = run(c, tmp.path / "run");
  CHECK(outcome.status == "diverged");
  const int64_t k = outcome.steps;
  CHECK(k >= 2);
  CHECK(k < 10);
  auto log = results::RunLog::load(tmp.path / "run" / "run.h5");
  CHECK(std::get<std::string>(*log.attr("/", "status")) == "diverged");
  CHECK(std::get<int64_t>(*log.attr("/", "status_step")) == k);
  const auto steps = log.column("train", "step");
  REQUIRE(static_cast<int64_t>(steps.size()) == k - 1);  // the non-finite step is not logged
  for (size_t i = 0; i < steps.size(); ++i) CHECK(steps[i] == static_cast<double>(i + 1));
  for (double loss : log.column("train", "loss")) CHECK(std::isfinite(loss));
  bool event = false;
  for (const auto& e : log.events()) event |= e.kind == "diverged" && e.step == k;
  CHECK(event);
  CHECK(log.attr("/summary", "final_val_ppl") == nullptr);
}

TEST_CASE("between log steps the loss is watched on the device: divergence is found at the step it happened",
          "[train][integration]") {
  // The host reads the loss only every train.log_every steps; the first
  // non-finite step must still be the one a run that reads every step finds.
  TempDir tmp;
  auto every = text_run(tmp.path, 12);
  every.run.optim.lr = 1e30;
  every.run.optim.min_lr = 1e30;
  every.run.optim.warmup_steps = 0;
  auto sparse = every;
  sparse.run.train.log_every = 4;
  const auto reference = run(every, tmp.path / "every");
  const auto watched = run(sparse, tmp.path / "sparse");
  REQUIRE(reference.status == "diverged");
  CHECK(watched.status == "diverged");
  const int64_t k = reference.steps;
  CHECK(watched.steps == k);
  auto log = results::RunLog::load(tmp.path / "sparse" / "run.h5");
  CHECK(std::get<int64_t>(*log.attr("/", "status_step")) == k);
  bool event = false;
  for (const auto& e : log.events()) event |= e.kind == "diverged" && e.step == k;
  CHECK(event);
  // Rows only at log steps before the divergence, each finite.
  const auto steps = log.column("train", "step");
  CHECK(static_cast<int64_t>(steps.size()) == (k - 1) / 4);
  for (size_t i = 0; i < steps.size(); ++i) CHECK(steps[i] == static_cast<double>(4 * (i + 1)));
  for (double loss : log.column("train", "loss")) CHECK(std::isfinite(loss));
}
