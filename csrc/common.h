// Helpers shared by the CPU and CUDA kernels: the memory layout the kernels walk.
#pragma once

#include <ATen/ATen.h>

namespace gantools {

// The dense layout a kernel walks. A channels_last input keeps its layout (so a
// channels_last network never pays a transpose); anything else that is not
// contiguous is copied to the default layout first. gantools/ops/_layout.py
// mirrors this rule for the fake kernels, so the two must change together.
inline at::MemoryFormat kernel_format(const at::Tensor& t) {
  if (t.is_contiguous()) {
    return at::MemoryFormat::Contiguous;
  }
  if (t.dim() == 4 && t.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    return at::MemoryFormat::ChannelsLast;
  }
  if (t.dim() == 5 && t.is_contiguous(at::MemoryFormat::ChannelsLast3d)) {
    return at::MemoryFormat::ChannelsLast3d;
  }
  return at::MemoryFormat::Contiguous;
}

// Number of consecutive memory elements that share one channel (index along dim
// 1) in a tensor dense in `format`: the spatial size for the default layout, 1
// when channels are innermost.
inline int64_t channel_run(const at::Tensor& t, at::MemoryFormat format) {
  if (format != at::MemoryFormat::Contiguous) {
    return 1;
  }
  int64_t run = 1;
  for (int64_t d = 2; d < t.dim(); ++d) {
    run *= t.size(d);
  }
  return run;
}

}  // namespace gantools
