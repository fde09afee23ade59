// The training loop (see trainer.h). Shape legend: B local batch rows, S cells, V vocab, D hidden.

#include "eqr/train/trainer.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>

#include <torch/torch.h>

#include "eqr/config/load.h"
#include "eqr/core/device.h"
#include "eqr/core/error.h"
#include "eqr/core/logging.h"
#include "eqr/core/progress.h"
#include "eqr/core/rng.h"
#include "eqr/core/version.h"
#include "eqr/data/dataset.h"
#include "eqr/data/loader.h"
#include "eqr/dynamics/score.h"
#include "eqr/dynamics/step.h"
#include "eqr/infer/runner.h"
#include "eqr/io/checkpoint.h"
#include "eqr/io/reference_checkpoint.h"
#include "eqr/model/eqr_model.h"
#include "eqr/model/init.h"
#include "eqr/task/task.h"
#include "eqr/train/adam_atan2.h"
#include "eqr/train/distributed.h"
#include "eqr/train/ema.h"
#include "eqr/train/loss.h"
#include "eqr/train/lr_schedule.h"
#include "eqr/train/train_step.h"

namespace eqr::train {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

// ---- signals: SIGINT/SIGTERM ask the loop to checkpoint and stop ----
std::atomic<bool> g_stop_requested{false};
extern "C" void on_stop_signal(int) { g_stop_requested.store(true); }

class SignalGuard {
 public:
  SignalGuard() {
    g_stop_requested.store(false);
    old_int_ = std::signal(SIGINT, on_stop_signal);
    old_term_ = std::signal(SIGTERM, on_stop_signal);
  }
  ~SignalGuard() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }

 private:
  void (*old_int_)(int) = SIG_DFL;
  void (*old_term_)(int) = SIG_DFL;
};

/// The loader's batch on `device`. With a pinned (page-locked) host batch the copies are asynchronous
/// (non_blocking): the host tensors may be freed right after, because LibTorch's caching host allocator
/// records the copy on the stream and hands the block out again only once the copy is done; the loop also
/// keeps each host batch alive until the next one arrives. Shapes as data::Batch: (B, S), (B, S), (B).
dynamics::Batch to_device(const data::Batch& b, const c10::Device& device) {
  const bool non_blocking = device.is_cuda() && b.inputs.is_pinned();
  auto move = [&](const at::Tensor& t) { return t.to(device, t.scalar_type(), non_blocking); };
  dynamics::Batch d;
  d.inputs = move(b.inputs);
  d.labels = move(b.labels);
  d.puzzle_identifiers = move(b.puzzle_identifiers);
  return d;
}

void append_jsonl(const fs::path& path, const Json& line) {
  std::ofstream out(path, std::ios::app);
  EQR_CHECK(out.good(), RuntimeError, "cannot append to '", path.string(), "'");
  out << line.dump() << "\n";
}

void write_json(const fs::path& path, const Json& j) {
  std::ofstream out(path);
  EQR_CHECK(out.good(), RuntimeError, "cannot write '", path.string(), "'");
  out << j.dump(2) << "\n";
}

}  // namespace

TrainEvalResult evaluate_split(model::EqrModel& model, const std::shared_ptr<const data::SplitData>& split,
                               int64_t depth, int64_t batch_size, uint64_t seed, Distributed& dist) {
  const c10::Device device = model->device();
  // This rank's share: a contiguous slice of the puzzles, each keeping its index as its seeding identity, so a
  // puzzle starts from the same state whatever the number of ranks.
  const infer::PuzzleSet all = task::puzzles_from_split(*split, nullptr);
  const int64_t n = all.size(), w = dist.world_size(), r = dist.rank();
  const int64_t lo = n * r / w, hi = n * (r + 1) / w;
  // sums: puzzles, exact, cell accuracy, final residual, ranks stopped early
  auto sums = torch::zeros({5}, torch::TensorOptions().dtype(torch::kFloat64));
  if (hi > lo) {
    // The inference runner at fixed depth, breadth 1, its randomness from its own streams keyed by `seed`
    // (the training generator and torch's global ones are left alone); no grad, eval mode, mode restored.
    infer::RunnerOptions ro;
    ro.depths = {depth};
    ro.breadth = 1;
    ro.batch_puzzles = std::max<int64_t>(1, batch_size / w);
    ro.seed = seed;
    ro.keep_residuals = false;
    // A stop request (SIGINT/SIGTERM, request_stop) ends the evaluation before its next step; each rank still
    // takes part in the one collective below, and all learn that the result is partial.
    ro.should_abort = [] { return stop_requested(); };
    double* s = sums.data_ptr<double>();
    const infer::RunSummary summary = infer::run(model, all.slice(lo, hi), ro, [&](infer::PuzzleResult&& p) {
      const infer::Snapshot& last = p.trajectories.at(0).at_depth.back();
      s[0] += 1.0;
      s[1] += last.exact ? 1.0 : 0.0;
      s[2] += last.cell_accuracy;
      s[3] += last.residual;
    });
    if (summary.interrupted) s[4] = 1.0;
  } else if (stop_requested()) {
    sums[4] = 1.0;
  }
  auto reduced = sums.to(device);
  dist.all_reduce(reduced, ReduceOp::Sum);
  const auto got = reduced.cpu();
  const auto* v = got.data_ptr<double>();
  TrainEvalResult result;
  result.n_puzzles = static_cast<int64_t>(v[0]);
  const double count = std::max(1.0, v[0]);
  result.exact_accuracy = v[1] / count;
  result.cell_accuracy = v[2] / count;
  result.mean_final_residual = v[3] / count;
  result.interrupted = v[4] > 0;
  return result;
}

void request_stop() { g_stop_requested.store(true); }
bool stop_requested() { return g_stop_requested.load(); }
void clear_stop_request() { g_stop_requested.store(false); }

at::Generator training_generator(const c10::Device& device, uint64_t seed, int rank) {
  return model::make_generator(device, derive_seed(seed, stream_id("train") + static_cast<uint64_t>(rank)));
}

namespace {

io::TensorMap to_map(const torch::OrderedDict<std::string, at::Tensor>& d) {
  io::TensorMap m;
  for (const auto& item : d) m[item.key()] = item.value();
  return m;
}

/// Everything the loop owns, so checkpoints save and restore it in one place.
struct State {
  model::EqrModel model{nullptr};
  std::unique_ptr<AdamATan2> optimizer;
  std::unique_ptr<Ema> ema;
  std::unique_ptr<data::Loader> loader;
  dynamics::Carry carry;
  at::Generator gen;
  int64_t step = 0;
  int64_t total_steps = 0;
};

/// What differs between ranks: the carry (this rank's rows; tensor names carry/<field>) and the training
/// generator's state (rng/train).
io::TensorMap rank_state(const State& st) {
  io::TensorMap carry{{"z_h", st.carry.z_h}, {"z_l", st.carry.z_l}, {"steps", st.carry.steps},
                      {"halted", st.carry.halted}, {"inputs", st.carry.data.inputs}};
  if (st.carry.data.labels.defined()) carry["labels"] = st.carry.data.labels;
  if (st.carry.data.puzzle_identifiers.defined()) carry["puzzle_identifiers"] = st.carry.data.puzzle_identifiers;
  io::TensorMap out;
  io::put_tensors(out, "carry/", carry);
  out["rng/train"] = st.gen.get_state();
  return out;
}

/// Every rank's `local` (the same names, shapes and dtypes on every rank), on every rank, bit for bit: the
/// tensors' bytes packed into one uint8 tensor on `device`, broadcast from each rank in turn. A collective.
std::vector<io::TensorMap> gather_ranks(const io::TensorMap& local, Distributed& dist, const c10::Device& device) {
  std::vector<io::TensorMap> out(static_cast<size_t>(dist.world_size()));
  if (!dist.active()) {
    out[0] = local;
    return out;
  }
  std::vector<at::Tensor> host;
  int64_t total = 0;
  for (const auto& [name, t] : local) {
    host.push_back(t.detach().to(torch::kCPU).contiguous());
    total += host.back().numel() * static_cast<int64_t>(host.back().element_size());
  }
  at::Tensor packed = torch::empty({total}, torch::kUInt8);
  int64_t offset = 0;
  for (const auto& h : host) {
    const int64_t n = h.numel() * static_cast<int64_t>(h.element_size());
    if (n > 0) std::memcpy(packed.data_ptr<uint8_t>() + offset, h.data_ptr(), static_cast<size_t>(n));
    offset += n;
  }
  for (int r = 0; r < dist.world_size(); ++r) {
    std::vector<at::Tensor> buf{r == dist.rank() ? packed.to(device)
                                                 : torch::empty({total}, torch::TensorOptions().dtype(torch::kUInt8).device(device))};
    dist.broadcast(buf, r);
    const at::Tensor got = buf[0].cpu();
    offset = 0;
    size_t i = 0;
    for (const auto& [name, t] : local) {
      at::Tensor x = torch::empty(host[i].sizes(), host[i].options());
      const int64_t n = x.numel() * static_cast<int64_t>(x.element_size());
      if (n > 0) std::memcpy(x.data_ptr(), got.data_ptr<uint8_t>() + offset, static_cast<size_t>(n));
      offset += n;
      out[static_cast<size_t>(r)][name] = x;
      ++i;
    }
  }
  return out;
}

/// The name of rank r's training generator state in a checkpoint: rng/train (rank 0, as single-process
/// checkpoints), rng/train/rank<r> for the others.
std::string rng_key(int rank) { return rank == 0 ? "rng/train" : "rng/train/rank" + std::to_string(rank); }

/// `ranks`: rank_state() of every rank (gather_ranks). The carry is stored with the ranks' rows one after
/// the other (rank order), so a checkpoint of N processes holds the global batch's carry.
io::Checkpoint make_checkpoint(const State& st, const config::RunConfig& cfg, const std::vector<io::TensorMap>& ranks) {
  io::Checkpoint ck;
  io::put_tensors(ck.tensors, "model/", to_map(st.model->state_dict()));
  if (st.ema) io::put_tensors(ck.tensors, "ema/", st.ema->shadow());
  io::TensorMap optim;
  for (const auto& [k, v] : st.optimizer->state_tensors()) optim[k] = v;
  io::put_tensors(ck.tensors, "optim/", optim);
  for (const auto& [name, t] : ranks[0]) {
    if (name.rfind("carry/", 0) != 0) continue;
    std::vector<at::Tensor> rows;
    for (const auto& r : ranks) rows.push_back(r.at(name));
    ck.tensors[name] = rows.size() == 1 ? rows[0] : torch::cat(rows, 0);
  }
  for (size_t r = 0; r < ranks.size(); ++r) ck.tensors[rng_key(static_cast<int>(r))] = ranks[r].at("rng/train");
  ck.meta["format"] = "eqr-train";
  ck.meta["world_size"] = static_cast<int64_t>(ranks.size());
  ck.meta["step"] = st.step;
  ck.meta["total_steps"] = st.total_steps;
  ck.meta["config"] = config::to_json(cfg);
  ck.meta["loader"] = Json::parse(st.loader->state().to_json().dump());
  ck.meta["ema_updates"] = st.ema ? st.ema->num_updates() : 0;
  ck.meta["eqr_version"] = version();
  ck.meta["git_sha"] = git_sha();
  return ck;
}

void restore_checkpoint(State& st, const io::Checkpoint& ck, const std::string& path, const Distributed& dist) {
  const c10::Device device = st.model->device();
  io::apply_state_dict(*st.model, io::tensors_with_prefix(ck.tensors, "model/"), /*strict=*/true);
  if (st.ema) {
    st.ema->load_shadow(io::tensors_with_prefix(ck.tensors, "ema/"), /*strict=*/true);
    st.ema->set_num_updates(ck.meta.value("ema_updates", int64_t{0}));
  }
  const auto optim = io::tensors_with_prefix(ck.tensors, "optim/");
  st.optimizer->load_state_tensors(std::map<std::string, torch::Tensor>(optim.begin(), optim.end()));
  const auto carry = io::tensors_with_prefix(ck.tensors, "carry/");
  // Checkpoints that record world_size hold every rank's carry rows (rank order) and generator; older ones
  // hold rank 0's alone.
  const int64_t saved_ranks = ck.meta.value("world_size", int64_t{0});
  EQR_CHECK(saved_ranks == 0 || saved_ranks == dist.world_size(), UsageError, "checkpoint '", path,
            "' was written by a run of ", saved_ranks, " process(es), and this one has ", dist.world_size(),
            ": each rank's carry and random stream are in the checkpoint, so resume with the same number (",
            saved_ranks == 1 ? std::string("eqr train --resume") : "eqr launch -n " + std::to_string(saved_ranks) +
            " -- train --resume", ")");
  const int64_t rows = st.loader->local_batch_size();
  auto get = [&](const std::string& k) {
    auto it = carry.find(k);
    EQR_CHECK(it != carry.end(), CheckpointError, "checkpoint '", path, "' has no carry/", k,
              "; it was not written by `eqr train` and cannot resume a run");
    at::Tensor t = it->second;
    if (saved_ranks > 0) {
      EQR_CHECK(t.dim() >= 1 && t.size(0) == saved_ranks * rows, CheckpointError, "checkpoint '", path, "': carry/",
                k, " has ", t.dim() >= 1 ? t.size(0) : 0, " rows, expected ", saved_ranks * rows, " (",
                saved_ranks, " x ", rows, ")");
      t = t.narrow(0, dist.rank() * rows, rows).contiguous();
    }
    return t.to(device);
  };
  st.carry.z_h = get("z_h");
  st.carry.z_l = get("z_l");
  st.carry.steps = get("steps");
  st.carry.halted = get("halted");
  st.carry.data.inputs = get("inputs");
  if (carry.count("labels")) st.carry.data.labels = get("labels");
  if (carry.count("puzzle_identifiers")) st.carry.data.puzzle_identifiers = get("puzzle_identifiers");
  const std::string rng_name = saved_ranks > 0 ? rng_key(dist.rank()) : std::string("rng/train");
  auto rng = ck.tensors.find(rng_name);
  EQR_CHECK(rng != ck.tensors.end(), CheckpointError, "checkpoint '", path, "' has no ", rng_name, " state");
  st.gen.set_state(rng->second.cpu());
  st.loader->restore(data::LoaderState::from_json(nlohmann::json::parse(ck.meta.at("loader").dump())));
  st.step = ck.meta.at("step").get<int64_t>();
}

std::string fmt_metric(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", x);
  return buf;
}

/// Creates the run directory's folders and proves that a file can be written there (a temp file through
/// io::atomic_write, removed again), before any data is built or any step is taken. RuntimeError otherwise.
void check_run_dir_writable(const fs::path& run_dir) {
  const std::string hint = ": the run cannot write its config, metrics and checkpoints there. Choose another "
                           "directory (--run-dir, or output_root in the config) or fix its permissions";
  for (const fs::path& d : {run_dir / "checkpoints", run_dir / "eval"}) {
    std::error_code ec;
    fs::create_directories(d, ec);
    EQR_CHECK(!ec, RuntimeError, "cannot create run directory '", d.string(), "' (", ec.message(), ")", hint);
  }
  const fs::path probe = run_dir / "checkpoints" / ".write_probe";
  try {
    io::atomic_write_text(probe.string(), "eqr\n");
  } catch (const Error& e) {
    EQR_FAIL(RuntimeError, "run directory '", run_dir.string(), "' is not writable (", e.what(), ")", hint);
  }
  std::error_code ec;
  fs::remove(probe, ec);
}

/// Stops before the first step when the run directory's filesystem cannot hold two checkpoints of
/// `checkpoint_bytes` (the one being written beside the previous one, which survives until the new one is
/// complete).
void check_room_for_checkpoints(const fs::path& run_dir, uint64_t checkpoint_bytes) {
  std::error_code ec;
  const fs::space_info space = fs::space(run_dir, ec);
  if (ec) return;  // no statistics (some network filesystems): a full disk is then reported by the write
  const uint64_t need = 2 * checkpoint_bytes + (uint64_t{1} << 20);
  EQR_CHECK(space.available >= need, RuntimeError, "the filesystem of run directory '", run_dir.string(), "' has ",
            space.available >> 20, " MiB free, and training needs about ", need >> 20, " MiB (two checkpoints of ",
            checkpoint_bytes >> 20, " MiB: the new one is written beside the last); free some space or choose "
            "another directory");
}

/// Watches the loss and the carry's latent states for non-finite values without a host sync per step: the
/// first bad step of each (and the loss) stay on the device (0-dim tensors) until check(), which the loop calls
/// at log steps, before every evaluation and checkpoint, and at the end. Every rank calls check() at the same
/// steps (a collective).
class NonFiniteWatch {
 public:
  explicit NonFiniteWatch(const c10::Device& device)
      : first_step_(torch::zeros({2}, torch::TensorOptions().dtype(torch::kLong).device(device))),
        value_(torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device))) {}

  /// Records `loss` (0-dim) of optimisation step `step` >= 1; only the first non-finite one is kept.
  void observe(const at::Tensor& loss, int64_t step) {
    torch::NoGradGuard no_grad;
    const at::Tensor l = loss.detach().to(torch::kFloat64);
    const at::Tensor first_bad = torch::logical_not(torch::isfinite(l)).logical_and(first_step_[0] == 0);
    first_step_[0].add_(first_bad.to(torch::kLong) * step);
    value_ = torch::where(first_bad, l, value_);
  }

  /// Records whether the carry after optimisation step `step` holds a non-finite z_H or z_L (B, S, D).
  void observe_carry(const dynamics::Carry& carry, int64_t step) {
    torch::NoGradGuard no_grad;
    const at::Tensor finite = torch::isfinite(carry.z_h).all().logical_and(torch::isfinite(carry.z_l).all());
    first_step_[1].add_(torch::logical_not(finite).logical_and(first_step_[1] == 0).to(torch::kLong) * step);
  }

  /// Throws RuntimeError naming the first non-finite step over all ranks (loss or latent state), if any.
  void check(Distributed& dist, const std::string& last_checkpoint) {
    const at::Tensor local_steps = first_step_.cpu();  // the sync, at check points only
    const int64_t* local = local_steps.data_ptr<int64_t>();
    const double inf = std::numeric_limits<double>::infinity();
    auto first = torch::tensor({local[0] > 0 ? static_cast<double>(local[0]) : inf,
                                local[1] > 0 ? static_cast<double>(local[1]) : inf},
                               torch::TensorOptions().dtype(torch::kFloat64))
                     .to(first_step_.device());
    dist.all_reduce(first, ReduceOp::Min);
    const at::Tensor got = first.cpu();
    const double loss_step = got.data_ptr<double>()[0], carry_step = got.data_ptr<double>()[1];
    if (!std::isfinite(loss_step) && !std::isfinite(carry_step)) return;
    const std::string where = "; the run stopped and the last checkpoint on disk (" +
                              (last_checkpoint.empty() ? std::string("none yet") : last_checkpoint) +
                              ") is intact. Lower train.lr or set train.grad_clip_norm.";
    if (loss_step <= carry_step) {
      const std::string value =
          static_cast<double>(local[0]) == loss_step ? " (" + fmt_metric(value_.item<double>()) + ")" : std::string();
      EQR_FAIL(RuntimeError, "non-finite loss", value, " at step ", static_cast<int64_t>(loss_step), where);
    }
    EQR_FAIL(RuntimeError, "non-finite latent state (NaN or Inf in the carry's z_H or z_L) after step ",
             static_cast<int64_t>(carry_step), where);
  }

 private:
  at::Tensor first_step_;  // (2) int64 on the device: first step with a non-finite [loss, carry], 0 = none yet
  at::Tensor value_;       // 0-dim float64: that loss
};

/// Halted rows by supervision steps at halt, summed on the device since the last histogram line.
class StepsHistogram {
 public:
  StepsHistogram(int64_t halt_max_steps, const c10::Device& device)
      : counts_(torch::zeros({halt_max_steps + 1}, torch::TensorOptions().dtype(torch::kFloat64).device(device))) {}

  /// halted (B) bool, steps (B) integer (after the step), row_count (B) labelled cells: rows count when
  /// halted with labelled cells, as the train/* metrics (and the reference's raw_steps) count them.
  void add(const at::Tensor& halted, const at::Tensor& steps, const at::Tensor& row_count) {
    torch::NoGradGuard no_grad;
    const at::Tensor valid = halted.to(torch::kBool).logical_and(row_count > 0).to(torch::kFloat64);
    counts_.index_add_(0, steps.to(torch::kLong).clamp(0, counts_.size(0) - 1), valid);
  }

  /// Sums over ranks (a collective), writes train/steps_hist {"steps": rows} (non-empty bins) and
  /// train/steps_hist_count into `line`, and starts a new window.
  void log(Distributed& dist, Json& line) {
    dist.all_reduce(counts_, ReduceOp::Sum);
    const at::Tensor c = counts_.cpu().clone();  // on the CPU, cpu() is counts_ itself, zeroed below
    counts_.zero_();
    const auto* v = c.data_ptr<double>();
    Json hist = Json::object();
    double total = 0;
    for (int64_t k = 0; k < c.size(0); ++k) {
      if (v[k] > 0) hist[std::to_string(k)] = static_cast<int64_t>(v[k]);
      total += v[k];
    }
    line["train/steps_hist"] = hist;
    line["train/steps_hist_count"] = static_cast<int64_t>(total);
  }

 private:
  at::Tensor counts_;  // (halt_max_steps + 1) float64 on the device; index = steps at halt
};

/// The reference's rule for the optional interval logs (grad norms, steps histogram): step 1 and every
/// `interval` steps; never when unset.
bool interval_hit(const std::optional<int64_t>& interval, int64_t step) {
  return interval.has_value() && *interval > 0 && (step == 1 || step % *interval == 0);
}


/// One call of run_training as named phases: setup (processes, run directory, data, model, restore), the loop
/// (should_stop, step, log), evaluate and checkpoint, finish. Members are declared in the order the old
/// single function created them, so they are destroyed as before (the process group last).
class TrainingRun {
 public:
  TrainingRun(const config::RunConfig& cfg, const TrainerOptions& options)
      : cfg_(cfg), tc_(cfg.train), options_(options), task_(task::make_task(cfg)) {
    // The task (data.task) checked the config against its board before anything is written.
    result_.run_dir = options.run_dir.empty() ? (fs::path(cfg.output_root) / cfg.name).string() : options.run_dir;
    run_dir_ = fs::path(result_.run_dir);
  }

  TrainResult run() {
    setup_processes();
    setup_run_dir();
    setup_data();
    setup_model();
    restore();
    log_start();
    loop();
    return finish();
  }

 private:
  // ---- setup ----

  /// The rank's device is current before any tensor or the process group.
  void setup_processes() {
    const DistEnv env = DistEnv::from_environment();
    device_ = rank_device(resolve_device(cfg_.device), env);
    use_device(device_);
    set_num_threads(cfg_.num_threads);
    dist_.emplace(env, device_);
    primary_ = dist_->is_primary();
    EQR_CHECK(tc_.global_batch_size % dist_->world_size() == 0, ConfigError,
              "config key 'train.global_batch_size' = ", tc_.global_batch_size,
              ": must be divisible by the number of processes (", dist_->world_size(), ")");
  }

  /// Rank 0: refuses a run directory with checkpoints (unless resuming), proves it writable, writes the
  /// resolved config and env.json.
  void setup_run_dir() {
    if (!primary_) return;
    if (!options_.resume) {
      EQR_CHECK(!io::latest_checkpoint(run_dir_.string()).has_value(), UsageError, "run directory '",
                run_dir_.string(), "' already holds checkpoints; resume it with --resume ", run_dir_.string(),
                " or choose another name (--set name=...)");
    }
    check_run_dir_writable(run_dir_);
    config::write_resolved(cfg_, (run_dir_ / "config.yaml").string());
    Json envj = Json::parse(environment_info().dump());
    envj["device"] = device_.str();
    envj["world_size"] = dist_->world_size();
    envj["backend"] = dist_->backend();
    envj["seed"] = tc_.seed;
    envj["started"] = static_cast<int64_t>(std::time(nullptr));
    write_json(run_dir_ / "env.json", envj);
  }

  void setup_data() {
    train_split_ = std::make_shared<const data::SplitData>(task_->load_or_build("train"));
    test_split_ = std::make_shared<const data::SplitData>(task_->load_or_build("test"));
    EQR_CHECK(train_split_->seq_len() == cfg_.arch.seq_len, ConfigError, "dataset seq_len ", train_split_->seq_len(),
              " does not match config key 'arch.seq_len' = ", cfg_.arch.seq_len);
    EQR_CHECK(train_split_->metadata.vocab_size == cfg_.arch.vocab_size, ConfigError, "dataset vocab_size ",
              train_split_->metadata.vocab_size, " does not match config key 'arch.vocab_size' = ",
              cfg_.arch.vocab_size);
    const double examples =
        static_cast<double>(train_split_->num_groups()) * train_split_->metadata.mean_puzzle_examples;
    steps_per_epoch_ = static_cast<int64_t>(std::floor(examples / static_cast<double>(tc_.global_batch_size)));
    EQR_CHECK(steps_per_epoch_ >= 1, DataError, "the training split has ", train_split_->num_groups(),
              " groups, fewer than train.global_batch_size = ", tc_.global_batch_size,
              ": no full batch can be formed; lower the batch size or add puzzles");
  }

  /// Model, optimiser, EMA (identical init on every rank: seeded with `seed`, then broadcast), loader,
  /// training generator and the first carry.
  void setup_model() {
    seed_torch(tc_.seed);
    st_.model = model::EqrModel(model::EqrModelOptions(cfg_.arch, cfg_.compute));
    st_.model->to(device_);
    dist_->broadcast_module(*st_.model);
    st_.model->train();
    st_.optimizer = make_optimizer(st_.model, tc_);
    st_.ema = make_ema(st_.model, tc_);
    st_.total_steps = tc_.epochs * steps_per_epoch_;
    if (tc_.max_steps) st_.total_steps = std::min(st_.total_steps, *tc_.max_steps);
    schedule_.emplace(tc_, st_.total_steps);
    step_options_ = TrainStepOptions::from(cfg_);

    data::LoaderOptions lo = data::train_loader_options(cfg_, dist_->rank(), dist_->world_size());
    lo.pin_memory = device_.is_cuda();  // page-locked batches: asynchronous copies to the GPU
    st_.loader = std::make_unique<data::Loader>(train_split_, lo);

    st_.gen = training_generator(device_, static_cast<uint64_t>(tc_.seed), dist_->rank());
    dynamics::Batch shape;
    shape.inputs = torch::zeros({st_.loader->local_batch_size(), cfg_.arch.seq_len}, torch::kInt32);
    shape.labels = torch::zeros_like(shape.inputs);
    shape.puzzle_identifiers = torch::zeros({st_.loader->local_batch_size()}, torch::kInt32);
    st_.carry = dynamics::initial_carry(st_.model, shape);
  }

  /// train.load_checkpoint (weights only) or --resume (everything), then the disk-space check.
  void restore() {
    if (tc_.load_checkpoint && !options_.resume) {
      const auto ck = io::load_any_checkpoint(*tc_.load_checkpoint, device_);
      auto weights = io::tensors_with_prefix(ck.tensors, "model/");
      const auto report = io::apply_state_dict(*st_.model, weights, tc_.load_strict);
      logger()->info("initialised from {} ({} tensors loaded, {} missing, {} unexpected)", *tc_.load_checkpoint,
                     report.loaded.size(), report.missing.size(), report.unexpected.size());
      st_.ema = make_ema(st_.model, tc_);
      EQR_CHECK(tc_.load_weights_only, ConfigError, "config key 'train.load_checkpoint' without ",
                "train.load_weights_only = true: continuing another run's optimiser is done with --resume <run dir>");
    }
    if (options_.resume) {
      const auto latest = io::latest_checkpoint(run_dir_.string());
      EQR_CHECK(latest.has_value(), UsageError, "--resume ", run_dir_.string(), ": no checkpoint found in ",
                (run_dir_ / "checkpoints").string());
      restore_checkpoint(st_, io::load_checkpoint(*latest, device_), *latest, *dist_);
      result_.last_checkpoint = *latest;
      logger()->info("resumed from {} at step {}/{}", *latest, st_.step, st_.total_steps);
    }
    result_.total_steps = st_.total_steps;
    if (!primary_) return;
    auto bytes = [](const auto& named) {
      uint64_t b = 0;
      for (const auto& [name, t] : named) b += static_cast<uint64_t>(t.numel()) * t.element_size();
      return b;
    };
    const uint64_t model_bytes = bytes(to_map(st_.model->state_dict()));
    const uint64_t ema = st_.ema ? bytes(st_.ema->shadow()) : 0;
    // A fresh optimiser has no state yet; after its first step, two moments per parameter.
    const uint64_t optim = std::max<uint64_t>(bytes(st_.optimizer->state_tensors()), 2 * model_bytes);
    check_room_for_checkpoints(run_dir_, model_bytes + ema + optim +
                                             static_cast<uint64_t>(dist_->world_size()) * bytes(rank_state(st_)));
  }

  void log_start() {
    if (!primary_) return;
    logger()->info("training {} ({} parameters, {} blocks per supervision step) on {} x{} | {} train examples "
                   "in {} groups, {} test | {} steps, global batch {}",
                   cfg_.name, st_.model->num_parameters(), st_.model->blocks_per_step(), device_.str(),
                   dist_->world_size(), train_split_->num_examples(), train_split_->num_groups(),
                   test_split_->num_examples(), st_.total_steps, tc_.global_batch_size);
  }

  // ---- evaluate and checkpoint ----

  /// Whether a finished evaluation was cut short by a stop request (then nothing of it is recorded).
  bool stopped(const TrainEvalResult& r, int64_t step) {
    if (!r.interrupted) return false;
    result_.interrupted = true;  // the loop (or the end of the run) checkpoints and stops
    logger()->warn("evaluation at step {} stopped by a stop request after {} puzzles; its partial metrics are "
                   "not recorded", step, r.n_puzzles);
    return true;
  }

  /// Raw and EMA weights on the whole test split at training depth, breadth 1; a metrics line and
  /// eval/step_<step>.json.
  void evaluate(int64_t step) {
    watch_->check(*dist_, result_.last_checkpoint);
    Json line;
    line["step"] = step;
    auto put = [&](const std::string& prefix, const TrainEvalResult& r) {
      line[prefix + "/exact_accuracy"] = r.exact_accuracy;
      line[prefix + "/cell_accuracy"] = r.cell_accuracy;
      line[prefix + "/final_residual"] = r.mean_final_residual;
      result_.last_eval_metrics[prefix + "/exact_accuracy"] = r.exact_accuracy;
      result_.last_eval_metrics[prefix + "/cell_accuracy"] = r.cell_accuracy;
      line["eval/n_puzzles"] = r.n_puzzles;
    };
    const uint64_t eval_seed = static_cast<uint64_t>(cfg_.eval.seed);
    const int64_t eval_batch = cfg_.eval.global_batch_size.value_or(tc_.global_batch_size);
    const int64_t depth = cfg_.arch.halt_max_steps;
    const auto raw = evaluate_split(st_.model, test_split_, depth, eval_batch, eval_seed, *dist_);
    if (stopped(raw, step)) return;
    put("eval/raw", raw);
    if (st_.ema) {
      st_.ema->swap(*st_.model);
      const auto ema = evaluate_split(st_.model, test_split_, depth, eval_batch, eval_seed, *dist_);
      st_.ema->swap(*st_.model);
      if (stopped(ema, step)) return;
      put("eval/ema", ema);
    }
    line["eval/depth"] = depth;
    line["eval/breadth"] = 1;
    line["eval/seed"] = cfg_.eval.seed;
    if (!primary_) return;
    append_jsonl(run_dir_ / "metrics.jsonl", line);
    write_json(run_dir_ / "eval" / ("step_" + std::to_string(step) + ".json"), line);
    logger()->info("eval step {}: exact_accuracy raw {}{} | cell_accuracy raw {}{} ({} puzzles, depth {}, breadth 1)",
                   step, fmt_metric(raw.exact_accuracy),
                   st_.ema ? " ema " + fmt_metric(line["eval/ema/exact_accuracy"].get<double>()) : std::string(),
                   fmt_metric(raw.cell_accuracy),
                   st_.ema ? " ema " + fmt_metric(line["eval/ema/cell_accuracy"].get<double>()) : std::string(),
                   raw.n_puzzles, depth);
  }

  /// Never from a non-finite state: every loss so far finite, and the weights and carry it would store.
  void check_finite_before_checkpoint() {
    watch_->check(*dist_, result_.last_checkpoint);
    torch::NoGradGuard no_grad;
    std::vector<at::Tensor> finite;
    for (const auto& p : st_.model->parameters()) finite.push_back(torch::isfinite(p).all());
    for (const auto& t : {st_.carry.z_h, st_.carry.z_l}) finite.push_back(torch::isfinite(t).all());
    auto ok = torch::stack(finite).all().to(torch::kFloat64).reshape({1});
    dist_->all_reduce(ok, ReduceOp::Min);
    EQR_CHECK(ok.item<double>() > 0, RuntimeError, "non-finite weights or latent states after step ", st_.step,
              " although every loss up to it was finite (the last update overflowed); the run stopped "
              "without checkpointing, and the last checkpoint on disk (",
              result_.last_checkpoint.empty() ? "none yet" : result_.last_checkpoint,
              ") is intact. Lower train.lr or set train.grad_clip_norm.");
  }

  void checkpoint() {
    check_finite_before_checkpoint();
    const std::vector<io::TensorMap> ranks = gather_ranks(rank_state(st_), *dist_, device_);  // a collective
    dist_->barrier();
    if (!primary_) return;
    try {
      result_.last_checkpoint =
          io::write_run_checkpoint(run_dir_.string(), st_.step, make_checkpoint(st_, cfg_, ranks));
    } catch (const Error& e) {
      EQR_FAIL(RuntimeError, "the checkpoint of step ", st_.step, " could not be written: ", e.what(),
               ". The previous checkpoint (", result_.last_checkpoint.empty() ? "none yet" : result_.last_checkpoint,
               ") is intact; free some space and continue with `eqr train --resume ", run_dir_.string(), "`");
    }
    io::keep_last(run_dir_.string(), 3);
    logger()->info("checkpoint {}", result_.last_checkpoint);
  }

  // ---- the loop: one supervision step of every carry row = one optimisation step ----

  /// The time limit. One process: the host clock, every step (no tensor, no sync). Several: decided together
  /// (any rank over it stops all, so no rank waits alone in a collective), and only when the step count is a
  /// multiple of train.log_interval_steps, the same steps on every rank; a run may overshoot by up to that many
  /// steps.
  bool time_is_up() {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - loop_start_).count();
    const bool over = elapsed >= 60.0 * *tc_.time_limit_minutes;
    if (!dist_->active()) return over;
    if (st_.step % tc_.log_interval_steps != 0) return false;
    auto flag = torch::full({1}, over ? 1.0 : 0.0, torch::TensorOptions().dtype(torch::kFloat64).device(device_));
    dist_->all_reduce(flag, ReduceOp::Max);
    return flag.item<double>() > 0;
  }

  /// Whether the loop ends before the next step (--stop-after, the time limit, a stop request).
  bool should_stop() {
    if (options_.stop_after_steps > 0 && st_.step - first_step_ >= options_.stop_after_steps) return true;
    if (tc_.time_limit_minutes && time_is_up()) {
      result_.time_limited = true;
      logger()->warn("train.time_limit_minutes = {} reached at step {}/{}: checkpointing and evaluating now; "
                     "`eqr train --resume {}` continues the schedule",
                     *tc_.time_limit_minutes, st_.step, st_.total_steps, run_dir_.string());
      return true;
    }
    if (g_stop_requested.load()) {
      result_.interrupted = true;
      return true;
    }
    return false;
  }

  /// One optimisation step (train_step.h): supervision step, halting, loss, backward, all-reduce, clipping,
  /// AdamATan2, EMA; st_.carry becomes the new carry.
  TrainStepResult step(int64_t s, double lr, bool grad_norms) {
    TrainStepFlags flags;
    flags.grad_norms = grad_norms;
    flags.poison_loss = options_.inject_nan_loss_at_step == s;
    try {
      return train_step_->run(st_.carry, to_device(*batch_, device_), st_.gen, lr, flags);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      if (!options_.detect_anomaly) throw;
      // Anomaly mode's report (autograd's engine rethrows it as std::runtime_error): the backward op that
      // returned NaN; its forward trace went to the log just before.
      const std::string what = e.what();
      EQR_FAIL(RuntimeError, "autograd anomaly at step ", s, " (--detect-anomaly): ", what.substr(0, what.find('\n')),
               "\nThe run stopped; the last checkpoint on disk (",
               result_.last_checkpoint.empty() ? "none yet" : result_.last_checkpoint, ") is intact.");
    }
  }

  /// Metrics accumulate over the log window (every step's halted rows), so a logged line does not depend on
  /// whether rows happened to halt at exactly the logged step.
  void accumulate(const TrainStepResult& r) {
    const dynamics::StepOutput& out = r.out;
    const MetricSums step_sums = metric_sums(r.loss, out.carry.halted, out.carry.steps, out.q_halt_logits.detach());
    if (!window_sums_.sum.defined()) {
      window_sums_ = step_sums;
    } else {
      window_sums_.sum = window_sums_.sum + step_sums.sum;
      window_sums_.min = torch::minimum(window_sums_.min, step_sums.min);
      window_sums_.max = torch::maximum(window_sums_.max, step_sums.max);
    }
    if (steps_hist_) steps_hist_->add(out.carry.halted, out.carry.steps, r.loss.row_count);
  }

  /// train/* of the log window (a collective) into `line`, and the progress line.
  void log_window(Json& line, const TrainStepResult& r, int64_t s, double lr) {
    watch_->check(*dist_, result_.last_checkpoint);
    MetricSums sums = window_sums_;
    window_sums_ = MetricSums{};
    dist_->all_reduce(sums.sum, ReduceOp::Sum);
    dist_->all_reduce(sums.min, ReduceOp::Min);
    dist_->all_reduce(sums.max, ReduceOp::Max);
    // Losses: mean per step over the window (each step's sum is divided by the global batch, as the reference).
    const auto metrics = finalize_metrics(sums, static_cast<double>(tc_.global_batch_size * window_steps_));
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - window_start_).count();
    line["epoch"] = batch_->epoch;
    line["train/lr"] = lr;
    for (const auto& [k, v] : metrics) {
      line["train/" + k] = v;
      result_.last_train_metrics["train/" + k] = v;
    }
    line["train/halted_fraction"] = r.out.carry.halted.to(torch::kFloat32).mean().item<double>();
    line["train/steps_per_s"] = secs > 0 ? window_steps_ / secs : 0.0;
    line["train/rows_per_s"] = secs > 0 ? window_steps_ * tc_.global_batch_size / secs : 0.0;
    progress_->set(s, "loss " + fmt_metric(metrics.at("lm_loss")) + " exact " + fmt_metric(metrics.at("exact_accuracy")) +
                          " steps@halt " + fmt_metric(metrics.at("steps")));
    window_start_ = std::chrono::steady_clock::now();
    window_steps_ = 0;
  }

  /// One metrics line per step that logs anything: train/* (log interval), grad norms, steps histogram.
  void log(const TrainStepResult& r, int64_t s, double lr, bool grad_norm_now) {
    const bool log_now = (s % tc_.log_interval_steps == 0) || s == st_.total_steps;
    const bool hist_now = steps_hist_ && interval_hit(tc_.steps_hist_log_interval_steps, s);
    Json line;
    line["step"] = s;
    if (log_now) log_window(line, r, s, lr);
    // Gradients are all-reduced before their norm, so every rank holds the same norms: no collective here.
    if ((grad_norm_now || (log_now && tc_.grad_clip_norm)) && r.norms.defined()) {
      line["train/grad_norm"] = r.norms.total.item<double>();
      line["train/grad_norm_max"] = r.norms.per_tensor.max().item<double>();
      result_.last_train_metrics["train/grad_norm"] = line["train/grad_norm"].get<double>();
    }
    if (hist_now) steps_hist_->log(*dist_, line);
    if (primary_ && line.size() > 1) append_jsonl(run_dir_ / "metrics.jsonl", line);
  }

  // No host sync inside a step: the loss check, grad norm, histogram and metrics stay on the device and are
  // read only at log steps (train.log_interval_steps and the two optional interval logs), before evaluations
  // and checkpoints, and at the end.
  void loop() {
    signals_.emplace();  // until the run ends: the final evaluation and checkpoint are covered too
    watch_.emplace(device_);
    if (options_.detect_anomaly) {
      anomaly_.emplace();
      if (primary_) logger()->warn("--detect-anomaly: autograd checks every backward op for NaN (slow; for debugging)");
    }
    first_step_ = st_.step;
    progress_.emplace("train", st_.total_steps, "steps", (primary_ && options_.progress) ? stderr : nullptr);
    progress_->set(st_.step);
    window_start_ = std::chrono::steady_clock::now();
    loop_start_ = window_start_;
    if (tc_.steps_hist_log_interval_steps) steps_hist_.emplace(cfg_.arch.halt_max_steps, device_);
    train_step_.emplace(st_.model, *st_.optimizer, st_.ema.get(), step_options_, &*dist_);

    while (st_.step < st_.total_steps) {
      if (should_stop()) break;
      batch_ = st_.loader->next();
      EQR_CHECK(batch_.has_value(), RuntimeError, "the training loader ran out of batches at step ", st_.step);
      const int64_t s = st_.step + 1;
      const bool grad_norm_now = interval_hit(tc_.grad_norm_log_interval_steps, s);
      const double lr = (*schedule_)(s);
      const TrainStepResult r = step(s, lr, grad_norm_now);
      if (options_.inject_nan_carry_at_step == s) {
        torch::NoGradGuard no_grad;
        st_.carry.z_h = st_.carry.z_h.clone();
        st_.carry.z_h.view({-1})[0].fill_(std::numeric_limits<double>::quiet_NaN());
      }
      watch_->observe(r.total, s);
      watch_->observe_carry(st_.carry, s);
      st_.step = s;
      ++window_steps_;
      accumulate(r);
      log(r, s, lr, grad_norm_now);
      if (tc_.eval_interval_steps && s % *tc_.eval_interval_steps == 0 && s < st_.total_steps) evaluate(s);
      if (tc_.checkpoint_interval_steps && s % *tc_.checkpoint_interval_steps == 0 && s < st_.total_steps) checkpoint();
    }
    progress_->finish();
  }

  /// The end: an interrupted run checkpoints; a finished (or time-limited) one evaluates and checkpoints.
  TrainResult finish() {
    result_.steps_done = st_.step;
    if (result_.interrupted) {
      logger()->warn("interrupted at step {}: writing a checkpoint; continue with `eqr train --resume {}`", st_.step,
                     run_dir_.string());
      checkpoint();
      return result_;
    }
    if (st_.step > first_step_ || !fs::exists(run_dir_ / "checkpoints" / "latest")) {
      if (st_.step >= st_.total_steps || result_.time_limited) evaluate(st_.step);
      checkpoint();
    }
    return result_;
  }

  const config::RunConfig& cfg_;
  const config::TrainConfig& tc_;
  const TrainerOptions& options_;
  const std::shared_ptr<const task::Task> task_;
  TrainResult result_;
  fs::path run_dir_;
  c10::Device device_{c10::kCPU};
  std::optional<Distributed> dist_;
  bool primary_ = false;
  std::shared_ptr<const data::SplitData> train_split_, test_split_;
  int64_t steps_per_epoch_ = 0;
  State st_;
  std::optional<LrSchedule> schedule_;
  TrainStepOptions step_options_;
  std::optional<NonFiniteWatch> watch_;
  std::optional<SignalGuard> signals_;
  std::optional<torch::autograd::DetectAnomalyGuard> anomaly_;
  int64_t first_step_ = 0;
  std::optional<Progress> progress_;
  std::chrono::steady_clock::time_point window_start_, loop_start_;
  int64_t window_steps_ = 0;
  MetricSums window_sums_;  // metric sums of the steps since the last log line
  std::optional<StepsHistogram> steps_hist_;
  std::optional<TrainStep> train_step_;
  std::optional<data::Batch> batch_;  // the host batch of the step in flight, alive until the next (to_device)
};

}  // namespace

TrainResult run_training(const config::RunConfig& cfg, const TrainerOptions& options) {
  return TrainingRun(cfg, options).run();
}

}  // namespace eqr::train
