// Small RAII layer over the HDF5 C API: one owning handle type per kind of
// object, and helpers for the few shapes the run file uses (scalar attributes,
// 1-D extendible numeric datasets, 1-D variable-length UTF-8 string datasets).
// Every failure becomes an attnlab::Error naming the file and the object.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace attnlab::results::h5 {

// Owns one hid_t and closes it with the matching H5?close in its destructor.
// Movable, not copyable. `what` names the object in error messages.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);

  Handle() = default;
  // Takes ownership of `id`; throws Error (with HDF5's own reason) when id < 0.
  Handle(hid_t id, Closer closer, std::string what);
  ~Handle();
  Handle(Handle&& other) noexcept;
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t id() const { return id_; }
  const std::string& what() const { return what_; }
  bool valid() const { return id_ >= 0; }
  // Closes now and throws Error if closing fails (a file's close flushes it).
  void close();

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
  std::string what_;
};

// The kinds, so that signatures say what they take.
struct File : Handle { using Handle::Handle; };
struct Group : Handle { using Handle::Handle; };
struct Dataset : Handle { using Handle::Handle; };
struct Dataspace : Handle { using Handle::Handle; };
struct Attribute : Handle { using Handle::Handle; };
struct Datatype : Handle { using Handle::Handle; };
struct PropList : Handle { using Handle::Handle; };

// Files. create() truncates an existing file.
File create_file(const std::filesystem::path& path);
// A file held in memory only (HDF5's core driver, no backing store), named
// `name` in messages; file_image() returns its bytes for a writer that deals
// with a full disk itself. HDF5 then never writes to disk, so a disk that
// fails cannot leave it holding a file it cannot close.
File create_memory_file(const std::string& name);
std::string file_image(const File& file);
File open_file_read(const std::filesystem::path& path);
File open_file_rw(const std::filesystem::path& path);

// Groups by absolute or relative path ("eval/context"). create_group opens the
// group when it exists and makes missing intermediate groups.
Group create_group(hid_t loc, const std::string& path);
Group open_group(hid_t loc, const std::string& path);
bool exists(hid_t loc, const std::string& path);

// The variable-length UTF-8 string type.
Datatype utf8_string_type();

// Scalar attributes, overwritten if present. Strings must be valid to store
// as C strings (no NUL byte); anything else is an Error.
using Scalar = std::variant<int64_t, double, std::string>;
void write_attr(hid_t obj, const std::string& name, const Scalar& value);
// Reads every attribute on `obj`: integers as int64, floats as double,
// strings (variable or fixed length) as std::string. Non-scalar attributes
// are an Error.
std::map<std::string, Scalar> read_attrs(hid_t obj);

// 1-D datasets, chunked and extendible along their one dimension.
void write_f64(hid_t loc, const std::string& name, const std::vector<double>& values);
void write_i64(hid_t loc, const std::string& name, const std::vector<int64_t>& values);
void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values);
// Appends to a dataset written by the functions above (extends, then writes the tail).
void append_f64(hid_t loc, const std::string& name, const std::vector<double>& values);
void append_i64(hid_t loc, const std::string& name, const std::vector<int64_t>& values);
void append_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values);
std::vector<double> read_f64(hid_t loc, const std::string& name);
std::vector<int64_t> read_i64(hid_t loc, const std::string& name);
std::vector<std::string> read_strings(hid_t loc, const std::string& name);

// Names of the links directly under a group, split by what they point to.
struct Children {
  std::vector<std::string> groups;
  std::vector<std::string> datasets;
};
Children list_children(hid_t group);

// The file and object path of `obj` ("run.h5:/train/loss"), for messages.
std::string describe(hid_t obj);

}  // namespace attnlab::results::h5
