// KV accounting: the DeepSeek-V2 preset reproduces the paper's numbers, the
// table compares every variant with MHA, and MLA's decode costs follow the
// naive/absorbed formulas.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "bench/kv_report.h"
#include "model/attention/registry.h"
#include "tensor_match.h"

using namespace attnlab;
using namespace attnlab::bench;

namespace {
const KvRow& find(const KvTable& t, const std::string& name) {
  for (const auto& r : t.rows)
    if (r.variant == name) return r;
  FAIL("no row " << name);
  throw;
}
}  // namespace

TEST_CASE("DeepSeek-V2 table: 576 elements per token per layer, 34.6K per token, 57x", "[kv][report]") {
  auto table = kv_table(deepseek_v2_config());
  const auto& mla = find(table, "mla absorbed");
  CHECK(mla.elements_per_layer == 576);
  CHECK(mla.parts == "ckv[512] + krope[64]");
  CHECK(mla.elements_per_token == 34560);
  CHECK(short_count(mla.elements_per_token) == "34.6K");
  CHECK(short_count(27 * mla.elements_per_layer) == "15.6K");
  CHECK(mla.bytes_per_token == 34560 * 2);  // bf16
  const auto& mha = find(table, "mha");
  CHECK(mha.elements_per_layer == 2 * 128 * 128);
  CHECK_THAT(mla.ratio_to_mha, Catch::WithinAbs(56.9, 0.05));
  CHECK(find(table, "mqa").elements_per_layer == 256);
  CHECK(find(table, "gqa (K=8)").elements_per_layer == 2048);
  // Naive MLA caches expanded k and v: more than MHA (d_n + d_r + d_v = 320 per head).
  CHECK(find(table, "mla naive").elements_per_layer == 128 * 320);
}

TEST_CASE("DeepSeek-V2 check: computed figures match the paper's", "[kv][report]") {
  // arXiv 2405.04434: 576 elements per layer; 34.6K and 15.6K per token for 60
  // and 27 layers; MHA baselines 860.2K and 110.6K; 57x against 128 heads of 128.
  const auto k = deepseek_v2_check();
  CHECK(k.mla_per_layer == 576);
  CHECK(k.mla_60_layers == 34560);
  CHECK(short_count(k.mla_60_layers) == "34.6K");
  CHECK(k.mla_27_layers == 15552);
  CHECK(short_count(k.mla_27_layers) == "15.6K");
  CHECK(k.mha_60_baseline == 860160);
  CHECK(short_count(k.mha_60_baseline) == "860.2K");
  CHECK(k.mha_27_baseline == 110592);
  CHECK(short_count(k.mha_27_baseline) == "110.6K");
  CHECK(std::lround(k.mha128_over_mla) == 57);
  CHECK_THAT(k.mha128_over_mla, Catch::WithinAbs(32768.0 / 576, 1e-12));
}

TEST_CASE("the KV table of a small config lists every variant against MHA", "[kv][report]") {
  auto config = test::tiny_config("gqa");
  config.attention.cache_dtype = "fp16";
  auto table = kv_table(config);
  REQUIRE(table.rows.size() == model::attention_kinds().size() + 1);  // mla shows both decode paths
  CHECK(table.rows[0].variant == "mha");
  CHECK(table.rows[0].ratio_to_mha == 1.0);
  const auto& gqa = find(table, "gqa (K=2)");
  CHECK(gqa.elements_per_layer == 2 * 2 * 8);
  CHECK(gqa.bytes_per_token == 2 * 2 * 8 * 2 * 2);  // two layers, fp16
  CHECK(gqa.ratio_to_mha == 2.0);
  CHECK(find(table, "mla absorbed").elements_per_layer == 2 * 8 + 4);  // defaults: d_c = 2E, d_r = E/2 (E = 8)
  CHECK_THAT(format_kv_table(table), Catch::Contains("gqa (K=2)") && Catch::Contains("k[2,8] + v[2,8]"));
}

TEST_CASE("with model.kv_share the KV table counts only the layers that cache", "[kv][report][kv_share]") {
  auto config = test::tiny_config("gqa");
  config.n_layers = 6;
  config.kv_share = 4;  // groups of 4 and 2: layers 0 and 4 cache
  auto table = kv_table(config);
  const auto& gqa = find(table, "gqa (K=2)");
  CHECK(gqa.elements_per_layer == 2 * 2 * 8);
  CHECK(gqa.elements_per_token == 2 * (2 * 2 * 8));
  CHECK(gqa.bytes_per_token == 2 * (2 * 2 * 8) * 4);
  // naive MLA: every layer caches its own up-projected k and v; absorbed: two latents.
  CHECK(find(table, "mla naive").elements_per_token == 6 * find(table, "mla naive").elements_per_layer);
  CHECK(find(table, "mla absorbed").elements_per_token == 2 * (2 * 8 + 4));
  CHECK_THAT(table.title, Catch::Contains("model.kv_share 4"));
}

TEST_CASE("an int8 KV table counts one byte per element plus fp16 scales, and shows their share",
          "[kv][report][quant]") {
  auto config = test::tiny_config("gqa");
  config.attention.cache_dtype = "int8";
  const auto table = kv_table(config);
  CHECK(table.scaled);
  // gqa K=2, E=8, two layers: k[2,8] + v[2,8] is 32 int8 values and 4 scales of 2 bytes per layer.
  const auto& gqa = find(table, "gqa (K=2)");
  CHECK(gqa.scale_bytes_per_token == 2 * 4 * 2);
  CHECK(gqa.bytes_per_token == 2 * (32 + 4 * 2));
  // mla absorbed: ckv[16] + krope[4], two vectors per layer.
  const auto& mla = find(table, "mla absorbed");
  CHECK(mla.bytes_per_token == 2 * (20 + 2 * 2));
  const auto text = format_kv_table(table);
  CHECK_THAT(text, Catch::Contains("of which scales") && Catch::Contains("16 (20.0%)") &&
                       Catch::Contains("one fp16 scale per vector"));
  config.attention.cache_dtype = "bf16";
  CHECK_THAT(format_kv_table(kv_table(config)), !Catch::Contains("of which scales"));
  CHECK(find(kv_table(config), "gqa (K=2)").scale_bytes_per_token == 0);
}

TEST_CASE("the MLA row is the same whichever attention the table starts from", "[kv][report]") {
  // One source of MLA defaults: a GQA config and an MLA config of the same
  // shape must report the same latent (the issue: ckv[128] against ckv[64]).
  for (int64_t head_dim : {0, 12}) {
    auto gqa = test::tiny_config("gqa");
    auto mla = test::tiny_config("mla");
    mla.attention.set("kv_rank", 0).set("nope_dim", 0).set("rope_dim", 0).set("v_dim", 0);  // derived
    gqa.head_dim = mla.head_dim = head_dim;
    const auto& a = find(kv_table(gqa), "mla absorbed");
    const auto& b = find(kv_table(mla), "mla absorbed");
    INFO("head_dim " << head_dim);
    CHECK(a.parts == b.parts);
    CHECK(a.elements_per_layer == b.elements_per_layer);
    // model.head_dim is respected: d_c = 2E, d_r = E/2.
    const int64_t e = head_dim > 0 ? head_dim : gqa.d_model / gqa.n_heads;
    CHECK(b.elements_per_layer == 2 * e + e / 2);
  }
}

TEST_CASE("MLA decode costs: absorbed reads the latent, naive-latent pays re-expansion", "[kv][report]") {
  auto c = deepseek_v2_config();
  auto costs = mla_decode_costs(c, 4096);
  REQUIRE(costs.size() == 3);
  const auto &naive = costs[0], &relatent = costs[1], &absorbed = costs[2];
  CHECK(naive.cache_bytes_read == 4096.0 * 128 * 320 * 2);
  CHECK(absorbed.cache_bytes_read == 4096.0 * 576 * 2);
  CHECK(naive.cache_bytes_read / absorbed.cache_bytes_read == Approx(128.0 * 320 / 576));
  // Re-expanding 4096 latents costs 2·L·d_c·H·(d_n+d_v) more than naive.
  CHECK(relatent.flops - naive.flops == Approx(2.0 * 4095 * 512 * 128 * 256));
  // Absorbed attention: scores over C+R and values over C per head.
  const double common = naive.flops - (2.0 * 512 * 128 * 256 + 2.0 * 128 * 4096 * (192 + 128));
  CHECK(absorbed.flops - common ==
        Approx(2.0 * 128 * 128 * 512 + 2.0 * 128 * 4096 * 576 + 2.0 * 128 * 4096 * 512 + 2.0 * 128 * 512 * 128));
  CHECK(absorbed.intensity() > naive.intensity());
  CHECK_THAT(format_decode_costs(costs, 4096), Catch::Contains("absorbed") && Catch::Contains("naive-latent"));
}

TEST_CASE("GTA/GLA Table 5 and TPA's cache formula, computed from the cache layouts", "[kv][report]") {
  // Zadouri, Strauss, Dao 2025, Table 5 (bytes per token per layer, bf16, the
  // 1.47B shape): MHA 8192, GQA-4 2048, GTA-4 1152. GLA-2 = MLA's 4E + d_r
  // (576 at E 128, d_r 64). TPA §3.3: (R_K + R_V)(H + E) = (2 + 2)(16 + 64) = 320.
  const auto k = paper_checks();
  CHECK(k.mha_bytes == 8192);
  CHECK(k.gqa4_bytes == 2048);
  CHECK(k.gta4_bytes == 1152);
  CHECK(k.gla2_elements == 576);
  CHECK(k.mla_4e_elements == 576);
  CHECK(k.tpa_elements == 320);
  CHECK(k.tpa_mha_elements == 2048);
  const auto text = format_paper_checks(k);
  CHECK_THAT(text, Catch::Contains("GTA-4 1152 (paper 1152)"));
}

TEST_CASE("the KV table has a row for every registered variant", "[kv][report]") {
  auto table = kv_table(deepseek_v2_config());
  std::vector<std::string> labels;
  for (const auto& r : table.rows) labels.push_back(r.variant);
  for (const auto& kind : model::attention_kinds()) {
    INFO(kind);
    CHECK(std::any_of(labels.begin(), labels.end(), [&](const std::string& l) { return l.rfind(kind, 0) == 0; }));
  }
  // At DeepSeek-V2's shape GLA-2 caches MLA's 576 elements (two latents of 2E = 256, plus d_r 64).
  const auto gla = std::find_if(table.rows.begin(), table.rows.end(), [](const KvRow& r) { return r.variant == "gla-2 absorbed"; });
  REQUIRE(gla != table.rows.end());
  CHECK(gla->elements_per_layer == 576);
}
