// prepare() and load(): corpus text -> tokenizer files -> train.bin / val.bin
// and meta.yaml, under data/<name>/<tokenizer>/. meta.yaml is written last and
// records the corpus hash, so a complete, up-to-date dataset is left alone.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <optional>

#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "data/corpus.h"
#include "data/dataset.h"
#include "data/sha256.h"
#include "data/synthetic.h"
#include "data/tokenizer.h"
#include "results/durable.h"
#include "results/run_log.h"

namespace attnlab::data {
namespace fs = std::filesystem;

namespace {

// Bump when the token files or the KJV stripping change meaning.
// 2: meta.yaml records corpus_sha256 and tokenizer_sha256
// 3: and train_sha256 / val_sha256, the token files' checksums
constexpr int kDataFormat = 3;
constexpr int kCorpusFormat = 1;
constexpr size_t kEncodeChunkBytes = 1 << 18;

// Serializes prepare() across processes (a sweep's runs may start together).
class DirLock {
 public:
  explicit DirLock(const fs::path& file) {
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(fmt::format("cannot create lock file {}: {}", file.string(), std::strerror(errno)));
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        ::close(fd_);
        throw Error(fmt::format("cannot lock {}: {}", file.string(), std::strerror(errno)));
      }
    }
  }
  ~DirLock() { ::close(fd_); }  // closing releases the lock
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

std::string tokenizer_tag(const DataConfig& cfg) {
  return cfg.tokenizer == "sentencepiece" ? fmt::format("sentencepiece-{}", cfg.vocab_size) : cfg.tokenizer;
}

std::string dataset_name(const DataConfig& cfg) {
  return cfg.kind == "kjv" ? std::string("kjv") : fs::path(cfg.path).stem().string();
}

// The KJV corpus.txt, regenerated only when missing or written by other code.
std::string kjv_corpus(const fs::path& dir) {
  fs::path text_file = dir / "corpus.txt", info_file = dir / "corpus.yaml";
  std::error_code ec;
  if (fs::exists(text_file, ec) && fs::exists(info_file, ec)) {
    try {
      YAML::Node info = YAML::LoadFile(info_file.string());
      std::string text = read_file(text_file).value_or("");
      if (info["corpus_format"].as<int>() == kCorpusFormat && info["hash"].as<std::string>() == content_hash(text)) {
        return text;
      }
    } catch (const YAML::Exception&) {
      // unreadable: regenerate below
    }
  }
  std::string text = read_kjv();
  results::atomic_write_text(text_file, text);
  YAML::Emitter info;
  info << YAML::BeginMap << YAML::Key << "source" << YAML::Value
       << fmt::format("Debian package bible-kjv (public domain), `{}`, verse references stripped", kKjvCommand)
       << YAML::Key << "corpus_format" << YAML::Value << kCorpusFormat << YAML::Key << "bytes" << YAML::Value
       << text.size() << YAML::Key << "hash" << YAML::Value << content_hash(text) << YAML::EndMap;
  results::atomic_write_text(info_file, std::string(info.c_str()) + "\n");
  return text;
}

std::string source_of(const DataConfig& cfg) {
  if (cfg.kind == "kjv") return fmt::format("Debian package bible-kjv (public domain), `{}`", kKjvCommand);
  return fs::absolute(cfg.path).string();
}

// True when meta.yaml describes token files built from this corpus with these settings.
bool up_to_date(const DataConfig& cfg, const fs::path& tok_dir, const std::string& hash) {
  std::error_code ec;
  if (!fs::exists(tok_dir / "meta.yaml", ec)) return false;
  try {
    YAML::Node meta = YAML::LoadFile((tok_dir / "meta.yaml").string());
    if (meta["format"].as<int>() != kDataFormat || meta["corpus_hash"].as<std::string>() != hash ||
        meta["tokenizer"].as<std::string>() != cfg.tokenizer ||
        std::abs(meta["val_fraction"].as<double>() - cfg.val_fraction) > 1e-12) {
      return false;
    }
    auto bytes = meta["token_bytes"].as<uintmax_t>();
    if (fs::file_size(tok_dir / "train.bin", ec) != meta["train_tokens"].as<uintmax_t>() * bytes || ec) return false;
    if (fs::file_size(tok_dir / "val.bin", ec) != meta["val_tokens"].as<uintmax_t>() * bytes || ec) return false;
    if (cfg.tokenizer == "char" && !fs::exists(tok_dir / kCharVocabFile, ec)) return false;
    if (cfg.tokenizer == "sentencepiece" && !fs::exists(tok_dir / kSentencePieceModelFile, ec)) return false;
    // Token files garbled in place keep their size: their checksums tell.
    for (const char* split : {"train", "val"}) {
      const fs::path file = tok_dir / (std::string(split) + ".bin");
      if (sha256_file(file) != meta[std::string(split) + "_sha256"].as<std::string>()) {
        fmt::print(stderr, "warning: {} does not match the sha256 in meta.yaml (damaged on disk?); preparing the "
                           "dataset again\n", file.string());
        return false;
      }
    }
    return true;
  } catch (const YAML::Exception&) {
    return false;
  }
}

// Encodes `text` in line-aligned chunks and writes the ids to `path`
// atomically as little-endian uint16 or uint32. Returns the token count.
int64_t write_tokens(const Tokenizer& tok, std::string_view text, int token_bytes, const fs::path& path,
                     Progress* progress, int64_t progress_offset) {
  fs::path tmp = path;
  tmp += ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(fmt::format("cannot create {}", tmp.string()));
  int64_t count = 0;
  std::vector<char> buf;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = std::min(text.size(), pos + kEncodeChunkBytes);
    if (end < text.size()) {
      size_t nl = text.rfind('\n', end - 1);
      if (nl != std::string_view::npos && nl >= pos) {
        end = nl + 1;
      } else {
        // One very long line: at least never cut a UTF-8 sequence in two.
        while (end > pos + 1 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
      }
    }
    auto ids = tok.encode(std::string(text.substr(pos, end - pos)));
    buf.resize(ids.size() * static_cast<size_t>(token_bytes));
    for (size_t i = 0; i < ids.size(); ++i) {
      auto v = static_cast<uint32_t>(ids[i]);
      if (token_bytes == 2) {
        auto v16 = static_cast<uint16_t>(v);
        std::memcpy(buf.data() + 2 * i, &v16, 2);
      } else {
        std::memcpy(buf.data() + 4 * i, &v, 4);
      }
    }
    out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
    count += static_cast<int64_t>(ids.size());
    pos = end;
    // The final update comes from Progress::finish().
    if (progress != nullptr && pos < text.size()) progress->update(progress_offset + static_cast<int64_t>(pos));
  }
  out.close();
  if (!out) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw Error(fmt::format("writing {} failed", tmp.string()));
  }
  results::replace_durably(tmp, path);
  return count;
}

}  // namespace

fs::path tokens_dir(const DataConfig& cfg) { return dataset_dir(cfg) / tokenizer_tag(cfg); }

fs::path dataset_dir(const DataConfig& cfg) {
  if (cfg.kind == "kjv") return fs::path(cfg.dir) / "kjv";
  if (cfg.kind == "text") {
    if (cfg.path.empty()) throw_user_error("data.path", "", "data.kind=text needs data.path, a UTF-8 text file");
    std::string stem = fs::path(cfg.path).stem().string();
    if (stem.empty() || stem == "." || stem == "..") {
      throw_user_error("data.path", "", fmt::format("'{}' does not name a file", cfg.path));
    }
    return fs::path(cfg.dir) / fmt::format("{}-{}", stem, sha256_hex(read_text_file(cfg.path, "data.path")).substr(0, 16));
  }
  throw_user_error("data.kind", "",
                   fmt::format("'{}' has no corpus on disk to prepare (expected kjv or text)", cfg.kind));
}

void prepare(const DataConfig& cfg, bool show_progress, const fs::path& tokenizer_from) {
  if (cfg.kind == "synthetic") return;  // generated on the fly: nothing to prepare
  fs::path dir = dataset_dir(cfg);
  if (!(cfg.val_fraction > 0.0 && cfg.val_fraction < 1.0)) {
    throw_user_error("data.val_fraction", "", fmt::format("must be between 0 and 1 (exclusive), not {}",
                                                          cfg.val_fraction));
  }
  if (cfg.tokenizer != "byte" && cfg.tokenizer != "char" && cfg.tokenizer != "sentencepiece") {
    throw_user_error("data.tokenizer", "",
                     fmt::format("unknown tokenizer '{}' (expected byte, char or sentencepiece)", cfg.tokenizer));
  }
  // Read (and validate) a text file before creating anything for it.
  std::string text = cfg.kind == "text" ? read_text_file(cfg.path, "data.path") : std::string();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw UserError(fmt::format("cannot create data directory {}: {}", dir.string(), ec.message()));
  DirLock lock(dir / ".prepare.lock");
  if (cfg.kind == "kjv") text = kjv_corpus(dir);

  std::string hash = content_hash(text);
  fs::path tok_dir = tokens_dir(cfg);
  if (up_to_date(cfg, tok_dir, hash)) return;

  size_t split = split_offset(text, cfg.val_fraction);
  if (split == 0 || split >= text.size()) {
    throw_user_error(cfg.kind == "text" ? "data.path" : "data.val_fraction", "",
                     fmt::format("the corpus ({} bytes) is too small to split at a line boundary with "
                                 "val_fraction {}: it needs a line break inside its last part",
                                 text.size(), cfg.val_fraction));
  }
  std::string_view all(text);
  fs::create_directories(tok_dir, ec);
  if (ec) throw UserError(fmt::format("cannot create {}: {}", tok_dir.string(), ec.message()));
  fs::remove(tok_dir / "meta.yaml", ec);  // from here until the end, the dataset is incomplete

  std::shared_ptr<const Tokenizer> tok;
  if (!tokenizer_from.empty()) {
    copy_tokenizer(cfg.tokenizer, tokenizer_from, tok_dir);
    tok = open_tokenizer(cfg.tokenizer, tok_dir);
  } else {
    if (show_progress && cfg.tokenizer != "byte") {
      fmt::print(stderr, "training the {} tokenizer on {} ({} bytes)\n", tokenizer_tag(cfg), dataset_name(cfg), split);
    }
    tok = train_tokenizer(cfg.tokenizer, cfg.vocab_size, std::string(all.substr(0, split)), tok_dir);
  }
  int token_bytes = tok->vocab_size() <= 65536 ? 2 : 4;

  std::optional<Progress> progress;
  if (show_progress) progress.emplace(fmt::format("tokenizing {} ({})", dataset_name(cfg), tok->name()),
                                      static_cast<int64_t>(text.size()));
  Progress* p = progress ? &*progress : nullptr;
  int64_t n_train = write_tokens(*tok, all.substr(0, split), token_bytes, tok_dir / "train.bin", p, 0);
  int64_t n_val = write_tokens(*tok, all.substr(split), token_bytes, tok_dir / "val.bin", p,
                               static_cast<int64_t>(split));
  if (p != nullptr) p->finish(fmt::format("{} train + {} val tokens", n_train, n_val));

  YAML::Emitter meta;
  meta << YAML::BeginMap;
  meta << YAML::Key << "format" << YAML::Value << kDataFormat;
  meta << YAML::Key << "name" << YAML::Value << dataset_name(cfg);
  meta << YAML::Key << "source" << YAML::Value << source_of(cfg);
  meta << YAML::Key << "corpus_hash" << YAML::Value << hash;
  meta << YAML::Key << "corpus_sha256" << YAML::Value << sha256_hex(text);
  meta << YAML::Key << "corpus_bytes" << YAML::Value << text.size();
  meta << YAML::Key << "tokenizer" << YAML::Value << tok->name();
  meta << YAML::Key << "vocab_size" << YAML::Value << tok->vocab_size();
  meta << YAML::Key << "tokenizer_sha256" << YAML::Value << tokenizer_hash(cfg.tokenizer, tok_dir);
  meta << YAML::Key << "val_fraction" << YAML::Value << cfg.val_fraction;
  meta << YAML::Key << "split_byte" << YAML::Value << split;
  meta << YAML::Key << "token_bytes" << YAML::Value << token_bytes;
  meta << YAML::Key << "train_tokens" << YAML::Value << n_train;
  meta << YAML::Key << "val_tokens" << YAML::Value << n_val;
  meta << YAML::Key << "train_sha256" << YAML::Value << sha256_file(tok_dir / "train.bin");
  meta << YAML::Key << "val_sha256" << YAML::Value << sha256_file(tok_dir / "val.bin");
  meta << YAML::Key << "bytes_per_token" << YAML::Value
       << static_cast<double>(text.size()) / static_cast<double>(std::max<int64_t>(1, n_train + n_val));
  meta << YAML::EndMap;
  results::atomic_write_text(tok_dir / "meta.yaml", std::string(meta.c_str()) + "\n");
}

Dataset load(const DataConfig& cfg, const fs::path& tokenizer_from) {
  Dataset ds;
  if (cfg.kind == "synthetic") {  // no corpus, no token files: data/synthetic.h generates the batches
    ds.name = "synthetic-" + cfg.task;
    ds.tokenizer = std::make_shared<SyntheticTokenizer>(cfg.vocab_size);
    return ds;
  }
  prepare(cfg, true, tokenizer_from);
  ds.name = dataset_name(cfg);
  ds.dir = dataset_dir(cfg);
  fs::path tok_dir = tokens_dir(cfg);
  ds.tokens_dir = tok_dir;
  ds.tokenizer = open_tokenizer(cfg.tokenizer, tok_dir);
  ds.train = TokenStore::open(tok_dir / "train.bin");
  ds.val = TokenStore::open(tok_dir / "val.bin");
  YAML::Node meta = YAML::LoadFile((tok_dir / "meta.yaml").string());
  ds.corpus_sha256 = meta["corpus_sha256"].as<std::string>();
  // Hashed again from the file, not trusted from meta.yaml: this is what a run records.
  ds.tokenizer_sha256 = tokenizer_hash(cfg.tokenizer, tok_dir);
  return ds;
}

}  // namespace attnlab::data
