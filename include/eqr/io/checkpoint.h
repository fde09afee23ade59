#pragma once
// eqr's native checkpoint (.eqrckpt): named tensors + one JSON metadata tree in one file, written
// atomically (temp file in the same directory, fsync, rename, fsync of the directory), so a crash at
// any moment leaves the previous file intact. The layout is safetensors-compatible (8-byte little-endian
// header length, JSON header, raw little-endian tensor bytes), so Python can read the tensors with
// `safetensors.torch.load_file`; eqr's metadata sits in the header's `__metadata__` as JSON text, with a
// CRC-32 per tensor. Details and key conventions: docs/checkpoints.md.
//
// Tensor key conventions (the trainer's; the format itself takes any name):
//   model/<param>     parameters, reference names (spec 1.2), e.g. model/q_head.bias
//   ema/<param>       EMA shadow
//   optim/<param>/exp_avg, optim/<param>/exp_avg_sq, optim/<param>/step
//   rng/<name>        RNG states as uint8 tensors
// Run directories: <run_dir>/checkpoints/step_<N>.eqrckpt plus a `latest` file naming the newest.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <ATen/Tensor.h>
#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include "eqr/io/reference_checkpoint.h"

namespace eqr::io {

/// Tensors by name (sorted; the order they are stored in).
using TensorMap = std::map<std::string, at::Tensor>;

/// A checkpoint in memory.
struct Checkpoint {
  TensorMap tensors;          ///< any dtype of bool/uint8/int8/int16/int32/int64/float16/bfloat16/float32/float64
  nlohmann::ordered_json meta = nlohmann::ordered_json::object();  ///< config, step, schedule, loader state, ...
};

/// Current format version written into every file (`__metadata__.format_version`).
constexpr int kCheckpointFormatVersion = 1;
/// File name extension of native checkpoints.
constexpr const char* kCheckpointExtension = ".eqrckpt";

/// Writes `ckpt` to `path` atomically (see atomic_write). Tensors may live on any device; they are
/// copied to CPU one at a time. Throws CheckpointError (unsupported dtype, I/O failure, bad name).
void save_checkpoint(const Checkpoint& ckpt, const std::string& path);

/// Reads a native checkpoint; tensors land on `device`. Throws CheckpointError naming the path for a
/// missing, truncated, corrupt (CRC mismatch) or foreign file, or a newer format version.
Checkpoint load_checkpoint(const std::string& path, const c10::Device& device = c10::Device(c10::kCPU));

/// Only the header: the metadata and each tensor's dtype/shape (as "dtype [shape]"), without reading data.
struct CheckpointInfo {
  nlohmann::ordered_json meta;
  std::map<std::string, std::string> tensors;
  uint64_t file_bytes = 0;
};
CheckpointInfo inspect_checkpoint(const std::string& path);

/// What a file holds, judged by its first bytes and structure, not by its name.
enum class CheckpointKind { Native, ReferenceZip, LegacyTorch, Unknown };
CheckpointKind detect_checkpoint_kind(const std::string& path);

/// A reference checkpoint as a native one: tensors model/<name> and ema/<name> (if present); meta
/// {source: "reference", reference_path, step, total_steps, ema_mu, reference_config, skipped, notes}.
Checkpoint to_native(const ReferenceCheckpoint& ref);

/// Reads either format (detected by content): native files as load_checkpoint, reference .pth files
/// through load_reference_checkpoint + to_native. Throws CheckpointError for anything else.
Checkpoint load_any_checkpoint(const std::string& path, const c10::Device& device = c10::Device(c10::kCPU));

/// Tensors whose names start with `prefix` (e.g. "model/"), with the prefix removed.
TensorMap tensors_with_prefix(const TensorMap& tensors, const std::string& prefix);
/// Adds `named` under `prefix` (e.g. put_tensors(ckpt.tensors, "model/", ...)); throws on a duplicate name.
void put_tensors(TensorMap& tensors, const std::string& prefix, const TensorMap& named);

// ---- run directories --------------------------------------------------------------------------

/// Writes <run_dir>/checkpoints/step_<step>.eqrckpt (atomically), then points
/// <run_dir>/checkpoints/latest at it (atomically). Returns the checkpoint path.
std::string write_run_checkpoint(const std::string& run_dir, int64_t step, const Checkpoint& ckpt);

/// The newest checkpoint of a run: the file `latest` names if it exists, else the highest
/// step_<N>.eqrckpt in <run_dir>/checkpoints; nullopt when there is none.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);

/// Deletes all but the `k` highest-step checkpoints of a run (never the one `latest` names) and
/// leftover temp files of eqr's atomic writes. Returns the removed paths. k >= 1.
std::vector<std::string> keep_last(const std::string& run_dir, int k);

// ---- atomic file writing ----------------------------------------------------------------------

/// Sequential writer on an open file; throws CheckpointError on I/O errors.
class FileSink {
 public:
  FileSink(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  void write(const void* data, size_t bytes);
  void write(const std::string& s) { write(s.data(), s.size()); }
  uint64_t bytes_written() const { return written_; }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
  uint64_t written_ = 0;
};

/// Creates `path` with the bytes `fill` writes, atomically: `fill` writes a temp file
/// `<dir>/.<name>.tmp.<pid>.<n>` in the same directory, which is fsynced and renamed over `path`, and
/// the directory is fsynced. If `fill` throws (or the process dies), `path` keeps its old content and
/// the temp file is removed (or left for keep_last to clean). Creates missing parent directories.
void atomic_write(const std::string& path, const std::function<void(FileSink&)>& fill);
/// atomic_write of a text.
void atomic_write_text(const std::string& path, const std::string& text);

}  // namespace eqr::io
