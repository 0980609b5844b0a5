// PuzzleLib's convolution parameter set. PuzzleLib's Conv1D / Conv2D / Conv3D map onto convtape's
// conv layers through ConvNdOptions::puzzlelib(rank, PuzzleLibConv) and the positional
// Conv2dOptions::puzzlelib(inmaps, outmaps, size, ...) (modules/conv.h), defined in
// modules/puzzlelib.cpp; the initialisation schemes are init::Scheme::puzzlelib (modules/init.h).
#pragma once

#include <cstdint>

#include "modules/init.h"
#include "modules/per_dim.h"

namespace convtape::nn {

// PuzzleLib's ConvND parameters under PuzzleLib's names, in its order, so that
// Conv2D(inmaps=1, outmaps=2, size=3, pad=(1, 0), useBias=False) reads
// Conv2dOptions::puzzlelib({.inmaps = 1, .outmaps = 2, .size = 3, .pad = {1, 0},
// .useBias = false}). What each becomes:
//   inmaps, outmaps   in_channels, out_channels
//   size              kernel_size (PuzzleLib's kernels are always equal-sided)
//   stride, pad, dilation  stride, symmetric padding, dilation (an int or one value per dim)
//   wscale            the std of "gaussian" and the bound of "uniform"; unused by the other
//                     schemes, as in PuzzleLib
//   useBias           bias; PuzzleLib's bias is zero-initialised and shaped (1, outmaps, 1, 1),
//                     ours is zero-initialised and shaped [outmaps]
//   initscheme        the weight's init: "xavier_uniform" (the default, PuzzleLib's None),
//                     "xavier" / "xavier_normal", "he", "gaussian", "uniform", "none", or a
//                     (scheme, factor) pair with factor "in" (default), "out" or "avg"; see
//                     init::Scheme::puzzlelib for the distributions
//   groups            groups
// PuzzleLib's name and empty have no counterpart (Sequential names children; weights are always
// initialised).
struct PuzzleLibConv {
  std::int64_t inmaps = 0;
  std::int64_t outmaps = 0;
  std::int64_t size = 0;
  PerDim stride = 1;
  PerDim pad = 0;
  PerDim dilation = 1;
  double wscale = 1.0;
  bool useBias = true;  // NOLINT(readability-identifier-naming): PuzzleLib's spelling
  init::PuzzleLibInit initscheme = "xavier_uniform";
  std::int64_t groups = 1;
};

}  // namespace convtape::nn
