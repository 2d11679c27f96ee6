# Finds LibTorch and exposes it as the interface target attnlab::torch.
#
# LibTorch can come from a pip-installed PyTorch (setup.sh passes its
# torch.utils.cmake_prefix_path), an unpacked LibTorch archive, or Torch_DIR.

# A CUDA build of LibTorch probes the installed GPUs at configure time unless
# an architecture list is given; on a machine without a GPU that probe fails.
if(NOT DEFINED TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(TORCH_CUDA_ARCH_LIST "8.0;9.0" CACHE STRING "CUDA architectures for LibTorch's CMake")
endif()

find_package(Torch 2.0 REQUIRED)

add_library(attnlab_torch INTERFACE)
add_library(attnlab::torch ALIAS attnlab_torch)
target_link_libraries(attnlab_torch INTERFACE torch)

# A pip wheel keeps CUDA's runtime libraries in site-packages/nvidia/*/lib and
# relies on Python to preload them; libtorch_cuda.so carries no RUNPATH. A C++
# binary therefore needs those folders as DT_RPATH (which, unlike RUNPATH, also
# applies to the dependencies of libtorch) and as rpath-link at link time, or
# the linker may resolve against an older system copy (e.g. NCCL).
get_filename_component(_attnlab_site "${TORCH_INSTALL_PREFIX}/.." ABSOLUTE)
file(GLOB _attnlab_nvidia_libs LIST_DIRECTORIES true "${_attnlab_site}/nvidia/*/lib")
set(_attnlab_rpath "${TORCH_INSTALL_PREFIX}/lib" ${_attnlab_nvidia_libs})
list(JOIN _attnlab_rpath ":" _attnlab_rpath)
target_link_options(attnlab_torch INTERFACE
  "LINKER:--disable-new-dtags"
  "LINKER:-rpath,${_attnlab_rpath}"
  "LINKER:-rpath-link,${_attnlab_rpath}")
message(STATUS "attnlab: LibTorch ${Torch_VERSION} from ${TORCH_INSTALL_PREFIX}")
