#pragma once
// NumPy .npy files (format versions 1.0, 2.0, 3.0; https://numpy.org/doc/stable/reference/generated/
// numpy.lib.format.html), for the reference's on-disk dataset layout (reference/eqr_spec.md §4.2).
// Supported dtypes: '|u1' (uint8), '<i4' (int32), '<i8' (int64), C order (fortran_order True is only
// accepted for 0-D and 1-D arrays, where it is the same layout).
//
// The writer produces the same bytes as numpy >= 1.24's np.save (v1.0 header, keys sorted, the
// 21-digit growth padding, 64-byte alignment), so files can be compared byte for byte with the
// reference's. The reader reads the header, then the data with one read straight into the array.
// Every problem (missing file, bad magic, unsupported version or dtype, malformed header, truncated
// or oversized data) is a DataError naming the path and what is wrong.

#include <cstdint>
#include <string>
#include <vector>

namespace eqr::data {

enum class NpyDtype { kUInt8, kInt32, kInt64 };

/// numpy's descr string: "|u1", "<i4", "<i8".
const char* npy_descr(NpyDtype dtype);
/// Bytes per element.
int64_t npy_item_size(NpyDtype dtype);
/// Our dtype of a C++ element type (uint8_t, int32_t, int64_t).
template <typename T>
NpyDtype npy_dtype_of();
template <>
inline NpyDtype npy_dtype_of<uint8_t>() { return NpyDtype::kUInt8; }
template <>
inline NpyDtype npy_dtype_of<int32_t>() { return NpyDtype::kInt32; }
template <>
inline NpyDtype npy_dtype_of<int64_t>() { return NpyDtype::kInt64; }

/// A parsed header.
struct NpyHeader {
  int version_major = 1;       ///< 1, 2 or 3
  int version_minor = 0;
  NpyDtype dtype = NpyDtype::kUInt8;
  std::string descr;           ///< as written in the file
  bool fortran_order = false;
  std::vector<int64_t> shape;  ///< empty = 0-D (one element)
  int64_t data_offset = 0;     ///< byte offset of the first element

  int64_t num_elements() const;
  int64_t data_bytes() const { return num_elements() * npy_item_size(dtype); }
};

/// A loaded array, C order.
template <typename T>
struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<T> data;

  int64_t dim(size_t i) const { return shape.at(i); }
};

/// Parses the header at the start of `bytes` (at least the whole header); `path` is used in messages.
NpyHeader parse_npy_header(const std::string& bytes, const std::string& path);
/// Reads only the header of a file.
NpyHeader read_npy_header(const std::string& path);

/// Loads a whole array whose dtype is exactly T's (DataError otherwise, naming both).
template <typename T>
NpyArray<T> load_npy(const std::string& path);
/// Like load_npy, and also checks the number of dimensions (and each dim that is >= 0 in `expect`).
template <typename T>
NpyArray<T> load_npy_checked(const std::string& path, const std::vector<int64_t>& expect);

/// Loads a '|u1', '<i4' or '<i8' array as uint8 (in chunks, no full-width copy), checking that every
/// value is in [0, 255]. For token arrays: the reference writes augmented train splits as int64
/// (numpy promotes its uint8 originals when they are concatenated with int64 augmentations).
NpyArray<uint8_t> load_npy_as_uint8(const std::string& path, const std::vector<int64_t>& expect);

/// The exact header bytes numpy >= 1.24 writes for this dtype and shape (version 1.0 unless too long).
std::string npy_header_bytes(NpyDtype dtype, const std::vector<int64_t>& shape);

/// Writes `data` (product(shape) elements, C order) as a .npy file, creating parent directories.
template <typename T>
void save_npy(const std::string& path, const T* data, const std::vector<int64_t>& shape);
/// Writes uint8 values widened to `dtype` ('|u1', '<i4' or '<i8'), converting in chunks.
void save_npy_as(const std::string& path, const uint8_t* data, const std::vector<int64_t>& shape, NpyDtype dtype);
template <typename T>
void save_npy(const std::string& path, const NpyArray<T>& array) {
  save_npy(path, array.data.data(), array.shape);
}

}  // namespace eqr::data
