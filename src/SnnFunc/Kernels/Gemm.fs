/// Matrix multiplication kernels (temporary naive version; the packed GEMM replaces it).
namespace SnnFunc.Kernels

[<AbstractClass; Sealed>]
type Gemm =
    static member private Naive<'T when 'T :> System.Numerics.INumber<'T>>
        (transA, transB, m, n, k, a: 'T[], aOffset, lda, b: 'T[], bOffset, ldb, c: 'T[], cOffset, ldc, accumulate)
        =
        for i in 0 .. m - 1 do
            for j in 0 .. n - 1 do
                let mutable s = if accumulate then c[cOffset + i * ldc + j] else 'T.Zero

                for p in 0 .. k - 1 do
                    let av = if transA then a[aOffset + p * lda + i] else a[aOffset + i * lda + p]
                    let bv = if transB then b[bOffset + j * ldb + p] else b[bOffset + p * ldb + j]
                    s <- s + av * bv

                c[cOffset + i * ldc + j] <- s

    static member Sgemm
        (
            transA: bool,
            transB: bool,
            m: int,
            n: int,
            k: int,
            a: float32[],
            aOffset: int,
            lda: int,
            b: float32[],
            bOffset: int,
            ldb: int,
            c: float32[],
            cOffset: int,
            ldc: int,
            accumulate: bool,
            ?threads: int
        ) =
        ignore threads
        Gemm.Naive(transA, transB, m, n, k, a, aOffset, lda, b, bOffset, ldb, c, cOffset, ldc, accumulate)

    static member Dgemm
        (
            transA: bool,
            transB: bool,
            m: int,
            n: int,
            k: int,
            a: float[],
            aOffset: int,
            lda: int,
            b: float[],
            bOffset: int,
            ldb: int,
            c: float[],
            cOffset: int,
            ldc: int,
            accumulate: bool,
            ?threads: int
        ) =
        ignore threads
        Gemm.Naive(transA, transB, m, n, k, a, aOffset, lda, b, bOffset, ldb, c, cOffset, ldc, accumulate)
