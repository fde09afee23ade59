// c10d data parallel helpers and the local process launcher (reference/eqr_spec.md §3 "Distributed").

#include "eqr/train/distributed.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <torch/torch.h>
#include <torch/version.h>

#include "eqr/core/device.h"
#include "eqr/core/error.h"
#include "eqr/core/logging.h"

#ifdef EQR_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

// ---- c10d backends available in this build ----
#if defined(EQR_HAVE_GLOO) && defined(USE_C10D_GLOO) && \
    __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#define EQR_C10D_GLOO 1
#endif
#if defined(EQR_WITH_CUDA) && __has_include(<nccl.h>) && \
    __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1  // the header is empty without it; CUDA LibTorch builds ship the NCCL backend
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define EQR_C10D_NCCL 1
#endif
#if defined(EQR_C10D_GLOO) || defined(EQR_C10D_NCCL)
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#define EQR_C10D 1
#endif

extern char** environ;

namespace eqr::train {

// ------------------------------------------------------------------------------------------------
// Environment

namespace {

std::optional<std::string> env_value(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

/// First set variable of `names` parsed as an integer; nullopt when none is set.
std::optional<int> env_int(std::initializer_list<const char*> names) {
  for (const char* name : names) {
    auto v = env_value(name);
    if (!v) continue;
    char* end = nullptr;
    errno = 0;
    const long x = std::strtol(v->c_str(), &end, 10);
    EQR_CHECK(errno == 0 && end != v->c_str() && *end == '\0' && x >= 0 && x <= 1 << 20, ConfigError,
              "environment variable ", name, "='", *v, "': expected a non-negative integer");
    return static_cast<int>(x);
  }
  return std::nullopt;
}

}  // namespace

DistEnv DistEnv::from_environment() {
  DistEnv e;
  e.rank = env_int({"RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK"}).value_or(0);
  e.world_size = env_int({"WORLD_SIZE", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}).value_or(1);
  e.local_rank = env_int({"LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK"}).value_or(e.rank);
  e.master_addr = env_value("MASTER_ADDR").value_or("127.0.0.1");
  e.master_port = env_int({"MASTER_PORT"}).value_or(29500);
  EQR_CHECK(e.world_size >= 1, ConfigError, "WORLD_SIZE=", e.world_size, ": expected >= 1");
  EQR_CHECK(e.rank < e.world_size, ConfigError, "RANK=", e.rank, " is not below WORLD_SIZE=", e.world_size);
  EQR_CHECK(e.master_port > 0 && e.master_port < 65536, ConfigError, "MASTER_PORT=", e.master_port,
            ": expected a TCP port in 1..65535");
  return e;
}

c10::Device rank_device(const c10::Device& requested, const DistEnv& env) {
  if (requested.is_cuda() && env.world_size > 1) {
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  }
  return requested;
}

void use_device(const c10::Device& device) {
  if (!device.is_cuda()) return;
  const int index = device.has_index() ? device.index() : 0;
  const int visible = cuda_device_count();
  EQR_CHECK(index >= 0 && index < visible, UsageError, "device ", device.str(), ": only ", visible,
            " CUDA device(s) visible; with several processes per node each rank uses cuda:<LOCAL_RANK>, so "
            "start at most as many processes per node as there are GPUs");
#ifdef EQR_WITH_CUDA
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(index));
#endif
}

// ------------------------------------------------------------------------------------------------
// Process group

#if defined(EQR_C10D)
// LibTorch 2.x splits ProcessGroup (dispatcher) from Backend (Gloo, NCCL); in 1.x the backends are
// ProcessGroups. Both expose the same collectives.
#if TORCH_VERSION_MAJOR >= 2
using PgBase = c10d::Backend;
#else
using PgBase = c10d::ProcessGroup;
#endif

namespace {
c10d::ReduceOp to_c10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
      return c10d::ReduceOp::SUM;
    case ReduceOp::Min:
      return c10d::ReduceOp::MIN;
    case ReduceOp::Max:
      return c10d::ReduceOp::MAX;
  }
  return c10d::ReduceOp::SUM;
}
}  // namespace
#endif

struct Distributed::Impl {
  std::string backend = "none";
#if defined(EQR_C10D)
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<PgBase> pg;
#endif
};

Distributed::Distributed() : impl_(std::make_unique<Impl>()) {}

Distributed::Distributed(const DistEnv& env, const c10::Device& device, std::chrono::milliseconds timeout)
    : env_(env), impl_(std::make_unique<Impl>()) {
  EQR_CHECK(env.world_size >= 1 && env.rank >= 0 && env.rank < env.world_size, ConfigError, "distributed: rank ",
            env.rank, " / world_size ", env.world_size, " is not a valid rank");
  if (env.world_size == 1) return;
#if !defined(EQR_C10D)
  (void)device;
  (void)timeout;
  EQR_FAIL(RuntimeError, "distributed: WORLD_SIZE=", env.world_size,
           " but this eqr was built without a c10d backend (install libgloo-dev and rebuild for CPU data "
           "parallel, or use a CUDA LibTorch with NCCL)");
#else
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<std::size_t>(env.world_size);
    so.waitWorkers = true;
    so.timeout = timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
  } catch (const std::exception& e) {
    EQR_FAIL(RuntimeError, "distributed: rendezvous at ", env.master_addr, ":", env.master_port, " (rank ",
             env.rank, "/", env.world_size, ") failed: ", e.what(), " (check MASTER_ADDR/MASTER_PORT)");
  }
  bool made = false;
#if defined(EQR_C10D_NCCL)
  if (device.is_cuda()) {
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    impl_->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, env.rank, env.world_size, opts);
    impl_->backend = "nccl";
    made = true;
  }
#endif
#if defined(EQR_C10D_GLOO)
  if (!made) {
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    const auto iface = env_value("GLOO_SOCKET_IFNAME");
    if (iface) {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(*iface));
    } else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost") {
      // Single machine: bind to loopback (the default device resolves the hostname, which may not route).
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    opts->threads = 2;
    try {
      impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env.rank, env.world_size, opts);
    } catch (const std::exception& e) {
      EQR_FAIL(RuntimeError, "distributed: Gloo process group (rank ", env.rank, "/", env.world_size,
               ") failed: ", e.what());
    }
    impl_->backend = "gloo";
    made = true;
  }
#endif
  EQR_CHECK(made, RuntimeError, "distributed: no c10d backend for device ", device.str(),
            " in this build (Gloo needs libgloo-dev at build time; NCCL needs a CUDA LibTorch)");
  logger()->info("distributed: rank {}/{} (local {}), backend {}, store {}:{}", env.rank, env.world_size,
                 env.local_rank, impl_->backend, env.master_addr, env.master_port);
#endif
}

Distributed::~Distributed() = default;

bool Distributed::active() const {
#if defined(EQR_C10D)
  return static_cast<bool>(impl_->pg);
#else
  return false;
#endif
}

std::string Distributed::backend() const { return impl_->backend; }

void Distributed::broadcast(std::vector<at::Tensor>& tensors, int root) {
  if (!active() || tensors.empty()) return;
#if defined(EQR_C10D)
  EQR_CHECK(root >= 0 && root < env_.world_size, RuntimeError, "distributed: broadcast root ", root,
            " out of range");
  for (auto& t : tensors) {
    EQR_CHECK(t.is_contiguous(), RuntimeError, "distributed: broadcast needs contiguous tensors");
    std::vector<at::Tensor> one{t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    impl_->pg->broadcast(one, o)->wait();
  }
#endif
}

void Distributed::broadcast_module(torch::nn::Module& model) {
  if (!active()) return;
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> tensors;
  for (auto& p : model.parameters(/*recurse=*/true)) tensors.push_back(p.detach());
  for (auto& b : model.buffers(/*recurse=*/true)) tensors.push_back(b.detach());
  std::vector<at::Tensor> staging;
  for (auto& t : tensors) staging.push_back(t.is_contiguous() ? t : t.contiguous());
  broadcast(staging, 0);
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!staging[i].is_same(tensors[i])) tensors[i].copy_(staging[i]);
  }
}

void Distributed::all_reduce_gradients(const std::vector<at::Tensor>& params) {
  if (!active()) return;
#if defined(EQR_C10D)
  torch::NoGradGuard no_grad;
  // Group by (device, dtype); one flat buffer and one collective per group.
  std::map<std::pair<std::string, int>, std::vector<at::Tensor>> groups;
  for (const auto& p : params) {
    at::Tensor handle = p;  // shares the TensorImpl: setting its grad sets p's
    auto& g = handle.mutable_grad();
    if (!g.defined()) g = torch::zeros_like(p);
    groups[{p.device().str(), static_cast<int>(g.scalar_type())}].push_back(g);
  }
  for (auto& [key, grads] : groups) {
    std::vector<at::Tensor> flat_parts;
    flat_parts.reserve(grads.size());
    for (const auto& g : grads) flat_parts.push_back(g.reshape({-1}));
    std::vector<at::Tensor> buffer{torch::cat(flat_parts)};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    impl_->pg->allreduce(buffer, o)->wait();
    int64_t offset = 0;
    for (auto& g : grads) {
      const auto n = g.numel();
      g.copy_(buffer[0].narrow(0, offset, n).view(g.sizes()));
      offset += n;
    }
  }
#else
  (void)params;
#endif
}

void Distributed::all_reduce(at::Tensor& tensor, ReduceOp op) {
  if (!active()) return;
#if defined(EQR_C10D)
  EQR_CHECK(tensor.is_contiguous(), RuntimeError, "distributed: all_reduce needs a contiguous tensor");
  std::vector<at::Tensor> one{tensor};
  c10d::AllreduceOptions o;
  o.reduceOp = to_c10d(op);
  impl_->pg->allreduce(one, o)->wait();
#else
  (void)tensor;
  (void)op;
#endif
}

void Distributed::barrier() {
  if (!active()) return;
#if defined(EQR_C10D)
  impl_->pg->barrier()->wait();
#endif
}

// ------------------------------------------------------------------------------------------------
// Local launcher

int find_free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  EQR_CHECK(fd >= 0, RuntimeError, "launch: socket() failed: ", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  const int err = errno;
  ::close(fd);
  EQR_CHECK(ok, RuntimeError, "launch: cannot find a free port: ", std::strerror(err));
  return ntohs(addr.sin_port);
}

namespace {

volatile std::sig_atomic_t g_pending_signal = 0;

extern "C" void eqr_launch_on_signal(int sig) { g_pending_signal = sig; }

constexpr int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};

void write_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    done += static_cast<size_t>(n);
  }
}

struct Child {
  int rank = 0;
  pid_t pid = -1;
  bool running = false;
  bool stopped_by_launcher = false;  // SIGTERM'd because another rank failed
  int exit_code = 0;
  int out_fd = -1;  // pipes when prefixing (stdout, stderr)
  int err_fd = -1;
  std::string out_buf, err_buf;
};

/// Writes the complete lines of `buf` to `fd`, each prefixed; keeps the unfinished tail (or flushes it).
void emit_lines(std::string& buf, int fd, const std::string& prefix, bool flush) {
  size_t start = 0;
  std::string out;
  for (size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
    out += prefix;
    out.append(buf, start, nl + 1 - start);
  }
  buf.erase(0, start);
  if (flush && !buf.empty()) {
    out += prefix + buf + "\n";
    buf.clear();
  }
  if (!out.empty()) write_all(fd, out);
}

/// The program the ranks run: opts.exe, or this executable.
std::string launch_executable(const LaunchOptions& opts) {
  if (!opts.exe.empty()) return opts.exe;
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  EQR_CHECK(n > 0, RuntimeError, "launch: cannot resolve /proc/self/exe: ", std::strerror(errno));
  return std::string(buf, static_cast<size_t>(n));
}

/// Each rank's environment: ours without the rendezvous variables, then RANK, LOCAL_RANK, WORLD_SIZE,
/// LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT of that rank.
std::vector<std::vector<std::string>> rank_environments(const LaunchOptions& opts, int port) {
  const char* overridden[] = {"RANK=", "LOCAL_RANK=", "WORLD_SIZE=", "LOCAL_WORLD_SIZE=", "MASTER_ADDR=",
                              "MASTER_PORT="};
  std::vector<std::string> base_env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string kv(*e);
    bool skip = false;
    for (const char* o : overridden) skip = skip || kv.rfind(o, 0) == 0;
    if (!skip) base_env.push_back(kv);
  }
  std::vector<std::vector<std::string>> envs(static_cast<size_t>(opts.nproc), base_env);
  for (int r = 0; r < opts.nproc; ++r) {
    auto& ev = envs[static_cast<size_t>(r)];
    ev.push_back("RANK=" + std::to_string(r));
    ev.push_back("LOCAL_RANK=" + std::to_string(r));
    ev.push_back("WORLD_SIZE=" + std::to_string(opts.nproc));
    ev.push_back("LOCAL_WORLD_SIZE=" + std::to_string(opts.nproc));
    ev.push_back("MASTER_ADDR=" + opts.master_addr);
    ev.push_back("MASTER_PORT=" + std::to_string(port));
  }
  return envs;
}

/// Forks and execs every rank. argv and envp are built before fork (no allocation between fork and exec).
std::vector<Child> spawn_ranks(const LaunchOptions& opts, const std::string& exe,
                               std::vector<std::vector<std::string>>& envs) {
  std::vector<std::string> argv_s{exe};
  argv_s.insert(argv_s.end(), opts.args.begin(), opts.args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::vector<char*>> envps(static_cast<size_t>(opts.nproc));
  for (int r = 0; r < opts.nproc; ++r) {
    for (auto& kv : envs[static_cast<size_t>(r)]) envps[static_cast<size_t>(r)].push_back(kv.data());
    envps[static_cast<size_t>(r)].push_back(nullptr);
  }
  std::fflush(stdout);
  std::fflush(stderr);

  const pid_t parent = ::getpid();
  std::vector<Child> children(static_cast<size_t>(opts.nproc));
  for (int r = 0; r < opts.nproc; ++r) {
    auto& c = children[static_cast<size_t>(r)];
    c.rank = r;
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    if (opts.prefix_output) {
      EQR_CHECK(::pipe(out_pipe) == 0 && ::pipe(err_pipe) == 0, RuntimeError, "launch: pipe() failed: ",
                std::strerror(errno));
    }
    const pid_t pid = ::fork();
    EQR_CHECK(pid >= 0, RuntimeError, "launch: fork() failed: ", std::strerror(errno));
    if (pid == 0) {
      // Child: own process group (signals come from the launcher only), die with the launcher.
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(128 + SIGTERM);
      for (int s : kForwardedSignals) ::signal(s, SIG_DFL);
      if (opts.prefix_output) {
        ::dup2(out_pipe[1], STDOUT_FILENO);
        ::dup2(err_pipe[1], STDERR_FILENO);
        ::close(out_pipe[0]);
        ::close(out_pipe[1]);
        ::close(err_pipe[0]);
        ::close(err_pipe[1]);
      }
      ::execve(exe.c_str(), argv.data(), envps[static_cast<size_t>(r)].data());
      const char msg[] = "eqr launch: cannot execute the program\n";
      (void)!::write(STDERR_FILENO, msg, sizeof(msg) - 1);
      ::_exit(127);
    }
    c.pid = pid;
    c.running = true;
    if (opts.prefix_output) {
      ::close(out_pipe[1]);
      ::close(err_pipe[1]);
      c.out_fd = out_pipe[0];
      c.err_fd = err_pipe[0];
      // Other children must not inherit these read ends.
      ::fcntl(c.out_fd, F_SETFD, FD_CLOEXEC);
      ::fcntl(c.err_fd, F_SETFD, FD_CLOEXEC);
    }
  }
  return children;
}

/// Flushes every child's buffered output and closes its pipes.
void flush_and_close(std::vector<Child>& children) {
  for (auto& c : children) {
    const std::string prefix = "[rank " + std::to_string(c.rank) + "] ";
    emit_lines(c.out_buf, STDOUT_FILENO, prefix, true);
    emit_lines(c.err_buf, STDERR_FILENO, prefix, true);
    if (c.out_fd >= 0) ::close(c.out_fd);
    if (c.err_fd >= 0) ::close(c.err_fd);
    c.out_fd = c.err_fd = -1;
  }
}

/// Copies what the children wrote (up to 100 ms of waiting) to our stdout/stderr, each line prefixed with its
/// rank. Returns false when the loop should end: no pipe is left and no rank runs, or every rank exited and
/// nothing more arrived (a leftover grandchild may hold a pipe).
bool pump_output(std::vector<Child>& children, int running) {
  std::vector<pollfd> fds;
  std::vector<std::pair<Child*, bool>> owners;  // (child, is_stderr)
  for (auto& c : children) {
    if (c.out_fd >= 0) {
      fds.push_back({c.out_fd, POLLIN, 0});
      owners.emplace_back(&c, false);
    }
    if (c.err_fd >= 0) {
      fds.push_back({c.err_fd, POLLIN, 0});
      owners.emplace_back(&c, true);
    }
  }
  if (fds.empty() && running == 0) return false;
  if (fds.empty()) {
    ::usleep(50 * 1000);
    return true;
  }
  const int n = ::poll(fds.data(), fds.size(), 100);
  if (n == 0 && running == 0) {
    flush_and_close(children);
    return false;
  }
  if (n <= 0) return true;
  for (size_t i = 0; i < fds.size(); ++i) {
    if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    auto* c = owners[i].first;
    const bool is_err = owners[i].second;
    char buf[65536];
    const ssize_t got = ::read(fds[i].fd, buf, sizeof(buf));
    if (got < 0 && errno == EINTR) continue;
    auto& text = is_err ? c->err_buf : c->out_buf;
    const std::string prefix = "[rank " + std::to_string(c->rank) + "] ";
    const int dest = is_err ? STDERR_FILENO : STDOUT_FILENO;
    if (got > 0) {
      text.append(buf, static_cast<size_t>(got));
      emit_lines(text, dest, prefix, false);
    } else {
      emit_lines(text, dest, prefix, true);
      ::close(fds[i].fd);
      (is_err ? c->err_fd : c->out_fd) = -1;
    }
  }
  return true;
}

void signal_running(std::vector<Child>& children, int sig) {
  for (auto& c : children) {
    if (c.running) ::kill(c.pid, sig);
  }
}

/// Collects the exit codes of ranks that ended; the first failure stops the others (as torchrun: they may be
/// blocked in a collective with the dead rank). Returns how many ranks still run.
int reap_ranks(std::vector<Child>& children, int running, bool& stopping) {
  for (auto& c : children) {
    if (!c.running) continue;
    int status = 0;
    const pid_t r = ::waitpid(c.pid, &status, WNOHANG);
    if (r != c.pid) continue;
    c.running = false;
    --running;
    c.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
    if (c.exit_code != 0 && !stopping) {
      logger()->warn("launch: rank {} exited with code {}; stopping the other ranks", c.rank, c.exit_code);
      stopping = true;
      for (auto& other : children) other.stopped_by_launcher = other.running;
      signal_running(children, SIGTERM);
    }
  }
  return running;
}

}  // namespace

int launch_local(const LaunchOptions& opts) {
  EQR_CHECK(opts.nproc >= 1 && opts.nproc <= 4096, UsageError, "launch: -n ", opts.nproc,
            ": expected 1..4096 processes");
  const std::string exe = launch_executable(opts);
  const int port = opts.master_port > 0 ? opts.master_port : find_free_port();
  std::vector<std::vector<std::string>> envs = rank_environments(opts, port);

  // Signals: remember, forward from the loop below.
  g_pending_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = eqr_launch_on_signal;
  sigemptyset(&sa.sa_mask);
  std::map<int, struct sigaction> previous;
  for (int s : kForwardedSignals) {
    struct sigaction old {};
    ::sigaction(s, &sa, &old);
    previous[s] = old;
  }

  std::vector<Child> children = spawn_ranks(opts, exe, envs);
  bool stopping = false;
  int running = opts.nproc;
  while (true) {
    if (g_pending_signal != 0) {
      const int sig = g_pending_signal;
      g_pending_signal = 0;
      signal_running(children, sig);
      stopping = true;
    }
    if (!pump_output(children, running)) break;
    running = reap_ranks(children, running, stopping);
  }
  for (int s : kForwardedSignals) ::sigaction(s, &previous[s], nullptr);

  // Ranks the launcher stopped after another failed do not mask the failure's own code.
  int worst = 0;
  for (const auto& c : children) {
    if (!c.stopped_by_launcher) worst = std::max(worst, c.exit_code);
  }
  return worst;
}

}  // namespace eqr::train
