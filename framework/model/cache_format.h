// How a KV cache stores its elements (attention.cache_dtype): a plain dtype
// (fp32, bf16, fp16), or a quantized one (int8, fp8_e4m3) with one fp16 scale
// per vector along the last dim of each cached part. The one source of truth
// for storage dtypes, scales and bytes: the cache allocates from it and every
// byte count (layouts, run files, `attnlab kv`, bench) goes through it.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace attnlab::model {

struct CacheFormat {
  std::string name = "fp32";               // as attention.cache_dtype spells it
  torch::ScalarType storage = torch::kFloat32;
  bool scaled = false;                     // quantized: values / scale are stored
  double qmax = 0.0;                       // largest stored magnitude (scaled only)
  torch::ScalarType scale_dtype = torch::kFloat16;  // one scale per vector (scaled only), as KIVI

  CacheFormat() = default;
  // The plain formats: fp32, bf16, fp16 (implicit, so make_cache(b, n,
  // torch::kBFloat16) reads as before), and fp64 for exactness tests; a
  // non-float dtype is an Error (int8 needs its scales: parse_cache_format).
  CacheFormat(torch::ScalarType plain);  // NOLINT(google-explicit-constructor)

  int64_t storage_bytes() const { return static_cast<int64_t>(c10::elementSize(storage)); }
  // Bytes of one scale; 0 for a plain format.
  int64_t scale_bytes() const { return scaled ? static_cast<int64_t>(c10::elementSize(scale_dtype)) : 0; }
  bool operator==(const CacheFormat& o) const { return name == o.name; }
};

// Every format, in the order the schema lists attention.cache_dtype's values.
const std::vector<CacheFormat>& cache_formats();
std::vector<std::string> cache_format_names();

// attention.cache_dtype's value to its format; an unknown name is a UserError
// naming attention.cache_dtype and listing the valid names.
CacheFormat parse_cache_format(const std::string& name);

// A tensor quantized per vector along its last dim.
struct Quantized {
  torch::Tensor values;  // x's shape, in format.storage
  torch::Tensor scales;  // x's shape without the last dim, in format.scale_dtype
};

// Symmetric absmax quantization of x[..., N] (scaled formats only): scale =
// absmax / qmax computed in fp32, clamped below at fp16's smallest normal (a
// zero vector gets a finite scale, never 0 or NaN) and rounded to fp16; the
// values are x / (that rounded scale), rounded to nearest and clamped to
// [-127, 127] (int8) or clamped to +-448 and cast (fp8_e4m3, where a value
// beyond 448 would become NaN).
Quantized quantize(const torch::Tensor& x, const CacheFormat& format);

// values * scale, in `dtype`.
torch::Tensor dequantize(const torch::Tensor& values, const torch::Tensor& scales, torch::ScalarType dtype);

}  // namespace attnlab::model
