// Pooling on CPU. Every spatial rank runs through one plan: per dim and output coordinate, the
// window's valid taps (first + r * step for r in [lo, hi)); the dims before the last select input
// rows, and along the last dim a whole output line is updated per (row, tap) with a unit- or
// constant-stride loop, so that the inner loops vectorise (compare-and-blend for max, adds for
// avg). Adaptive windows that are not all one size use per-output segments instead, and windows
// that cover a whole plane (global pooling) are plain contiguous reductions. Max over 2-D 2x2
// windows of stride 2 (most CNNs' pool) has its own SIMD kernels, a whole plane per call.
// Windows are scanned in row-major order and max replaces its candidate only on a strictly larger
// value or a first NaN, so the index is the first maximal element (PyTorch's CPU kernel keeps the
// last NaN of a window; this one keeps the first, as convtape's max reduction does).
#include "cpu/pool.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/checked.h"
#include "cpu/isa.h"

namespace convtape::cpu {

namespace {

constexpr int kMaxRank = 8;  // spatial dims handled by the fixed-size arrays below

// Window reads of one call; below kParallelWork a call runs on the calling thread, since waking
// the OpenMP team costs more than the work (small test tensors, late layers of small models).
constexpr std::int64_t kParallelWork = 1 << 18;

// The window of each output coordinate along one dim: taps r in [lo, hi) read input coordinate
// first + r * step (only the taps inside the input: lo and hi are clipped to it, so every loop
// runs over the window's real overlap with the input, never over the nominal kernel size);
// factor is the dim's share of the average's divisor. The arrays live in Plan::mem.
struct DimWindows {
  const std::int64_t *first = nullptr, *lo = nullptr, *hi = nullptr, *factor = nullptr;
  std::int64_t step = 1;
};

struct Plan {
  int s = 0;
  std::int64_t in[kMaxRank] = {}, out[kMaxRank] = {}, row_stride[kMaxRank] = {};
  std::int64_t in_numel = 1, out_numel = 1;
  std::int64_t lines = 1;  // output lines: the product of every output size but the last
  std::int64_t n = 1;      // outputs per line
  std::vector<DimWindows> dims;
  // Regular windows along the last dim: tap r of output j reads j * step + tap_off[r], inside
  // the input row for j in [tap_jlo[r], tap_jhi[r]). Only taps that some output reads are kept.
  bool taps = false;
  bool regular = false;  // kernel windows, not adaptive ones
  std::int64_t step = 1;
  std::int64_t tap_count = 0;
  const std::int64_t *tap_off = nullptr, *tap_jlo = nullptr, *tap_jhi = nullptr;
  // 2-D 2x2 windows of stride 2 without padding or dilation, every window inside the plane (the
  // pool of most CNNs): max runs the pairs kernels, a whole plane per call.
  bool pairs = false;
  // One window covering the whole plane with unit steps.
  bool global = false;
  std::int64_t divisor_override = 0;
  double global_divisor = 1;  // the average's divisor when `global`
  double work = 0;            // window reads per plane (an estimate that cannot overflow)
  // The arrays above, in one int64 block from the tensor allocator: their size follows the
  // output extents, so a plan that cannot be held is refused with the allocator's Error rather
  // than std::bad_alloc.
  Tensor mem;
};

// The window of output o along dim d. With the front end's checks (padding at most half the
// kernel, ceil_mode's last window starting before the input's end) a regular window starts in
// (-pad_lo, in), so first, in - 1 - first and -first fit; the checked helpers guard the rest.
void dim_window(const PoolGeometry& g, std::size_t d, std::int64_t o, std::int64_t& first,
                std::int64_t& lo, std::int64_t& hi, std::int64_t& factor) {
  const std::int64_t in = g.in[d];
  if (g.adaptive) {  // [floor(o * in / out), ceil((o + 1) * in / out)); out * in fits
    const std::int64_t out = g.out[d];
    first = checked::div_floor(checked::mul(o, in, "pool", "an adaptive window start"), out);
    const std::int64_t end =
        checked::div_ceil(checked::mul(o + 1, in, "pool", "an adaptive window end"), out);
    lo = 0;
    hi = end - first;
    factor = hi;
    return;
  }
  const std::int64_t k = g.kernel[d], dil = g.dilation[d];
  first = checked::sub(checked::mul(o, g.stride[d], "pool", "a window start"), g.pad_lo[d], "pool",
                       "a window start");
  lo = first >= 0 ? 0 : std::min(k, checked::div_ceil(-first, dil));
  hi = first > in - 1 ? 0 : std::min(k, (in - 1 - first) / dil + 1);
  hi = std::max(hi, lo);
  // count_include_pad: the window clipped to the padded extent, min(k, in + pad_hi - first).
  const auto room = checked::try_add(in - first, g.pad_hi[d]);
  factor = g.count_include_pad ? (room && *room < k ? *room : k) : hi - lo;
}

// 2-D 2x2 windows of stride 2, no padding or dilation, every window inside the plane (Plan::pairs).
bool pairs_geometry(const PoolGeometry& g) {
  if (g.adaptive || g.spatial() != 2) return false;
  for (std::size_t d = 0; d < 2; ++d)
    if (g.kernel[d] != 2 || g.stride[d] != 2 || g.dilation[d] != 1 || g.pad_lo[d] != 0 ||
        g.pad_hi[d] != 0 || 2 * g.out[d] > g.in[d])
      return false;
  return g.in[1] < std::numeric_limits<std::int32_t>::max();  // AVX2's int32 window offsets
}

Plan make_plan(const PoolGeometry& g) {
  Plan p;
  p.s = static_cast<int>(g.spatial());
  const int last = p.s - 1;
  const auto lu = static_cast<std::size_t>(last);
  std::int64_t rs = 1;
  for (int d = p.s - 1; d >= 0; --d) {
    const auto du = static_cast<std::size_t>(d);
    p.in[d] = g.in[du];
    p.out[d] = g.out[du];
    p.row_stride[d] = rs;
    rs *= p.in[d];
  }
  p.in_numel = g.in_numel();
  p.out_numel = g.out_numel();
  p.n = p.out[last];
  p.lines = p.out_numel / std::max<std::int64_t>(p.n, 1);
  p.divisor_override = g.divisor_override;
  p.regular = !g.adaptive;

  // Regular windows along the last dim: tap r reads j * step + r * dilation - pad_lo, which some
  // output j in [0, n) reads inside the row only for r in [r_lo, r_hi].
  std::int64_t r_lo = 0, r_hi = -1;
  if (p.regular) {
    const std::int64_t k = g.kernel[lu], dil = g.dilation[lu], in = p.in[last];
    const std::int64_t plo = g.pad_lo[lu];
    const std::int64_t reach = checked::mul(p.n - 1, g.stride[lu], "pool", "a window start");
    r_hi = std::min(k - 1, checked::add(in - 1, plo, "pool", "a window end") / dil);
    r_lo = std::max<std::int64_t>(0, checked::div_ceil(plo - reach, dil));
  }
  // Taps that no output reads are never visited; when the kept range is still much wider than a
  // line and its input row (a huge kernel with huge padding), per-output segments do less work.
  const std::int64_t tap_range = std::max<std::int64_t>(r_hi - r_lo + 1, 0);
  const bool want_taps = p.regular && tap_range <= 2 * (p.n + p.in[last]);

  std::int64_t words = want_taps ? checked::mul(3, tap_range, "pool", "the plan size") : 0;
  for (int d = 0; d < p.s; ++d)
    words = checked::add(words, checked::mul(4, p.out[d], "pool", "the plan size"), "pool",
                         "the plan size");
  p.mem = Tensor::empty_cpu({words}, kInt64);
  std::int64_t* at = p.mem.data_ptr<std::int64_t>();

  p.global = true;
  double window = 1;
  for (int d = 0; d < p.s; ++d) {
    const auto du = static_cast<std::size_t>(d);
    const std::int64_t in = p.in[d], out = p.out[d];
    std::int64_t* first = at;
    std::int64_t* lo = at + out;
    std::int64_t* hi = at + 2 * out;
    std::int64_t* factor = at + 3 * out;
    at += 4 * out;
    DimWindows w;
    w.step = g.adaptive ? 1 : g.dilation[du];
    std::int64_t widest = 0;
    for (std::int64_t o = 0; o < out; ++o) {
      dim_window(g, du, o, first[o], lo[o], hi[o], factor[o]);
      widest = std::max(widest, hi[o] - lo[o]);
      p.global = p.global && out == 1 && first[o] == 0 && lo[o] == 0 && hi[o] == in && w.step == 1;
    }
    w.first = first;
    w.lo = lo;
    w.hi = hi;
    w.factor = factor;
    window *= static_cast<double>(widest);
    p.dims.push_back(w);
  }
  p.work = static_cast<double>(p.out_numel) * window;
  if (p.global) {
    p.global_divisor = static_cast<double>(g.divisor_override);
    if (g.divisor_override == 0) {
      p.global_divisor = 1;
      for (const DimWindows& w : p.dims) p.global_divisor *= static_cast<double>(w.factor[0]);
    }
  }
  p.taps = want_taps && !p.global;
  p.pairs = pairs_geometry(g);
  if (p.taps) {
    const std::int64_t dil = g.dilation[lu], in = p.in[last];
    p.step = g.stride[lu];
    std::int64_t* off_at = at;
    std::int64_t* jlo_at = at + tap_range;
    std::int64_t* jhi_at = at + 2 * tap_range;
    for (std::int64_t r = r_lo; r <= r_hi; ++r) {
      const std::int64_t off = r * dil - g.pad_lo[lu];  // in [-reach, in - 1]
      // 0 <= j * step + off <= in - 1
      std::int64_t jlo = off >= 0 ? 0 : checked::div_ceil(-off, p.step);
      std::int64_t jhi = off > in - 1 ? 0 : (in - 1 - off) / p.step + 1;
      jlo = std::min(jlo, p.n);
      jhi = std::clamp(jhi, jlo, p.n);
      if (jlo == jhi) continue;  // a tap between the rows' reach (dilation gaps)
      off_at[p.tap_count] = off;
      jlo_at[p.tap_count] = jlo;
      jhi_at[p.tap_count] = jhi;
      ++p.tap_count;
    }
    p.tap_off = off_at;
    p.tap_jlo = jlo_at;
    p.tap_jhi = jhi_at;
  }
  return p;
}

// The plane kernels below are inlined into one copy per ISA (see plane_fn).
#define CT_POOL_INLINE __attribute__((always_inline)) inline

// max's update rule: a strictly larger value, or the first NaN.
template <class T>
CT_POOL_INLINE bool takes(T v, T cur) {
  return v > cur || (v != v && cur == cur);
}

// Calls row(base) for every input row (dims before the last) of output line o's window, in
// row-major order; base is the row's offset in the plane.
template <class F>
CT_POOL_INLINE void for_each_row(const Plan& pl, const std::int64_t* o, F&& row) {
  const int last = pl.s - 1;
  std::int64_t r[kMaxRank];
  for (int d = 0; d < last; ++d) {
    const auto od = static_cast<std::size_t>(o[d]);
    r[d] = pl.dims[static_cast<std::size_t>(d)].lo[od];
    if (r[d] >= pl.dims[static_cast<std::size_t>(d)].hi[od]) return;  // no valid row
  }
  for (;;) {
    std::int64_t base = 0;
    for (int d = 0; d < last; ++d) {
      const DimWindows& w = pl.dims[static_cast<std::size_t>(d)];
      base += (w.first[static_cast<std::size_t>(o[d])] + r[d] * w.step) * pl.row_stride[d];
    }
    row(base);
    int d = last - 1;
    for (; d >= 0; --d) {
      const DimWindows& w = pl.dims[static_cast<std::size_t>(d)];
      const auto od = static_cast<std::size_t>(o[d]);
      if (++r[d] < w.hi[od]) break;
      r[d] = w.lo[od];
    }
    if (d < 0) return;
  }
}

// Steps the outer output coordinate o (dims before the last) to the next line.
CT_POOL_INLINE void next_line(const Plan& pl, std::int64_t* o) {
  for (int d = pl.s - 2; d >= 0; --d) {
    if (++o[d] < pl.out[d]) return;
    o[d] = 0;
  }
}

// One tap of max along a line: m[j] = max(m[j], row[j * ST + off]) for j in [jlo, jhi), with the
// index base + j * ST + off when kIdx. ST > 0 is a compile-time stride, 0 the run-time `step`.
template <class T, bool kIdx, int ST>
CT_POOL_INLINE void max_tap(T* m, std::int64_t* id, const T* row, std::int64_t off,
                            std::int64_t base, std::int64_t jlo, std::int64_t jhi,
                            std::int64_t step) {
  const std::int64_t st = ST > 0 ? ST : step;
  for (std::int64_t j = jlo; j < jhi; ++j) {
    const T v = row[j * st + off], cur = m[j];
    const bool take = takes(v, cur);
    m[j] = take ? v : cur;
    if constexpr (kIdx) id[j] = take ? base + j * st + off : id[j];
  }
}

// Explicit SIMD forms of max_tap for float32 lines of step 1 or 2 (the common max pools: 2x2 and
// 3x3 windows of stride 1 or 2). The compiler leaves max_tap scalar there (the strided load, the
// NaN rule and the int64 index beside float values), and a line of a small CNN's pool is a
// dozen outputs, so every block is masked: no scalar tail. For step 2, lane l of a block reads
// element 2l of the row segment: the pairs are loaded as two vectors, masked so that nothing past
// the last element read is touched, and the even elements picked out.
template <bool kIdx, int ST>
__attribute__((target("avx512f"))) void max_tap_avx512(float* m, std::int64_t* id, const float* row,
                                                       std::int64_t off, std::int64_t base,
                                                       std::int64_t jlo, std::int64_t jhi) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i lanes_lo = _mm512_set_epi64(7 * ST, 6 * ST, 5 * ST, 4 * ST, 3 * ST, 2 * ST, ST, 0);
  const __m512i lanes_hi = _mm512_add_epi64(lanes_lo, _mm512_set1_epi64(8 * ST));
  for (std::int64_t j = jlo; j < jhi; j += 16) {
    const std::int64_t r = std::min<std::int64_t>(16, jhi - j);
    const __mmask16 lanes = static_cast<__mmask16>((1u << r) - 1u);
    const float* p = row + j * ST + off;
    __m512 v;
    if constexpr (ST == 1) {
      v = _mm512_maskz_loadu_ps(lanes, p);
    } else if (j + 16 < jhi) {  // a later block reads p[31]: plain loads
      v = _mm512_permutex2var_ps(_mm512_loadu_ps(p), even, _mm512_loadu_ps(p + 16));
    } else {
      const std::int64_t elems = 2 * r - 1;  // p[0 .. 2r - 2]
      const __mmask16 a = elems >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << elems) - 1u);
      const __mmask16 b = elems > 16 ? __mmask16((1u << (elems - 16)) - 1u) : __mmask16(0);
      v = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(a, p), even,
                                 _mm512_maskz_loadu_ps(b, p + 16));
    }
    const __m512 cur = _mm512_maskz_loadu_ps(lanes, m + j);
    const __mmask16 take =
        lanes &
        (_mm512_cmp_ps_mask(v, cur, _CMP_GT_OQ) |
         (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(cur, cur, _CMP_ORD_Q)));
    _mm512_mask_storeu_ps(m + j, take, v);
    if constexpr (kIdx) {
      const __m512i b0 = _mm512_set1_epi64(base + j * ST + off);
      _mm512_mask_storeu_epi64(id + j, static_cast<__mmask8>(take), _mm512_add_epi64(b0, lanes_lo));
      _mm512_mask_storeu_epi64(id + j + 8, static_cast<__mmask8>(take >> 8),
                               _mm512_add_epi64(b0, lanes_hi));
    }
  }
}

// The AVX2 form: 8 lanes, masks as vectors, indices in two 4-lane halves.
template <bool kIdx, int ST>
__attribute__((target("avx2,fma"))) void max_tap_avx2(float* m, std::int64_t* id, const float* row,
                                                      std::int64_t off, std::int64_t base,
                                                      std::int64_t jlo, std::int64_t jhi) {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i lanes_lo = _mm256_setr_epi64x(0, ST, 2 * ST, 3 * ST);
  const __m256i lanes_hi = _mm256_add_epi64(lanes_lo, _mm256_set1_epi64x(4 * ST));
  for (std::int64_t j = jlo; j < jhi; j += 8) {
    const std::int64_t r = std::min<std::int64_t>(8, jhi - j);
    const __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(r)), iota);
    const float* p = row + j * ST + off;
    __m256 v;
    if constexpr (ST == 1) {
      v = j + 8 <= jhi ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, lanes);
    } else if (j + 8 < jhi) {  // a later block reads p[15]: plain loads
      const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
      v = _mm256_castpd_ps(_mm256_permute4x64_pd(
          _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))), 0xD8));
    } else {
      const int elems = static_cast<int>(2 * r - 1);  // p[0 .. 2r - 2]
      const __m256 a = _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(elems), iota));
      const __m256 b =
          _mm256_maskload_ps(p + 8, _mm256_cmpgt_epi32(_mm256_set1_epi32(elems - 8), iota));
      // [a0 a2 b0 b2 | a4 a6 b4 b6] -> [a0 a2 a4 a6 b0 b2 b4 b6]
      v = _mm256_castpd_ps(_mm256_permute4x64_pd(
          _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))), 0xD8));
    }
    const __m256 cur = _mm256_maskload_ps(m + j, lanes);
    const __m256 take = _mm256_and_ps(
        _mm256_castsi256_ps(lanes),
        _mm256_or_ps(
            _mm256_cmp_ps(v, cur, _CMP_GT_OQ),
            _mm256_and_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), _mm256_cmp_ps(cur, cur, _CMP_ORD_Q))));
    const __m256i take_i = _mm256_castps_si256(take);
    _mm256_maskstore_ps(m + j, take_i, v);
    if constexpr (kIdx) {
      const __m256i b0 = _mm256_set1_epi64x(base + j * ST + off);
      _mm256_maskstore_epi64(reinterpret_cast<long long*>(id + j),
                             _mm256_cvtepi32_epi64(_mm256_castsi256_si128(take_i)),
                             _mm256_add_epi64(b0, lanes_lo));
      _mm256_maskstore_epi64(reinterpret_cast<long long*>(id + j + 4),
                             _mm256_cvtepi32_epi64(_mm256_extracti128_si256(take_i, 1)),
                             _mm256_add_epi64(b0, lanes_hi));
    }
  }
}

// Max over 2x2 windows of stride 2 (Plan::pairs), one plane per call: output row i reads input
// rows 2i and 2i + 1, and a block of outputs loads twice as many consecutive elements of each,
// split into even and odd columns. The window's four candidates are taken in row-major order ((0,
// 0), (0, 1), (1, 0), (1, 1)) under max's rule, starting from the first (a first NaN stays; a
// window of -inf keeps its first element, as the general kernels' index rule does), and the index
// is the window's first element plus the winner's offset in it (0, 1, w or w + 1, kept in int32
// lanes). Every block is masked, so nothing past the last window's element is read.
#define CT_POOL_TAKE512(v, kv)                                                           \
  do {                                                                                   \
    const __mmask16 take_ =                                                              \
        _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) |                                           \
        (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(m, m, _CMP_ORD_Q)); \
    m = _mm512_mask_mov_ps(m, take_, v);                                                 \
    if constexpr (kIdx) {                                                                \
      k_lo = _mm512_mask_mov_epi64(k_lo, static_cast<__mmask8>(take_), kv);              \
      k_hi = _mm512_mask_mov_epi64(k_hi, static_cast<__mmask8>(take_ >> 8), kv);         \
    }                                                                                    \
  } while (0)

template <bool kIdx>
__attribute__((target("avx512f"))) void max_pairs_avx512(const Plan& pl, const float* x, float* y,
                                                         std::int64_t* ind) {
  const std::int64_t w = pl.in[1], oh = pl.out[0], ow = pl.out[1];
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i col_lo = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i col_hi = _mm512_add_epi64(col_lo, _mm512_set1_epi64(16));
  const __m512i k_right = _mm512_set1_epi64(1), k_down = _mm512_set1_epi64(w),
                k_diag = _mm512_set1_epi64(w + 1);
  for (std::int64_t i = 0; i < oh; ++i) {
    const float* r0 = x + 2 * i * w;
    const float* r1 = r0 + w;
    float* yo = y + i * ow;
    for (std::int64_t j = 0; j < ow; j += 16) {
      const std::int64_t r = std::min<std::int64_t>(16, ow - j), elems = 2 * r;
      const __mmask16 lanes = static_cast<__mmask16>((1u << r) - 1u);
      const __mmask16 ma = elems >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << elems) - 1u);
      const __mmask16 mb = elems > 16 ? __mmask16((1u << (elems - 16)) - 1u) : __mmask16(0);
      const __m512 a0 = _mm512_maskz_loadu_ps(ma, r0 + 2 * j);
      const __m512 a1 = _mm512_maskz_loadu_ps(mb, r0 + 2 * j + 16);
      const __m512 b0 = _mm512_maskz_loadu_ps(ma, r1 + 2 * j);
      const __m512 b1 = _mm512_maskz_loadu_ps(mb, r1 + 2 * j + 16);
      __m512 m = _mm512_permutex2var_ps(a0, even, a1);
      __m512i k_lo = _mm512_setzero_si512(), k_hi = _mm512_setzero_si512();
      const __m512 right = _mm512_permutex2var_ps(a0, odd, a1);
      const __m512 down = _mm512_permutex2var_ps(b0, even, b1);
      const __m512 diag = _mm512_permutex2var_ps(b0, odd, b1);
      CT_POOL_TAKE512(right, k_right);
      CT_POOL_TAKE512(down, k_down);
      CT_POOL_TAKE512(diag, k_diag);
      _mm512_mask_storeu_ps(yo + j, lanes, m);
      if constexpr (kIdx) {
        const __m512i base = _mm512_set1_epi64(2 * i * w + 2 * j);
        const __m512i lo = _mm512_add_epi64(_mm512_add_epi64(base, col_lo), k_lo);
        const __m512i hi = _mm512_add_epi64(_mm512_add_epi64(base, col_hi), k_hi);
        _mm512_mask_storeu_epi64(ind + i * ow + j, static_cast<__mmask8>(lanes), lo);
        _mm512_mask_storeu_epi64(ind + i * ow + j + 8, static_cast<__mmask8>(lanes >> 8), hi);
      }
    }
  }
}
#undef CT_POOL_TAKE512

// The AVX2 form: 8 outputs per block, masks as vectors, indices in two 4-lane halves.
#define CT_POOL_TAKE256(v, kv)                                                              \
  do {                                                                                      \
    const __m256 take_ = _mm256_or_ps(                                                      \
        _mm256_cmp_ps(v, m, _CMP_GT_OQ),                                                    \
        _mm256_and_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), _mm256_cmp_ps(m, m, _CMP_ORD_Q))); \
    m = _mm256_blendv_ps(m, v, take_);                                                      \
    if constexpr (kIdx)                                                                     \
      k = _mm256_castps_si256(                                                              \
          _mm256_blendv_ps(_mm256_castsi256_ps(k), _mm256_castsi256_ps(kv), take_));        \
  } while (0)

// [a0 a2 b0 b2 | a4 a6 b4 b6] -> [a0 a2 a4 a6 b0 b2 b4 b6] (evens; odds with 3, 1).
#define CT_POOL_SPLIT256(a, b, sel) \
  _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, sel)), 0xD8))

template <bool kIdx>
__attribute__((target("avx2,fma"))) void max_pairs_avx2(const Plan& pl, const float* x, float* y,
                                                        std::int64_t* ind) {
  const std::int64_t w = pl.in[1], oh = pl.out[0], ow = pl.out[1];
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i col_lo = _mm256_setr_epi64x(0, 2, 4, 6);
  const __m256i col_hi = _mm256_setr_epi64x(8, 10, 12, 14);
  const __m256i k_right = _mm256_set1_epi32(1), k_down = _mm256_set1_epi32(static_cast<int>(w)),
                k_diag = _mm256_set1_epi32(static_cast<int>(w + 1));
  for (std::int64_t i = 0; i < oh; ++i) {
    const float* r0 = x + 2 * i * w;
    const float* r1 = r0 + w;
    float* yo = y + i * ow;
    for (std::int64_t j = 0; j < ow; j += 8) {
      const std::int64_t r = std::min<std::int64_t>(8, ow - j);
      const int elems = static_cast<int>(2 * r);
      __m256 a0, a1, b0, b1;
      if (r == 8) {
        a0 = _mm256_loadu_ps(r0 + 2 * j);
        a1 = _mm256_loadu_ps(r0 + 2 * j + 8);
        b0 = _mm256_loadu_ps(r1 + 2 * j);
        b1 = _mm256_loadu_ps(r1 + 2 * j + 8);
      } else {
        const __m256i ma = _mm256_cmpgt_epi32(_mm256_set1_epi32(elems), iota);
        const __m256i mb = _mm256_cmpgt_epi32(_mm256_set1_epi32(elems - 8), iota);
        a0 = _mm256_maskload_ps(r0 + 2 * j, ma);
        a1 = _mm256_maskload_ps(r0 + 2 * j + 8, mb);
        b0 = _mm256_maskload_ps(r1 + 2 * j, ma);
        b1 = _mm256_maskload_ps(r1 + 2 * j + 8, mb);
      }
      __m256 m = CT_POOL_SPLIT256(a0, a1, _MM_SHUFFLE(2, 0, 2, 0));
      __m256i k = _mm256_setzero_si256();
      const __m256 right = CT_POOL_SPLIT256(a0, a1, _MM_SHUFFLE(3, 1, 3, 1));
      const __m256 down = CT_POOL_SPLIT256(b0, b1, _MM_SHUFFLE(2, 0, 2, 0));
      const __m256 diag = CT_POOL_SPLIT256(b0, b1, _MM_SHUFFLE(3, 1, 3, 1));
      CT_POOL_TAKE256(right, k_right);
      CT_POOL_TAKE256(down, k_down);
      CT_POOL_TAKE256(diag, k_diag);
      const __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(r)), iota);
      if (r == 8)
        _mm256_storeu_ps(yo + j, m);
      else
        _mm256_maskstore_ps(yo + j, lanes, m);
      if constexpr (kIdx) {
        const __m256i base = _mm256_set1_epi64x(2 * i * w + 2 * j);
        const __m256i lo = _mm256_add_epi64(_mm256_add_epi64(base, col_lo),
                                            _mm256_cvtepi32_epi64(_mm256_castsi256_si128(k)));
        const __m256i hi = _mm256_add_epi64(_mm256_add_epi64(base, col_hi),
                                            _mm256_cvtepi32_epi64(_mm256_extracti128_si256(k, 1)));
        long long* io = reinterpret_cast<long long*>(ind + i * ow + j);
        _mm256_maskstore_epi64(io, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(lanes)), lo);
        _mm256_maskstore_epi64(io + 4, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(lanes, 1)),
                               hi);
      }
    }
  }
}
#undef CT_POOL_TAKE256
#undef CT_POOL_SPLIT256

// kIsa: the path this copy of the plane kernels is compiled for (0 portable, 1 AVX2, 2 AVX-512).
template <class T, bool kIdx, int ST, int kIsa>
CT_POOL_INLINE void max_row_taps(const Plan& pl, T* m, std::int64_t* id, const T* x,
                                 std::int64_t base) {
  if constexpr (std::is_same_v<T, float> && (ST == 1 || ST == 2) && kIsa > 0) {
    for (std::int64_t r = 0; r < pl.tap_count; ++r) {
      if constexpr (kIsa == 2)
        max_tap_avx512<kIdx, ST>(m, id, x + base, pl.tap_off[r], base, pl.tap_jlo[r],
                                 pl.tap_jhi[r]);
      else
        max_tap_avx2<kIdx, ST>(m, id, x + base, pl.tap_off[r], base, pl.tap_jlo[r], pl.tap_jhi[r]);
    }
    return;
  }
  for (std::int64_t r = 0; r < pl.tap_count; ++r)
    max_tap<T, kIdx, ST>(m, id, x + base, pl.tap_off[r], base, pl.tap_jlo[r], pl.tap_jhi[r],
                         pl.step);
}

template <class T, bool kIdx, int kIsa>
CT_POOL_INLINE void max_plane(const Plan& pl, const T* x, T* y, std::int64_t* ind) {
  if constexpr (std::is_same_v<T, float> && kIsa > 0) {
    if (pl.pairs) {
      if constexpr (kIsa == 2)
        max_pairs_avx512<kIdx>(pl, x, y, ind);
      else
        max_pairs_avx2<kIdx>(pl, x, y, ind);
      return;
    }
  }
  const T lowest = -std::numeric_limits<T>::infinity();
  if (pl.global) {
    if constexpr (kIdx) {
      T m = lowest;
      std::int64_t at = 0;  // the first element, should every element be -inf
      for (std::int64_t i = 0; i < pl.in_numel; ++i)
        if (takes(x[i], m)) {
          m = x[i];
          at = i;
          if (m != m) break;
        }
      y[0] = m;
      ind[0] = at;
    } else {
      constexpr int kLanes = 64 / sizeof(T);
      T acc[kLanes];
      for (int l = 0; l < kLanes; ++l) acc[l] = lowest;
      std::int64_t i = 0;
      for (; i + kLanes <= pl.in_numel; i += kLanes)
        for (int l = 0; l < kLanes; ++l) {
          const T v = x[i + l];
          acc[l] = (v > acc[l] || v != v) ? v : acc[l];
        }
      for (int w = kLanes / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; ++l)
          acc[l] = (acc[l + w] > acc[l] || acc[l + w] != acc[l + w]) ? acc[l + w] : acc[l];
      T m = acc[0];
      for (; i < pl.in_numel; ++i) m = (x[i] > m || x[i] != x[i]) ? x[i] : m;
      y[0] = m;
    }
    return;
  }
  const std::int64_t n = pl.n;
  const DimWindows& wl = pl.dims.back();
  std::int64_t o[kMaxRank] = {};
  for (std::int64_t l = 0; l < pl.lines; ++l, next_line(pl, o)) {
    T* m = y + l * n;
    std::int64_t* id = kIdx ? ind + l * n : nullptr;
    for (std::int64_t j = 0; j < n; ++j) m[j] = lowest;
    if constexpr (kIdx)
      for (std::int64_t j = 0; j < n; ++j) id[j] = -1;
    bool first_row = true;
    for_each_row(pl, o, [&](std::int64_t base) {
      if constexpr (kIdx) {
        // PyTorch's rule: the argmax starts at the window's first element inside the input, so a
        // window of -inf values (which never replace the -inf start) still routes its gradient.
        // Windows with no element inside the input keep -1 (no row of them is ever visited).
        if (first_row)
          for (std::int64_t j = 0; j < n; ++j)
            if (wl.lo[j] < wl.hi[j]) id[j] = base + wl.first[j] + wl.lo[j] * wl.step;
      }
      first_row = false;
      if (pl.taps) {
        if (pl.step == 1)
          max_row_taps<T, kIdx, 1, kIsa>(pl, m, id, x, base);
        else if (pl.step == 2)
          max_row_taps<T, kIdx, 2, kIsa>(pl, m, id, x, base);
        else
          max_row_taps<T, kIdx, 0, kIsa>(pl, m, id, x, base);
        return;
      }
      for (std::int64_t j = 0; j < n; ++j) {  // per-output segments
        const std::int64_t start = base + wl.first[j];
        for (std::int64_t r = wl.lo[j]; r < wl.hi[j]; ++r) {
          const std::int64_t t = start + r * wl.step;
          if (takes(x[t], m[j])) {
            m[j] = x[t];
            if constexpr (kIdx) id[j] = t;
          }
        }
      }
    });
  }
}

// The average's divisor for output j of a line whose outer dims contribute `outer`.
template <class T>
CT_POOL_INLINE T divisor(const Plan& pl, T outer, std::int64_t j) {
  return pl.divisor_override != 0
             ? static_cast<T>(pl.divisor_override)
             : outer * static_cast<T>(static_cast<double>(pl.dims.back().factor[j]));
}

// The outer dims' share of the divisor, multiplied in double: exact below 2^53, and huge kernels
// (whose divisors leave 64 bits) round instead of overflowing. cuda/pool_body.h forms it alike.
template <class T>
CT_POOL_INLINE T outer_factor(const Plan& pl, const std::int64_t* o) {
  double f = 1;
  for (int d = 0; d + 1 < pl.s; ++d)
    f *= static_cast<double>(pl.dims[static_cast<std::size_t>(d)].factor[o[d]]);
  return static_cast<T>(f);
}

template <class T, int ST>
CT_POOL_INLINE void sum_row_taps(const Plan& pl, T* a, const T* row) {
  const std::int64_t st = ST > 0 ? ST : pl.step;
  for (std::int64_t r = 0; r < pl.tap_count; ++r) {
    const T* src = row + pl.tap_off[r];
    const std::int64_t jhi = pl.tap_jhi[r];
    for (std::int64_t j = pl.tap_jlo[r]; j < jhi; ++j) a[j] += src[j * st];
  }
}

template <class T>
CT_POOL_INLINE T plane_sum(const T* x, std::int64_t count) {
  constexpr int kLanes = 64 / sizeof(T);
  T acc[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += x[i + l];
  for (int w = kLanes / 2; w >= 1; w /= 2)  // a tree: log2(lanes) vector steps
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  T s = acc[0];
  for (; i < count; ++i) s += x[i];
  return s;
}

template <class T>
CT_POOL_INLINE void avg_plane(const Plan& pl, const T* x, T* y) {
  if (pl.global) {
    y[0] = plane_sum(x, pl.in_numel) / static_cast<T>(pl.global_divisor);
    return;
  }
  const std::int64_t n = pl.n;
  const DimWindows& wl = pl.dims.back();
  std::int64_t o[kMaxRank] = {};
  for (std::int64_t l = 0; l < pl.lines; ++l, next_line(pl, o)) {
    T* a = y + l * n;
    for (std::int64_t j = 0; j < n; ++j) a[j] = T(0);
    for_each_row(pl, o, [&](std::int64_t base) {
      const T* row = x + base;
      if (pl.taps) {
        if (pl.step == 1)
          sum_row_taps<T, 1>(pl, a, row);
        else if (pl.step == 2)
          sum_row_taps<T, 2>(pl, a, row);
        else
          sum_row_taps<T, 0>(pl, a, row);
        return;
      }
      for (std::int64_t j = 0; j < n; ++j) {
        const T* seg = row + wl.first[j];
        if (!pl.regular) {  // adaptive: the row's segment, then its sum
          T s = T(0);
          for (std::int64_t t = wl.lo[j]; t < wl.hi[j]; ++t) s += seg[t];
          a[j] += s;
        } else {  // tap by tap, as the taps path adds them
          for (std::int64_t r = wl.lo[j]; r < wl.hi[j]; ++r) a[j] += seg[r * wl.step];
        }
      }
    });
    const T outer = outer_factor<T>(pl, o);
    for (std::int64_t j = 0; j < n; ++j) a[j] /= divisor(pl, outer, j);
  }
}

// dx (one plane, zeroed here) from dy: every window element receives dy / divisor. `g` holds one
// line of scaled gradients.
template <class T>
CT_POOL_INLINE void avg_backward_plane(const Plan& pl, const T* dy, T* dx, T* g) {
  if (pl.global) {
    const T v = dy[0] / static_cast<T>(pl.global_divisor);
    for (std::int64_t i = 0; i < pl.in_numel; ++i) dx[i] = v;
    return;
  }
  for (std::int64_t i = 0; i < pl.in_numel; ++i) dx[i] = T(0);
  const std::int64_t n = pl.n;
  const DimWindows& wl = pl.dims.back();
  std::int64_t o[kMaxRank] = {};
  for (std::int64_t l = 0; l < pl.lines; ++l, next_line(pl, o)) {
    const T outer = outer_factor<T>(pl, o);
    for (std::int64_t j = 0; j < n; ++j) g[j] = dy[l * n + j] / divisor(pl, outer, j);
    for_each_row(pl, o, [&](std::int64_t base) {
      T* row = dx + base;
      if (pl.taps) {
        const std::int64_t st = pl.step;
        for (std::int64_t r = 0; r < pl.tap_count; ++r) {
          T* dst = row + pl.tap_off[r];
          const std::int64_t jhi = pl.tap_jhi[r];
          if (st == 1) {
            for (std::int64_t j = pl.tap_jlo[r]; j < jhi; ++j) dst[j] += g[j];
          } else {
            for (std::int64_t j = pl.tap_jlo[r]; j < jhi; ++j) dst[j * st] += g[j];
          }
        }
        return;
      }
      if (!pl.regular) {
        for (std::int64_t j = 0; j < n; ++j) {
          T* seg = row + wl.first[j];
          for (std::int64_t t = wl.lo[j]; t < wl.hi[j]; ++t) seg[t] += g[j];
        }
        return;
      }
      // Regular windows by descending output, so that every element sums its outputs in the
      // order the taps path (and cuda/pool_body.h) does.
      for (std::int64_t j = n - 1; j >= 0; --j) {
        T* seg = row + wl.first[j];
        for (std::int64_t r = wl.lo[j]; r < wl.hi[j]; ++r) seg[r * wl.step] += g[j];
      }
    });
  }
}

enum class Kind { MaxValues, MaxIndices, Avg, AvgBackward };

// Planes [p0, p1): src and dst (and ind, which has dst's layout) advance by one plane each.
struct Planes {
  std::int64_t p0, p1, src_plane, dst_plane;
};

template <class T>
using PlaneFn = void (*)(const Plan&, const Planes&, const T* src, T* dst, std::int64_t* ind,
                         T* scratch);

template <Kind K, class T, int kIsa>
CT_POOL_INLINE void planes_body(const Plan& pl, const Planes& r, const T* src, T* dst,
                                std::int64_t* ind, T* scratch) {
  for (std::int64_t p = r.p0; p < r.p1; ++p) {
    const T* s = src + p * r.src_plane;
    T* d = dst + p * r.dst_plane;
    if constexpr (K == Kind::MaxValues)
      max_plane<T, false, kIsa>(pl, s, d, nullptr);
    else if constexpr (K == Kind::MaxIndices)
      max_plane<T, true, kIsa>(pl, s, d, ind + p * r.dst_plane);
    else if constexpr (K == Kind::Avg)
      avg_plane<T>(pl, s, d);
    else
      avg_backward_plane<T>(pl, s, d, scratch);
  }
}

// One copy of every plane kernel per ISA: the always-inline bodies take on the target of the
// function they are inlined into. Each call runs a range of planes, so that small planes (global
// pooling of 7 x 7 maps) pay no call per plane.
#define CT_POOL_ISA(SUFFIX, LEVEL, TARGET)                                           \
  template <Kind K, class T>                                                         \
  TARGET void planes_##SUFFIX(const Plan& pl, const Planes& r, const T* src, T* dst, \
                              std::int64_t* ind, T* scratch) {                       \
    planes_body<K, T, LEVEL>(pl, r, src, dst, ind, scratch);                         \
  }
CT_POOL_ISA(avx512, 2, __attribute__((target("avx512f"))))
CT_POOL_ISA(avx2, 1, __attribute__((target("avx2,fma"))))
CT_POOL_ISA(base, 0, )
#undef CT_POOL_ISA

// The kernel of the path in effect (cpu/isa.h), fetched once per op by run_planes.
template <Kind K, class T>
PlaneFn<T> plane_fn() {
  switch (isa()) {
    case Isa::avx512:
      return planes_avx512<K, T>;
    case Isa::avx2:
      return planes_avx2<K, T>;
    default:
      return planes_base<K, T>;
  }
}

// Runs a plane kernel over every plane, in parallel when the call is large enough.
template <Kind K, class T>
void run_planes(const Plan& pl, std::int64_t planes, const T* src, std::int64_t src_plane, T* dst,
                std::int64_t dst_plane, std::int64_t* ind, std::int64_t scratch) {
  const PlaneFn<T> f = plane_fn<K, T>();
  const bool parallel =
      planes > 1 && static_cast<double>(planes) * pl.work >= static_cast<double>(kParallelWork);
  // Per-thread scratch from the tensor allocator, before the team starts: a refusal is an Error
  // here rather than std::bad_alloc inside the parallel region.
  const std::int64_t threads = parallel ? omp_get_max_threads() : 1;
  Tensor buf;
  if (scratch > 0)
    buf = Tensor::empty_cpu({checked::mul(threads, scratch, "pool", "the scratch size")},
                            dtype_of<T>());
  T* scratch_at = scratch > 0 ? buf.data_ptr<T>() : nullptr;
#pragma omp parallel if (parallel)
  {
    // One contiguous range of planes per thread (every plane costs the same).
    const std::int64_t team = omp_get_num_threads(), me = omp_get_thread_num();
    const Planes r{planes * me / team, planes * (me + 1) / team, src_plane, dst_plane};
    if (r.p0 < r.p1) f(pl, r, src, dst, ind, scratch_at ? scratch_at + me * scratch : nullptr);
  }
}

Shape with_planes(const PoolGeometry& g, const Shape& spatial) {
  Shape s{g.batch, g.channels};
  s.insert(s.end(), spatial.begin(), spatial.end());
  return s;
}

}  // namespace

// Outputs are allocated before the plan, and no plan is made for an empty result: its size
// follows the output extents, which need not be small when N * C = 0.
PoolResult max_pool_forward(const Tensor& x, const PoolGeometry& g, bool with_indices) {
  PoolResult r;
  r.values = Tensor::empty_cpu(with_planes(g, g.out), x.dtype());
  if (with_indices) r.indices = Tensor::empty_cpu(with_planes(g, g.out), kInt64);
  if (r.values.numel() == 0) return r;
  const Plan pl = make_plan(g);
  std::int64_t* ind = with_indices ? r.indices.data_ptr<std::int64_t>() : nullptr;
  dispatch_floating(x.dtype(), [&]<class T>() {
    if (with_indices)
      run_planes<Kind::MaxIndices, T>(pl, g.planes(), x.data_ptr<T>(), pl.in_numel,
                                      r.values.data_ptr<T>(), pl.out_numel, ind, 0);
    else
      run_planes<Kind::MaxValues, T>(pl, g.planes(), x.data_ptr<T>(), pl.in_numel,
                                     r.values.data_ptr<T>(), pl.out_numel, nullptr, 0);
  });
  return r;
}

Tensor avg_pool_forward(const Tensor& x, const PoolGeometry& g) {
  Tensor y = Tensor::empty_cpu(with_planes(g, g.out), x.dtype());
  if (y.numel() == 0) return y;
  const Plan pl = make_plan(g);
  dispatch_floating(x.dtype(), [&]<class T>() {
    run_planes<Kind::Avg, T>(pl, g.planes(), x.data_ptr<T>(), pl.in_numel, y.data_ptr<T>(),
                             pl.out_numel, nullptr, 0);
  });
  return y;
}

Tensor avg_pool_backward(const Tensor& dy, const PoolGeometry& g) {
  Tensor dx = Tensor::empty_cpu(with_planes(g, g.in), dy.dtype());
  if (dx.numel() == 0) return dx;
  const Plan pl = make_plan(g);
  dispatch_floating(dy.dtype(), [&]<class T>() {
    run_planes<Kind::AvgBackward, T>(pl, g.planes(), dy.data_ptr<T>(), pl.out_numel,
                                     dx.data_ptr<T>(), pl.in_numel, nullptr, pl.n);
  });
  return dx;
}

Tensor index_scatter(const Tensor& src, const Tensor& indices, const Shape& plane,
                     bool accumulate) {
  const std::int64_t planes = src.size(0) * src.size(1);
  const std::int64_t m = planes > 0 ? src.numel() / planes : 0, size = numel(plane);
  Shape shape{src.size(0), src.size(1)};
  shape.insert(shape.end(), plane.begin(), plane.end());
  Tensor out = Tensor::empty_cpu(shape, src.dtype());
  const std::int64_t* ind = indices.data_ptr<std::int64_t>();
  const bool parallel =
      planes > 1 && static_cast<double>(planes) * static_cast<double>(m + size) >= kParallelWork;
  dispatch_floating(src.dtype(), [&]<class T>() {
    const T* s = src.data_ptr<T>();
    T* d = out.data_ptr<T>();
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t p = 0; p < planes; ++p) {
      T* dp = d + p * size;
      const T* sp = s + p * m;
      const std::int64_t* ip = ind + p * m;
      std::fill_n(dp, size, T(0));
      if (accumulate) {
        for (std::int64_t o = 0; o < m; ++o)
          if (ip[o] >= 0) dp[ip[o]] += sp[o];
      } else {
        for (std::int64_t o = 0; o < m; ++o)
          if (ip[o] >= 0) dp[ip[o]] = sp[o];
      }
    }
  });
  return out;
}

Tensor index_gather(const Tensor& src, const Tensor& indices) {
  const std::int64_t planes = src.size(0) * src.size(1);
  const std::int64_t size = planes > 0 ? src.numel() / planes : 0;
  const std::int64_t m = planes > 0 ? indices.numel() / planes : 0;
  Tensor out = Tensor::empty_cpu(indices.shape(), src.dtype());
  const std::int64_t* ind = indices.data_ptr<std::int64_t>();
  const bool parallel =
      planes > 1 && static_cast<double>(planes) * static_cast<double>(m) >= kParallelWork;
  dispatch_floating(src.dtype(), [&]<class T>() {
    const T* s = src.data_ptr<T>();
    T* d = out.data_ptr<T>();
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t p = 0; p < planes; ++p)
      for (std::int64_t o = 0; o < m; ++o) {
        const std::int64_t i = ind[p * m + o];
        d[p * m + o] = i >= 0 ? s[p * size + i] : T(0);
      }
  });
  return out;
}

}  // namespace convtape::cpu
