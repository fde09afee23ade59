// Runner invariants on a tiny random model (4x4 boards, hidden 16): fixed depth, breadth 1 = plain run,
// breadth prefixes, adaptive with tol 0 = fixed, compaction = running alone, convergence score.
// Shape legend: P puzzles, R breadth, S = 16 cells, V = 6 vocab.

#include <algorithm>
#include <cmath>
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/core/rng.h"
#include "eqr/dynamics/step.h"
#include "eqr/infer/breadth.h"
#include "eqr/infer/runner.h"
#include "eqr/model/init.h"
#include "eqr/task/sudoku/sudoku_task.h"
#include "fixtures.h"

namespace eqr::infer {
namespace {

config::ArchConfig tiny_arch(double noise) {
  config::ArchConfig a;
  test::shrink_to_width16(a);  // width 16, 2 heads, expansion 1, one layer, h_cycles 2, l_cycles 1
  a.seq_len = 16;
  a.vocab_size = 6;
  a.board_height = 4;
  a.board_width = 4;
  a.noise_scale = noise;
  return a;
}

model::EqrModel tiny_model(double noise, bool random_q = false) {
  torch::manual_seed(3);
  model::EqrModel m(model::EqrModelOptions(tiny_arch(noise), test::float32_compute()));
  if (random_q) {  // q_halt varies by row and step, so halt_on_q stops rows at different steps
    torch::NoGradGuard g;
    m->q_head->weight.normal_(0.0, 2.0);
    m->q_head->bias.fill_(0.0);
  }
  return m;
}

PuzzleSet tiny_puzzles() {
  // One 4x4 solution (rows 1234 / 3412 / 2143 / 4321) with different blanks, and digit-relabelled copies.
  const std::vector<std::string> grids = {"1.3.3.1.2.4.4.2.", "12..34..21..43..", ".234.412.143.321",
                                          "1234............", "..3.3...2.4...2.", "4321........1234",
                                          "2.4.4.2.3.1.1.3."};
  return task::SudokuTask(sudoku::Geometry::from_side(4)).parse_puzzles(grids);
}

/// The plain loop: dynamics::step on the whole set as one batch, states as the runner seeds them.
struct Plain {
  std::vector<at::Tensor> logits;  // per step (P, S, V)
  std::vector<at::Tensor> residual;
};
Plain plain_run(model::EqrModel& m, const PuzzleSet& ps, int64_t depth, uint64_t seed) {
  torch::NoGradGuard g;
  m->eval();
  dynamics::Batch batch{ps.inputs, ps.labels, at::Tensor()};
  dynamics::Carry carry = dynamics::initial_carry(m, batch);
  std::vector<int64_t> ids, inits;
  for (int64_t i = 0; i < ps.size(); ++i) {
    ids.push_back(i);
    inits.push_back(0);
  }
  std::tie(carry.z_h, carry.z_l) = trajectory_initial_states(m, seed, ids, inits);
  carry.halted = torch::zeros_like(carry.halted);
  carry.data = batch;
  at::Generator noise = model::make_generator(torch::kCPU, derive_seed(seed, stream_id("noise")));
  Plain out;
  for (int64_t t = 0; t < depth; ++t) {
    auto s = dynamics::step(m, carry, batch, noise);
    carry = s.carry;
    out.logits.push_back(s.logits.to(torch::kFloat));
    out.residual.push_back(s.residual);
  }
  return out;
}

RunnerOptions opts(std::vector<int64_t> depths, int64_t breadth, int64_t batch, uint64_t seed = 11) {
  RunnerOptions o;
  o.depths = std::move(depths);
  o.breadth = breadth;
  o.batch_puzzles = batch;
  o.seed = seed;
  return o;
}

TEST(InferRunner, FixedDepthRunsExactlyDepthStepsPerRow) {
  auto m = tiny_model(0.01);
  const PuzzleSet ps = tiny_puzzles();
  const int64_t p = ps.size(), r = 3;
  RunSummary sum;
  const auto res = run_all(m, ps, opts({5, 2}, r, 3), &sum);  // 7 puzzles in batches of 3: 3, 3, 1
  ASSERT_EQ(static_cast<int64_t>(res.size()), p);
  for (const auto& pr : res) {
    ASSERT_EQ(static_cast<int64_t>(pr.trajectories.size()), r);
    for (int64_t i = 0; i < r; ++i) {
      const auto& tr = pr.trajectories[static_cast<size_t>(i)];
      EXPECT_EQ(tr.init, i);
      EXPECT_EQ(tr.steps, 5);
      EXPECT_EQ(tr.residuals.size(), 5u);
      ASSERT_EQ(tr.at_depth.size(), 2u);  // depths sorted: 2, 5
      EXPECT_EQ(tr.at_depth[0].steps, 2);
      EXPECT_EQ(tr.at_depth[1].steps, 5);
      EXPECT_EQ(tr.at_depth[0].prediction.size(), 16u);
    }
  }
  ASSERT_EQ(sum.trace.rows.size(), 5u);
  for (auto n : sum.trace.rows) EXPECT_EQ(n, p * r);
  EXPECT_EQ(sum.trajectory_steps, p * r * 5);
  EXPECT_EQ(sum.batch_steps, 3 * 5);
}

TEST(InferRunner, BreadthOneEqualsPlainRunWithTheSameSeed) {
  auto m = tiny_model(0.01);  // noise on: the noise stream must match too
  const PuzzleSet ps = tiny_puzzles();
  const auto res = run_all(m, ps, opts({1, 3, 4}, 1, ps.size(), 5));
  const Plain plain = plain_run(m, ps, 4, 5);
  const int depth_steps[] = {1, 3, 4};
  for (int64_t p = 0; p < ps.size(); ++p) {
    const auto& tr = res[static_cast<size_t>(p)].trajectories[0];
    for (int j = 0; j < 3; ++j) {
      const at::Tensor pred = plain.logits[static_cast<size_t>(depth_steps[j] - 1)][p].argmax(-1).to(torch::kUInt8);
      const Prediction want(pred.data_ptr<uint8_t>(), pred.data_ptr<uint8_t>() + 16);
      EXPECT_EQ(tr.at_depth[static_cast<size_t>(j)].prediction, want) << "puzzle " << p << " depth " << depth_steps[j];
    }
    for (int t = 0; t < 4; ++t) {
      EXPECT_NEAR(tr.residuals[static_cast<size_t>(t)], plain.residual[static_cast<size_t>(t)][p].item<float>(), 1e-4);
    }
    // The runner's incremental convergence score = the reference formula on the stacked logits.
    const at::Tensor stack = torch::stack({plain.logits[0][p], plain.logits[1][p], plain.logits[2][p],
                                           plain.logits[3][p]}).unsqueeze(1);
    EXPECT_NEAR(tr.at_depth[2].convergence_score, convergence_scores(stack, 3).item<float>(), 1e-4);
    EXPECT_NEAR(tr.at_depth[1].convergence_score, convergence_scores(stack.slice(0, 0, 3), 3).item<float>(), 1e-4);
    EXPECT_TRUE(std::isnan(tr.at_depth[0].convergence_score));
  }
}

/// Independent reference for a fixed-depth run: plain dynamics::step loops over the runner's batches
/// (batch_puzzles puzzles x R inits in repeat_interleave order, one noise generator across batches),
/// with every per-trajectory value the runner reports computed here from the step outputs.
struct PlainTraj {
  std::vector<float> residuals;    // per step
  std::vector<at::Tensor> logits;  // per step (S, V) float32
  std::vector<double> q, cell;     // per step
  std::vector<bool> exact;         // per step
};
std::vector<PlainTraj> plain_batches(model::EqrModel& m, const PuzzleSet& ps, int64_t r, int64_t batch_puzzles,
                                     int64_t depth, uint64_t seed) {
  torch::NoGradGuard g;
  m->eval();
  at::Generator noise = model::make_generator(torch::kCPU, derive_seed(seed, stream_id("noise")));
  std::vector<PlainTraj> out(static_cast<size_t>(ps.size() * r));
  for (int64_t p0 = 0; p0 < ps.size(); p0 += batch_puzzles) {
    const int64_t p1 = std::min(ps.size(), p0 + batch_puzzles);
    std::vector<int64_t> ids, inits;
    for (int64_t p = p0; p < p1; ++p) {
      for (int64_t i = 0; i < r; ++i) {
        ids.push_back(p);
        inits.push_back(i);
      }
    }
    dynamics::Batch batch{repeat_rows(ps.inputs.slice(0, p0, p1), r), repeat_rows(ps.labels.slice(0, p0, p1), r),
                          at::Tensor()};
    dynamics::Carry carry = dynamics::initial_carry(m, batch);
    std::tie(carry.z_h, carry.z_l) = trajectory_initial_states(m, seed, ids, inits);
    carry.halted = torch::zeros_like(carry.halted);
    carry.data = batch;
    for (int64_t t = 0; t < depth; ++t) {
      auto s = dynamics::step(m, carry, batch, noise);
      carry = s.carry;
      const at::Tensor logits = s.logits.to(torch::kFloat);
      for (int64_t k = 0; k < batch.size(); ++k) {
        PlainTraj& tr = out[static_cast<size_t>(p0 * r + k)];
        tr.residuals.push_back(s.residual[k].item<float>());
        tr.logits.push_back(logits[k]);
        tr.q.push_back(static_cast<double>(s.q_halt_logits[k].item<float>()));
        const at::Tensor labels = batch.labels[k].to(torch::kLong);
        const at::Tensor pred = logits[k].argmax(-1);
        const int64_t n = (labels != -100).sum().item<int64_t>();
        const int64_t right = ((pred == labels) & (labels != -100)).sum().item<int64_t>();
        tr.cell.push_back(static_cast<double>(right) / static_cast<double>(std::max<int64_t>(n, 1)));
        tr.exact.push_back(n > 0 && right == n);
      }
    }
  }
  return out;
}

TEST(InferRunner, FixedRunReportsWhatAPlainStepLoopComputes) {
  auto m = tiny_model(0.01);
  const PuzzleSet ps = tiny_puzzles();
  for (int64_t r : {1, 3}) {
    const int64_t bp = 3, depth = 6;  // 7 puzzles in batches of 3, 3, 1
    auto o = opts({2, 6, 4}, r, bp, 21);
    RunSummary sum;
    const auto res = run_all(m, ps, o, &sum);
    const auto plain = plain_batches(m, ps, r, bp, depth, 21);
    const int64_t read_at[] = {2, 4, 6};
    StepTrace want;
    for (int64_t p = 0; p < ps.size(); ++p) {
      for (int64_t i = 0; i < r; ++i) {
        const auto& tr = res[static_cast<size_t>(p)].trajectories[static_cast<size_t>(i)];
        const PlainTraj& pl = plain[static_cast<size_t>(p * r + i)];
        EXPECT_EQ(tr.puzzle, p);
        EXPECT_EQ(tr.init, i);
        EXPECT_EQ(tr.steps, depth);
        EXPECT_EQ(tr.residuals, pl.residuals) << "r " << r << " puzzle " << p << " init " << i;
        ASSERT_EQ(tr.at_depth.size(), 3u);
        for (size_t j = 0; j < 3; ++j) {
          const Snapshot& sn = tr.at_depth[j];
          const size_t t = static_cast<size_t>(read_at[j] - 1);
          const at::Tensor pred = pl.logits[t].argmax(-1).to(torch::kUInt8);
          EXPECT_EQ(sn.prediction, Prediction(pred.data_ptr<uint8_t>(), pred.data_ptr<uint8_t>() + 16));
          EXPECT_EQ(sn.steps, read_at[j]);
          EXPECT_EQ(sn.residual, static_cast<double>(pl.residuals[t]));
          EXPECT_EQ(sn.exact, pl.exact[t]);
          EXPECT_EQ(sn.cell_accuracy, pl.cell[t]);
          EXPECT_EQ(sn.q_halt, pl.q[t]);
          std::vector<at::Tensor> upto(pl.logits.begin(), pl.logits.begin() + static_cast<int64_t>(t) + 1);
          EXPECT_NEAR(sn.convergence_score, convergence_scores(torch::stack(upto).unsqueeze(1), 3).item<float>(),
                      1e-5);
        }
      }
    }
    // The trace: per step, the rows in run order (puzzle-major), summed as the runner sums them.
    for (const auto& pl : plain) {
      for (size_t t = 0; t < static_cast<size_t>(depth); ++t) want.add(t, pl.residuals[t], pl.exact[t], pl.cell[t]);
    }
    EXPECT_EQ(sum.trace.rows, want.rows);
    EXPECT_EQ(sum.trace.residual_sum, want.residual_sum);
    EXPECT_EQ(sum.trace.exact_sum, want.exact_sum);
    EXPECT_EQ(sum.trace.cell_sum, want.cell_sum);
    EXPECT_EQ(sum.trajectory_steps, ps.size() * r * depth);
    EXPECT_EQ(sum.batch_steps, 3 * depth);
  }
}

TEST(InferRunner, FixedSchedulerCopiesToTheHostOncePerReadNotPerStep) {
  auto m = tiny_model(0.01);
  const PuzzleSet ps = tiny_puzzles();
  // Depths {2, 8}, max 8, 7 puzzles x 2 inits in batches of 3 puzzles: 3 batches x 8 steps, 2 reads each.
  RunSummary fixed_sum;
  const auto fixed = run_all(m, ps, opts({2, 8}, 2, 3), &fixed_sum);
  EXPECT_EQ(fixed_sum.batch_steps, 3 * 8);
  EXPECT_EQ(fixed_sum.host_syncs, 3 * 2);  // one per (batch, requested depth); the old loop made 3*8 + 6
  RunSummary one_sum;
  auto o = opts({8}, 2, 7);
  o.keep_residuals = false;
  const auto one = run_all(m, ps, o, &one_sum);
  EXPECT_EQ(one_sum.host_syncs, 1);  // one batch, one read (the stop)
  EXPECT_TRUE(one[0].trajectories[0].residuals.empty());
  EXPECT_EQ(one_sum.trace.rows, std::vector<int64_t>(8, ps.size() * 2));  // the trace does not need them
  // The adaptive scheduler still copies after every step (its stop decision is made on the host).
  auto ao = opts({2, 8}, 2, 3);
  ao.depth.kind = SchedulerKind::kAdaptive;
  ao.depth.tol = 0.0;
  RunSummary adaptive_sum;
  const auto adaptive = run_all(m, ps, ao, &adaptive_sum);
  EXPECT_GE(adaptive_sum.host_syncs, adaptive_sum.batch_steps);
  // Same results either way (adaptive with tol 0 is the fixed scheduler).
  for (size_t p = 0; p < fixed.size(); ++p) {
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(fixed[p].trajectories[i].residuals, adaptive[p].trajectories[i].residuals);
      EXPECT_EQ(fixed[p].trajectories[i].at_depth[1].prediction, adaptive[p].trajectories[i].at_depth[1].prediction);
    }
  }
  EXPECT_EQ(fixed_sum.trace.residual_sum, adaptive_sum.trace.residual_sum);
}

TEST(InferRunner, SmallerBreadthIsAPrefixOfLargerWithNoiseOff) {
  auto m = tiny_model(0.0);
  const PuzzleSet ps = tiny_puzzles();
  const auto one = run_all(m, ps, opts({3}, 1, 4));
  const auto four = run_all(m, ps, opts({3}, 4, 2));
  bool some_init_differs = false;
  for (size_t p = 0; p < one.size(); ++p) {
    const auto& a = one[p].trajectories[0];
    const auto& b = four[p].trajectories[0];
    EXPECT_EQ(a.at_depth[0].prediction, b.at_depth[0].prediction);
    for (size_t t = 0; t < 3; ++t) EXPECT_NEAR(a.residuals[t], b.residuals[t], 1e-4 * (1 + a.residuals[t]));
    // Other inits start elsewhere: their residual traces differ.
    some_init_differs |= std::abs(four[p].trajectories[1].residuals[0] - b.residuals[0]) > 1e-3;
  }
  EXPECT_TRUE(some_init_differs);
}

TEST(InferRunner, AdaptiveWithTolZeroEqualsFixed) {
  auto m = tiny_model(0.01);
  const PuzzleSet ps = tiny_puzzles();
  auto fo = opts({2, 4}, 2, 3);
  auto ao = fo;
  ao.depth.kind = SchedulerKind::kAdaptive;
  ao.depth.tol = 0.0;
  ao.depth.patience = 1;
  RunSummary fs, as;
  const auto f = run_all(m, ps, fo, &fs);
  const auto a = run_all(m, ps, ao, &as);
  EXPECT_EQ(fs.trajectory_steps, as.trajectory_steps);
  EXPECT_EQ(fs.batch_steps, as.batch_steps);
  for (size_t p = 0; p < f.size(); ++p) {
    for (size_t i = 0; i < 2; ++i) {
      const auto& x = f[p].trajectories[i];
      const auto& y = a[p].trajectories[i];
      EXPECT_EQ(x.steps, y.steps);
      EXPECT_EQ(x.residuals, y.residuals);  // bit-identical: same batches, same noise stream
      for (size_t j = 0; j < 2; ++j) EXPECT_EQ(x.at_depth[j].prediction, y.at_depth[j].prediction);
    }
  }
}

TEST(InferRunner, AdaptiveStopsRowsEarlyAndCapsDepths) {
  auto m = tiny_model(0.01);
  const PuzzleSet ps = tiny_puzzles();
  auto o = opts({1, 6}, 2, 2);
  o.depth.kind = SchedulerKind::kAdaptive;
  o.depth.tol = 1e9;  // every residual is "small": stop after `patience` steps
  o.depth.patience = 3;
  RunSummary s;
  const auto res = run_all(m, ps, o, &s);
  for (const auto& pr : res) {
    for (const auto& tr : pr.trajectories) {
      EXPECT_EQ(tr.steps, 3);
      EXPECT_EQ(tr.at_depth[0].steps, 1);  // the depth-1 cap is read on the way
      EXPECT_EQ(tr.at_depth[1].steps, 3);  // the depth-6 cap got the stopping state
    }
  }
  EXPECT_EQ(s.trajectory_steps, ps.size() * 2 * 3);
}

TEST(InferRunner, AnswerPatienceStopsOnceTheDecodedAnswerStaysTheSame) {
  // Noise off, so a trajectory's steps do not depend on its batch. Expected stop with answer_patience k: the
  // first step t > k whose answer equals those of the k steps before it, read off a fixed run that records
  // every step; else the cap. A small damping lambda moves the state a little per step, so answers settle.
  auto arch = tiny_arch(0.0);
  arch.lambda = 0.1;
  torch::manual_seed(3);
  model::EqrModel m{model::EqrModelOptions(arch, test::float32_compute())};
  const PuzzleSet ps = tiny_puzzles();
  constexpr int64_t cap = 12;
  std::vector<int64_t> every;
  for (int64_t t = 1; t <= cap; ++t) every.push_back(t);
  const auto f = run_all(m, ps, opts(every, 2, 3));
  for (int64_t k : {1, 2}) {
    auto o = opts({cap}, 2, 3);
    o.depth.kind = SchedulerKind::kAdaptive;
    o.depth.tol = 0.0;
    o.depth.answer_patience = k;
    const auto a = run_all(m, ps, o);
    int early = 0;
    for (size_t p = 0; p < f.size(); ++p) {
      for (size_t i = 0; i < 2; ++i) {
        const auto& snaps = f[p].trajectories[i].at_depth;
        int64_t expected = cap;
        for (int64_t t = k + 1; t <= cap && expected == cap; ++t) {
          bool same = true;
          for (int64_t back = 1; back <= k; ++back) {
            same = same && snaps[static_cast<size_t>(t - 1)].prediction == snaps[static_cast<size_t>(t - 1 - back)].prediction;
          }
          if (same) expected = t;
        }
        const auto& tr = a[p].trajectories[i];
        EXPECT_EQ(tr.steps, expected) << "k " << k << " puzzle " << p << " init " << i;
        EXPECT_EQ(tr.at_depth[0].prediction, snaps[static_cast<size_t>(expected - 1)].prediction);
        early += expected < cap;
      }
    }
    EXPECT_GT(early, 0) << "k " << k;  // the rule fired somewhere
  }
  // answer_patience 0 turns the rule off: with tol 0 every row runs to the cap.
  auto o = opts({cap}, 2, 3);
  o.depth.kind = SchedulerKind::kAdaptive;
  o.depth.tol = 0.0;
  o.depth.answer_patience = 0;
  for (const auto& pr : run_all(m, ps, o)) {
    for (const auto& tr : pr.trajectories) EXPECT_EQ(tr.steps, cap);
  }
}

TEST(InferRunner, CompactionGivesEachPuzzleTheResultOfRunningItAlone) {
  auto m = tiny_model(0.0, /*random_q=*/true);
  const PuzzleSet ps = tiny_puzzles();
  auto o = opts({2, 8}, 2, 2);
  o.depth.kind = SchedulerKind::kAdaptive;
  o.depth.tol = 0.0;
  o.depth.halt_on_q = true;
  RunSummary s;
  const auto all = run_all(m, ps, o, &s);
  std::set<int64_t> stop_steps;
  for (int64_t p = 0; p < ps.size(); ++p) {
    auto alone_opts = o;
    alone_opts.batch_puzzles = 1;
    const auto alone = run_all(m, ps.slice(p, p + 1), alone_opts);
    ASSERT_EQ(alone.size(), 1u);
    for (size_t i = 0; i < 2; ++i) {
      const auto& x = all[static_cast<size_t>(p)].trajectories[i];
      const auto& y = alone[0].trajectories[i];
      stop_steps.insert(x.steps);
      EXPECT_EQ(x.steps, y.steps) << "puzzle " << p << " init " << i;
      ASSERT_EQ(x.residuals.size(), y.residuals.size());
      for (size_t t = 0; t < x.residuals.size(); ++t) EXPECT_NEAR(x.residuals[t], y.residuals[t], 1e-4);
      for (size_t j = 0; j < 2; ++j) {
        EXPECT_EQ(x.at_depth[j].prediction, y.at_depth[j].prediction);
        EXPECT_EQ(x.at_depth[j].steps, y.at_depth[j].steps);
      }
    }
  }
  // The test means something only if rows really stopped at different steps (rows left mid-batch).
  EXPECT_GE(stop_steps.size(), 2u);
  EXPECT_LT(s.trajectory_steps, ps.size() * 2 * 8);
}

TEST(InferRunner, RejectsMismatchedBoards) {
  auto m = tiny_model(0.0);
  PuzzleSet ps = task::SudokuTask(sudoku::Geometry::from_side(9)).parse_puzzles({std::string(81, '.')});
  EXPECT_THROW(run_all(m, ps, opts({1}, 1, 1)), DataError);
  auto o = opts({}, 1, 1);
  EXPECT_THROW(run_all(m, tiny_puzzles(), o), ConfigError);
}

TEST(InferRunner, PuzzleSetsFromStrings) {
  const PuzzleSet ps = tiny_puzzles();
  EXPECT_EQ(ps.size(), 7);
  // Inputs: blank -> 1, digit d -> d + 1; labels: the solver's solution 1234/3412/2143/4321 as ids.
  EXPECT_TRUE(torch::equal(ps.inputs[2].slice(0, 0, 4), torch::tensor({1, 3, 4, 5}, torch::kInt)));
  EXPECT_TRUE(torch::equal(ps.labels[2].slice(0, 0, 8), torch::tensor({2, 3, 4, 5, 4, 5, 2, 3}, torch::kInt)));
  EXPECT_THROW(task::SudokuTask(sudoku::Geometry::from_side(4)).parse_puzzles({"12x4............"}), DataError);
  const PuzzleSet sub = ps.slice(2, 4);
  EXPECT_EQ(sub.size(), 2);
  EXPECT_EQ(sub.id(0), 2);
  EXPECT_EQ(sub.id(1), 3);
}

TEST(InferBreadth, RepeatInterleaveLayout) {
  const at::Tensor x = torch::tensor({10, 20}, torch::kInt).view({2, 1});
  EXPECT_TRUE(torch::equal(repeat_rows(x, 3).flatten(), torch::tensor({10, 10, 10, 20, 20, 20}, torch::kInt)));
  dynamics::Batch b{x, at::Tensor(), at::Tensor()};
  const auto e = expand_breadth(b, 2);
  EXPECT_EQ(e.size(), 4);
  EXPECT_FALSE(e.labels.defined());
  EXPECT_NE(trajectory_seed(0, 1, 0), trajectory_seed(0, 0, 1));
  EXPECT_EQ(trajectory_seed(5, 3, 2), trajectory_seed(5, 3, 2));
}

TEST(InferRunner, RestoresTrainingModeAndCountsEveryTrajectoryOnce) {
  auto m = tiny_model(0.01);
  m->train();
  const PuzzleSet ps = tiny_puzzles();
  int64_t calls = 0;
  std::set<int64_t> seen;
  run(m, ps, opts({2}, 2, 4), [&](PuzzleResult&& pr) {
    ++calls;
    seen.insert(pr.puzzle);
  });
  EXPECT_TRUE(m->is_training());
  EXPECT_EQ(calls, ps.size());
  EXPECT_EQ(static_cast<int64_t>(seen.size()), ps.size());
}

}  // namespace
}  // namespace eqr::infer
