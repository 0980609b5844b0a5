// Learning-rate schedulers. Each reads and writes the "lr" of every param group of an optimizer.
//   StepLR             lr = lr * gamma every step_size epochs.
//   CosineAnnealingLR  lr_t = eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2, computed
//                      as PyTorch does, recursively from the group's current lr, so that a change
//                      made to the lr between steps carries on; past T_max it rises again (period
//                      2 * T_max).
//   ReduceLROnPlateau  step(metric): after more than `patience` epochs without improvement by
//                      `threshold` (relative or absolute), lr = max(lr * factor, min_lr), then
//                      `cooldown` epochs in which bad epochs are not counted. Reductions smaller
//                      than eps are skipped.
// Epoch schedulers step once on construction (last_epoch 0, lrs unchanged), like PyTorch's; call
// step() after each epoch's optimizer steps. State dicts hold 0-d float64 entries: last_epoch,
// the hyper-parameters, base_lrs.<g> and last_lr.<g> (ReduceLROnPlateau: its counters, best and
// min_lrs.<g>); loading checks every entry before changing anything.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/state_dict.h"
#include "optim/optimizer.h"

namespace convtape::optim {

// Epoch-based schedulers.
class LRScheduler {
 public:
  virtual ~LRScheduler();
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // Advances one epoch and sets every group's lr.
  void step();
  std::int64_t last_epoch() const { return last_epoch_; }
  // The lrs set by the last step, one per param group.
  const std::vector<double>& last_lr() const { return last_lr_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }

  StateDict state_dict() const;
  void load_state_dict(const StateDict& dict);

 protected:
  LRScheduler(Optimizer& optimizer, std::string name);
  // The lrs for last_epoch() (already advanced), from the groups' current lrs.
  virtual std::vector<double> compute_lr() const = 0;
  // This scheduler's own hyper-parameters by name, and their checked update.
  virtual std::vector<std::pair<std::string, double>> hyper() const = 0;
  virtual void set_hyper(const std::map<std::string, double>& values, bool apply) = 0;
  // The first step; derived constructors call it once their members are set.
  void initial_step() { step(); }

  std::vector<double> current_lrs() const;

  Optimizer& optimizer_;
  std::string name_;

 private:
  std::vector<double> base_lrs_;
  std::vector<double> last_lr_;
  std::int64_t last_epoch_ = -1;
};

class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma = 0.1);

  std::int64_t step_size() const { return step_size_; }
  double gamma() const { return gamma_; }

 protected:
  std::vector<double> compute_lr() const override;
  std::vector<std::pair<std::string, double>> hyper() const override;
  void set_hyper(const std::map<std::string, double>& values, bool apply) override;

 private:
  std::int64_t step_size_;
  double gamma_;
};

class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, std::int64_t t_max, double eta_min = 0.0);

  std::int64_t t_max() const { return t_max_; }
  double eta_min() const { return eta_min_; }

 protected:
  std::vector<double> compute_lr() const override;
  std::vector<std::pair<std::string, double>> hyper() const override;
  void set_hyper(const std::map<std::string, double>& values, bool apply) override;

 private:
  std::int64_t t_max_;
  double eta_min_;
};

enum class PlateauMode { Min, Max };
enum class ThresholdMode { Rel, Abs };

class ReduceLROnPlateauOptions {
 public:
  ReduceLROnPlateauOptions() = default;

  ReduceLROnPlateauOptions& mode(PlateauMode v) {
    mode_ = v;
    return *this;
  }
  ReduceLROnPlateauOptions& factor(double v) {
    factor_ = v;
    return *this;
  }
  ReduceLROnPlateauOptions& patience(std::int64_t v) {
    patience_ = v;
    return *this;
  }
  ReduceLROnPlateauOptions& threshold(double v) {
    threshold_ = v;
    return *this;
  }
  ReduceLROnPlateauOptions& threshold_mode(ThresholdMode v) {
    threshold_mode_ = v;
    return *this;
  }
  ReduceLROnPlateauOptions& cooldown(std::int64_t v) {
    cooldown_ = v;
    return *this;
  }
  // One floor for every group, or one per group.
  ReduceLROnPlateauOptions& min_lr(double v) {
    min_lrs_ = {v};
    return *this;
  }
  ReduceLROnPlateauOptions& min_lr(std::vector<double> v) {
    min_lrs_ = std::move(v);
    return *this;
  }
  ReduceLROnPlateauOptions& eps(double v) {
    eps_ = v;
    return *this;
  }

  PlateauMode mode() const { return mode_; }
  double factor() const { return factor_; }
  std::int64_t patience() const { return patience_; }
  double threshold() const { return threshold_; }
  ThresholdMode threshold_mode() const { return threshold_mode_; }
  std::int64_t cooldown() const { return cooldown_; }
  const std::vector<double>& min_lr() const { return min_lrs_; }
  double eps() const { return eps_; }

 private:
  PlateauMode mode_ = PlateauMode::Min;
  double factor_ = 0.1;
  std::int64_t patience_ = 10;
  double threshold_ = 1e-4;
  ThresholdMode threshold_mode_ = ThresholdMode::Rel;
  std::int64_t cooldown_ = 0;
  std::vector<double> min_lrs_ = {0.0};
  double eps_ = 1e-8;
};

class ReduceLROnPlateau {
 public:
  explicit ReduceLROnPlateau(Optimizer& optimizer,
                             const ReduceLROnPlateauOptions& options = ReduceLROnPlateauOptions());
  ReduceLROnPlateau(const ReduceLROnPlateau&) = delete;
  ReduceLROnPlateau& operator=(const ReduceLROnPlateau&) = delete;

  // One epoch with this value of the monitored metric (NaN counts as no improvement).
  void step(double metric);
  std::int64_t last_epoch() const { return last_epoch_; }
  const std::vector<double>& last_lr() const { return last_lr_; }
  double best() const { return best_; }
  std::int64_t num_bad_epochs() const { return num_bad_epochs_; }
  std::int64_t cooldown_counter() const { return cooldown_counter_; }
  const ReduceLROnPlateauOptions& options() const { return options_; }

  StateDict state_dict() const;
  void load_state_dict(const StateDict& dict);

 private:
  bool is_better(double a, double best) const;

  Optimizer& optimizer_;
  ReduceLROnPlateauOptions options_;
  std::vector<double> min_lrs_;  // one per group
  double best_;
  std::int64_t num_bad_epochs_ = 0;
  std::int64_t cooldown_counter_ = 0;
  std::int64_t last_epoch_ = 0;
  std::vector<double> last_lr_;
};

}  // namespace convtape::optim
