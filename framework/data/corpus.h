// Corpus text: the King James Bible from Debian's bible-kjv package with verse
// references stripped, or any UTF-8 text file; plus the helpers prepare()
// needs to check, hash and split that text.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace attnlab::data {

// The command whose output is the KJV corpus, for messages and metadata.
inline constexpr const char* kKjvCommand = "bible -l0 'Gen1:1-Rev22:21'";

// Turns the output of kKjvCommand ("Genesis 1" heading lines, "  1 In the
// beginning..." verse lines) into one verse per line without its number and a
// blank line between chapters. Error on a line of any other shape.
std::string kjv_from_bible_output(const std::string& raw);

// Runs kKjvCommand and strips it. UserError (key data.kind) when the `bible`
// program is not installed.
std::string read_kjv();

// Reads a text file that must exist and be valid UTF-8. UserError naming
// `key` (e.g. "data.path") and the file otherwise.
std::string read_text_file(const std::filesystem::path& path, const std::string& key);

// Offset of the first byte that is not part of valid UTF-8 (overlong forms,
// surrogates and code points above U+10FFFF are invalid), or npos.
size_t find_invalid_utf8(std::string_view text);

// Where validation starts: the first line start at or after (1 - val_fraction)
// of the text. Returns text.size() when no line starts there.
size_t split_offset(std::string_view text, double val_fraction);

// FNV-1a 64-bit hash of the bytes, as 16 hex digits.
std::string content_hash(std::string_view bytes);

}  // namespace attnlab::data
