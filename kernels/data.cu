// Batch gather from the resident dataset through a permutation.
//
// Self-contained: no #include. NVRTC options: --std=c++17 -arch=compute_XX --fmad=true.
// out[r*dim + d] = data[perm[offset + r]*dim + d] / 255.0f, IEEE division
// (bit-identical to the CPU's `x as f32 / 255.0`), or a plain copy for f32 data.
// Launch (all four gathers): blockDim = 256, grid = (G, 1, 1) with any G >= 1:
// block b handles rows b, b + gridDim.x, ...; suggested G = rows (gridDim.x
// allows up to 2^31-1), or min(rows, 16*SMs).
// The *_dev variants read the offset from device memory (for CUDA-graph replay).

__device__ __forceinline__ void gather_u8_rows(const unsigned char* __restrict__ data,
                                               const unsigned int* __restrict__ perm, int offset,
                                               int rows, int dim, float* __restrict__ out) {
    const bool vec = (dim & 3) == 0;  // rows start 4-byte (src) / 16-byte (dst) aligned
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const size_t src = (size_t)perm[offset + r] * dim;
        float* o = out + (size_t)r * dim;
        if (vec) {
            const uchar4* s4 = reinterpret_cast<const uchar4*>(data + src);
            float4* o4 = reinterpret_cast<float4*>(o);
            for (int d = threadIdx.x; d < (dim >> 2); d += blockDim.x) {
                const uchar4 b = s4[d];
                o4[d] = make_float4(__fdiv_rn((float)b.x, 255.0f), __fdiv_rn((float)b.y, 255.0f),
                                    __fdiv_rn((float)b.z, 255.0f), __fdiv_rn((float)b.w, 255.0f));
            }
        } else {
            for (int d = threadIdx.x; d < dim; d += blockDim.x) o[d] = __fdiv_rn((float)data[src + d], 255.0f);
        }
    }
}

__device__ __forceinline__ void gather_f32_rows(const float* __restrict__ data,
                                                const unsigned int* __restrict__ perm, int offset,
                                                int rows, int dim, float* __restrict__ out) {
    const bool vec = (dim & 3) == 0;
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const size_t src = (size_t)perm[offset + r] * dim;
        float* o = out + (size_t)r * dim;
        if (vec) {
            const float4* s4 = reinterpret_cast<const float4*>(data + src);
            float4* o4 = reinterpret_cast<float4*>(o);
            for (int d = threadIdx.x; d < (dim >> 2); d += blockDim.x) o4[d] = s4[d];
        } else {
            for (int d = threadIdx.x; d < dim; d += blockDim.x) o[d] = data[src + d];
        }
    }
}

// The gathers are memory-bound: designed for full occupancy, 8 blocks of 256
// threads per SM (≤ 32 registers; tools/check_kernels.py holds them to it).
extern "C" __global__ void __launch_bounds__(256, 8)
gather_u8(const unsigned char* __restrict__ data, const unsigned int* __restrict__ perm, int offset,
          int rows, int dim, float* __restrict__ out) {
    gather_u8_rows(data, perm, offset, rows, dim, out);
}

extern "C" __global__ void __launch_bounds__(256, 8)
gather_f32(const float* __restrict__ data, const unsigned int* __restrict__ perm, int offset,
           int rows, int dim, float* __restrict__ out) {
    gather_f32_rows(data, perm, offset, rows, dim, out);
}

extern "C" __global__ void __launch_bounds__(256, 8)
gather_u8_dev(const unsigned char* __restrict__ data, const unsigned int* __restrict__ perm,
              const int* __restrict__ offset_ptr, int rows, int dim, float* __restrict__ out) {
    gather_u8_rows(data, perm, *offset_ptr, rows, dim, out);
}

extern "C" __global__ void __launch_bounds__(256, 8)
gather_f32_dev(const float* __restrict__ data, const unsigned int* __restrict__ perm,
               const int* __restrict__ offset_ptr, int rows, int dim, float* __restrict__ out) {
    gather_f32_rows(data, perm, *offset_ptr, rows, dim, out);
}

// *offset += rows. Launch: grid = 1, blockDim = 1.
extern "C" __global__ void offset_advance(int* offset, int rows) {
    if (threadIdx.x == 0 && blockIdx.x == 0) offset[0] += rows;
}
