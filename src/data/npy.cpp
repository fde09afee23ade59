#include "eqr/data/npy.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>

#include "eqr/core/error.h"

namespace eqr::data {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
constexpr int64_t kArrayAlign = 64;
constexpr size_t kGrowthAxisMaxDigits = 21;

// A cursor over the header's Python dict literal: {'descr': '<i4', 'fortran_order': False, 'shape': (3,), }
class HeaderLexer {
 public:
  HeaderLexer(const std::string& text, const std::string& path) : s_(text), path_(path) {}

  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool consume(char c) {
    skip_ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void expect(char c, const char* what) {
    if (!consume(c)) fail(std::string("expected '") + c + "' " + what);
  }
  bool peek(char c) {
    skip_ws();
    return i_ < s_.size() && s_[i_] == c;
  }
  std::string string_literal() {
    skip_ws();
    if (i_ >= s_.size() || (s_[i_] != '\'' && s_[i_] != '"')) fail("expected a quoted string");
    const char q = s_[i_++];
    const size_t start = i_;
    while (i_ < s_.size() && s_[i_] != q) ++i_;
    if (i_ >= s_.size()) fail("unterminated string");
    return s_.substr(start, i_++ - start);
  }
  bool bool_literal() {
    skip_ws();
    if (s_.compare(i_, 4, "True") == 0) {
      i_ += 4;
      return true;
    }
    if (s_.compare(i_, 5, "False") == 0) {
      i_ += 5;
      return false;
    }
    fail("expected True or False for fortran_order");
    return false;
  }
  int64_t int_literal() {
    skip_ws();
    const size_t start = i_;
    int64_t v = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      const int d = s_[i_] - '0';
      if (v > (std::numeric_limits<int64_t>::max() - d) / 10) fail("shape dimension overflows int64");
      v = v * 10 + d;
      ++i_;
    }
    if (i_ == start) fail("expected a non-negative integer in shape");
    if (i_ < s_.size() && (s_[i_] == 'L' || s_[i_] == 'l')) ++i_;  // Python 2 long suffix
    return v;
  }
  std::vector<int64_t> tuple_literal() {
    expect('(', "to open shape");
    std::vector<int64_t> dims;
    while (!consume(')')) {
      dims.push_back(int_literal());
      if (!consume(',')) {
        expect(')', "to close shape");
        break;
      }
    }
    return dims;
  }
  bool at_end() {
    skip_ws();
    return i_ >= s_.size();
  }
  [[noreturn]] void fail(const std::string& why) const {
    EQR_FAIL(DataError, path_, ": malformed .npy header (", why, " at character ", i_, "): ", s_);
  }

 private:
  const std::string& s_;
  const std::string& path_;
  size_t i_ = 0;
};

NpyDtype dtype_of_descr(const std::string& descr, const std::string& path) {
  if (descr == "|u1" || descr == "<u1" || descr == "u1" || descr == "=u1") return NpyDtype::kUInt8;
  if (descr == "<i4") return NpyDtype::kInt32;
  if (descr == "<i8") return NpyDtype::kInt64;
  if (!descr.empty() && descr[0] == '>') {
    EQR_FAIL(DataError, path, ": .npy dtype '", descr,
             "' is big-endian; only little-endian '|u1', '<i4', '<i8' are supported (hint: arr.astype('<i4'))");
  }
  EQR_FAIL(DataError, path, ": unsupported .npy dtype '", descr, "'; expected '|u1', '<i4' or '<i8'");
}

std::string shape_repr(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

std::string dims_text(const std::vector<int64_t>& shape) { return shape_repr(shape); }

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

File open_read(const std::string& path) {
  std::error_code ec;
  EQR_CHECK(std::filesystem::exists(path, ec), DataError, path, ": .npy file not found");
  File f(std::fopen(path.c_str(), "rb"));
  EQR_CHECK(f != nullptr, DataError, path, ": cannot open .npy file (", std::strerror(errno), ")");
  return f;
}

// Reads the header of an open file; leaves the file positioned at the data.
NpyHeader read_header(std::FILE* f, const std::string& path) {
  char pre[12];
  const size_t got = std::fread(pre, 1, 10, f);
  EQR_CHECK(got == 10, DataError, path, ": not a .npy file (only ", got, " bytes, a header needs at least 10)");
  std::string bytes(pre, 10);
  EQR_CHECK(std::memcmp(pre, kMagic, kMagicLen) == 0, DataError, path,
            ": not a .npy file (bad magic; expected \\x93NUMPY at the start)");
  const int major = static_cast<unsigned char>(pre[6]);
  if (major >= 2) {
    const size_t more = std::fread(pre + 10, 1, 2, f);
    EQR_CHECK(more == 2, DataError, path, ": truncated .npy header length");
    bytes.append(pre + 10, 2);
  }
  const size_t prefix = major >= 2 ? 12 : 10;
  uint64_t hlen = 0;
  if (major == 1) {
    hlen = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  } else if (major == 2 || major == 3) {
    for (int k = 3; k >= 0; --k) hlen = (hlen << 8) | static_cast<unsigned char>(bytes[8 + k]);
  }
  EQR_CHECK(major >= 1 && major <= 3, DataError, path, ": unsupported .npy format version ", major, ".",
            int(static_cast<unsigned char>(pre[7])), " (expected 1.0, 2.0 or 3.0)");
  EQR_CHECK(hlen <= (uint64_t{1} << 24), DataError, path, ": .npy header length ", hlen, " is implausible");
  struct stat st {};  // nothing is allocated beyond what the file holds
  EQR_CHECK(::fstat(::fileno(f), &st) == 0 && hlen <= static_cast<uint64_t>(st.st_size), DataError, path,
            ": truncated .npy header: its length is ", hlen, " bytes, longer than the whole file (",
            static_cast<int64_t>(st.st_size), " bytes)");
  std::string header(static_cast<size_t>(hlen), '\0');
  const size_t hgot = std::fread(header.data(), 1, header.size(), f);
  EQR_CHECK(hgot == header.size(), DataError, path, ": truncated .npy header (", hgot, " of ", hlen, " bytes)");
  bytes.resize(prefix);
  bytes += header;
  return parse_npy_header(bytes, path);
}

}  // namespace

const char* npy_descr(NpyDtype dtype) {
  switch (dtype) {
    case NpyDtype::kUInt8: return "|u1";
    case NpyDtype::kInt32: return "<i4";
    case NpyDtype::kInt64: return "<i8";
  }
  return "?";
}

int64_t npy_item_size(NpyDtype dtype) {
  switch (dtype) {
    case NpyDtype::kUInt8: return 1;
    case NpyDtype::kInt32: return 4;
    case NpyDtype::kInt64: return 8;
  }
  return 0;
}

int64_t NpyHeader::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

NpyHeader parse_npy_header(const std::string& bytes, const std::string& path) {
  EQR_CHECK(bytes.size() >= 10 && std::memcmp(bytes.data(), kMagic, kMagicLen) == 0, DataError, path,
            ": not a .npy file (bad magic; expected \\x93NUMPY at the start)");
  NpyHeader h;
  h.version_major = static_cast<unsigned char>(bytes[6]);
  h.version_minor = static_cast<unsigned char>(bytes[7]);
  EQR_CHECK(h.version_major >= 1 && h.version_major <= 3, DataError, path, ": unsupported .npy format version ",
            h.version_major, ".", h.version_minor, " (expected 1.0, 2.0 or 3.0)");
  const size_t prefix = h.version_major == 1 ? 10 : 12;
  EQR_CHECK(bytes.size() >= prefix, DataError, path, ": truncated .npy header");
  uint64_t hlen = 0;
  if (h.version_major == 1) {
    hlen = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  } else {
    for (int k = 3; k >= 0; --k) hlen = (hlen << 8) | static_cast<unsigned char>(bytes[8 + k]);
  }
  EQR_CHECK(bytes.size() >= prefix + hlen, DataError, path, ": truncated .npy header (", bytes.size() - prefix,
            " of ", hlen, " bytes)");
  const std::string text = bytes.substr(prefix, static_cast<size_t>(hlen));
  h.data_offset = static_cast<int64_t>(prefix + hlen);

  HeaderLexer lex(text, path);
  bool have_descr = false, have_order = false, have_shape = false;
  lex.expect('{', "at the start of the header dict");
  while (!lex.consume('}')) {
    const std::string key = lex.string_literal();
    lex.expect(':', "after a key");
    if (key == "descr") {
      h.descr = lex.string_literal();
      have_descr = true;
    } else if (key == "fortran_order") {
      h.fortran_order = lex.bool_literal();
      have_order = true;
    } else if (key == "shape") {
      h.shape = lex.tuple_literal();
      have_shape = true;
    } else {
      lex.fail("unexpected key '" + key + "'");
    }
    if (!lex.consume(',')) {
      lex.expect('}', "to close the header dict");
      break;
    }
  }
  EQR_CHECK(have_descr && have_order && have_shape, DataError, path,
            ": .npy header lacks one of 'descr', 'fortran_order', 'shape': ", text);
  h.dtype = dtype_of_descr(h.descr, path);
  EQR_CHECK(!h.fortran_order || h.shape.size() <= 1, DataError, path, ": .npy array of shape ",
            shape_repr(h.shape), " is in Fortran order; only C order is supported (hint: np.ascontiguousarray)");
  int64_t n = 1;
  for (int64_t d : h.shape) {
    EQR_CHECK(d == 0 || n <= std::numeric_limits<int64_t>::max() / 8 / d, DataError, path, ": .npy shape ",
              shape_repr(h.shape), " is too large");
    n *= d;
  }
  return h;
}

NpyHeader read_npy_header(const std::string& path) {
  File f = open_read(path);
  return read_header(f.get(), path);
}

template <typename T>
NpyArray<T> load_npy(const std::string& path) {
  File f = open_read(path);
  const NpyHeader h = read_header(f.get(), path);
  EQR_CHECK(h.dtype == npy_dtype_of<T>(), DataError, path, ": .npy dtype is '", h.descr, "', expected '",
            npy_descr(npy_dtype_of<T>()), "'");
  std::error_code ec;
  const auto file_size = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  EQR_CHECK(!ec, DataError, path, ": cannot stat .npy file (", ec.message(), ")");
  const int64_t have = file_size - h.data_offset;
  EQR_CHECK(have == h.data_bytes(), DataError, path, ": .npy file is ", (have < h.data_bytes() ? "truncated" : "oversized"),
            ": shape ", shape_repr(h.shape), " needs ", h.data_bytes(), " data bytes, the file has ", have);
  NpyArray<T> array;
  array.shape = h.shape;
  array.data.resize(static_cast<size_t>(h.num_elements()));
  const size_t got = std::fread(array.data.data(), sizeof(T), array.data.size(), f.get());
  EQR_CHECK(got == array.data.size(), DataError, path, ": short read of .npy data (", got, " of ",
            array.data.size(), " elements)");
  return array;
}

template <typename T>
NpyArray<T> load_npy_checked(const std::string& path, const std::vector<int64_t>& expect) {
  NpyArray<T> a = load_npy<T>(path);
  bool ok = a.shape.size() == expect.size();
  for (size_t i = 0; ok && i < expect.size(); ++i) ok = expect[i] < 0 || expect[i] == a.shape[i];
  EQR_CHECK(ok, DataError, path, ": .npy shape is ", dims_text(a.shape), ", expected ", dims_text(expect),
            " (-1 = any)");
  return a;
}

NpyArray<uint8_t> load_npy_as_uint8(const std::string& path, const std::vector<int64_t>& expect) {
  File f = open_read(path);
  const NpyHeader h = read_header(f.get(), path);
  bool ok = h.shape.size() == expect.size();
  for (size_t i = 0; ok && i < expect.size(); ++i) ok = expect[i] < 0 || expect[i] == h.shape[i];
  EQR_CHECK(ok, DataError, path, ": .npy shape is ", dims_text(h.shape), ", expected ", dims_text(expect),
            " (-1 = any)");
  std::error_code ec;
  const auto file_size = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  const int64_t have = file_size - h.data_offset;
  EQR_CHECK(!ec && have == h.data_bytes(), DataError, path, ": .npy file is ",
            (have < h.data_bytes() ? "truncated" : "oversized"), ": shape ", shape_repr(h.shape), " needs ",
            h.data_bytes(), " data bytes, the file has ", have);
  NpyArray<uint8_t> out;
  out.shape = h.shape;
  out.data.resize(static_cast<size_t>(h.num_elements()));
  if (h.dtype == NpyDtype::kUInt8) {
    const size_t got = std::fread(out.data.data(), 1, out.data.size(), f.get());
    EQR_CHECK(got == out.data.size(), DataError, path, ": short read of .npy data");
    return out;
  }
  auto widen = [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> chunk(size_t{1} << 20);
    for (size_t done = 0; done < out.data.size();) {
      const size_t n = std::min(chunk.size(), out.data.size() - done);
      EQR_CHECK(std::fread(chunk.data(), sizeof(T), n, f.get()) == n, DataError, path, ": short read of .npy data");
      for (size_t i = 0; i < n; ++i) {
        EQR_CHECK(chunk[i] >= 0 && chunk[i] <= 255, DataError, path, ": element ", done + i, " = ", chunk[i],
                  " does not fit a token id (expected 0..255)");
        out.data[done + i] = static_cast<uint8_t>(chunk[i]);
      }
      done += n;
    }
  };
  if (h.dtype == NpyDtype::kInt32) {
    widen(int32_t{});
  } else {
    widen(int64_t{});
  }
  return out;
}

void save_npy_as(const std::string& path, const uint8_t* data, const std::vector<int64_t>& shape, NpyDtype dtype) {
  if (dtype == NpyDtype::kUInt8) return save_npy(path, data, shape);
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const std::filesystem::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  const std::string header = npy_header_bytes(dtype, shape);
  File f(std::fopen(path.c_str(), "wb"));
  EQR_CHECK(f != nullptr, DataError, path, ": cannot write .npy file (", std::strerror(errno), ")");
  bool ok = std::fwrite(header.data(), 1, header.size(), f.get()) == header.size();
  auto narrow = [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> chunk(size_t{1} << 20);
    for (int64_t done = 0; ok && done < n;) {
      const auto k = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(chunk.size()), n - done));
      for (size_t i = 0; i < k; ++i) chunk[i] = static_cast<T>(data[done + static_cast<int64_t>(i)]);
      ok = std::fwrite(chunk.data(), sizeof(T), k, f.get()) == k;
      done += static_cast<int64_t>(k);
    }
  };
  if (dtype == NpyDtype::kInt32) {
    narrow(int32_t{});
  } else {
    narrow(int64_t{});
  }
  ok = (std::fflush(f.get()) == 0) && ok;
  EQR_CHECK(ok, DataError, path, ": failed writing .npy file (", std::strerror(errno), "; disk full?)");
}

std::string npy_header_bytes(NpyDtype dtype, const std::vector<int64_t>& shape) {
  std::string dict = "{'descr': '" + std::string(npy_descr(dtype)) + "', 'fortran_order': False, 'shape': " +
                     shape_repr(shape) + ", }";
  if (!shape.empty()) {
    const size_t digits = std::to_string(shape[0]).size();
    if (digits < kGrowthAxisMaxDigits) dict.append(kGrowthAxisMaxDigits - digits, ' ');
  }
  for (int major : {1, 2}) {
    const int64_t prefix = major == 1 ? 10 : 12;
    const int64_t hlen = static_cast<int64_t>(dict.size()) + 1;
    const int64_t pad = kArrayAlign - ((prefix + hlen) % kArrayAlign);
    const int64_t total = hlen + pad;
    if (major == 1 && total > 0xffff) continue;
    std::string out(kMagic, kMagicLen);
    out.push_back(static_cast<char>(major));
    out.push_back(0);
    for (int k = 0; k < (major == 1 ? 2 : 4); ++k) out.push_back(static_cast<char>((total >> (8 * k)) & 0xff));
    out += dict;
    out.append(static_cast<size_t>(pad), ' ');
    out.push_back('\n');
    return out;
  }
  EQR_FAIL(DataError, "npy header too long");
}

template <typename T>
void save_npy(const std::string& path, const T* data, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    EQR_CHECK(d >= 0, DataError, path, ": cannot save a .npy array with negative dimension in ", dims_text(shape));
    n *= d;
  }
  const std::filesystem::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  const std::string header = npy_header_bytes(npy_dtype_of<T>(), shape);
  File f(std::fopen(path.c_str(), "wb"));
  EQR_CHECK(f != nullptr, DataError, path, ": cannot write .npy file (", std::strerror(errno), ")");
  bool ok = std::fwrite(header.data(), 1, header.size(), f.get()) == header.size();
  if (n > 0) ok = ok && std::fwrite(data, sizeof(T), static_cast<size_t>(n), f.get()) == static_cast<size_t>(n);
  ok = (std::fflush(f.get()) == 0) && ok;
  EQR_CHECK(ok, DataError, path, ": failed writing .npy file (", std::strerror(errno), "; disk full?)");
}

template NpyArray<uint8_t> load_npy<uint8_t>(const std::string&);
template NpyArray<int32_t> load_npy<int32_t>(const std::string&);
template NpyArray<int64_t> load_npy<int64_t>(const std::string&);
template NpyArray<uint8_t> load_npy_checked<uint8_t>(const std::string&, const std::vector<int64_t>&);
template NpyArray<int32_t> load_npy_checked<int32_t>(const std::string&, const std::vector<int64_t>&);
template NpyArray<int64_t> load_npy_checked<int64_t>(const std::string&, const std::vector<int64_t>&);
template void save_npy<uint8_t>(const std::string&, const uint8_t*, const std::vector<int64_t>&);
template void save_npy<int32_t>(const std::string&, const int32_t*, const std::vector<int64_t>&);
template void save_npy<int64_t>(const std::string&, const int64_t*, const std::vector<int64_t>&);

}  // namespace eqr::data
