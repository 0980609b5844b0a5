// train_fashion_mnist's command line: every numeric flag is parsed in full and range-checked
// (non-positive --threads, a NaN --lr, "12abc" are errors naming the flag and the text), and the
// epoch count of a checkpoint is checked as the stored double before it becomes an int.
// --init-from's loader (fashion_mnist_models.h) refuses a file whose names, shapes or dtypes are
// not the model's, naming the file and the entries.
#include <limits>
#include <vector>

#include "examples/fashion_mnist_models.h"
#include "examples/train_fashion_mnist_args.h"
#include "io/file_helpers.h"
#include "io/safetensors.h"
#include "support/test_util.h"

using namespace convtape;
using train_fashion_mnist::checked_epoch;
using train_fashion_mnist::parse_args;
using train_fashion_mnist::ParseResult;

namespace {

ParseResult parse(std::vector<const char*> args) {
  args.insert(args.begin(), "train_fashion_mnist");
  return parse_args(static_cast<int>(args.size()), args.data());
}

std::string error_of(std::vector<const char*> args) {
  return parse(std::move(args)).error;
}

}  // namespace

TEST_CASE("valid flags are parsed into the settings", "[examples]") {
  const ParseResult r = parse({"--epochs",     "3",
                               "--batch-size", "128",
                               "--lr",         "1e-3",
                               "--momentum",   "0",
                               "--seed",       "18446744073709551615",
                               "--threads",    "2",
                               "--model",      "deep",
                               "--device",     "cuda",
                               "--csv",        "",
                               "--resume",     "a.ckpt"});
  REQUIRE(r.error.empty());
  CHECK_FALSE(r.help);
  CHECK(r.settings.epochs == 3);
  CHECK(r.settings.batch_size == 128);
  CHECK(r.settings.lr == 1e-3);
  CHECK(r.settings.momentum == 0.0);
  CHECK(r.settings.seed == std::numeric_limits<std::uint64_t>::max());
  CHECK(r.settings.threads == 2);
  CHECK(r.settings.model == "deep");
  CHECK(r.settings.device == "cuda");
  CHECK(r.settings.csv.empty());
  CHECK(r.settings.resume == "a.ckpt");
  CHECK(parse({"--epochs", "oops", "--help"}).error.find("--epochs") != std::string::npos);
  CHECK(parse({"--help"}).help);
  const ParseResult defaults = parse({});
  CHECK(defaults.error.empty());
  CHECK(defaults.settings.threads == 0);  // OpenMP's default
  CHECK(train_fashion_mnist::usage_text().find("--threads N") != std::string::npos);
}

TEST_CASE("every numeric flag is refused when it is not a number in range", "[examples]") {
  CHECK(error_of({"--threads", "-5"}) ==
        "train_fashion_mnist: expected --threads to be an integer from 1 to 4096, got '-5' (try "
        "--help)");
  CHECK(error_of({"--threads", "0"}).find("--threads to be an integer from 1") !=
        std::string::npos);
  CHECK(error_of({"--threads", "99999"}).find("got '99999'") != std::string::npos);
  CHECK(error_of({"--epochs", "0"}) ==
        "train_fashion_mnist: expected --epochs to be an integer from 1 to 1000000, got '0' (try "
        "--help)");
  CHECK(error_of({"--epochs", "12abc"}).find("got '12abc'") != std::string::npos);
  CHECK(error_of({"--epochs", "4294967297"}).find("got '4294967297'") != std::string::npos);
  CHECK(error_of({"--batch-size", "-1"}).find("--batch-size to be an integer from 1 to") !=
        std::string::npos);
  CHECK(error_of({"--batch-size", " 64"}).find("got ' 64'") != std::string::npos);
  CHECK(error_of({"--seed", "-1"}) ==
        "train_fashion_mnist: expected --seed to be an integer from 0 to 18446744073709551615, got "
        "'-1' (try --help)");
  CHECK(error_of({"--seed", "18446744073709551616"}).find("--seed") != std::string::npos);
  for (const char* lr : {"0", "-0.1", "nan", "inf", "1e999", "0.1x", ""}) {
    INFO(lr);
    CHECK(error_of({"--lr", lr}) == fmt::format("train_fashion_mnist: expected --lr to be a finite "
                                                "number > 0, got '{}' (try --help)",
                                                lr));
  }
  CHECK(error_of({"--momentum", "-0.5"}) ==
        "train_fashion_mnist: expected --momentum to be a finite number >= 0, got '-0.5' (try "
        "--help)");
  CHECK(error_of({"--model", "huge"}) ==
        "train_fashion_mnist: expected --model small or deep, got 'huge'");
  CHECK(error_of({"--device", "tpu"}) ==
        "train_fashion_mnist: expected --device cpu or cuda, got 'tpu'");
  CHECK(error_of({"--frobnicate", "1"}) ==
        "train_fashion_mnist: unknown option --frobnicate (try --help)");
  CHECK(error_of({"--epochs"}) == "train_fashion_mnist: --epochs needs a value (try --help)");
}

TEST_CASE("a checkpoint's epoch count is checked before the cast to int", "[examples]") {
  CHECK(checked_epoch(full({}, 7.0, kFloat64), "a.ckpt") == 7);
  CHECK(checked_epoch(full({1}, 1000000.0, kFloat64), "a.ckpt") == 1000000);
  CT_REQUIRE_ERROR(checked_epoch(full({}, 1e30, kFloat64), "a.ckpt"),
                   "train_fashion_mnist: expected trainer.epoch to be a whole number from 1 to "
                   "1000000, got 1e+30 in a.ckpt");
  CT_REQUIRE_ERROR(checked_epoch(full({}, 2147483648.0, kFloat64), "a.ckpt"), "got 2147483648 in");
  CT_REQUIRE_ERROR(checked_epoch(full({}, -3.0, kFloat64), "a.ckpt"), "got -3 in");
  CT_REQUIRE_ERROR(checked_epoch(full({}, 0.0, kFloat64), "a.ckpt"), "got 0 in");
  CT_REQUIRE_ERROR(checked_epoch(full({}, 2.5, kFloat64), "a.ckpt"), "got 2.5 in");
  CT_REQUIRE_ERROR(
      checked_epoch(full({}, std::numeric_limits<double>::quiet_NaN(), kFloat64), "a.ckpt"),
      "got nan in");
  CT_REQUIRE_ERROR(
      checked_epoch(full({}, -std::numeric_limits<double>::infinity(), kFloat64), "a.ckpt"),
      "got -inf in");
  CT_REQUIRE_ERROR(checked_epoch(full({2}, 1.0, kFloat64), "a.ckpt"),
                   "train_fashion_mnist: expected trainer.epoch to be one float64 value, got [2] "
                   "float64 in a.ckpt");
  CT_REQUIRE_ERROR(checked_epoch(full({}, 1.0, kFloat32), "a.ckpt"), "got [] float32 in a.ckpt");
}

TEST_CASE("--distributed takes no value; --bucket-mb is a positive size", "[examples]") {
  const ParseResult plain = parse({"--epochs", "2"});
  REQUIRE(plain.error.empty());
  CHECK_FALSE(plain.settings.distributed);
  const ParseResult r = parse({"--distributed", "--bucket-mb", "0.5", "--epochs", "2"});
  REQUIRE(r.error.empty());
  CHECK(r.settings.distributed);
  CHECK(r.settings.bucket_mb == 0.5);
  CHECK(r.settings.epochs == 2);
  CHECK(parse({"--epochs", "2", "--distributed"}).settings.distributed);
  CHECK(error_of({"--bucket-mb", "0"}).find("--bucket-mb") != std::string::npos);
  CHECK(error_of({"--bucket-mb", "abc"}).find("'abc'") != std::string::npos);
}

TEST_CASE("--limit takes a positive image count", "[examples]") {
  CHECK(parse({"--limit", "2048"}).settings.limit == 2048);
  CHECK(parse({}).settings.limit == 0);
  CHECK(error_of({"--limit", "0"}).find("--limit") != std::string::npos);
}

TEST_CASE("--augment takes no value; --workers takes a thread count from 0", "[examples]") {
  const ParseResult defaults = parse({});
  CHECK_FALSE(defaults.settings.augment);
  CHECK(defaults.settings.workers == 0);
  const ParseResult r = parse({"--augment", "--workers", "2", "--epochs", "3"});
  REQUIRE(r.error.empty());
  CHECK(r.settings.augment);
  CHECK(r.settings.workers == 2);
  CHECK(r.settings.epochs == 3);
  CHECK(parse({"--workers", "0", "--augment"}).settings.augment);
  CHECK(parse({"--workers", "256"}).settings.workers == 256);
  CHECK(parse({"--distributed", "--augment"}).settings.distributed);
  CHECK(error_of({"--workers", "-1"}) ==
        "train_fashion_mnist: expected --workers to be an integer from 0 to 256, got '-1' (try "
        "--help)");
  CHECK(error_of({"--workers", "257"}).find("got '257'") != std::string::npos);
  CHECK(error_of({"--workers", "2x"}).find("got '2x'") != std::string::npos);
  CHECK(error_of({"--workers"}) == "train_fashion_mnist: --workers needs a value (try --help)");
  // --augment takes no value: one after it is read as the next flag.
  CHECK(error_of({"--augment", "yes"}) == "train_fashion_mnist: yes needs a value (try --help)");
  const std::string usage = train_fashion_mnist::usage_text();
  CHECK(usage.find("--augment") != std::string::npos);
  CHECK(usage.find("--workers N") != std::string::npos);
}

TEST_CASE("--export and --init-from take a file name; --init-from excludes --resume",
          "[examples]") {
  const ParseResult defaults = parse({});
  CHECK(defaults.settings.export_path.empty());
  CHECK(defaults.settings.init_from.empty());
  const ParseResult r =
      parse({"--export", "m.onnx", "--init-from", "w.safetensors", "--epochs", "1"});
  REQUIRE(r.error.empty());
  CHECK(r.settings.export_path == "m.onnx");
  CHECK(r.settings.init_from == "w.safetensors");
  CHECK(r.settings.epochs == 1);
  CHECK(error_of({"--export", ""}) ==
        "train_fashion_mnist: expected a file name after --export, got ''");
  CHECK(error_of({"--init-from", ""}) ==
        "train_fashion_mnist: expected a file name after --init-from, got ''");
  CHECK(error_of({"--export"}) == "train_fashion_mnist: --export needs a value (try --help)");
  CHECK(error_of({"--init-from", "w.safetensors", "--resume", "a.ckpt"}) ==
        "train_fashion_mnist: expected at most one of --init-from and --resume (the checkpoint "
        "holds the model's weights), got both: 'w.safetensors' and 'a.ckpt'");
  CHECK(parse({"--resume", "a.ckpt", "--export", "m.onnx"}).error.empty());
  const std::string usage = train_fashion_mnist::usage_text();
  CHECK(usage.find("--export FILE") != std::string::npos);
  CHECK(usage.find("--init-from FILE") != std::string::npos);
}

TEST_CASE("the two models have PyTorch's state_dict names; others are refused", "[examples]") {
  const auto small = train_fashion_mnist::make_model("small");
  CHECK(small->num_parameters() == 421642);
  const auto deep = train_fashion_mnist::make_model("deep");
  std::vector<std::string> names;
  for (const auto& [name, t] : deep->state_dict()) names.push_back(name);
  REQUIRE(names.size() >= 7);
  CHECK(names[0] == "0.weight");
  CHECK(names[1] == "1.weight");
  CHECK(names[2] == "1.bias");
  CHECK(names[3] == "1.running_mean");
  CHECK(names[4] == "1.running_var");
  CHECK(names[5] == "1.num_batches_tracked");
  CHECK(names.back() == "19.bias");
  CT_REQUIRE_ERROR(train_fashion_mnist::make_model("wide"),
                   "make_model: expected the model name small or deep, got 'wide'");
}

TEST_CASE("--init-from loads a safetensors file into the model and refuses a mismatch",
          "[examples]") {
  ct_test::TempDir dir;
  manual_seed(3);
  const auto source = train_fashion_mnist::make_model("small");
  const std::string good = dir.file("small.safetensors");
  io::save_safetensors(*source, good);
  const auto target = train_fashion_mnist::make_model("small");
  CHECK(train_fashion_mnist::load_weights(*target, good) == 8);
  const StateDict a = source->state_dict(), b = target->state_dict();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    CHECK(ct_test::equal(a[i].second, b[i].second));
  }
  // The small model's weights are not the deep model's: every difference is named.
  const auto deep = train_fashion_mnist::make_model("deep");
  StateDict before;  // copies: state_dict() shares the module's storage
  for (const auto& [name, t] : deep->state_dict()) before.emplace_back(name, t.clone());
  try {
    train_fashion_mnist::load_weights(*deep, good);
    FAIL("expected load_weights to refuse the small model's file for the deep model");
  } catch (const Error& e) {
    const std::string m = e.message();
    CHECK(m.starts_with("train_fashion_mnist: --init-from " + good + ": load_state_dict: "));
    CHECK(m.find("expected an entry for 1.running_mean, got none (missing)") != std::string::npos);
    CHECK(m.find("got unexpected 0.bias") != std::string::npos);
  }
  // Nothing was written: the deep model keeps its weights.
  const StateDict after = deep->state_dict();
  for (std::size_t i = 0; i < before.size(); ++i)
    CHECK(ct_test::equal(before[i].second, after[i].second));
  // A shape that differs is named with both shapes.
  StateDict wrong = source->state_dict();
  wrong[0].second = zeros({16, 1, 3, 3});
  const std::string bad = dir.file("bad.safetensors");
  io::save_safetensors(wrong, bad);
  CT_REQUIRE_ERROR(train_fashion_mnist::load_weights(*target, bad),
                   "expected 0.weight of shape [32, 1, 3, 3], got [16, 1, 3, 3]");
  // A file that is not there is the reader's error, naming it.
  CT_REQUIRE_ERROR(train_fashion_mnist::load_weights(*target, dir.file("none.safetensors")),
                   "none.safetensors");
}
