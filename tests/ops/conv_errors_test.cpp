// Every argument error of ops/conv (conv, conv1d/2d/3d, conv_transpose, conv_general) and the
// device checks, each message as the front end writes it.
#include <cstdint>
#include <vector>

#include "support/conv_reference.h"

using namespace ct_conv;

// ============================================================================ errors

TEST_CASE("conv: argument errors", "[ops][conv][errors]") {
  const Tensor x = zeros({1, 4, 5, 5}), w = zeros({2, 4, 3, 3});
  CT_REQUIRE_ERROR(
      conv(zeros({4, 5}), zeros({2, 4})),
      "conv: expected input [N, C, *spatial] with at least one spatial dim, got [4, 5]");
  CT_REQUIRE_ERROR(conv(x, zeros({2, 4, 3})),
                   "conv: expected weight [K, C/groups, *R] of rank 4 for input [1, 4, 5, 5], got "
                   "[2, 4, 3]");
  CT_REQUIRE_ERROR(conv(zeros({1, 3, 5, 5}), zeros({2, 1, 3, 3}), {}, ConvOptions().groups(2)),
                   "conv: expected input channels divisible by groups, got C = 3, groups = 2");
  CT_REQUIRE_ERROR(conv(x, zeros({6, 3, 3, 3}), {}, ConvOptions().groups(2)),
                   "conv: expected input channels C = weight.size(1) * groups = 3 * 2 = 6, got "
                   "input [1, 4, 5, 5] with C = 4 (weight [K, C/groups, *R] = [6, 3, 3, 3])");
  CT_REQUIRE_ERROR(conv(x, zeros({2, 3, 3, 3})),
                   "expected input channels C = weight.size(1) * groups = 3 * 1 = 3, got input "
                   "[1, 4, 5, 5] with C = 4");
  CT_REQUIRE_ERROR(conv(x, zeros({3, 2, 3, 3}), {}, ConvOptions().groups(2)),
                   "conv: expected output channels K >= 1 and divisible by groups, got K = 3, "
                   "groups = 2");
  CT_REQUIRE_ERROR(conv(x, w, zeros({3})), "conv: expected bias [K] with K = 2, got [3]");
  CT_REQUIRE_ERROR(conv(x, w, zeros({2, 1})), "conv: expected bias [K] with K = 2, got [2, 1]");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().stride(0)),
                   "conv: expected stride > 0, got [0, 0]");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().stride({1, -2})),
                   "conv: expected stride > 0, got [1, -2]");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().dilation(0)),
                   "conv: expected dilation > 0, got [0, 0]");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().input_dilation({2, 0})),
                   "conv: expected input dilation > 0, got [2, 0]");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().groups(0)), "conv: expected groups >= 1, got 0");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().groups(-2)), "conv: expected groups >= 1, got -2");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().padding(-1)),
                   "conv: expected non-negative padding, got (-1, -1)");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().padding(Pads{{0, 1}, {2, -1}})),
                   "conv: expected non-negative padding, got (2, -1)");
  CT_REQUIRE_ERROR(conv(zeros({1, 1, 2, 2}), zeros({1, 1, 3, 3})),
                   "conv: expected a dilated kernel (3 x 3) no larger than the padded input (2 x "
                   "2), got weight [1, 1, 3, 3] and input [1, 1, 2, 2]");
  CT_REQUIRE_ERROR(conv(zeros({1, 1, 4}), zeros({1, 1, 2}), {}, ConvOptions().dilation(4)),
                   "conv: expected a dilated kernel (5) no larger than the padded input (4)");
  CT_REQUIRE_ERROR(
      conv(zeros({1, 1, 4}), zeros({1, 1, 6}), {}, ConvOptions().padding(PaddingKind::Valid)),
      "conv: expected a dilated kernel (6) no larger than the padded input (4)");
  // Padding and input dilation make room: the same kernels fit.
  CHECK(conv(zeros({1, 1, 2, 2}), zeros({1, 1, 3, 3}), {}, ConvOptions().padding(1)).shape() ==
        Shape{1, 1, 2, 2});
  CHECK(conv(zeros({1, 1, 4}), zeros({1, 1, 6}), {}, ConvOptions().input_dilation(2)).shape() ==
        Shape{1, 1, 2});
  CT_REQUIRE_ERROR(conv(x, w.to(kFloat64)),
                   "conv: expected tensors of one dtype, got float32 and float64");
  CT_REQUIRE_ERROR(conv(x.to(kFloat64), w),
                   "conv: expected tensors of one dtype, got float64 and float32");
  CT_REQUIRE_ERROR(conv(x, w, zeros({2}, kFloat64)),
                   "conv: expected tensors of one dtype, got float32 and float64");
  CT_REQUIRE_ERROR(conv(x.to(kInt64), w.to(kInt64)),
                   "conv: expected a floating-point tensor (float32 or float64), got int64");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().stride({1, 1, 1})),
                   "conv: expected stride with 1 or 2 values (one per spatial dim), got 3");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().padding(Shape{1, 1, 1})),
                   "conv: expected padding with 1 or 2 values (one per spatial dim), got 3");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().padding(Pads{{1, 1}, {1, 1}, {0, 0}})),
                   "conv: expected padding with 1 or 2 values (one per spatial dim), got 3");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().dilation({1, 1, 1, 1})),
                   "conv: expected dilation with 1 or 2 values (one per spatial dim), got 4");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().input_dilation({1, 1, 1})),
                   "conv: expected input dilation with 1 or 2 values (one per spatial dim), got 3");
  CT_REQUIRE_ERROR(conv(Tensor(), w), "conv: expected a defined input tensor");
  CT_REQUIRE_ERROR(conv(x, Tensor()), "conv: expected a defined weight tensor");
}

TEST_CASE("conv1d / conv2d / conv3d check the rank", "[ops][conv][errors]") {
  CT_REQUIRE_ERROR(conv2d(zeros({1, 1, 4}), zeros({1, 1, 2})),
                   "conv2d: expected input of rank 4 ([N, C, 2 spatial dims]), got [1, 1, 4]");
  CT_REQUIRE_ERROR(conv1d(zeros({1, 1, 4, 4}), zeros({1, 1, 2, 2})),
                   "conv1d: expected input of rank 3 ([N, C, 1 spatial dim]), got [1, 1, 4, 4]");
  CT_REQUIRE_ERROR(conv3d(zeros({1, 1, 4, 4}), zeros({1, 1, 2, 2})),
                   "conv3d: expected input of rank 5 ([N, C, 3 spatial dims]), got [1, 1, 4, 4]");
  CT_REQUIRE_ERROR(conv2d(zeros({1, 1, 4, 4}), zeros({1, 1, 2})),
                   "conv2d: expected weight [K, C/groups, *R] of rank 4");
  CT_REQUIRE_ERROR(
      conv_transpose2d(zeros({1, 1, 4}), zeros({1, 1, 2})),
      "conv_transpose2d: expected input of rank 4 ([N, C, 2 spatial dims]), got [1, 1, "
      "4]");
  CT_REQUIRE_ERROR(conv_transpose3d(zeros({1, 1, 4}), zeros({1, 1, 2})),
                   "conv_transpose3d: expected input of rank 5");
}

TEST_CASE("conv_transpose: argument errors", "[ops][conv][errors]") {
  const Tensor x = zeros({1, 4, 3}), w = zeros({4, 2, 3});
  const auto opts = [] { return ConvTransposeOptions(); };
  CT_REQUIRE_ERROR(conv_transpose(zeros({4, 3}), zeros({4, 2})),
                   "conv_transpose: expected input [N, C, *spatial] with at least one spatial dim");
  CT_REQUIRE_ERROR(conv_transpose(x, zeros({4, 2})),
                   "conv_transpose: expected weight [C_in, C_out/groups, *R] of rank 3 for input "
                   "[1, 4, 3], got [4, 2]");
  CT_REQUIRE_ERROR(conv_transpose(x, zeros({3, 2, 3})),
                   "conv_transpose: expected weight [C_in, C_out/groups, *R] with C_in = 4, got "
                   "[3, 2, 3]");
  CT_REQUIRE_ERROR(conv_transpose(zeros({1, 3, 3}), zeros({3, 1, 3}), {}, opts().groups(2)),
                   "conv_transpose: expected input channels divisible by groups, got C_in = 3, "
                   "groups = 2");
  CT_REQUIRE_ERROR(conv_transpose(x, w, {}, opts().groups(0)),
                   "conv_transpose: expected groups >= 1, got 0");
  CT_REQUIRE_ERROR(conv_transpose(x, w, zeros({3})),
                   "conv_transpose: expected bias [C_out] with C_out = 2, got [3]");
  CT_REQUIRE_ERROR(conv_transpose(x, w, zeros({2}), opts().groups(2)),
                   "conv_transpose: expected bias [C_out] with C_out = 4, got [2]");
  CT_REQUIRE_ERROR(conv_transpose(x, w, {}, opts().stride(0)),
                   "conv_transpose: expected stride > 0, got [0]");
  CT_REQUIRE_ERROR(conv_transpose(x, w, {}, opts().dilation(-1)),
                   "conv_transpose: expected dilation > 0, got [-1]");
  CT_REQUIRE_ERROR(conv_transpose(x, w, {}, opts().padding(-1)),
                   "conv_transpose: expected non-negative padding, got [-1]");
  CT_REQUIRE_ERROR(conv_transpose(x, w, {}, opts().stride(2).output_padding(2)),
                   "conv_transpose: expected output_padding smaller than stride or dilation, got "
                   "output_padding = 2, stride = 2, dilation = 1 (dim 0)");
  CT_REQUIRE_ERROR(conv_transpose(x, w, {}, opts().output_padding(1)),
                   "got output_padding = 1, stride = 1, dilation = 1 (dim 0)");
  CT_REQUIRE_ERROR(conv_transpose(x, w, {}, opts().stride(2).dilation(2).output_padding(2)),
                   "got output_padding = 2, stride = 2, dilation = 2 (dim 0)");
  CT_REQUIRE_ERROR(conv_transpose(x, w, {}, opts().stride(2).output_padding(-1)),
                   "expected output_padding smaller than stride or dilation, got output_padding "
                   "= -1");
  CT_REQUIRE_ERROR(conv_transpose(zeros({1, 4, 3, 3}), zeros({4, 2, 3, 3}), {},
                                  opts().stride({2, 2}).output_padding({0, 2})),
                   "got output_padding = 2, stride = 2, dilation = 1 (dim 1)");
  CT_REQUIRE_ERROR(conv_transpose(zeros({1, 4, 3, 3}), zeros({4, 2, 3, 3}), {},
                                  opts().output_padding({0, 0, 0})),
                   "conv_transpose: expected output_padding with 1 or 2 values (one per spatial "
                   "dim), got 3");
  CT_REQUIRE_ERROR(
      conv_transpose(zeros({1, 4, 3, 3}), zeros({4, 2, 3, 3}), {}, opts().stride({1, 1, 1})),
      "conv_transpose: expected stride with 1 or 2 values (one per spatial dim), got 3");
  CT_REQUIRE_ERROR(
      conv_transpose(zeros({1, 4, 3, 3}), zeros({4, 2, 3, 3}), {}, opts().padding({0, 0, 0})),
      "conv_transpose: expected padding with 1 or 2 values (one per spatial dim), got 3");
  CT_REQUIRE_ERROR(conv_transpose(zeros({1, 4, 1}), zeros({4, 2, 1}), {}, opts().padding(1)),
                   "conv_transpose: expected a positive output size, got -1 in dim 0");
  CT_REQUIRE_ERROR(conv_transpose(x, w.to(kFloat64)),
                   "conv_transpose: expected tensors of one dtype, got float32 and float64");
  CT_REQUIRE_ERROR(conv_transpose(x, w, zeros({2}, kFloat64)),
                   "conv_transpose: expected tensors of one dtype, got float32 and float64");
}

TEST_CASE("conv_general: argument errors", "[ops][conv][errors]") {
  const Tensor lhs = zeros({1, 2, 5, 5}), rhs = zeros({3, 2, 3, 3});
  const auto with = [](std::string l, std::string r, std::string o) {
    ConvGeneralOptions opts;
    opts.dimension_numbers = {std::move(l), std::move(r), std::move(o)};
    return opts;
  };
  // Wrong lengths.
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCH", "OIHW", "NCHW")),
                   "conv_general: expected lhs dimension numbers of length 4 (the operand's rank), "
                   "got 'NCH'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHW", "OIHWD", "NCHW")),
                   "conv_general: expected rhs dimension numbers of length 4 (the operand's rank), "
                   "got 'OIHWD'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHW", "OIHW", "NCHWX")),
                   "conv_general: expected out dimension numbers of length 4");
  // Missing batch / feature letters.
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("XCHW", "OIHW", "NCHW")),
                   "conv_general: expected lhs dimension numbers with one N, one C and the spatial "
                   "dims 'HW', got 'XCHW'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NHWX", "OIHW", "NCHW")),
                   "conv_general: expected lhs dimension numbers with one N, one C and the spatial "
                   "dims 'HW', got 'NHWX'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHW", "IHWX", "NCHW")),
                   "conv_general: expected rhs dimension numbers with one O, one I and the spatial "
                   "dims 'HWX', got 'IHWX'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHW", "OOHW", "NCHW")),
                   "conv_general: expected rhs dimension numbers with one O, one I and the spatial "
                   "dims 'HW', got 'OOHW'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHW", "OIHW", "NOHW")),
                   "conv_general: expected out dimension numbers with one N, one C and the spatial "
                   "dims 'HW', got 'NOHW'");
  // Duplicate letters.
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHH", "OIHW", "NCHW")),
                   "conv_general: expected lhs dimension numbers with one N, one C and the spatial "
                   "dims 'HW', got 'NCHH'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHW", "OIHH", "NCHW")),
                   "conv_general: expected rhs dimension numbers with one O, one I and the spatial "
                   "dims 'HH', got 'OIHH'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NNHW", "OIHW", "NCHW")),
                   "expected lhs dimension numbers with one N, one C");
  // Spatial letters that do not match between the operands and the result.
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHD", "OIHW", "NCHW")),
                   "conv_general: expected lhs dimension numbers with one N, one C and the spatial "
                   "dims 'HW', got 'NCHD'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHW", "OIHW", "NCWD")),
                   "conv_general: expected out dimension numbers with one N, one C and the spatial "
                   "dims 'HW', got 'NCWD'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHW", "OIXY", "NCXY")),
                   "conv_general: expected lhs dimension numbers with one N, one C and the spatial "
                   "dims 'XY', got 'NCHW'");
  // Operand ranks.
  CT_REQUIRE_ERROR(
      conv_general(zeros({1, 2, 5}), rhs, {}),
      "conv_general: expected lhs and rhs of one rank, got [1, 2, 5] and [3, 2, 3, 3]");
  CT_REQUIRE_ERROR(conv_general(zeros({1, 2}), zeros({3, 2}), {}),
                   "conv_general: expected rhs with at least one spatial dim, got [3, 2]");
  // Group counts.
  ConvGeneralOptions both;
  both.feature_group_count = 2;
  both.batch_group_count = 2;
  CT_REQUIRE_ERROR(conv_general(zeros({2, 4, 5, 5}), zeros({4, 2, 3, 3}), both),
                   "conv_general: expected feature_group_count or batch_group_count to be 1, got 2 "
                   "and 2");
  ConvGeneralOptions zero;
  zero.feature_group_count = 0;
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, zero),
                   "conv_general: expected group counts >= 1, got feature_group_count = 0, "
                   "batch_group_count = 1");
  ConvGeneralOptions bg;
  bg.batch_group_count = 2;
  CT_REQUIRE_ERROR(conv_general(zeros({3, 2, 5, 5}), zeros({4, 2, 3, 3}), bg),
                   "conv_general: expected the batch size divisible by batch_group_count, got 3 "
                   "and 2");
  CT_REQUIRE_ERROR(conv_general(zeros({2, 2, 5, 5}), rhs, bg),
                   "conv_general: expected output features divisible by batch_group_count, got 3 "
                   "and 2");
  ConvGeneralOptions fg;
  fg.feature_group_count = 2;
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, fg),
                   "conv_general: expected input channels C = weight.size(1) * groups = 2 * 2 = "
                   "4, got input");
  // Per-dim options, sizes, dtypes.
  ConvGeneralOptions strides;
  strides.window_strides = {1, 1, 1};
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, strides),
                   "conv_general: expected stride with 1 or 2 values (one per spatial dim), got 3");
  ConvGeneralOptions pads;
  pads.padding = {{1, 1}, {1, 1}, {1, 1}};
  CT_REQUIRE_ERROR(
      conv_general(lhs, rhs, pads),
      "conv_general: expected padding with 1 or 2 values (one per spatial dim), got 3");
  // Negative padding crops (JAX), conv's own refuses it.
  ConvGeneralOptions neg;
  neg.padding = {{1, 1}, {0, -9}};
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, neg),
                   "conv_general: expected negative padding to leave part of the (lhs dilated) "
                   "input, got padding (0, -9)");
  CT_REQUIRE_ERROR(
      conv(zeros({1, 2, 5, 5}), zeros({1, 2, 3, 3}), {}, ConvOptions().padding({{1, 1}, {0, -1}})),
      "conv: expected non-negative padding, got (0, -1)");
  ConvGeneralOptions dil;
  dil.rhs_dilation = {1, 0};
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, dil), "conv_general: expected dilation > 0, got [1, 0]");
  ConvGeneralOptions ldil;
  ldil.lhs_dilation = {0};
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, ldil),
                   "conv_general: expected input dilation > 0, got [0, 0]");
  ConvGeneralOptions valid;
  valid.padding_kind = PaddingKind::Valid;
  CT_REQUIRE_ERROR(
      conv_general(lhs, zeros({3, 2, 7, 7}), valid),
      "conv_general: expected a dilated kernel (7 x 7) no larger than the padded input "
      "(5 x 5)");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs.to(kFloat64), {}),
                   "conv_general: expected tensors of one dtype, got float32 and float64");
  CT_REQUIRE_ERROR(conv_general(Tensor(), rhs, {}), "conv_general: expected a defined lhs tensor");
  CT_REQUIRE_ERROR(conv_general(lhs, Tensor(), {}), "conv_general: expected a defined rhs tensor");
  // Padding names.
  CT_REQUIRE_ERROR(padding_kind_from_string("FULL"),
                   "conv_general: expected padding 'SAME', 'SAME_LOWER' or 'VALID' (any case), "
                   "got 'FULL'");
  CT_REQUIRE_ERROR(
      padding_kind_from_string("SAME ", "my_op"),
      "my_op: expected padding 'SAME', 'SAME_LOWER' or 'VALID' (any case), got 'SAME '");
  CT_REQUIRE_ERROR(padding_kind_from_string(""), "got ''");
}

TEST_CASE("conv: device mismatches are refused before any kernel runs", "[ops][conv][device]") {
  // Tensors labelled as living on cuda:0 over host memory that nothing dereferences, as in
  // tests/core/tensor_test.cpp: the checks must reject them with or without a GPU.
  static float host[64] = {};
  auto fake = std::make_shared<Storage>(host, sizeof(host), Device(DeviceType::CUDA, 0), nullptr);
  const Tensor xd = Tensor::make(fake, {1, 1, 4}, {4, 4, 1}, 0, kFloat32);
  const Tensor wd = Tensor::make(fake, {1, 1, 2}, {2, 2, 1}, 0, kFloat32);
  const Tensor bd = Tensor::make(fake, {1}, {1}, 0, kFloat32);
  const Tensor x = zeros({1, 1, 4}), w = zeros({1, 1, 2}), b = zeros({1});
  CT_REQUIRE_ERROR(conv(x, wd), "conv: expected tensors on one device, got cpu and cuda:0");
  CT_REQUIRE_ERROR(conv(xd, w), "conv: expected tensors on one device, got cuda:0 and cpu");
  CT_REQUIRE_ERROR(conv(x, w, bd), "conv: expected tensors on one device, got cpu and cuda:0");
  CT_REQUIRE_ERROR(conv1d(x, wd), "conv1d: expected tensors on one device");
  CT_REQUIRE_ERROR(conv_transpose(x, wd),
                   "conv_transpose: expected tensors on one device, got cpu and cuda:0");
  ConvGeneralOptions o;
  o.dimension_numbers = {"NCW", "OIW", "NCW"};
  CT_REQUIRE_ERROR(conv_general(x, wd, o),
                   "conv_general: expected tensors on one device, got cpu and cuda:0");
}
