// Fuzz target body over the op argument space: the first byte picks an op, the following bytes its
// arguments (shapes, strides, paddings per side and SAME/VALID, dilations of both operands, groups,
// output_padding, kernel sizes, ceil_mode, ...; values from 0 and 1 to 2^31, 2^62, INT64_MAX and
// negatives). Input tensors stay tiny; the arguments do not, so every op must refuse impossible
// sizes through its own checks. Each call returns or throws convtape::Error; results must pass
// check_result, differentiable ones are differentiated, and a few ops are compared with a
// reference where a silently wrong answer is the known failure (argmax indices, clamp, in-place
// ops on overlapping views). Served by fuzz/ops_fuzzer.cpp (libFuzzer) and tests/fuzz/ops_test.cpp.
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "fuzz/fuzz_input.h"
#include "fuzz/targets.h"

namespace ct_fuzz {
namespace {

using namespace convtape;

// Some inputs require grad, so that backward kernels see the same arguments.
Tensor maybe_grad(Input& in, Tensor t) {
  if (t.is_floating_point() && (in.byte() & 3) == 0) t.requires_grad_(true);
  return t;
}

// CT_FUZZ_TRACE=1 prints each call with its arguments before it is made, so that a crashing input
// replayed through the fuzzer binary names its op in one line.
bool tracing() {
  static const bool on = std::getenv("CT_FUZZ_TRACE") != nullptr;
  return on;
}
std::string desc(const Tensor& t) {
  if (!t.defined()) return "none";
  return fmt::format("{}{}{}", dtype_name(t.dtype()), convtape::to_string(t.shape()),
                     t.requires_grad() ? " grad" : "");
}
std::string desc(const std::vector<std::pair<i64, i64>>& p) {
  std::string s = "{";
  for (const auto& [a, b] : p) s += fmt::format("({}, {})", a, b);
  return s + "}";
}
template <class... Args>
void trace(fmt::format_string<Args...> f, Args&&... args) {
  if (tracing())
    std::fprintf(stderr, "ct_fuzz: %s\n", fmt::format(f, std::forward<Args>(args)...).c_str());
}
std::string desc(const ConvOptions& o) {
  static const char* const kModes[] = {"explicit", "SAME", "SAME_LOWER", "VALID"};
  return fmt::format("stride {}, padding {} {}, dilation {}, input_dilation {}, groups {}, flip {}",
                     fmt::join(o.stride(), ","), kModes[static_cast<int>(o.padding_kind())],
                     desc(o.padding()), fmt::join(o.dilation(), ","),
                     fmt::join(o.input_dilation(), ","), o.groups(), o.flip_kernel());
}
std::string desc(const ConvTransposeOptions& o) {
  return fmt::format("stride {}, padding {}, output_padding {}, dilation {}, groups {}",
                     fmt::join(o.stride(), ","), fmt::join(o.padding(), ","),
                     fmt::join(o.output_padding(), ","), fmt::join(o.dilation(), ","), o.groups());
}
std::string desc(const PoolOptions& o) {
  return fmt::format(
      "kernel {}, stride {}, padding {}, dilation {}, ceil_mode {}, count_include_pad {}, "
      "divisor_override {}",
      fmt::join(o.kernel_size(), ","), fmt::join(o.stride(), ","), desc(o.padding()),
      fmt::join(o.dilation(), ","), o.ceil_mode(), o.count_include_pad(),
      o.divisor_override() ? std::to_string(*o.divisor_override()) : "none");
}

// ---- factories and views

// Factories get argument-space shapes. A shape whose element count or byte size overflows must be
// refused; a valid one of at most 2^16 elements is built; a valid one past the allocation cap of
// the fuzz run (fuzz/alloc_cap.h) must fail with the allocator's error. Valid shapes in between
// would only cost time, so they are not built.
Tensor factory(Input& in) {
  const std::size_t rank = in.pick(6);
  Shape shape = in.values(rank);
  const DType dtype = in.flag() ? kFloat64 : kFloat32;
  bool negative = false;
  bool zero = false;
  for (const i64 d : shape) {
    negative = negative || d < 0;
    zero = zero || d == 0;
  }
  i128 count = zero ? 0 : 1;
  bool overflow = false;
  for (const i64 d : shape) {
    if (negative || zero || overflow) break;
    count *= d;
    overflow = count > std::numeric_limits<i64>::max();
  }
  const bool refused =
      negative || overflow ||
      count * static_cast<i128>(dtype_size(dtype)) > std::numeric_limits<std::ptrdiff_t>::max();
  if (!refused && count > kMaxTouchedElements &&
      count * static_cast<i128>(dtype_size(dtype)) <= (i128{1} << 32))
    return {};
  trace("factory {} {}", dtype_name(dtype), convtape::to_string(shape));
  switch (in.pick(5)) {
    case 0:
      return zeros(shape, dtype);
    case 1:
      return empty(shape, dtype);
    case 2:
      return ones(shape, dtype);
    case 3:
      return full(shape, in.real(), dtype);
    default:
      return zeros(shape, TensorOptions(dtype).requires_grad(in.flag()));
  }
}

std::vector<i64> dims_list(Input& in, std::size_t rank) {
  std::vector<i64> dims(rank);
  for (std::size_t i = 0; i < rank; ++i) dims[i] = static_cast<i64>(i);
  if (in.flag()) {
    std::rotate(dims.begin(), dims.begin() + (rank > 0 ? in.pick(rank) : 0), dims.end());
    if (rank > 1 && in.flag()) std::swap(dims[0], dims[rank - 1]);
  } else {
    dims = in.values(in.list_length(rank));
  }
  return dims;
}

// One view (or shape op) with argument-space arguments applied to t.
Tensor view_op(Input& in, const Tensor& t) {
  const std::size_t rank = t.shape().size();
  const std::size_t which = in.pick(17);
  static const char* const kViews[17] = {
      "reshape",   "view",         "expand",  "narrow",     "slice", "permute",
      "transpose", "flatten",      "squeeze", "unsqueeze",  "flip",  "rot90",
      "cat/stack", "index_select", "pad",     "contiguous", "clone"};
  if (tracing()) {
    // The arguments are read below; replaying the same bytes with a copy shows them.
    Input peek = in;
    trace("{} of {} (strides {}, offset {}), next argument bytes decode to {}", kViews[which],
          desc(t), convtape::to_string(t.strides()), t.offset(), fmt::join(peek.values(4), ", "));
  }
  switch (which) {
    case 0: {
      Shape s = in.values(in.pick(5));
      if (!s.empty() && in.flag()) s[in.pick(s.size())] = -1;
      return reshape(t, s);
    }
    case 1: {
      Shape s = in.values(in.pick(5));
      if (!s.empty() && in.flag()) s[in.pick(s.size())] = -1;
      return view(t, s);
    }
    case 2: {
      Shape s = in.flag() ? t.shape() : in.values(in.pick(5));
      if (in.flag()) s.insert(s.begin(), in.value());
      for (auto& d : s)
        if (in.flag()) d = in.value();
      return expand(t, s);
    }
    case 3:
      return narrow(t, in.value(), in.value(), in.value());
    case 4:
      return slice(t, in.value(), in.value(), in.value(), in.value());
    case 5:
      return permute(t, dims_list(in, rank));
    case 6:
      return transpose(t, in.value(), in.value());
    case 7:
      return flatten(t, in.value(), in.value());
    case 8:
      return in.flag() ? squeeze(t) : squeeze(t, in.value());
    case 9:
      return unsqueeze(t, in.value());
    case 10:
      return flip(t, dims_list(in, in.pick(rank + 2)));
    case 11:
      return rot90(t, in.value(), {in.value(), in.value()});
    case 12: {
      std::vector<Tensor> parts{t};
      const std::size_t more = in.pick(3);
      for (std::size_t i = 0; i < more; ++i) {
        Shape s = t.shape();
        if (!s.empty() && in.flag()) s[in.pick(s.size())] = in.tiny_extent();
        parts.push_back(tiny(in, s));
      }
      return in.flag() ? cat(parts, in.value()) : stack(parts, in.value());
    }
    case 13:
      return index_select(t, in.value(), wild_index(in, in.pick(5)));
    case 14:
      return pad(t, in.pairs(in.pick(rank + 2)), in.real());
    case 15:
      return t.contiguous();
    default:
      return t.clone();
  }
}

// ---- convolution

Tensor conv_op(Input& in) {
  const std::size_t rank = 1 + in.pick(3);
  const i64 groups = in.value();
  const i64 n = in.tiny_extent();
  const i64 per_group = in.tiny_extent();
  const i64 g_real = groups >= 1 && groups <= 4 ? groups : 1;
  // Shapes consistent with the groups most of the time, so that the options decide.
  const i64 c = in.pick(8) != 0 ? per_group * g_real : in.tiny_extent();
  const i64 k = in.pick(8) != 0 ? in.tiny_extent() * g_real : in.tiny_extent();
  Shape xs{n, c};
  Shape ws{k, in.pick(8) != 0 ? per_group : in.tiny_extent()};
  for (std::size_t d = 0; d < rank; ++d) xs.push_back(in.tiny_extent() + 1);
  for (std::size_t d = 0; d < rank; ++d)
    ws.push_back(in.pick(8) != 0 ? 1 + static_cast<i64>(in.pick(3)) : in.tiny_extent());
  if (in.pick(8) == 0) xs.erase(xs.begin());  // an unbatched input or a rank mismatch
  const Tensor x = maybe_grad(in, tiny(in, xs));
  const Tensor w = maybe_grad(in, tiny(in, ws));
  Tensor b;
  if (in.flag()) b = maybe_grad(in, tiny(in, Shape{in.pick(8) != 0 ? k : in.tiny_extent()}));

  ConvOptions o;
  o.stride(in.values(in.list_length(rank)));
  switch (in.pick(6)) {
    case 0:
      o.padding(in.value());
      break;
    case 1:
      o.padding(in.values(in.list_length(rank)));
      break;
    case 2:
      o.padding(in.pairs(in.list_length(rank)));
      break;
    case 3:
      o.padding(PaddingKind::Same);
      break;
    case 4:
      o.padding(PaddingKind::SameLower);
      break;
    default:
      o.padding(PaddingKind::Valid);
      break;
  }
  o.dilation(in.values(in.list_length(rank)));
  if (in.flag()) o.input_dilation(in.values(in.list_length(rank)));
  o.groups(groups);
  o.flip_kernel(in.flag());
  trace("conv x {}, w {}, b {}, {}", desc(x), desc(w), desc(b), desc(o));
  Tensor y;
  switch (in.pick(4)) {
    case 0:
      y = conv1d(x, w, b, o);
      break;
    case 1:
      y = conv2d(x, w, b, o);
      break;
    case 2:
      y = conv3d(x, w, b, o);
      break;
    default:
      y = conv(x, w, b, o);
      break;
  }
  check_result(y, "conv");
  check_backward(y, {x, w, b}, "conv backward");
  return y;
}

Tensor conv_transpose_op(Input& in) {
  const std::size_t rank = 1 + in.pick(3);
  const i64 groups = in.value();
  const i64 g_real = groups >= 1 && groups <= 4 ? groups : 1;
  const i64 cin = in.pick(8) != 0 ? in.tiny_extent() * g_real : in.tiny_extent();
  Shape xs{in.tiny_extent(), cin};
  Shape ws{in.pick(8) != 0 ? cin : in.tiny_extent(), in.tiny_extent()};
  for (std::size_t d = 0; d < rank; ++d) xs.push_back(in.tiny_extent());
  for (std::size_t d = 0; d < rank; ++d)
    ws.push_back(in.pick(8) != 0 ? 1 + static_cast<i64>(in.pick(3)) : in.tiny_extent());
  if (in.pick(8) == 0) xs.erase(xs.begin());
  const Tensor x = maybe_grad(in, tiny(in, xs));
  const Tensor w = maybe_grad(in, tiny(in, ws));
  Tensor b;
  if (in.flag()) b = maybe_grad(in, tiny(in, Shape{in.tiny_extent() * g_real}));
  ConvTransposeOptions o;
  o.stride(in.values(in.list_length(rank)));
  o.padding(in.offsets(in.list_length(rank)));
  o.output_padding(in.offsets(in.list_length(rank)));
  o.dilation(in.values(in.list_length(rank)));
  o.groups(groups);
  trace("conv_transpose x {}, w {}, b {}, {}", desc(x), desc(w), desc(b), desc(o));
  Tensor y;
  switch (in.pick(4)) {
    case 0:
      y = conv_transpose1d(x, w, b, o);
      break;
    case 1:
      y = conv_transpose2d(x, w, b, o);
      break;
    case 2:
      y = conv_transpose3d(x, w, b, o);
      break;
    default:
      y = conv_transpose(x, w, b, o);
      break;
  }
  check_result(y, "conv_transpose");
  check_backward(y, {x, w, b}, "conv_transpose backward");
  return y;
}

// A permutation of `letters`, sometimes corrupted (a letter repeated, dropped or foreign).
std::string layout(Input& in, std::string letters) {
  for (std::size_t i = letters.size(); i > 1; --i) std::swap(letters[i - 1], letters[in.pick(i)]);
  switch (in.pick(16)) {
    case 0:
      if (letters.size() > 1) letters[0] = letters[1];
      break;
    case 1:
      letters.pop_back();
      break;
    case 2:
      letters.push_back("QNCXH"[in.pick(5)]);
      break;
    default:
      break;
  }
  return letters;
}

Shape shape_in_layout(const std::string& layout_letters, const std::string& canonical,
                      const Shape& canonical_shape) {
  Shape s;
  for (const char ch : layout_letters) {
    const auto at = canonical.find(ch);
    s.push_back(at == std::string::npos ? 1 : canonical_shape[at]);
  }
  return s;
}

Tensor conv_general_op(Input& in) {
  const std::size_t rank = 1 + in.pick(3);
  const std::string spatial = std::string("HWD").substr(0, rank);
  const i64 fgc = in.value();
  const i64 bgc = in.flag() ? in.value() : 1;
  const i64 f_real = fgc >= 1 && fgc <= 4 ? fgc : 1;
  const i64 b_real = bgc >= 1 && bgc <= 4 ? bgc : 1;
  const i64 n = in.tiny_extent() * b_real;
  const i64 ipg = in.tiny_extent();
  const i64 c = in.pick(8) != 0 ? ipg * f_real : in.tiny_extent();
  const i64 o = in.pick(8) != 0 ? in.tiny_extent() * f_real * b_real : in.tiny_extent();
  Shape lhs_c{n, c};
  Shape rhs_c{o, in.pick(8) != 0 ? ipg : in.tiny_extent()};
  for (std::size_t d = 0; d < rank; ++d) lhs_c.push_back(in.tiny_extent() + 1);
  for (std::size_t d = 0; d < rank; ++d) rhs_c.push_back(in.tiny_extent());
  ConvGeneralOptions opt;
  opt.dimension_numbers.lhs = layout(in, "NC" + spatial);
  opt.dimension_numbers.rhs = layout(in, "OI" + spatial);
  opt.dimension_numbers.out = layout(in, "NC" + spatial);
  const Tensor lhs =
      maybe_grad(in, tiny(in, shape_in_layout(opt.dimension_numbers.lhs, "NC" + spatial, lhs_c)));
  const Tensor rhs =
      maybe_grad(in, tiny(in, shape_in_layout(opt.dimension_numbers.rhs, "OI" + spatial, rhs_c)));
  if (in.flag()) opt.window_strides = in.values(in.list_length(rank));
  opt.padding_kind = static_cast<PaddingKind>(in.pick(4));
  if (opt.padding_kind == PaddingKind::Explicit && in.flag())
    opt.padding = in.pairs(in.list_length(rank));
  if (in.flag()) opt.lhs_dilation = in.values(in.list_length(rank));
  if (in.flag()) opt.rhs_dilation = in.values(in.list_length(rank));
  opt.feature_group_count = fgc;
  opt.batch_group_count = bgc;
  trace(
      "conv_general lhs {} '{}', rhs {} '{}', out '{}', strides {}, padding mode {} {}, "
      "lhs_dilation {}, rhs_dilation {}, feature_groups {}, batch_groups {}",
      desc(lhs), opt.dimension_numbers.lhs, desc(rhs), opt.dimension_numbers.rhs,
      opt.dimension_numbers.out, fmt::join(opt.window_strides, ","),
      static_cast<int>(opt.padding_kind), desc(opt.padding), fmt::join(opt.lhs_dilation, ","),
      fmt::join(opt.rhs_dilation, ","), fgc, bgc);
  const Tensor y = conv_general(lhs, rhs, opt);
  check_result(y, "conv_general");
  check_backward(y, {lhs, rhs}, "conv_general backward");
  return y;
}

// ---- pooling

PoolOptions pool_options(Input& in, std::size_t rank) {
  PoolOptions o(in.values(in.list_length(rank)));
  if (in.flag()) o.stride(in.values(in.list_length(rank)));
  switch (in.pick(3)) {
    case 0:
      break;
    case 1:
      o.padding(in.offsets(in.list_length(rank)));
      break;
    default:
      o.padding(in.pairs(in.list_length(rank)));
      break;
  }
  if (in.flag()) o.dilation(in.values(in.list_length(rank)));
  o.ceil_mode(in.flag());
  o.count_include_pad(in.flag());
  if (in.pick(4) == 0) o.divisor_override(in.value());
  return o;
}

Tensor pool_input(Input& in, std::size_t rank) {
  Shape xs{in.tiny_extent(), in.tiny_extent()};
  for (std::size_t d = 0; d < rank; ++d) xs.push_back(in.tiny_extent() + 1);
  if (in.pick(8) == 0) xs.erase(xs.begin());
  return maybe_grad(in, tiny(in, xs));
}

// The argmax contract: every index lies in the input plane and names an element holding the
// returned value (NaN for NaN); -1 or an index outside the plane is a silent wrong answer.
void check_indices(const Tensor& x, const PoolWithIndices& r, const char* op) {
  check_result(r.values, op);
  check_result(r.indices, op);
  if (r.values.shape() != r.indices.shape())
    throw Finding(std::string(op) + ": values " + convtape::to_string(r.values.shape()) +
                  " and indices " + convtape::to_string(r.indices.shape()) + " differ in shape");
  // The pools read x as [N, C, *S]: a plane is everything after the first two dims.
  if (r.values.numel() > kMaxTouchedElements || x.dim() < 3) return;
  i64 plane = 1;
  for (std::size_t d = 2; d < x.shape().size(); ++d) plane *= x.shape()[d];
  if (plane == 0 || x.numel() / plane == 0) return;
  const std::vector<double> xv = x.to_vector<double>();
  const std::vector<double> vv = r.values.to_vector<double>();
  const std::vector<std::int64_t> iv = r.indices.to_vector<std::int64_t>();
  for (std::size_t i = 0; i < iv.size(); ++i) {
    if (iv[i] < 0 || iv[i] >= plane)
      throw Finding(std::string(op) + ": index " + std::to_string(iv[i]) + " outside a plane of " +
                    std::to_string(plane) + " elements (input " + convtape::to_string(x.shape()) +
                    ", value " + std::to_string(vv[i]) + ")");
    // Outputs are row-major [.., C, *S'] over planes in the same order as the input's planes.
    const std::size_t out_plane = iv.size() / static_cast<std::size_t>(x.numel() / plane);
    const std::size_t p = out_plane == 0 ? 0 : i / out_plane;
    const double at = xv[p * static_cast<std::size_t>(plane) + static_cast<std::size_t>(iv[i])];
    const bool same = (std::isnan(at) && std::isnan(vv[i])) || at == vv[i];
    if (!same)
      throw Finding(std::string(op) + ": index " + std::to_string(iv[i]) + " names " +
                    std::to_string(at) + " but the value is " + std::to_string(vv[i]));
  }
}

Tensor pool_op(Input& in) {
  const std::size_t rank = 1 + in.pick(3);
  const Tensor x = pool_input(in, rank);
  const PoolOptions o = pool_options(in, rank);
  const std::size_t which = in.pick(6);
  trace("pool #{} (0-1 max, 2-3 avg, 4 max with indices, 5 + unpool) x {}, {}", which, desc(x),
        desc(o));
  Tensor y;
  switch (which) {
    case 0:
      y = max_pool(x, o);
      break;
    case 1:
      y = rank == 1 ? max_pool1d(x, o) : rank == 2 ? max_pool2d(x, o) : max_pool3d(x, o);
      break;
    case 2:
      y = avg_pool(x, o);
      break;
    case 3:
      y = rank == 1 ? avg_pool1d(x, o) : rank == 2 ? avg_pool2d(x, o) : avg_pool3d(x, o);
      break;
    default: {
      const PoolWithIndices r = max_pool_with_indices(x, o);
      check_indices(x, r, "max_pool_with_indices");
      y = r.values;
      if (which == 5) {
        // Unpool what was pooled, with the same or argument-space options and output size.
        const PoolOptions o2 = in.flag() ? o : pool_options(in, rank);
        Shape out_size;
        if (in.flag()) out_size = in.values(in.list_length(rank) + (in.flag() ? 2 : 0));
        Tensor idx = r.indices;
        if (in.pick(4) == 0)
          idx = wild_index(in, static_cast<std::size_t>(idx.numel())).reshape(idx.shape());
        trace("max_unpool x {}, indices {}, {}, output_size {}", desc(y), desc(idx), desc(o2),
              convtape::to_string(out_size));
        Tensor u = max_unpool(y, idx, o2, out_size);
        check_result(u, "max_unpool");
        check_backward(u, {x}, "max_unpool backward");
        return u;
      }
      break;
    }
  }
  check_result(y, "pool");
  check_backward(y, {x}, "pool backward");
  return y;
}

Tensor adaptive_op(Input& in) {
  const std::size_t rank = 1 + in.pick(3);
  const Tensor x = pool_input(in, rank);
  const Shape out = in.values(in.list_length(rank));
  trace("adaptive pool x {}, output_size {}", desc(x), convtape::to_string(out));
  Tensor y;
  switch (in.pick(4)) {
    case 0:
      y = adaptive_avg_pool(x, out);
      break;
    case 1:
      y = adaptive_max_pool(x, out);
      break;
    case 2: {
      const PoolWithIndices r = adaptive_max_pool_with_indices(x, out);
      check_indices(x, r, "adaptive_max_pool_with_indices");
      y = r.values;
      break;
    }
    default:
      y = global_avg_pool(x);
      break;
  }
  check_result(y, "adaptive pool");
  check_backward(y, {x}, "adaptive pool backward");
  return y;
}

Tensor unpool_op(Input& in) {
  // max_unpool on its own: argument-space indices and options.
  const std::size_t rank = 1 + in.pick(3);
  const Tensor x = pool_input(in, rank);
  Tensor idx = wild_index(in, static_cast<std::size_t>(x.numel())).reshape(x.shape());
  const PoolOptions o = pool_options(in, rank);
  Shape out_size;
  if (in.flag()) out_size = in.values(in.list_length(rank));
  trace(
      "max_unpool x {}, indices {} = {}, {}, output_size {}", desc(x), desc(idx),
      idx.numel() <= 64 ? fmt::format("{}", fmt::join(idx.to_vector<std::int64_t>(), ",")) : "...",
      desc(o), convtape::to_string(out_size));
  Tensor u;
  switch (rank) {
    case 1:
      u = in.flag() ? max_unpool1d(x, idx, o, out_size) : max_unpool(x, idx, o, out_size);
      break;
    case 2:
      u = in.flag() ? max_unpool2d(x, idx, o, out_size) : max_unpool(x, idx, o, out_size);
      break;
    default:
      u = in.flag() ? max_unpool3d(x, idx, o, out_size) : max_unpool(x, idx, o, out_size);
      break;
  }
  check_result(u, "max_unpool");
  check_backward(u, {x}, "max_unpool backward");
  return u;
}

// ---- correlation, signal, elementwise

Tensor correlation_op(Input& in) {
  Shape s{in.tiny_extent(), in.tiny_extent(), in.tiny_extent() + 1, in.tiny_extent() + 1};
  const Tensor f1 = maybe_grad(in, tiny(in, s));
  if (in.pick(8) == 0) s[in.pick(4)] = in.tiny_extent();
  const Tensor f2 = maybe_grad(in, tiny(in, s));
  CorrelationOptions o;
  o.kernel_size(in.value())
      .max_displacement(in.value())
      .stride1(in.value())
      .stride2(in.value())
      .padding(in.value());
  trace(
      "correlation f1 {}, f2 {}, kernel {}, max_displacement {}, stride1 {}, stride2 {}, "
      "padding {}",
      desc(f1), desc(f2), o.kernel_size(), o.max_displacement(), o.stride1(), o.stride2(),
      o.padding());
  const Tensor y = correlation(f1, f2, o);
  check_result(y, "correlation");
  check_backward(y, {f1, f2}, "correlation backward");
  return y;
}

Tensor signal_op(Input& in) {
  const std::size_t rank = in.pick(5);
  const Tensor a = maybe_grad(in, tiny(in, tiny_shape(in, rank)));
  const Tensor b = maybe_grad(in, tiny(in, tiny_shape(in, in.pick(8) == 0 ? in.pick(5) : rank)));
  trace("signal in1 {}, in2 {}", desc(a), desc(b));
  Tensor y;
  switch (in.pick(8)) {
    case 0:
      y = correlate(a, b, static_cast<SignalMode>(in.pick(3)));
      break;
    case 1:
      y = convolve(a, b, static_cast<SignalMode>(in.pick(3)));
      break;
    case 2: {
      static const char* const kModes[] = {"full", "same", "valid", "FULL", ""};
      y = in.flag() ? correlate(a, b, kModes[in.pick(5)]) : convolve(a, b, kModes[in.pick(5)]);
      break;
    }
    case 3:
      y = d2l::corr2d(a, b);
      break;
    case 4:
      y = d2l::corr2d_multi_in(a, b);
      break;
    case 5:
      y = d2l::corr2d_multi_in_out(a, b);
      break;
    case 6:
      y = d2l::corr2d_multi_in_out_1x1(a, b);
      break;
    default:
      y = correlate(a, b);
      break;
  }
  check_result(y, "signal");
  check_backward(y, {a, b}, "signal backward");
  return y;
}

// clamp against its definition: min(max(x, low), high), NaN in x or in a bound propagating (as
// PyTorch does); an error for NaN bounds is acceptable too.
void clamp_op(Input& in) {
  const Tensor x = maybe_grad(in, tiny(in, tiny_shape(in, in.pick(4))));
  const double low = in.real();
  const double high = in.real();
  trace("clamp x {}, low {}, high {}", desc(x), low, high);
  const Tensor y = clamp(x, low, high);
  check_result(y, "clamp");
  if (!x.is_floating_point() || y.numel() != x.numel()) return;
  const auto xv = x.to_vector<double>();
  const auto yv = y.to_vector<double>();
  for (std::size_t i = 0; i < xv.size(); ++i) {
    double want = std::isnan(low) || std::isnan(high) ? std::nan("") : std::max(xv[i], low);
    if (!std::isnan(want)) want = std::min(want, high);
    if (std::isnan(xv[i])) want = xv[i];
    if (x.dtype() == kFloat32) want = static_cast<float>(want);
    const bool same = (std::isnan(want) && std::isnan(yv[i])) || want == yv[i];
    if (!same)
      throw Finding("clamp: clamp(" + std::to_string(xv[i]) + ", " + std::to_string(low) + ", " +
                    std::to_string(high) + ") gave " + std::to_string(yv[i]) + ", expected " +
                    std::to_string(want));
  }
  check_backward(y, {x}, "clamp backward");
}

// An in-place op on a view of a base tensor, the source possibly another view of the same base.
// Either it is refused (expanded destinations, partial overlap), or the destination holds what the
// op defines, computed here from snapshots taken before the call.
void inplace_op(Input& in) {
  NoGradGuard no_grad;
  const Tensor base = tiny(in, tiny_shape(in, 1 + in.pick(3)), /*allow_special=*/false);
  if (!base.is_floating_point()) return;
  Tensor dst = base;
  const std::size_t steps = in.pick(3);
  for (std::size_t i = 0; i < steps; ++i) dst = view_op(in, dst);
  check_result(dst, "in-place destination view");
  Tensor src;
  switch (in.pick(3)) {
    case 0:
      src = view_op(in, base);
      break;
    case 1:
      src = view_op(in, dst);
      break;
    default:
      src = tiny(in, in.flag() ? dst.shape() : tiny_shape(in, in.pick(3)), false);
      break;
  }
  check_result(src, "in-place source view");
  if (dst.numel() > kMaxTouchedElements || src.numel() > kMaxTouchedElements) return;
  if (!dst.storage() || dst.storage() != base.storage()) return;  // a copy, not a view of base
  const std::vector<double> before = dst.to_vector<double>();
  std::vector<double> src_b;
  bool broadcastable = true;
  try {
    src_b = src.to(dst.dtype()).expand(dst.shape()).to_vector<double>();
  } catch (const convtape::Error&) {
    broadcastable = false;
  }
  // Finite factors only: float32 and float64 references would part ways on overflow to inf.
  static constexpr double kAlpha[8] = {0.0, 1.0, -1.0, 0.5, 2.0, -3.5, 0.25, 3.0};
  const double alpha = kAlpha[in.pick(8)];
  const std::size_t which = in.pick(4);
  trace("in-place #{} (add_, mul_, copy_, fill_) dst {} strides {}, src {} strides {}, alpha {}",
        which, desc(dst), convtape::to_string(dst.strides()), desc(src),
        convtape::to_string(src.strides()), alpha);
  switch (which) {
    case 0:
      dst.add_(src, alpha);
      break;
    case 1:
      dst.mul_(alpha);
      break;
    case 2:
      dst.copy_(src);
      break;
    default:
      dst.fill_(alpha);
      break;
  }
  if ((which == 0 || which == 2) && !broadcastable) return;
  const std::vector<double> after = dst.to_vector<double>();
  for (std::size_t i = 0; i < after.size(); ++i) {
    double want = 0;
    switch (which) {
      case 0:
        want = before[i] + alpha * src_b[i];
        break;
      case 1:
        want = before[i] * alpha;
        break;
      case 2:
        want = src_b[i];
        break;
      default:
        want = alpha;
        break;
    }
    if (dst.dtype() == kFloat32) want = static_cast<float>(want);
    const double tol = 1e-5 * (1 + std::abs(want));
    const bool same = (std::isnan(want) && std::isnan(after[i])) || want == after[i] ||
                      std::abs(want - after[i]) <= tol;
    if (!same) {
      static const char* const kNames[] = {"add_", "mul_", "copy_", "fill_"};
      throw Finding(std::string("in-place ") + kNames[which] + " on a view of shape " +
                    convtape::to_string(dst.shape()) + ", strides " +
                    convtape::to_string(dst.strides()) + " (source shape " +
                    convtape::to_string(src.shape()) + ", strides " +
                    convtape::to_string(src.strides()) + ", alpha " + std::to_string(alpha) +
                    "): element " + std::to_string(i) + " is " + std::to_string(after[i]) +
                    ", expected " + std::to_string(want));
    }
  }
}

// The op families, indexed by the first byte modulo 16 (see run).
constexpr const char* kFamily[16] = {
    "factory+views",  "factory+views", "views", "views",   "conv",          "conv",
    "conv_transpose", "conv_general",  "pool",  "pool",    "adaptive_pool", "max_unpool",
    "correlation",    "signal",        "clamp", "in-place"};

void run(Input& in, std::size_t family) {
  switch (family) {
    case 0:
    case 1: {
      // Factories, then views of whatever they built (an undersized buffer shows here).
      Tensor t = factory(in);
      check_result(t, "factory");
      for (std::size_t i = 0, n = in.pick(4); t.defined() && i < n; ++i) {
        t = view_op(in, t);
        check_result(t, "view of a factory result");
      }
      if (t.defined() && t.numel() <= kMaxTouchedElements) (void)t.sum();
      break;
    }
    case 2:
    case 3: {
      Tensor t = maybe_grad(in, tiny(in, tiny_shape(in, in.pick(5))));
      const Tensor x = t;
      for (std::size_t i = 0, n = 1 + in.pick(3); i < n; ++i) {
        t = view_op(in, t);
        check_result(t, "view");
      }
      check_backward(t, {x}, "view backward");
      break;
    }
    case 4:
    case 5:
      conv_op(in);
      break;
    case 6:
      conv_transpose_op(in);
      break;
    case 7:
      conv_general_op(in);
      break;
    case 8:
    case 9:
      pool_op(in);
      break;
    case 10:
      adaptive_op(in);
      break;
    case 11:
      unpool_op(in);
      break;
    case 12:
      correlation_op(in);
      break;
    case 13:
      signal_op(in);
      break;
    case 14:
      clamp_op(in);
      break;
    default:
      inplace_op(in);
      break;
  }
}

std::map<std::string, OpCounts>& counts() {
  static std::map<std::string, OpCounts> c;
  return c;
}

}  // namespace

const std::map<std::string, OpCounts>& op_counts() {
  return counts();
}

}  // namespace ct_fuzz

int ct_fuzz_ops(const std::uint8_t* data, std::size_t size) {
  ct_fuzz::Input in(data, size);
  const std::uint8_t head = in.byte();
  const std::size_t family = head & 15;
  in.set_tame((head & 16) == 0);
  static constexpr int kDtypeMode[8] = {0, 0, 0, 0, 1, 1, 2, 3};
  in.set_dtype_mode(kDtypeMode[head >> 5]);
  auto& c = ct_fuzz::counts()[ct_fuzz::kFamily[family]];
  try {
    ct_fuzz::run(in, family);
    ++c.returned;
  } catch (const convtape::Error&) {
    // A refusal with a message is the contract; everything else propagates.
    ++c.refused;
  }
  return 0;
}
