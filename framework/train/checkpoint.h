// Training checkpoints: model and optimizer state, the step, and the data
// stream position, in one LibTorch archive written atomically
// (checkpoints/step-NNNNNNN.pt). Which ones belong to the run, their
// checksums and their pruning are the run directory's (run_directory.h).
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <optional>
#include <vector>

namespace attnlab::train {

struct CheckpointState {
  int64_t step = 0;             // optimizer steps completed
  uint64_t batcher_draws = 0;   // Batcher::state() after those steps
  int64_t tokens_seen = 0;
  double train_seconds = 0.0;
  std::string config_sha256;    // the run config's identity (config_identity()); empty in older checkpoints
};

// Writes <run_dir>/checkpoints/step-<step>.pt atomically (temporary file,
// fsync, rename, directory fsync) and returns its path. On failure no
// temporary file remains and Error names the checkpoint.
std::filesystem::path save_checkpoint(const std::filesystem::path& run_dir, torch::nn::Module& model,
                                      torch::optim::Optimizer& optimizer, const CheckpointState& state);

// The checkpoint files in <run_dir>/checkpoints, oldest first.
std::vector<std::filesystem::path> list_checkpoints(const std::filesystem::path& run_dir);

// The newest checkpoint in <run_dir>/checkpoints, if any.
std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& run_dir);

// UserError when <run_dir>/checkpoints is a symbolic link: pruning through it
// would delete files outside the run.
void refuse_linked_checkpoints(const std::filesystem::path& run_dir);

// Restores model and optimizer (already constructed with the same shapes) and
// returns the state. Tensors land on the device the model's parameters are on,
// wherever they were saved from.
CheckpointState load_checkpoint(const std::filesystem::path& path, torch::nn::Module& model,
                                torch::optim::Optimizer& optimizer);

// Restores only the model's weights (for evaluation and generation), mapped to
// `device` and `dtype` whatever device and dtype they were saved from: a run
// trained on a GPU loads on a CPU-only machine.
void load_model_weights(const std::filesystem::path& path, torch::nn::Module& model, torch::Device device,
                        torch::ScalarType dtype = torch::kFloat32);

}  // namespace attnlab::train
