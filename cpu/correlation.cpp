// The correlation kernels of cpu/correlation.h. Both inputs are copied into zero-padded
// channels-last buffers P [N, Hp, Wp, C]; there a k x k patch row is k * C contiguous values, so
// each (output position, displacement) term is a dot product of contiguous runs, and the
// displacements of one position along a row sit at a fixed stride (stride2 * C) in P2:
//   forward   y[(p, o), y, x]  = scale * sum_i dot(P1[cy + i, cx - r ..], P2[cy + i + p s2, cx - r
//                                + o s2 ..])                          (dots: D values per call)
//   df1       dP1[py, px, :]   = sum_{p, o} w1[p, o] * P2[py + p s2, px + o s2, :]
//                                w1[p, o] = scale * sum of dy[(p, o), y, x] over the outputs
//                                whose patch covers (py, px)            (combine: D rows per call)
//   df2       dP2[py, px, :]   = sum_{p, o} w2[p, o] * P1[py - p s2, px - o s2, :]
//                                w2[p, o] = scale * sum of dy[(p, o), y, x] over the outputs
//                                whose shifted patch covers (py, px)
// with scale = 1 / (k * k * C), which the gradients apply once per finished row. Every pass gathers
// into rows it owns (an output row, or one row of df1 / df2), so the rows run in parallel without
// atomics or per-thread copies, and only the unpadded rows of df1 / df2 are computed: the gradient
// of the padding is never needed. The AVX-512 kernels keep up to 8 displacements (dots) or 8
// vectors of channels (combine) in registers per load of the shared operand and reduce the 8 dot
// products with one shuffle tree.
#include "cpu/correlation.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <vector>

#include "core/checked.h"
#include "cpu/isa.h"

namespace convtape::cpu {

namespace {

// Passes below this many multiply-adds stay on the calling thread (as in cpu/conv.cpp).
constexpr std::int64_t kParallelWork = std::int64_t{1} << 18;

// A dot product of `rows` runs of `len` values, the runs `row_stride` apart (one patch row each).
struct DotShape {
  std::int64_t len, rows, row_stride;
};

// ---- portable and AVX2 bodies, instantiated per ISA with function-level target attributes

// clang-format off
#define CT_CORRELATION_OPS(SUFFIX, TARGET)                                                         \
  /* out[o] = scale * sum_rows sum_c a[c] * b[o * bstep + c] for o < nd, four at a time */         \
  template <class T>                                                                               \
  TARGET void dots_##SUFFIX(T* out, const T* a, const T* b, std::int64_t bstep, std::int64_t nd,   \
                            const DotShape& s, T scale) {                                          \
    for (std::int64_t o = 0; o < nd; o += 4) {                                                     \
      /* a short last group repeats its last displacement rather than branching in the loop */    \
      const T* b0 = b + o * bstep;                                                                 \
      const T* b1 = b + std::min(o + 1, nd - 1) * bstep;                                           \
      const T* b2 = b + std::min(o + 2, nd - 1) * bstep;                                           \
      const T* b3 = b + std::min(o + 3, nd - 1) * bstep;                                           \
      T s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                                            \
      for (std::int64_t i = 0; i < s.rows; ++i) {                                                  \
        const std::int64_t off = i * s.row_stride;                                                 \
        const T* ar = a + off;                                                                     \
        _Pragma("omp simd reduction(+ : s0, s1, s2, s3)")                                          \
        for (std::int64_t c = 0; c < s.len; ++c) {                                                 \
          const T v = ar[c];                                                                       \
          s0 += v * b0[off + c]; s1 += v * b1[off + c];                                            \
          s2 += v * b2[off + c]; s3 += v * b3[off + c];                                            \
        }                                                                                          \
      }                                                                                            \
      const T sums[4] = {s0, s1, s2, s3};                                                          \
      for (std::int64_t j = 0; j < 4 && o + j < nd; ++j) out[o + j] = scale * sums[j];             \
    }                                                                                              \
  }                                                                                                \
  /* dst[c] += sum_{o < nd} w[o * ws] * b[o * bstep + c] for c < len, a block of channels at a  \
     time */                                                                                       \
  template <class T>                                                                               \
  TARGET void combine_##SUFFIX(T* dst, const T* w, std::int64_t ws, const T* b, std::int64_t bstep, \
                               std::int64_t nd, std::int64_t len) {                                \
    constexpr std::int64_t kB = 256 / sizeof(T);                                                   \
    std::int64_t c0 = 0;                                                                           \
    for (; c0 + kB <= len; c0 += kB) { /* whole blocks: the sums stay in registers */             \
      T acc[kB];                                                                                   \
      for (std::int64_t j = 0; j < kB; ++j) acc[j] = dst[c0 + j];                                  \
      for (std::int64_t o = 0; o < nd; ++o) {                                                      \
        const T wo = w[o * ws]; const T* bo = b + o * bstep + c0;                                  \
        _Pragma("omp simd") for (std::int64_t j = 0; j < kB; ++j) acc[j] += wo * bo[j];            \
      }                                                                                            \
      for (std::int64_t j = 0; j < kB; ++j) dst[c0 + j] = acc[j];                                  \
    }                                                                                              \
    for (std::int64_t o = 0; o < nd && c0 < len; ++o) { /* the partial last block */             \
      const T wo = w[o * ws]; const T* bo = b + o * bstep;                                         \
      for (std::int64_t c = c0; c < len; ++c) dst[c] += wo * bo[c];                                \
    }                                                                                              \
  }

CT_CORRELATION_OPS(avx2, __attribute__((target("avx2,fma"))))
CT_CORRELATION_OPS(base, )
#undef CT_CORRELATION_OPS
// clang-format on

// ---- AVX-512

#define CT_AVX512 __attribute__((target("avx512f"), always_inline)) inline

template <class T>
struct Vec512;
template <>
struct Vec512<float> {
  using V = __m512;
  using M = __mmask16;
  static constexpr std::int64_t kW = 16;
  static CT_AVX512 M mask(std::int64_t m) {
    return m >= kW ? static_cast<M>(0xFFFF) : static_cast<M>((1u << m) - 1);
  }
  static CT_AVX512 V load(const float* p) { return _mm512_loadu_ps(p); }
  static CT_AVX512 V load(M k, const float* p) { return _mm512_maskz_loadu_ps(k, p); }
  static CT_AVX512 void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static CT_AVX512 void store(M k, float* p, V v) { _mm512_mask_storeu_ps(p, k, v); }
  static CT_AVX512 V set1(float a) { return _mm512_set1_ps(a); }
  static CT_AVX512 V zero() { return _mm512_setzero_ps(); }
  static CT_AVX512 V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  // The shuffles below are the masked forms with a full mask: they name every source, where GCC
  // 12's unmasked forms read an undefined vector and trip -Wuninitialized.
  // Pairs of 256-bit halves of a and b added: [a.lo + a.hi, b.lo + b.hi] as 128-bit lanes.
  static CT_AVX512 V half(V a, V b) {
    return _mm512_add_ps(_mm512_mask_shuffle_f32x4(a, 0xFFFF, a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_mask_shuffle_f32x4(a, 0xFFFF, a, b, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  // Two outputs of half() to four 128-bit lanes of partial sums, one per original vector.
  static CT_AVX512 V quarter(V a, V b) {
    return _mm512_add_ps(_mm512_mask_shuffle_f32x4(a, 0xFFFF, a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_mask_shuffle_f32x4(a, 0xFFFF, a, b, _MM_SHUFFLE(3, 1, 3, 1)));
  }
  // The eight horizontal sums of v[0..7], scaled, into out[0..n). A shuffle tree: 512 -> 256 bits
  // per pair, 256 -> 128 per quad, then within 128-bit lanes; lane l ends with sum(v[l]) at element
  // 0 and sum(v[l + 4]) at element 2, which one permute puts in order.
  static CT_AVX512 void sums8(const V* v, float* out, int n, float scale) {
    const V w0 = quarter(half(v[0], v[1]), half(v[2], v[3]));
    const V w1 = quarter(half(v[4], v[5]), half(v[6], v[7]));
    const V z = _mm512_add_ps(_mm512_mask_shuffle_ps(w0, 0xFFFF, w0, w1, _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_mask_shuffle_ps(w0, 0xFFFF, w0, w1, _MM_SHUFFLE(3, 2, 3, 2)));
    const V f = _mm512_add_ps(z, _mm512_mask_shuffle_ps(z, 0xFFFF, z, z, _MM_SHUFFLE(2, 3, 0, 1)));
    const V ordered = _mm512_mask_permutexvar_ps(
        f, 0xFFFF, _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0), f);
    _mm512_mask_storeu_ps(out, static_cast<M>((1u << n) - 1), _mm512_mul_ps(ordered, set1(scale)));
  }
};
template <>
struct Vec512<double> {
  using V = __m512d;
  using M = __mmask8;
  static constexpr std::int64_t kW = 8;
  static CT_AVX512 M mask(std::int64_t m) {
    return m >= kW ? static_cast<M>(0xFF) : static_cast<M>((1u << m) - 1);
  }
  static CT_AVX512 V load(const double* p) { return _mm512_loadu_pd(p); }
  static CT_AVX512 V load(M k, const double* p) { return _mm512_maskz_loadu_pd(k, p); }
  static CT_AVX512 void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static CT_AVX512 void store(M k, double* p, V v) { _mm512_mask_storeu_pd(p, k, v); }
  static CT_AVX512 V set1(double a) { return _mm512_set1_pd(a); }
  static CT_AVX512 V zero() { return _mm512_setzero_pd(); }
  static CT_AVX512 V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static CT_AVX512 V half(V a, V b) {
    return _mm512_add_pd(_mm512_mask_shuffle_f64x2(a, 0xFF, a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_mask_shuffle_f64x2(a, 0xFF, a, b, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  static CT_AVX512 V quarter(V a, V b) {
    return _mm512_add_pd(_mm512_mask_shuffle_f64x2(a, 0xFF, a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_mask_shuffle_f64x2(a, 0xFF, a, b, _MM_SHUFFLE(3, 1, 3, 1)));
  }
  // As for float; 128-bit lane l ends with sum(v[l]) and sum(v[l + 4]).
  static CT_AVX512 void sums8(const V* v, double* out, int n, double scale) {
    const V w0 = quarter(half(v[0], v[1]), half(v[2], v[3]));
    const V w1 = quarter(half(v[4], v[5]), half(v[6], v[7]));
    const V z = _mm512_add_pd(_mm512_mask_unpacklo_pd(w0, 0xFF, w0, w1),
                              _mm512_mask_unpackhi_pd(w0, 0xFF, w0, w1));
    const V ordered =
        _mm512_mask_permutexvar_pd(z, 0xFF, _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), z);
    _mm512_mask_storeu_pd(out, static_cast<M>((1u << n) - 1), _mm512_mul_pd(ordered, set1(scale)));
  }
};

// NB (<= 8) dot products sharing the operand a: one load of a feeds NB FMAs. Accumulators past NB
// stay zero for the reduction tree.
template <class T, int NB>
__attribute__((target("avx512f"))) void dots_block_avx512(T* out, const T* a, const T* b,
                                                          std::int64_t bstep, const DotShape& s,
                                                          T scale) {
  using X = Vec512<T>;
  typename X::V acc[8];
  for (auto& v : acc) v = X::zero();
  for (std::int64_t i = 0; i < s.rows; ++i) {
    const std::int64_t off = i * s.row_stride;
    const T* ar = a + off;
    const T* br = b + off;
    std::int64_t c = 0;
    for (; c + X::kW <= s.len; c += X::kW) {
      const auto va = X::load(ar + c);
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j) acc[j] = X::fma(va, X::load(br + j * bstep + c), acc[j]);
    }
    if (c < s.len) {
      const auto m = X::mask(s.len - c);
      const auto va = X::load(m, ar + c);
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j) acc[j] = X::fma(va, X::load(m, br + j * bstep + c), acc[j]);
    }
  }
  X::sums8(acc, out, NB, scale);
}

// Splits nd displacements into near-equal blocks of at most 8 (D = 21: three blocks of 7).
template <class T>
void dots_avx512(T* out, const T* a, const T* b, std::int64_t bstep, std::int64_t nd,
                 const DotShape& s, T scale) {
  const std::int64_t blocks = (nd + 7) / 8;
  std::int64_t o = 0;
  for (std::int64_t q = 0; q < blocks; ++q) {
    const std::int64_t nb = (nd - o) / (blocks - q) + ((nd - o) % (blocks - q) != 0);
    T* d = out + o;
    const T* bo = b + o * bstep;
    switch (nb) {
      case 1:
        dots_block_avx512<T, 1>(d, a, bo, bstep, s, scale);
        break;
      case 2:
        dots_block_avx512<T, 2>(d, a, bo, bstep, s, scale);
        break;
      case 3:
        dots_block_avx512<T, 3>(d, a, bo, bstep, s, scale);
        break;
      case 4:
        dots_block_avx512<T, 4>(d, a, bo, bstep, s, scale);
        break;
      case 5:
        dots_block_avx512<T, 5>(d, a, bo, bstep, s, scale);
        break;
      case 6:
        dots_block_avx512<T, 6>(d, a, bo, bstep, s, scale);
        break;
      case 7:
        dots_block_avx512<T, 7>(d, a, bo, bstep, s, scale);
        break;
      default:
        dots_block_avx512<T, 8>(d, a, bo, bstep, s, scale);
        break;
    }
    o += nb;
  }
}

// U vectors of channels (the last one masked to `tail` values) accumulate all nd weighted rows in
// registers: U independent FMA chains per broadcast weight.
template <class T, int U>
__attribute__((target("avx512f"))) void combine_block_avx512(T* dst, const T* w, std::int64_t ws,
                                                             const T* b, std::int64_t bstep,
                                                             std::int64_t nd, std::int64_t tail) {
  using X = Vec512<T>;
  const auto m = X::mask(tail);
  typename X::V acc[U];
#pragma GCC unroll 8
  for (int u = 0; u < U - 1; ++u) acc[u] = X::load(dst + u * X::kW);
  acc[U - 1] = X::load(m, dst + (U - 1) * X::kW);
  for (std::int64_t o = 0; o < nd; ++o) {
    const auto wo = X::set1(w[o * ws]);
    const T* bo = b + o * bstep;
#pragma GCC unroll 8
    for (int u = 0; u < U - 1; ++u) acc[u] = X::fma(wo, X::load(bo + u * X::kW), acc[u]);
    acc[U - 1] = X::fma(wo, X::load(m, bo + (U - 1) * X::kW), acc[U - 1]);
  }
#pragma GCC unroll 8
  for (int u = 0; u < U - 1; ++u) X::store(dst + u * X::kW, acc[u]);
  X::store(m, dst + (U - 1) * X::kW, acc[U - 1]);
}

template <class T>
void combine_avx512(T* dst, const T* w, std::int64_t ws, const T* b, std::int64_t bstep,
                    std::int64_t nd, std::int64_t len) {
  constexpr std::int64_t kW = Vec512<T>::kW;
  for (std::int64_t c = 0; c < len; c += 8 * kW) {
    const std::int64_t rem = std::min(len - c, 8 * kW);
    const std::int64_t vectors = (rem + kW - 1) / kW, tail = rem - (vectors - 1) * kW;
    T* d = dst + c;
    const T* bc = b + c;
    switch (vectors) {
      case 1:
        combine_block_avx512<T, 1>(d, w, ws, bc, bstep, nd, tail);
        break;
      case 2:
        combine_block_avx512<T, 2>(d, w, ws, bc, bstep, nd, tail);
        break;
      case 3:
        combine_block_avx512<T, 3>(d, w, ws, bc, bstep, nd, tail);
        break;
      case 4:
        combine_block_avx512<T, 4>(d, w, ws, bc, bstep, nd, tail);
        break;
      case 5:
        combine_block_avx512<T, 5>(d, w, ws, bc, bstep, nd, tail);
        break;
      case 6:
        combine_block_avx512<T, 6>(d, w, ws, bc, bstep, nd, tail);
        break;
      case 7:
        combine_block_avx512<T, 7>(d, w, ws, bc, bstep, nd, tail);
        break;
      default:
        combine_block_avx512<T, 8>(d, w, ws, bc, bstep, nd, tail);
        break;
    }
  }
}

// ---- dispatch

// Each pass reads cpu::isa() once and hands it to every call, so that one op runs one path.
template <class T>
void dots(Isa path, T* out, const T* a, const T* b, std::int64_t bstep, std::int64_t nd,
          const DotShape& s, T scale) {
  switch (path) {
    case Isa::avx512:
      return dots_avx512(out, a, b, bstep, nd, s, scale);
    case Isa::avx2:
      return dots_avx2(out, a, b, bstep, nd, s, scale);
    default:
      return dots_base(out, a, b, bstep, nd, s, scale);
  }
}

template <class T>
void combine(Isa path, T* dst, const T* w, std::int64_t ws, const T* b, std::int64_t bstep,
             std::int64_t nd, std::int64_t len) {
  switch (path) {
    case Isa::avx512:
      return combine_avx512(dst, w, ws, b, bstep, nd, len);
    case Isa::avx2:
      return combine_avx2(dst, w, ws, b, bstep, nd, len);
    default:
      return combine_base(dst, w, ws, b, bstep, nd, len);
  }
}

// ---- layout changes

// dst[j * ldd + i] = scale * src[i * lds + j] for i < rows, j < cols, in tiles that keep both
// sides' cache lines live.
template <class T>
void transpose(const T* src, std::int64_t lds, T* dst, std::int64_t ldd, std::int64_t rows,
               std::int64_t cols, T scale = T(1)) {
  constexpr std::int64_t kT = 16;
  for (std::int64_t i0 = 0; i0 < rows; i0 += kT)
    for (std::int64_t j0 = 0; j0 < cols; j0 += kT) {
      const std::int64_t i1 = std::min(rows, i0 + kT), j1 = std::min(cols, j0 + kT);
      for (std::int64_t i = i0; i < i1; ++i)
        for (std::int64_t j = j0; j < j1; ++j) dst[j * ldd + i] = scale * src[i * lds + j];
    }
}

// The smallest m > 0 with m * step1 a multiple of stride2: positions m apart read the same
// displacement grid shifted by whole displacements. Capped at the row length: a longer period
// visits each position once anyway, and an uncapped one (a huge stride2) would loop for ages.
std::int64_t column_period(std::int64_t step1, std::int64_t stride2, std::int64_t row) {
  return std::max<std::int64_t>(std::min(stride2 / std::gcd(step1, stride2), row), 1);
}

// Distance between neighbouring displacements in a padded channels-last row: stride2 * C. With a
// single displacement (grid radius 0) it is never used and stride2 may be huge, so 0; otherwise
// stride2 <= max_displacement < padded width / 2 and the product lies inside the padded buffer.
std::int64_t displacement_step(const CorrelationGeometry& g) {
  return g.grid_radius() == 0 ? 0 : g.stride2 * g.channels;
}

bool parallel(std::int64_t tasks, std::int64_t work) {
  return tasks > 1 && work >= kParallelWork;
}

// Multiply-adds of a pass, output size * k * k * C (each factor checked by the front end, the
// product saturating: it only decides whether to wake the threads).
std::int64_t pass_work(const CorrelationGeometry& g) {
  const std::int64_t out = g.batch * g.grid() * g.grid() * g.out_height() * g.out_width();
  return checked::try_mul(out, g.kernel * g.kernel * g.channels)
      .value_or(std::numeric_limits<std::int64_t>::max());
}

// ---- the padded path's limit, and the direct passes beyond it

// The padded channels-last buffers cost Hp * Wp * C per sample to build and bound the patch taps
// the padded passes visit (k <= Hp). They are used while a padded plane is at most four times the
// input plane plus 64 Ki values; past that (a huge padding, kernel or displacement) the direct
// passes below run instead, whose work is bounded by the output size and the real taps.
bool padded_ok(const CorrelationGeometry& g) {
  const auto plane = checked::try_mul(g.padded_height(), g.padded_width());
  const auto limit = checked::try_mul(g.height, g.width * 4);  // h * w <= numel(f1): fits
  if (!plane || !limit || *plane > *limit + 65536) return false;
  const auto sample = checked::try_mul(*plane, g.channels);
  return sample && checked::try_mul(*sample, g.batch).has_value();
}

// The input rows (or columns) [lo, hi) that a patch centred at padded coordinate `centre` covers
// inside the input and whose displaced row a + shift is inside too. centre < padded extent, so
// u = centre - pad lies in [radius - pad, extent + pad) and every sum below stays within the
// padded extent (checked by the front end); |shift| <= max_displacement < padded extent / 2, and
// extent - shift <= extent + max_displacement, which the allocated input's extent keeps small.
inline void tap_range(std::int64_t centre, std::int64_t pad, std::int64_t r, std::int64_t shift,
                      std::int64_t extent, std::int64_t& lo, std::int64_t& hi) {
  const std::int64_t u = centre - pad;
  lo = std::max({u - r, std::int64_t{0}, -shift});
  hi = std::min({u + r + 1, extent, extent - shift});
}

// Direct forward: y[n, e, oy, ox] = scale * sum over c and the in-range taps of f1 * f2, straight
// from the unpadded inputs. One (sample, displacement) output plane per task.
template <class T>
void direct_forward(const T* f1, const T* f2, T* y, const CorrelationGeometry& g) {
  const std::int64_t c_ = g.channels, h = g.height, w = g.width, pad = g.padding;
  const std::int64_t r = g.radius(), b = g.border(), rr = g.grid_radius(), d = g.grid();
  const std::int64_t ho = g.out_height(), wo = g.out_width(), plane = ho * wo;
  const T scale = T(1) / static_cast<T>(g.kernel * g.kernel * c_);
  const std::int64_t tasks = g.batch * d * d;
#pragma omp parallel for schedule(dynamic) if (parallel(tasks, pass_work(g)))
  for (std::int64_t t = 0; t < tasks; ++t) {
    const std::int64_t n = t / (d * d), e = t % (d * d);
    const std::int64_t sy = (e / d - rr) * g.stride2, sx = (e % d - rr) * g.stride2;
    T* out = y + t * plane;
    for (std::int64_t oy = 0; oy < ho; ++oy) {
      std::int64_t y0, y1;
      tap_range(oy * g.stride1 + b, pad, r, sy, h, y0, y1);
      for (std::int64_t ox = 0; ox < wo; ++ox) {
        std::int64_t x0, x1;
        tap_range(ox * g.stride1 + b, pad, r, sx, w, x0, x1);
        T sum = 0;
        for (std::int64_t c = 0; c < c_; ++c) {
          const T* a1 = f1 + (n * c_ + c) * h * w;
          const T* a2 = f2 + (n * c_ + c) * h * w;
          for (std::int64_t a = y0; a < y1; ++a)
            for (std::int64_t bx = x0; bx < x1; ++bx)
              sum += a1[a * w + bx] * a2[(a + sy) * w + bx + sx];
        }
        out[oy * wo + ox] = scale * sum;
      }
    }
  }
}

// Direct gradients, the adjoint of direct_forward: df1[a, bx] += scale * dy * f2[a + sy, bx + sx]
// (first) or df2[a + sy, bx + sx] += scale * dy * f1[a, bx]. One (sample, channel) plane of the
// gradient per task, so the tasks write disjoint planes.
template <class T>
void direct_backward(const T* dy, const T* other, T* grad, const CorrelationGeometry& g,
                     bool first) {
  const std::int64_t c_ = g.channels, h = g.height, w = g.width, pad = g.padding;
  const std::int64_t r = g.radius(), b = g.border(), rr = g.grid_radius(), d = g.grid();
  const std::int64_t ho = g.out_height(), wo = g.out_width(), plane = ho * wo;
  const T scale = T(1) / static_cast<T>(g.kernel * g.kernel * c_);
  const std::int64_t tasks = g.batch * c_;
#pragma omp parallel for schedule(dynamic) if (parallel(tasks, pass_work(g)))
  for (std::int64_t t = 0; t < tasks; ++t) {
    const std::int64_t n = t / c_;
    const T* src = other + t * h * w;
    T* dst = grad + t * h * w;
    std::fill_n(dst, h * w, T(0));
    for (std::int64_t e = 0; e < d * d; ++e) {
      const std::int64_t sy = (e / d - rr) * g.stride2, sx = (e % d - rr) * g.stride2;
      const T* dye = dy + (n * d * d + e) * plane;
      for (std::int64_t oy = 0; oy < ho; ++oy) {
        std::int64_t y0, y1;
        tap_range(oy * g.stride1 + b, pad, r, sy, h, y0, y1);
        for (std::int64_t ox = 0; ox < wo && y0 < y1; ++ox) {
          std::int64_t x0, x1;
          tap_range(ox * g.stride1 + b, pad, r, sx, w, x0, x1);
          const T gv = scale * dye[oy * wo + ox];
          for (std::int64_t a = y0; a < y1; ++a)
            for (std::int64_t bx = x0; bx < x1; ++bx) {
              if (first)
                dst[a * w + bx] += gv * src[(a + sy) * w + bx + sx];
              else
                dst[(a + sy) * w + bx + sx] += gv * src[a * w + bx];
            }
        }
      }
    }
  }
}

// f [N, C, H, W] -> P [N, Hp, Wp, C], zero outside the interior.
template <class T>
Tensor padded_channels_last(const Tensor& f, const CorrelationGeometry& g) {
  const std::int64_t n_ = g.batch, c_ = g.channels, h = g.height, w = g.width, pad = g.padding;
  const std::int64_t hp = g.padded_height(), wp = g.padded_width();
  Tensor p = Tensor::empty_cpu({n_, hp, wp, c_}, f.dtype());
  const T* src = f.data_ptr<T>();
  T* dst = p.data_ptr<T>();
  const std::int64_t tasks = n_ * hp;
#pragma omp parallel for schedule(static) if (parallel(tasks, f.numel()))
  for (std::int64_t t = 0; t < tasks; ++t) {
    const std::int64_t n = t / hp, row = t % hp;
    T* d = dst + t * wp * c_;
    if (row < pad || row >= pad + h) {
      std::fill(d, d + wp * c_, T(0));
      continue;
    }
    std::fill(d, d + pad * c_, T(0));
    std::fill(d + (pad + w) * c_, d + wp * c_, T(0));
    transpose(src + n * c_ * h * w + (row - pad) * w, h * w, d + pad * c_, c_, c_, w);
  }
  return p;
}

// ---- passes

template <class T>
void forward_typed(const Tensor& f1, const Tensor& f2, T* y, const CorrelationGeometry& g) {
  const Tensor p1 = padded_channels_last<T>(f1, g), p2 = padded_channels_last<T>(f2, g);
  const std::int64_t c_ = g.channels, k = g.kernel, r = g.radius(), b = g.border();
  const std::int64_t rr = g.grid_radius(), d = g.grid(), s1 = g.stride1, s2 = g.stride2;
  const std::int64_t hp = g.padded_height(), wp = g.padded_width();
  const std::int64_t ho = g.out_height(), wo = g.out_width(), plane = ho * wo;
  const T scale = T(1) / static_cast<T>(k * k * c_);
  const DotShape shape{k * c_, k, wp * c_};
  const std::int64_t period = column_period(s1, s2, wo), dstep = displacement_step(g);
  const std::int64_t tasks = g.batch * ho;
  const std::int64_t work = pass_work(g);
  const T* base1 = p1.data_ptr<T>();
  const T* base2 = p2.data_ptr<T>();
  const Isa path = isa();
#pragma omp parallel if (parallel(tasks, work))
  {
    std::vector<T> vals(static_cast<std::size_t>(d));
#pragma omp for schedule(static)
    for (std::int64_t t = 0; t < tasks; ++t) {
      const std::int64_t n = t / ho, oy = t % ho, cy = oy * s1 + b;
      const T* q1 = base1 + n * hp * wp * c_;
      const T* q2 = base2 + n * hp * wp * c_;
      // One displacement row p at a time, so that the P2 row it reads stays in cache while the
      // positions sweep it; positions in steps of `period` reuse all but one of the previous
      // position's P2 columns.
      for (std::int64_t p = -rr; p <= rr; ++p)
        for (std::int64_t first = 0; first < period; ++first)
          for (std::int64_t ox = first; ox < wo; ox += period) {
            const std::int64_t cx = ox * s1 + b;
            const T* a = q1 + ((cy - r) * wp + cx - r) * c_;
            const T* bp = q2 + ((cy - r + p * s2) * wp + cx - r - rr * s2) * c_;
            dots(path, vals.data(), a, bp, dstep, d, shape, scale);
            T* out = y + ((n * d + p + rr) * d * ho + oy) * wo + ox;
            for (std::int64_t o = 0; o < d; ++o) out[o * plane] = vals[static_cast<std::size_t>(o)];
          }
    }
  }
}

// Output coordinate whose patch centre (padded coordinate `centre`) is y * stride1 + border, or -1.
inline std::int64_t output_index(std::int64_t centre, std::int64_t border, std::int64_t stride,
                                 std::int64_t extent) {
  const std::int64_t t = centre - border;
  if (t < 0 || t % stride != 0 || t / stride >= extent) return -1;
  return t / stride;
}

// df1 row by row: every output (y, x) whose patch covers (py, px) reads P2 at (py + p s2,
// px + o s2), whatever its patch offset, so the upstream gradients of those outputs are summed into
// one D x D weight table first and P2 is read once per displacement.
template <class T>
void backward_f1_typed(const T* dy, const Tensor& f2, T* df1, const CorrelationGeometry& g) {
  const Tensor p2 = padded_channels_last<T>(f2, g);
  const std::int64_t c_ = g.channels, k = g.kernel, r = g.radius(), b = g.border();
  const std::int64_t rr = g.grid_radius(), d = g.grid(), s1 = g.stride1, s2 = g.stride2;
  const std::int64_t h = g.height, w = g.width, pad = g.padding;
  const std::int64_t hp = g.padded_height(), wp = g.padded_width();
  const std::int64_t ho = g.out_height(), wo = g.out_width(), plane = ho * wo;
  const T scale = T(1) / static_cast<T>(k * k * c_);
  const std::int64_t tasks = g.batch * h;
  const std::int64_t work = pass_work(g);
  const T* base2 = p2.data_ptr<T>();
  const std::int64_t dd = d * d, period = column_period(1, s2, w), dstep = displacement_step(g);
  const Isa path = isa();
#pragma omp parallel if (parallel(tasks, work))
  {
    // The row of df1 (channels-last, unscaled until it is written out) and its weights
    // wts[e * w + tx] for displacement e and target column tx.
    std::vector<T> row(static_cast<std::size_t>(w * c_)), wts(static_cast<std::size_t>(w * dd));
    std::vector<std::int64_t> ys, xs(static_cast<std::size_t>(w * k)),
        nx(static_cast<std::size_t>(w));
#pragma omp for schedule(dynamic)
    for (std::int64_t t = 0; t < tasks; ++t) {
      const std::int64_t n = t / h, py = t % h + pad;
      const T* q2 = base2 + n * hp * wp * c_;
      const T* g_n = dy + n * dd * plane;
      ys.clear();
      for (std::int64_t i = -r; i <= r; ++i)
        if (const std::int64_t oy = output_index(py - i, b, s1, ho); oy >= 0) ys.push_back(oy);
      std::fill(row.begin(), row.end(), T(0));
      // The outputs whose patch covers each target column: xs[tx * k ..] holds nx[tx] of them.
      for (std::int64_t tx = 0; tx < w; ++tx) {
        std::int64_t m = 0;
        for (std::int64_t j = -r; j <= r; ++j)
          if (const std::int64_t ox = output_index(tx + pad - j, b, s1, wo); ox >= 0)
            xs[static_cast<std::size_t>(tx * k + m++)] = ox;
        nx[static_cast<std::size_t>(tx)] = ys.empty() ? 0 : m;
      }
      // Displacement-major, so that reads of dy run along output rows and writes along wts.
      for (std::int64_t e = 0; e < dd; ++e)
        for (std::int64_t tx = 0; tx < w; ++tx) {
          T sum = 0;
          for (const std::int64_t oy : ys) {
            const T* g_row = g_n + e * plane + oy * wo;
            for (std::int64_t m = 0; m < nx[static_cast<std::size_t>(tx)]; ++m)
              sum += g_row[xs[static_cast<std::size_t>(tx * k + m)]];
          }
          wts[static_cast<std::size_t>(e * w + tx)] = sum;
        }
      // One P2 row (displacement row p) at a time, swept by the columns in steps of `period`, so
      // that neighbouring calls share all but one of their P2 columns.
      for (std::int64_t p = -rr; p <= rr; ++p)
        for (std::int64_t first = 0; first < period; ++first)
          for (std::int64_t tx = first; tx < w; tx += period) {
            if (nx[static_cast<std::size_t>(tx)] == 0) continue;
            const std::int64_t px = tx + pad;
            combine(path, row.data() + tx * c_, wts.data() + (p + rr) * d * w + tx, w,
                    q2 + ((py + p * s2) * wp + px - rr * s2) * c_, dstep, d, c_);
          }
      transpose(row.data(), c_, df1 + n * c_ * h * w + (py - pad) * w, h * w, w, c_, scale);
    }
  }
}

// df2 row by row: (py, px) of P2 is read by output (y, x) at displacement (p, o) through the P1
// value at (py - p s2, px - o s2); per displacement row p the weights over o are gathered (zero
// where no output reaches), and only the range of o between the first and last reaching output is
// combined, which keeps every P1 read inside the padded buffer.
template <class T>
void backward_f2_typed(const T* dy, const Tensor& f1, T* df2, const CorrelationGeometry& g) {
  const Tensor p1 = padded_channels_last<T>(f1, g);
  const std::int64_t c_ = g.channels, k = g.kernel, r = g.radius(), b = g.border();
  const std::int64_t rr = g.grid_radius(), d = g.grid(), s1 = g.stride1, s2 = g.stride2;
  const std::int64_t h = g.height, w = g.width, pad = g.padding;
  const std::int64_t hp = g.padded_height(), wp = g.padded_width();
  const std::int64_t ho = g.out_height(), wo = g.out_width(), plane = ho * wo;
  const T scale = T(1) / static_cast<T>(k * k * c_);
  const std::int64_t tasks = g.batch * h, period = column_period(1, s2, w);
  const std::int64_t dstep = displacement_step(g);
  const std::int64_t work = pass_work(g);
  const T* base1 = p1.data_ptr<T>();
  const Isa path = isa();
#pragma omp parallel if (parallel(tasks, work))
  {
    std::vector<T> row(static_cast<std::size_t>(w * c_)), wts(static_cast<std::size_t>(w * d));
    std::vector<std::int64_t> ys, first(static_cast<std::size_t>(w)), last(first.size());
#pragma omp for schedule(dynamic)
    for (std::int64_t t = 0; t < tasks; ++t) {
      const std::int64_t n = t / h, py = t % h + pad;
      const T* q1 = base1 + n * hp * wp * c_;
      const T* g_n = dy + n * d * d * plane;
      std::fill(row.begin(), row.end(), T(0));
      for (std::int64_t p = -rr; p <= rr; ++p) {
        const std::int64_t row1 = py - p * s2;  // the P1 row that meets P2 row py at offset p
        ys.clear();
        for (std::int64_t i = -r; i <= r; ++i)
          if (const std::int64_t oy = output_index(row1 - i, b, s1, ho); oy >= 0) ys.push_back(oy);
        if (ys.empty()) continue;
        const T* g_p = g_n + (p + rr) * d * plane;
        // The weights wts[e * w + tx] of every column, displacement-major so that reads of dy run
        // along output rows; first[tx] .. last[tx] bound the displacements that reach column tx.
        std::fill(first.begin(), first.end(), d);
        std::fill(last.begin(), last.end(), -1);
        for (std::int64_t e = 0; e < d; ++e)
          for (std::int64_t tx = 0; tx < w; ++tx) {
            const std::int64_t col1 = tx + pad - (e - rr) * s2;
            T sum = 0;
            bool reached = false;
            for (std::int64_t j = -r; j <= r; ++j) {
              const std::int64_t ox = output_index(col1 - j, b, s1, wo);
              if (ox < 0) continue;
              reached = true;
              for (const std::int64_t oy : ys) sum += g_p[e * plane + oy * wo + ox];
            }
            const auto u = static_cast<std::size_t>(tx);
            wts[static_cast<std::size_t>(e * w + tx)] = sum;
            if (reached) {
              first[u] = std::min(first[u], e);
              last[u] = e;
            }
          }
        // Columns in steps of `period`, so that neighbouring calls share all but one of their P1
        // columns.
        for (std::int64_t start = 0; start < period; ++start)
          for (std::int64_t tx = start; tx < w; tx += period) {
            const auto u = static_cast<std::size_t>(tx);
            if (last[u] < 0) continue;
            const std::int64_t px = tx + pad;
            combine(path, row.data() + tx * c_, wts.data() + first[u] * w + tx, w,
                    q1 + (row1 * wp + px - (first[u] - rr) * s2) * c_, -dstep,
                    last[u] - first[u] + 1, c_);
          }
      }
      transpose(row.data(), c_, df2 + n * c_ * h * w + (py - pad) * w, h * w, w, c_, scale);
    }
  }
}

Shape input_shape(const CorrelationGeometry& g) {
  return {g.batch, g.channels, g.height, g.width};
}

}  // namespace

Tensor correlation_forward(const Tensor& f1, const Tensor& f2, const CorrelationGeometry& g) {
  Tensor y =
      Tensor::empty_cpu({g.batch, g.grid() * g.grid(), g.out_height(), g.out_width()}, f1.dtype());
  if (y.numel() == 0) return y;
  dispatch_floating(f1.dtype(), [&]<class T>() {
    if (padded_ok(g))
      forward_typed<T>(f1, f2, y.data_ptr<T>(), g);
    else
      direct_forward<T>(f1.data_ptr<T>(), f2.data_ptr<T>(), y.data_ptr<T>(), g);
  });
  return y;
}

Tensor correlation_backward_f1(const Tensor& dy, const Tensor& f2, const CorrelationGeometry& g) {
  Tensor df1 = Tensor::empty_cpu(input_shape(g), dy.dtype());
  if (df1.numel() == 0) return df1;
  dispatch_floating(dy.dtype(), [&]<class T>() {
    if (padded_ok(g))
      backward_f1_typed<T>(dy.data_ptr<T>(), f2, df1.data_ptr<T>(), g);
    else
      direct_backward<T>(dy.data_ptr<T>(), f2.data_ptr<T>(), df1.data_ptr<T>(), g, true);
  });
  return df1;
}

Tensor correlation_backward_f2(const Tensor& dy, const Tensor& f1, const CorrelationGeometry& g) {
  Tensor df2 = Tensor::empty_cpu(input_shape(g), dy.dtype());
  if (df2.numel() == 0) return df2;
  dispatch_floating(dy.dtype(), [&]<class T>() {
    if (padded_ok(g))
      backward_f2_typed<T>(dy.data_ptr<T>(), f1, df2.data_ptr<T>(), g);
    else
      direct_backward<T>(dy.data_ptr<T>(), f1.data_ptr<T>(), df2.data_ptr<T>(), g, false);
  });
  return df2;
}

}  // namespace convtape::cpu
