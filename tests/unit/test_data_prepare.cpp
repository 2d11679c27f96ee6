// prepare(): verse references stripped from the KJV, a deterministic
// line-aligned split, token files that decode back to the corpus, and user
// errors that name data.path.
#include <catch2/catch.hpp>

#include <sstream>

#include "core/error.h"
#include "data/corpus.h"
#include "data/dataset.h"
#include "data/sha256.h"
#include "data/tokenizer.h"
#include "skip.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using namespace attnlab::data;
using attnlab::DataConfig;
using attnlab::test::read_bytes;
using attnlab::test::TempDir;
using attnlab::test::write_bytes;

namespace {

std::string decode_all(const Dataset& ds, const TokenStore& store) {
  auto t = store.slice(0, store.size());
  std::vector<int64_t> ids(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
  return ds.tokenizer->decode(ids);
}

std::string numbered_lines(int n) {
  std::string text;
  for (int i = 0; i < n; ++i) text += "line " + std::to_string(i) + " — ünïcödé text to tokenize\n";
  return text;
}

DataConfig text_config(const fs::path& root, const fs::path& file, const std::string& tokenizer) {
  DataConfig cfg;
  cfg.kind = "text";
  cfg.path = file.string();
  cfg.tokenizer = tokenizer;
  cfg.dir = (root / "data").string();
  cfg.val_fraction = 0.1;
  return cfg;
}

bool has_bible() { return std::system("command -v bible >/dev/null 2>&1") == 0; }

}  // namespace

TEST_CASE("verse references are stripped from the bible program's output", "[data]") {
  std::string raw =
      "\nGenesis 1\n\n  1 In the beginning God created the heaven and the earth.\n"
      "  2 And the earth was without form.  \n  10 And God called the dry land Earth.\n"
      "\nGenesis 2\n\n  1 Thus the heavens and the earth were finished.\n"
      "\n1 John 3\n\n  1 Behold, what manner of love.\n";
  CHECK(kjv_from_bible_output(raw) ==
        "In the beginning God created the heaven and the earth.\nAnd the earth was without form.\n"
        "And God called the dry land Earth.\n\nThus the heavens and the earth were finished.\n\n"
        "Behold, what manner of love.\n");
  CHECK_THROWS_WITH(kjv_from_bible_output("Genesis 1\n  x no number\n"), Catch::Contains("line 2"));
  CHECK_THROWS_WITH(kjv_from_bible_output("Genesis 1\nstray text\n"), Catch::Contains("stray text"));
}

TEST_CASE("the split is at a line boundary, deterministic, and covers the corpus once", "[data]") {
  std::string text = numbered_lines(100);
  size_t at = split_offset(text, 0.1);
  CHECK(text[at - 1] == '\n');
  CHECK(at >= text.size() * 9 / 10);
  CHECK(split_offset(text, 0.1) == at);
  CHECK(split_offset("one line without a break", 0.5) == std::string("one line without a break").size());
}

TEST_CASE("a text corpus becomes token files that decode back to it", "[data]") {
  TempDir dir;
  std::string text = numbered_lines(400);
  write_bytes(dir.path / "poems.txt", text);
  std::string tokenizer = GENERATE(as<std::string>{}, "byte", "char", "sentencepiece");
  DataConfig cfg = text_config(dir.path, dir.path / "poems.txt", tokenizer);
  cfg.vocab_size = 300;
  INFO("tokenizer " << tokenizer);

  Dataset ds = load(cfg);
  CHECK(ds.name == "poems");
  CHECK(ds.dir == dir.path / "data" / ("poems-" + sha256_hex(text).substr(0, 16)));
  CHECK(ds.tokenizer->name() == tokenizer);
  size_t split = split_offset(text, cfg.val_fraction);
  std::string train = decode_all(ds, ds.train), val = decode_all(ds, ds.val);
  CHECK(train == text.substr(0, split));  // disjoint and complete: train + val == corpus
  CHECK(val == text.substr(split));
  CHECK(val.starts_with("line 3"));  // the last tenth of 400 lines starts at a line

  std::string meta = read_bytes(tokens_dir(cfg) / "meta.yaml");
  CHECK_THAT(meta, Catch::Contains("corpus_hash: " + content_hash(text)));
  CHECK_THAT(meta, Catch::Contains("train_tokens: " + std::to_string(ds.train.size())));
  CHECK_THAT(meta, Catch::Contains("token_bytes: 2"));
  CHECK(fs::file_size(tokens_dir(cfg) / "train.bin") == static_cast<uintmax_t>(ds.train.size()) * 2);
  // Bits per byte rest on token_bytes(): over the whole split (multi-byte
  // characters, SentencePiece's space marks) it must add up to the text's bytes.
  auto val_ids = ds.val.slice(0, ds.val.size());
  int64_t val_bytes = 0;
  for (int64_t i = 0; i < val_ids.numel(); ++i) val_bytes += ds.tokenizer->token_bytes(val_ids[i].item<int64_t>());
  CHECK(val_bytes == static_cast<int64_t>(val.size()));
  if (tokenizer == "sentencepiece") CHECK(static_cast<double>(val.size()) / static_cast<double>(ds.val.size()) > 2.0);
}

TEST_CASE("prepare is deterministic and redoes the work only when the corpus changes", "[data]") {
  TempDir dir;
  write_bytes(dir.path / "c.txt", numbered_lines(200));
  DataConfig a = text_config(dir.path / "a", dir.path / "c.txt", "byte");
  DataConfig b = text_config(dir.path / "b", dir.path / "c.txt", "byte");
  prepare(a, false);
  prepare(b, false);
  CHECK(read_bytes(tokens_dir(a) / "train.bin") == read_bytes(tokens_dir(b) / "train.bin"));
  CHECK(read_bytes(tokens_dir(a) / "val.bin") == read_bytes(tokens_dir(b) / "val.bin"));

  auto stamp = fs::last_write_time(tokens_dir(a) / "meta.yaml");
  prepare(a, false);
  CHECK(fs::last_write_time(tokens_dir(a) / "meta.yaml") == stamp);  // up to date: untouched

  write_bytes(dir.path / "c.txt", numbered_lines(300));
  Dataset ds = load(a);
  CHECK(decode_all(ds, ds.train) + decode_all(ds, ds.val) == numbered_lines(300));
}

TEST_CASE("token files garbled in place (same size) fail their checksum and are prepared again", "[data]") {
  TempDir dir;
  write_bytes(dir.path / "c.txt", numbered_lines(200));
  DataConfig cfg = text_config(dir.path, dir.path / "c.txt", "byte");
  prepare(cfg, false);
  for (const char* split : {"train.bin", "val.bin"}) {
    const fs::path file = tokens_dir(cfg) / split;
    const std::string good = read_bytes(file);
    std::string bad = good;
    for (size_t i = 0; i < bad.size(); i += 7) bad[i] = static_cast<char>(bad[i] ^ 0x5a);  // same size, other ids
    write_bytes(file, bad);
    Dataset ds = load(cfg);  // verifies, finds the damage, prepares again
    CHECK(read_bytes(file) == good);
    CHECK(decode_all(ds, ds.train) + decode_all(ds, ds.val) == numbered_lines(200));
  }
}

TEST_CASE("text corpus problems are user errors naming data.path", "[data]") {
  TempDir dir;
  DataConfig cfg = text_config(dir.path, dir.path / "absent.txt", "byte");
  CHECK_THROWS_AS(prepare(cfg, false), attnlab::UserError);
  CHECK_THROWS_WITH(prepare(cfg, false), Catch::Contains("data.path") && Catch::Contains("absent.txt"));
  CHECK_FALSE(fs::exists(dir.path / "data"));  // nothing written for a bad file

  write_bytes(dir.path / "latin1.txt", "caf\xE9\n");
  cfg.path = (dir.path / "latin1.txt").string();
  CHECK_THROWS_WITH(prepare(cfg, false), Catch::Contains("data.path") && Catch::Contains("not valid UTF-8"));

  write_bytes(dir.path / "one.txt", "a single line with no break to split at");
  cfg.path = (dir.path / "one.txt").string();
  CHECK_THROWS_WITH(prepare(cfg, false), Catch::Contains("data.path") && Catch::Contains("too small"));

  cfg.path.clear();
  CHECK_THROWS_WITH(prepare(cfg, false), Catch::Contains("data.path"));
}

TEST_CASE("the King James Bible is prepared without verse references", "[data][kjv]") {
  if (!has_bible()) ATTNLAB_SKIP("the `bible` program (Debian package bible-kjv) is not installed");
  TempDir dir;
  DataConfig cfg;
  cfg.kind = "kjv";
  cfg.tokenizer = "byte";
  cfg.dir = (dir.path / "data").string();
  Dataset ds = load(cfg);
  std::string corpus = read_bytes(dir.path / "data" / "kjv" / "corpus.txt");
  CHECK(corpus.size() > 4'000'000);
  CHECK(corpus.size() < 4'600'000);
  CHECK(corpus.starts_with("In the beginning God created the heaven and the earth.\n"));
  CHECK(corpus.ends_with("The grace of our Lord Jesus Christ be with you all. Amen.\n"));
  std::istringstream lines(corpus);
  int verses = 0, blanks = 0, digit_starts = 0, headings = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) {
      ++blanks;
      continue;
    }
    ++verses;
    if (std::isdigit(static_cast<unsigned char>(line[0])) || line[0] == ' ') ++digit_starts;
    if (line == "Genesis 1" || line == "Revelation 22" || line == "Psalms 119") ++headings;
  }
  CHECK(verses == 31102);  // the KJV's verse count
  CHECK(blanks == 1188);   // 1189 chapters
  CHECK(digit_starts == 0);
  CHECK(headings == 0);
  CHECK(ds.train.size() + ds.val.size() == static_cast<int64_t>(corpus.size()));
  CHECK(decode_all(ds, ds.val) == corpus.substr(split_offset(corpus, cfg.val_fraction)));
}

TEST_CASE("a SentencePiece tokenizer trained on the whole KJV round-trips it", "[kjv][.slow]") {
  if (!has_bible()) ATTNLAB_SKIP("the `bible` program (Debian package bible-kjv) is not installed");
  TempDir dir;
  DataConfig cfg;
  cfg.kind = "kjv";
  cfg.tokenizer = "sentencepiece";
  cfg.vocab_size = 4096;
  cfg.dir = (dir.path / "data").string();
  Dataset ds = load(cfg);
  CHECK(ds.tokenizer->vocab_size() == 4096);
  std::string corpus = read_bytes(dir.path / "data" / "kjv" / "corpus.txt");
  CHECK(decode_all(ds, ds.train) + decode_all(ds, ds.val) == corpus);
  double bytes_per_token = static_cast<double>(corpus.size()) / static_cast<double>(ds.train.size() + ds.val.size());
  CHECK(bytes_per_token > 3.0);  // a 4096-piece BPE compresses English several-fold
}

TEST_CASE("a line longer than an encoding chunk is never cut inside a character", "[data]") {
  TempDir dir;
  std::string text = "x";  // odd offset: a chunk boundary at an even byte count falls inside a 'ü'
  for (int i = 0; i < 200'000; ++i) text += "ü";  // 400 KB without a line break
  text += "\nüü\n";
  write_bytes(dir.path / "long.txt", text);
  DataConfig cfg = text_config(dir.path, dir.path / "long.txt", "char");
  Dataset ds = load(cfg);
  CHECK(ds.tokenizer->vocab_size() == 4);  // <unk>, newline, x, ü
  CHECK(decode_all(ds, ds.train) == text.substr(0, 400'002));
  CHECK(decode_all(ds, ds.val) == "üü\n");
  auto ids = ds.train.slice(0, ds.train.size());
  CHECK((ids == 0).sum().item<int64_t>() == 0);  // no <unk> from a split sequence
}

TEST_CASE("two different corpora with the same file name are prepared apart", "[data]") {
  TempDir dir;
  fs::create_directories(dir.path / "a");
  fs::create_directories(dir.path / "b");
  const std::string text_a = numbered_lines(50), text_b = numbered_lines(60);
  write_bytes(dir.path / "a" / "train.txt", text_a);
  write_bytes(dir.path / "b" / "train.txt", text_b);
  // One data.dir for both, as two runs of a sweep would share.
  DataConfig a = text_config(dir.path, dir.path / "a" / "train.txt", "char");
  DataConfig b = text_config(dir.path, dir.path / "b" / "train.txt", "char");
  Dataset da = load(a), db = load(b);
  CHECK(da.dir != db.dir);
  CHECK(da.name == "train");
  CHECK(decode_all(da, da.train) + decode_all(da, da.val) == text_a);
  CHECK(decode_all(db, db.train) + decode_all(db, db.val) == text_b);
  CHECK(da.corpus_sha256 == sha256_hex(text_a));
  CHECK(db.corpus_sha256 == sha256_hex(text_b));
}
