// TensorDataset, the Fashion-MNIST loader and per-channel normalisation.
#include "data/dataset.h"

#include <cmath>
#include <filesystem>

#include "core/autograd.h"
#include "data/idx.h"

namespace convtape::data {

namespace {

constexpr std::int64_t kFashionSide = 28;
constexpr std::int64_t kFashionClasses = 10;

// root/stem.gz if present, else root/stem if present, else "".
std::string find_split_file(const std::string& root, const std::string& stem) {
  for (const std::string& name : {stem + ".gz", stem}) {
    const std::filesystem::path path = std::filesystem::path(root) / name;
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec)) return path.string();
  }
  return {};
}

std::string split_stem(bool train, std::string_view kind) {
  return fmt::format("{}-{}-ubyte", train ? "train" : "t10k", kind);
}

Example load_fashion_mnist(const std::string& root, bool train) {
  std::array<std::string, 2> paths;
  const std::array<std::string, 2> stems = {split_stem(train, "images-idx3"),
                                            split_stem(train, "labels-idx1")};
  for (std::size_t i = 0; i < 2; ++i) {
    paths[i] = find_split_file(root, stems[i]);
    CT_CHECK(!paths[i].empty(),
             "FashionMNIST: expected {}.gz (or {}) in {}, got no such file (install Debian's "
             "dataset-fashion-mnist, or pass the directory that holds the files)",
             stems[i], stems[i], root);
  }
  const IdxArray images = read_idx(paths[0]);
  const IdxArray labels = read_idx(paths[1]);
  CT_CHECK(images.type == IdxType::UInt8 && images.dims.size() == 3 &&
               images.dims[1] == kFashionSide && images.dims[2] == kFashionSide,
           "FashionMNIST: expected uint8 images [N, 28, 28], got {} {} in {}",
           idx_type_name(images.type), to_string(images.dims), paths[0]);
  CT_CHECK(labels.type == IdxType::UInt8 && labels.dims.size() == 1,
           "FashionMNIST: expected uint8 labels [N], got {} {} in {}", idx_type_name(labels.type),
           to_string(labels.dims), paths[1]);
  const std::int64_t n = images.dims[0];
  CT_CHECK(labels.dims[0] == n, "FashionMNIST: expected {} labels (one per image), got {} in {}", n,
           labels.dims[0], paths[1]);
  for (std::size_t i = 0; i < labels.bytes.size(); ++i)
    CT_CHECK(labels.bytes[i] < kFashionClasses,
             "FashionMNIST: expected labels in [0, {}), got {} at index {} in {}", kFashionClasses,
             labels.bytes[i], i, paths[1]);
  return {images.to_float_tensor(1.0 / 255.0).reshape({n, 1, kFashionSide, kFashionSide}),
          labels.to_int64_tensor()};
}

}  // namespace

TensorDataset::TensorDataset(const Tensor& data, const Tensor& targets) {
  CT_CHECK(data.defined() && targets.defined(),
           "TensorDataset: expected data and targets, got an undefined tensor");
  CT_CHECK(data.dim() >= 1, "TensorDataset: expected data [N, ...], got shape {}",
           to_string(data.shape()));
  CT_CHECK(targets.dim() >= 1 && targets.size(0) == data.size(0),
           "TensorDataset: expected targets [N, ...] with N = {} (data {}), got {}", data.size(0),
           to_string(data.shape()), to_string(targets.shape()));
  NoGradGuard no_grad;
  all_.data = data.detach().cpu().contiguous();
  all_.target = targets.detach().cpu().contiguous();
}

Example TensorDataset::get(std::int64_t index) const {
  CT_CHECK(index >= 0 && index < size(), "TensorDataset: expected an index in [0, {}), got {}",
           size(), index);
  return {all_.data.narrow(0, index, 1).squeeze(0), all_.target.narrow(0, index, 1).squeeze(0)};
}

FashionMNIST::FashionMNIST(const std::string& root, bool train)
    : FashionMNIST(load_fashion_mnist(root, train)) {}

bool FashionMNIST::available(const std::string& root, bool train) {
  return !find_split_file(root, split_stem(train, "images-idx3")).empty() &&
         !find_split_file(root, split_stem(train, "labels-idx1")).empty();
}

Normalize::Normalize(std::vector<double> mean, std::vector<double> stddev)
    : mean_(std::move(mean)), stddev_(std::move(stddev)) {
  CT_CHECK(!mean_.empty() && mean_.size() == stddev_.size(),
           "Normalize: expected as many means as standard deviations (at least one), got {} and {}",
           mean_.size(), stddev_.size());
  for (std::size_t c = 0; c < mean_.size(); ++c)
    CT_CHECK(std::isfinite(mean_[c]) && std::isfinite(stddev_[c]) && stddev_[c] > 0,
             "Normalize: expected a finite mean and a positive standard deviation, got mean {} "
             "and std {} for channel {}",
             mean_[c], stddev_[c], c);
}

void Normalize::check(const Tensor& x, std::string_view op) const {
  CT_CHECK(x.defined() && x.dim() >= 1, "{}: expected data [B, C, ...] to normalise, got {}", op,
           x.defined() ? to_string(x.shape()) : std::string("an undefined tensor"));
  CT_CHECK(x.is_floating_point(), "{}: expected float32 or float64 data to normalise, got {}", op,
           dtype_name(x.dtype()));
  const std::int64_t channels = x.dim() >= 2 ? x.size(1) : 1;
  CT_CHECK(mean_.size() == 1 || static_cast<std::int64_t>(mean_.size()) == channels,
           "{}: expected data with {} channels (dim 1) for Normalize's {} means, got shape {}", op,
           mean_.size(), mean_.size(), to_string(x.shape()));
}

void Normalize::apply_(const Tensor& x) const {
  check(x, "Normalize");
  if (x.numel() == 0) return;
  CT_CHECK(x.is_cpu() && x.is_contiguous() && !x.requires_grad(),
           "Normalize: expected a contiguous CPU tensor that does not require grad to normalise "
           "in place, got {}",
           x.is_cpu() ? (x.requires_grad() ? "one that requires grad" : "a strided view")
                      : "a CUDA tensor");
  const std::int64_t batch = x.size(0);
  const std::int64_t channels = x.dim() >= 2 ? x.size(1) : 1;
  const std::int64_t plane = x.numel() / (batch * channels);
  dispatch_floating(x.dtype(), [&]<class T>() {
    T* p = x.data_ptr<T>();
    for (std::int64_t b = 0; b < batch; ++b) {
      for (std::int64_t c = 0; c < channels; ++c, p += plane) {
        const std::size_t k = mean_.size() == 1 ? 0 : static_cast<std::size_t>(c);
        const double m = mean_[k], inv = 1.0 / stddev_[k];
        for (std::int64_t i = 0; i < plane; ++i)
          p[i] = static_cast<T>((static_cast<double>(p[i]) - m) * inv);
      }
    }
  });
  x.storage()->bump_version();
}

Tensor Normalize::operator()(const Tensor& x) const {
  check(x, "Normalize");
  NoGradGuard no_grad;
  Tensor y = x.detach().cpu().clone();
  apply_(y);
  return x.is_cpu() ? y : y.to(x.device());
}

}  // namespace convtape::data
