// nn::SyncBatchNorm: BatchNormNd with its training batch statistics reduced over every rank
// (n = S(count), mean = S(sum x) / n, var = S(sum (x - mean)^2) / n, S = all-reduce on the tape),
// and convert(), which swaps BatchNorm1d / 2d / 3d for it in a module tree. See sync_batchnorm.h.
#include "dist/sync_batchnorm.h"

#include <limits>
#include <string>
#include <typeinfo>
#include <utility>

#include "core/autograd.h"
#include "dist/process_group.h"
#include "modules/sequential.h"
#include "ops/elementwise.h"
#include "ops/factory.h"
#include "ops/reduce.h"

namespace convtape::nn {

SyncBatchNorm::SyncBatchNorm(const BatchNormOptions& options)
    : BatchNormNd(options, "SyncBatchNorm", 2, std::numeric_limits<std::int64_t>::max(),
                  "[N, C, *spatial]") {}

BatchNormNd::Moments SyncBatchNorm::batch_moments(const Tensor& x,
                                                  const std::vector<std::int64_t>& dims) {
  // Eval without running statistics normalises each rank's batch by itself, as in PyTorch.
  if (!is_training()) return BatchNormNd::batch_moments(x, dims);
  // The count is known on the host: reducing it over MPI reads nothing back from a device.
  const std::int64_t local = x.numel() / options().num_features();
  const Tensor count = full({}, static_cast<double>(local), kInt64);
  dist::all_reduce(count);
  const auto n = count.item<std::int64_t>();
  // Every rank sees the same n, so every rank throws here (none is left waiting in a collective).
  CT_CHECK(n > 1,
           "SyncBatchNorm: expected more than 1 value per channel over all ranks in training, got "
           "{} (input {} on rank {})",
           n, to_string(x.shape()), dist::rank());
  const double total = static_cast<double>(n);
  Moments m;
  m.mean = div(dist::all_reduce_sum(sum(x, dims, /*keepdim=*/true)), total);
  m.centred = sub(x, m.mean);
  m.var = div(dist::all_reduce_sum(sum(mul(m.centred, m.centred), dims, /*keepdim=*/true)), total);
  m.count = n;
  return m;
}

namespace {

bool is_batchnorm(const Module& m) {
  return dynamic_cast<const BatchNorm1d*>(&m) != nullptr ||
         dynamic_cast<const BatchNorm2d*>(&m) != nullptr ||
         dynamic_cast<const BatchNorm3d*>(&m) != nullptr;
}

std::shared_ptr<Module> to_sync(const BatchNormNd& bn) {
  auto sync = std::make_shared<SyncBatchNorm>(bn.options());
  NamedTensors own = bn.named_parameters(/*recurse=*/false);
  for (auto& entry : bn.named_buffers(/*recurse=*/false)) own.push_back(entry);
  for (const auto& [name, t] : own) {
    if (!t.is_floating_point()) continue;
    sync->to(t.dtype());
    sync->to(t.device());
    break;
  }
  sync->load_state_dict(bn.state_dict());
  const std::vector<Tensor> from = bn.parameters(/*recurse=*/false);
  const std::vector<Tensor> to = sync->parameters(/*recurse=*/false);
  for (std::size_t i = 0; i < from.size() && i < to.size(); ++i) {
    Tensor p = to[i];
    p.requires_grad_(from[i].requires_grad());
  }
  sync->train(bn.is_training());
  return sync;
}

using Memo = std::vector<std::pair<const Module*, std::shared_ptr<Module>>>;

std::shared_ptr<Module> convert_tree(const std::shared_ptr<Module>& m, const std::string& path,
                                     Memo& memo) {
  for (const auto& [from, to] : memo)
    if (from == m.get()) return to;
  std::shared_ptr<Module> out = m;
  const Module& self = *m;
  if (is_batchnorm(self)) {
    out = to_sync(static_cast<const BatchNormNd&>(self));
  } else if (typeid(self) == typeid(Sequential)) {
    // Sequential keeps its own list beside the registered children: rebuild it rather than edit.
    NamedModules children;
    bool changed = false;
    for (const auto& [name, child] : m->named_children()) {
      std::shared_ptr<Module> c =
          convert_tree(child, path.empty() ? name : path + "." + name, memo);
      changed = changed || c != child;
      children.emplace_back(name, std::move(c));
    }
    if (changed) {
      auto seq = std::make_shared<Sequential>();
      seq->train(m->is_training());  // before the children, whose own flags stay theirs
      for (const auto& [name, child] : children) seq->push_back(name, child);
      out = seq;
    }
  } else {
    for (const auto& [name, sub] : m->named_modules(path))
      CT_CHECK(sub == m || !is_batchnorm(*sub),
               "SyncBatchNorm::convert: expected BatchNorm layers only inside Sequential "
               "containers, got {} '{}' inside a {} (which may call it through its own pointer; "
               "build that module with SyncBatchNorm instead)",
               sub->type_name(), name, m->type_name());
  }
  memo.emplace_back(m.get(), out);
  return out;
}

}  // namespace

std::shared_ptr<Module> SyncBatchNorm::convert(std::shared_ptr<Module> module) {
  CT_CHECK(module != nullptr, "SyncBatchNorm::convert: expected a module, got nullptr");
  Memo memo;
  return convert_tree(module, "", memo);
}

}  // namespace convtape::nn
