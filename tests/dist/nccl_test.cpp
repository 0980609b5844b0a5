// The NCCL engine (dist/nccl_engine.cpp, libconvtape_nccl.so) under mpirun, one rank per GPU (rank
// uses device local_rank() % device_count()): all_reduce sum / mean / max of float32, float64 (and
// int64) CUDA tensors of 0, 1 and 1000003 elements against the reduction computed on the CPU from
// every rank's known data, broadcast from every root, all_gather in rank order, asynchronous
// collectives, a non-contiguous tensor, a DistributedDataParallel step on CUDA parameters against
// the same step on the CPU, and the ordering on the kernels' stream (an input written
// by a kernel just before the collective, a result read by a kernel just after). Rank r's data are
// small integers made from (r, i): sums, maxima and means over two ranks are exact; means over
// more ranks get a float tolerance (NCCL's average multiplies by 1 / size before summing).
// Without a GPU on every rank, or with fewer GPUs on a machine than ranks on it (NCCL puts at most
// one rank on a GPU), rank 0 prints one "convtape-skip: " line and every test case returns.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/random.h"
#include "cuda/cuda.h"
#include "dist/ddp.h"
#include "dist/process_group.h"
#include "modules/activation.h"
#include "modules/conv.h"
#include "modules/linear.h"
#include "modules/sequential.h"
#include "ops/elementwise.h"
#include "ops/factory.h"
#include "ops/loss.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "support/dist_data.h"
#include "support/test_util.h"

using namespace convtape;
using ct_test::expected_reduction;
using ct_test::rank_data;
using ct_test::rank_values;

namespace {

constexpr std::int64_t kBig = 1000003;  // odd and past one NCCL chunk

// Decided once, identically on every rank (a rank that skipped while another entered a collective
// would hang the job): this rank's device, or -1 when the test is skipped.
int choose_device() {
  const bool available = cuda::is_available();
  const int count = available ? cuda::device_count() : 0;
  const bool too_few = available && count < dist::local_world_size();
  Tensor missing = full({}, available ? 0.0 : 1.0, kInt64);
  Tensor short_of = full({}, too_few ? 1.0 : 0.0, kInt64);
  dist::all_reduce(missing, dist::ReduceOp::Max);  // over MPI: CPU tensors
  dist::all_reduce(short_of, dist::ReduceOp::Max);
  std::string why;
  if (missing.item() != 0.0)
    why = available ? "NCCL needs a CUDA device on every rank, got none on another rank"
                    : fmt::format("NCCL needs a CUDA device on every rank: {}",
                                  cuda::unavailable_reason());
  else if (short_of.item() != 0.0)
    why = too_few ? fmt::format(
                        "NCCL needs one GPU per rank, got {} CUDA device(s) for the {} "
                        "ranks on this machine",
                        count, dist::local_world_size())
                  : "NCCL needs one GPU per rank, got fewer GPUs than ranks on another machine";
  if (!why.empty()) {
    if (dist::rank() == 0) {
      std::printf("convtape-skip: dist_nccl_test: %s\n", why.c_str());
      std::fflush(stdout);
    }
    return -1;
  }
  return dist::local_rank() % count;
}

int test_device() {
  static const int device = choose_device();
  return device;
}

Tensor on_gpu(const std::vector<double>& v, DType dtype) {
  return tensor(v, {static_cast<std::int64_t>(v.size())}, dtype).to(Device::cuda(test_device()));
}

// Exact for integers and for sums and maxima of small integers; float tolerances for NCCL's mean.
bool matches(const Tensor& got, const Tensor& want, bool exact) {
  REQUIRE(got.is_cuda());
  REQUIRE(got.device().index() == test_device());
  const Tensor host = got.cpu();
  if (host.shape() != want.shape() || host.dtype() != want.dtype()) return false;
  if (exact || want.dtype() == kInt64)
    return host.to(kFloat64).to_vector<double>() == want.to(kFloat64).to_vector<double>();
  const double tol = want.dtype() == kFloat32 ? 1e-5 : 1e-12;
  return ct_test::allclose(host, want, tol, tol);
}

}  // namespace

TEST_CASE("nccl: all_reduce of every op, float dtype and size matches the CPU computation") {
  if (test_device() < 0) return;
  for (DType dtype : {kFloat32, kFloat64}) {
    for (std::int64_t n : {std::int64_t{0}, std::int64_t{1}, kBig}) {
      for (auto op : {dist::ReduceOp::Sum, dist::ReduceOp::Mean, dist::ReduceOp::Max}) {
        INFO(dtype_name(dtype) << " n=" << n << " op=" << dist::to_string(op));
        Tensor t = on_gpu(rank_values(dist::rank(), n), dtype);
        dist::all_reduce(t, op);
        const bool exact = op != dist::ReduceOp::Mean || dist::world_size() <= 2;
        REQUIRE(matches(t, expected_reduction(op, n, dtype), exact));
      }
    }
  }
}

TEST_CASE("nccl: all_reduce of int64 truncates the mean as the MPI engine does") {
  if (test_device() < 0) return;
  for (auto op : {dist::ReduceOp::Sum, dist::ReduceOp::Mean, dist::ReduceOp::Max}) {
    INFO("op=" << dist::to_string(op));
    Tensor t = on_gpu(rank_values(dist::rank(), 1001), kInt64);
    dist::all_reduce(t, op);
    REQUIRE(matches(t, expected_reduction(op, 1001, kInt64), true));
    // The same data through MPI on the CPU: the two engines agree.
    Tensor c = rank_data(dist::rank(), 1001, kInt64);
    dist::all_reduce(c, op);
    REQUIRE(matches(t, c, true));
  }
}

TEST_CASE("nccl: collectives are ordered after the kernels that wrote their input") {
  if (test_device() < 0) return;
  const Device gpu = Device::cuda(test_device());
  for (int round = 0; round < 3; ++round) {
    // A kernel writes the input and the collective is requested at once, with no synchronisation
    // in between; a kernel reads the result at once too.
    Tensor x = rank_data(dist::rank(), kBig, kFloat32).to(gpu);
    Tensor t = mul(add(x, 1.0), 2.0);
    dist::all_reduce(t, dist::ReduceOp::Sum);
    const Tensor y = add(t, -2.0 * dist::world_size());
    std::vector<double> want =
        expected_reduction(dist::ReduceOp::Sum, kBig, kFloat64).to_vector<double>();
    for (double& v : want) v *= 2.0;
    REQUIRE(matches(y, tensor(want, {kBig}, kFloat32), true));
  }
}

TEST_CASE("nccl: broadcast from every root") {
  if (test_device() < 0) return;
  const int w = dist::world_size();
  for (DType dtype : {kFloat32, kFloat64, kInt64}) {
    for (std::int64_t n : {std::int64_t{0}, std::int64_t{1}, kBig}) {
      for (int root = 0; root < w; ++root) {
        INFO(dtype_name(dtype) << " n=" << n << " root=" << root);
        Tensor t = on_gpu(rank_values(dist::rank(), n), dtype);
        dist::broadcast(t, root);
        REQUIRE(matches(t, rank_data(root, n, dtype), true));
      }
    }
  }
}

TEST_CASE("nccl: all_gather in rank order") {
  if (test_device() < 0) return;
  const int w = dist::world_size();
  for (DType dtype : {kFloat32, kFloat64}) {
    for (std::int64_t n : {std::int64_t{0}, std::int64_t{1}, kBig}) {
      INFO(dtype_name(dtype) << " n=" << n);
      const Tensor all = dist::all_gather(on_gpu(rank_values(dist::rank(), n), dtype));
      REQUIRE(all.shape() == Shape{w, n});
      for (int r = 0; r < w; ++r)
        REQUIRE(matches(reshape(narrow(all, 0, r, 1), {n}), rank_data(r, n, dtype), true));
    }
  }
}

TEST_CASE("nccl: asynchronous collectives and a non-contiguous tensor") {
  if (test_device() < 0) return;
  std::vector<Tensor> ts;
  std::vector<dist::Work> works;
  for (int k = 0; k < 4; ++k) {
    ts.push_back(on_gpu(rank_values(dist::rank(), 5000 + k), kFloat64));
    works.push_back(dist::all_reduce_async(ts.back(), dist::ReduceOp::Sum));
  }
  for (int k = 3; k >= 0; --k) {
    const auto i = static_cast<std::size_t>(k);
    works[i].wait();
    REQUIRE(works[i].is_completed());
    REQUIRE(matches(ts[i], expected_reduction(dist::ReduceOp::Sum, 5000 + k, kFloat64), true));
  }
  Tensor base = reshape(on_gpu(rank_values(dist::rank(), 12), kFloat32), {3, 4});
  Tensor t = transpose(base, 0, 1);  // a view: the result must land in base
  REQUIRE_FALSE(t.is_contiguous());
  dist::all_reduce(t, dist::ReduceOp::Sum);
  REQUIRE(
      matches(reshape(base, {12}), expected_reduction(dist::ReduceOp::Sum, 12, kFloat32), true));
  dist::barrier();
}

TEST_CASE("nccl: a DistributedDataParallel step on CUDA averages the ranks' gradients") {
  if (test_device() < 0) return;
  const Device gpu = Device::cuda(test_device());
  const auto make = [] {
    auto m = std::make_shared<nn::Sequential>();
    m->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 4, 3).padding(1)));
    m->push_back(std::make_shared<nn::ReLU>());
    m->push_back(std::make_shared<nn::Flatten>());
    m->push_back(std::make_shared<nn::Linear>(4 * 6 * 6, 3));
    return m;
  };
  manual_seed(21);
  auto reference = make();  // every rank's batch, on the CPU, in float64
  reference->to(kFloat64);
  auto model = make();
  model->to(kFloat64);
  model->load_state_dict(reference->state_dict());
  model->to(gpu);
  auto ddp = std::make_shared<nn::DistributedDataParallel>(
      model, nn::DistributedDataParallelOptions().first_bucket_cap_mb(0.0001).bucket_cap_mb(0.001));
  const int w = dist::world_size();
  Generator gen(5);
  const Tensor x = randn({4 * w, 1, 6, 6}, kFloat64, &gen);
  sum((*ddp)(narrow(x, 0, 4 * dist::rank(), 4).to(gpu))).backward();
  sum((*reference)(x)).backward();
  const auto got = model->parameters();
  const auto want = reference->parameters();
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    REQUIRE(got[i].grad().is_cuda());
    // The mean over ranks of per-rank sums is the full batch's sum divided by the ranks.
    REQUIRE(ct_test::allclose(got[i].grad().cpu(), div(want[i].grad(), w), 1e-10, 1e-12));
  }
}
