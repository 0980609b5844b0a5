// Shapes and strides: plain vectors of int64 extents, with the helpers every op needs
// (element counts, dim wrapping, broadcasting, row-major strides, printing).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace convtape {

using Shape = std::vector<std::int64_t>;

// Product of the extents (1 for a scalar shape []; 0 when any extent is 0, whatever the others).
// Throws "numel: expected a shape whose element count fits in 64 bits, got ..." rather than wrap:
// Tensor::make refuses such shapes, so only a shape no tensor has can reach that error, and ops
// that take a shape from the user check it first under their own name (checked::numel).
std::int64_t numel(const Shape& shape);

// "[2, 3, 4]".
std::string to_string(const Shape& shape);

// Row-major strides (in elements) of a contiguous tensor of this shape (size-0 and size-1 dims
// count as 1; a product past int64 saturates, which only an empty shape can reach).
Shape contiguous_strides(const Shape& shape);

// Maps dim in [-rank, rank) to [0, rank); throws "<op>: expected dim in [-r, r), got d".
std::int64_t wrap_dim(std::int64_t dim, std::int64_t rank, std::string_view op);

// NumPy broadcasting of two shapes; throws "<op>: expected broadcastable shapes, got ...".
Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op);

}  // namespace convtape
