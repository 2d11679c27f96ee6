// --version: the versions attnlab was built with, and the CUDA it sees.
#include <H5public.h>
#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "cli/commands.h"
#include "core/error.h"
#include "runtime/device.h"

namespace attnlab::cli {

int print_version() {
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  fmt::print("attnlab   {}\n", ATTNLAB_VERSION);
  fmt::print("LibTorch  {}\n", TORCH_VERSION);
  fmt::print("HDF5      {}.{}.{}\n", maj, min, rel);
  fmt::print("yaml-cpp  {}\n", ATTNLAB_YAML_CPP_VERSION);
  if (torch::cuda::is_available()) {
    fmt::print("CUDA      available: {} ({} device(s))\n",
               device_description(torch::Device(torch::kCUDA, 0)), torch::cuda::device_count());
  } else {
    fmt::print("CUDA      not available (CPU only)\n");
  }
  return 0;
}

}  // namespace attnlab::cli
