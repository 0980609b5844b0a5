// Implicit-GEMM convolution on CPU for convolutions without input dilation (any spatial rank,
// any stride):
//   y[n, k, o] = b[k] + sum over rows kk = (c, r) of w[k, kk] * padded[n, c](o * stride + r * dil)
// One sample's group is copied into a zero-padded buffer laid out on the grid
// G = (out[0], padded in[1], ..., padded in[s-1]); on that grid, row kk = (c, r) of the column
// matrix is the padded buffer itself shifted by off(kk) = c * plane + sum_d r[d] * dilation[d] *
// Gstride[d]. The micro-kernel reads B through one row pointer per kk, so nothing is packed; grid
// columns past the real output width are computed and dropped. The weight gradient reads the same
// windows as A rows: dw^T[kk, k] = sum_q window_kk[q] * dy~[k, q]. Where the grid would compute
// many columns past the output (short output lines in whole micro-kernel panels), the forward runs
// positions-major instead (plan.windows): the micro-kernel's rows are output positions, each
// reading its window through its own pointer, and its columns output channels. The plan
// (cpu/conv_plan.h, implicit_ok) takes this path when the padded sample group fits kImplicitBytes
// and there are samples enough for the threads.
#include <omp.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "cpu/conv_common.h"
#include "cpu/conv_paths.h"
#include "cpu/line_ops.h"
#include "cpu/parallel.h"

namespace convtape::cpu::conv_detail {

namespace {

// The padded grid of one sample's group. A strided conv is first split into its stride phases:
// phase plane (a_0, .., a_{s-1}) holds the padded input at coordinates stride * i + a, so that tap
// r of output o, at padded coordinate stride * o + dil * r = stride * (o + dil * r / stride) +
// (dil * r) % stride, reads phase (dil * r) % stride at o + dil * r / stride: a unit-stride window
// again. Each phase plane has extents ip (output extent + the kernel's reach in phase
// coordinates) and strides gs; `plane` is the padded size of one channel (all its phases), and
// off(kk) the window offset of column-matrix row kk. The grid's columns run over the output's
// last two dims with the last one padded (out[s-2] x ip[s-1] columns per outer plane, the extra
// ip - out columns of each line being discarded), once per outer plane (the output positions of
// dims 0 .. s-3): padding only the last dim keeps the wasted columns of a 3-d conv at ip/out of
// one dim instead of three. A unit-stride conv has one phase. With unit stride along the last
// dim, lines share their padding (implicit_pitch): the pitch is max(pad_lo + in, ip - pad_lo, out),
// a read past a line's end landing in the next line's left padding, which wastes fewer columns.
struct ImplicitGrid {
  std::int64_t ip[kMaxRank], gs[kMaxRank], phases[kMaxRank];
  std::int64_t pplane = 0;     // values per phase plane
  std::int64_t plane = 0;      // padded values per channel (every phase)
  std::int64_t cols = 0;       // grid columns per outer plane
  std::int64_t outer = 1;      // outer planes
  std::int64_t grid = 0;       // outer * cols
  std::int64_t plane_out = 0;  // output positions per outer plane
  std::vector<std::int64_t> offs, outer_off;
  // slot[d][a]: the place of phase a of dim d among the phases some tap reads ((dil * r) % stride
  // == a for some r), or -1: only those are laid out and copied (a 1x1 stride-2 conv reads one
  // phase in four, whose copy and zeroing were a 4x larger buffer); phases[d] counts them.
  std::vector<std::vector<std::int64_t>> slot;
  std::int64_t overrun = 0;             // zeros the copy appends after its last plane
  std::vector<std::int64_t> line_base;  // per input line of a channel, see the constructor
  // A strided last dim's read phases: input i of a line lands at index (i + lo) / st of phase
  // (i + lo) % st, so phase a gathers `count` values from i0 = (a - lo) mod st, every st-th, to
  // its plane at (i0 + lo) / st past the line's base. Per phase, the kept lines' source offsets
  // (`src`, in one channel of x) and destinations (`dst`, in one channel's padded planes), so
  // that a channel's phase is one call (line::gather_strided_rows): a call per line of tens of
  // values cost a 3x3 stride-2 forward a tenth of its time. Fixed per conv, so computed once.
  struct PhaseRows {
    std::vector<std::int64_t> src, dst;
    std::int64_t count = 0;
  };
  std::vector<PhaseRows> last_phases;
  std::int64_t at(int d, std::int64_t a) const {
    return slot[static_cast<std::size_t>(d)][static_cast<std::size_t>(a)];
  }
  ImplicitGrid(const Index& ix, const ImplicitPitch& pitch, std::int64_t rows)
      : offs(static_cast<std::size_t>(rows)), slot(static_cast<std::size_t>(ix.s)) {
    const int s = ix.s;
    std::int64_t nphase = 1;
    for (int d = 0; d < s; ++d) {
      ip[d] = ix.out[d] + ix.dil[d] * (ix.kernel[d] - 1) / ix.stride[d];
      auto& sl = slot[static_cast<std::size_t>(d)];
      sl.assign(static_cast<std::size_t>(ix.stride[d]), -1);
      for (std::int64_t r = 0; r < ix.kernel[d]; ++r)
        sl[static_cast<std::size_t>(ix.dil[d] * r % ix.stride[d])] = 0;
      phases[d] = 0;
      for (auto& v : sl)
        if (v == 0) v = phases[d]++;
      nphase *= phases[d];
    }
    // The last dim's pitch: ip, or less where neighbouring lines share their padding
    // (implicit_pitch, cpu/conv_plan.h); the last line's reads then run `overrun` past its plane.
    ip[s - 1] = pitch.pitch;
    overrun = pitch.overrun;
    gs[s - 1] = 1;
    for (int d = s - 2; d >= 0; --d) gs[d] = gs[d + 1] * ip[d + 1];
    pplane = gs[0] * ip[0];
    plane = nphase * pplane;
    cols = s == 1 ? ix.out[0] : ix.out[s - 2] * ip[s - 1];
    plane_out = s == 1 ? ix.out[0] : ix.out[s - 2] * ix.out[s - 1];
    for (int d = 0; d + 2 < s; ++d) outer *= ix.out[d];
    grid = outer * cols;
    outer_off.resize(static_cast<std::size_t>(outer));
    for (std::int64_t op = 0; op < outer; ++op) {
      std::int64_t rem = op, off = 0;
      for (int d = s - 3; d >= 0; --d) {
        off += (rem % ix.out[d]) * gs[d];
        rem /= ix.out[d];
      }
      outer_off[static_cast<std::size_t>(op)] = off;
    }
    for (std::int64_t kk = 0; kk < rows; ++kk) {
      const RowIndex ri = decode_row(ix, kk);
      std::int64_t off = ri.c * plane, phase = 0;
      for (int d = 0; d < s; ++d) {
        const std::int64_t reach = ri.rd[d];  // dil * r
        off += reach / ix.stride[d] * gs[d];
        phase = phase * phases[d] + at(d, reach % ix.stride[d]);
      }
      offs[static_cast<std::size_t>(kk)] = off + phase * pplane;
    }
    // Where each input line of a channel lands: its offset in the channel's padded planes (the
    // last dim's phase and low padding not yet added), or -1 for a line that no output reads.
    const std::int64_t lines = ix.in_numel / ix.in[s - 1];
    line_base.resize(static_cast<std::size_t>(lines));
    for (std::int64_t line = 0; line < lines; ++line) {
      std::int64_t rem = line, base = 0, phase = 0, scale = 1;
      bool kept = true;
      for (int d = s - 2; d >= 0 && kept; --d) {
        const std::int64_t u = rem % ix.in[d] + ix.pad[d];
        rem /= ix.in[d];
        kept = u / ix.stride[d] < ip[d] && at(d, u % ix.stride[d]) >= 0;
        base += u / ix.stride[d] * gs[d];
        phase += at(d, u % ix.stride[d]) * scale;
        scale *= phases[d];
      }
      // The last dim's phase index varies fastest: phase plane (phase * phases[s-1] + slot).
      line_base[static_cast<std::size_t>(line)] = kept ? base + phase * phases[s - 1] * pplane : -1;
    }
    const std::int64_t st = ix.stride[s - 1], lo = ix.pad[s - 1], len = ix.in[s - 1];
    if (st > 1)
      for (std::int64_t a = 0; a < st; ++a) {
        if (at(s - 1, a) < 0) continue;
        const std::int64_t i0 = ((a - lo) % st + st) % st;
        const std::int64_t count = std::min(ceil_div(len - i0, st), ip[s - 1] - (i0 + lo) / st);
        if (count <= 0) continue;
        PhaseRows pr;
        pr.count = count;
        for (std::int64_t line = 0; line < lines; ++line) {
          const std::int64_t base = line_base[static_cast<std::size_t>(line)];
          if (base < 0) continue;
          pr.src.push_back(line * len + i0);
          pr.dst.push_back(base + at(s - 1, a) * pplane + (i0 + lo) / st);
        }
        last_phases.push_back(std::move(pr));
      }
  }
  // Zero-padded, phase-split copy of channels [0, cg) of xg into the per-thread Input buffer, with
  // `slack` extra zeros after the last plane. Input values that no output reads are left out.
  template <class T>
  T* pad(Isa isa, const Index& ix, const T* xg, std::int64_t cg, std::int64_t slack) const {
    const int s = ix.s;
    const std::int64_t size = cg * plane + slack + overrun;
    T* padded = gemm_workspace<T>(GemmBuffer::Input, size);
    std::fill_n(padded, size, T(0));
    const std::int64_t lines = ix.in_numel / ix.in[s - 1], len = ix.in[s - 1];
    const std::int64_t st = ix.stride[s - 1], lo = ix.pad[s - 1];
    if (st > 1) {
      for (std::int64_t c = 0; c < cg; ++c)
        for (const PhaseRows& pr : last_phases)
          line::gather_strided_rows(isa, padded + c * plane,
                                    {pr.src.data(), pr.dst.data(),
                                     static_cast<std::int64_t>(pr.src.size()), pr.count, st},
                                    xg + c * lines * len);
      return padded;
    }
    for (std::int64_t c = 0; c < cg; ++c)
      for (std::int64_t line = 0; line < lines; ++line) {
        const std::int64_t base = line_base[static_cast<std::size_t>(line)];
        if (base < 0) continue;
        std::copy_n(xg + (c * lines + line) * len, std::min(len, ip[s - 1] - lo),
                    padded + c * plane + base + lo);
      }
    return padded;
  }
  // Output position of column q of outer plane op, or -1 for a column past the output's last dim.
  std::int64_t position(const Index& ix, std::int64_t op, std::int64_t q) const {
    if (ix.s == 1) return q;
    const std::int64_t j = q % ip[ix.s - 1];
    if (j >= ix.out[ix.s - 1]) return -1;
    return op * plane_out + (q / ip[ix.s - 1]) * ix.out[ix.s - 1] + j;
  }
};

// The positions-major forward's copy when it needs no phase split (see implicit_forward_windows):
// the input with its padding, extents ext[d] = max(pad_lo + in, the last window's reach), strides
// gs, or the input itself (`direct`) for unit strides when no window reaches outside it; offs[kk]
// is row kk's tap offset in that layout.
struct WindowLayout {
  bool split = false, direct = true;
  std::int64_t ext[kMaxRank], gs[kMaxRank];
  std::int64_t plane = 1;
  std::vector<std::int64_t> offs;
  WindowLayout(const Index& ix, const ImplicitGrid& ig) {
    const int s = ix.s;
    for (int d = 0; d < s; ++d) {
      const std::int64_t reach =
          (ix.out[d] - 1) * ix.stride[d] + ix.dil[d] * (ix.kernel[d] - 1) + 1;
      split = split || ix.pad[d] < 0 || ig.phases[d] < ix.stride[d];
      direct = direct && ix.pad[d] == 0 && reach <= ix.in[d] && ix.stride[d] == 1;
      ext[d] = std::max(ix.pad[d] + ix.in[d], reach);
    }
    split = split && !direct;
    if (direct)
      for (int d = 0; d < s; ++d) ext[d] = ix.in[d];
    if (split) return;
    for (int d = s - 1; d >= 0; --d) {
      gs[d] = plane;
      plane *= ext[d];
    }
    offs.resize(ig.offs.size());
    for (std::size_t kk = 0; kk < offs.size(); ++kk) {
      const RowIndex ri = decode_row(ix, static_cast<std::int64_t>(kk));
      std::int64_t off = ri.c * plane;
      for (int d = 0; d < s; ++d) off += ri.rd[d] * gs[d];
      offs[kk] = off;
    }
  }
  // Channels [0, cg) of xg in this layout: xg itself, or the per-thread Input buffer, each channel
  // zeroed and its input lines copied in.
  template <class T>
  const T* pad(const Index& ix, const T* xg, std::int64_t cg) const {
    if (direct) return xg;
    T* padded = gemm_workspace<T>(GemmBuffer::Input, cg * plane);
    pad_planes(xg, cg, ix.s, ix.in, ix.pad, gs, plane, padded);
    return padded;
  }
};

}  // namespace

template <class T>
void implicit_forward_windows(const ConvPlan& plan, const GemmKernel<T>& kern, const T* x,
                              const T* w, const T* b, T* y);

template <class T>
void implicit_forward(const ConvPlan& plan, const GemmKernel<T>& kern, const T* x, const T* w,
                      const T* b, T* y) {
  if (plan.windows) return implicit_forward_windows(plan, kern, x, w, b, y);
  const ConvGeometry& g = plan.geometry;
  const Index ix(g);
  const int s = ix.s;
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels(),
                     rows = cg * ix.kernel_numel;
  const std::int64_t positions = g.out_numel();
  const ImplicitGrid ig(ix, implicit_pitch(g), rows);
  const auto& offs = ig.offs;
  const std::int64_t nr = kern.nr, mr = kern.mr;
  const std::int64_t tile = plan.tile;  // grid columns per tile: min(nc, cols rounded up to nr)
  // A run of grid columns that maps to consecutive output positions: one output line (s >= 2) or
  // the whole tile (s == 1).
  const std::int64_t line_cols = s == 1 ? tile : ig.ip[s - 1];
  const std::int64_t tasks = plan.tasks;  // (sample, group[, block of output channels])
  const std::int64_t blocks = std::max<std::int64_t>(plan.channel_blocks, 1);
  const std::int64_t block = plan.channel_blocks > 0 ? plan.block_channels : kg;
  // Equal reduction slices of at most kc rows.
  const std::int64_t kstep = plan.tile_rows;
  // The weights are packed once for all tasks; a task of one block of output channels packs its
  // block itself, on its thread: packed on the calling thread, a second thread's block came from
  // the first one's cache (at 2 threads, batch 1, 32 -> 64 channels on 14x14, the block of the
  // second thread took 48 us against 42 us for the same work on the first).
  const bool blocked = plan.channel_blocks > 0;
  const std::int64_t bpad = ceil_div(block, mr) * mr, mpad = ceil_div(kg, mr) * mr;
  const std::unique_ptr<T[]> packed_w = blocked ? nullptr : pack_weights(w, g, kern.mr, mpad);
  const Isa isa = plan.target.isa;  // read once, outside the parallel region
#pragma omp parallel for schedule(dynamic) if (tasks > 1 && plan.parallel)
  for (std::int64_t t = 0; t < tasks; ++t) {
    // (sample, group, block of output channels [k0, k1)); one block unless the plan cut them.
    const std::int64_t ng = t / blocks, blk = t % blocks;
    const std::int64_t n = ng / g.groups, grp = ng % g.groups;
    const std::int64_t k0 = blk * block, k1 = std::min(kg, k0 + block);
    thread_local std::vector<const T*> brow;
    thread_local std::vector<line::Segment> segs;
    // The padded copy of this sample's group, with slack for the last tile's extra columns.
    const T* padded = ig.pad(isa, ix, x + (n * g.channels + grp * cg) * ix.in_numel, cg, tile + nr);
    brow.resize(static_cast<std::size_t>(rows));
    const T* wb = nullptr;  // the panels of channels [k0, k1)
    if (blocked) {
      T* own = gemm_workspace<T>(GemmBuffer::A, bpad * rows);
      MatrixPackA<T>{w + grp * kg * rows, rows, false, kern.mr}(k0, 0, k1 - k0, rows, own);
      wb = own;
    } else {
      wb = packed_w.get() + grp * mpad * rows;
    }
    T* yg = y + (n * g.out_channels + grp * kg) * positions;
    T* ctile = gemm_workspace<T>(GemmBuffer::Extra, bpad * tile);
    for (std::int64_t op = 0; op < ig.outer; ++op)
      for (std::int64_t q0 = 0; q0 < ig.cols; q0 += tile) {
        const std::int64_t ncols = std::min(tile, ig.cols - q0), width = ceil_div(ncols, nr) * nr;
        const T* base = padded + ig.outer_off[static_cast<std::size_t>(op)] + q0;
        for (std::int64_t kk = 0; kk < rows; ++kk)
          brow[static_cast<std::size_t>(kk)] = base + offs[static_cast<std::size_t>(kk)];
        rows_product(kern, wb, rows, kstep, brow.data(), 0, k1 - k0, width, ctile);
        // Keep the grid columns that are real output positions: one segment per output line,
        // copied output channel by output channel, so that both the tile and y stream.
        segs.clear();
        for (std::int64_t q = q0; q < q0 + ncols;) {
          const std::int64_t run = std::min(line_cols - q % line_cols, q0 + ncols - q);
          const std::int64_t p = ig.position(ix, op, q);
          if (p >= 0) {
            const std::int64_t count =
                s == 1 ? run : std::min(run, ix.out[s - 1] - q % ig.ip[s - 1]);
            segs.push_back({q - q0, p, count});
          }
          q += run;
        }
        line::add_rows(isa, yg + k0 * positions, positions, ctile, width,
                       b ? b + grp * kg + k0 : nullptr, k1 - k0, segs.data(),
                       static_cast<std::int64_t>(segs.size()));
      }
  }
}

// The positions-major form of the forward: C^T[position, k] = sum over rows kk of
// window_kk[position] * w[k, kk], with the micro-kernel's MR rows being output positions (each a
// pointer to its window's base in the padded copy: no grid columns past the output's last dim are
// computed) and its NR columns output channels (the packed weights as B panels, aligned). A tile
// of positions is summed over the reduction slices in a positions x channels buffer, then
// transposed into y with the bias.
template <class T>
void implicit_forward_windows(const ConvPlan& plan, const GemmKernel<T>& kern, const T* x,
                              const T* w, const T* b, T* y) {
  const ConvGeometry& g = plan.geometry;
  const Index ix(g);
  const int s = ix.s;
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels(),
                     rows = cg * ix.kernel_numel;
  const std::int64_t positions = g.out_numel();
  const ImplicitGrid ig(ix, implicit_pitch(g), rows);
  const std::int64_t mr = kern.mr, nr = kern.nr;
  const std::int64_t kgp = ceil_div(kg, nr) * nr;
  // The windows need no phase split: each position reads through its own pointer. Where every
  // input value is read (each dim's taps cover all its stride phases) and the padding is not
  // negative, the copy is the input with its padding, line by line, no gathers (3x3 stride 2 at
  // 2 threads, AVX-512: resnet_s2 4.88 -> 4.58 ms, c256_s2 9.57 -> 9.30 ms); with unit stride and
  // no window reaching the padding, the input itself (an exact 3x3 'valid' conv at 128 channels,
  // 28x28: 7.40 -> 7.20 ms). Otherwise the phase-split copy of the grid form, which leaves out the
  // phases no tap reads (a 1x1 stride-2 conv read in place ran 11% slower: its windows then touch
  // twice the cache lines).
  const WindowLayout lay(ix, ig);
  const std::vector<std::int64_t>& offs = lay.split ? ig.offs : lay.offs;
  std::vector<std::int64_t> pos_off(static_cast<std::size_t>(positions));
  {
    const std::int64_t last = ix.out[s - 1];
    for (std::int64_t p = 0; p < positions; ++p) {
      if (!lay.split) {
        std::int64_t rem = p, off = 0;
        for (int d = s - 1; d >= 0; --d) {
          off += rem % ix.out[d] * ix.stride[d] * lay.gs[d];
          rem /= ix.out[d];
        }
        pos_off[static_cast<std::size_t>(p)] = off;
        continue;
      }
      if (s == 1) {
        pos_off[static_cast<std::size_t>(p)] = p;
        continue;
      }
      const std::int64_t op = p / ig.plane_out, rem = p % ig.plane_out;
      pos_off[static_cast<std::size_t>(p)] =
          ig.outer_off[static_cast<std::size_t>(op)] + rem / last * ig.ip[s - 1] + rem % last;
    }
  }
  // The weights as B panels: channels [j, j + nr) of a group, element (kk, j') at kk * nr + j'.
  const std::unique_ptr<T[]> packed = pack_weights(w, g, kern.nr, kgp);
  const std::int64_t kstep = plan.tile_rows;  // equal reduction slices
  const std::int64_t tile = plan.tile;        // positions per tile, a multiple of mr
  const std::int64_t tasks = plan.tasks;      // (sample, group)
  const Isa isa = plan.target.isa;
#pragma omp parallel for schedule(dynamic) if (tasks > 1 && plan.parallel)
  for (std::int64_t t = 0; t < tasks; ++t) {
    const std::int64_t n = t / g.groups, grp = t % g.groups;
    const T* xg = x + (n * g.channels + grp * cg) * ix.in_numel;
    const T* padded = lay.split ? ig.pad(isa, ix, xg, cg, 0) : lay.pad(ix, xg, cg);
    const T* wg = packed.get() + grp * kgp * rows;
    T* yg = y + (n * g.out_channels + grp * kg) * positions;
    T* ctile = gemm_workspace<T>(GemmBuffer::Extra, tile * kgp);
    thread_local std::vector<const T*> abase;
    abase.resize(static_cast<std::size_t>(tile));
    for (std::int64_t p0 = 0; p0 < positions; p0 += tile) {
      const std::int64_t np = std::min(tile, positions - p0), npad = ceil_div(np, mr) * mr;
      for (std::int64_t i = 0; i < npad; ++i)
        abase[static_cast<std::size_t>(i)] =
            padded + pos_off[static_cast<std::size_t>(p0 + std::min(i, np - 1))];
      windows_product(kern, wg, rows, kstep, abase.data(), offs.data(), npad, kg, kgp, ctile);
      // C^T into y with the bias, in 16 x 16 blocks so that both sides stream (read column-wise,
      // a tile of 512 channels cost a 1x1 stride-2 forward a fifth of its time).
      line::transpose_add(isa, yg + p0, positions, ctile, kgp, b ? b + grp * kg : nullptr, kg, np);
    }
  }
}

// The weight gradient on the padded grid: dw^T[kk, k] = sum_q window_kk[q] * dy~[k, q] with dy~ =
// dy spread onto the grid (zero in the columns past the output).
template <class T>
void implicit_backward_weight(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy,
                              const T* x, T* dw) {
  const ConvGeometry& g = plan.geometry;
  const Index ix(g);
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels(),
                     rows = cg * ix.kernel_numel;
  const std::int64_t positions = g.out_numel();
  const ImplicitGrid ig(ix, implicit_pitch(g), rows);
  const std::int64_t tasks = plan.tasks;  // (sample, group)
  const std::int64_t mr = kern.mr, nr = kern.nr, kgp = ceil_div(kg, nr) * nr;
  const std::int64_t kstep = plan.tile;  // min(kc, grid columns)
  // The samples are cut into `used` contiguous parts, each summed in sample order into its own
  // dw^T and the parts added in order below: the same sums whichever thread runs a part, and the
  // same cut for any team size in deterministic mode (cpu/parallel.h; the plan's parts).
  const int used = plan.parts;
  const Isa isa = plan.target.isa;                  // read once, outside the parallel region
  const std::int64_t tsize = g.groups * rows * kg;  // dw^T per group: [rows, kg]
  std::vector<T> acc(static_cast<std::size_t>(used * tsize), T(0));
  // The grid's runs of real output positions, {grid column, output position, length}: dy~'s rows
  // are these runs of dy with zeros between.
  std::vector<line::Segment> runs;
  for (std::int64_t q = 0; q < ig.grid; ++q) {
    const std::int64_t p = ig.position(ix, q / ig.cols, q % ig.cols);
    if (p < 0) continue;
    if (!runs.empty() && runs.back().src + runs.back().n == q &&
        runs.back().dst + runs.back().n == p)
      ++runs.back().n;
    else
      runs.push_back({q, p, 1});
  }
#pragma omp parallel num_threads(run_threads(used)) if (used > 1)
  {
    std::vector<T> spread(static_cast<std::size_t>(kg * ig.grid));
#pragma omp for schedule(dynamic)
    for (int part = 0; part < used; ++part) {
      T* mine = acc.data() + part * tsize;
      for (std::int64_t t = part_begin(tasks, used, part); t < part_begin(tasks, used, part + 1);
           ++t) {
        const std::int64_t n = t / g.groups, grp = t % g.groups;
        const T* padded = ig.pad(isa, ix, x + (n * g.channels + grp * cg) * ix.in_numel, cg, 0);
        const T* dyg = dy + (n * g.out_channels + grp * kg) * positions;
        for (std::int64_t k = 0; k < kg; ++k) {
          T* row = spread.data() + k * ig.grid;
          std::int64_t q = 0;
          for (const line::Segment& r : runs) {
            std::fill(row + q, row + r.src, T(0));
            std::copy_n(dyg + k * positions + r.dst, r.n, row + r.src);
            q = r.src + r.n;
          }
          std::fill(row + q, row + ig.grid, T(0));
        }
        // dw^T[rows, kg] += windows[rows, grid] * spread^T[grid, kg]: B packed per slice of an
        // outer plane's columns, A read in place through one pointer per window (arows kernel).
        T* c = mine + grp * rows * kg;
        T* bp = gemm_workspace<T>(GemmBuffer::B, kstep * kgp);
        alignas(64) T tile[8 * 32];
        const T* arows[32];
        for (std::int64_t op = 0; op < ig.outer; ++op)
          for (std::int64_t pc = 0; pc < ig.cols; pc += kstep) {
            const std::int64_t kc = std::min(kstep, ig.cols - pc);
            MatrixPackB<T>{spread.data(), ig.grid, true, kern.nr}(op * ig.cols + pc, 0, kc, kg, bp);
            const T* base = padded + ig.outer_off[static_cast<std::size_t>(op)] + pc;
            for (std::int64_t ir = 0; ir < rows; ir += mr) {
              const std::int64_t mr_now = std::min(mr, rows - ir);
              for (std::int64_t i = 0; i < mr; ++i)
                arows[i] = base + ig.offs[static_cast<std::size_t>(ir + std::min(i, mr_now - 1))];
              for (std::int64_t jr = 0; jr < kg; jr += nr) {
                const std::int64_t nr_now = std::min(nr, kg - jr);
                const T* b_panel = bp + (jr / nr) * nr * kc;
                if (mr_now == mr && nr_now == nr) {
                  kern.arows(kc, arows, b_panel, nr, c + ir * kg + jr, kg, T(1), T(1));
                } else {
                  (2 * nr_now <= nr ? kern.arows_half : kern.arows)(kc, arows, b_panel, nr, tile,
                                                                    nr, T(1), T(0));
                  for (std::int64_t i = 0; i < mr_now; ++i)
                    for (std::int64_t j = 0; j < nr_now; ++j)
                      c[(ir + i) * kg + jr + j] += tile[i * nr + j];
                }
              }
            }
          }
      }
    }
  }
  // dw[grp, k, kk] = the parts' dw^T[grp, kk, k] added in part order, transposed in blocks of
  // kBlock x kBlock so that both sides stay in cache (a 256-channel 3x3 dw^T is 2.4 MB; read
  // column-wise it cost a 3x3 stride-2 weight gradient a tenth of its time).
  constexpr std::int64_t kBlock = 16;
  const std::int64_t kk_blocks = ceil_div(rows, kBlock), k_blocks = ceil_div(kg, kBlock);
  const std::int64_t blocks = g.groups * kk_blocks * k_blocks;
#pragma omp parallel for schedule(static) if (blocks > 1 && tsize * used >= kParallelWork)
  for (std::int64_t blk = 0; blk < blocks; ++blk) {
    const std::int64_t grp = blk / (kk_blocks * k_blocks), rest = blk % (kk_blocks * k_blocks);
    const std::int64_t kk0 = rest / k_blocks * kBlock, kb0 = rest % k_blocks * kBlock;
    T sum[kBlock][kBlock];
    const std::int64_t nkk = std::min(kBlock, rows - kk0), nk = std::min(kBlock, kg - kb0);
    for (std::int64_t i = 0; i < nkk; ++i)
      for (std::int64_t j = 0; j < nk; ++j) {
        T v = T(0);
        for (int u = 0; u < used; ++u)
          v += acc[static_cast<std::size_t>(u * tsize + (grp * rows + kk0 + i) * kg + kb0 + j)];
        sum[i][j] = v;
      }
    for (std::int64_t j = 0; j < nk; ++j)
      for (std::int64_t i = 0; i < nkk; ++i) dw[(grp * kg + kb0 + j) * rows + kk0 + i] = sum[i][j];
  }
}

#define CT_INSTANTIATE(T)                                                                      \
  template void implicit_forward_windows<T>(const ConvPlan&, const GemmKernel<T>&, const T*,   \
                                            const T*, const T*, T*);                           \
  template void implicit_forward<T>(const ConvPlan&, const GemmKernel<T>&, const T*, const T*, \
                                    const T*, T*);                                             \
  template void implicit_backward_weight<T>(const ConvPlan&, const GemmKernel<T>&, const T*,   \
                                            const T*, T*);
CT_INSTANTIATE(float)
CT_INSTANTIATE(double)
#undef CT_INSTANTIATE

}  // namespace convtape::cpu::conv_detail
