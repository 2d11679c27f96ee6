// The fused AdamW step and foreach clipping against LibTorch's per-parameter
// AdamW and clip_grad_norm_ (the reference), checkpoints across the two, and
// on CUDA a training step that never waits for the device.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <sstream>

#include "config/run_config.h"
#include "data/dataset.h"
#include "model/transformer.h"
#include "skip.h"
#include "tensor_match.h"
#include "train/optimizer.h"
#include "train/step.h"

#if __has_include(<c10/cuda/CUDAFunctions.h>)
#include <c10/cuda/CUDAFunctions.h>
#define ATTNLAB_TEST_CUDA_SYNC_DEBUG 1
#endif

using namespace attnlab;

namespace {

RunConfig optimizer_run(const std::string& attention, bool fused) {
  RunConfig cfg;
  cfg.model = test::tiny_config(attention);
  cfg.optim.lr = 1e-2;
  cfg.optim.weight_decay = 0.1;
  cfg.optim.grad_clip = 0.5;  // below the early gradient norms: clipping is exercised
  cfg.optim.fused = fused;
  cfg.train.batch_size = 4;
  cfg.train.seq_len = 16;
  cfg.train.grad_accum = 2;
  return cfg;
}

// The same deterministic stream of [2, B, T] batches for every model.
std::vector<torch::Tensor> batches(const RunConfig& cfg, int64_t n) {
  torch::manual_seed(123);
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < n; ++i) {
    const auto w = torch::randint(cfg.model.vocab_size, {cfg.train.batch_size, cfg.train.seq_len + 1}, torch::kInt64);
    out.push_back(data::stacked_batch({w.narrow(1, 0, cfg.train.seq_len), w.narrow(1, 1, cfg.train.seq_len)}, false));
  }
  return out;
}

struct Trained {
  model::TransformerLM model{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::vector<double> losses;
};

Trained make(const RunConfig& cfg, torch::ScalarType dtype, torch::Device device = torch::kCPU) {
  torch::manual_seed(7);
  Trained t{model::TransformerLM(cfg.model), nullptr, {}};
  t.model->to(device, dtype);
  t.optimizer = train::make_adamw(*t.model, cfg.optim);
  return t;
}

// Steps [first, last) of the batch stream, grad_accum batches per step.
void train_steps(Trained& t, const RunConfig& cfg, const std::vector<torch::Tensor>& stream, int64_t first, int64_t last,
           torch::ScalarType dtype, torch::Device device = torch::kCPU) {
  for (int64_t s = first; s < last; ++s) {
    int64_t micro = 0;
    const train::NextBatch next = [&] {
      return stream[static_cast<size_t>((s * cfg.train.grad_accum + micro++) % static_cast<int64_t>(stream.size()))]
          .to(device);
    };
    t.losses.push_back(train::train_step(t.model, *t.optimizer, next, cfg, device, dtype).loss.item<double>());
  }
}

double worst_parameter_error(Trained& a, Trained& b) {
  double worst = 0;
  const auto pa = a.model->parameters(), pb = b.model->parameters();
  for (size_t i = 0; i < pa.size(); ++i) worst = std::max(worst, test::rel_error(pa[i].cpu(), pb[i].cpu()));
  return worst;
}

double largest_relative_move(Trained& t, const std::vector<torch::Tensor>& initial) {
  double moved = 0;
  const auto p = t.model->parameters();
  for (size_t i = 0; i < p.size(); ++i) moved = std::max(moved, test::rel_error(p[i].cpu(), initial[i]));
  return moved;
}

}  // namespace

TEST_CASE("fused AdamW equals the per-parameter AdamW step for step over 50 steps", "[train][optimizer]") {
  // Lockstep: both models start every step from the same weights, so they
  // compute the same gradients, and each step's result differs only by the
  // two optimizers' rounding (their moment estimates drift apart by rounding
  // too). Free-running trajectories are compared in fp64 below: Adam divides
  // by the root of near-zero second moments, which turns fp32 rounding into
  // visible differences within a few steps.
  const std::string attention = GENERATE("mha", "mla");
  const auto [dtype, tolerance] =
      GENERATE(table<torch::ScalarType, double>({{torch::kFloat64, 1e-14}, {torch::kFloat32, 2e-6}}));
  INFO(attention << " " << c10::toString(dtype));
  const auto ref_cfg = optimizer_run(attention, false), fused_cfg = optimizer_run(attention, true);
  const auto stream = batches(ref_cfg, 16);
  Trained ref = make(ref_cfg, dtype), fused = make(fused_cfg, dtype);
  REQUIRE(dynamic_cast<train::FusedAdamW*>(fused.optimizer.get()) != nullptr);
  REQUIRE(dynamic_cast<train::FusedAdamW*>(ref.optimizer.get()) == nullptr);
  std::vector<torch::Tensor> initial;
  for (const auto& p : ref.model->parameters()) initial.push_back(p.detach().clone());
  double worst = 0;
  for (int64_t step = 0; step < 50; ++step) {
    train_steps(ref, ref_cfg, stream, step, step + 1, dtype);
    train_steps(fused, fused_cfg, stream, step, step + 1, dtype);
    REQUIRE(fused.losses.back() == ref.losses.back());  // same weights in: same loss, bit for bit
    worst = std::max(worst, worst_parameter_error(fused, ref));
    torch::NoGradGuard no_grad;
    const auto from = ref.model->parameters(), to = fused.model->parameters();
    for (size_t i = 0; i < from.size(); ++i) to[i].copy_(from[i]);
  }
  CHECK(largest_relative_move(ref, initial) > 1e-2);  // the weights really moved: the comparison is not vacuous
  CHECK(worst <= tolerance);
  // The host-side step counts (what checkpoints keep) followed the kernel's.
  for (const auto& p : fused.model->parameters()) {
    const auto& state = static_cast<const torch::optim::AdamWParamState&>(
        *fused.optimizer->state().at(p.unsafeGetTensorImpl()));
    CHECK(state.step() == 50);
  }
}

TEST_CASE("in fp64, 50 free-running steps of fused and per-parameter AdamW stay together", "[train][optimizer]") {
  const std::string attention = GENERATE("mha", "mla");
  const auto ref_cfg = optimizer_run(attention, false), fused_cfg = optimizer_run(attention, true);
  const auto stream = batches(ref_cfg, 16);
  Trained ref = make(ref_cfg, torch::kFloat64), fused = make(fused_cfg, torch::kFloat64);
  train_steps(ref, ref_cfg, stream, 0, 50, torch::kFloat64);
  train_steps(fused, fused_cfg, stream, 0, 50, torch::kFloat64);
  CHECK(worst_parameter_error(fused, ref) <= 1e-8);
  for (size_t i = 0; i < ref.losses.size(); ++i) CHECK(fused.losses[i] == Approx(ref.losses[i]).epsilon(1e-9));
}

TEST_CASE("a checkpoint of either AdamW resumes under the other", "[train][optimizer]") {
  const auto dtype = torch::kFloat64;
  const bool writer_fused = GENERATE(true, false);
  const bool reader_fused = GENERATE(true, false);
  INFO("written by " << (writer_fused ? "fused" : "reference") << ", read by " << (reader_fused ? "fused" : "reference"));
  const auto writer_cfg = optimizer_run("mha", writer_fused), reader_cfg = optimizer_run("mha", reader_fused);
  const auto stream = batches(writer_cfg, 16);

  Trained writer = make(writer_cfg, dtype);
  train_steps(writer, writer_cfg, stream, 0, 5, dtype);
  std::stringstream archive_bytes;
  {
    torch::serialize::OutputArchive archive;
    writer.optimizer->save(archive);
    archive.save_to(archive_bytes);
  }
  std::vector<torch::Tensor> weights_at_5;
  for (const auto& p : writer.model->parameters()) weights_at_5.push_back(p.detach().clone());
  train_steps(writer, writer_cfg, stream, 5, 10, dtype);  // the uninterrupted run

  Trained reader = make(reader_cfg, dtype);
  {
    torch::NoGradGuard no_grad;
    const auto params = reader.model->parameters();
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(weights_at_5[i]);
    torch::serialize::InputArchive archive;
    archive.load_from(archive_bytes);
    reader.optimizer->load(archive);
  }
  train_steps(reader, reader_cfg, stream, 5, 10, dtype);
  // Restarting the step count at 0 instead would change Adam's bias correction
  // at step 6 by a factor near 2: far outside this bound.
  CHECK(worst_parameter_error(reader, writer) <= 1e-9);
}

TEST_CASE("foreach clipping equals LibTorch's clip_grad_norm_", "[train][optimizer]") {
  const auto dtype = GENERATE(torch::kFloat64, torch::kFloat32);
  torch::manual_seed(3);
  std::vector<torch::Tensor> a, b;
  for (const auto& shape : std::vector<std::vector<int64_t>>{{7, 5}, {13}, {3, 4, 6}, {1}}) {
    auto p = torch::randn(shape, dtype).requires_grad_();
    p.mutable_grad() = torch::randn(shape, dtype) * 3;
    auto q = p.detach().clone().requires_grad_();
    q.mutable_grad() = p.grad().clone();
    a.push_back(p);
    b.push_back(q);
  }
  const double tolerance = dtype == torch::kFloat64 ? 1e-14 : 1e-6;
  SECTION("a norm above the bound scales every gradient") {
    const double expected = torch::nn::utils::clip_grad_norm_(b, 1.0);
    const double total = train::clip_grad_norm(a, 1.0).item<double>();
    CHECK(total > 1.0);
    CHECK(total == Approx(expected).epsilon(tolerance));
    for (size_t i = 0; i < a.size(); ++i) CHECK_THAT(a[i].grad(), test::AllClose(b[i].grad(), tolerance));
  }
  SECTION("a norm within the bound, or no bound, leaves the gradients bit for bit") {
    const double max_norm = GENERATE(1e6, std::numeric_limits<double>::infinity());
    std::vector<torch::Tensor> before;
    for (const auto& p : a) before.push_back(p.grad().clone());
    train::clip_grad_norm(a, max_norm);
    for (size_t i = 0; i < a.size(); ++i) CHECK(torch::equal(a[i].grad(), before[i]));
  }
}

TEST_CASE("on CUDA, fused AdamW equals the per-parameter AdamW over 50 steps", "[.gpu][train][optimizer]") {
  if (!torch::cuda::is_available()) ATTNLAB_SKIP("no CUDA device");
  const torch::Device cuda(torch::kCUDA);
  const std::string attention = GENERATE("mha", "mla");
  const auto ref_cfg = optimizer_run(attention, false), fused_cfg = optimizer_run(attention, true);
  const auto stream = batches(ref_cfg, 16);
  Trained ref = make(ref_cfg, torch::kFloat32, cuda), fused = make(fused_cfg, torch::kFloat32, cuda);
  train_steps(ref, ref_cfg, stream, 0, 50, torch::kFloat32, cuda);
  train_steps(fused, fused_cfg, stream, 0, 50, torch::kFloat32, cuda);
  CHECK(worst_parameter_error(fused, ref) <= 2e-5);
}

TEST_CASE("on CUDA, a training step never waits for the device", "[.gpu][train]") {
  if (!torch::cuda::is_available()) ATTNLAB_SKIP("no CUDA device");
#ifndef ATTNLAB_TEST_CUDA_SYNC_DEBUG
  ATTNLAB_SKIP("this LibTorch has no c10/cuda headers");
#else
  const torch::Device cuda(torch::kCUDA);
  const std::string attention = GENERATE("mha", "gqa", "mla");
  const auto dtype = GENERATE(torch::kFloat32, torch::kBFloat16);
  INFO(attention << " " << c10::toString(dtype));
  auto cfg = optimizer_run(attention, true);
  cfg.train.batch_size = 64;  // 64 x 128 tokens: past the size where nn::Embedding's backward syncs
  cfg.train.seq_len = 128;
  cfg.model.max_seq_len = 128;
  Trained t = make(cfg, torch::kFloat32, cuda);
  std::vector<torch::Tensor> pinned;
  for (const auto& b : batches(cfg, 4)) pinned.push_back(b.pin_memory());
  int64_t i = 0;
  const train::NextBatch next = [&] { return pinned[static_cast<size_t>(i++ % 4)]; };
  train::DivergenceWatch watch(cuda);
  train::train_step(t.model, *t.optimizer, next, cfg, cuda, dtype);  // warm-up: handles, workspaces, kernels chosen
  torch::cuda::synchronize();
  auto& state = c10::cuda::warning_state();
  state.set_sync_debug_mode(c10::cuda::SyncDebugMode::L_ERROR);
  try {
    for (int64_t step = 1; step <= 3; ++step) {
      const auto result = train::train_step(t.model, *t.optimizer, next, cfg, cuda, dtype);
      watch.observe(result.loss, step);
    }
  } catch (const std::exception& e) {
    state.set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
    FAIL("a synchronizing CUDA operation ran inside the step: " << e.what());
  }
  state.set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
  CHECK_FALSE(watch.first().has_value());
#endif
}
