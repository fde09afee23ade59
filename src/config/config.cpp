// The field tables of the config structs: the one place that maps json keys to struct members,
// with each knob's constraint. Loading, writing and comparing configs all walk these tables.

#include <cmath>
#include <limits>
#include <set>
#include <sstream>
#include <type_traits>

#include "eqr/config/load.h"
#include "eqr/core/error.h"
#include "eqr/core/logging.h"

namespace eqr::config {
namespace {

/// Constraint of one knob.
struct Rule {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_open = false;  // min excluded
  bool max_open = false;  // max excluded
  std::vector<std::string> choices;

  std::string describe() const {
    std::ostringstream os;
    if (!choices.empty()) {
      os << "one of ";
      for (size_t i = 0; i < choices.size(); ++i) os << (i ? ", " : "") << '"' << choices[i] << '"';
      return os.str();
    }
    const bool has_min = std::isfinite(min), has_max = std::isfinite(max);
    if (has_min && has_max) {
      os << "in " << (min_open ? "(" : "[") << min << ", " << max << (max_open ? ")" : "]");
    } else if (has_min) {
      os << (min_open ? "> " : ">= ") << min;
    } else if (has_max) {
      os << (max_open ? "< " : "<= ") << max;
    }
    return os.str();
  }
  bool accepts(double x) const {
    if (std::isnan(x)) return false;
    if (min_open ? !(x > min) : !(x >= min)) return false;
    if (max_open ? !(x < max) : !(x <= max)) return false;
    return true;
  }
  bool accepts(const std::string& s) const {
    return choices.empty() || std::find(choices.begin(), choices.end(), s) != choices.end();
  }
};

Rule any() { return {}; }
Rule at_least(double m) { Rule r; r.min = m; return r; }
Rule positive() { Rule r; r.min = 0; r.min_open = true; return r; }
Rule closed(double a, double b) { Rule r; r.min = a; r.max = b; return r; }
Rule unit_open_right() { Rule r; r.min = 0; r.max = 1; r.max_open = true; return r; }
Rule one_of(std::vector<std::string> c) { Rule r; r.choices = std::move(c); return r; }

// ---- the tables: one call per knob, in struct order ----

template <class V>
void fields(V& v, ComputeConfig& c) {
  v("forward_dtype", c.forward_dtype, one_of({"bfloat16", "float32", "float16"}));
  v("reduced_precision_on_cpu", c.reduced_precision_on_cpu, any());
  v("fused_kernels", c.fused_kernels, any());
  v("cpu_gemm", c.cpu_gemm, one_of({"auto", "onednn", "torch"}));
}

template <class V>
void fields(V& v, ArchConfig& c) {
  v("variant", c.variant, any());  // enum: its names come from enum_names
  v("hidden_size", c.hidden_size, at_least(1));
  v("num_heads", c.num_heads, at_least(1));
  v("expansion", c.expansion, positive());
  v("l_layers", c.l_layers, at_least(1));
  v("h_cycles", c.h_cycles, at_least(1));
  v("l_cycles", c.l_cycles, at_least(1));
  v("halt_max_steps", c.halt_max_steps, at_least(1));
  v("halt_exploration_prob", c.halt_exploration_prob, closed(0, 1));
  v("mlp_t", c.mlp_t, any());
  v("pos_encodings", c.pos_encodings, one_of({"rope", "rope2d", "none"}));
  v("board_height", c.board_height, at_least(1));
  v("board_width", c.board_width, at_least(1));
  v("rope_theta", c.rope_theta, positive());
  v("lambda", c.lambda, closed(0, 1));
  v("noise_scale", c.noise_scale, at_least(0));
  v("init", c.init, any());
  v("h_init_std", c.h_init_std, at_least(0));
  v("l_init_std", c.l_init_std, at_least(0));
  v("rms_norm_eps", c.rms_norm_eps, positive());
  v("q_head_bias_init", c.q_head_bias_init, any());
  v("vocab_size", c.vocab_size, at_least(3));
  v("seq_len", c.seq_len, at_least(1));
}

template <class V>
void fields(V& v, DataConfig& c) {
  v("task", c.task, any());  // the task registry checks the name (task::make_task)
  v("source", c.source, any());
  v("data_path", c.data_path, any());
  v("train_csv", c.train_csv, any());
  v("test_csv", c.test_csv, any());
  v("box_rows", c.box_rows, closed(1, 8));
  v("box_cols", c.box_cols, closed(1, 8));
  v("subsample_size", c.subsample_size, at_least(1));
  v("num_aug", c.num_aug, at_least(0));
  v("min_difficulty", c.min_difficulty, at_least(0));
  v("seed", c.seed, at_least(0));
  v("generate_train", c.generate_train, at_least(1));
  v("generate_test", c.generate_test, at_least(1));
  v("generate_min_givens", c.generate_min_givens, at_least(0));
  v("generate_max_givens", c.generate_max_givens, at_least(0));
  v("generate_min_rating", c.generate_min_rating, at_least(0));
  v("skip_invalid", c.skip_invalid, any());
  v("prefetch_batches", c.prefetch_batches, at_least(0));
}

template <class V>
void fields(V& v, TrainConfig& c) {
  v("global_batch_size", c.global_batch_size, at_least(1));
  v("epochs", c.epochs, at_least(1));
  v("max_steps", c.max_steps, at_least(1));
  v("time_limit_minutes", c.time_limit_minutes, positive());
  v("eval_interval_steps", c.eval_interval_steps, at_least(1));
  v("checkpoint_interval_steps", c.checkpoint_interval_steps, at_least(1));
  v("seed", c.seed, at_least(0));
  v("lr", c.lr, positive());
  v("lr_min_ratio", c.lr_min_ratio, closed(0, 1));
  v("lr_warmup_steps", c.lr_warmup_steps, at_least(0));
  v("beta1", c.beta1, unit_open_right());
  v("beta2", c.beta2, unit_open_right());
  v("weight_decay", c.weight_decay, at_least(0));
  v("loss_type", c.loss_type, one_of({"stablemax_cross_entropy", "softmax_cross_entropy"}));
  v("q_halt_loss_weight", c.q_halt_loss_weight, at_least(0));
  v("ema", c.ema, any());
  v("ema_rate", c.ema_rate, closed(0, 1));
  v("ema_warmup", c.ema_warmup, any());
  v("grad_clip_norm", c.grad_clip_norm, positive());
  v("gradient_checkpoint", c.gradient_checkpoint, any());
  v("float32_grad_cycle_on_cpu", c.float32_grad_cycle_on_cpu, any());
  v("load_checkpoint", c.load_checkpoint, any());
  v("load_weights_only", c.load_weights_only, any());
  v("load_strict", c.load_strict, any());
  v("log_interval_steps", c.log_interval_steps, at_least(1));
  v("steps_hist_log_interval_steps", c.steps_hist_log_interval_steps, at_least(1));
  v("grad_norm_log_interval_steps", c.grad_norm_log_interval_steps, at_least(1));
}

template <class V>
void fields(V& v, EvalConfig& c) {
  v("depth", c.depth, at_least(1));
  v("breadth", c.breadth, at_least(1));
  v("scheduler", c.scheduler, one_of({"fixed", "adaptive"}));
  v("tol", c.tol, at_least(0));
  v("patience", c.patience, at_least(1));
  v("halt_on_q", c.halt_on_q, any());
  v("answer_patience", c.answer_patience, at_least(0));
  v("convergence_top_k", c.convergence_top_k, at_least(1));
  v("convergence_window", c.convergence_window, at_least(1));
  v("global_batch_size", c.global_batch_size, at_least(1));
  v("max_eval_steps", c.max_eval_steps, at_least(1));
  v("use_ema", c.use_ema, any());
  v("seed", c.seed, at_least(0));
  v("save_row_traces", c.save_row_traces, any());
}

template <class V>
void fields(V& v, RunConfig& c) {
  v("name", c.name, any());
  v("output_root", c.output_root, any());
  v("device", c.device, any());
  v("num_threads", c.num_threads, at_least(0));
  v.section("arch", c.arch);
  v.section("compute", c.compute);
  v.section("data", c.data);
  v.section("train", c.train);
  v.section("eval", c.eval);
}

// ---- keys that moved to another section: the value goes along (a user's config is told the new name) ----

struct MovedKey {
  const char* from;  // dotted
  const char* to;
};

const MovedKey kMovedKeys[] = {
    {"arch.forward_dtype", "compute.forward_dtype"},
    {"arch.reduced_precision_on_cpu", "compute.reduced_precision_on_cpu"},
    {"arch.fused_kernels", "compute.fused_kernels"},
    {"arch.cpu_gemm", "compute.cpu_gemm"},
};

std::pair<std::string, std::string> split_key(const char* dotted) {
  const std::string s(dotted);
  const size_t dot = s.find('.');
  return {s.substr(0, dot), s.substr(dot + 1)};
}

// Moves the keys of kMovedKeys in `tree` to their new place (a value already there wins) or refuses them.
Tree with_moved_keys(const Tree& tree, RemovedKeys removed) {
  Tree out = tree;
  std::string moved;  // one warning line for all of them
  for (const auto& m : kMovedKeys) {
    const auto [from_section, from_key] = split_key(m.from);
    if (!out.is_object() || !out.contains(from_section) || !out[from_section].is_object() ||
        !out[from_section].contains(from_key)) {
      continue;
    }
    EQR_CHECK(removed != RemovedKeys::kError, ConfigError, "config key '", m.from, "' moved to '", m.to,
              "' (how a run computes, not what the model is); rename it");
    const auto [to_section, to_key] = split_key(m.to);
    if (!out.contains(to_section) || !out[to_section].is_object()) out[to_section] = Tree::object();
    const bool both = out[to_section].contains(to_key);
    if (!both) out[to_section][to_key] = out[from_section][from_key];
    out[from_section].erase(from_key);
    moved += std::string(moved.empty() ? "" : ", ") + m.from + " -> " + m.to + (both ? " (set too, and wins)" : "");
  }
  if (!moved.empty()) logger()->warn("config keys of an older eqr moved: {}", moved);
  return out;
}

// ---- enum names: the order of each enum's values ----

}  // namespace

const std::vector<std::string>& enum_names(Variant) {
  static const std::vector<std::string> names = {"eqr", "trm", "feedforward"};
  return names;
}
const std::vector<std::string>& enum_names(StateInit) {
  static const std::vector<std::string> names = {"random", "fixed"};
  return names;
}
const std::vector<std::string>& enum_names(DataSource) {
  static const std::vector<std::string> names = {"generated", "csv", "built"};
  return names;
}

namespace {

// ---- keys eqr no longer has: a clear error instead of "unknown key" (or a warning for stored configs) ----

struct RemovedKey {
  const char* path;  // dotted
  const char* why;
};

const RemovedKey kRemovedKeys[] = {
    {"train.train_epochs_per_iter",
     "the reference's loader pass of N epochs has no counterpart in eqr, whose loader runs epochs back to back "
     "and whose evaluations and checkpoints follow train.eval_interval_steps and "
     "train.checkpoint_interval_steps; delete the key"},
    {"eval.different_init_reset_std",
     "it never changed anything (the reference reads it nowhere either): every trajectory's initial state is drawn "
     "with arch.h_init_std and arch.l_init_std; delete the key"},
};

const RemovedKey* find_removed(const std::string& path) {
  for (const auto& r : kRemovedKeys) {
    if (path == r.path) return &r;
  }
  return nullptr;
}

// ---- value conversion ----

std::string type_name(const Tree& j) {
  switch (j.type()) {
    case Tree::value_t::null: return "null";
    case Tree::value_t::boolean: return "bool";
    case Tree::value_t::number_integer:
    case Tree::value_t::number_unsigned: return "integer";
    case Tree::value_t::number_float: return "float";
    case Tree::value_t::string: return "string";
    case Tree::value_t::array: return "list";
    case Tree::value_t::object: return "mapping";
    default: return "value";
  }
}

[[noreturn]] void bad_value(const std::string& key, const Tree& j, const std::string& expected) {
  EQR_FAIL(ConfigError, "config key '", key, "' = ", j.dump(), " (", type_name(j), "): expected ", expected);
}

std::string expectation(const char* type, const Rule& rule) {
  const std::string r = rule.describe();
  return r.empty() ? std::string(type) : std::string(type) + " " + r;
}

int64_t read_int(const std::string& key, const Tree& j, const Rule& rule) {
  int64_t x = 0;
  if (j.is_number_integer() || j.is_number_unsigned()) {
    x = j.get<int64_t>();
  } else if (j.is_number_float() && std::nearbyint(j.get<double>()) == j.get<double>() &&
             std::fabs(j.get<double>()) < 9.0e15) {
    x = static_cast<int64_t>(j.get<double>());
  } else {
    bad_value(key, j, expectation("an integer", rule));
  }
  if (!rule.accepts(static_cast<double>(x))) bad_value(key, j, expectation("an integer", rule));
  return x;
}

double read_double(const std::string& key, const Tree& j, const Rule& rule) {
  if (!j.is_number()) bad_value(key, j, expectation("a number", rule));
  const double x = j.get<double>();
  if (!rule.accepts(x)) bad_value(key, j, expectation("a number", rule));
  return x;
}

/// Reads a tree into a struct; every key of the tree must be a field.
class Reader {
 public:
  Reader(const Tree& node, std::string prefix, RemovedKeys removed)
      : node_(node), prefix_(std::move(prefix)), removed_(removed) {
    if (!node_.is_null() && !node_.is_object()) {
      EQR_FAIL(ConfigError, "config key '", prefix_.empty() ? "<root>" : prefix_.substr(0, prefix_.size() - 1),
               "' = ", node_.dump(), " (", type_name(node_), "): expected a mapping of keys");
    }
  }

  template <class T>
  void operator()(const char* name, T& field, const Rule& rule) {
    known_.push_back(name);
    if (!node_.is_object() || !node_.contains(name)) return;
    read(prefix_ + name, node_.at(name), field, rule);
  }

  template <class S>
  void section(const char* name, S& sub) {
    known_.push_back(name);
    if (!node_.is_object() || !node_.contains(name)) return;
    Reader r(node_.at(name), prefix_ + name + ".", removed_);
    fields(r, sub);
    r.reject_unknown();
  }

  void reject_unknown() const;

 private:
  static void read(const std::string& key, const Tree& j, int64_t& f, const Rule& r) { f = read_int(key, j, r); }
  static void read(const std::string& key, const Tree& j, double& f, const Rule& r) { f = read_double(key, j, r); }
  static void read(const std::string& key, const Tree& j, bool& f, const Rule&) {
    if (!j.is_boolean()) bad_value(key, j, "true or false");
    f = j.get<bool>();
  }
  static void read(const std::string& key, const Tree& j, std::string& f, const Rule& r) {
    if (!j.is_string()) bad_value(key, j, r.choices.empty() ? "a string" : r.describe());
    f = j.get<std::string>();
    if (!r.accepts(f)) bad_value(key, j, r.describe());
  }
  template <class E>
  static std::enable_if_t<std::is_enum_v<E>> read(const std::string& key, const Tree& j, E& f, const Rule&) {
    const auto& names = enum_names(E{});
    std::string expected = "one of";
    for (size_t i = 0; i < names.size(); ++i) expected += (i ? ", " : " ") + names[i];
    if (!j.is_string()) bad_value(key, j, expected);
    const auto it = std::find(names.begin(), names.end(), j.get<std::string>());
    if (it == names.end()) bad_value(key, j, expected);
    f = static_cast<E>(it - names.begin());
  }
  template <class T>
  static void read(const std::string& key, const Tree& j, std::optional<T>& f, const Rule& r) {
    if (j.is_null()) {
      f.reset();
      return;
    }
    T value{};
    read(key, j, value, r);
    f = value;
  }
  static void read(const std::string& key, const Tree& j, std::vector<int64_t>& f, const Rule& r) {
    f.clear();
    if (j.is_array()) {
      if (j.empty()) bad_value(key, j, "a non-empty list of integers " + r.describe());
      for (size_t i = 0; i < j.size(); ++i) f.push_back(read_int(key + "[" + std::to_string(i) + "]", j[i], r));
    } else {
      f.push_back(read_int(key, j, r));  // a single value is a one-element list
    }
  }

  const Tree& node_;
  std::string prefix_;
  RemovedKeys removed_;
  std::vector<std::string> known_;
};

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

void Reader::reject_unknown() const {
  if (!node_.is_object()) return;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    const std::string& key = it.key();
    if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
    if (const RemovedKey* r = find_removed(prefix_ + key)) {
      EQR_CHECK(removed_ != RemovedKeys::kError, ConfigError, "config key '", r->path, "' was removed: ", r->why);
      logger()->warn("config key '{}' (from an older eqr) was removed and is ignored: {}", r->path, r->why);
      continue;
    }
    std::string closest;
    size_t best = 3;  // suggest only near misses
    for (const auto& k : known_) {
      const size_t d = edit_distance(key, k);
      if (d < best) {
        best = d;
        closest = k;
      }
    }
    std::ostringstream valid;
    for (size_t i = 0; i < known_.size(); ++i) valid << (i ? ", " : "") << known_[i];
    const std::string where = prefix_.empty() ? "the top level" : "'" + prefix_.substr(0, prefix_.size() - 1) + "'";
    EQR_FAIL(ConfigError, "unknown config key '", prefix_, key, "'",
             closest.empty() ? "" : " (did you mean '" + prefix_ + closest + "'?)", "; valid keys under ", where,
             ": ", valid.str());
  }
}

/// Writes a struct into a tree, in table order.
class Writer {
 public:
  explicit Writer(Tree& out) : out_(out) {}
  template <class T>
  void operator()(const char* name, T& field, const Rule&) {
    out_[name] = value(field);
  }
  template <class S>
  void section(const char* name, S& sub) {
    Tree child = Tree::object();
    Writer w(child);
    fields(w, sub);
    out_[name] = std::move(child);
  }

 private:
  template <class T>
  static Tree value(const T& x) {
    if constexpr (std::is_enum_v<T>) {
      return Tree(name_of(x));
    } else {
      return Tree(x);
    }
  }
  template <class T>
  static Tree value(const std::optional<T>& x) {
    return x ? Tree(*x) : Tree(nullptr);
  }
  Tree& out_;
};

template <class S>
S read_struct(const Tree& tree, const std::string& prefix, RemovedKeys removed = RemovedKeys::kError) {
  S s;
  Reader r(tree, prefix, removed);
  fields(r, s);
  r.reject_unknown();
  return s;
}

template <class S>
Tree write_struct(const S& s) {
  Tree out = Tree::object();
  S copy = s;
  Writer w(out);
  fields(w, copy);
  return out;
}

}  // namespace

// Equality through the tables: two structs are equal when every knob is.
bool operator==(const ArchConfig& a, const ArchConfig& b) { return write_struct(a) == write_struct(b); }
bool operator==(const ComputeConfig& a, const ComputeConfig& b) { return write_struct(a) == write_struct(b); }
bool operator==(const DataConfig& a, const DataConfig& b) { return write_struct(a) == write_struct(b); }
bool operator==(const TrainConfig& a, const TrainConfig& b) { return write_struct(a) == write_struct(b); }
bool operator==(const EvalConfig& a, const EvalConfig& b) { return write_struct(a) == write_struct(b); }
bool operator==(const RunConfig& a, const RunConfig& b) { return write_struct(a) == write_struct(b); }

RunConfig from_json(const Tree& tree, RemovedKeys removed) {
  RunConfig c = read_struct<RunConfig>(with_moved_keys(tree, removed), "", removed);
  validate(c);
  return c;
}

ArchConfig arch_from_json(const Tree& tree) {
  // An older eqr's arch held the compute keys too: they are dropped here (ArchConfig has none).
  Tree whole = Tree::object();
  whole["arch"] = tree;
  return read_struct<ArchConfig>(with_moved_keys(whole, RemovedKeys::kWarn)["arch"], "arch.");
}

std::vector<std::pair<std::string, std::string>> removed_keys() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : kRemovedKeys) out.emplace_back(r.path, r.why);
  return out;
}

Tree to_json(const RunConfig& config) { return write_struct(config); }
Tree to_json(const ArchConfig& arch) { return write_struct(arch); }

void validate(const RunConfig& c) {
  const auto& a = c.arch;
  if (!a.mlp_t) {
    EQR_CHECK(a.hidden_size % a.num_heads == 0, ConfigError, "config keys 'arch.hidden_size' = ", a.hidden_size,
              " and 'arch.num_heads' = ", a.num_heads, ": hidden_size must be divisible by num_heads");
    const int64_t head_dim = a.hidden_size / a.num_heads;
    EQR_CHECK(a.pos_encodings == "none" || head_dim % 2 == 0, ConfigError, "config key 'arch.num_heads' = ",
              a.num_heads, ": RoPE needs an even head_dim, got ", head_dim);
    EQR_CHECK(a.pos_encodings != "rope2d" || head_dim % 4 == 0, ConfigError, "config key 'arch.num_heads' = ",
              a.num_heads, ": rope2d needs head_dim divisible by 4, got ", head_dim);
  }
  if (a.pos_encodings == "rope2d") {
    EQR_CHECK(a.board_height * a.board_width == a.seq_len, ConfigError, "config keys 'arch.board_height' = ",
              a.board_height, ", 'arch.board_width' = ", a.board_width,
              ": rope2d needs board_height * board_width = arch.seq_len (", a.seq_len, ")");
  }
  if (a.variant == Variant::kTrm) {
    EQR_CHECK(a.lambda == 1.0 && a.noise_scale == 0.0, ConfigError, "config key 'arch.variant' = \"trm\" with ",
              "arch.lambda = ", a.lambda, " and arch.noise_scale = ", a.noise_scale,
              ": the TRM baseline has no damping and no noise; set lambda 1 and noise_scale 0 (or variant eqr)");
  }
  // The task's own cross-checks (arch.seq_len / vocab_size against its board) run in task::make_task.
  EQR_CHECK(c.data.generate_max_givens == 0 || c.data.generate_max_givens >= c.data.generate_min_givens, ConfigError,
            "config key 'data.generate_max_givens' = ", c.data.generate_max_givens,
            ": expected 0 (no maximum) or >= data.generate_min_givens (", c.data.generate_min_givens, ")");
  EQR_CHECK(c.train.lr_warmup_steps >= 0, ConfigError, "config key 'train.lr_warmup_steps' must be >= 0");
}

}  // namespace eqr::config
