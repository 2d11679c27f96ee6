// seed sets the initial weights, data_seed the batch order: each can change
// without moving the other.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "data/dataset.h"
#include "temp_dir.h"
#include "train/trainer.h"

using namespace attnlab;
using attnlab::test::TempDir;
using attnlab::test::write_bytes;

namespace {

bool same_weights(model::TransformerLM& a, model::TransformerLM& b) {
  auto pa = a->parameters(), pb = b->parameters();
  if (pa.size() != pb.size()) return false;
  for (size_t i = 0; i < pa.size(); ++i) {
    if (!torch::equal(pa[i], pb[i])) return false;
  }
  return true;
}

bool same_batches(const RunConfig& a, const RunConfig& b, const data::TokenStore& store) {
  auto ba = train::training_batcher(a, store), bb = train::training_batcher(b, store);
  for (int i = 0; i < 3; ++i) {
    if (!torch::equal(ba.next().first, bb.next().first)) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("seed sets the initial weights and data_seed the batch order, independently", "[train]") {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 300; ++i) text += "line " + std::to_string(i) + " of a small corpus\n";
  write_bytes(dir.path / "c.txt", text);
  RunConfig base;
  base.data.kind = "text";
  base.data.path = (dir.path / "c.txt").string();
  base.data.tokenizer = "byte";
  base.data.dir = (dir.path / "data").string();
  base.train.batch_size = 4;
  base.train.seq_len = 16;
  base.model.n_layers = 1;
  base.model.d_model = 32;
  base.model.n_heads = 2;
  auto ds = data::load(base.data);

  base.seed = 1;
  base.data_seed = 2;
  RunConfig other_data = base, other_init = base, follows = base;
  other_data.data_seed = 3;
  other_init.seed = 5;
  follows.data_seed = -1;  // the sentinel: batch order from seed (1)

  auto m_base = train::init_model(base, 256), m_other_data = train::init_model(other_data, 256),
       m_other_init = train::init_model(other_init, 256);
  CHECK(same_weights(m_base, m_other_data));
  CHECK_FALSE(same_batches(base, other_data, ds.train));
  CHECK_FALSE(same_weights(m_base, m_other_init));
  CHECK(same_batches(base, other_init, ds.train));

  RunConfig seed_one = base;
  seed_one.data_seed = 1;
  CHECK(follows.resolved_data_seed() == 1);
  CHECK(same_batches(follows, seed_one, ds.train));
}
