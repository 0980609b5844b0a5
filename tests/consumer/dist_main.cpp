// The outside project's data-parallel program (-DCONSUMER_DIST_COMPONENT=ON): it finds the
// installed package's "dist" component, and under mpirun every rank all-reduces a tensor and takes
// one DistributedDataParallel step; the ranks must end with identical parameters.
#include <cstdio>
#include <memory>

#include <convtape.h>
#include <dist/ddp.h>

using namespace convtape;

int main() {
  try {
    dist::init();
    Tensor t = full({4}, static_cast<double>(dist::rank() + 1));
    dist::all_reduce(t);
    const int w = dist::world_size();
    CT_CHECK(t.to_vector<float>()[0] == static_cast<float>(w * (w + 1) / 2),
             "consumer: expected the sum of 1..{}, got {}", w, t.to_vector<float>()[0]);
    manual_seed(static_cast<std::uint64_t>(dist::rank()));  // different starts: DDP aligns them
    auto ddp = std::make_shared<nn::DistributedDataParallel>(std::make_shared<nn::Linear>(3, 2));
    optim::SGD sgd(ddp->parameters(), optim::SGDOptions(0.1));
    sum((*ddp)(randn({5, 3}))).backward();
    sgd.step();
    for (const Tensor& p : ddp->parameters()) {
      const Tensor all = dist::all_gather(p.detach());
      for (int r = 1; r < w; ++r)
        CT_CHECK(max(abs(sub(narrow(all, 0, r, 1), narrow(all, 0, 0, 1)))).item() == 0.0,
                 "consumer: expected identical replicas, got a difference on rank {}", r);
    }
    std::printf("consumer: dist rank %d of %d: ok\n", dist::rank(), w);
    dist::finalize();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
}
