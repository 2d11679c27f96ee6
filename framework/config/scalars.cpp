// Typed reading of scalar text and the did-you-mean search; shared by the
// override parser, the interpolation resolvers and the schema.
#include "config/scalars.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace attnlab::config {

namespace {
// Removes `_` separators that sit between two digits; nullopt if any other `_`.
std::optional<std::string> strip_separators(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '_') {
      bool ok = i > 0 && i + 1 < text.size() && std::isdigit(static_cast<unsigned char>(text[i - 1])) &&
                std::isdigit(static_cast<unsigned char>(text[i + 1]));
      if (!ok) return std::nullopt;
      continue;
    }
    out += c;
  }
  return out;
}
}  // namespace

std::optional<int64_t> parse_int(const std::string& text) {
  auto s = strip_separators(text);
  if (!s || s->empty()) return std::nullopt;
  size_t i = (s->front() == '-' || s->front() == '+') ? 1 : 0;
  if (i == s->size()) return std::nullopt;
  for (size_t j = i; j < s->size(); ++j)
    if (!std::isdigit(static_cast<unsigned char>((*s)[j]))) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s->c_str(), &end, 10);
  if (errno == ERANGE || *end != '\0') return std::nullopt;
  return static_cast<int64_t>(v);
}

std::optional<double> parse_float(const std::string& text) {
  std::string t = text;
  std::string lower;
  for (char c : t) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string sign;
  std::string body = lower;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
    sign = body.substr(0, 1);
    body = body.substr(1);
  }
  if (body == "inf" || body == ".inf" || body == "infinity")
    return sign == "-" ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  if ((body == "nan" || body == ".nan") && sign.empty()) return std::numeric_limits<double>::quiet_NaN();
  auto s = strip_separators(t);
  if (!s || s->empty()) return std::nullopt;
  // Only digits, one point, an exponent and signs: strtod alone would take hex and "infinity".
  bool digit = false;
  for (char c : *s) {
    if (std::isdigit(static_cast<unsigned char>(c))) digit = true;
    else if (c != '.' && c != 'e' && c != 'E' && c != '-' && c != '+') return std::nullopt;
  }
  if (!digit) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s->c_str(), &end);
  if (*end != '\0' || errno == ERANGE) return std::nullopt;
  return v;
}

std::optional<bool> parse_bool(const std::string& text) {
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return std::nullopt;
}

bool is_null_text(const std::string& text) {
  return text.empty() || text == "null" || text == "Null" || text == "NULL" || text == "~";
}

bool plain_reads_as_non_string(const std::string& text) {
  return is_null_text(text) || parse_bool(text) || parse_float(text) || text == "???" ||
         text.find("${") != std::string::npos;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  // Optimal string alignment distance: a transposition costs 1, as typos do.
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

std::optional<std::string> nearest(const std::string& name, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_d = std::numeric_limits<size_t>::max();
  for (const auto& c : candidates) {
    size_t d = edit_distance(name, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  if (!best) return std::nullopt;
  size_t limit = std::max<size_t>(2, std::min(name.size(), best->size()) / 3);
  if (best_d == 0 || best_d > limit) return std::nullopt;
  return best;
}

std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates) {
  auto n = nearest(name, candidates);
  return n ? " (did you mean '" + *n + "'?)" : "";
}

}  // namespace attnlab::config
