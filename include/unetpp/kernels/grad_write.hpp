#pragma once
// How a backward kernel writes an input gradient.
//
// The library's contract is to ADD the input gradient into dx: where a tensor feeds two layers
// (a skip connection and the next stage), both gradients sum in one buffer. A caller that owns a
// buffer only one layer writes to can ask for ASSIGN instead: dx's old contents are ignored,
// which saves zeroing the buffer first and reading it back. Both give the same values (an
// assigned -0 may read +0 when added to a zeroed buffer instead).

namespace unetpp {

enum class GradWrite { add, assign };

}  // namespace unetpp
