// Optimizer: the base of SGD, Adam and AdamW. It owns parameter groups (a list of parameters plus
// named hyper-parameters such as "lr" or "momentum"), per-parameter state (buffers shaped like
// the parameter, e.g. a momentum buffer, and scalars, e.g. a step count), zero_grad, and the
// state dict:
//   param_groups.<g>.num_params   the number of parameters in group g
//   param_groups.<g>.<name>       each hyper-parameter of group g (booleans are 0 or 1)
//   state.<i>.<name>              the state of parameter i, counted across groups in order
// all 0-d float64 except the buffers, which have their parameter's shape and dtype.
//
// Hyper-parameters are named doubles rather than a struct per optimizer so that a group may
// override any subset of the optimizer's defaults (PyTorch's
// SGD([{"params": a}, {"params": b, "lr": 0.1}], lr=0.01, momentum=0.9)), schedulers can reach
// "lr" in any optimizer, and the state dict stores groups without per-optimizer code. Each
// optimizer checks every group against its own rules when it is built, when a group is added and
// on every step (so that a bad value written through param_groups() is caught), and reads them
// back into its typed options struct.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/state_dict.h"
#include "core/tensor.h"

namespace convtape::optim {

// Named hyper-parameters of a parameter group.
using Hyper = std::map<std::string, double>;

struct ParamGroup {
  // options may hold any subset of the optimizer's hyper-parameters; the rest come from the
  // optimizer's defaults.
  // NOLINTNEXTLINE(google-explicit-constructor): a parameter list is a group
  ParamGroup(std::vector<Tensor> group_params, Hyper group_options = {})
      : params(std::move(group_params)), options(std::move(group_options)) {}

  std::vector<Tensor> params;
  Hyper options;

  double lr() const { return get("lr"); }
  void set_lr(double lr) { options["lr"] = lr; }
  // The hyper-parameter called name; an error if the group has none.
  double get(const std::string& name) const;
};

// One parameter's state: buffers of the parameter's shape and dtype, and scalars.
struct ParamState {
  std::map<std::string, Tensor> buffers;
  std::map<std::string, double> scalars;
  bool empty() const { return buffers.empty() && scalars.empty(); }
};

class Optimizer {
 public:
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient; parameters without one are skipped.
  virtual void step() = 0;
  // Drops the gradient of every parameter.
  void zero_grad();

  // "SGD", "Adam", "AdamW": the prefix of this optimizer's error messages.
  const std::string& name() const { return name_; }
  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  // Adds a group (options default to the optimizer's); its parameters must be new to it.
  void add_param_group(ParamGroup group);
  // The learning rate shared by all groups (an error if they differ); set_lr sets every group's.
  double lr() const;
  void set_lr(double lr);
  // The hyper-parameters a group falls back on.
  const Hyper& defaults() const { return defaults_; }

  // State of a parameter (empty until its first step with a gradient).
  const ParamState& state(const Tensor& param) const;

  // A snapshot (copies) of the hyper-parameters and state, laid out as described above.
  virtual StateDict state_dict() const;
  // Checks every entry (names, group and parameter counts, hyper-parameter values, shapes and
  // dtypes of buffers) before changing anything, then replaces the hyper-parameters and state.
  // Buffers are copied to their parameter's device.
  virtual void load_state_dict(const StateDict& dict);

 protected:
  // Derived constructors call init_groups once they are complete (check_hyper is virtual).
  Optimizer(std::string name, Hyper defaults);
  void init_groups(std::vector<ParamGroup> groups);

  // Throws when a group's hyper-parameters break this optimizer's rules; where says which group
  // (" in param group 1"). Keys are known and complete when it is called.
  virtual void check_hyper(const Hyper& hyper, const std::string& where) const = 0;
  // The state a parameter of a group with these hyper-parameters holds once it has stepped.
  struct StateLayout {
    std::vector<std::string> buffers;
    std::vector<std::string> scalars;
  };
  virtual StateLayout state_layout(const Hyper& hyper) const = 0;

  // Checked hyper-parameters of group g, for step().
  const Hyper& checked_hyper(std::size_t g) const;
  ParamState& state_of(const Tensor& param) { return state_[param.impl()]; }

 private:
  void check_group(ParamGroup& group, const std::string& where);
  std::size_t num_params() const;

  std::string name_;
  Hyper defaults_;
  std::vector<ParamGroup> groups_;
  std::unordered_map<const TensorImpl*, ParamState> state_;
};

}  // namespace convtape::optim
