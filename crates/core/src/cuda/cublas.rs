//! cuBLAS as a *reference* for benchmarks (never in the training path): the
//! same row-major products as our GEMMs, timed the same way.

use super::Gpu;
use crate::{err, Buffer, GemmShape, Precision, Result};
use cudarc::cublas::{result as blas, sys};
use std::ffi::c_void;

pub struct Cublas {
    handle: sys::cublasHandle_t,
}

impl Drop for Cublas {
    fn drop(&mut self) {
        // SAFETY: the handle was created by `new` and is dropped once.
        let _ = unsafe { blas::destroy_handle(self.handle) };
    }
}

impl Cublas {
    /// None when libcublas cannot be loaded.
    pub fn new(gpu: &Gpu) -> Result<Option<Self>> {
        // SAFETY: only tries to dlopen the library.
        if !unsafe { sys::is_culib_present() } {
            return Ok(None);
        }
        let handle = blas::create_handle().map_err(|e| err!(Cuda, "cublasCreate: {e:?}"))?;
        // SAFETY: a live handle and our stream.
        unsafe { blas::set_stream(handle, gpu.stream.cu_stream() as _) }
            .map_err(|e| err!(Cuda, "cublasSetStream: {e:?}"))?;
        Ok(Some(Cublas { handle }))
    }

    /// Y[m,n] = X[m,k]·W[k,n] (row-major, no epilogue) in precision `p`.
    /// Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ, hence the swap. BF16
    /// operands must already be bf16 buffers (`x16`, `w16`).
    pub fn gemm(&self, p: Precision, x: u64, w: u64, y: u64, s: GemmShape) -> Result<()> {
        let GemmShape { m, n, k } = s;
        let (alpha, beta) = (1.0f32, 0.0f32);
        let (a_type, compute) = match p {
            Precision::Fp32 => (
                sys::cudaDataType::CUDA_R_32F,
                sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
            ),
            Precision::Tf32 => (
                sys::cudaDataType::CUDA_R_32F,
                sys::cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32,
            ),
            Precision::Bf16 => (
                sys::cudaDataType::CUDA_R_16BF,
                sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
            ),
        };
        let n_ = sys::cublasOperation_t::CUBLAS_OP_N;
        // SAFETY: pointers are device buffers sized for these shapes.
        unsafe {
            blas::gemm_ex(
                self.handle,
                n_,
                n_,
                n as i32,
                m as i32,
                k as i32,
                &alpha as *const f32 as *const c_void,
                w as *const c_void,
                a_type,
                n as i32,
                x as *const c_void,
                a_type,
                k as i32,
                &beta as *const f32 as *const c_void,
                y as *mut c_void,
                sys::cudaDataType::CUDA_R_32F,
                n as i32,
                compute,
                sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        }
        .map_err(|e| err!(Cuda, "cublasGemmEx: {e:?}"))
    }
}

/// bf16 copy of `v` (round to nearest even), for cuBLAS's BF16 operands.
pub fn to_bf16(gpu: &Gpu, v: &[f32]) -> Result<Buffer<Gpu, u16>> {
    let bits: Vec<u16> = v
        .iter()
        .map(|&x| half::bf16::from_f32(x).to_bits())
        .collect();
    Buffer::from_host(gpu, &bits)
}
