// LR schedulers: PyTorch's recursive ("chainable") update rules, and state dicts of 0-d float64
// entries checked in full before anything is replaced.
#include "optim/lr_scheduler.h"

#include <cmath>
#include <limits>
#include <numbers>
#include <set>

#include <fmt/ranges.h>

#include "optim/detail.h"

namespace convtape::optim {

namespace {

// Reads the entries of dict that must be exactly `expected`, as doubles; throws naming the first
// missing or unexpected entry.
std::map<std::string, double> read_exact(const std::string& op, const StateDict& dict,
                                         const std::set<std::string>& expected,
                                         std::size_t groups) {
  const auto entries = detail::index_entries(op, dict);
  std::map<std::string, double> values;
  for (const auto& [name, t] : entries) {
    CT_CHECK(expected.count(name) == 1,
             "{}: expected entries ({}) for an optimizer with {} param group(s), got '{}'", op,
             fmt::join(expected, ", "), groups, name);
    values[name] = detail::scalar_value(op, name, t);
  }
  for (const auto& name : expected)
    CT_CHECK(values.count(name) == 1, "{}: expected an entry '{}', got none", op, name);
  return values;
}

// A count stored as a float64 scalar, about to become an int64: whole, >= min and below 2^63
// (converting a larger double is undefined behaviour).
void check_count(const std::string& op, const std::string& name, double v, double min) {
  CT_CHECK(std::isfinite(v) && v == std::floor(v) && v >= min && v < 0x1p63,
           "{}: expected an integer >= {} and below 2^63 for entry '{}', got {}", op, min, name, v);
}

void check_lr(const std::string& op, const std::string& name, double v) {
  CT_CHECK(v >= 0.0 && std::isfinite(v), "{}: expected a finite lr >= 0 for entry '{}', got {}", op,
           name, v);
}

}  // namespace

// ---------------------------------------------------------------- LRScheduler

LRScheduler::LRScheduler(Optimizer& optimizer, std::string name)
    : optimizer_(optimizer), name_(std::move(name)), base_lrs_(current_lrs()) {}

LRScheduler::~LRScheduler() = default;

std::vector<double> LRScheduler::current_lrs() const {
  std::vector<double> lrs;
  for (const auto& g : optimizer_.param_groups()) lrs.push_back(g.lr());
  return lrs;
}

void LRScheduler::step() {
  CT_CHECK(optimizer_.param_groups().size() == base_lrs_.size(),
           "{}: expected the optimizer's {} param group(s), got {} (groups were added after the "
           "scheduler was made)",
           name_, base_lrs_.size(), optimizer_.param_groups().size());
  ++last_epoch_;
  const std::vector<double> lrs = compute_lr();
  auto& groups = optimizer_.param_groups();
  for (std::size_t g = 0; g < groups.size(); ++g) groups[g].set_lr(lrs[g]);
  last_lr_ = lrs;
}

StateDict LRScheduler::state_dict() const {
  StateDict dict;
  dict.emplace_back("last_epoch", detail::scalar(static_cast<double>(last_epoch_)));
  for (const auto& [name, v] : hyper()) dict.emplace_back(name, detail::scalar(v));
  for (std::size_t g = 0; g < base_lrs_.size(); ++g)
    dict.emplace_back(fmt::format("base_lrs.{}", g), detail::scalar(base_lrs_[g]));
  for (std::size_t g = 0; g < last_lr_.size(); ++g)
    dict.emplace_back(fmt::format("last_lr.{}", g), detail::scalar(last_lr_[g]));
  return dict;
}

void LRScheduler::load_state_dict(const StateDict& dict) {
  const std::string op = name_ + ".load_state_dict";
  const std::size_t groups = optimizer_.param_groups().size();
  std::set<std::string> expected{"last_epoch"};
  for (const auto& [name, v] : hyper()) expected.insert(name);
  for (std::size_t g = 0; g < groups; ++g) {
    expected.insert(fmt::format("base_lrs.{}", g));
    expected.insert(fmt::format("last_lr.{}", g));
  }
  const auto values = read_exact(op, dict, expected, groups);
  check_count(op, "last_epoch", values.at("last_epoch"), 0);
  std::vector<double> base(groups), last(groups);
  for (std::size_t g = 0; g < groups; ++g) {
    const std::string b = fmt::format("base_lrs.{}", g), l = fmt::format("last_lr.{}", g);
    check_lr(op, b, values.at(b));
    check_lr(op, l, values.at(l));
    base[g] = values.at(b);
    last[g] = values.at(l);
  }
  set_hyper(values, false);  // checks only

  set_hyper(values, true);
  last_epoch_ = static_cast<std::int64_t>(values.at("last_epoch"));
  base_lrs_ = std::move(base);
  last_lr_ = std::move(last);
}

// ---------------------------------------------------------------- StepLR

StepLR::StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma)
    : LRScheduler(optimizer, "StepLR"), step_size_(step_size), gamma_(gamma) {
  set_hyper({{"step_size", static_cast<double>(step_size)}, {"gamma", gamma}}, false);
  initial_step();
}

std::vector<double> StepLR::compute_lr() const {
  std::vector<double> lrs = current_lrs();
  if (last_epoch() == 0 || last_epoch() % step_size_ != 0) return lrs;
  for (double& lr : lrs) lr *= gamma_;
  return lrs;
}

std::vector<std::pair<std::string, double>> StepLR::hyper() const {
  return {{"step_size", static_cast<double>(step_size_)}, {"gamma", gamma_}};
}

void StepLR::set_hyper(const std::map<std::string, double>& v, bool apply) {
  const double step_size = v.at("step_size"), gamma = v.at("gamma");
  CT_CHECK(std::isfinite(step_size) && step_size == std::floor(step_size) && step_size >= 1 &&
               step_size < 0x1p63,
           "StepLR: expected a whole step_size >= 1 and below 2^63, got {}", step_size);
  CT_CHECK(gamma > 0.0 && std::isfinite(gamma), "StepLR: expected a finite gamma > 0, got {}",
           gamma);
  if (!apply) return;
  step_size_ = static_cast<std::int64_t>(step_size);
  gamma_ = gamma;
}

// ---------------------------------------------------------------- CosineAnnealingLR

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, std::int64_t t_max, double eta_min)
    : LRScheduler(optimizer, "CosineAnnealingLR"), t_max_(t_max), eta_min_(eta_min) {
  set_hyper({{"t_max", static_cast<double>(t_max)}, {"eta_min", eta_min}}, false);
  initial_step();
}

std::vector<double> CosineAnnealingLR::compute_lr() const {
  std::vector<double> lrs = current_lrs();
  const std::int64_t e = last_epoch();
  const double pi = std::numbers::pi;
  const auto t = static_cast<double>(t_max_);
  if (e == 0) return lrs;
  if ((e - 1 - t_max_) % (2 * t_max_) == 0) {
    // Just past a minimum, where the ratio below would divide by zero: one step of the cosine's
    // rise from eta_min.
    for (std::size_t g = 0; g < lrs.size(); ++g)
      lrs[g] = lrs[g] + (base_lrs()[g] - eta_min_) * (1 - std::cos(pi / t)) / 2;
    return lrs;
  }
  const double ratio = (1 + std::cos(pi * static_cast<double>(e) / t)) /
                       (1 + std::cos(pi * static_cast<double>(e - 1) / t));
  for (double& lr : lrs) lr = ratio * (lr - eta_min_) + eta_min_;
  return lrs;
}

std::vector<std::pair<std::string, double>> CosineAnnealingLR::hyper() const {
  return {{"t_max", static_cast<double>(t_max_)}, {"eta_min", eta_min_}};
}

void CosineAnnealingLR::set_hyper(const std::map<std::string, double>& v, bool apply) {
  const double t_max = v.at("t_max"), eta_min = v.at("eta_min");
  CT_CHECK(std::isfinite(t_max) && t_max == std::floor(t_max) && t_max >= 1 && t_max < 0x1p63,
           "CosineAnnealingLR: expected a whole t_max >= 1 and below 2^63, got {}", t_max);
  CT_CHECK(eta_min >= 0.0 && std::isfinite(eta_min),
           "CosineAnnealingLR: expected a finite eta_min >= 0, got {}", eta_min);
  if (!apply) return;
  t_max_ = static_cast<std::int64_t>(t_max);
  eta_min_ = eta_min;
}

// ---------------------------------------------------------------- ReduceLROnPlateau

namespace {

void check_plateau(const std::string& op, const ReduceLROnPlateauOptions& o, std::size_t groups) {
  CT_CHECK(o.factor() >= 0.0 && o.factor() < 1.0, "{}: expected factor in [0, 1), got {}", op,
           o.factor());
  CT_CHECK(o.patience() >= 0, "{}: expected patience >= 0, got {}", op, o.patience());
  CT_CHECK(o.threshold() >= 0.0 && std::isfinite(o.threshold()),
           "{}: expected a finite threshold >= 0, got {}", op, o.threshold());
  CT_CHECK(o.cooldown() >= 0, "{}: expected cooldown >= 0, got {}", op, o.cooldown());
  CT_CHECK(o.eps() >= 0.0, "{}: expected eps >= 0, got {}", op, o.eps());
  CT_CHECK(o.min_lr().size() == 1 || o.min_lr().size() == groups,
           "{}: expected one min_lr or one per param group ({}), got {}", op, groups,
           o.min_lr().size());
  for (double m : o.min_lr())
    CT_CHECK(m >= 0.0 && std::isfinite(m), "{}: expected finite min_lr values >= 0, got {}", op, m);
}

}  // namespace

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, const ReduceLROnPlateauOptions& options)
    : optimizer_(optimizer), options_(options) {
  const std::size_t groups = optimizer_.param_groups().size();
  check_plateau("ReduceLROnPlateau", options_, groups);
  min_lrs_ = options_.min_lr().size() == 1 ? std::vector<double>(groups, options_.min_lr()[0])
                                           : options_.min_lr();
  best_ = options_.mode() == PlateauMode::Min ? std::numeric_limits<double>::infinity()
                                              : -std::numeric_limits<double>::infinity();
  for (const auto& g : optimizer_.param_groups()) last_lr_.push_back(g.lr());
}

bool ReduceLROnPlateau::is_better(double a, double best) const {
  const double t = options_.threshold();
  if (options_.mode() == PlateauMode::Min)
    return options_.threshold_mode() == ThresholdMode::Rel ? a < best * (1.0 - t) : a < best - t;
  return options_.threshold_mode() == ThresholdMode::Rel ? a > best * (t + 1.0) : a > best + t;
}

void ReduceLROnPlateau::step(double metric) {
  auto& groups = optimizer_.param_groups();
  CT_CHECK(groups.size() == min_lrs_.size(),
           "ReduceLROnPlateau: expected the optimizer's {} param group(s), got {} (groups were "
           "added after the scheduler was made)",
           min_lrs_.size(), groups.size());
  ++last_epoch_;
  if (is_better(metric, best_)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;  // bad epochs in cooldown do not count
  }
  if (num_bad_epochs_ > options_.patience()) {
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const double old_lr = groups[g].lr();
      const double new_lr = std::max(old_lr * options_.factor(), min_lrs_[g]);
      if (old_lr - new_lr > options_.eps()) groups[g].set_lr(new_lr);
    }
    cooldown_counter_ = options_.cooldown();
    num_bad_epochs_ = 0;
  }
  last_lr_.clear();
  for (const auto& g : groups) last_lr_.push_back(g.lr());
}

StateDict ReduceLROnPlateau::state_dict() const {
  const auto& o = options_;
  StateDict dict;
  auto put = [&dict](std::string name, double v) {
    dict.emplace_back(std::move(name), detail::scalar(v));
  };
  put("last_epoch", static_cast<double>(last_epoch_));
  put("best", best_);
  put("num_bad_epochs", static_cast<double>(num_bad_epochs_));
  put("cooldown_counter", static_cast<double>(cooldown_counter_));
  put("mode", o.mode() == PlateauMode::Min ? 0.0 : 1.0);
  put("factor", o.factor());
  put("patience", static_cast<double>(o.patience()));
  put("threshold", o.threshold());
  put("threshold_mode", o.threshold_mode() == ThresholdMode::Rel ? 0.0 : 1.0);
  put("cooldown", static_cast<double>(o.cooldown()));
  put("eps", o.eps());
  for (std::size_t g = 0; g < min_lrs_.size(); ++g) put(fmt::format("min_lrs.{}", g), min_lrs_[g]);
  for (std::size_t g = 0; g < last_lr_.size(); ++g) put(fmt::format("last_lr.{}", g), last_lr_[g]);
  return dict;
}

void ReduceLROnPlateau::load_state_dict(const StateDict& dict) {
  const std::string op = "ReduceLROnPlateau.load_state_dict";
  const std::size_t groups = optimizer_.param_groups().size();
  std::set<std::string> expected{
      "last_epoch", "best",      "num_bad_epochs", "cooldown_counter", "mode", "factor",
      "patience",   "threshold", "threshold_mode", "cooldown",         "eps"};
  for (std::size_t g = 0; g < groups; ++g) {
    expected.insert(fmt::format("min_lrs.{}", g));
    expected.insert(fmt::format("last_lr.{}", g));
  }
  const auto v = read_exact(op, dict, expected, groups);
  for (const char* name :
       {"last_epoch", "num_bad_epochs", "cooldown_counter", "patience", "cooldown"})
    check_count(op, name, v.at(name), 0);
  for (const char* name : {"mode", "threshold_mode"})
    CT_CHECK(v.at(name) == 0.0 || v.at(name) == 1.0, "{}: expected 0 or 1 for entry '{}', got {}",
             op, name, v.at(name));
  CT_CHECK(!std::isnan(v.at("best")), "{}: expected a number for entry 'best', got nan", op);
  std::vector<double> min_lrs(groups), last(groups);
  for (std::size_t g = 0; g < groups; ++g) {
    min_lrs[g] = v.at(fmt::format("min_lrs.{}", g));
    last[g] = v.at(fmt::format("last_lr.{}", g));
    check_lr(op, fmt::format("last_lr.{}", g), last[g]);
  }
  ReduceLROnPlateauOptions o;
  o.mode(v.at("mode") == 0.0 ? PlateauMode::Min : PlateauMode::Max)
      .factor(v.at("factor"))
      .patience(static_cast<std::int64_t>(v.at("patience")))
      .threshold(v.at("threshold"))
      .threshold_mode(v.at("threshold_mode") == 0.0 ? ThresholdMode::Rel : ThresholdMode::Abs)
      .cooldown(static_cast<std::int64_t>(v.at("cooldown")))
      .min_lr(min_lrs)
      .eps(v.at("eps"));
  check_plateau(op, o, groups);

  options_ = o;
  min_lrs_ = std::move(min_lrs);
  best_ = v.at("best");
  num_bad_epochs_ = static_cast<std::int64_t>(v.at("num_bad_epochs"));
  cooldown_counter_ = static_cast<std::int64_t>(v.at("cooldown_counter"));
  last_epoch_ = static_cast<std::int64_t>(v.at("last_epoch"));
  last_lr_ = std::move(last);
}

}  // namespace convtape::optim
