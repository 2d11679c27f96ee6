// `attnlab bench`: B4's cache bytes per token agree three ways (the papers'
// closed form, the attention's declared layout, a real cache's tensors) for
// every variant; train and decode append their figures to an HDF5 file with
// the benchmark's shape; a file from another device and an impossible
// context are refused with exit code 2.
#include <catch2/catch.hpp>

#include "bench/bench.h"
#include "config/compose.h"
#include "results/run_log.h"
#include "test_support.h"

using attnlab::results::RunLog;
using attnlab::testing::run_cli;
using attnlab::test::read_bytes;
using attnlab::test::TempDir;
namespace fs = std::filesystem;

namespace {
attnlab::RunConfig config_of(std::vector<std::string> overrides) {
  attnlab::config::ComposeRequest r;
  r.config_dir = fs::path(ATTNLAB_SOURCE_DIR) / "configs";
  r.overrides = std::move(overrides);
  return attnlab::config::compose(r).run;
}
}  // namespace

TEST_CASE("bench kv: formula, layout and a real cache agree on bytes per token for every variant",
          "[bench][integration]") {
  // 8 heads of 24 dims (12 rotary pairs), 3 layers; MLA with its own widths.
  for (const char* dtype : {"fp32", "bf16", "int8"}) {
    INFO(dtype);
    const auto cfg = config_of({"model.n_layers=3", "model.d_model=192", "model.n_heads=8", "attention=mla",
                                "attention.kv_rank=40", "attention.rope_dim=8",
                                std::string("attention.cache_dtype=") + dtype});
    const auto rows = attnlab::bench::bench_kv(cfg, 2, 16);
    REQUIRE(rows.size() == 7);  // mla first, then mha, gqa, mqa, gta, gla, tpa
    const bool int8 = std::string(dtype) == "int8";
    const int64_t bytes = std::string(dtype) == "fp32" ? 4 : int8 ? 1 : 2;
    for (const auto& r : rows) {
      INFO(r.variant);
      CHECK(r.scale_bytes == (int8 ? r.scale_bytes : 0));
      CHECK(r.layout_bytes == r.formula_bytes + r.scale_bytes);
      CHECK(r.measured_bytes == static_cast<double>(r.formula_bytes + r.scale_bytes));
    }
    // int8's fp16 scales, one per vector: MLA ckv[40] + krope[8] has 2, MHA k[8,24] + v[8,24] 16; 3 layers.
    if (int8) {
      CHECK(rows[0].scale_bytes == 2 * 3 * 2);
      CHECK(rows[1].scale_bytes == 16 * 3 * 2);
    }
    // The closed forms, written out: MLA (40 + 8) x 3 layers; MHA 2 x 8 x 24 x 3; GQA 4 heads; MQA 1;
    // GTA 4 tied heads of 24 + a rotary key of 12; GLA two latents of 2 x 24 + the shape's d_r 8;
    // TPA (2 + 2)(8 + 24).
    CHECK(rows[0].variant == "mla");
    CHECK(rows[0].formula_bytes == 48 * 3 * bytes);
    CHECK(rows[1].formula_bytes == 2 * 8 * 24 * 3 * bytes);
    CHECK(rows[2].formula_bytes == 2 * 4 * 24 * 3 * bytes);
    CHECK(rows[3].formula_bytes == 2 * 1 * 24 * 3 * bytes);
    CHECK(rows[4].formula_bytes == (4 * 24 + 12) * 3 * bytes);
    CHECK(rows[5].formula_bytes == (2 * 48 + 8) * 3 * bytes);
    CHECK(rows[6].formula_bytes == (2 + 2) * (8 + 24) * 3 * bytes);
  }
}

TEST_CASE("bench train and decode append their figures and the benchmark's shape to an HDF5 file",
          "[bench][integration]") {
  TempDir tmp;
  const fs::path out = tmp.path / "bench.h5";
  auto train = run_cli("bench train --preset b5 --steps 3 --warmup 1 --out " + out.string());
  INFO(train.output);
  REQUIRE(train.exit_code == 0);
  auto decode = run_cli("bench decode attention=mla --decode absorbed --context 48 --batch 2 --steps 4 --warmup 1 "
                        "model.max_seq_len=64 --out " + out.string());
  INFO(decode.output);
  REQUIRE(decode.exit_code == 0);
  const auto log = RunLog::load(out);
  // B5's shape as BENCHMARKS.md gives it: 4 layers, 4 heads, d_model 128, block 64, batch 12.
  CHECK(log.column("train", "n_layers") == std::vector<double>{4});
  CHECK(log.column("train", "n_heads") == std::vector<double>{4});
  CHECK(log.column("train", "d_model") == std::vector<double>{128});
  CHECK(log.column("train", "seq_len") == std::vector<double>{64});
  CHECK(log.column("train", "batch") == std::vector<double>{12});
  const auto ms = log.column("train", "ms_per_step_median");
  REQUIRE(ms.size() == 1);
  CHECK(ms[0] > 0.0);
  CHECK(log.column("train", "ms_per_step_p10")[0] <= ms[0]);
  CHECK(log.column("train", "ms_per_step_p90")[0] >= ms[0]);
  CHECK(log.column("decode", "context") == std::vector<double>{48});
  CHECK(log.column("decode", "decode") == std::vector<double>{2});  // absorbed, per decode_codes
  CHECK_THAT(std::get<std::string>(*log.attr("/", "decode_codes")), Catch::Contains("2=absorbed"));
  CHECK(log.column("decode", "gb_per_s")[0] > 0.0);
  CHECK(std::get<std::string>(*log.attr("/", "device_name")).rfind("cpu", 0) == 0);

  // A second run appends.
  REQUIRE(run_cli("bench train --preset b5 --steps 2 --warmup 0 --out " + out.string()).exit_code == 0);
  CHECK(RunLog::load(out).column("train", "ms_per_step_median").size() == 2);
}

TEST_CASE("bench refuses a file from another device and a context past the model's length, writing nothing",
          "[bench][integration]") {
  TempDir tmp;
  const fs::path out = tmp.path / "bench.h5";
  {
    RunLog log(out);
    log.set_attr("/", "device_name", std::string("NVIDIA H100 80GB HBM3"));
    log.commit();
  }
  const std::string before = read_bytes(out);
  auto other = run_cli("bench kv --out " + out.string());
  CHECK(other.exit_code == 2);
  CHECK_THAT(other.output, Catch::Contains("--out") && Catch::Contains("NVIDIA H100"));
  CHECK(read_bytes(out) == before);

  auto long_context = run_cli("bench decode --context 200 model.max_seq_len=128 --out " + (tmp.path / "b.h5").string());
  CHECK(long_context.exit_code == 2);
  CHECK_THAT(long_context.output, Catch::Contains("--context") && Catch::Contains("model.max_seq_len 128"));
  CHECK_FALSE(fs::exists(tmp.path / "b.h5"));
}
