#pragma once
// SHA-256 (FIPS 180-4): the digests a dataset manifest records for its source files.

#include <string>
#include <string_view>

namespace eqr {

/// SHA-256 of bytes, lower-case hex.
std::string sha256_hex(std::string_view bytes);
/// SHA-256 of a file's bytes (DataError if unreadable).
std::string sha256_file(const std::string& path);

}  // namespace eqr
