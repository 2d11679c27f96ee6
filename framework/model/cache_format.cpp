// Cache formats and per-vector absmax quantization (see cache_format.h).
#include "model/cache_format.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <limits>

#include "core/error.h"

namespace attnlab::model {

namespace {

CacheFormat plain(const char* name, torch::ScalarType dtype) {
  CacheFormat f;
  f.name = name;
  f.storage = dtype;
  return f;
}

CacheFormat scaled(const char* name, torch::ScalarType dtype, double qmax) {
  CacheFormat f = plain(name, dtype);
  f.scaled = true;
  f.qmax = qmax;
  f.scale_dtype = torch::kFloat16;
  return f;
}

// fp16's smallest normal (2^-14): a smaller scale would lose precision or
// round to 0 in fp16, and 0 would turn an all-zero vector into 0/0.
constexpr double kMinScale = 6.103515625e-05;

}  // namespace

const std::vector<CacheFormat>& cache_formats() {
  // int8: symmetric [-127, 127] (-128 unused, so the range is symmetric).
  // fp8_e4m3: the largest finite e4m3fn value, 448.
  static const std::vector<CacheFormat> formats{
      plain("fp32", torch::kFloat32),
      plain("bf16", torch::kBFloat16),
      plain("fp16", torch::kFloat16),
      scaled("int8", torch::kInt8, 127.0),
      scaled("fp8_e4m3", torch::kFloat8_e4m3fn,
             static_cast<double>(std::numeric_limits<c10::Float8_e4m3fn>::max())),
  };
  return formats;
}

std::vector<std::string> cache_format_names() {
  std::vector<std::string> names;
  for (const auto& f : cache_formats()) names.push_back(f.name);
  return names;
}

CacheFormat::CacheFormat(torch::ScalarType dtype) {
  for (const auto& f : cache_formats())
    if (!f.scaled && f.storage == dtype) {
      *this = f;
      return;
    }
  // fp64 caches serve the exactness tests and `explain`; no config names them.
  if (!c10::isFloatingType(dtype) || c10::isFloat8Type(dtype))
    throw Error(fmt::format("a plain cache stores floating-point values, not {}", c10::toString(dtype)));
  name = c10::toString(dtype);
  storage = dtype;
}

CacheFormat parse_cache_format(const std::string& name) {
  for (const auto& f : cache_formats())
    if (f.name == name) return f;
  throw_user_error("attention.cache_dtype", "",
                   fmt::format("'{}' is not one of {}", name, fmt::join(cache_format_names(), ", ")));
}

Quantized quantize(const torch::Tensor& x, const CacheFormat& format) {
  if (!format.scaled) throw Error(fmt::format("quantize: cache format {} is not quantized", format.name));
  auto x_f = x.to(torch::kFloat32);
  if (x.size(-1) == 0)  // no elements to scale (amax over an empty dim is an error)
    return {x_f.to(format.storage), torch::ones(x.sizes().slice(0, x.dim() - 1), x_f.options().dtype(format.scale_dtype))};
  // One scale per vector along the last dim, computed in fp32 and then
  // rounded to fp16; the values are divided by the rounded scale, so that
  // dequantizing with the stored scale is consistent with what was stored.
  auto scale = (x_f.abs().amax(-1) / format.qmax).clamp_min(kMinScale).to(format.scale_dtype);
  auto q = (x_f / scale.to(torch::kFloat32).unsqueeze(-1)).clamp(-format.qmax, format.qmax);
  if (format.storage == torch::kInt8) q = q.round();
  return {q.to(format.storage), scale};
}

torch::Tensor dequantize(const torch::Tensor& values, const torch::Tensor& scales, torch::ScalarType dtype) {
  return (values.to(torch::kFloat32) * scales.to(torch::kFloat32).unsqueeze(-1)).to(dtype);
}

}  // namespace attnlab::model
