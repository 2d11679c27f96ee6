// Tokenizers: byte and SentencePiece round trips on any text, the char
// vocabulary with its <unk>, and the UTF-8 check used on corpora.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "data/corpus.h"
#include "data/tokenizer.h"
#include "temp_dir.h"

using namespace attnlab::data;
using attnlab::test::TempDir;

namespace {

// A small corpus with real structure, so BPE has merges to learn: sentences
// drawn from a few hundred words, plus some non-ASCII lines.
std::string small_corpus(size_t lines, uint32_t seed) {
  const char* words[] = {"the", "and", "of", "unto", "shall", "lord", "that", "he", "in", "his", "they", "him",
                         "not", "them", "is", "for", "with", "all", "thou", "thy", "was", "which", "my", "king",
                         "people", "house", "children", "son", "land", "day", "before", "israel", "came", "said"};
  std::mt19937 rng(seed);
  std::string text;
  for (size_t i = 0; i < lines; ++i) {
    size_t n = 4 + rng() % 12;
    for (size_t w = 0; w < n; ++w) {
      text += words[rng() % std::size(words)];
      text += w + 1 < n ? " " : ".\n";
    }
    if (i % 97 == 0) text += "Ἐν ἀρχῇ ἦν ὁ λόγος, καὶ ὁ λόγος ἦν πρὸς τὸν θεόν.\n";
  }
  return text;
}

}  // namespace

TEST_CASE("the byte tokenizer round-trips any bytes exactly", "[data]") {
  ByteTokenizer tok;
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  auto ids = tok.encode(all);
  REQUIRE(ids.size() == 256);
  CHECK(ids[0] == 0);
  CHECK(ids[255] == 255);
  CHECK(tok.decode(ids) == all);
  CHECK(tok.vocab_size() == 256);
  CHECK(tok.decode(tok.encode("naïve café\n")) == "naïve café\n");
  CHECK_THROWS(tok.decode({256}));
}

TEST_CASE("the char tokenizer maps each seen code point to one id and the rest to <unk>", "[data]") {
  TempDir dir;
  auto tok = CharTokenizer::train("abc ünï 世界\n");
  CHECK(tok.vocab_size() == 10 + 1);  // a b c space ü n ï 世 界 newline, + <unk>
  auto ids = tok.encode("ünï 世界");
  CHECK(ids.size() == 6);
  CHECK(tok.decode(ids) == "ünï 世界");
  auto unk = tok.encode("aξb");
  REQUIRE(unk.size() == 3);
  CHECK(unk[1] == 0);
  CHECK(tok.decode(unk) == "a\xEF\xBF\xBD" "b");  // U+FFFD for the unknown
  tok.save(dir.path / "vocab.txt");
  auto back = CharTokenizer::load(dir.path / "vocab.txt");
  CHECK(back.vocab_size() == tok.vocab_size());
  CHECK(back.encode("cab 界\n") == tok.encode("cab 界\n"));
}

TEST_CASE("a trained SentencePiece model round-trips text exactly, seen or not", "[data]") {
  TempDir dir;
  std::string corpus = small_corpus(2000, 1);
  SentencePieceTokenizer::train(corpus, 400, dir.path / "tokenizer.model");
  SentencePieceTokenizer tok(dir.path / "tokenizer.model");
  CHECK(tok.vocab_size() == 400);

  auto ids = tok.encode(corpus);
  CHECK(tok.decode(ids) == corpus);
  // Real merges were learned: far fewer tokens than bytes.
  CHECK(static_cast<double>(ids.size()) < 0.5 * static_cast<double>(corpus.size()));
  for (int64_t id : ids) {
    CHECK(id >= 0);
    CHECK(id < 400);
  }
  // Characters never seen in training fall back to bytes; whitespace is kept as is.
  for (std::string text : {"  leading spaces,\ttabs and   runs  ", "emoji 🚀 and 漢字 unseen\n\nblank line above",
                           "\n", "", "the lord said unto him"}) {
    INFO(text);
    CHECK(tok.decode(tok.encode(text)) == text);
  }
}

TEST_CASE("SentencePiece training rejects an impossible vocabulary size as a user error", "[data]") {
  TempDir dir;
  CHECK_THROWS_WITH(SentencePieceTokenizer::train("tiny corpus\n", 0, dir.path / "m.model"),
                    Catch::Contains("data.vocab_size"));
  CHECK_THROWS_WITH(SentencePieceTokenizer::train(small_corpus(50, 2), 100000, dir.path / "m.model"),
                    Catch::Contains("data.vocab_size"));
  CHECK_FALSE(std::filesystem::exists(dir.path / "m.model"));
}

TEST_CASE("UTF-8 validation finds the first bad byte", "[data]") {
  CHECK(find_invalid_utf8("plain ASCII\n") == std::string_view::npos);
  CHECK(find_invalid_utf8("Καλημέρα 世界 🚀") == std::string_view::npos);
  CHECK(find_invalid_utf8("ab\xFF" "cd") == 2);
  CHECK(find_invalid_utf8("ab\xC3") == 2);                // truncated sequence
  CHECK(find_invalid_utf8("\xC0\xAF") == 0);              // overlong '/'
  CHECK(find_invalid_utf8("x\xED\xA0\x80") == 1);         // UTF-16 surrogate
  CHECK(find_invalid_utf8("\xF4\x90\x80\x80") == 0);      // above U+10FFFF
}
