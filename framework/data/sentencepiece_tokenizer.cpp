// SentencePiece: trains a BPE model on the training split through
// libsentencepiece's trainer (in memory, one line per sentence) and encodes
// with its processor. Settings are chosen for an exact round trip.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <fmt/format.h>

#include <algorithm>
#include <thread>
#include <unordered_map>

#include "core/error.h"
#include "data/tokenizer.h"
#include "results/run_log.h"

namespace attnlab::data {
namespace {

// Feeds the non-empty lines of a text to the trainer without copying it.
class LineIterator final : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(const std::string& text) : text_(text) { Next(); }
  bool done() const override { return done_; }
  void Next() override {
    while (pos_ < text_.size()) {
      size_t nl = text_.find('\n', pos_);
      size_t end = nl == std::string::npos ? text_.size() : nl;
      line_.assign(text_, pos_, end - pos_);
      pos_ = end + 1;
      if (!line_.empty()) return;
    }
    done_ = true;
  }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::string& text_;
  size_t pos_ = 0;
  std::string line_;
  bool done_ = false;
};

}  // namespace

void SentencePieceTokenizer::train(const std::string& text, int64_t vocab_size,
                                   const std::filesystem::path& model_file) {
  if (vocab_size <= 0) {
    throw_user_error("data.vocab_size", "", "data.tokenizer=sentencepiece needs a positive data.vocab_size");
  }
  unsigned threads = std::clamp(std::thread::hardware_concurrency(), 1U, 8U);
  std::unordered_map<std::string, std::string> args = {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(vocab_size)},
      {"character_coverage", "1.0"},
      // Exact round trip: unseen characters become byte pieces, text is not
      // normalized, and no space is invented at the start of a text.
      {"byte_fallback", "true"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "false"},
      {"remove_extra_whitespaces", "false"},
      {"bos_id", "-1"},
      {"eos_id", "-1"},
      {"unk_id", "0"},
      {"num_threads", std::to_string(threads)},
      // Lines are sentences; the default skips lines over 4192 bytes, which
      // would drop whole paragraphs of unwrapped prose.
      {"max_sentence_length", "65536"},
      {"minloglevel", "2"},  // warnings and errors only
  };
  LineIterator lines(text);
  std::string model;
  auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines, &model);
  if (!status.ok()) {
    throw_user_error("data.vocab_size", "",
                     fmt::format("SentencePiece could not train a {}-piece model on this corpus: {}", vocab_size,
                                 status.ToString()));
  }
  results::atomic_write_text(model_file, model);
}

SentencePieceTokenizer::SentencePieceTokenizer(const std::filesystem::path& model_file)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  auto status = sp_->Load(model_file.string());
  if (!status.ok()) {
    throw Error(fmt::format("cannot load the SentencePiece model {}: {}", model_file.string(), status.ToString()));
  }
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

int64_t SentencePieceTokenizer::vocab_size() const { return sp_->GetPieceSize(); }

std::vector<int64_t> SentencePieceTokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  auto status = sp_->Encode(text, &ids);
  if (!status.ok()) throw Error(fmt::format("SentencePiece encode failed: {}", status.ToString()));
  return {ids.begin(), ids.end()};
}

int64_t SentencePieceTokenizer::token_bytes(int64_t id) const {
  if (id < 0 || id >= vocab_size()) throw Error(fmt::format("sentencepiece tokenizer: id {} is out of range", id));
  const int i = static_cast<int>(id);
  if (sp_->IsByte(i)) return 1;
  if (sp_->IsControl(i)) return 0;
  if (sp_->IsUnknown(i)) return 1;  // never produced with byte fallback; counted as for the char tokenizer
  const std::string piece = sp_->IdToPiece(i);
  static const std::string kSpaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's escaped space
  int64_t bytes = static_cast<int64_t>(piece.size());
  for (size_t at = piece.find(kSpaceMark); at != std::string::npos; at = piece.find(kSpaceMark, at + kSpaceMark.size())) {
    bytes -= static_cast<int64_t>(kSpaceMark.size()) - 1;
  }
  return bytes;
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::vector<int> narrow;
  narrow.reserve(ids.size());
  int64_t n = vocab_size();
  for (int64_t id : ids) {
    if (id < 0 || id >= n) throw Error(fmt::format("sentencepiece tokenizer: id {} is out of range", id));
    narrow.push_back(static_cast<int>(id));
  }
  std::string out;
  auto status = sp_->Decode(narrow, &out);
  if (!status.ok()) throw Error(fmt::format("SentencePiece decode failed: {}", status.ToString()));
  return out;
}

}  // namespace attnlab::data
