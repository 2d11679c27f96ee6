// Corpora, tokenizers, token files and batches: what training reads.
//
// prepare() turns a corpus (Debian's King James Bible, or any UTF-8 text file)
// into token files under data/<name>/ with a deterministic train/validation
// split; load() memory-maps them back. Batches are random windows of
// seq_len+1 tokens drawn with a seeded generator whose state can be saved.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "config/run_config.h"

namespace attnlab::data {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string name() const = 0;        // "byte", "char", "sentencepiece"
  virtual int64_t vocab_size() const = 0;
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  // UTF-8 bytes of corpus text that one token stands for; bits per byte
  // divide by the sum of these over the tokens scored. The default decodes
  // the id alone, which is exact only when every id decodes on its own.
  virtual int64_t token_bytes(int64_t id) const { return static_cast<int64_t>(decode({id}).size()); }
};

// Token ids of one split, stored on disk as uint16 (vocab <= 65536) or uint32.
class TokenStore {
 public:
  TokenStore() = default;
  static TokenStore open(const std::filesystem::path& path);   // memory-maps; UserError if unreadable
  int64_t size() const { return size_; }
  // Tokens [start, start+len) as an int64 tensor.
  torch::Tensor slice(int64_t start, int64_t len) const;
  // Tokens [start, start + len) as int64 into dst (len entries), checked like slice().
  void copy_to(int64_t start, int64_t len, int64_t* dst) const;

 private:
  std::shared_ptr<const void> mapping_;  // keeps the mmap alive
  const void* data_ = nullptr;
  int64_t size_ = 0;
  int bytes_per_token_ = 2;
};

struct Dataset {
  std::string name;                        // "kjv" or the text file's stem
  std::filesystem::path dir;               // data/kjv/ or data/<stem>-<content hash>/
  std::filesystem::path tokens_dir;        // dir/<tokenizer tag>/: token files and the tokenizer's files
  std::string corpus_sha256;               // of the whole prepared corpus text
  std::string tokenizer_sha256;            // tokenizer_hash() of the tokenizer's saved files
  std::shared_ptr<const Tokenizer> tokenizer;
  TokenStore train;
  TokenStore val;
};

// Where prepare() puts a corpus: <cfg.dir>/kjv, or for a text file
// <cfg.dir>/<stem>-<first 16 hex digits of its sha256>, so two different files
// with the same name never share prepared data (reads the file to hash it).
std::filesystem::path dataset_dir(const DataConfig& cfg);
// Where one tokenizer's files live inside it: dataset_dir/<byte | char |
// sentencepiece-N>/ holds train.bin, val.bin, meta.yaml and the tokenizer files.
std::filesystem::path tokens_dir(const DataConfig& cfg);

// Writes corpus text, tokenizer files and train/val token files (idempotent:
// an already prepared, up-to-date dataset is left as it is). UserError for a
// missing file, an unavailable corpus, or a corpus too small to split.
// With `tokenizer_from` (a run's saved tokenizer directory) the tokenizer is
// copied from there instead of trained.
void prepare(const DataConfig& cfg, bool show_progress = true, const std::filesystem::path& tokenizer_from = {});

// prepare() if needed, then open the token files.
Dataset load(const DataConfig& cfg, const std::filesystem::path& tokenizer_from = {});

// Random training windows. next() returns {inputs_BT, targets_BT} (int64,
// targets shifted by one). Deterministic for a seed; state() / set_state()
// let a resumed run continue the same stream.
class Batcher {
 public:
  Batcher(const TokenStore& store, int64_t batch_size, int64_t seq_len, uint64_t seed);
  std::pair<torch::Tensor, torch::Tensor> next();
  uint64_t state() const { return draws_; }
  void set_state(uint64_t draws) { draws_ = draws; }

 private:
  TokenStore store_;  // a copy sharing the mapping, so the Batcher outlives moves of its Dataset
  int64_t batch_size_, seq_len_;
  uint64_t seed_;
  uint64_t draws_ = 0;  // batches drawn so far; the stream is a function of (seed, draws)
};

// A micro-batch's inputs and targets ([B, T] each) stacked as one [2, B, T]
// int64 buffer, page-locked (pinned) when `pinned`, so that one asynchronous
// copy moves it to a GPU (train::train_step reads this form).
torch::Tensor stacked_batch(const std::pair<torch::Tensor, torch::Tensor>& batch, bool pinned);

// Fixed validation batches: the same windows every evaluation, evenly spaced
// through the split, so evaluations are comparable across steps and runs.
std::vector<std::pair<torch::Tensor, torch::Tensor>> validation_batches(const TokenStore& store, int64_t n_batches,
                                                                         int64_t batch_size, int64_t seq_len);

}  // namespace attnlab::data
