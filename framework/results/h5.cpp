// RAII handles and typed helpers over the HDF5 C API (see h5.h). HDF5's own
// error printing is switched off; its innermost error message is folded into
// the attnlab::Error instead, together with the file and object name.
#include "results/h5.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <utility>

#include "core/error.h"

namespace attnlab::results::h5 {
namespace {

// HDF5 prints its error stack to stderr by default; we report it ourselves.
void silence_hdf5() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

herr_t innermost_error(unsigned n, const H5E_error2_t* err, void* out) {
  if (n == 0 && err->desc != nullptr) *static_cast<std::string*>(out) = err->desc;
  return 0;
}

// The description HDF5 recorded for its most recent failure (then cleared).
std::string hdf5_reason() {
  std::string reason;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_error, &reason);
  H5Eclear2(H5E_DEFAULT);
  return reason.empty() ? "HDF5 call failed" : reason;
}

[[noreturn]] void fail(const std::string& what) {
  throw Error(fmt::format("HDF5: {}: {}", what, hdf5_reason()));
}

void check(herr_t rc, const std::string& what) {
  if (rc < 0) fail(what);
}

std::string where(hid_t loc, const std::string& name) {
  std::string base = describe(loc);
  if (!base.empty() && base.back() != '/') base += '/';
  return base + name;
}

// Rows per chunk of a 1-D dataset: large enough that a long run's series are a
// few chunks, small enough that a five-row eval series does not waste much.
hsize_t chunk_rows(size_t n) { return std::clamp<hsize_t>(static_cast<hsize_t>(n), 128, 4096); }

PropList link_props() {
  PropList lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose, "link creation properties");
  check(H5Pset_create_intermediate_group(lcpl.id(), 1), "link creation properties");
  return lcpl;
}

// Creates an empty-or-filled 1-D dataset of `file_type` and writes `data` (of `mem_type`).
void write_1d(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type, size_t n, const void* data) {
  std::string what = where(loc, name);
  hsize_t dims[1] = {static_cast<hsize_t>(n)};
  hsize_t max_dims[1] = {H5S_UNLIMITED};
  Dataspace space(H5Screate_simple(1, dims, max_dims), H5Sclose, what);
  PropList dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, what);
  hsize_t chunk[1] = {chunk_rows(n)};
  check(H5Pset_chunk(dcpl.id(), 1, chunk), "chunking " + what);
  // No modification times in object headers: equal content gives equal bytes.
  check(H5Pset_obj_track_times(dcpl.id(), 0), what);
  PropList lcpl = link_props();
  Dataset ds(H5Dcreate2(loc, name.c_str(), file_type, space.id(), lcpl.id(), dcpl.id(), H5P_DEFAULT), H5Dclose,
             what);
  if (n > 0) check(H5Dwrite(ds.id(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "writing " + what);
}

void append_1d(hid_t loc, const std::string& name, hid_t mem_type, size_t n, const void* data) {
  std::string what = where(loc, name);
  Dataset ds(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose, what);
  hsize_t old_rows = 0;
  {
    Dataspace space(H5Dget_space(ds.id()), H5Sclose, what);
    if (H5Sget_simple_extent_ndims(space.id()) != 1) throw Error(fmt::format("HDF5: {} is not 1-D", what));
    H5Sget_simple_extent_dims(space.id(), &old_rows, nullptr);
  }
  if (n == 0) return;
  hsize_t new_rows[1] = {old_rows + n};
  check(H5Dset_extent(ds.id(), new_rows), "extending " + what);
  Dataspace file_space(H5Dget_space(ds.id()), H5Sclose, what);
  hsize_t start[1] = {old_rows};
  hsize_t count[1] = {static_cast<hsize_t>(n)};
  check(H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, start, nullptr, count, nullptr), "selecting " + what);
  Dataspace mem_space(H5Screate_simple(1, count, nullptr), H5Sclose, what);
  check(H5Dwrite(ds.id(), mem_type, mem_space.id(), file_space.id(), H5P_DEFAULT, data), "appending to " + what);
}

// Opens a 1-D dataset and returns it with its row count.
std::pair<Dataset, size_t> open_1d(hid_t loc, const std::string& name) {
  std::string what = where(loc, name);
  Dataset ds(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose, what);
  Dataspace space(H5Dget_space(ds.id()), H5Sclose, what);
  if (H5Sget_simple_extent_ndims(space.id()) != 1) throw Error(fmt::format("HDF5: {} is not 1-D", what));
  hsize_t rows = 0;
  H5Sget_simple_extent_dims(space.id(), &rows, nullptr);
  return {std::move(ds), static_cast<size_t>(rows)};
}

template <typename T>
std::vector<T> read_numeric(hid_t loc, const std::string& name, hid_t mem_type) {
  auto [ds, rows] = open_1d(loc, name);
  {
    Datatype type(H5Dget_type(ds.id()), H5Tclose, where(loc, name));
    H5T_class_t cls = H5Tget_class(type.id());
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
      throw Error(fmt::format("HDF5: {} holds no numbers", where(loc, name)));
    }
  }
  std::vector<T> out(rows);
  if (rows > 0) {
    check(H5Dread(ds.id(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), "reading " + where(loc, name));
  }
  return out;
}

std::vector<const char*> c_strings(const std::vector<std::string>& values, const std::string& what) {
  std::vector<const char*> ptrs;
  ptrs.reserve(values.size());
  for (const auto& v : values) {
    if (v.find('\0') != std::string::npos) {
      throw Error(fmt::format("HDF5: {}: strings cannot hold a NUL byte", what));
    }
    ptrs.push_back(v.c_str());
  }
  return ptrs;
}

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(name);
  return 0;
}

herr_t collect_attr_name(hid_t, const char* name, const H5A_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(name);
  return 0;
}

Scalar read_scalar_attr(hid_t obj, const std::string& name) {
  std::string what = where(obj, name) + " (attribute)";
  Attribute attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, what);
  {
    Dataspace space(H5Aget_space(attr.id()), H5Sclose, what);
    if (H5Sget_simple_extent_type(space.id()) != H5S_SCALAR) {
      throw Error(fmt::format("HDF5: {} is not a scalar", what));
    }
  }
  Datatype type(H5Aget_type(attr.id()), H5Tclose, what);
  switch (H5Tget_class(type.id())) {
    case H5T_INTEGER: {
      int64_t v = 0;
      check(H5Aread(attr.id(), H5T_NATIVE_INT64, &v), "reading " + what);
      return v;
    }
    case H5T_FLOAT: {
      double v = 0;
      check(H5Aread(attr.id(), H5T_NATIVE_DOUBLE, &v), "reading " + what);
      return v;
    }
    case H5T_STRING: {
      if (H5Tis_variable_str(type.id()) > 0) {
        Datatype mem(H5Tcopy(H5T_C_S1), H5Tclose, what);
        check(H5Tset_size(mem.id(), H5T_VARIABLE), what);
        check(H5Tset_cset(mem.id(), H5Tget_cset(type.id())), what);
        char* p = nullptr;
        check(H5Aread(attr.id(), mem.id(), &p), "reading " + what);
        std::string s = p != nullptr ? p : "";
        H5free_memory(p);
        return s;
      }
      size_t size = H5Tget_size(type.id());
      std::string s(size, '\0');
      check(H5Aread(attr.id(), type.id(), s.data()), "reading " + what);
      s.resize(std::strlen(s.c_str()));  // fixed-length strings are NUL-padded
      return s;
    }
    default:
      throw Error(fmt::format("HDF5: {} is neither a number nor a string", what));
  }
}

}  // namespace

Handle::Handle(hid_t id, Closer closer, std::string what) : id_(id), closer_(closer), what_(std::move(what)) {
  if (id_ < 0) fail(what_);
}

Handle::~Handle() {
  if (id_ >= 0 && closer_ != nullptr) {
    closer_(id_);
    H5Eclear2(H5E_DEFAULT);
  }
}

Handle::Handle(Handle&& other) noexcept
    : id_(std::exchange(other.id_, -1)), closer_(other.closer_), what_(std::move(other.what_)) {}

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    if (id_ >= 0 && closer_ != nullptr) closer_(id_);
    id_ = std::exchange(other.id_, -1);
    closer_ = other.closer_;
    what_ = std::move(other.what_);
  }
  return *this;
}

void Handle::close() {
  if (id_ < 0) return;
  hid_t id = std::exchange(id_, -1);
  if (closer_ != nullptr && closer_(id) < 0) fail("closing " + what_);
}

namespace {
// Files close "semi" strongly: closing with objects still open is an error
// rather than a silent deferral, so a committed file is really closed.
// HDF5's own file locking is off: run files are never modified in place
// (commit renames a finished file over the old one), and flock() fails on
// some cluster file systems.
PropList file_access_props(const std::string& what) {
  PropList fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, what);
  check(H5Pset_fclose_degree(fapl.id(), H5F_CLOSE_SEMI), what);
  check(H5Pset_file_locking(fapl.id(), false, true), what);
  return fapl;
}
}  // namespace

File create_file(const std::filesystem::path& path) {
  silence_hdf5();
  std::string what = "cannot create " + path.string();
  PropList fapl = file_access_props(what);
  return File(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id()), H5Fclose, what);
}

File create_memory_file(const std::string& name) {
  silence_hdf5();
  std::string what = "cannot create " + name + " in memory";
  PropList fapl = file_access_props(what);
  check(H5Pset_fapl_core(fapl.id(), /*increment=*/1 << 16, /*backing_store=*/false), what);
  return File(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id()), H5Fclose, what);
}

std::string file_image(const File& file) {
  check(H5Fflush(file.id(), H5F_SCOPE_GLOBAL), "flushing an in-memory file");
  const ssize_t size = H5Fget_file_image(file.id(), nullptr, 0);
  if (size < 0) fail("reading an in-memory file's image");
  std::string bytes(static_cast<size_t>(size), '\0');
  if (H5Fget_file_image(file.id(), bytes.data(), bytes.size()) != size) fail("reading an in-memory file's image");
  return bytes;
}

File open_file_read(const std::filesystem::path& path) {
  silence_hdf5();
  std::string what = "cannot open " + path.string();
  PropList fapl = file_access_props(what);
  return File(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.id()), H5Fclose, what);
}

File open_file_rw(const std::filesystem::path& path) {
  silence_hdf5();
  std::string what = "cannot open " + path.string() + " for writing";
  PropList fapl = file_access_props(what);
  return File(H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl.id()), H5Fclose, what);
}

bool exists(hid_t loc, const std::string& path) {
  // H5Lexists needs every intermediate link to exist, so walk the path.
  std::string prefix = path.starts_with('/') ? "/" : "";
  size_t pos = prefix.size();
  while (pos < path.size()) {
    size_t slash = path.find('/', pos);
    std::string part = path.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    pos = slash == std::string::npos ? path.size() : slash + 1;
    if (part.empty()) continue;
    prefix += (prefix.empty() || prefix.back() == '/' ? "" : "/") + part;
    htri_t rc = H5Lexists(loc, prefix.c_str(), H5P_DEFAULT);
    if (rc < 0) fail("looking up " + where(loc, prefix));
    if (rc == 0) return false;
  }
  return true;
}

Group create_group(hid_t loc, const std::string& path) {
  // Parents one by one, so every group gets the same creation properties.
  size_t slash = path.find('/', 1);
  while (slash != std::string::npos) {
    std::string parent = path.substr(0, slash);
    if (!parent.empty() && parent != "/") create_group(loc, parent);
    slash = path.find('/', slash + 1);
  }
  if (exists(loc, path)) return open_group(loc, path);
  PropList gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose, "group creation properties");
  // No modification times in object headers: equal content gives equal bytes.
  check(H5Pset_obj_track_times(gcpl.id(), 0), "group creation properties");
  return Group(H5Gcreate2(loc, path.c_str(), H5P_DEFAULT, gcpl.id(), H5P_DEFAULT), H5Gclose,
               "cannot create group " + where(loc, path));
}

Group open_group(hid_t loc, const std::string& path) {
  return Group(H5Gopen2(loc, path.c_str(), H5P_DEFAULT), H5Gclose, "cannot open group " + where(loc, path));
}

Datatype utf8_string_type() {
  Datatype t(H5Tcopy(H5T_C_S1), H5Tclose, "string type");
  check(H5Tset_size(t.id(), H5T_VARIABLE), "string type");
  check(H5Tset_cset(t.id(), H5T_CSET_UTF8), "string type");
  return t;
}

void write_attr(hid_t obj, const std::string& name, const Scalar& value) {
  std::string what = where(obj, name) + " (attribute)";
  htri_t present = H5Aexists(obj, name.c_str());
  if (present < 0) fail(what);
  if (present > 0) check(H5Adelete(obj, name.c_str()), "replacing " + what);
  Dataspace space(H5Screate(H5S_SCALAR), H5Sclose, what);
  if (const auto* i = std::get_if<int64_t>(&value)) {
    Attribute a(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space.id(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                "cannot create " + what);
    check(H5Awrite(a.id(), H5T_NATIVE_INT64, i), "writing " + what);
  } else if (const auto* d = std::get_if<double>(&value)) {
    Attribute a(H5Acreate2(obj, name.c_str(), H5T_IEEE_F64LE, space.id(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                "cannot create " + what);
    check(H5Awrite(a.id(), H5T_NATIVE_DOUBLE, d), "writing " + what);
  } else {
    const auto& s = std::get<std::string>(value);
    if (s.find('\0') != std::string::npos) throw Error(fmt::format("HDF5: {}: strings cannot hold a NUL byte", what));
    const char* p = s.c_str();
    Datatype type = utf8_string_type();
    Attribute a(H5Acreate2(obj, name.c_str(), type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                "cannot create " + what);
    check(H5Awrite(a.id(), type.id(), &p), "writing " + what);
  }
}

std::map<std::string, Scalar> read_attrs(hid_t obj) {
  std::vector<std::string> names;
  hsize_t idx = 0;
  check(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr_name, &names),
        "listing attributes of " + describe(obj));
  std::map<std::string, Scalar> out;
  for (const auto& name : names) out.emplace(name, read_scalar_attr(obj, name));
  return out;
}

void write_f64(hid_t loc, const std::string& name, const std::vector<double>& values) {
  write_1d(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, values.size(), values.data());
}

void write_i64(hid_t loc, const std::string& name, const std::vector<int64_t>& values) {
  write_1d(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, values.size(), values.data());
}

void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values) {
  auto ptrs = c_strings(values, where(loc, name));
  Datatype type = utf8_string_type();
  write_1d(loc, name, type.id(), type.id(), ptrs.size(), ptrs.data());
}

void append_f64(hid_t loc, const std::string& name, const std::vector<double>& values) {
  append_1d(loc, name, H5T_NATIVE_DOUBLE, values.size(), values.data());
}

void append_i64(hid_t loc, const std::string& name, const std::vector<int64_t>& values) {
  append_1d(loc, name, H5T_NATIVE_INT64, values.size(), values.data());
}

void append_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values) {
  auto ptrs = c_strings(values, where(loc, name));
  Datatype type = utf8_string_type();
  append_1d(loc, name, type.id(), ptrs.size(), ptrs.data());
}

std::vector<double> read_f64(hid_t loc, const std::string& name) {
  return read_numeric<double>(loc, name, H5T_NATIVE_DOUBLE);
}

std::vector<int64_t> read_i64(hid_t loc, const std::string& name) {
  return read_numeric<int64_t>(loc, name, H5T_NATIVE_INT64);
}

std::vector<std::string> read_strings(hid_t loc, const std::string& name) {
  std::string what = where(loc, name);
  auto [ds, rows] = open_1d(loc, name);
  Datatype file_type(H5Dget_type(ds.id()), H5Tclose, what);
  if (H5Tget_class(file_type.id()) != H5T_STRING || H5Tis_variable_str(file_type.id()) <= 0) {
    throw Error(fmt::format("HDF5: {} does not hold variable-length strings", what));
  }
  Datatype mem = utf8_string_type();
  check(H5Tset_cset(mem.id(), H5Tget_cset(file_type.id())), what);
  std::vector<char*> ptrs(rows, nullptr);
  std::vector<std::string> out;
  if (rows == 0) return out;
  check(H5Dread(ds.id(), mem.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), "reading " + what);
  out.reserve(rows);
  for (char* p : ptrs) out.emplace_back(p != nullptr ? p : "");
  Dataspace space(H5Dget_space(ds.id()), H5Sclose, what);
  H5Dvlen_reclaim(mem.id(), space.id(), H5P_DEFAULT, ptrs.data());
  return out;
}

Children list_children(hid_t group) {
  std::vector<std::string> names;
  hsize_t idx = 0;
  check(H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_name, &names), "listing " + describe(group));
  Children out;
  for (const auto& name : names) {
    Handle obj(H5Oopen(group, name.c_str(), H5P_DEFAULT), H5Oclose, "cannot open " + where(group, name));
    switch (H5Iget_type(obj.id())) {
      case H5I_GROUP: out.groups.push_back(name); break;
      case H5I_DATASET: out.datasets.push_back(name); break;
      default: break;  // committed datatypes: not part of our layout
    }
  }
  return out;
}

std::string describe(hid_t obj) {
  std::string file(256, '\0');
  ssize_t n = H5Fget_name(obj, file.data(), file.size());
  if (n < 0) {
    H5Eclear2(H5E_DEFAULT);
    return "<unknown HDF5 object>";
  }
  if (static_cast<size_t>(n) >= file.size()) {
    file.resize(static_cast<size_t>(n) + 1);
    H5Fget_name(obj, file.data(), file.size());
  }
  file.resize(static_cast<size_t>(n));
  ssize_t m = H5Iget_name(obj, nullptr, 0);
  std::string path = "/";
  if (m > 0) {
    path.assign(static_cast<size_t>(m) + 1, '\0');
    H5Iget_name(obj, path.data(), path.size());
    path.resize(static_cast<size_t>(m));
  }
  H5Eclear2(H5E_DEFAULT);
  return file + ":" + path;
}

}  // namespace attnlab::results::h5
