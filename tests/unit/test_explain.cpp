// `attnlab explain mla`: the identities it prints hold (absorbed = naive
// scores and decode outputs, coupled RoPE breaks the fold), its cache numbers
// are the registry's, it refuses configs it cannot explain, and the binary
// prints the measured numbers in seconds.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <string>
#include <vector>

#include "bench/explain.h"
#include "config/compose.h"
#include "config_test_util.h"
#include "core/error.h"
#include "model/attention/latent.h"
#include "model/attention/registry.h"

using namespace attnlab;

namespace {

// The tiny model with attention=mla and `overrides` on top, as the CLI composes it.
RunConfig compose_mla(std::vector<std::string> overrides) {
  config::ComposeRequest request;
  request.config_dir = test::source_configs();
  request.overrides = {"attention=mla"};
  request.overrides.insert(request.overrides.end(), overrides.begin(), overrides.end());
  return config::compose(request).run;
}

// The key of the UserError explain_mla throws, or "" when it explains.
std::string refused_key(const std::vector<std::string>& overrides) {
  try {
    bench::explain_mla(compose_mla(overrides));
  } catch (const UserError& e) {
    return e.diagnostics().empty() ? "(no diagnostic)" : e.diagnostics().front().key;
  }
  return "";
}

}  // namespace

TEST_CASE("explain mla: absorbed equals naive, coupled RoPE breaks the fold, the cache is the registry's", "[explain]") {
  const auto cfg = compose_mla({});
  const auto e = bench::explain_mla(cfg);

  // (2) q_nope.(W_UK c) = (q_nope W_UK).c, on scores that are not trivially small.
  CHECK(e.score_max > 0.1);
  CHECK(e.absorbed_score_error < 1e-10);
  CHECK(e.q_tilde_shape == std::vector<int64_t>{2, 4, 8, 64});   // [B,H,T,C]
  CHECK(e.latent_shape == std::vector<int64_t>{2, 8, 64});       // [B,S,C]
  CHECK(e.scores_shape == std::vector<int64_t>{2, 4, 8, 8});     // [B,H,T,S]
  // The real layer: absorbed decode ran, cached the latent only, and agrees with naive.
  CHECK(e.decode_ran_absorbed);
  CHECK(e.absorbed_cache_held == "ckv[2,8,64] + krope[2,8,16]");
  CHECK(e.absorbed_cache_bytes == 2 * 8 * (64 + 16) * 8);        // fp64
  CHECK(e.naive_cache_held == "k[2,8,4,48] + v[2,8,4,32]");
  CHECK(e.decode_output_max > 1e-3);
  CHECK(e.decode_output_error < 1e-10);

  // (3) Folding W_UK through R(p) is exact for keys at p and wrong, at the
  // scale of the scores themselves, for every other key.
  CHECK(e.fold_error_at_fold < 1e-10);
  CHECK(e.fold_error_elsewhere > 1e-3);
  CHECK(e.fold_error_elsewhere > 0.05 * e.coupled_score_max);
  CHECK_THAT(e.coupled_absorbed_refusal, Catch::Contains("attention.decode"));

  // (1) The tiny model, E = 32, H = 4: C = 2E = 64, R = E/2 = 16, d_n = d_v = 32.
  auto absorbed = cfg.model, naive = cfg.model;
  absorbed.attention.set("decode", "absorbed");
  naive.attention.set("decode", "naive");
  const auto& mla = model::attention_entry("mla");
  CHECK(e.absorbed_elements == mla.layout(absorbed).elements_per_token());
  CHECK(e.naive_elements == mla.layout(naive).elements_per_token());
  CHECK(e.mha_elements == model::attention_entry("mha").layout(model::with_kind(cfg.model, "mha")).elements_per_token());
  CHECK(e.absorbed_elements == 64 + 16);
  CHECK(e.absorbed_formula == e.absorbed_elements);
  CHECK(e.naive_elements == 4 * (32 + 16 + 32));
  CHECK(e.mha_elements == 2 * 4 * 32);
  CHECK(e.absorbed_bytes == 80 * 4);  // cache fp32
  CHECK_THAT(e.mha_over_absorbed, Catch::WithinAbs(3.2, 1e-12));
  CHECK(e.absorbed_parts == "ckv[64] + krope[16]");

  // (4) The registry's table, with absorbed MLA's row.
  bool found = false;
  for (const auto& r : e.table.rows)
    if (r.variant == "mla absorbed") {
      found = true;
      CHECK(r.elements_per_layer == e.absorbed_elements);
      CHECK_THAT(r.ratio_to_mha, Catch::WithinAbs(e.mha_over_absorbed, 1e-12));
    }
  CHECK(found);
}

TEST_CASE("explain mla refuses configs it cannot explain, naming the key", "[explain]") {
  CHECK(refused_key({"attention=gqa"}) == "attention.kind");
  CHECK(refused_key({"attention.kind=mha"}) == "attention.kind");
  CHECK(refused_key({"attention.rope_mode=coupled", "attention.decode=naive"}) == "attention.rope_mode");
  CHECK(refused_key({"position=alibi", "attention.rope_mode=none"}) == "attention.rope_mode");
  // Composition already refuses decoupled RoPE without RoPE; a RunConfig built by hand reaches explain_mla's check.
  auto no_rope = compose_mla({});
  no_rope.model.position.kind = "alibi";
  try {
    bench::explain_mla(no_rope);
    FAIL("explain_mla explained MLA without RoPE");
  } catch (const UserError& e) {
    REQUIRE_FALSE(e.diagnostics().empty());
    CHECK(e.diagnostics().front().key == "position.kind");
  }
  CHECK(refused_key({"attention.q_rank=16"}).empty());  // a query bottleneck is explained too
}

TEST_CASE("attnlab explain mla prints the measured numbers in seconds", "[explain]") {
  const auto e = bench::explain_mla(compose_mla({}));
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = test::run_attnlab("explain mla", ATTNLAB_SOURCE_DIR);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(seconds < 10.0);
  // The shapes and O(1) numbers the sections print, formatted from the struct
  // computed here. Rounding-level errors (1e-15) may differ between processes
  // with other thread counts, so those are read back and bounded instead.
  auto sh = [](const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ",")); };
  for (const std::string& expected : {
           fmt::format("q~[B,H,T,C] = einsum(bhtn,hnc->bhtc, q_nope, W_UK) = {}", sh(e.q_tilde_shape)),
           fmt::format("latent c[B,S,C] = {}", sh(e.latent_shape)),
           fmt::format("its cache holds {} ({} bytes in fp64)", e.absorbed_cache_held, e.absorbed_cache_bytes),
           fmt::format("keys at n != p:  max |fold - coupled| = {:.2e}", e.fold_error_elsewhere),
           fmt::format("C + R = {} + {} = {}", e.kv_rank, e.rope_dim, e.absorbed_elements),
           fmt::format("MHA / MLA = {:.1f}x", e.mha_over_absorbed),
           bench::format_kv_table(e.table),
       })
    CHECK_THAT(r.output, Catch::Contains(expected));
  auto printed = [&](const std::string& label) {
    const auto at = r.output.find(label);
    REQUIRE(at != std::string::npos);
    return std::stod(r.output.substr(at + label.size()));
  };
  CHECK(printed("max |scores_naive - scores_absorbed| = ") < 1e-10);
  CHECK(printed("max |out_absorbed - out_naive| over the decode steps = ") < 1e-10);
  CHECK(printed("keys at n = p:   max |fold - coupled| = ") < 1e-10);
  CHECK(printed("keys at n != p:  max |fold - coupled| = ") > 1e-3);
}

TEST_CASE("attnlab explain: an unknown topic or another attention kind exits 2", "[explain]") {
  const auto topic = test::run_attnlab("explain gqa", ATTNLAB_SOURCE_DIR);
  CHECK(topic.exit_code == 2);
  CHECK_THAT(topic.output, Catch::Contains("mla"));
  const auto kind = test::run_attnlab("explain mla attention=gqa", ATTNLAB_SOURCE_DIR);
  CHECK(kind.exit_code == 2);
  CHECK_THAT(kind.output, Catch::Contains("'attention.kind'"));
}
