// The config tree that composition works on: maps keep their key order, and
// every node remembers where it came from (file:line:col or an override), so
// that any later error can name the origin of the value it is about.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace attnlab::config {

struct MapEntry;

struct Node {
  enum class Kind { Null, Scalar, Sequence, Map };

  Kind kind = Kind::Null;
  std::string value;     // scalars: the text as written (without quotes)
  bool quoted = false;   // scalars: written quoted, so never a number, bool or null
  std::vector<Node> items;                             // sequences
  std::vector<MapEntry> entries;                       // maps, in insertion order
  std::string origin;    // "configs/model/tiny.yaml:3:10", "override #2 'x=1'", ...

  static Node null(std::string origin = {});
  static Node scalar(std::string value, std::string origin = {}, bool quoted = false);
  static Node map(std::string origin = {});
  static Node sequence(std::string origin = {});

  bool is_null() const { return kind == Kind::Null; }
  bool is_scalar() const { return kind == Kind::Scalar; }
  bool is_map() const { return kind == Kind::Map; }
  bool is_sequence() const { return kind == Kind::Sequence; }
  // The mandatory-value marker `???` (unquoted).
  bool is_missing() const { return kind == Kind::Scalar && !quoted && value == "???"; }

  // Map access. find() returns null when absent; child() inserts a null child.
  const Node* find(const std::string& key) const;
  Node* find(const std::string& key);
  Node& child(const std::string& key);
  bool erase(const std::string& key);

  // Dotted paths ("model.n_heads"). set() creates intermediate maps.
  const Node* at_path(const std::string& path) const;
  Node* at_path(const std::string& path);
  Node& set_path(const std::string& path, Node value);
  bool erase_path(const std::string& path);

  // Number of nodes in this subtree (for the alias expansion limit).
  size_t size() const;
  // Structural equality of values (origins ignored).
  bool same_value(const Node& other) const;
};

// A map's key and value (defined after Node: a vector may hold an incomplete type, a pair may not).
struct MapEntry {
  std::string first;
  Node second;
};

// OmegaConf-style merge: maps merge key by key, everything else replaces.
void merge_into(Node& base, const Node& overlay);

// Splits "a.b.c" into its segments.
std::vector<std::string> split_path(const std::string& path);
std::string join_path(const std::string& prefix, const std::string& key);

// Block-style YAML for people to read; quoted scalars that would read back as
// something else (a number, a bool, null) keep their quotes.
std::string to_yaml(const Node& node);
// Flow-style one-line rendering, as an override value would be written.
std::string to_flow(const Node& node);

// Every leaf (scalar, null, sequence) with its dotted path, in tree order.
void for_each_leaf(const Node& node, const std::string& prefix,
                   const std::function<void(const std::string&, const Node&)>& fn);

}  // namespace attnlab::config
