// Device, dtype and seeding: the small decisions every run makes once.
#pragma once

#include <torch/types.h>

#include <string>

namespace attnlab {

// "auto" picks CUDA when LibTorch sees a GPU, else the CPU. Asking for "cuda"
// without one is a UserError naming `key`.
torch::Device select_device(const std::string& name, const std::string& key = "train.device");

// "fp32" | "bf16" | "fp16" | "fp64" to a scalar type; anything else is a UserError naming `key`.
torch::ScalarType parse_dtype(const std::string& name, const std::string& key);
std::string dtype_name(torch::ScalarType dtype);

// ATTNLAB_THREADS (a sweep worker's share of the CPU): an integer in [1, 1024],
// the range of train.threads, else a UserError naming the variable.
int64_t threads_from_environment(const std::string& value);

// Seeds LibTorch's CPU and CUDA generators.
void seed_everything(int64_t seed);

// "NVIDIA H100 80GB HBM3" or "cpu (N threads)".
std::string device_description(const torch::Device& device);

}  // namespace attnlab
