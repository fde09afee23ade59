#pragma once
// Data parallel training over c10d (reference/eqr_spec.md §3, "Distributed"): not DDP. Parameters and
// buffers are broadcast from rank 0 at init; after every backward every parameter gradient is
// all-reduced with SUM (undefined grads become zeros first); since the loss is divided by the GLOBAL
// batch size, the sum is the global mean. Metric tensors are reduced with SUM / MIN / MAX.
//
// Ranks come from the environment, so `eqr launch`, torchrun --no-python, Slurm and MPI launchers work:
// RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT (with SLURM_* / OMPI_COMM_WORLD_* / PMI_*
// fallbacks for the first three). world_size 1 = no process group at all; every operation is a no-op.
// Backend: NCCL for CUDA devices when built with CUDA and NCCL; Gloo otherwise (needs EQR_HAVE_GLOO,
// i.e. libgloo-dev at build time); rendezvous through a c10d TCPStore served by rank 0.
//
// Also here: launch_local, the process launcher behind `eqr launch -n N -- <args>`.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace torch::nn {
class Module;
}

namespace eqr::train {

/// Where this process sits in the job.
struct DistEnv {
  /// Global rank in [0, world_size).
  int rank = 0;
  /// Number of processes in the job.
  int world_size = 1;
  /// Rank on this node (picks cuda:local_rank).
  int local_rank = 0;
  /// Address of rank 0's TCPStore.
  std::string master_addr = "127.0.0.1";
  /// Port of rank 0's TCPStore.
  int master_port = 29500;

  /// Reads RANK, WORLD_SIZE, LOCAL_RANK (else SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID, else
  /// OMPI_COMM_WORLD_RANK/_SIZE/_LOCAL_RANK, else PMI_RANK/PMI_SIZE; default 0, 1, rank),
  /// MASTER_ADDR (default 127.0.0.1) and MASTER_PORT (default 29500).
  /// Throws ConfigError naming the variable for a non-integer or out-of-range value.
  static DistEnv from_environment();
};

/// How to combine a tensor across ranks.
enum class ReduceOp { Sum, Min, Max };

/// The device this rank computes on: with world_size > 1 and a CUDA `requested` device, cuda:<local_rank>
/// (one GPU per process on each node, whatever index was configured); otherwise `requested` unchanged.
/// Pure: reads no hardware.
c10::Device rank_device(const c10::Device& requested, const DistEnv& env);

/// Makes `device` this process's current CUDA device (c10::cuda::set_device) when it is one, so that later
/// allocations, streams and the NCCL communicator land on it; call it before creating tensors or the
/// process group. No-op for other devices and in builds without CUDA. Throws UsageError when the index is
/// not a visible device (e.g. LOCAL_RANK 2 on a node with 2 GPUs).
void use_device(const c10::Device& device);

/// A process group (or nothing, for world_size 1) and the collectives the trainer needs.
/// Every rank must call the same collectives in the same order.
class Distributed {
 public:
  /// Single process: no process group.
  Distributed();
  /// Joins the job described by `env` for tensors on `device`. world_size 1 creates nothing.
  /// Blocks until every rank has joined (or `timeout`). Throws RuntimeError when no backend is
  /// available (e.g. built without gloo) or the rendezvous fails.
  Distributed(const DistEnv& env, const c10::Device& device,
              std::chrono::milliseconds timeout = std::chrono::minutes(30));
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }
  bool is_primary() const { return env_.rank == 0; }
  /// True when a process group exists (world_size > 1).
  bool active() const;
  /// "none", "gloo" or "nccl".
  std::string backend() const;

  /// Overwrites every tensor with rank `root`'s values (in place; same shapes on every rank).
  void broadcast(std::vector<at::Tensor>& tensors, int root = 0);
  /// Broadcasts every parameter and buffer of `model` from rank 0 (identical init on all ranks).
  void broadcast_module(torch::nn::Module& model);
  /// All-reduces (SUM) the gradient of every parameter in place; an undefined grad becomes zeros first
  /// (so every rank updates every parameter, as the reference). Grads are flattened per dtype and
  /// device into one buffer per collective. No-op when !active().
  void all_reduce_gradients(const std::vector<at::Tensor>& params);
  /// All-reduces a tensor in place (contiguous; any device the backend supports). No-op when !active().
  void all_reduce(at::Tensor& tensor, ReduceOp op);
  /// Waits until every rank arrives.
  void barrier();

 private:
  struct Impl;
  DistEnv env_;
  std::unique_ptr<Impl> impl_;
};

/// Options of launch_local (`eqr launch`).
struct LaunchOptions {
  /// Processes to start (ranks 0..nproc-1 on this machine).
  int nproc = 1;
  /// Program to run; empty = this executable (/proc/self/exe).
  std::string exe;
  /// Arguments passed to every process (after the program name).
  std::vector<std::string> args;
  /// MASTER_ADDR given to the processes.
  std::string master_addr = "127.0.0.1";
  /// MASTER_PORT; 0 = a free port picked now.
  int master_port = 0;
  /// Prefix every line of each child's stdout and stderr with "[rank r] ".
  bool prefix_output = true;
};

/// Starts opts.nproc processes with RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and
/// MASTER_PORT set, forwards SIGINT/SIGTERM/SIGHUP/SIGUSR1/SIGUSR2 to them, stops the others (SIGTERM)
/// as soon as one fails, waits for all, and returns the worst exit code (a child killed by signal s
/// counts as 128 + s; a program that cannot be started as 127). POSIX only.
int launch_local(const LaunchOptions& opts);

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it back, close).
int find_free_port();

}  // namespace eqr::train
