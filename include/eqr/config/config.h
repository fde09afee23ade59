#pragma once
// Configuration structs of eqr. Every knob of the reference (reference/eqr_spec.md §8) lives here with
// the reference default, under our snake_case names (H_cycles -> h_cycles, lambda_ -> lambda,
// different_init -> breadth, eval halt_max_steps -> depth). What a model is (ArchConfig: shapes, variant, init,
// saved with checkpoints) stays apart from how a run computes (ComputeConfig: dtype, fused kernels, GEMM),
// as llama.cpp keeps hparams apart from cparams.
//
// One field table per struct (`describe`) drives loading, validation, printing and docs, so a knob is
// declared exactly once.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace eqr::config {

/// Model family (arch.variant).
enum class Variant { kEqr, kTrm, kFeedforward };
/// Initial states of a trajectory (arch.init).
enum class StateInit { kRandom, kFixed };
/// Where the data comes from (data.source).
enum class DataSource { kGenerated, kCsv, kBuilt };

/// The config names of an enum's values, in declaration order: the one table each is parsed and written with.
const std::vector<std::string>& enum_names(Variant);
const std::vector<std::string>& enum_names(StateInit);
const std::vector<std::string>& enum_names(DataSource);
/// The config name of a value ("eqr", "fixed", "built", ...).
template <class E>
const std::string& name_of(E value) {
  return enum_names(value)[static_cast<size_t>(value)];
}

/// The trained network: shapes, recursion schedule, damping/noise, initial states, precision.
struct ArchConfig {
  /// Model family: "eqr" (damped, noisy, random init), "trm" (lambda 1, noise 0, fixed init), or
  /// "feedforward" (no carry across supervision steps: every step starts from a fresh state).
  Variant variant = Variant::kEqr;
  /// Width D of the latent states z_H, z_L.
  int64_t hidden_size = 512;
  /// Attention heads (attention variant only); head_dim = hidden_size / num_heads.
  int64_t num_heads = 8;
  /// SwiGLU expansion; intermediate = round_up_256(round(expansion * in_dim * 2/3)).
  double expansion = 4.0;
  /// Blocks in the one shared ReasoningModule ("L_level").
  int64_t l_layers = 2;
  /// Latent recursions per supervision step; the first h_cycles-1 run without gradient.
  int64_t h_cycles = 3;
  /// z_L updates per latent recursion (each followed by one z_H update).
  int64_t l_cycles = 6;
  /// Supervision steps per trajectory in training (ACT maximum).
  int64_t halt_max_steps = 16;
  /// Probability that a row's minimum halting step is resampled in [2, halt_max_steps] (training).
  double halt_exploration_prob = 0.1;
  /// Token mixing: true = token-mixing MLP over the sequence axis (mlp_t); false = self-attention.
  bool mlp_t = true;
  /// Positional encoding for attention: "rope", "rope2d" or "none" (unused when mlp_t is true).
  std::string pos_encodings = "rope";
  /// Board height for rope2d (must satisfy board_height * board_width = seq_len).
  int64_t board_height = 9;
  /// Board width for rope2d.
  int64_t board_width = 9;
  /// RoPE base theta.
  double rope_theta = 10000.0;
  /// Damping lambda of the update out = (1-lambda) h + lambda block(h + u) + noise.
  double lambda = 0.95;
  /// Standard deviation of the Gaussian path noise added in every module call (training and eval).
  double noise_scale = 0.01;
  /// Initial state: "random" (fresh truncated-normal per row and element) or "fixed" (one buffer vector
  /// broadcast to every token, as TRM).
  StateInit init = StateInit::kRandom;
  /// Std of the random initial z_H.
  double h_init_std = 1.0;
  /// Std of the random initial z_L.
  double l_init_std = 1.0;
  /// RMSNorm epsilon.
  double rms_norm_eps = 1e-5;
  /// Initial bias of both q_head outputs (the reference uses -5: start by not halting).
  double q_head_bias_init = -5.0;
  /// Vocabulary size V (Sudoku: pad, blank, 9 digits = 11).
  int64_t vocab_size = 11;
  /// Sequence length S (cells per board; 81 for 9x9).
  int64_t seq_len = 81;
};

/// How a run computes, not what the model is: the same weights run with any of these (results differ by
/// rounding only). Old configs' arch.<key> of these load into compute.<key> (config.cpp's moved keys).
struct ComputeConfig {
  /// Forward dtype: "bfloat16" (reference, CUDA) or "float32". Parameters are always float32.
  std::string forward_dtype = "bfloat16";
  /// Reduced-precision forward on the CPU: null = auto (forward_dtype bfloat16 runs in bfloat16 where the
  /// CPU has native bfloat16 arithmetic, AVX512-BF16 or AMX-BF16, detected at run time; float32 elsewhere);
  /// true = the forward_dtype as configured; false = float32.
  std::optional<bool> reduced_precision_on_cpu = std::nullopt;
  /// Fused CPU kernels for the block's elementwise steps where no gradient is needed (SwiGLU activation,
  /// residual + RMSNorm, damped noisy update); false = plain LibTorch ops everywhere (same results
  /// within rounding; for checks and debugging).
  bool fused_kernels = true;
  /// GEMM of float32 linear layers on the CPU: auto = oneDNN's sgemm where LibTorch's process has it (Debian's
  /// LibTorch), else LibTorch's own; onednn = oneDNN (an error where absent); torch = at::linear (OpenBLAS
  /// under Debian's LibTorch). Same products up to summation order (docs/performance.md, "float32 GEMMs").
  std::string cpu_gemm = "auto";
};

/// Where puzzles come from and how the training build is made (reference/eqr_spec.md §4).
struct DataConfig {
  /// Task: "sudoku" (Sudoku-Extreme and smaller boards) or "maze" (Maze-Unique); task::make_task builds it,
  /// checks arch.seq_len / vocab_size against its board and reads, generates, verifies and prints its examples.
  std::string task = "sudoku";
  /// Data source: "generated" (eqr's generator), "csv" (Sudoku-Extreme CSV files), "built" (a directory
  /// written by `eqr data build`, or the reference's numpy layout).
  DataSource source = DataSource::kGenerated;
  /// Directory of a built dataset: read when source = built; with generated or csv the build is cached
  /// there and reused while its manifest matches the config (empty = build in memory on every run).
  std::string data_path = "data/sudoku-extreme-1k-aug-1000";
  /// Training CSV (source = csv).
  std::string train_csv = "";
  /// Test CSV (source = csv); empty = generate a test split.
  std::string test_csv = "";
  /// Box rows of the board geometry (9x9 = 3x3 boxes; 6x6 = 2x3; 4x4 = 2x2; 16x16 = 4x4).
  int64_t box_rows = 3;
  /// Box columns of the board geometry.
  int64_t box_cols = 3;
  /// Training puzzles kept after subsampling (null = all; the paper's build uses 1000).
  std::optional<int64_t> subsample_size = std::nullopt;
  /// Augmented copies per training puzzle (digit permutation, transpose, band/stack shuffles; paper: 1000).
  int64_t num_aug = 0;
  /// Keep only rows with rating >= this (null = keep all).
  std::optional<int64_t> min_difficulty = std::nullopt;
  /// Seed of the dataset build (subsample and augmentation).
  int64_t seed = 42;
  /// Generated training puzzles (source = generated).
  int64_t generate_train = 1000;
  /// Generated test puzzles (source = generated).
  int64_t generate_test = 256;
  /// Minimum givens of generated puzzles (0 = as few as stays unique).
  int64_t generate_min_givens = 0;
  /// Maximum givens of generated puzzles (0 = no maximum).
  int64_t generate_max_givens = 0;
  /// Minimum rating (backtracks of the exact solver) of generated puzzles.
  int64_t generate_min_rating = 0;
  /// Skip invalid CSV rows (counted and reported) instead of failing on the first.
  bool skip_invalid = false;
  /// Batches prepared ahead by the background loader thread.
  int64_t prefetch_batches = 8;
};

/// Training: schedule, optimiser, EMA, checkpoints, logging (reference/eqr_spec.md §2-3).
struct TrainConfig {
  /// Rows per optimisation step across all ranks (the persistent carry's size).
  int64_t global_batch_size = 768;
  /// Epochs; total steps = epochs * floor(groups * mean_examples / global_batch_size).
  int64_t epochs = 50000;
  /// Cap on optimisation steps (null = from epochs).
  std::optional<int64_t> max_steps = std::nullopt;
  /// Stop after this many minutes of training in one invocation, then checkpoint and evaluate as at the end
  /// (null = no limit). The LR schedule still spans the full run; `eqr train --resume` continues it. With
  /// several processes the ranks decide together, at log-interval steps only (up to log_interval_steps late).
  std::optional<double> time_limit_minutes = std::nullopt;
  /// Evaluate on the test split every this many steps (null = only at the end).
  std::optional<int64_t> eval_interval_steps = 5000;
  /// Write a checkpoint every this many steps (null = only at the end).
  std::optional<int64_t> checkpoint_interval_steps = 5000;
  /// Global seed of the run (model init, carry resets, exploration, loader).
  int64_t seed = 0;
  /// Base learning rate.
  double lr = 1e-4;
  /// Final LR as a fraction of lr for the cosine decay (1.0 = constant after warm-up).
  double lr_min_ratio = 1.0;
  /// Linear warm-up steps.
  int64_t lr_warmup_steps = 2000;
  /// AdamATan2 beta1.
  double beta1 = 0.9;
  /// AdamATan2 beta2.
  double beta2 = 0.95;
  /// Decoupled weight decay (applied to every parameter, as the reference).
  double weight_decay = 1.0;
  /// Loss: "stablemax_cross_entropy" (reference) or "softmax_cross_entropy".
  std::string loss_type = "stablemax_cross_entropy";
  /// Weight of the q-halt BCE term.
  double q_halt_loss_weight = 0.5;
  /// Keep an exponential moving average of the weights (used for evaluation and export).
  bool ema = true;
  /// EMA decay mu: shadow = (1 - mu) param + mu shadow.
  double ema_rate = 0.999;
  /// EMA warm-up: decay_t = min(ema_rate, (1 + t) / (10 + t)). Off = reference behaviour.
  bool ema_warmup = false;
  /// Gradient clipping by global norm (null = off, as the reference).
  std::optional<double> grad_clip_norm = std::nullopt;
  /// Gradient checkpointing: keep only the inputs of the latent recursion that carries grad and recompute it
  /// in backward (same values and gradients, less activation memory, one more forward of that recursion).
  bool gradient_checkpoint = false;
  /// With a bfloat16 forward on the CPU: run the gradient-carrying latent recursion (the last of h_cycles)
  /// and the heads in float32, the no-grad recursions in bfloat16 (docs/performance.md: bfloat16 gradients
  /// cost quickstart accuracy).
  bool float32_grad_cycle_on_cpu = true;
  /// Initialise from this checkpoint (native or reference .pth); null = fresh.
  std::optional<std::string> load_checkpoint = std::nullopt;
  /// With load_checkpoint: take weights only (fresh optimiser and schedule).
  bool load_weights_only = false;
  /// With load_checkpoint: fail on missing or unexpected keys.
  bool load_strict = false;
  /// Log a metrics line every this many steps (host syncs and the non-finite loss check happen only here,
  /// before evaluations and checkpoints, and at the end).
  int64_t log_interval_steps = 10;
  /// Log train/steps_hist (rows that halted, by supervision steps at halt, summed since the last histogram)
  /// at step 1 and every this many steps (null = never).
  std::optional<int64_t> steps_hist_log_interval_steps = 1000;
  /// Log train/grad_norm (global L2 norm of the gradients before clipping) and train/grad_norm_max (largest
  /// per-tensor norm) at step 1 and every this many steps (null = never; grad_clip_norm logs it every line).
  std::optional<int64_t> grad_norm_log_interval_steps = std::nullopt;
};

/// Evaluation and test-time scaling (reference/eqr_spec.md §5).
struct EvalConfig {
  /// Supervision steps per trajectory (the reference's eval halt_max_steps). Several = one sweep.
  std::vector<int64_t> depth = {16};
  /// Trajectories per puzzle from independent random initial states (the reference's different_init).
  std::vector<int64_t> breadth = {1};
  /// Depth scheduler: "fixed" (every row runs exactly depth steps; reference) or "adaptive".
  std::string scheduler = "fixed";
  /// Adaptive: a row stops once its residual stayed below tol for `patience` steps.
  double tol = 1e-3;
  /// Adaptive: consecutive steps under tol before a row stops.
  int64_t patience = 2;
  /// Adaptive: also stop a row when its q_halt logit is > 0.
  bool halt_on_q = false;
  /// Adaptive: a row stops once its decoded answer (the argmax grid) stayed the same for this many
  /// consecutive steps (0 = off). Needs no threshold, so it holds across models, sizes and noise levels.
  int64_t answer_patience = 4;
  /// Convergence top-k aggregation: pick the k most converged trajectories (null = off).
  std::optional<int64_t> convergence_top_k = std::nullopt;
  /// Logit deltas averaged for the convergence score.
  int64_t convergence_window = 3;
  /// Rows per evaluation batch before breadth expansion (null = the training global_batch_size).
  std::optional<int64_t> global_batch_size = std::nullopt;
  /// Stop after this many test batches (null = the whole split).
  std::optional<int64_t> max_eval_steps = std::nullopt;
  /// Evaluate the EMA weights when the checkpoint has them.
  bool use_ema = true;
  /// Seed of initial states and path noise during evaluation.
  int64_t seed = 0;
  /// Save per-row residual traces in the report (large).
  bool save_row_traces = false;
};

/// A whole run: the four concerns plus where and how it runs.
struct RunConfig {
  /// Run name; the run directory is <output_root>/<name>.
  std::string name = "eqr";
  /// Parent directory of run directories.
  std::string output_root = "runs";
  /// Device: auto, cpu, cuda or cuda:N.
  std::string device = "auto";
  /// Intra-op CPU threads (0 = all cores, divided among the processes of a data-parallel job on one machine).
  int64_t num_threads = 0;
  /// The network.
  ArchConfig arch;
  /// How it computes.
  ComputeConfig compute;
  /// The data.
  DataConfig data;
  /// Training.
  TrainConfig train;
  /// Evaluation.
  EvalConfig eval;
};

bool operator==(const ArchConfig& a, const ArchConfig& b);
bool operator==(const ComputeConfig& a, const ComputeConfig& b);
bool operator==(const DataConfig& a, const DataConfig& b);
bool operator==(const TrainConfig& a, const TrainConfig& b);
bool operator==(const EvalConfig& a, const EvalConfig& b);
bool operator==(const RunConfig& a, const RunConfig& b);

}  // namespace eqr::config
