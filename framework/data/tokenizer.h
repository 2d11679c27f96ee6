// The tokenizers behind data::Tokenizer: bytes, code points, and SentencePiece.
// Each trainable tokenizer is built from the training split and saved to files
// in the dataset's tokenizer directory; open_tokenizer() reads them back.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace attnlab::data {

// Ids are the bytes themselves: vocab 256, exact round trip on any input.
class ByteTokenizer final : public Tokenizer {
 public:
  std::string name() const override { return "byte"; }
  int64_t vocab_size() const override { return 256; }
  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t token_bytes(int64_t) const override { return 1; }
};

// One id per Unicode code point seen in the training text, plus id 0 for
// <unk> (anything unseen, or bytes that are not UTF-8; decoded as U+FFFD).
class CharTokenizer final : public Tokenizer {
 public:
  static CharTokenizer train(const std::string& text);
  // The vocabulary file: one code point per line, in hex, for ids 1, 2, ...
  static CharTokenizer load(const std::filesystem::path& vocab_file);
  void save(const std::filesystem::path& vocab_file) const;

  std::string name() const override { return "char"; }
  int64_t vocab_size() const override { return static_cast<int64_t>(code_points_.size()) + 1; }
  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  // The code point's UTF-8 length. <unk> stood for 1 to 4 bytes that the id
  // no longer tells; it counts as 1, so it can only overstate bits per byte.
  int64_t token_bytes(int64_t id) const override;

 private:
  std::vector<char32_t> code_points_;  // sorted; id = index + 1
};

// A SentencePiece BPE model trained with byte fallback, identity
// normalization and no dummy prefix, so decode(encode(text)) == text for any
// UTF-8 text, including characters the model never saw.
class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Trains on `text` (one sentence per line) with `vocab_size` pieces and
  // writes the model to `model_file` atomically. UserError (data.vocab_size)
  // when SentencePiece rejects the size for this corpus.
  static void train(const std::string& text, int64_t vocab_size, const std::filesystem::path& model_file);
  explicit SentencePieceTokenizer(const std::filesystem::path& model_file);
  ~SentencePieceTokenizer() override;

  std::string name() const override { return "sentencepiece"; }
  int64_t vocab_size() const override;
  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  // A byte-fallback piece is one byte; a text piece its UTF-8 length with
  // the whitespace mark U+2581 counted as the one-byte space it replaced.
  int64_t token_bytes(int64_t id) const override;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

// File names inside a tokenizer directory.
inline constexpr const char* kCharVocabFile = "vocab.txt";
inline constexpr const char* kSentencePieceModelFile = "tokenizer.model";

// Builds the tokenizer `kind` ("byte", "char", "sentencepiece") from the
// training text and saves its files into `dir`; returns it.
std::shared_ptr<const Tokenizer> train_tokenizer(const std::string& kind, int64_t vocab_size,
                                                 const std::string& train_text, const std::filesystem::path& dir);
// Reads back a tokenizer that train_tokenizer() saved into `dir`.
std::shared_ptr<const Tokenizer> open_tokenizer(const std::string& kind, const std::filesystem::path& dir);

// The file a tokenizer kind saves: vocab.txt, tokenizer.model, or "" for byte.
std::string tokenizer_file_name(const std::string& kind);
// sha256 of the saved file in `dir` ("byte", which has none: sha256 of the
// text "byte"). Error when the file cannot be read.
std::string tokenizer_hash(const std::string& kind, const std::filesystem::path& dir);
// Copies the saved file of `kind` from one directory into another (atomically).
void copy_tokenizer(const std::string& kind, const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace attnlab::data
