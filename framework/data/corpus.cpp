// Reading corpora: the KJV through Debian's `bible` program, or a UTF-8 file.
// Also the UTF-8 check, the content hash and the line-aligned split point.
#include "data/corpus.h"
#include "core/files.h"

#include <fmt/format.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"

namespace attnlab::data {
namespace {

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  size_t pos = 0;
  while (pos <= dirs.size()) {
    size_t colon = dirs.find(':', pos);
    std::string dir = dirs.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    std::error_code ec;
    auto candidate = std::filesystem::path(dir.empty() ? "." : dir) / program;
    if (std::filesystem::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) return true;
    if (colon == std::string::npos) break;
    pos = colon + 1;
  }
  return false;
}

// A chapter heading: a book name, a space, the chapter number ("1 John 3").
bool is_heading(std::string_view line) {
  size_t end = line.size();
  while (end > 0 && std::isdigit(static_cast<unsigned char>(line[end - 1]))) --end;
  return end < line.size() && end >= 2 && line[end - 1] == ' ' &&
         std::isalpha(static_cast<unsigned char>(line[end - 2]));
}

}  // namespace

std::string kjv_from_bible_output(const std::string& raw) {
  std::string out;
  out.reserve(raw.size());
  bool any_verse = false;
  size_t line_no = 0;
  std::istringstream in(raw);
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (line.empty()) continue;
    if (line.front() == ' ') {
      // "  12 And the evening...": drop the indentation and the verse number.
      size_t i = line.find_first_not_of(' ');
      size_t digits = i;
      while (digits < line.size() && std::isdigit(static_cast<unsigned char>(line[digits]))) ++digits;
      if (digits == i || digits >= line.size() || line[digits] != ' ') {
        throw Error(fmt::format("unexpected verse line {} in the output of `{}`: '{}'", line_no, kKjvCommand, line));
      }
      out.append(line, digits + 1);
      out += '\n';
      any_verse = true;
    } else if (is_heading(line)) {
      if (any_verse) out += '\n';  // a blank line between chapters
    } else {
      throw Error(fmt::format("unexpected line {} in the output of `{}`: '{}'", line_no, kKjvCommand, line));
    }
  }
  if (!any_verse) throw Error(fmt::format("`{}` printed no verses", kKjvCommand));
  return out;
}

std::string read_kjv() {
  if (!on_path("bible")) {
    throw_user_error("data.kind", "", "data.kind=kjv needs the `bible` program: install Debian's bible-kjv package "
                                      "(apt-get install bible-kjv) or run scripts/setup.sh");
  }
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(kKjvCommand, "r"), ::pclose);
  if (!pipe) throw Error(fmt::format("cannot run `{}`", kKjvCommand));
  std::string raw;
  char buf[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe.get())) > 0) raw.append(buf, n);
  int status = ::pclose(pipe.release());
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw Error(fmt::format("`{}` failed (status {})", kKjvCommand, status));
  }
  return kjv_from_bible_output(raw);
}

std::string read_text_file(const std::filesystem::path& path, const std::string& key) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw_user_error(key, "", fmt::format("file '{}' does not exist", path.string()));
  }
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw_user_error(key, "", fmt::format("'{}' is not a regular file", path.string()));
  }
  auto contents = read_file(path);
  if (!contents) throw_user_error(key, "", fmt::format("cannot read '{}'", path.string()));
  std::string text = std::move(*contents);
  size_t bad = find_invalid_utf8(text);
  if (bad != std::string_view::npos) {
    throw_user_error(key, "", fmt::format("'{}' is not valid UTF-8 (first bad byte at offset {})", path.string(), bad));
  }
  return text;
}

size_t find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size(), i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0, min = 0;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
    else return i;
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

size_t split_offset(std::string_view text, double val_fraction) {
  auto target = static_cast<size_t>(static_cast<double>(text.size()) * (1.0 - val_fraction));
  if (target == 0) return 0;
  if (target >= text.size()) return text.size();
  if (text[target - 1] == '\n') return target;
  size_t nl = text.find('\n', target);
  return nl == std::string_view::npos ? text.size() : nl + 1;
}

std::string content_hash(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return fmt::format("{:016x}", h);
}

}  // namespace attnlab::data
