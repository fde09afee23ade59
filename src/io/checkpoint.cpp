// Native checkpoints (.eqrckpt, safetensors-compatible layout), atomic file writing, run directories,
// and format detection. Layout: u64 LE header length N | N bytes JSON header (padded with spaces to a
// multiple of 8) | tensor bytes, back to back in header order. See docs/checkpoints.md.

#include "eqr/io/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <torch/torch.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "eqr/core/error.h"

namespace eqr::io {

namespace fs = std::filesystem;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "eqr checkpoints assume a little-endian host"
#endif

namespace {

constexpr const char* kFormatTag = "eqrckpt";
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // as safetensors: a header beyond 100 MB is not a header

// ---- CRC-32 (IEEE 802.3, as zlib's crc32) ----
const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}
uint32_t crc32(const void* data, size_t n, uint32_t crc = 0) {
  const auto& t = crc_table();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = t[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

// ---- dtypes (safetensors names) ----
struct DtypeName {
  c10::ScalarType type;
  const char* name;
};
constexpr DtypeName kDtypes[] = {
    {c10::kBool, "BOOL"}, {c10::kByte, "U8"},   {c10::kChar, "I8"},      {c10::kShort, "I16"},
    {c10::kInt, "I32"},   {c10::kLong, "I64"},  {c10::kHalf, "F16"},     {c10::kBFloat16, "BF16"},
    {c10::kFloat, "F32"}, {c10::kDouble, "F64"},
};
const char* dtype_name(c10::ScalarType t, const std::string& tensor, const std::string& path) {
  for (const auto& d : kDtypes) {
    if (d.type == t) return d.name;
  }
  EQR_FAIL(CheckpointError, path, ": tensor '", tensor, "' has dtype ", c10::toString(t),
           "; native checkpoints hold bool, uint8, int8/16/32/64, float16, bfloat16, float32, float64");
}
c10::ScalarType dtype_from_name(const std::string& name, const std::string& tensor, const std::string& path) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return d.type;
  }
  EQR_FAIL(CheckpointError, path, ": tensor '", tensor, "' has dtype '", name,
           "'; expected one of BOOL, U8, I8, I16, I32, I64, F16, BF16, F32, F64");
}

std::string errno_text() { return std::strerror(errno); }

uint64_t file_size(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(path, ec);
  EQR_CHECK(!ec, CheckpointError, path, ": cannot read checkpoint (", ec.message(), ")");
  return n;
}

/// Header of a native file: parsed JSON, where data starts, how long the file is.
struct Header {
  nlohmann::ordered_json json;
  uint64_t data_start = 0;
  uint64_t file_bytes = 0;
};

Header read_header(std::ifstream& in, const std::string& path) {
  Header h;
  h.file_bytes = file_size(path);
  EQR_CHECK(h.file_bytes >= 8, CheckpointError, path, ": file has ", h.file_bytes,
            " bytes; an eqr checkpoint starts with an 8-byte header length (truncated or empty file?)");
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  EQR_CHECK(in.good(), CheckpointError, path, ": cannot read the header length");
  EQR_CHECK(n >= 2 && n <= kMaxHeaderBytes && n <= h.file_bytes - 8, CheckpointError, path,
            ": header length ", n, " does not fit a file of ", h.file_bytes,
            " bytes; not an eqr checkpoint, or a truncated one");
  std::string text(static_cast<size_t>(n), '\0');
  in.read(text.data(), static_cast<std::streamsize>(n));
  EQR_CHECK(in.good(), CheckpointError, path, ": cannot read the ", n, "-byte header");
  EQR_CHECK(text[0] == '{', CheckpointError, path, ": header does not start with '{'; not an eqr checkpoint");
  try {
    h.json = nlohmann::ordered_json::parse(text);
  } catch (const std::exception& e) {
    EQR_FAIL(CheckpointError, path, ": header is not valid JSON (", std::string(e.what()).substr(0, 200),
             "); corrupt checkpoint");
  }
  EQR_CHECK(h.json.is_object(), CheckpointError, path, ": header is not a JSON object");
  h.data_start = 8 + n;
  return h;
}

/// One tensor entry of a header, validated against the data section.
struct Entry {
  std::string name;
  c10::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

std::vector<Entry> header_entries(const Header& h, const std::string& path) {
  std::vector<Entry> out;
  const uint64_t data_bytes = h.file_bytes - h.data_start;
  uint64_t data_end = 0;
  for (const auto& [name, v] : h.json.items()) {
    if (name == "__metadata__") continue;
    Entry e;
    e.name = name;
    try {
      e.dtype = dtype_from_name(v.at("dtype").get<std::string>(), name, path);
      e.shape = v.at("shape").get<std::vector<int64_t>>();
      const auto off = v.at("data_offsets").get<std::vector<uint64_t>>();
      EQR_CHECK(off.size() == 2, CheckpointError, path, ": tensor '", name, "': data_offsets should be [begin, end]");
      e.begin = off[0];
      e.end = off[1];
    } catch (const nlohmann::json::exception& ex) {
      EQR_FAIL(CheckpointError, path, ": tensor '", name, "' has a malformed header entry (", ex.what(),
               "); expected {dtype, shape, data_offsets}");
    }
    // Sizes in exact arithmetic (a forged shape must not wrap around to a small byte count), capped at
    // the data section: nothing is allocated beyond what the file holds.
    unsigned __int128 nbytes128 = c10::elementSize(e.dtype);
    for (auto d : e.shape) {
      EQR_CHECK(d >= 0, CheckpointError, path, ": tensor '", name, "' has a negative dimension");
      nbytes128 = std::min<unsigned __int128>(nbytes128 * static_cast<uint64_t>(d), uint64_t{1} << 62);
    }
    EQR_CHECK(nbytes128 <= data_bytes, CheckpointError, path, ": tensor '", name, "' of ", c10::toString(e.dtype),
              " ", c10::IntArrayRef(e.shape), " needs more bytes than the file's data section holds (",
              data_bytes, "); truncated or corrupt checkpoint");
    const auto nbytes = static_cast<uint64_t>(nbytes128);
    EQR_CHECK(e.begin <= e.end && e.end - e.begin == nbytes, CheckpointError, path, ": tensor '", name,
              "' spans bytes [", e.begin, ", ", e.end, ") but ", c10::toString(e.dtype), " ",
              c10::IntArrayRef(e.shape), " needs ", nbytes, " bytes; corrupt checkpoint");
    data_end = std::max(data_end, e.end);
    out.push_back(std::move(e));
  }
  EQR_CHECK(data_end <= data_bytes, CheckpointError, path, ": file is truncated: the header says tensor data ends ",
            data_end, " bytes after the header, but the file has only ", data_bytes,
            " bytes there (interrupted copy?). Expected ", h.data_start + data_end, " bytes in all, found ",
            h.file_bytes);
  return out;
}

nlohmann::ordered_json header_meta(const Header& h, const std::string& path, nlohmann::ordered_json* crcs) {
  nlohmann::ordered_json meta = nlohmann::ordered_json::object();
  const auto it = h.json.find("__metadata__");
  if (it == h.json.end()) return meta;  // a plain safetensors file: tensors only
  EQR_CHECK(it->is_object(), CheckpointError, path, ": __metadata__ is not an object");
  if (it->contains("eqr_format_version")) {
    const auto& field = it->at("eqr_format_version");
    const std::string v = field.is_string() ? field.get<std::string>() : field.dump().substr(0, 40);
    int version = 0;
    try {
      version = std::stoi(v);
    } catch (const std::exception&) {
    }
    EQR_CHECK(version >= 1 && version <= kCheckpointFormatVersion, CheckpointError, path,
              ": checkpoint format version '", v, "'; this eqr reads versions 1..", kCheckpointFormatVersion,
              ". Hint: use a newer eqr");
  }
  try {
    if (it->contains("eqr_meta")) meta = nlohmann::ordered_json::parse(it->at("eqr_meta").get<std::string>());
    if (crcs != nullptr && it->contains("eqr_crc32")) {
      *crcs = nlohmann::ordered_json::parse(it->at("eqr_crc32").get<std::string>());
    }
  } catch (const std::exception& e) {
    EQR_FAIL(CheckpointError, path, ": metadata is not valid JSON (", std::string(e.what()).substr(0, 200), ")");
  }
  return meta;
}

std::regex step_file_regex() { return std::regex(R"(^step_(\d+)\.eqrckpt$)"); }

fs::path checkpoints_dir(const std::string& run_dir) { return fs::path(run_dir) / "checkpoints"; }

/// step_<N>.eqrckpt files of a run, sorted by N.
std::vector<std::pair<int64_t, fs::path>> step_files(const std::string& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  const fs::path dir = checkpoints_dir(run_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  const std::regex re = step_file_regex();
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file(ec) && std::regex_match(name, m, re)) {
      out.emplace_back(std::stoll(m[1].str()), entry.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<fs::path> pointed_checkpoint(const std::string& run_dir) {
  const fs::path pointer = checkpoints_dir(run_dir) / "latest";
  std::ifstream in(pointer);
  if (!in) return std::nullopt;
  std::string name;
  std::getline(in, name);
  while (!name.empty() && (name.back() == '\r' || name.back() == ' ')) name.pop_back();
  if (name.empty()) return std::nullopt;
  fs::path p(name);
  if (p.is_relative()) p = checkpoints_dir(run_dir) / p;
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return std::nullopt;
  return p;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Atomic writing

void FileSink::write(const void* data, size_t bytes) {
  const auto* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd_, p, std::min<size_t>(bytes, size_t{1} << 30));
    if (n < 0 && errno == EINTR) continue;
    EQR_CHECK(n > 0, CheckpointError, path_, ": write failed after ", written_, " bytes (", errno_text(),
              "); disk full?");
    p += n;
    bytes -= static_cast<size_t>(n);
    written_ += static_cast<uint64_t>(n);
  }
}

void atomic_write(const std::string& path, const std::function<void(FileSink&)>& fill) {
  static std::atomic<uint64_t> counter{0};
  const fs::path target(path);
  EQR_CHECK(!target.filename().empty(), CheckpointError, path, ": not a file path");
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  EQR_CHECK(!ec, CheckpointError, path, ": cannot create directory ", dir.string(), " (", ec.message(), ")");
  const fs::path tmp = dir / ("." + target.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                              std::to_string(counter++));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  EQR_CHECK(fd >= 0, CheckpointError, path, ": cannot create temp file ", tmp.string(), " (", errno_text(), ")");
  try {
    FileSink sink(fd, tmp.string());
    fill(sink);
    // Tests of crash consistency (tests/integration/resume_kill_test.cpp) widen the moment between the bytes
    // and the rename, so that a kill lands inside the write every time: EQR_TEST_WRITE_DELAY_MS.
    static const int delay_ms = [] {
      const char* v = std::getenv("EQR_TEST_WRITE_DELAY_MS");
      return v != nullptr ? std::atoi(v) : 0;
    }();
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    EQR_CHECK(::fsync(fd) == 0, CheckpointError, tmp.string(), ": fsync failed (", errno_text(), ")");
    const int rc = ::close(fd);
    fd = -1;
    EQR_CHECK(rc == 0, CheckpointError, tmp.string(), ": close failed (", errno_text(), ")");
    EQR_CHECK(::rename(tmp.c_str(), target.c_str()) == 0, CheckpointError, path, ": cannot rename ", tmp.string(),
              " over it (", errno_text(), ")");
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename itself durable. Some filesystems cannot fsync a directory; the file is in place anyway.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

void atomic_write_text(const std::string& path, const std::string& text) {
  atomic_write(path, [&](FileSink& sink) { sink.write(text); });
}

// ---------------------------------------------------------------------------------------------
// Native format

void save_checkpoint(const Checkpoint& ckpt, const std::string& path) {
  // Host copies first (contiguous CPU tensors are used as they are), then one header, then the bytes.
  std::vector<at::Tensor> host;
  host.reserve(ckpt.tensors.size());
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  nlohmann::ordered_json crcs = nlohmann::ordered_json::object();
  header["__metadata__"] = nlohmann::ordered_json::object();
  uint64_t offset = 0;
  for (const auto& [name, t] : ckpt.tensors) {
    EQR_CHECK(!name.empty() && name != "__metadata__", CheckpointError, path, ": tensor name '", name,
              "' is reserved or empty");
    EQR_CHECK(t.defined(), CheckpointError, path, ": tensor '", name, "' is undefined");
    const char* dname = dtype_name(t.scalar_type(), name, path);
    at::Tensor h = t.device().is_cpu() ? t.contiguous() : t.to(torch::kCPU).contiguous();
    const uint64_t nbytes = h.numel() * h.element_size();
    header[name] = {{"dtype", dname}, {"shape", h.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    crcs[name] = crc32(h.data_ptr(), nbytes);
    offset += nbytes;
    host.push_back(std::move(h));
  }
  auto& md = header["__metadata__"];
  md["format"] = "pt";  // what safetensors' torch loaders expect
  md["eqr_format"] = kFormatTag;
  md["eqr_format_version"] = std::to_string(kCheckpointFormatVersion);
  md["eqr_meta"] = ckpt.meta.dump();
  md["eqr_crc32"] = crcs.dump();
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t n = text.size();

  atomic_write(path, [&](FileSink& sink) {
    sink.write(&n, 8);
    sink.write(text);
    for (const auto& h : host) sink.write(h.data_ptr(), h.numel() * h.element_size());
  });
}

Checkpoint load_checkpoint(const std::string& path, const c10::Device& device) {
  std::ifstream in(path, std::ios::binary);
  EQR_CHECK(in.good(), CheckpointError, path, ": cannot open checkpoint (", errno_text(), ")");
  const Header h = read_header(in, path);
  nlohmann::ordered_json crcs;
  Checkpoint out;
  out.meta = header_meta(h, path, &crcs);
  for (const auto& e : header_entries(h, path)) {
    at::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype));
    const uint64_t nbytes = e.end - e.begin;
    if (nbytes > 0) {
      in.seekg(static_cast<std::streamoff>(h.data_start + e.begin));
      in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(nbytes));
      EQR_CHECK(in.good(), CheckpointError, path, ": cannot read tensor '", e.name, "' (", nbytes, " bytes at ",
                h.data_start + e.begin, ")");
    }
    if (crcs.is_object() && crcs.contains(e.name)) {
      EQR_CHECK(crcs[e.name].is_number_unsigned(), CheckpointError, path, ": CRC of tensor '", e.name,
                "' is not a number (", crcs[e.name].dump().substr(0, 40), "); corrupt checkpoint");
      const auto want = crcs[e.name].get<uint32_t>();
      const auto got = crc32(t.data_ptr(), nbytes);
      EQR_CHECK(got == want, CheckpointError, path, ": tensor '", e.name, "' is corrupt (CRC-32 ", got,
                ", expected ", want, ")");
    }
    out.tensors.emplace(e.name, device.is_cpu() ? t : t.to(device));
  }
  return out;
}

CheckpointInfo inspect_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EQR_CHECK(in.good(), CheckpointError, path, ": cannot open checkpoint (", errno_text(), ")");
  const Header h = read_header(in, path);
  CheckpointInfo info;
  info.meta = header_meta(h, path, nullptr);
  info.file_bytes = h.file_bytes;
  for (const auto& e : header_entries(h, path)) {
    std::ostringstream os;
    os << c10::toString(e.dtype) << " " << c10::IntArrayRef(e.shape);
    info.tensors.emplace(e.name, os.str());
  }
  return info;
}

CheckpointKind detect_checkpoint_kind(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EQR_CHECK(in.good(), CheckpointError, path, ": cannot open checkpoint (", errno_text(), ")");
  unsigned char head[9] = {0};
  in.read(reinterpret_cast<char*>(head), 9);
  const auto got = static_cast<size_t>(in.gcount());
  if (got >= 4 && std::memcmp(head, "PK\x03\x04", 4) == 0) {
    return is_torch_zip(path) ? CheckpointKind::ReferenceZip : CheckpointKind::Unknown;
  }
  if (got >= 3 && head[0] == 0x80 && head[1] <= 5 && head[2] == 0x8a) return CheckpointKind::LegacyTorch;
  if (got == 9 && head[8] == '{') {
    uint64_t n = 0;
    std::memcpy(&n, head, 8);
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (!ec && n >= 2 && n <= kMaxHeaderBytes && n <= size - 8) return CheckpointKind::Native;
  }
  return CheckpointKind::Unknown;
}

Checkpoint to_native(const ReferenceCheckpoint& ref) {
  Checkpoint out;
  for (const auto& [name, t] : ref.model) out.tensors.emplace("model/" + name, t);
  if (ref.ema) {
    for (const auto& [name, t] : *ref.ema) out.tensors.emplace("ema/" + name, t);
  }
  auto& m = out.meta;
  m["source"] = "reference";
  m["reference_path"] = ref.path;
  m["step"] = ref.step ? nlohmann::ordered_json(*ref.step) : nlohmann::ordered_json();
  m["total_steps"] = ref.total_steps ? nlohmann::ordered_json(*ref.total_steps) : nlohmann::ordered_json();
  m["ema_mu"] = ref.ema_mu ? nlohmann::ordered_json(*ref.ema_mu) : nlohmann::ordered_json();
  m["reference_config"] = ref.config;
  m["skipped"] = ref.skipped;
  m["notes"] = ref.notes;
  return out;
}

Checkpoint load_any_checkpoint(const std::string& path, const c10::Device& device) {
  switch (detect_checkpoint_kind(path)) {
    case CheckpointKind::Native: return load_checkpoint(path, device);
    case CheckpointKind::ReferenceZip: return to_native(load_reference_checkpoint(path, device));
    case CheckpointKind::LegacyTorch:
      EQR_FAIL(CheckpointError, path, ": legacy (pre-1.6, non-zip) torch.save file; expected an eqr checkpoint or "
               "a zip-format torch.save file. Hint: re-save it in Python with torch.save(torch.load(f), g)");
    case CheckpointKind::Unknown: break;
  }
  EQR_FAIL(CheckpointError, path, ": neither an eqr checkpoint (.eqrckpt) nor a torch.save zip (.pth); "
           "the file is truncated, corrupt or of another kind");
}

TensorMap tensors_with_prefix(const TensorMap& tensors, const std::string& prefix) {
  TensorMap out;
  for (auto it = tensors.lower_bound(prefix); it != tensors.end() && it->first.compare(0, prefix.size(), prefix) == 0;
       ++it) {
    out.emplace(it->first.substr(prefix.size()), it->second);
  }
  return out;
}

void put_tensors(TensorMap& tensors, const std::string& prefix, const TensorMap& named) {
  for (const auto& [name, t] : named) {
    EQR_CHECK(tensors.emplace(prefix + name, t).second, CheckpointError, "checkpoint: tensor '", prefix + name,
              "' added twice");
  }
}

// ---------------------------------------------------------------------------------------------
// Run directories

std::string write_run_checkpoint(const std::string& run_dir, int64_t step, const Checkpoint& ckpt) {
  EQR_CHECK(step >= 0, CheckpointError, run_dir, ": checkpoint step ", step, " is negative");
  const std::string name = "step_" + std::to_string(step) + kCheckpointExtension;
  const fs::path file = checkpoints_dir(run_dir) / name;
  save_checkpoint(ckpt, file.string());
  atomic_write_text((checkpoints_dir(run_dir) / "latest").string(), name + "\n");
  return file.string();
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  if (auto p = pointed_checkpoint(run_dir)) return p->string();
  const auto files = step_files(run_dir);
  if (files.empty()) return std::nullopt;
  return files.back().second.string();
}

std::vector<std::string> keep_last(const std::string& run_dir, int k) {
  EQR_CHECK(k >= 1, CheckpointError, run_dir, ": keep_last(", k, "): expected k >= 1");
  std::vector<std::string> removed;
  const auto files = step_files(run_dir);
  const auto pointed = pointed_checkpoint(run_dir);
  std::error_code ec;
  for (size_t i = 0; i + static_cast<size_t>(k) < files.size(); ++i) {
    const fs::path& p = files[i].second;
    if (pointed && fs::equivalent(p, *pointed, ec)) continue;
    if (fs::remove(p, ec)) removed.push_back(p.string());
  }
  // Temp files left by crashed writers (other process ids).
  const std::string own = ".tmp." + std::to_string(::getpid()) + ".";
  const fs::path dir = checkpoints_dir(run_dir);
  if (fs::is_directory(dir, ec)) {
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.size() > 1 && name[0] == '.' && name.find(".tmp.") != std::string::npos &&
          name.find(own) == std::string::npos) {
        if (fs::remove(entry.path(), ec)) removed.push_back(entry.path().string());
      }
    }
  }
  return removed;
}

}  // namespace eqr::io
