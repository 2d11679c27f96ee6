// Device, dtype and seeding helpers.
#include "runtime/device.h"

#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/utils.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include <charconv>

#include "core/error.h"

#if __has_include(<cuda_runtime_api.h>)
#include <cuda_runtime_api.h>
#define ATTNLAB_HAS_CUDA_RUNTIME 1
#endif

namespace attnlab {

torch::Device select_device(const std::string& name, const std::string& key) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda" || name == "auto") {
    if (torch::cuda::is_available()) return torch::Device(torch::kCUDA, 0);
    if (name == "auto") return torch::kCPU;
    throw_user_error(key, "", "'cuda' was asked for but LibTorch sees no CUDA device; use cpu or auto");
  }
  throw_user_error(key, "", fmt::format("unknown device '{}': expected auto, cpu or cuda", name));
}

torch::ScalarType parse_dtype(const std::string& name, const std::string& key) {
  if (name == "fp32" || name == "float32") return torch::kFloat32;
  if (name == "bf16" || name == "bfloat16") return torch::kBFloat16;
  if (name == "fp16" || name == "float16") return torch::kFloat16;
  if (name == "fp64" || name == "float64") return torch::kFloat64;
  throw_user_error(key, "", fmt::format("unknown dtype '{}': expected fp32, bf16, fp16 or fp64", name));
}

std::string dtype_name(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32: return "fp32";
    case torch::kBFloat16: return "bf16";
    case torch::kFloat16: return "fp16";
    case torch::kFloat64: return "fp64";
    default: return std::string(c10::toString(dtype));
  }
}

int64_t threads_from_environment(const std::string& value) {
  // The same range as train.threads; anything else (99999 once crashed the
  // thread pool, and left the run at "running") is refused before any write.
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || n < 1 || n > 1024)
    throw_user_error("ATTNLAB_THREADS", "the environment",
                     fmt::format("'{}' is not an integer in [1, 1024] (CPU threads per run, as train.threads)", value));
  return n;
}

void seed_everything(int64_t seed) {
  torch::manual_seed(static_cast<uint64_t>(seed));
  if (torch::cuda::is_available()) torch::cuda::manual_seed_all(static_cast<uint64_t>(seed));
}

std::string device_description(const torch::Device& device) {
  if (device.is_cuda()) {
#ifdef ATTNLAB_HAS_CUDA_RUNTIME
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, device.index()) == cudaSuccess) return prop.name;
#endif
    return fmt::format("cuda:{}", device.index());
  }
  return fmt::format("cpu ({} threads)", at::get_num_threads());
}

}  // namespace attnlab
