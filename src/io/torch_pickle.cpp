// Reader for torch.save files: a pickle virtual machine for the opcodes of protocols 0-5 (no
// out-of-band buffers) plus the few globals torch.save emits, on top of LibTorch's zip reader.

#include "eqr/io/torch_pickle.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <map>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "eqr/core/error.h"

namespace eqr::io {

// ---------------------------------------------------------------------------------------------
// PickleValue

PickleValue PickleValue::make_bool(bool v) {
  PickleValue p;
  p.kind_ = Kind::Bool;
  p.bool_ = v;
  return p;
}
PickleValue PickleValue::make_int(int64_t v) {
  PickleValue p;
  p.kind_ = Kind::Int;
  p.int_ = v;
  return p;
}
PickleValue PickleValue::make_big_int(std::string decimal) {
  PickleValue p;
  p.kind_ = Kind::BigInt;
  p.text_ = std::move(decimal);
  return p;
}
PickleValue PickleValue::make_float(double v) {
  PickleValue p;
  p.kind_ = Kind::Float;
  p.float_ = v;
  return p;
}
PickleValue PickleValue::make_str(std::string v) {
  PickleValue p;
  p.kind_ = Kind::Str;
  p.text_ = std::move(v);
  return p;
}
PickleValue PickleValue::make_bytes(std::string v) {
  PickleValue p;
  p.kind_ = Kind::Bytes;
  p.text_ = std::move(v);
  return p;
}
PickleValue PickleValue::make_list(Items items) {
  PickleValue p;
  p.kind_ = Kind::List;
  p.items_ = std::make_shared<Items>(std::move(items));
  return p;
}
PickleValue PickleValue::make_tuple(Items items) {
  PickleValue p;
  p.kind_ = Kind::Tuple;
  p.items_ = std::make_shared<Items>(std::move(items));
  return p;
}
PickleValue PickleValue::make_dict(Entries entries) {
  PickleValue p;
  p.kind_ = Kind::Dict;
  p.entries_ = std::make_shared<Entries>(std::move(entries));
  return p;
}
PickleValue PickleValue::make_tensor(at::Tensor t) {
  PickleValue p;
  p.kind_ = Kind::Tensor;
  p.tensor_ = std::move(t);
  return p;
}
PickleValue PickleValue::make_storage(at::Tensor flat) {
  PickleValue p;
  p.kind_ = Kind::Storage;
  p.tensor_ = std::move(flat);
  return p;
}
PickleValue PickleValue::make_global(std::string module, std::string name) {
  PickleValue p;
  p.kind_ = Kind::Global;
  p.object_ = std::make_shared<ObjectData>();
  p.object_->module = std::move(module);
  p.object_->name = std::move(name);
  return p;
}
PickleValue PickleValue::make_object(std::string module, std::string name, Items args) {
  PickleValue p = make_global(std::move(module), std::move(name));
  p.kind_ = Kind::Object;
  p.object_->args = std::move(args);
  return p;
}

PickleValue::~PickleValue() {
  // The last owner of a container hands its children to a per-thread queue instead of destroying them in
  // place; the outermost destructor drains the queue. Depth costs queue entries, not stack frames.
  const bool own_items = items_ && items_.use_count() == 1 && !items_->empty();
  const bool own_entries = entries_ && entries_.use_count() == 1 && !entries_->empty();
  const bool own_object = object_ && object_.use_count() == 1;
  if (!own_items && !own_entries && !own_object) return;
  static thread_local std::vector<PickleValue> pending;
  static thread_local bool draining = false;
  auto take = [](std::vector<PickleValue>& from) {
    for (auto& v : from) pending.push_back(std::move(v));
    from.clear();
  };
  auto take_entries = [](Entries& from) {
    for (auto& [k, v] : from) {
      pending.push_back(std::move(k));
      pending.push_back(std::move(v));
    }
    from.clear();
  };
  if (own_items) take(*items_);
  if (own_entries) take_entries(*entries_);
  if (own_object) {
    take(object_->args);
    take(object_->list_items);
    take_entries(object_->dict_items);
    if (object_->state && object_->state.use_count() == 1) pending.push_back(std::move(*object_->state));
    object_->state.reset();
  }
  if (draining) return;
  draining = true;
  while (!pending.empty()) {
    PickleValue v = std::move(pending.back());
    pending.pop_back();
  }  // v's destructor queues its own children
  draining = false;
}

std::string PickleValue::kind_name() const {
  switch (kind_) {
    case Kind::None: return "none";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::BigInt: return "big int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::List: return "list";
    case Kind::Tuple: return "tuple";
    case Kind::Dict: return "dict";
    case Kind::Tensor: return "tensor";
    case Kind::Storage: return "storage";
    case Kind::Global: return "global " + object_->full_name();
    case Kind::Object: return "object " + object_->full_name();
  }
  return "?";
}

namespace {
[[noreturn]] void wrong_kind(const PickleValue& v, const char* wanted) {
  EQR_FAIL(CheckpointError, "checkpoint value: expected ", wanted, ", found ", v.kind_name(), " (", v.repr(), ")");
}
}  // namespace

bool PickleValue::as_bool() const {
  if (kind_ != Kind::Bool) wrong_kind(*this, "a bool");
  return bool_;
}
int64_t PickleValue::as_int() const {
  if (kind_ == Kind::Int) return int_;
  if (kind_ == Kind::Bool) return bool_ ? 1 : 0;
  if (kind_ == Kind::BigInt) {
    EQR_FAIL(CheckpointError, "checkpoint value: integer ", text_, " does not fit int64");
  }
  wrong_kind(*this, "an int");
}
double PickleValue::as_double() const {
  if (kind_ == Kind::Float) return float_;
  if (kind_ == Kind::Int) return static_cast<double>(int_);
  wrong_kind(*this, "a float");
}
const std::string& PickleValue::as_str() const {
  if (kind_ != Kind::Str) wrong_kind(*this, "a str");
  return text_;
}
const std::string& PickleValue::as_bytes() const {
  if (kind_ != Kind::Bytes) wrong_kind(*this, "bytes");
  return text_;
}
const std::string& PickleValue::big_int_text() const {
  if (kind_ != Kind::BigInt) wrong_kind(*this, "a big int");
  return text_;
}
const PickleValue::Items& PickleValue::items() const {
  if (kind_ != Kind::List && kind_ != Kind::Tuple) wrong_kind(*this, "a list or tuple");
  return *items_;
}
const PickleValue::Entries& PickleValue::entries() const {
  if (kind_ != Kind::Dict) wrong_kind(*this, "a dict");
  return *entries_;
}
const at::Tensor& PickleValue::as_tensor() const {
  if (kind_ != Kind::Tensor && kind_ != Kind::Storage) wrong_kind(*this, "a tensor");
  return tensor_;
}
const PickleValue::ObjectData& PickleValue::object() const {
  if (kind_ != Kind::Object && kind_ != Kind::Global) wrong_kind(*this, "an object");
  return *object_;
}
PickleValue::Items& PickleValue::mutable_items() {
  if (kind_ != Kind::List && kind_ != Kind::Tuple) wrong_kind(*this, "a list");
  return *items_;
}
PickleValue::Entries& PickleValue::mutable_entries() {
  if (kind_ != Kind::Dict) wrong_kind(*this, "a dict");
  return *entries_;
}
PickleValue::ObjectData& PickleValue::mutable_object() {
  if (kind_ != Kind::Object && kind_ != Kind::Global) wrong_kind(*this, "an object");
  return *object_;
}

const PickleValue* PickleValue::get(const std::string& key) const {
  if (kind_ != Kind::Dict) return nullptr;
  for (const auto& [k, v] : *entries_) {
    if (k.kind_ == Kind::Str && k.text_ == key) return &v;
  }
  return nullptr;
}

std::string PickleValue::repr() const {
  std::ostringstream os;
  switch (kind_) {
    case Kind::None: return "None";
    case Kind::Bool: return bool_ ? "True" : "False";
    case Kind::Int: return std::to_string(int_);
    case Kind::BigInt: return text_;
    case Kind::Float: os << float_; return os.str();
    case Kind::Str: return "'" + (text_.size() > 60 ? text_.substr(0, 57) + "..." : text_) + "'";
    case Kind::Bytes: return "<bytes " + std::to_string(text_.size()) + ">";
    case Kind::List: return "<list " + std::to_string(items_->size()) + ">";
    case Kind::Tuple: return "<tuple " + std::to_string(items_->size()) + ">";
    case Kind::Dict: return "<dict " + std::to_string(entries_->size()) + ">";
    case Kind::Tensor:
    case Kind::Storage:
      os << "<" << kind_name() << " " << c10::toString(tensor_.scalar_type()) << " " << tensor_.sizes() << ">";
      return os.str();
    case Kind::Global:
    case Kind::Object: return "<" + kind_name() + ">";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Pickle machine

namespace {

/// Appends the UTF-8 encoding of code point `cp`.
void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

/// Decodes UTF-8 into code points; returns false on malformed input.
bool decode_utf8(const std::string& s, std::vector<uint32_t>& out) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out.push_back(cp);
    i += len;
  }
  return true;
}

/// Longest LONG1/LONG4 integer read (bytes). Python writes checkpoints' big ints (a numpy seed, 2**70) in a
/// few dozen bytes; the decimal conversion below is quadratic in the length, so a forged 100 KB integer
/// would take minutes.
constexpr size_t kMaxLongBytes = 1024;

/// Little-endian two's-complement bytes (pickle LONG1/LONG4) -> Int or BigInt.
PickleValue long_from_bytes(const std::string& b) {
  if (b.empty()) return PickleValue::make_int(0);
  EQR_CHECK(b.size() <= kMaxLongBytes, CheckpointError, "pickle integer of ", b.size(), " bytes (more than ",
            kMaxLongBytes, "); not a checkpoint value");
  const bool negative = (static_cast<unsigned char>(b.back()) & 0x80) != 0;
  // Fits int64 when every byte past the 8th is pure sign extension of byte 8's top bit.
  bool fits = true;
  if (b.size() > 8) {
    const unsigned char ext = negative ? 0xFF : 0x00;
    for (size_t i = 8; i < b.size(); ++i) fits = fits && static_cast<unsigned char>(b[i]) == ext;
    fits = fits && (((static_cast<unsigned char>(b[7]) & 0x80) != 0) == negative);
  }
  if (fits) {
    uint64_t u = negative ? ~uint64_t{0} : 0;
    for (size_t i = 0; i < std::min<size_t>(8, b.size()); ++i) {
      u &= ~(uint64_t{0xFF} << (8 * i));
      u |= uint64_t{static_cast<unsigned char>(b[i])} << (8 * i);
    }
    int64_t v;
    std::memcpy(&v, &u, sizeof v);
    return PickleValue::make_int(v);
  }
  // Magnitude in base 256 (little-endian), negated if needed, then repeated division by 10.
  std::vector<uint32_t> mag(b.size());
  for (size_t i = 0; i < b.size(); ++i) mag[i] = static_cast<unsigned char>(b[i]);
  if (negative) {
    uint32_t carry = 1;
    for (auto& d : mag) {
      d = (~d & 0xFF) + carry;
      carry = d >> 8;
      d &= 0xFF;
    }
  }
  std::string digits;
  while (!(mag.empty())) {
    uint32_t rem = 0;
    for (size_t i = mag.size(); i-- > 0;) {
      const uint32_t cur = (rem << 8) | mag[i];
      mag[i] = cur / 10;
      rem = cur % 10;
    }
    digits.push_back(static_cast<char>('0' + rem));
    while (!mag.empty() && mag.back() == 0) mag.pop_back();
  }
  if (negative) digits.push_back('-');
  return PickleValue::make_big_int(std::string(digits.rbegin(), digits.rend()));
}

/// Decimal text (optionally signed) -> Int or BigInt.
PickleValue int_from_text(std::string text, const std::string& where) {
  while (!text.empty() && (text.back() == 'L' || text.back() == ' ' || text.back() == '\r')) text.pop_back();
  const size_t start = (!text.empty() && (text[0] == '-' || text[0] == '+')) ? 1 : 0;
  EQR_CHECK(text.size() > start && text.find_first_not_of("0123456789", start) == std::string::npos,
            CheckpointError, where, ": bad integer text '", text.substr(0, 40), "' in pickle");
  EQR_CHECK(text.size() <= 2 * kMaxLongBytes, CheckpointError, where, ": integer of ", text.size(),
            " digits in pickle; not a checkpoint value");
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno == ERANGE) {
    if (text[0] == '+') text.erase(0, 1);
    return PickleValue::make_big_int(text);
  }
  return PickleValue::make_int(v);
}

c10::ScalarType storage_dtype(const std::string& module, const std::string& name, const std::string& where) {
  static const std::map<std::string, c10::ScalarType> table = {
      {"FloatStorage", c10::kFloat},      {"DoubleStorage", c10::kDouble},
      {"HalfStorage", c10::kHalf},        {"BFloat16Storage", c10::kBFloat16},
      {"LongStorage", c10::kLong},        {"IntStorage", c10::kInt},
      {"ShortStorage", c10::kShort},      {"CharStorage", c10::kChar},
      {"ByteStorage", c10::kByte},        {"BoolStorage", c10::kBool},
      {"ComplexFloatStorage", c10::kComplexFloat}, {"ComplexDoubleStorage", c10::kComplexDouble},
      {"UntypedStorage", c10::kByte},
  };
  const auto it = table.find(name);
  EQR_CHECK(module == "torch" && it != table.end(), CheckpointError, where, ": unsupported storage type ", module,
            ".", name, " (expected torch.FloatStorage, torch.BFloat16Storage, ... or torch.UntypedStorage)");
  return it->second;
}

/// torch.<dtype> globals (torch.float32, torch.bfloat16, ...), as some newer files record them.
bool dtype_from_global(const std::string& module, const std::string& name, c10::ScalarType& out) {
  static const std::map<std::string, c10::ScalarType> table = {
      {"float32", c10::kFloat}, {"float", c10::kFloat},     {"float64", c10::kDouble},  {"double", c10::kDouble},
      {"float16", c10::kHalf},  {"half", c10::kHalf},       {"bfloat16", c10::kBFloat16}, {"int64", c10::kLong},
      {"long", c10::kLong},     {"int32", c10::kInt},       {"int", c10::kInt},         {"int16", c10::kShort},
      {"int8", c10::kChar},     {"uint8", c10::kByte},      {"bool", c10::kBool},
  };
  if (module != "torch") return false;
  const auto it = table.find(name);
  if (it == table.end()) return false;
  out = it->second;
  return true;
}

std::vector<int64_t> int_list(const PickleValue& v, const std::string& what, const std::string& where) {
  EQR_CHECK(v.is(PickleValue::Kind::Tuple) || v.is(PickleValue::Kind::List), CheckpointError, where, ": tensor ",
            what, " should be a tuple of ints, found ", v.kind_name());
  std::vector<int64_t> out;
  for (const auto& x : v.items()) out.push_back(x.as_int());
  return out;
}

/// Elements a stride-0 (expanded) tensor view may have beyond its storage's (2^20).
constexpr int64_t kMaxExpandedElements = int64_t{1} << 20;
/// Deepest nesting of containers accepted. Checkpoints nest a dozen levels; every walk over the tree (and
/// its destruction) recurses once per level, so a forged pickle of 100,000 nested lists would overflow
/// the stack.
constexpr int kMaxNesting = 200;

/// The containers directly inside `v` (list/tuple items, dict keys and values, an object's arguments, state
/// and items); `v` itself when it is not a container: nothing.
template <typename Fn>
void for_each_child(const PickleValue& v, Fn&& fn) {
  using Kind = PickleValue::Kind;
  switch (v.kind()) {
    case Kind::List:
    case Kind::Tuple:
      for (const auto& x : v.items()) fn(x);
      return;
    case Kind::Dict:
      for (const auto& [k, x] : v.entries()) {
        fn(k);
        fn(x);
      }
      return;
    case Kind::Object:
    case Kind::Global: {
      const auto& o = v.object();
      for (const auto& x : o.args) fn(x);
      if (o.state) fn(*o.state);
      for (const auto& x : o.list_items) fn(x);
      for (const auto& [k, x] : o.dict_items) {
        fn(k);
        fn(x);
      }
      return;
    }
    default: return;
  }
}

/// Identity of a container (shared by every copy of it); nullptr for scalars, tensors and storages.
const void* container_id(const PickleValue& v) {
  using Kind = PickleValue::Kind;
  switch (v.kind()) {
    case Kind::List:
    case Kind::Tuple: return &v.items();
    case Kind::Dict: return &v.entries();
    case Kind::Object:
    case Kind::Global: return &v.object();
    default: return nullptr;
  }
}

/// Height of the tree below `v` (0 for a leaf); CheckpointError for a reference cycle (a list appended to
/// itself through the memo) or nesting deeper than kMaxNesting. Shared subtrees are visited once.
int check_nesting(const PickleValue& v, int depth, std::unordered_map<const void*, int>& height,
                  const std::string& origin) {
  const void* id = container_id(v);
  if (id == nullptr) return 0;
  const auto it = height.find(id);
  if (it != height.end()) {
    EQR_CHECK(it->second >= 0, CheckpointError, origin, ": the pickle holds a reference cycle (a container "
              "inside itself); checkpoints never do, and eqr does not read it");
    EQR_CHECK(depth + it->second <= kMaxNesting, CheckpointError, origin, ": containers nested more than ",
              kMaxNesting, " levels deep; not a checkpoint eqr reads");
    return it->second;
  }
  EQR_CHECK(depth <= kMaxNesting, CheckpointError, origin, ": containers nested more than ", kMaxNesting,
            " levels deep; not a checkpoint eqr reads");
  height[id] = -1;  // on the current path
  int h = 0;
  for_each_child(v, [&](const PickleValue& c) { h = std::max(h, 1 + check_nesting(c, depth + 1, height, origin)); });
  height[id] = h;
  return h;
}

/// Empties every container reachable from `roots` without recursion, so that nothing deep or cyclic is
/// left to a recursive destructor (or leaked through a shared_ptr cycle).
void dismantle(std::vector<PickleValue> todo) {
  using Kind = PickleValue::Kind;
  std::unordered_set<const void*> seen;
  std::vector<PickleValue> all;  // keeps every container alive while the others are emptied
  while (!todo.empty()) {
    PickleValue v = std::move(todo.back());
    todo.pop_back();
    const void* id = container_id(v);
    if (id == nullptr || !seen.insert(id).second) continue;
    for_each_child(v, [&](const PickleValue& c) {
      if (container_id(c) != nullptr) todo.push_back(c);
    });
    all.push_back(std::move(v));
  }
  for (auto& v : all) {
    if (v.is(Kind::List) || v.is(Kind::Tuple)) {
      v.mutable_items().clear();
    } else if (v.is(Kind::Dict)) {
      v.mutable_entries().clear();
    } else {
      auto& o = v.mutable_object();
      o.args.clear();
      o.state.reset();
      o.list_items.clear();
      o.dict_items.clear();
    }
  }
}

class Machine {
 public:
  Machine(const std::string& data, const std::string& origin, const StorageLoader& loader,
          std::vector<std::string>* notes)
      : data_(data), origin_(origin), loader_(loader), notes_(notes) {}

  /// run(), then the nesting check; on any error every container built so far is dismantled first.
  PickleValue run_checked() {
    try {
      PickleValue root = run();
      std::unordered_map<const void*, int> height;
      check_nesting(root, 0, height, origin_);
      return root;
    } catch (...) {
      std::vector<PickleValue> all(stack_.begin(), stack_.end());
      for (auto& [k, v] : memo_) all.push_back(v);
      stack_.clear();
      memo_.clear();
      dismantle(std::move(all));
      throw;
    }
  }

 private:
  PickleValue run() {
    while (true) {
      EQR_CHECK(pos_ < data_.size(), CheckpointError, origin_, ": pickle ends at byte ", pos_,
                " without a STOP opcode (truncated file?)");
      op_pos_ = pos_;
      const auto op = static_cast<unsigned char>(data_[pos_++]);
      if (op == '.') {  // STOP
        EQR_CHECK(stack_.size() == 1, CheckpointError, where(), "STOP with ", stack_.size(),
                  " values on the stack (expected 1)");
        return stack_.back();
      }
      step(op);
    }
  }

 private:
  using Kind = PickleValue::Kind;

  std::string where() const { return origin_ + ": byte " + std::to_string(op_pos_) + ": "; }

  const char* take(size_t n) {
    EQR_CHECK(n <= data_.size() - pos_, CheckpointError, where(), "needs ", n, " more bytes, only ",
              data_.size() - pos_, " left (truncated pickle?)");
    const char* p = data_.data() + pos_;
    pos_ += n;
    return p;
  }
  template <typename T>
  T take_le() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));  // little-endian host (x86-64, aarch64)
    return v;
  }
  std::string take_bytes(uint64_t n) {
    EQR_CHECK(n <= data_.size() - pos_, CheckpointError, where(), "string of ", n, " bytes runs past the end (",
              data_.size() - pos_, " left)");
    return std::string(take(static_cast<size_t>(n)), static_cast<size_t>(n));
  }
  std::string take_line() {
    const size_t nl = data_.find('\n', pos_);
    EQR_CHECK(nl != std::string::npos, CheckpointError, where(), "text argument without a newline");
    std::string line = data_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    return line;
  }

  PickleValue pop() {
    EQR_CHECK(!stack_.empty() && (marks_.empty() || stack_.size() > marks_.back()), CheckpointError, where(),
              "pops an empty stack (malformed pickle)");
    PickleValue v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  PickleValue& top() {
    EQR_CHECK(!stack_.empty(), CheckpointError, where(), "needs a value on the stack (malformed pickle)");
    return stack_.back();
  }
  /// Values above the last MARK, removing them and the mark.
  std::vector<PickleValue> pop_mark() {
    EQR_CHECK(!marks_.empty(), CheckpointError, where(), "needs a MARK (malformed pickle)");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PickleValue> out(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(m)),
                                 std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return out;
  }
  void memo_put(uint64_t idx) { memo_[idx] = top(); }
  void memo_get(uint64_t idx) {
    const auto it = memo_.find(idx);
    EQR_CHECK(it != memo_.end(), CheckpointError, where(), "memo entry ", idx, " was never stored");
    stack_.push_back(it->second);
  }
  void note(const std::string& s) {
    if (notes_ == nullptr) return;
    for (const auto& n : *notes_) {
      if (n == s) return;
    }
    notes_->push_back(s);
  }

  void set_items(PickleValue& target, std::vector<PickleValue> kv) {
    EQR_CHECK(kv.size() % 2 == 0, CheckpointError, where(), "SETITEMS with an odd number of values");
    PickleValue::Entries* dest = nullptr;
    if (target.is(Kind::Dict)) {
      dest = &target.mutable_entries();
    } else if (target.is(Kind::Object)) {
      dest = &target.mutable_object().dict_items;
    } else {
      EQR_FAIL(CheckpointError, where(), "SETITEM on ", target.kind_name(), " (expected a dict)");
    }
    // Keys are appended as they come: a pickled dict never repeats a key, so no O(n^2) search.
    for (size_t i = 0; i < kv.size(); i += 2) dest->emplace_back(std::move(kv[i]), std::move(kv[i + 1]));
  }
  void append_items(PickleValue& target, std::vector<PickleValue> vals) {
    PickleValue::Items* dest = nullptr;
    if (target.is(Kind::List)) {
      dest = &target.mutable_items();
    } else if (target.is(Kind::Object)) {
      dest = &target.mutable_object().list_items;
    } else {
      EQR_FAIL(CheckpointError, where(), "APPEND on ", target.kind_name(), " (expected a list)");
    }
    for (auto& v : vals) dest->push_back(std::move(v));
  }

  at::Tensor load_storage(const PickleValue& pid) {
    EQR_CHECK(pid.is(Kind::Tuple) && pid.items().size() >= 5 && pid.items()[0].is(Kind::Str) &&
                  pid.items()[0].as_str() == "storage",
              CheckpointError, where(), "persistent id ", pid.repr(),
              " is not a torch storage reference ('storage', type, key, location, numel)");
    const auto& it = pid.items();
    StorageRef ref;
    if (it[1].is(Kind::Global)) {
      // torch.FloatStorage-style classes; a few writers record a dtype (torch.float32) instead.
      if (!dtype_from_global(it[1].object().module, it[1].object().name, ref.dtype)) {
        ref.dtype = storage_dtype(it[1].object().module, it[1].object().name, where());
      }
    } else {
      EQR_FAIL(CheckpointError, where(), "storage type should be a class such as torch.FloatStorage, found ",
               it[1].kind_name());
    }
    ref.key = it[2].is(Kind::Str) ? it[2].as_str() : it[2].repr();
    ref.location = it[3].is(Kind::Str) ? it[3].as_str() : it[3].repr();
    ref.numel = it[4].as_int();
    const auto cached = storages_.find(ref.key);
    if (cached != storages_.end()) return cached->second;
    EQR_CHECK(static_cast<bool>(loader_), CheckpointError, where(), "pickle refers to storage '", ref.key,
              "' but no storage loader was given");
    at::Tensor flat = loader_(ref);
    storages_.emplace(ref.key, flat);
    ++locations_[ref.location];
    return flat;
  }

  at::Tensor rebuild_tensor(const PickleValue::Items& args, const std::string& fn) {
    EQR_CHECK(args.size() >= 4, CheckpointError, where(), fn, " takes (storage, offset, size, stride, ...), got ",
              args.size(), " arguments");
    EQR_CHECK(args[0].is(Kind::Storage), CheckpointError, where(), fn, ": first argument should be a storage, found ",
              args[0].kind_name());
    const at::Tensor& flat = args[0].as_tensor();
    const int64_t offset = args[1].as_int();
    const auto size = int_list(args[2], "size", where());
    const auto stride = int_list(args[3], "stride", where());
    EQR_CHECK(size.size() == stride.size(), CheckpointError, where(), fn, ": size has ", size.size(),
              " dims but stride has ", stride.size());
    // Exact (128-bit) arithmetic: forged sizes and strides must not wrap around into a "valid" view.
    __int128 last = offset, numel = 1;
    bool empty = false;
    for (size_t d = 0; d < size.size(); ++d) {
      EQR_CHECK(size[d] >= 0 && stride[d] >= 0, CheckpointError, where(), fn, ": negative size or stride");
      if (size[d] == 0) empty = true;
      last += static_cast<__int128>(size[d] - 1) * stride[d];
      numel = std::min<__int128>(numel * size[d], __int128{1} << 62);
    }
    EQR_CHECK(offset >= 0 && offset <= flat.numel() && (empty || last < flat.numel()), CheckpointError, where(), fn,
              ": view (offset ", offset, ", size ", c10::IntArrayRef(size), ", stride ", c10::IntArrayRef(stride),
              ") reaches past the end of a storage with ", flat.numel(), " elements");
    // Stride-0 (expanded) views may have more elements than their storage, but a forged header must not
    // turn a few stored bytes into a tensor that fills memory once copied.
    EQR_CHECK(numel <= flat.numel() + kMaxExpandedElements, CheckpointError, where(), fn, ": view of size ",
              c10::IntArrayRef(size), " has more than ", kMaxExpandedElements,
              " elements beyond its storage's ", flat.numel(), " (stride-0 expansion); refused");
    return flat.as_strided(size, stride, offset);
  }

  /// The result of calling global `fn` with `args` (REDUCE, NEWOBJ).
  PickleValue call(const PickleValue& fn, PickleValue::Items args) {
    EQR_CHECK(fn.is(Kind::Global), CheckpointError, where(), "calls ", fn.kind_name(), " (expected a class or function)");
    const std::string& mod = fn.object().module;
    const std::string& name = fn.object().name;
    const std::string full = mod + "." + name;
    if (full == "collections.OrderedDict" || full == "builtins.dict" || full == "collections.defaultdict") {
      PickleValue d = PickleValue::make_dict();
      if (full != "collections.defaultdict" && !args.empty() && (args[0].is(Kind::List) || args[0].is(Kind::Tuple))) {
        for (const auto& pair : args[0].items()) {
          EQR_CHECK(pair.is(Kind::Tuple) && pair.items().size() == 2, CheckpointError, where(), full,
                    ": expected (key, value) pairs");
          d.mutable_entries().emplace_back(pair.items()[0], pair.items()[1]);
        }
      }
      if (full == "collections.defaultdict") note("collections.defaultdict read as a plain dict");
      return d;
    }
    if (full == "torch._utils._rebuild_tensor_v2" || full == "torch._utils._rebuild_tensor") {
      return PickleValue::make_tensor(rebuild_tensor(args, name));
    }
    if (full == "torch._utils._rebuild_parameter" || full == "torch._utils._rebuild_parameter_with_state") {
      EQR_CHECK(!args.empty() && args[0].is(Kind::Tensor), CheckpointError, where(), name,
                ": first argument should be a tensor, found ", args.empty() ? "nothing" : args[0].kind_name());
      return args[0];
    }
    if (full == "torch._tensor._rebuild_from_type_v2" || full == "torch._tensor._rebuild_from_type") {
      // (func, new_type, args, state): a Tensor subclass; rebuild the plain tensor with func(*args).
      EQR_CHECK(args.size() >= 3 && args[2].is(Kind::Tuple), CheckpointError, where(), name,
                ": expected (func, type, args, state)");
      PickleValue inner = call(args[0], args[2].items());
      if (args[1].is(Kind::Global) && args[1].object().full_name() != "torch.Tensor" &&
          args[1].object().full_name() != "torch.nn.parameter.Parameter") {
        note("tensor subclass " + args[1].object().full_name() + " read as a plain tensor");
      }
      return inner;
    }
    if (full == "_codecs.encode") {
      // Protocol 2 writes Python 3 bytes as _codecs.encode(str, 'latin1').
      EQR_CHECK(!args.empty() && args[0].is(Kind::Str), CheckpointError, where(), "_codecs.encode: expected a str");
      const std::string enc = args.size() > 1 && args[1].is(Kind::Str) ? args[1].as_str() : "utf-8";
      if (enc == "latin1" || enc == "latin-1" || enc == "iso-8859-1") {
        std::vector<uint32_t> cps;
        EQR_CHECK(decode_utf8(args[0].as_str(), cps), CheckpointError, where(), "_codecs.encode: bad UTF-8");
        std::string out;
        out.reserve(cps.size());
        for (auto cp : cps) {
          EQR_CHECK(cp < 256, CheckpointError, where(), "_codecs.encode: code point ", cp, " is not latin-1");
          out.push_back(static_cast<char>(cp));
        }
        return PickleValue::make_bytes(out);
      }
      return PickleValue::make_bytes(args[0].as_str());
    }
    if (full == "builtins.bytearray" || full == "builtins.bytes") {
      if (args.empty()) return PickleValue::make_bytes("");
      if (args[0].is(Kind::Bytes)) return args[0];
      if (args[0].is(Kind::Str)) {
        return call(PickleValue::make_global("_codecs", "encode"),
                    {args[0], args.size() > 1 ? args[1] : PickleValue::make_str("latin1")});
      }
    }
    if (full == "builtins.set" || full == "builtins.frozenset") {
      note("sets read as lists");
      if (args.empty()) return PickleValue::make_list();
      return PickleValue::make_list(args[0].items());
    }
    if (full == "torch.Size" && !args.empty() && args[0].is(Kind::Tuple)) return args[0];
    if (full == "copyreg._reconstructor" && !args.empty() && args[0].is(Kind::Global)) {
      // Protocol 0/1 objects: _reconstructor(cls, base, state) -> an instance of cls.
      return PickleValue::make_object(args[0].object().module, args[0].object().name, std::move(args));
    }
    return PickleValue::make_object(mod, name, std::move(args));
  }

  void step(unsigned char op) {
    switch (op) {
      // --- framing and stack
      case 0x80: {  // PROTO
        const auto proto = static_cast<unsigned char>(*take(1));
        EQR_CHECK(proto <= 5, CheckpointError, where(), "pickle protocol ", int(proto), " (expected 0-5)");
        return;
      }
      case 0x95: take(8); return;  // FRAME: all data is in memory already
      case '(': marks_.push_back(stack_.size()); return;  // MARK
      case '0': pop(); return;                            // POP
      case '1': pop_mark(); return;                       // POP_MARK
      case '2': stack_.push_back(top()); return;          // DUP
      // --- memo
      case 'p': memo_put(std::stoull(take_line())); return;                 // PUT
      case 'q': memo_put(static_cast<unsigned char>(*take(1))); return;      // BINPUT
      case 'r': memo_put(take_le<uint32_t>()); return;                      // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); return;                             // MEMOIZE
      case 'g': memo_get(std::stoull(take_line())); return;                 // GET
      case 'h': memo_get(static_cast<unsigned char>(*take(1))); return;      // BINGET
      case 'j': memo_get(take_le<uint32_t>()); return;                      // LONG_BINGET
      // --- scalars
      case 'N': stack_.emplace_back(); return;                            // NONE
      case 0x88: stack_.push_back(PickleValue::make_bool(true)); return;  // NEWTRUE
      case 0x89: stack_.push_back(PickleValue::make_bool(false)); return; // NEWFALSE
      case 'I': {                                                          // INT (text)
        const std::string line = take_line();
        if (line == "01") { stack_.push_back(PickleValue::make_bool(true)); return; }
        if (line == "00") { stack_.push_back(PickleValue::make_bool(false)); return; }
        stack_.push_back(int_from_text(line, where()));
        return;
      }
      case 'J': stack_.push_back(PickleValue::make_int(take_le<int32_t>())); return;                        // BININT
      case 'K': stack_.push_back(PickleValue::make_int(static_cast<unsigned char>(*take(1)))); return;      // BININT1
      case 'M': stack_.push_back(PickleValue::make_int(take_le<uint16_t>())); return;                       // BININT2
      case 'L': stack_.push_back(int_from_text(take_line(), where())); return;                             // LONG
      case 0x8a: stack_.push_back(long_from_bytes(take_bytes(static_cast<unsigned char>(*take(1))))); return;  // LONG1
      case 0x8b: {  // LONG4
        const int32_t n = take_le<int32_t>();
        EQR_CHECK(n >= 0, CheckpointError, where(), "LONG4 with negative length");
        stack_.push_back(long_from_bytes(take_bytes(static_cast<uint64_t>(n))));
        return;
      }
      case 'F': {  // FLOAT (text)
        const std::string line = take_line();
        stack_.push_back(PickleValue::make_float(std::strtod(line.c_str(), nullptr)));
        return;
      }
      case 'G': {  // BINFLOAT: big-endian double
        const char* p = take(8);
        uint64_t u = 0;
        for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<unsigned char>(p[i]);
        double d;
        std::memcpy(&d, &u, sizeof d);
        stack_.push_back(PickleValue::make_float(d));
        return;
      }
      // --- strings and bytes
      case 'S': stack_.push_back(PickleValue::make_str(latin1(unquote(take_line())))); return;                   // STRING
      case 'T': stack_.push_back(PickleValue::make_str(latin1(take_bytes(take_le<uint32_t>())))); return;        // BINSTRING
      case 'U': stack_.push_back(PickleValue::make_str(latin1(take_bytes(static_cast<unsigned char>(*take(1)))))); return;
      case 'V': stack_.push_back(PickleValue::make_str(utf8(raw_unicode_escape(take_line())))); return;        // UNICODE
      case 'X': stack_.push_back(PickleValue::make_str(utf8(take_bytes(take_le<uint32_t>())))); return;        // BINUNICODE
      case 0x8c: stack_.push_back(PickleValue::make_str(utf8(take_bytes(static_cast<unsigned char>(*take(1)))))); return;
      case 0x8d: stack_.push_back(PickleValue::make_str(utf8(take_bytes(take_le<uint64_t>())))); return;       // BINUNICODE8
      case 'B': stack_.push_back(PickleValue::make_bytes(take_bytes(take_le<uint32_t>()))); return;      // BINBYTES
      case 'C': stack_.push_back(PickleValue::make_bytes(take_bytes(static_cast<unsigned char>(*take(1))))); return;
      case 0x8e: stack_.push_back(PickleValue::make_bytes(take_bytes(take_le<uint64_t>()))); return;     // BINBYTES8
      case 0x96: stack_.push_back(PickleValue::make_bytes(take_bytes(take_le<uint64_t>()))); return;     // BYTEARRAY8
      // --- containers
      case ']': stack_.push_back(PickleValue::make_list()); return;   // EMPTY_LIST
      case 'l': stack_.push_back(PickleValue::make_list(pop_mark())); return;  // LIST
      case 'a': {  // APPEND
        PickleValue v = pop();
        append_items(top(), {std::move(v)});
        return;
      }
      case 'e': {  // APPENDS
        auto vals = pop_mark();
        append_items(top(), std::move(vals));
        return;
      }
      case ')': stack_.push_back(PickleValue::make_tuple()); return;           // EMPTY_TUPLE
      case 't': stack_.push_back(PickleValue::make_tuple(pop_mark())); return;  // TUPLE
      case 0x85: case 0x86: case 0x87: {                                        // TUPLE1..3
        const size_t n = op - 0x84;
        PickleValue::Items items(n);
        for (size_t i = n; i-- > 0;) items[i] = pop();
        stack_.push_back(PickleValue::make_tuple(std::move(items)));
        return;
      }
      case '}': stack_.push_back(PickleValue::make_dict()); return;  // EMPTY_DICT
      case 'd': {                                                    // DICT
        PickleValue d = PickleValue::make_dict();
        set_items(d, pop_mark());
        stack_.push_back(std::move(d));
        return;
      }
      case 's': {  // SETITEM
        PickleValue v = pop();
        PickleValue k = pop();
        set_items(top(), {std::move(k), std::move(v)});
        return;
      }
      case 'u': {  // SETITEMS
        auto kv = pop_mark();
        set_items(top(), std::move(kv));
        return;
      }
      case 0x8f: note("sets read as lists"); stack_.push_back(PickleValue::make_list()); return;  // EMPTY_SET
      case 0x90: {  // ADDITEMS
        auto vals = pop_mark();
        append_items(top(), std::move(vals));
        return;
      }
      case 0x91: note("sets read as lists"); stack_.push_back(PickleValue::make_list(pop_mark())); return;  // FROZENSET
      // --- objects
      case 'c': {  // GLOBAL "module\nname\n"
        std::string module = py3_module(utf8(take_line()));
        std::string name = utf8(take_line());
        stack_.push_back(PickleValue::make_global(std::move(module), std::move(name)));
        return;
      }
      case 0x93: {  // STACK_GLOBAL
        PickleValue name = pop();
        PickleValue module = pop();
        stack_.push_back(PickleValue::make_global(py3_module(module.as_str()), name.as_str()));
        return;
      }
      case 'R': {  // REDUCE
        PickleValue args = pop();
        PickleValue fn = pop();
        EQR_CHECK(args.is(Kind::Tuple), CheckpointError, where(), "REDUCE arguments should be a tuple, found ",
                  args.kind_name());
        stack_.push_back(call(fn, args.items()));
        return;
      }
      case 0x81: {  // NEWOBJ cls.__new__(cls, *args)
        PickleValue args = pop();
        PickleValue cls = pop();
        stack_.push_back(call(cls, args.is(Kind::Tuple) ? args.items() : PickleValue::Items{}));
        return;
      }
      case 0x92: {  // NEWOBJ_EX (cls, args, kwargs)
        pop();  // kwargs
        PickleValue args = pop();
        PickleValue cls = pop();
        stack_.push_back(call(cls, args.is(Kind::Tuple) ? args.items() : PickleValue::Items{}));
        return;
      }
      case 'i': {  // INST "module\nname\n" with args above MARK
        std::string module = py3_module(utf8(take_line()));
        std::string name = utf8(take_line());
        stack_.push_back(PickleValue::make_object(std::move(module), std::move(name), pop_mark()));
        return;
      }
      case 'o': {  // OBJ: MARK cls args...
        auto vals = pop_mark();
        EQR_CHECK(!vals.empty(), CheckpointError, where(), "OBJ without a class");
        PickleValue cls = vals.front();
        vals.erase(vals.begin());
        stack_.push_back(call(cls, std::move(vals)));
        return;
      }
      case 'b': {  // BUILD: __setstate__ / __dict__ update
        PickleValue state = pop();
        PickleValue& target = top();
        if (target.is(Kind::Object) || target.is(Kind::Global)) {
          target.mutable_object().state = std::make_shared<PickleValue>(std::move(state));
        }
        // Dict (OrderedDict's _metadata attribute) and Tensor (Parameter state): dropped.
        return;
      }
      case 'P':  // PERSID (text)
        EQR_FAIL(CheckpointError, where(), "text persistent ids (PERSID) are not written by torch.save");
      case 'Q': {  // BINPERSID
        PickleValue pid = pop();
        stack_.push_back(PickleValue::make_storage(load_storage(pid)));
        return;
      }
      case 0x82: case 0x83: case 0x84:
        EQR_FAIL(CheckpointError, where(), "extension registry opcodes (EXT1/2/4) are not supported");
      case 0x97: case 0x98:
        EQR_FAIL(CheckpointError, where(), "out-of-band buffers (protocol 5 NEXT_BUFFER/READONLY_BUFFER) are not supported");
      default: {
        std::ostringstream os;
        os << "0x" << std::hex << int(op);
        EQR_FAIL(CheckpointError, where(), "unknown pickle opcode ", os.str(),
                 " (not a pickle, or a corrupt one; expected protocol 0-5)");
      }
    }
  }

  /// `s` if it is valid UTF-8 (Python writes str as UTF-8; everything read becomes JSON text somewhere, which
  /// must be UTF-8), else a CheckpointError.
  std::string utf8(std::string s) const {
    try {
      (void)nlohmann::json(s).dump();
    } catch (const nlohmann::json::type_error&) {
      EQR_FAIL(CheckpointError, where(), "text that is not valid UTF-8 (not written by Python's pickle)");
    }
    return s;
  }
  /// Python 2 str (STRING, BINSTRING, SHORT_BINSTRING): bytes, read as latin-1 (every byte is a code point).
  static std::string latin1(const std::string& s) {
    std::string out;
    for (unsigned char c : s) append_utf8(out, c);
    return out;
  }

  /// Protocols 0-2 write Python 2 module names (pickle's fix_imports); map back the ones that matter.
  static std::string py3_module(std::string m) {
    if (m == "__builtin__") return "builtins";
    if (m == "copy_reg") return "copyreg";
    return m;
  }

  /// Python 2 repr'd string 'abc' or "abc" with backslash escapes.
  std::string unquote(const std::string& s) const {
    EQR_CHECK(s.size() >= 2 && (s[0] == '\'' || s[0] == '"') && s.back() == s[0], CheckpointError, where(),
              "STRING argument is not quoted");
    std::string out;
    for (size_t i = 1; i + 1 < s.size(); ++i) {
      if (s[i] != '\\' || i + 2 >= s.size()) {
        out.push_back(s[i]);
        continue;
      }
      const char c = s[++i];
      switch (c) {
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case 'x':
          if (i + 2 < s.size()) {
            out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
            i += 2;
          }
          break;
        default: out.push_back(c);
      }
    }
    return out;
  }

  /// Protocol 0 UNICODE argument: latin-1 bytes with \uXXXX and \UXXXXXXXX escapes -> UTF-8.
  std::string raw_unicode_escape(const std::string& s) const {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == 'u' || s[i + 1] == 'U')) {
        const size_t n = s[i + 1] == 'u' ? 4 : 8;
        EQR_CHECK(i + 2 + n <= s.size(), CheckpointError, where(), "bad \\u escape in UNICODE");
        append_utf8(out, static_cast<uint32_t>(std::stoul(s.substr(i + 2, n), nullptr, 16)));
        i += 1 + n;
      } else {
        append_utf8(out, static_cast<unsigned char>(s[i]));
      }
    }
    return out;
  }

 public:
  const std::map<std::string, int>& locations() const { return locations_; }

 private:
  const std::string& data_;
  const std::string origin_;  // a copy: callers pass temporaries (path + ": data.pkl")
  const StorageLoader& loader_;
  std::vector<std::string>* notes_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  std::vector<PickleValue> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PickleValue> memo_;
  std::unordered_map<std::string, at::Tensor> storages_;
  std::map<std::string, int> locations_;
};

}  // namespace

/// Runs `fn`, turning stray library exceptions (bad text numbers, c10 errors) into CheckpointError.
template <typename Fn>
auto as_checkpoint_error(const std::string& origin, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    EQR_FAIL(CheckpointError, origin, ": cannot read pickle: ", std::string(e.what()).substr(0, 300));
  }
}

PickleValue parse_pickle(const std::string& data, const std::string& origin, const StorageLoader& load_storage,
                         std::vector<std::string>* notes) {
  Machine m(data, origin, load_storage, notes);
  return as_checkpoint_error(origin, [&] { return m.run_checked(); });
}

// ---------------------------------------------------------------------------------------------
// torch.save zip files

namespace {
uint64_t le(const std::string& b, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes; i-- > 0;) v = (v << 8) | static_cast<unsigned char>(b[at + static_cast<size_t>(i)]);
  return v;
}

/// The uncompressed size of every record of a zip archive, from its central directory (zip64 included),
/// keyed as PyTorchStreamReader names records (without the archive's top folder). LibTorch's reader
/// allocates a record's declared size before it reads a byte, so these sizes are checked first.
/// nullopt when the directory cannot be read.
std::optional<std::map<std::string, uint64_t>> zip_record_sizes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  in.seekg(0, std::ios::end);
  const auto file_bytes = static_cast<uint64_t>(in.tellg());
  const uint64_t tail_bytes = std::min<uint64_t>(file_bytes, 22 + 65535 + 20);  // EOCD + comment + zip64 locator
  std::string tail(static_cast<size_t>(tail_bytes), '\0');
  in.seekg(static_cast<std::streamoff>(file_bytes - tail_bytes));
  if (!in.read(tail.data(), static_cast<std::streamsize>(tail_bytes))) return std::nullopt;
  const size_t e = tail.rfind(std::string("PK\x05\x06", 4));
  if (e == std::string::npos || e + 22 > tail.size()) return std::nullopt;
  uint64_t count = le(tail, e + 10, 2), cd_bytes = le(tail, e + 12, 4), cd_offset = le(tail, e + 16, 4);
  if (e >= 20 && tail.compare(e - 20, 4, std::string("PK\x06\x07", 4)) == 0) {
    const uint64_t z = le(tail, e - 20 + 8, 8);  // zip64 end of central directory record
    std::string rec(56, '\0');
    if (z > file_bytes - 56 || file_bytes < 56) return std::nullopt;
    in.seekg(static_cast<std::streamoff>(z));
    if (!in.read(rec.data(), 56) || rec.compare(0, 4, std::string("PK\x06\x06", 4)) != 0) return std::nullopt;
    count = le(rec, 32, 8);
    cd_bytes = le(rec, 40, 8);
    cd_offset = le(rec, 48, 8);
  }
  if (cd_offset > file_bytes || cd_bytes > file_bytes - cd_offset) return std::nullopt;
  std::string cd(static_cast<size_t>(cd_bytes), '\0');
  in.seekg(static_cast<std::streamoff>(cd_offset));
  if (!in.read(cd.data(), static_cast<std::streamsize>(cd_bytes))) return std::nullopt;
  std::map<std::string, uint64_t> out;
  size_t p = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (p + 46 > cd.size() || cd.compare(p, 4, std::string("PK\x01\x02", 4)) != 0) return std::nullopt;
    uint64_t size = le(cd, p + 24, 4);
    const size_t name_len = le(cd, p + 28, 2), extra_len = le(cd, p + 30, 2), comment_len = le(cd, p + 32, 2);
    if (p + 46 + name_len + extra_len + comment_len > cd.size()) return std::nullopt;
    std::string name = cd.substr(p + 46, name_len);
    if (size == 0xFFFFFFFFu) {  // the real size is the first field of the zip64 extra block (id 1)
      bool found = false;
      for (size_t x = p + 46 + name_len; x + 4 <= p + 46 + name_len + extra_len;) {
        const uint64_t id = le(cd, x, 2), len = le(cd, x + 2, 2);
        if (id == 1 && len >= 8 && x + 12 <= cd.size()) {
          size = le(cd, x + 4, 8);
          found = true;
          break;
        }
        x += 4 + len;
      }
      if (!found) return std::nullopt;
    }
    const size_t slash = name.find('/');
    out[slash == std::string::npos ? name : name.substr(slash + 1)] = size;
    p += 46 + name_len + extra_len + comment_len;
  }
  return out;
}

/// What makes a zip archive unsafe to hand to LibTorch's reader ("" if nothing). That reader allocates a
/// record's declared size before it reads a byte (its constructor reads the `version` record), so every
/// record's size must fit the file first: torch.save stores records uncompressed, and a forged size must not
/// become a huge allocation.
std::string zip_defect(const std::string& path) {
  const auto sizes = zip_record_sizes(path);
  if (!sizes) return "cannot read the zip archive's central directory (truncated or corrupt?)";
  std::error_code ec;
  const uint64_t file_bytes = std::filesystem::file_size(path, ec);
  for (const auto& [name, bytes] : *sizes) {
    if (ec || bytes > file_bytes) {
      return "zip record " + name + " declares " + std::to_string(bytes) + " bytes, more than the whole file (" +
             std::to_string(file_bytes) + " bytes); corrupt or forged checkpoint";
    }
  }
  return "";
}
}  // namespace

bool is_torch_zip(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {0, 0, 0, 0};
  if (!in.read(magic, 4) || std::memcmp(magic, "PK\x03\x04", 4) != 0) return false;
  if (!zip_defect(path).empty()) return false;
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    return reader.hasRecord("data.pkl");
  } catch (const std::exception&) {
    return false;
  }
}

TorchFile read_torch_file(const std::string& path, const c10::Device& device) {
  {
    std::ifstream in(path, std::ios::binary);
    EQR_CHECK(in.good(), CheckpointError, path, ": cannot open checkpoint (", std::strerror(errno), ")");
    unsigned char magic[4] = {0, 0, 0, 0};
    in.read(reinterpret_cast<char*>(magic), 4);
    EQR_CHECK(in.gcount() == 4, CheckpointError, path, ": file is empty or shorter than 4 bytes; expected a torch.save zip");
    if (magic[0] == 0x80 && magic[1] <= 5 && magic[2] == 0x8a) {
      EQR_FAIL(CheckpointError, path,
               ": legacy (pre-1.6, non-zip) torch.save format is not supported; expected the zip format. Hint: "
               "re-save in Python with torch.save(torch.load(f), g)");
    }
    EQR_CHECK(std::memcmp(magic, "PK\x03\x04", 4) == 0, CheckpointError, path,
              ": not a zip archive (first bytes are not 'PK\\3\\4'); expected a torch.save checkpoint");
  }
  {
    const std::string defect = zip_defect(path);
    EQR_CHECK(defect.empty(), CheckpointError, path, ": ", defect);
  }
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const std::exception& e) {
    EQR_FAIL(CheckpointError, path, ": cannot read zip archive (truncated or corrupt?): ",
             std::string(e.what()).substr(0, 300));
  }
  EQR_CHECK(reader->hasRecord("data.pkl"), CheckpointError, path,
            ": zip archive has no data.pkl record; expected a torch.save checkpoint (a TorchScript module?)");
  if (reader->hasRecord("byteorder")) {
    auto [ptr, size] = reader->getRecord("byteorder");
    const std::string order(static_cast<const char*>(ptr.get()), size);
    EQR_CHECK(order == "little", CheckpointError, path, ": byteorder '", order, "' (expected 'little')");
  }

  TorchFile out;
  std::string pickle;
  try {
    auto [ptr, size] = reader->getRecord("data.pkl");
    pickle.assign(static_cast<const char*>(ptr.get()), size);
  } catch (const std::exception& e) {
    EQR_FAIL(CheckpointError, path, ": cannot read data.pkl: ", std::string(e.what()).substr(0, 300));
  }

  const StorageLoader loader = [&](const StorageRef& ref) -> at::Tensor {
    const std::string record = "data/" + ref.key;
    EQR_CHECK(reader->hasRecord(record), CheckpointError, path, ": storage record ", record, " is missing");
    at::DataPtr ptr;
    size_t size = 0;
    try {
      std::tie(ptr, size) = reader->getRecord(record);
    } catch (const std::exception& e) {
      EQR_FAIL(CheckpointError, path, ": cannot read ", record, ": ", std::string(e.what()).substr(0, 300));
    }
    const auto itemsize = static_cast<int64_t>(c10::elementSize(ref.dtype));
    EQR_CHECK(ref.numel >= 0 && ref.numel <= static_cast<int64_t>(size) / itemsize, CheckpointError, path, ": ",
              record, " holds ", size, " bytes, expected ", ref.numel, " x ", itemsize, " bytes (",
              c10::toString(ref.dtype), ")");
    at::Tensor flat = torch::empty({ref.numel}, torch::TensorOptions().dtype(ref.dtype));
    if (ref.numel > 0) std::memcpy(flat.data_ptr(), ptr.get(), static_cast<size_t>(ref.numel * itemsize));
    return device.is_cpu() ? flat : flat.to(device);
  };

  std::vector<std::string> notes;
  Machine m(pickle, path + ": data.pkl", loader, &notes);
  out.root = as_checkpoint_error(path, [&] { return m.run_checked(); });
  for (const auto& [loc, count] : m.locations()) {
    if (loc != device.str()) {
      out.notes.push_back(std::to_string(count) + " storage" + (count == 1 ? "" : "s") + " recorded on " + loc +
                          " loaded onto " + device.str());
    }
  }
  for (auto& n : notes) out.notes.push_back(std::move(n));
  out.skipped = list_objects(out.root);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Walking the tree

namespace {
std::string child_path(const std::string& parent, const PickleValue& key) {
  const std::string k = key.is(PickleValue::Kind::Str) ? key.as_str() : key.repr();
  return parent.empty() ? k : parent + "." + k;
}

void collect_objects(const PickleValue& v, const std::string& path, std::vector<std::string>& out) {
  using Kind = PickleValue::Kind;
  switch (v.kind()) {
    case Kind::Object:
      out.push_back((path.empty() ? std::string("<root>") : path) + ": " + v.object().full_name());
      return;
    case Kind::List:
    case Kind::Tuple:
      for (size_t i = 0; i < v.items().size(); ++i) {
        collect_objects(v.items()[i], path + "[" + std::to_string(i) + "]", out);
      }
      return;
    case Kind::Dict:
      for (const auto& [k, x] : v.entries()) collect_objects(x, child_path(path, k), out);
      return;
    default: return;
  }
}
}  // namespace

std::vector<std::string> list_objects(const PickleValue& root, const std::string& root_path) {
  std::vector<std::string> out;
  collect_objects(root, root_path, out);
  return out;
}

nlohmann::ordered_json pickle_to_json(const PickleValue& v, std::vector<std::string>* notes, const std::string& path) {
  using Kind = PickleValue::Kind;
  const auto lossy = [&](const std::string& what) {
    if (notes) notes->push_back((path.empty() ? std::string("<root>") : path) + ": " + what);
  };
  switch (v.kind()) {
    case Kind::None: return nullptr;
    case Kind::Bool: return v.as_bool();
    case Kind::Int: return v.as_int();
    case Kind::BigInt: lossy("integer " + v.big_int_text() + " kept as a string"); return v.big_int_text();
    case Kind::Float: return v.as_double();
    case Kind::Str: return v.as_str();
    case Kind::Bytes: lossy("bytes dropped"); return v.repr();
    case Kind::List:
    case Kind::Tuple: {
      auto arr = nlohmann::ordered_json::array();
      for (size_t i = 0; i < v.items().size(); ++i) {
        arr.push_back(pickle_to_json(v.items()[i], notes, path + "[" + std::to_string(i) + "]"));
      }
      return arr;
    }
    case Kind::Dict: {
      auto obj = nlohmann::ordered_json::object();
      for (const auto& [k, x] : v.entries()) {
        const std::string key = k.is(Kind::Str) ? k.as_str() : k.repr();
        obj[key] = pickle_to_json(x, notes, child_path(path, k));
      }
      return obj;
    }
    case Kind::Tensor:
    case Kind::Storage: lossy(v.repr() + " dropped"); return v.repr();
    case Kind::Global:
    case Kind::Object: lossy(v.kind_name() + " dropped"); return v.repr();
  }
  return nullptr;
}

}  // namespace eqr::io
