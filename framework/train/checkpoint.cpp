// Checkpoint save/load/prune.
#include "train/checkpoint.h"

#include <fmt/format.h>
#include <unistd.h>
#include <torch/serialize.h>

#include <algorithm>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/failpoint.h"
#include "results/durable.h"
#include "results/run_log.h"

namespace attnlab::train {
namespace fs = std::filesystem;

std::vector<fs::path> list_checkpoints(const fs::path& run_dir) {
  const fs::path dir = run_dir / "checkpoints";
  std::vector<fs::path> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const auto name = entry.path().filename().string();
    if (name.starts_with("step-") && entry.path().extension() == ".pt") out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());  // zero-padded step numbers sort by name
  return out;
}

namespace {

// Module::load() would adopt the saved tensors' storage, and with a dtype
// other than the parameter's it reinterprets the bytes; copying each saved
// tensor into the existing parameter converts dtype and device instead.
// The archive layout is Module::save()'s: tensors by name, one nested
// archive per child module.
void copy_into(torch::nn::Module& module, torch::serialize::InputArchive& archive) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.named_parameters(/*recurse=*/false)) {
    torch::Tensor saved;
    archive.read(p.key(), saved);
    p.value().copy_(saved);
  }
  for (auto& b : module.named_buffers(/*recurse=*/false)) {
    torch::Tensor saved;
    archive.read(b.key(), saved, /*is_buffer=*/true);
    b.value().copy_(saved);
  }
  for (auto& child : module.named_children()) {
    torch::serialize::InputArchive child_archive;
    archive.read(child.key(), child_archive);
    copy_into(*child.value(), child_archive);
  }
}
}  // namespace

void refuse_linked_checkpoints(const fs::path& run_dir) {
  const auto dir = run_dir / "checkpoints";
  if (fs::is_symlink(dir))
    throw UserError(fmt::format("{} is a symbolic link: checkpoints are written and pruned inside the run directory "
                                "only, never through a link to files elsewhere; replace it with a directory",
                                dir.string()));
}

fs::path save_checkpoint(const fs::path& run_dir, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                         const CheckpointState& state) {
  const fs::path dir = run_dir / "checkpoints";
  refuse_linked_checkpoints(run_dir);
  fs::create_directories(dir);
  const fs::path path = dir / fmt::format("step-{:07d}.pt", state.step);

  torch::serialize::OutputArchive archive, model_archive, optim_archive;
  model.save(model_archive);
  optimizer.save(optim_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optim_archive);
  archive.write("step", torch::tensor(state.step));
  archive.write("batcher_draws", torch::tensor(static_cast<int64_t>(state.batcher_draws)));
  archive.write("tokens_seen", torch::tensor(state.tokens_seen));
  archive.write("train_seconds", torch::tensor(state.train_seconds, torch::kFloat64));
  archive.write("config_sha256", c10::IValue(state.config_sha256));

  // LibTorch's archive writer cannot fail cleanly: on a full disk it throws
  // from inside its zip writer and again from its destructor, which ends the
  // process. So the archive is built in memory (LibTorch does no I/O), and
  // our own writer puts it beside the target, fsyncs and renames: a crash or
  // a power loss never leaves a torn checkpoint, and a failed write (ENOSPC,
  // EIO, EFBIG) removes its .tmp and throws an Error naming the file.
  std::ostringstream bytes;
  archive.save_to(bytes);
  try {
    results::atomic_write_text(path, std::move(bytes).str(), "checkpoint");
  } catch (const Error& e) {
    throw Error(fmt::format("cannot write checkpoint {}: {}", path.string(), e.what()));
  }
  return path;
}

std::optional<fs::path> latest_checkpoint(const fs::path& run_dir) {
  refuse_linked_checkpoints(run_dir);
  auto all = list_checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.back();
}

CheckpointState load_checkpoint(const fs::path& path, torch::nn::Module& model, torch::optim::Optimizer& optimizer) {
  torch::serialize::InputArchive archive, model_archive, optim_archive;
  const auto params = model.parameters();
  const torch::Device device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
  try {
    archive.load_from(path.string(), device);
    archive.read("model", model_archive);
    archive.read("optimizer", optim_archive);
    model.load(model_archive);
    optimizer.load(optim_archive);
    torch::Tensor step, draws, tokens, seconds;
    archive.read("step", step);
    archive.read("batcher_draws", draws);
    archive.read("tokens_seen", tokens);
    archive.read("train_seconds", seconds);
    c10::IValue config;
    const bool has_config = archive.try_read("config_sha256", config);
    return CheckpointState{step.item<int64_t>(), static_cast<uint64_t>(draws.item<int64_t>()),
                           tokens.item<int64_t>(), seconds.item<double>(),
                           has_config && config.isString() ? config.toStringRef() : std::string()};
  } catch (const c10::Error& e) {
    throw UserError(fmt::format("cannot resume from checkpoint {}: {} (it does not match this run's model; "
                                "start over with --restart)",
                                path.string(), e.what_without_backtrace()));
  }
}

void load_model_weights(const fs::path& path, torch::nn::Module& model, torch::Device device,
                        torch::ScalarType dtype) {
  torch::serialize::InputArchive archive, model_archive;
  try {
    // Mapping at read time is what lets a CUDA checkpoint open without CUDA.
    model.to(device, dtype);
    archive.load_from(path.string(), device);
    archive.read("model", model_archive);
    copy_into(model, model_archive);
  } catch (const c10::Error& e) {
    throw UserError(fmt::format("cannot load weights from {}: {}", path.string(), e.what_without_backtrace()));
  }
}

}  // namespace attnlab::train
