// PuzzleLib's convolution parameter set onto convtape's conv options (modules/puzzlelib.h).
#include "modules/puzzlelib.h"

#include <utility>

#include "modules/conv.h"

namespace convtape::nn {

ConvNdOptions ConvNdOptions::puzzlelib(std::int64_t rank, const PuzzleLibConv& p) {
  ConvNdOptions o(rank, p.inmaps, p.outmaps, p.size);
  o.stride(p.stride).padding(p.pad).dilation(p.dilation).groups(p.groups).bias(p.useBias);
  o.init(init::Scheme::puzzlelib(p.initscheme, p.wscale)).bias_init(init::Scheme::zeros());
  return o;
}

ConvNdOptions Conv2dOptions::puzzlelib(std::int64_t inmaps, std::int64_t outmaps, std::int64_t size,
                                       PerDim stride, PerDim pad, PerDim dilation, double wscale,
                                       bool use_bias, init::PuzzleLibInit initscheme,
                                       std::int64_t groups) {
  return ConvNdOptions::puzzlelib(2, PuzzleLibConv{.inmaps = inmaps,
                                                   .outmaps = outmaps,
                                                   .size = size,
                                                   .stride = std::move(stride),
                                                   .pad = std::move(pad),
                                                   .dilation = std::move(dilation),
                                                   .wscale = wscale,
                                                   .useBias = use_bias,
                                                   .initscheme = std::move(initscheme),
                                                   .groups = groups});
}

}  // namespace convtape::nn
