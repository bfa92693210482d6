/// Matrix multiplication kernels (placeholder; replaced by the packed GEMM).
namespace SnnFunc.Kernels
