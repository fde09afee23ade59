#pragma once
// Reader for files written by PyTorch's `torch.save` (zip format, pickle protocols 0-5 without
// out-of-band buffers), independent of Python and of LibTorch's own pickle reader (which turns
// OrderedDict into None, rejects big ints and cannot map CUDA storages on a CPU build).
//
// The pickle becomes a small tree of PickleValue: None, bool, int, big int (kept as a decimal string),
// float, str, bytes, list, tuple, dict (insertion order kept; OrderedDict and defaultdict read as dict),
// Tensor, and Object for anything else (a dataclass, a numpy array, ...): the class or function name,
// its arguments and its BUILD state, kept for inspection but never interpreted. Tensors are rebuilt
// from torch._utils._rebuild_tensor_v2 / _rebuild_parameter onto the REQUESTED device, whatever device
// the file recorded ('cuda:0' storages load on a CPU build); tensors that shared a storage in Python
// share it here too (views keep their offset and strides).
// See docs/checkpoints.md for the opcodes and globals understood.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/Tensor.h>
#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

namespace eqr::io {

/// One Python object from a pickle. Copies are shallow: containers are shared, as in Python.
class PickleValue {
 public:
  enum class Kind {
    None,
    Bool,
    Int,      ///< fits int64
    BigInt,   ///< does not fit int64; decimal text in big_int_text()
    Float,
    Str,      ///< UTF-8 text
    Bytes,    ///< raw bytes (bytes, bytearray, _codecs.encode(..., 'latin1'))
    List,     ///< list, set, frozenset
    Tuple,
    Dict,     ///< dict, OrderedDict, defaultdict; entries in insertion order
    Tensor,
    Storage,  ///< a bare torch storage (1-D tensor of its elements); only seen if a storage is saved alone
    Global,   ///< a class or function reference that was never called (e.g. torch.float32)
    Object,   ///< any other object: kept, not interpreted (see object())
  };
  using Items = std::vector<PickleValue>;
  using Entries = std::vector<std::pair<PickleValue, PickleValue>>;
  /// What is known about an Object or a Global.
  struct ObjectData {
    std::string module;  ///< e.g. "models.recursive_reasoning.eqr"
    std::string name;    ///< e.g. "EqRCarry"
    Items args;          ///< arguments of the REDUCE / NEWOBJ that built it
    std::shared_ptr<PickleValue> state;  ///< BUILD state (nullptr if none)
    Items list_items;    ///< APPEND(S) applied to it (list subclasses)
    Entries dict_items;  ///< SETITEM(S) applied to it (dict subclasses)
    std::string full_name() const { return module + "." + name; }
  };

  PickleValue() = default;  // None
  PickleValue(const PickleValue&) = default;
  PickleValue(PickleValue&&) noexcept = default;
  PickleValue& operator=(const PickleValue&) = default;
  PickleValue& operator=(PickleValue&&) noexcept = default;
  /// Frees nested containers without recursion (a pickle may nest lists 100,000 deep).
  ~PickleValue();
  static PickleValue make_bool(bool v);
  static PickleValue make_int(int64_t v);
  static PickleValue make_big_int(std::string decimal);
  static PickleValue make_float(double v);
  static PickleValue make_str(std::string v);
  static PickleValue make_bytes(std::string v);
  static PickleValue make_list(Items items = {});
  static PickleValue make_tuple(Items items = {});
  static PickleValue make_dict(Entries entries = {});
  static PickleValue make_tensor(at::Tensor t);
  static PickleValue make_storage(at::Tensor flat);
  static PickleValue make_global(std::string module, std::string name);
  static PickleValue make_object(std::string module, std::string name, Items args);

  Kind kind() const { return kind_; }
  bool is(Kind k) const { return kind_ == k; }
  bool is_none() const { return kind_ == Kind::None; }
  /// "none", "bool", "int", "big int", "float", "str", "bytes", "list", "tuple", "dict", "tensor",
  /// "storage", "global <mod.name>", "object <mod.name>".
  std::string kind_name() const;

  // Typed access; a wrong kind throws CheckpointError naming the kind found.
  bool as_bool() const;               ///< Bool
  int64_t as_int() const;             ///< Int or Bool; BigInt throws ("does not fit int64")
  double as_double() const;           ///< Float or Int
  const std::string& as_str() const;  ///< Str
  const std::string& as_bytes() const;       ///< Bytes
  const std::string& big_int_text() const;   ///< BigInt (decimal, with '-' if negative)
  const Items& items() const;                ///< List or Tuple
  const Entries& entries() const;            ///< Dict
  const at::Tensor& as_tensor() const;       ///< Tensor or Storage
  const ObjectData& object() const;          ///< Object or Global

  /// Dict lookup by a str key; nullptr when absent or when this is not a Dict.
  const PickleValue* get(const std::string& key) const;
  /// Human-readable one-line rendering of a scalar or key (str, int, ...); containers abbreviated.
  std::string repr() const;

  // Mutation, for the reader.
  Items& mutable_items();
  Entries& mutable_entries();
  ObjectData& mutable_object();

 private:
  Kind kind_ = Kind::None;
  bool bool_ = false;
  int64_t int_ = 0;
  double float_ = 0.0;
  std::string text_;  // Str, Bytes, BigInt
  at::Tensor tensor_;
  std::shared_ptr<Items> items_;
  std::shared_ptr<Entries> entries_;
  std::shared_ptr<ObjectData> object_;
};

/// A persistent storage reference found in the pickle: ('storage', type, key, location, numel).
struct StorageRef {
  c10::ScalarType dtype = c10::ScalarType::Float;  ///< from the storage type (torch.FloatStorage -> float)
  std::string key;       ///< record name under data/
  std::string location;  ///< device recorded when saving, e.g. "cuda:0"; ignored when loading
  int64_t numel = 0;     ///< elements (bytes for torch.UntypedStorage)
};
/// Returns the storage's elements as a 1-D tensor (called once per key; the result is shared).
using StorageLoader = std::function<at::Tensor(const StorageRef&)>;

/// Parses pickle bytes. `origin` names the data in errors. Storages (persistent ids) go through
/// `load_storage`; without one they are an error. `notes` (optional) collects what was read loosely.
/// Throws CheckpointError with the byte offset and opcode on malformed or unsupported input.
PickleValue parse_pickle(const std::string& data, const std::string& origin,
                         const StorageLoader& load_storage = {}, std::vector<std::string>* notes = nullptr);

/// A torch.save file, read.
struct TorchFile {
  PickleValue root;                ///< the object passed to torch.save
  std::vector<std::string> notes;  ///< e.g. "3 storages recorded on cuda:0 loaded onto cpu"
  std::vector<std::string> skipped;  ///< Objects kept uninterpreted, as "path: module.name"
};

/// Reads a torch.save zip file; every tensor lands on `device`. Throws CheckpointError (path, what,
/// expectation) for a missing file, a non-zip or legacy (pre-1.6) file, or a malformed pickle.
TorchFile read_torch_file(const std::string& path, const c10::Device& device = c10::Device(c10::kCPU));

/// True when `path` starts like a zip archive holding a `data.pkl` record (torch.save's format).
bool is_torch_zip(const std::string& path);

/// The Objects in a tree (not looking inside them), each as "path: module.name", where path is
/// dotted dict keys and [i] list indices, e.g. "carry: models.recursive_reasoning.eqr.EqRCarry".
std::vector<std::string> list_objects(const PickleValue& root, const std::string& root_path = "");

/// Converts a tree to JSON where possible: dicts with str/int keys -> objects, lists/tuples -> arrays,
/// big ints -> decimal strings, bytes -> "<bytes N>", tensors -> "<tensor dtype [shape]>",
/// objects -> "<object module.name>". Each lossy conversion adds a note when `notes` is given.
nlohmann::ordered_json pickle_to_json(const PickleValue& value, std::vector<std::string>* notes = nullptr,
                                      const std::string& path = "");

}  // namespace eqr::io
