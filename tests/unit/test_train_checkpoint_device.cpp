// Checkpoints load onto the device and dtype asked for, whatever they were
// saved from: a GPU-trained run can be evaluated on a CPU-only machine.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <iostream>

#include "model/transformer.h"
#include "temp_dir.h"
#include "tensor_match.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"

using namespace attnlab;
using attnlab::test::TempDir;

namespace {

std::filesystem::path save(model::TransformerLM& lm, const std::filesystem::path& run_dir) {
  OptimConfig oc;
  auto opt = train::make_adamw(*lm, oc);
  return train::save_checkpoint(run_dir, *lm, *opt, train::CheckpointState{1, 0, 0, 0.0, ""});
}

}  // namespace

TEST_CASE("load_model_weights maps a checkpoint to the requested device and dtype", "[train][checkpoint]") {
  TempDir dir;
  torch::manual_seed(4);
  model::TransformerLM saved(test::tiny_config("mha"));
  saved->to(torch::kFloat64);  // saved in another dtype than the one asked for
  const auto path = save(saved, dir.path);

  torch::manual_seed(5);
  model::TransformerLM loaded(test::tiny_config("mha"));
  train::load_model_weights(path, *loaded, torch::kCPU, torch::kFloat32);
  auto a = saved->named_parameters(), b = loaded->named_parameters();
  REQUIRE(a.size() == b.size());
  for (const auto& p : b) {
    INFO(p.key() << " " << p.value().scalar_type() << " " << a[p.key()].scalar_type() << " diff "
                 << (p.value().to(torch::kFloat64) - a[p.key()]).abs().max().item<double>());
    CHECK(p.value().device() == torch::Device(torch::kCPU));
    CHECK(p.value().scalar_type() == torch::kFloat32);
    CHECK(torch::equal(p.value(), a[p.key()].to(torch::kFloat32)));
  }
}

TEST_CASE("a model trained on CUDA loads on the CPU", "[train][checkpoint][.gpu]") {
  if (!torch::cuda::is_available()) {
    std::cout << "ATTNLAB_SKIP: no CUDA device: a CUDA checkpoint loading on the CPU is not checked\n";
    return;
  }
  TempDir dir;
  torch::manual_seed(6);
  model::TransformerLM gpu(test::tiny_config("mla"));
  gpu->to(torch::kCUDA);
  OptimConfig oc;
  auto opt = train::make_adamw(*gpu, oc);
  for (int step = 0; step < 3; ++step) {  // a few real optimizer steps on the GPU
    opt->zero_grad();
    auto tokens = torch::randint(50, {2, 9}, torch::TensorOptions().dtype(torch::kLong).device(torch::kCUDA));
    gpu->forward(tokens).pow(2).mean().backward();
    opt->step();
  }
  const auto path = train::save_checkpoint(dir.path, *gpu, *opt, train::CheckpointState{3, 0, 0, 0.0, ""});

  model::TransformerLM cpu(test::tiny_config("mla"));
  train::load_model_weights(path, *cpu, torch::kCPU);
  auto g = gpu->named_parameters();
  for (const auto& p : cpu->named_parameters()) {
    INFO(p.key());
    CHECK(p.value().device() == torch::Device(torch::kCPU));
    CHECK(torch::equal(p.value(), g[p.key()].to(torch::kCPU)));
  }
}
