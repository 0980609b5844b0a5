// dist::ProcessGroup's collectives under mpirun: every op, dtype and size (0, 1, odd, 64 MiB)
// against the same reduction computed locally from every rank's (known) data, the asynchronous
// forms, non-contiguous tensors, all_reduce_sum on the tape, and the errors. Rank r's data is
// small integers made from (r, i), so sums, maxima and means over two ranks are exact.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "core/autograd.h"
#include "dist/process_group.h"
#include "ops/elementwise.h"
#include "ops/factory.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "support/dist_data.h"

using namespace convtape;
using ct_test::expected_reduction;
using ct_test::rank_data;

namespace {

bool same_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         a.to(kFloat64).to_vector<double>() == b.to(kFloat64).to_vector<double>();
}

}  // namespace

TEST_CASE("dist: ranks come from the launcher") {
  REQUIRE(dist::is_initialized());
  REQUIRE(dist::world_size() >= 1);
  REQUIRE(dist::rank() >= 0);
  REQUIRE(dist::rank() < dist::world_size());
  REQUIRE(dist::local_rank() >= 0);
  REQUIRE(dist::local_rank() < dist::local_world_size());
  REQUIRE(dist::local_world_size() <= dist::world_size());
  REQUIRE_THROWS_WITH(dist::init(), Catch::Contains("dist::init: expected the first call in this "
                                                    "process, got a second call"));
}

TEST_CASE("dist: all_reduce of every op, dtype and size matches the local computation") {
  const std::int64_t big32 = 16 * 1024 * 1024;  // 64 MiB of float32
  for (DType dtype : {kFloat32, kFloat64, kInt64}) {
    const std::int64_t big = dtype == kFloat32 ? big32 : big32 / 2;  // 64 MiB either way
    for (std::int64_t n : {std::int64_t{0}, std::int64_t{1}, std::int64_t{1001}, big}) {
      for (auto op : {dist::ReduceOp::Sum, dist::ReduceOp::Mean, dist::ReduceOp::Max}) {
        INFO(dtype_name(dtype) << " n=" << n << " op=" << dist::to_string(op));
        Tensor t = rank_data(dist::rank(), n, dtype);
        dist::all_reduce(t, op);
        REQUIRE(same_values(t, expected_reduction(op, n, dtype)));
      }
    }
  }
}

TEST_CASE("dist: asynchronous collectives complete in any order of waiting") {
  std::vector<Tensor> ts;
  std::vector<dist::Work> works;
  for (int k = 0; k < 4; ++k) {
    ts.push_back(rank_data(dist::rank(), 5000 + k, kFloat64));
    works.push_back(dist::all_reduce_async(ts.back(), dist::ReduceOp::Sum));
  }
  for (int k = 3; k >= 0; --k) {
    works[static_cast<std::size_t>(k)].wait();
    REQUIRE(works[static_cast<std::size_t>(k)].is_completed());
    REQUIRE(works[static_cast<std::size_t>(k)].seconds() >= 0.0);
    REQUIRE(same_values(ts[static_cast<std::size_t>(k)],
                        expected_reduction(dist::ReduceOp::Sum, 5000 + k, kFloat64)));
  }
  works[0].wait();  // twice is fine
  REQUIRE(dist::Work().is_completed());
}

TEST_CASE("dist: a non-contiguous tensor is reduced in place") {
  Tensor base = reshape(rank_data(dist::rank(), 12, kFloat32), {3, 4});
  Tensor t = transpose(base, 0, 1);  // a view: the result must land in base
  REQUIRE_FALSE(t.is_contiguous());
  dist::all_reduce(t, dist::ReduceOp::Sum);
  REQUIRE(same_values(reshape(base, {12}), expected_reduction(dist::ReduceOp::Sum, 12, kFloat32)));
}

TEST_CASE("dist: broadcast from every root and all_gather in rank order, up to 64 MiB") {
  const int w = dist::world_size();
  for (DType dtype : {kFloat32, kFloat64, kInt64}) {
    const std::int64_t big = 64 * 1024 * 1024 / static_cast<std::int64_t>(dtype_size(dtype));
    for (std::int64_t n : {std::int64_t{0}, std::int64_t{1}, std::int64_t{777}, big}) {
      for (int root = 0; root < w; ++root) {
        Tensor t = rank_data(dist::rank(), n, dtype);
        dist::broadcast(t, root);
        REQUIRE(same_values(t, rank_data(root, n, dtype)));
      }
      const Tensor all = dist::all_gather(reshape(rank_data(dist::rank(), n, dtype), {1, n}));
      REQUIRE(all.shape() == Shape{w, 1, n});
      for (int r = 0; r < w; ++r)
        REQUIRE(same_values(reshape(narrow(all, 0, r, 1), {n}), rank_data(r, n, dtype)));
    }
  }
  dist::barrier();
}

TEST_CASE("dist: bytes gathered and broadcast for the library's own agreements") {
  auto& g = dist::ProcessGroup::world();
  std::vector<std::uint8_t> mine(static_cast<std::size_t>(g.rank() * 3 + 1),
                                 static_cast<std::uint8_t>(g.rank() + 1));
  const auto all = g.all_gather_bytes(mine);
  REQUIRE(static_cast<int>(all.size()) == g.size());
  for (int r = 0; r < g.size(); ++r)
    REQUIRE(all[static_cast<std::size_t>(r)] ==
            std::vector<std::uint8_t>(static_cast<std::size_t>(r * 3 + 1),
                                      static_cast<std::uint8_t>(r + 1)));
  std::vector<std::uint8_t> b =
      g.rank() == 0 ? std::vector<std::uint8_t>{9, 8, 7} : std::vector<std::uint8_t>{};
  g.broadcast_bytes(b, 0);
  REQUIRE(b == std::vector<std::uint8_t>{9, 8, 7});
}

TEST_CASE("dist: all_reduce_sum is differentiable: the gradient is the sum of the ranks'") {
  const int w = dist::world_size();
  Tensor x = rank_data(dist::rank(), 6, kFloat64).requires_grad_();
  const Tensor y = dist::all_reduce_sum(x);
  REQUIRE(same_values(y.detach(), expected_reduction(dist::ReduceOp::Sum, 6, kFloat64)));
  // Rank r's loss weighs y by (r + 1): the total loss's gradient for every x is sum_r (r + 1).
  sum(mul(y, static_cast<double>(dist::rank() + 1))).backward();
  REQUIRE(same_values(x.grad(), full({6}, w * (w + 1) / 2.0, kFloat64)));
}

TEST_CASE("dist: bad arguments are refused before any communication") {
  auto& g = dist::ProcessGroup::world();
  Tensor p = zeros({3}).requires_grad_();
  REQUIRE_THROWS_WITH(g.all_reduce(p), Catch::Contains("all_reduce: expected a tensor that does "
                                                       "not require grad"));
  REQUIRE_THROWS_WITH(g.all_reduce(Tensor()),
                      Catch::Contains("all_reduce: expected a tensor, got an undefined one"));
  REQUIRE_THROWS_WITH(
      g.broadcast(zeros({2}), g.size()),
      Catch::Contains(
          fmt::format("broadcast: expected a root rank in [0, {}), got {}", g.size(), g.size())));
  REQUIRE_THROWS_WITH(g.broadcast(zeros({2}), -1), Catch::Contains("got -1"));
  REQUIRE_THROWS_WITH(g.all_gather_async(zeros({2}), zeros({2})),
                      Catch::Contains("all_gather: expected a contiguous output"));
  {
    NoGradGuard no_grad;  // allowed then: the library's own broadcasts of parameters
    g.broadcast(p, 0);
  }
}

TEST_CASE("dist: a failure inside MPI is an Error naming the call and MPI's own message") {
  if (dist::world_size() < 2) return;
  // Rank 0 broadcasts 64 elements where the others expect 4: MPI reports the truncation to them
  // (its error handler returns codes on the group's communicator instead of ending the job).
  Tensor t = zeros({dist::rank() == 0 ? 64 : 4});
  if (dist::rank() == 0) {
    dist::broadcast(t, 0);
  } else {
    REQUIRE_THROWS_WITH(dist::broadcast(t, 0),
                        Catch::Contains("broadcast: expected MPI_Bcast to succeed, got the MPI "
                                        "error '") &&
                            Catch::Contains("TRUNCATE"));
  }
  dist::barrier();  // the group goes on working
  Tensor ok = full({3}, 1.0);
  dist::all_reduce(ok);
  REQUIRE(ok.to_vector<float>() == std::vector<float>(3, static_cast<float>(dist::world_size())));
}
