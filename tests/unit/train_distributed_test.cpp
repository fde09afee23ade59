// Distributed helpers: environment parsing, the world_size 1 no-op path, and (with Gloo) real
// collectives between two ranks in two threads of this process over a loopback TCPStore.

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/train/distributed.h"

namespace eqr::train {
namespace {

/// Sets environment variables for the scope, restoring the old values after.
class ScopedEnv {
 public:
  explicit ScopedEnv(std::vector<std::pair<std::string, std::string>> vars) {
    for (auto& [k, v] : vars) {
      const char* old = std::getenv(k.c_str());
      saved_.push_back({k, old ? std::optional<std::string>(old) : std::nullopt});
      if (v.empty()) {
        ::unsetenv(k.c_str());
      } else {
        ::setenv(k.c_str(), v.c_str(), 1);
      }
    }
  }
  ~ScopedEnv() {
    for (auto& [k, v] : saved_) {
      if (v) {
        ::setenv(k.c_str(), v->c_str(), 1);
      } else {
        ::unsetenv(k.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

const std::vector<std::string> kAllVars = {"RANK",          "WORLD_SIZE",           "LOCAL_RANK",
                                           "MASTER_ADDR",   "MASTER_PORT",          "SLURM_PROCID",
                                           "SLURM_NTASKS",  "SLURM_LOCALID",        "OMPI_COMM_WORLD_RANK",
                                           "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "PMI_RANK",
                                           "PMI_SIZE"};

std::vector<std::pair<std::string, std::string>> cleared(std::vector<std::pair<std::string, std::string>> set) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& k : kAllVars) out.push_back({k, ""});
  for (auto& kv : set) out.push_back(kv);
  return out;
}

TEST(TrainDistributed, EnvDefaultsAndTorchrunVariables) {
  {
    ScopedEnv env(cleared({}));
    const auto e = DistEnv::from_environment();
    EXPECT_EQ(e.rank, 0);
    EXPECT_EQ(e.world_size, 1);
    EXPECT_EQ(e.local_rank, 0);
    EXPECT_EQ(e.master_addr, "127.0.0.1");
    EXPECT_EQ(e.master_port, 29500);
  }
  {
    ScopedEnv env(cleared({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node7"},
                           {"MASTER_PORT", "1234"}}));
    const auto e = DistEnv::from_environment();
    EXPECT_EQ(e.rank, 3);
    EXPECT_EQ(e.world_size, 4);
    EXPECT_EQ(e.local_rank, 1);
    EXPECT_EQ(e.master_addr, "node7");
    EXPECT_EQ(e.master_port, 1234);
  }
  {  // Slurm fallbacks
    ScopedEnv env(cleared({{"SLURM_PROCID", "2"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "0"}}));
    const auto e = DistEnv::from_environment();
    EXPECT_EQ(e.rank, 2);
    EXPECT_EQ(e.world_size, 8);
    EXPECT_EQ(e.local_rank, 0);
  }
}

TEST(TrainDistributed, EnvRejectsBadValues) {
  {
    ScopedEnv env(cleared({{"RANK", "x1"}}));
    EXPECT_THROW(DistEnv::from_environment(), ConfigError);
  }
  {
    ScopedEnv env(cleared({{"RANK", "2"}, {"WORLD_SIZE", "2"}}));
    EXPECT_THROW(DistEnv::from_environment(), ConfigError);
  }
  {
    ScopedEnv env(cleared({{"MASTER_PORT", "70000"}}));
    EXPECT_THROW(DistEnv::from_environment(), ConfigError);
  }
}

TEST(TrainDistributed, WorldSizeOneIsANoOp) {
  Distributed d(DistEnv{}, torch::kCPU);
  EXPECT_FALSE(d.active());
  EXPECT_EQ(d.backend(), "none");
  EXPECT_TRUE(d.is_primary());
  auto p = torch::ones({2}).set_requires_grad(true);
  d.all_reduce_gradients({p});
  EXPECT_FALSE(p.grad().defined());  // untouched, as the reference with one process
  auto t = torch::tensor({5.0});
  d.all_reduce(t, ReduceOp::Sum);
  EXPECT_EQ(t.item<double>(), 5.0);
  d.barrier();
  EXPECT_GT(find_free_port(), 0);
}

#ifdef EQR_HAVE_GLOO
/// Runs fn(rank) in two threads, each with its own Distributed of a 2-rank Gloo group.
void run_two_ranks(const std::function<void(Distributed&)>& fn) {
  const int port = find_free_port();
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      try {
        DistEnv e;
        e.rank = r;
        e.world_size = 2;
        e.local_rank = r;
        e.master_port = port;
        Distributed d(e, torch::kCPU, std::chrono::seconds(60));
        fn(d);
      } catch (const std::exception& ex) {
        errors[static_cast<size_t>(r)] = ex.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
}

TEST(TrainDistributed, GlooCollectivesBetweenTwoRanks) {
  std::vector<std::vector<double>> results(2);
  run_two_ranks([&](Distributed& d) {
    EXPECT_TRUE(d.active());
    EXPECT_EQ(d.backend(), "gloo");
    const double x = d.rank() + 1.0;  // 1, 2
    auto s = torch::tensor({x, -x}, torch::kFloat64);
    auto mn = s.clone();
    auto mx = s.clone();
    d.all_reduce(s, ReduceOp::Sum);
    d.all_reduce(mn, ReduceOp::Min);
    d.all_reduce(mx, ReduceOp::Max);
    // Gradients: rank r has grad r+1 on a, and b has no grad on rank 1 (zeros filled in).
    auto a = torch::zeros({2, 2}).set_requires_grad(true);
    auto b = torch::zeros({3}, torch::kFloat64).set_requires_grad(true);
    a.mutable_grad() = torch::full({2, 2}, x);
    if (d.rank() == 0) b.mutable_grad() = torch::full({3}, 7.0, torch::kFloat64);
    d.all_reduce_gradients({a, b});
    // Broadcast: rank 1's module gets rank 0's weights.
    // (Weights set by value, not by torch::manual_seed: the global generator is shared by both threads.)
    torch::nn::Linear lin(3, 2);
    {
      torch::NoGradGuard no_grad;
      lin->weight.copy_(torch::arange(6, torch::kFloat32).reshape({2, 3}) * (d.rank() + 1));
      lin->bias.fill_(d.rank() == 0 ? 0.5 : -4.0);
    }
    d.broadcast_module(*lin);
    auto w = lin->weight.detach().clone();
    d.barrier();
    auto& out = results[static_cast<size_t>(d.rank())];
    out = {s[0].item<double>(),  s[1].item<double>(),  mn[0].item<double>(), mn[1].item<double>(),
           mx[0].item<double>(), mx[1].item<double>(), a.grad()[1][1].item<double>(),
           b.grad()[2].item<double>(), w.sum().item<double>()};
  });
  for (int r = 0; r < 2; ++r) {
    const auto& o = results[static_cast<size_t>(r)];
    ASSERT_EQ(o.size(), 9u) << "rank " << r;
    EXPECT_EQ(o[0], 3.0);
    EXPECT_EQ(o[1], -3.0);
    EXPECT_EQ(o[2], 1.0);   // min(1, 2)
    EXPECT_EQ(o[3], -2.0);  // min(-1, -2)
    EXPECT_EQ(o[4], 2.0);
    EXPECT_EQ(o[5], -1.0);
    EXPECT_EQ(o[6], 3.0);  // grads summed
    EXPECT_EQ(o[7], 7.0);  // 7 + zeros
  }
  // Rank 0's weights are 0..5 (sum 15); rank 1 had twice that and must have received rank 0's.
  EXPECT_EQ(results[0][8], 15.0);
  EXPECT_EQ(results[1][8], 15.0);
}
#else
TEST(TrainDistributed, GlooCollectivesBetweenTwoRanks) { GTEST_SKIP() << "built without gloo (EQR_HAVE_GLOO)"; }
#endif

}  // namespace
}  // namespace eqr::train
