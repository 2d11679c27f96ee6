// Model FLOPs per token (PaLM appendix B) against a hand count, and the peak
// table: known devices, the train.peak_tflops override, no guess otherwise.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "model/transformer.h"
#include "train/mfu.h"

using namespace attnlab;

TEST_CASE("model FLOPs per token are 6N + 12 L T d for a tiny MHA model, counted by hand", "[train][mfu]") {
  ModelConfig c;
  c.n_layers = 2;
  c.d_model = 32;
  c.n_heads = 4;
  c.vocab_size = 50;
  c.max_seq_len = 64;
  c.mlp = "gelu";  // d_ff = 4 d = 128
  c.norm = "rms";
  c.tie_embeddings = true;
  c.attention.kind = "mha";
  c.position.kind = "rope";  // no parameters
  model::TransformerLM lm(c);
  // Embedding (= tied head) 50*32 = 1600; per block: two RMS gains 2*32, q k v o
  // 4*32*32 = 4096, MLP 32*128 + 128*32 = 8192, i.e. 12352; final norm 32.
  const double n = 1600 + 2 * 12352 + 32;
  const int64_t t = 16;
  CHECK(train::model_flops_per_token(*lm, t) == 6 * n + 12.0 * 2 * t * 32);

  // Learned positions are a lookup: not in N.
  c.position.kind = "learned";
  model::TransformerLM learned(c);
  CHECK(train::model_flops_per_token(*learned, t) == 6 * n + 12.0 * 2 * t * 32);
  // An untied input embedding is a lookup too; the separate head is a matmul of the same size.
  c.tie_embeddings = false;
  model::TransformerLM untied(c);
  CHECK(train::model_flops_per_token(*untied, t) == 6 * n + 12.0 * 2 * t * 32);
}

TEST_CASE("the peak table knows H100, H200 and A100, the override wins, and nothing is guessed", "[train][mfu]") {
  CHECK(train::table_peak_tflops("NVIDIA H100 80GB HBM3", torch::kBFloat16) == 989.4);
  CHECK(train::table_peak_tflops("NVIDIA H100 80GB HBM3", torch::kFloat32) == 66.9);
  CHECK(train::table_peak_tflops("NVIDIA H200", torch::kBFloat16) == 989.4);
  CHECK(train::table_peak_tflops("NVIDIA A100-SXM4-80GB", torch::kBFloat16) == 312.0);
  CHECK(train::table_peak_tflops("NVIDIA H100 PCIe", torch::kBFloat16) == 756.5);
  CHECK_FALSE(train::table_peak_tflops("cpu (8 threads)", torch::kFloat32).has_value());
  CHECK_FALSE(train::table_peak_tflops("NVIDIA GeForce RTX 4090", torch::kBFloat16).has_value());
  CHECK_FALSE(train::peak_tflops("cpu (8 threads)", torch::kFloat32, 0.0).has_value());
  CHECK(train::peak_tflops("cpu (8 threads)", torch::kFloat32, 1.5) == 1.5);
  CHECK(train::peak_tflops("NVIDIA H100 80GB HBM3", torch::kBFloat16, 800.0) == 800.0);
}
