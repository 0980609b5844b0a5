// TensorDataset, Normalize and FashionMNIST: examples as views of the stored tensors, per-channel
// normalisation, and the real data set from Debian's path (skipped, visibly, where it is absent),
// plus a small fake copy read from another root.
#include <filesystem>

#include "data/dataset.h"
#include "io/file_helpers.h"
#include "support/test_util.h"

using namespace convtape;
using convtape::data::FashionMNIST;
using convtape::data::Normalize;
using convtape::data::TensorDataset;

namespace {

std::vector<std::uint8_t> idx_header(std::uint8_t rank, const std::vector<std::uint32_t>& dims) {
  std::vector<std::uint8_t> b = {0, 0, 0x08, rank};
  for (const std::uint32_t d : dims)
    for (int i = 3; i >= 0; --i) b.push_back(static_cast<std::uint8_t>(d >> (8 * i)));
  return b;
}

// A Fashion-MNIST lookalike with n images (image i is filled with the value 10 * i) and the given
// labels.
void write_fake_split(const ct_test::TempDir& dir, const std::string& prefix,
                      const std::vector<std::uint8_t>& labels, bool gzipped) {
  const auto n = static_cast<std::uint32_t>(labels.size());
  auto images = idx_header(3, {n, 28, 28});
  for (std::uint32_t i = 0; i < n; ++i) images.insert(images.end(), 784, std::uint8_t(10 * i));
  auto label_file = idx_header(1, {n});
  label_file.insert(label_file.end(), labels.begin(), labels.end());
  const std::string suffix = gzipped ? ".gz" : "";
  ct_test::write_bytes(dir.file(prefix + "-images-idx3-ubyte" + suffix),
                       gzipped ? ct_test::gzip(images) : images);
  ct_test::write_bytes(dir.file(prefix + "-labels-idx1-ubyte" + suffix),
                       gzipped ? ct_test::gzip(label_file) : label_file);
}

}  // namespace

TEST_CASE("a TensorDataset's examples are rows of its tensors", "[dataset]") {
  const Tensor x = arange(24).reshape({4, 2, 3});
  const Tensor y = from_vector(std::vector<std::int64_t>{3, 1, 4, 1}, {4});
  const TensorDataset ds(x, y);
  CHECK(ds.size() == 4);
  const auto e = ds.get(2);
  CHECK(e.data.shape() == Shape{2, 3});
  CHECK(e.data.to_vector<float>() == std::vector<float>{12, 13, 14, 15, 16, 17});
  CHECK(e.target.dim() == 0);
  CHECK(e.target.item<std::int64_t>() == 4);
  REQUIRE(ds.stacked() != nullptr);
  CHECK(ds.stacked()->data.same(ds.data()));
  CHECK(ds.data().storage() == x.storage());  // contiguous CPU data is shared, not copied

  const TensorDataset strided(x.transpose(1, 2), y);  // a view is stored contiguous
  CHECK(strided.data().is_contiguous());
  CHECK(strided.get(1).data.to_vector<float>() == std::vector<float>{6, 9, 7, 10, 8, 11});

  CT_REQUIRE_ERROR(ds.get(4), "TensorDataset: expected an index in [0, 4), got 4");
  CT_REQUIRE_ERROR(ds.get(-1), "TensorDataset: expected an index in [0, 4), got -1");
  CT_REQUIRE_ERROR(TensorDataset(x, zeros({3})),
                   "TensorDataset: expected targets [N, ...] with N = 4 (data [4, 2, 3]), got [3]");
  CT_REQUIRE_ERROR(TensorDataset(tensor({1.0}, Shape{}), zeros({1})),
                   "TensorDataset: expected data [N, ...], got shape []");
}

TEST_CASE("Normalize subtracts each channel's mean and divides by its std", "[dataset]") {
  // [B = 2, C = 2, 2]: channel 0 holds 1..4 and 9..12 around mean 2, channel 1 around mean -1.
  const Tensor x = tensor({1, 2, 5, 7, 9, 10, 11, 12}, {2, 2, 2}, kFloat64);
  const Normalize norm({2.0, -1.0}, {0.5, 4.0});
  const Tensor y = norm(x);
  CHECK(y.to_vector<double>() == std::vector<double>{-2.0, 0.0, 1.5, 2.0, 14.0, 16.0, 3.0, 3.25});
  CHECK(x.to_vector<double>() == std::vector<double>{1, 2, 5, 7, 9, 10, 11, 12});  // untouched

  // One mean and std for every channel; float32 data; a strided input.
  const Tensor f = tensor({0, 255, 51, 102}, {2, 2});
  const Tensor g = Normalize({51.0}, {51.0})(f.t());
  CHECK(g.to_vector<float>() == std::vector<float>{-1, 0, 4, 1});

  CT_REQUIRE_ERROR(Normalize({0.0, 1.0}, {1.0}),
                   "Normalize: expected as many means as standard deviations (at least one), "
                   "got 2 and 1");
  CT_REQUIRE_ERROR(Normalize({0.0}, {0.0}),
                   "Normalize: expected a finite mean and a positive standard deviation, got mean "
                   "0 and std 0 for channel 0");
  CT_REQUIRE_ERROR(norm(zeros({2, 3, 4})),
                   "Normalize: expected data with 2 channels (dim 1) for Normalize's 2 means, "
                   "got shape [2, 3, 4]");
  CT_REQUIRE_ERROR(norm(zeros({2, 2}, kInt64)),
                   "Normalize: expected float32 or float64 data to normalise, got int64");
  CT_REQUIRE_ERROR(norm.apply_(x.transpose(1, 2)), "expected a contiguous CPU tensor");
}

TEST_CASE("FashionMNIST reads another root, gzipped or not, and says what is missing",
          "[dataset]") {
  ct_test::TempDir dir;
  write_fake_split(dir, "train", {3, 0, 9}, /*gzipped=*/true);
  write_fake_split(dir, "t10k", {7, 1}, /*gzipped=*/false);
  CHECK(FashionMNIST::available(dir.path().string(), true));
  CHECK(FashionMNIST::available(dir.path().string(), false));

  const FashionMNIST train(dir.path().string());
  REQUIRE(train.size() == 3);
  CHECK(train.data().shape() == Shape{3, 1, 28, 28});
  CHECK(train.data().dtype() == kFloat32);
  CHECK(train.targets().dtype() == kInt64);
  CHECK(train.targets().to_vector<std::int64_t>() == std::vector<std::int64_t>{3, 0, 9});
  CHECK(train.get(2).data.max().item() == Approx(20.0 / 255.0));
  CHECK(train.get(0).data.max().item() == 0.0);
  const FashionMNIST test(dir.path().string(), false);
  CHECK(test.size() == 2);
  CHECK(test.targets().to_vector<std::int64_t>() == std::vector<std::int64_t>{7, 1});
  CHECK(FashionMNIST::kClasses[9] == "Ankle boot");

  ct_test::TempDir empty;
  CHECK_FALSE(FashionMNIST::available(empty.path().string()));
  CT_REQUIRE_ERROR(FashionMNIST(empty.path().string()),
                   "FashionMNIST: expected train-images-idx3-ubyte.gz (or train-images-idx3-ubyte) "
                   "in " +
                       empty.path().string() +
                       ", got no such file (install Debian's dataset-fashion-mnist");

  ct_test::TempDir wrong;
  write_fake_split(wrong, "train", {3, 10}, true);
  CT_REQUIRE_ERROR(FashionMNIST(wrong.path().string()),
                   "FashionMNIST: expected labels in [0, 10), got 10 at index 1");
  std::filesystem::rename(wrong.file("train-labels-idx1-ubyte.gz"), wrong.file("x"));
  write_fake_split(wrong, "t10k", {3, 1, 2}, true);  // three labels for ...
  std::filesystem::rename(wrong.file("t10k-labels-idx1-ubyte.gz"),
                          wrong.file("train-labels-idx1-ubyte.gz"));  // ... two training images
  CT_REQUIRE_ERROR(FashionMNIST(wrong.path().string()),
                   "FashionMNIST: expected 2 labels (one per image), got 3");
}

TEST_CASE("FashionMNIST loads from Debian's path", "[dataset][fashion]") {
  if (!FashionMNIST::available()) {
    WARN("SKIPPED: Fashion-MNIST is not installed at "
         << data::kFashionMnistRoot << " (Debian package dataset-fashion-mnist)");
    return;
  }
  const FashionMNIST train;
  REQUIRE(train.size() == 60000);
  CHECK(train.data().shape() == Shape{60000, 1, 28, 28});
  const auto labels = train.targets().to_vector<std::int64_t>();
  std::vector<int> per_class(10, 0);
  int out_of_range = 0;
  for (const std::int64_t l : labels) {
    if (l >= 0 && l <= 9)
      ++per_class[static_cast<std::size_t>(l)];
    else
      ++out_of_range;
  }
  CHECK(out_of_range == 0);
  CHECK(per_class == std::vector<int>(10, 6000));
  CHECK(labels[0] == 9);  // an ankle boot
  // The first image's pixel bytes sum to 76247 (checked once against Python's gzip module).
  const auto first = train.get(0).data.to_vector<float>();
  double sum = 0;
  for (const float v : first) sum += std::round(v * 255.0);
  CHECK(sum == 76247);
  CHECK(train.data().max().item() == 1.0);
  CHECK(train.data().min().item() == 0.0);

  const FashionMNIST test(std::string(data::kFashionMnistRoot), false);
  REQUIRE(test.size() == 10000);
  CHECK(test.targets().to_vector<std::int64_t>()[0] == 9);
  const auto test_first = test.get(0).data.to_vector<float>();
  sum = 0;
  for (const float v : test_first) sum += std::round(v * 255.0);
  CHECK(sum == 33456);
}
