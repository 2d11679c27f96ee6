// Byte and code-point tokenizers, and the factory that trains or opens any
// tokenizer kind from a dataset's tokenizer directory.
#include "data/tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "core/error.h"
#include "core/files.h"
#include "data/sha256.h"
#include "results/run_log.h"

namespace attnlab::data {
namespace {

// Decodes one code point at text[i], advancing i. Returns -1 for a byte that
// does not start valid UTF-8 (and advances past that one byte).
int64_t next_code_point(const std::string& text, size_t& i) {
  auto c = static_cast<unsigned char>(text[i]);
  if (c < 0x80) {
    ++i;
    return c;
  }
  size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
  uint32_t cp = len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
  if (len == 0 || i + len > text.size()) {
    ++i;
    return -1;
  }
  for (size_t k = 1; k < len; ++k) {
    auto b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return -1;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  i += len;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

constexpr char32_t kReplacement = 0xFFFD;

}  // namespace

std::vector<int64_t> ByteTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids(text.size());
  std::transform(text.begin(), text.end(), ids.begin(), [](char c) { return static_cast<unsigned char>(c); });
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out(ids.size(), '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] > 255) throw Error(fmt::format("byte tokenizer: id {} is out of range", ids[i]));
    out[i] = static_cast<char>(ids[i]);
  }
  return out;
}

CharTokenizer CharTokenizer::train(const std::string& text) {
  std::set<char32_t> seen;
  for (size_t i = 0; i < text.size();) {
    int64_t cp = next_code_point(text, i);
    if (cp >= 0) seen.insert(static_cast<char32_t>(cp));
  }
  CharTokenizer t;
  t.code_points_.assign(seen.begin(), seen.end());
  return t;
}

CharTokenizer CharTokenizer::load(const std::filesystem::path& vocab_file) {
  std::ifstream in(vocab_file);
  if (!in) throw Error(fmt::format("cannot read the character vocabulary {}", vocab_file.string()));
  CharTokenizer t;
  for (std::string line; std::getline(in, line);) {
    size_t used = 0;
    unsigned long cp = 0;
    try {
      cp = std::stoul(line, &used, 16);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != line.size() || cp > 0x10FFFF ||
        (!t.code_points_.empty() && cp <= t.code_points_.back())) {
      throw Error(fmt::format("{}: line {} is not an increasing hex code point: '{}'", vocab_file.string(),
                              t.code_points_.size() + 1, line));
    }
    t.code_points_.push_back(static_cast<char32_t>(cp));
  }
  return t;
}

void CharTokenizer::save(const std::filesystem::path& vocab_file) const {
  std::string text;
  for (char32_t cp : code_points_) text += fmt::format("{:04X}\n", static_cast<uint32_t>(cp));
  results::atomic_write_text(vocab_file, text);
}

std::vector<int64_t> CharTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  ids.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    int64_t cp = next_code_point(text, i);
    auto it = std::lower_bound(code_points_.begin(), code_points_.end(), static_cast<char32_t>(cp));
    bool known = cp >= 0 && it != code_points_.end() && *it == static_cast<char32_t>(cp);
    ids.push_back(known ? (it - code_points_.begin()) + 1 : 0);
  }
  return ids;
}

int64_t CharTokenizer::token_bytes(int64_t id) const {
  if (id < 0 || id >= vocab_size()) throw Error(fmt::format("char tokenizer: id {} is out of range", id));
  if (id == 0) return 1;
  std::string utf8;
  append_utf8(utf8, code_points_[static_cast<size_t>(id - 1)]);
  return static_cast<int64_t>(utf8.size());
}

std::string CharTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  out.reserve(ids.size());
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size()) throw Error(fmt::format("char tokenizer: id {} is out of range", id));
    append_utf8(out, id == 0 ? kReplacement : code_points_[static_cast<size_t>(id - 1)]);
  }
  return out;
}

std::shared_ptr<const Tokenizer> train_tokenizer(const std::string& kind, int64_t vocab_size,
                                                 const std::string& train_text, const std::filesystem::path& dir) {
  if (kind == "byte") return std::make_shared<ByteTokenizer>();
  if (kind == "char") {
    auto t = CharTokenizer::train(train_text);
    t.save(dir / kCharVocabFile);
    return std::make_shared<CharTokenizer>(std::move(t));
  }
  if (kind == "sentencepiece") {
    SentencePieceTokenizer::train(train_text, vocab_size, dir / kSentencePieceModelFile);
    return std::make_shared<SentencePieceTokenizer>(dir / kSentencePieceModelFile);
  }
  throw_user_error("data.tokenizer", "", fmt::format("unknown tokenizer '{}' (expected byte, char or sentencepiece)",
                                                     kind));
}

std::shared_ptr<const Tokenizer> open_tokenizer(const std::string& kind, const std::filesystem::path& dir) {
  if (kind == "byte") return std::make_shared<ByteTokenizer>();
  if (kind == "char") return std::make_shared<CharTokenizer>(CharTokenizer::load(dir / kCharVocabFile));
  if (kind == "sentencepiece") return std::make_shared<SentencePieceTokenizer>(dir / kSentencePieceModelFile);
  throw_user_error("data.tokenizer", "", fmt::format("unknown tokenizer '{}' (expected byte, char or sentencepiece)",
                                                     kind));
}

std::string tokenizer_file_name(const std::string& kind) {
  if (kind == "char") return kCharVocabFile;
  if (kind == "sentencepiece") return kSentencePieceModelFile;
  return "";
}

std::string tokenizer_hash(const std::string& kind, const std::filesystem::path& dir) {
  const std::string file = tokenizer_file_name(kind);
  if (file.empty()) return sha256_hex(kind);
  auto bytes = read_file(dir / file);
  if (!bytes) throw Error(fmt::format("cannot read the tokenizer file {}", (dir / file).string()));
  return sha256_hex(*bytes);
}

void copy_tokenizer(const std::string& kind, const std::filesystem::path& from, const std::filesystem::path& to) {
  const std::string file = tokenizer_file_name(kind);
  std::filesystem::create_directories(to);
  if (file.empty()) return;
  auto bytes = read_file(from / file);
  if (!bytes) throw Error(fmt::format("cannot read the tokenizer file {}", (from / file).string()));
  results::atomic_write_text(to / file, *bytes);
}

}  // namespace attnlab::data
