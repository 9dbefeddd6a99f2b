// Small helpers for the CUDA kernels: aligned vector packs and a block-wide sum.
#pragma once

#include <cstdint>

namespace gantools {

// VEC elements moved as one aligned access (16 bytes for the widest packs).
template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Pack {
  T v[VEC];
};

// Elements per 16-byte access, capped so double stays at 2.
template <typename T>
constexpr int vec_width() {
  return 16 / sizeof(T) > 0 ? static_cast<int>(16 / sizeof(T)) : 1;
}

inline bool aligned16(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

constexpr int kThreads = 256;

// Sum over a block of Threads threads (a multiple of 32, at most 1024); the result is valid in thread 0.
template <typename T, int Threads = kThreads>
__device__ T block_sum(T value) {
  static_assert(Threads % 32 == 0 && Threads <= 1024, "block_sum: whole warps, at most 32 of them");
  __shared__ T warp_sums[Threads / 32];
  for (int offset = 16; offset > 0; offset /= 2) {
    value += __shfl_down_sync(0xffffffffu, value, offset);
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) {
    warp_sums[warp] = value;
  }
  __syncthreads();
  if (warp == 0) {
    value = lane < Threads / 32 ? warp_sums[lane] : T(0);
    for (int offset = 16; offset > 0; offset /= 2) {
      value += __shfl_down_sync(0xffffffffu, value, offset);
    }
  }
  return value;
}

}  // namespace gantools
