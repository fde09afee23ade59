// Kill anywhere, lose nothing (issue 14): `eqr train` (CPU, fixed seeds, path noise and random initial
// states on) is SIGKILLed several times, at random moments and inside a checkpoint write, and resumed each
// time with `eqr train --resume`; its final checkpoint must equal, byte for byte, that of an uninterrupted
// run of the same length: parameters, optimiser state, EMA, carry, training generators and loader position.
// The same for 2 ranks (`eqr launch -n 2`), killing one rank. Also: an unwritable run directory is refused
// before training, so is a filesystem too small for two checkpoints, and a failed checkpoint write (a full
// disk) leaves the previous checkpoint in place.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "eqr/io/checkpoint.h"
#include "test_support.h"

namespace eqr {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kSteps = 30;

/// `eqr train` arguments of the runs compared here: configs/ci_tiny.yaml for kSteps steps, a checkpoint
/// every 2 steps (many chances to die inside a write), an evaluation every 10, data built under `root`.
std::vector<std::string> train_args(const fs::path& root, const fs::path& run) {
  return {"train", "--no-progress", "--config", (test::source_dir() / "configs/ci_tiny.yaml").string(),
          "--run-dir", run.string(), "--set", "data.data_path=" + (root / "data").string(),
          "--set", "train.max_steps=" + std::to_string(kSteps), "--set", "train.epochs=1000",
          "--set", "train.checkpoint_interval_steps=2", "--set", "train.eval_interval_steps=10",
          "--set", "train.log_interval_steps=5"};
}

/// Starts `eqr <args>` with stdout and stderr appended to `log`; returns its pid.
pid_t spawn(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> all{test::eqr_exe().string()};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

/// Waits for `pid`; its wait status.
int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

/// Runs `eqr <args>` to completion; true when it exits 0.
bool run_to_end(const std::vector<std::string>& args, const fs::path& log) {
  const int status = wait_for(spawn(args, log));
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/// Pids of the direct children of `pid` (the ranks of an `eqr launch`), with their RANK.
std::vector<std::pair<pid_t, int>> ranks_of(pid_t launcher) {
  std::vector<std::pair<pid_t, int>> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) != 2 || ppid != launcher) continue;
    std::ifstream env(e.path() / "environ", std::ios::binary);
    std::string kv;
    while (std::getline(env, kv, '\0')) {
      if (kv.rfind("RANK=", 0) == 0) out.emplace_back(static_cast<pid_t>(std::stoi(name)), std::stoi(kv.substr(5)));
    }
  }
  return out;
}

/// Temp files of io::atomic_write in a run's checkpoint folder (".<name>.tmp.<pid>.<n>").
int temp_files(const fs::path& run) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run / "checkpoints", ec)) {
    n += e.path().filename().string().find(".tmp.") != std::string::npos ? 1 : 0;
  }
  return n;
}

/// How one trial picks its moment.
enum class Moment {
  kInsideWrite,  ///< as soon as a checkpoint's temp file is created (inotify), before it is renamed
  kRandom,       ///< a random delay after the run has started training (its first checkpoint exists)
};

/// Runs `args` (a resumed or fresh training command), and kills the process `victim(pid)` returns at
/// `moment`. Returns false when the command finished before the kill. `wrote_inside` is set when a temp
/// file of a checkpoint write was left behind (the kill landed inside a write).
bool run_and_kill(const std::vector<std::string>& args, const fs::path& run, const fs::path& log, Moment moment,
                  int delay_ms, const std::function<pid_t(pid_t)>& victim, bool& wrote_inside) {
  fs::create_directories(run / "checkpoints");
  const int in = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  EXPECT_GE(in, 0);
  ::inotify_add_watch(in, (run / "checkpoints").c_str(), IN_CREATE);
  const int before = temp_files(run);
  const pid_t pid = spawn(args, log);
  const auto start = Clock::now();
  bool killed = false, exited = false;
  int status = 0;
  auto started_training = [&] {
    std::error_code ec;
    return fs::exists(run / "checkpoints" / "latest", ec) || fs::exists(run / "metrics.jsonl", ec);
  };
  while (!killed && !exited && Clock::now() - start < std::chrono::seconds(120)) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    if (moment == Moment::kInsideWrite) {
      alignas(inotify_event) char buf[4096];
      const ssize_t n = ::read(in, buf, sizeof(buf));
      for (ssize_t off = 0; n > 0 && off < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
        if (ev->len > 0 && std::strstr(ev->name, ".step_") == ev->name && std::strstr(ev->name, ".tmp.")) {
          ::kill(victim(pid), SIGKILL);
          killed = true;
          break;
        }
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      }
      if (!killed) std::this_thread::sleep_for(std::chrono::microseconds(50));
    } else if (started_training()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      ::kill(victim(pid), SIGKILL);
      killed = true;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  ::close(in);
  if (!exited) {
    // The launcher of a 2-rank run stops the surviving rank itself; make sure nothing is left behind.
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (::waitpid(pid, &status, WNOHANG) != pid) {
      if (Clock::now() > deadline) {
        for (const auto& [child, rank] : ranks_of(pid)) ::kill(child, SIGKILL);
        ::kill(pid, SIGKILL);
        ADD_FAILURE() << "the killed run did not end within 60 s";
        wait_for(pid);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  wrote_inside = killed && temp_files(run) > before;
  return killed;
}

/// Every tensor's bytes and the resumable metadata of the final checkpoints must be equal.
void expect_same_final_state(const fs::path& a, const fs::path& b, int world_size) {
  const auto la = io::latest_checkpoint(a.string()), lb = io::latest_checkpoint(b.string());
  ASSERT_TRUE(la && lb);
  const io::Checkpoint ca = io::load_checkpoint(*la), cb = io::load_checkpoint(*lb);
  EXPECT_EQ(ca.meta.at("step").get<int64_t>(), kSteps);
  EXPECT_EQ(cb.meta.at("step").get<int64_t>(), kSteps);
  EXPECT_EQ(ca.meta.at("world_size").get<int64_t>(), world_size);
  for (const char* k : {"step", "total_steps", "loader", "ema_updates", "world_size"}) {
    EXPECT_EQ(ca.meta.at(k).dump(), cb.meta.at(k).dump()) << k;
  }
  ASSERT_EQ(ca.tensors.size(), cb.tensors.size());
  int compared = 0;
  for (const auto& [name, ta] : ca.tensors) {
    ASSERT_TRUE(cb.tensors.count(name)) << name;
    const at::Tensor& tb = cb.tensors.at(name);
    ASSERT_EQ(ta.sizes(), tb.sizes()) << name;
    ASSERT_EQ(ta.scalar_type(), tb.scalar_type()) << name;
    const size_t bytes = static_cast<size_t>(ta.numel()) * ta.element_size();
    EXPECT_EQ(std::memcmp(ta.data_ptr(), tb.data_ptr(), bytes), 0) << name << " differs";
    ++compared;
  }
  // The comparison covers every part of the state.
  for (const char* prefix : {"model/", "ema/", "optim/", "carry/z_h", "carry/z_l", "carry/steps", "carry/halted",
                             "carry/inputs", "rng/train"}) {
    EXPECT_TRUE(ca.tensors.lower_bound(prefix) != ca.tensors.end() &&
                ca.tensors.lower_bound(prefix)->first.rfind(prefix, 0) == 0)
        << prefix;
  }
  if (world_size == 2) {
    EXPECT_TRUE(ca.tensors.count("rng/train/rank1"));
  }
  EXPECT_GE(compared, 20);
}

/// Processes started from here hold every checkpoint write open for 30 ms between its bytes and its rename
/// (io::atomic_write's test hook), so a kill at the temp file's creation lands inside the write every time,
/// on a fast disk too.
const bool kSlowWrites = [] { return ::setenv("EQR_TEST_WRITE_DELAY_MS", "30", 1) == 0; }();

/// The killed run: `trials` kills (inside a write on even trials, at a seeded random moment on odd ones),
/// each followed by a resume, then a resume to the end. `prefix` is "" or "launch -n 2 --".
void kill_and_resume(const fs::path& root, const std::vector<std::string>& launch,
                     const std::function<pid_t(pid_t, int)>& victim, int trials) {
  const fs::path run = root / "killed", log = root / "killed.log";
  ASSERT_TRUE(kSlowWrites);
  std::mt19937 rng(1234);
  int kills = 0, inside = 0, attempts = 0;
  for (int trial = 0; trial < trials && attempts < 3 * trials; ++attempts) {
    auto args = launch;
    if (io::latest_checkpoint(run.string())) {
      args.insert(args.end(), {"train", "--no-progress", "--resume", run.string()});
    } else {
      fs::remove_all(run);  // killed before its first checkpoint: start again
      const auto t = train_args(root, run);
      args.insert(args.end(), t.begin(), t.end());
    }
    const Moment moment = trial % 2 == 0 ? Moment::kInsideWrite : Moment::kRandom;
    const int delay = std::uniform_int_distribution<int>(0, 150)(rng);
    bool wrote_inside = false;
    const bool killed = run_and_kill(args, run, log, moment, delay, [&](pid_t pid) { return victim(pid, trial); },
                                     wrote_inside);
    if (!killed) break;  // the run finished first
    ++kills;
    inside += wrote_inside ? 1 : 0;
    // An inside-a-write trial counts only when the kill left the write unfinished (its temp file).
    if (moment == Moment::kRandom || wrote_inside) ++trial;
    const auto latest = io::latest_checkpoint(run.string());
    if (latest) {
      EXPECT_NO_THROW(io::load_checkpoint(*latest)) << *latest << " after kill " << kills;
    }
  }
  std::printf("[ kill/resume ] %d kills (%d inside a checkpoint write) in %d attempts\n", kills, inside, attempts);
  EXPECT_GE(kills, trials) << test::read_file(log);
  EXPECT_GE(inside, 1) << "no kill landed inside a checkpoint write";
  auto args = launch;
  args.insert(args.end(), {"train", "--no-progress", "--resume", run.string()});
  ASSERT_TRUE(run_to_end(args, log)) << test::read_file(log);
}

TEST(ResumeKill, SigkillAnywhereResumesBitIdenticalOneRank) {
  const fs::path root = test::temp_dir("resume_kill1");
  ASSERT_TRUE(run_to_end(train_args(root, root / "straight"), root / "straight.log"))
      << test::read_file(root / "straight.log");
  kill_and_resume(root, {}, [](pid_t pid, int) { return pid; }, 4);
  expect_same_final_state(root / "straight", root / "killed", 1);
}

TEST(ResumeKill, SigkillOfOneRankResumesBitIdenticalTwoRanks) {
#ifndef EQR_HAVE_GLOO
  GTEST_SKIP() << "built without gloo (EQR_HAVE_GLOO): no CPU data parallel";
#else
  const fs::path root = test::temp_dir("resume_kill2");
  std::vector<std::string> launch{"launch", "-n", "2", "--"};
  auto straight = launch;
  const auto t = train_args(root, root / "straight");
  straight.insert(straight.end(), t.begin(), t.end());
  ASSERT_TRUE(run_to_end(straight, root / "straight.log")) << test::read_file(root / "straight.log");
  // Rank 0 (the writer, and the rendezvous store) inside writes; rank 1 or rank 0 at random moments.
  kill_and_resume(root, launch,
                  [](pid_t launcher, int trial) {
                    const int want = trial % 2 == 0 ? 0 : (trial / 2) % 2 == 0 ? 1 : 0;
                    for (const auto& [pid, rank] : ranks_of(launcher)) {
                      if (rank == want) return pid;
                    }
                    return launcher;  // ranks not up yet: the launcher itself (its ranks die with it)
                  },
                  4);
  expect_same_final_state(root / "straight", root / "killed", 2);
#endif
}

TEST(ResumeKill, UnwritableRunDirectoryIsRefusedBeforeTraining) {
  const fs::path root = test::temp_dir("resume_unwritable");
  test::write_file(root / "file", "not a directory\n");
  const auto r = test::run_eqr("train --no-progress --config '" + (test::source_dir() / "configs/ci_tiny.yaml").string() +
                               "' --run-dir '" + (root / "file" / "run").string() + "' --set data.data_path='" +
                               (root / "data").string() + "'");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("cannot create run directory"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(root / "data")) << "data was built before the check";
  if (::geteuid() != 0) {  // root writes through permissions
    fs::create_directories(root / "ro");
    fs::permissions(root / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    const auto ro = test::run_eqr("train --no-progress --config '" + (test::source_dir() / "configs/ci_tiny.yaml").string() +
                                  "' --run-dir '" + (root / "ro" / "run").string() + "'");
    EXPECT_EQ(ro.exit_code, 1) << ro.err;
    EXPECT_NE(ro.err.find("run directory"), std::string::npos) << ro.err;
    fs::permissions(root / "ro", fs::perms::owner_all);
  }
}

TEST(ResumeKill, TooLittleDiskSpaceIsRefusedBeforeTraining) {
  // A filesystem of 512 KiB: a tmpfs mounted in a private user and mount namespace (`unshare -rm`, no root
  // needed where the kernel allows unprivileged user namespaces). Two ci_tiny checkpoints plus the 1 MiB
  // margin never fit, so the run must stop before its first step, saying how much is free and needed.
  if (std::system("unshare -rm true >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "unshare -rm is not permitted here (no user namespaces): cannot mount a small filesystem";
  }
  const fs::path root = test::temp_dir("resume_nospace");
  const fs::path mnt = root / "small";
  fs::create_directories(mnt);
  const fs::path err = root / "stderr", listing = root / "listing";
  const std::string script = "mount -t tmpfs -o size=512k tmpfs '" + mnt.string() + "' || exit 97; '" +
                             test::eqr_exe().string() + "' train --no-progress --config '" +
                             (test::source_dir() / "configs/ci_tiny.yaml").string() + "' --run-dir '" +
                             (mnt / "run").string() + "' --set data.data_path='" + (root / "data").string() +
                             "' 2>'" + err.string() + "' >/dev/null; rc=$?; ls -a '" + (mnt / "run/checkpoints").string() +
                             "' >'" + listing.string() + "' 2>&1; exit $rc";
  test::write_file(root / "run.sh", script + "\n");
  const int status = std::system(("unshare -rm sh '" + (root / "run.sh").string() + "'").c_str());
  ASSERT_TRUE(WIFEXITED(status)) << status;
  if (WEXITSTATUS(status) == 97) GTEST_SKIP() << "mounting a tmpfs in a user namespace is not permitted here";
  const std::string message = test::read_file(err);
  EXPECT_EQ(WEXITSTATUS(status), 1) << message;
  EXPECT_NE(message.find("MiB free, and training needs about"), std::string::npos) << message;
  EXPECT_NE(message.find((mnt / "run").string()), std::string::npos) << message;
  const std::string files = test::read_file(listing);
  EXPECT_EQ(files.find("step_"), std::string::npos) << "a checkpoint was written:\n" << files;
  EXPECT_EQ(files.find(".tmp."), std::string::npos) << "a temp file was left:\n" << files;
}

TEST(ResumeKill, FailedCheckpointWriteKeepsThePreviousCheckpoint) {
  // A full disk, made small: RLIMIT_FSIZE (ulimit -f, in 1024-byte blocks) lets the resumed run write its
  // small files but not a checkpoint; SIGXFSZ is ignored so that write() fails with EFBIG instead.
  const fs::path root = test::temp_dir("resume_full");
  const fs::path run = root / "run";
  auto args = train_args(root, run);
  args.insert(args.end(), {"--stop-after", "4"});
  ASSERT_TRUE(run_to_end(args, root / "log")) << test::read_file(root / "log");
  const auto before = io::latest_checkpoint(run.string());
  ASSERT_TRUE(before.has_value());
  const uint64_t ckpt_bytes = fs::file_size(*before);
  ASSERT_GT(ckpt_bytes, 16u * 1024) << "the checkpoint must be larger than the limit below";
  const fs::path err = root / "stderr";
  const std::string cmd = "trap '' XFSZ; ulimit -f 16; exec '" + test::eqr_exe().string() + "' train --no-progress --resume '" +
                          run.string() + "' >/dev/null 2>'" + err.string() + "'";
  const int status = std::system(("sh -c \"" + cmd + "\"").c_str());
  const std::string message = test::read_file(err);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << message;
  EXPECT_NE(message.find("write failed"), std::string::npos) << message;
  EXPECT_NE(message.find("disk full"), std::string::npos) << message;
  EXPECT_NE(message.find("the checkpoint of step 6 could not be written"), std::string::npos) << message;
  EXPECT_NE(message.find(*before + ") is intact"), std::string::npos) << message;
  const auto after = io::latest_checkpoint(run.string());
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(*after, *before);
  EXPECT_EQ(io::load_checkpoint(*after).meta.at("step").get<int64_t>(), 4);
  EXPECT_EQ(temp_files(run), 0) << "the failed write's temp file was not removed";
}

}  // namespace
}  // namespace eqr
