module SnnFunc.Tests.GemmTests

open System
open Xunit
open SnnFunc.Kernels

// Every product is checked against a naive triple loop in float64.  The error allowed for C[i, j] is
// eps · (2k + 16) · (Σ_p |op(A)[i, p]| · |op(B)[p, j]| + |C0[i, j]|), eps being the element type's epsilon:
// a lost or misplaced term is of order 1/k of that sum, well above the bound.  Elements of c that the product
// must not touch (leading-dimension padding, data before the offset or after the last row) are compared exactly.

type private Dtype =
    | F32
    | F64

type private Case =
    {
        Dtype: Dtype
        TransA: bool
        TransB: bool
        Batch: int
        Batched: bool
        M: int
        N: int
        K: int
        AOff: int
        Lda: int
        StrideA: int
        BOff: int
        Ldb: int
        StrideB: int
        COff: int
        Ldc: int
        StrideC: int
        Accumulate: bool
        Threads: int
        /// Only these rows of each C are compared with the reference (None = all); keeps the big cases fast.
        Rows: int[] option
    }

/// A plain case: packed leading dimensions, no offsets, one product.
let private case dtype transA transB m n k =
    {
        Dtype = dtype
        TransA = transA
        TransB = transB
        Batch = 1
        Batched = false
        M = m
        N = n
        K = k
        AOff = 0
        Lda = (if transA then m else k)
        StrideA = 0
        BOff = 0
        Ldb = (if transB then k else n)
        StrideB = 0
        COff = 0
        Ldc = n
        StrideC = 0
        Accumulate = false
        Threads = 1
        Rows = None
    }

/// The same case with padded leading dimensions and non-zero offsets.
let private padded (c: Case) =
    { c with
        AOff = 7
        Lda = c.Lda + 3
        BOff = 5
        Ldb = c.Ldb + 9
        COff = 11
        Ldc = c.Ldc + 13
    }

/// Elements an operand of rows×cols (row stride ld, batch copies `stride` apart) needs after its offset.
let private extent (batch: int) (stride: int) (rows: int) (cols: int) (ld: int) =
    if rows = 0 || cols = 0 || batch = 0 then
        0
    else
        (batch - 1) * stride + (rows - 1) * ld + cols

let private rng = Random 20240601

let private randomArray (len: int) =
    Array.init len (fun _ -> 2.0 * rng.NextDouble() - 1.0)

/// Runs one case through Gemm (rounding the data to float32 first for F32) and checks it.
let private run (t: Case) =
    let aRows, aCols = if t.TransA then t.K, t.M else t.M, t.K
    let bRows, bCols = if t.TransB then t.N, t.K else t.K, t.N
    let tail = 6 // spare elements after the last one used, which must stay untouched
    let aLen = t.AOff + extent t.Batch t.StrideA aRows aCols t.Lda + tail
    let bLen = t.BOff + extent t.Batch t.StrideB bRows bCols t.Ldb + tail
    let cLen = t.COff + extent t.Batch t.StrideC t.M t.N t.Ldc + tail

    let round (x: float[]) =
        if t.Dtype = F32 then Array.map (float32 >> float) x else x

    let a = randomArray aLen |> round
    let b = randomArray bLen |> round
    let c0 = randomArray cLen |> round

    let c =
        match t.Dtype with
        | F32 ->
            let a32 = Array.map float32 a
            let b32 = Array.map float32 b
            let c32 = Array.map float32 c0

            if t.Batched then
                Gemm.SgemmBatched(
                    t.TransA,
                    t.TransB,
                    t.Batch,
                    t.M,
                    t.N,
                    t.K,
                    a32,
                    t.AOff,
                    t.Lda,
                    t.StrideA,
                    b32,
                    t.BOff,
                    t.Ldb,
                    t.StrideB,
                    c32,
                    t.COff,
                    t.Ldc,
                    t.StrideC,
                    t.Accumulate,
                    t.Threads
                )
            else
                Gemm.Sgemm(
                    t.TransA,
                    t.TransB,
                    t.M,
                    t.N,
                    t.K,
                    a32,
                    t.AOff,
                    t.Lda,
                    b32,
                    t.BOff,
                    t.Ldb,
                    c32,
                    t.COff,
                    t.Ldc,
                    t.Accumulate,
                    t.Threads
                )

            Array.map float c32
        | F64 ->
            let c = Array.copy c0

            if t.Batched then
                Gemm.DgemmBatched(
                    t.TransA,
                    t.TransB,
                    t.Batch,
                    t.M,
                    t.N,
                    t.K,
                    a,
                    t.AOff,
                    t.Lda,
                    t.StrideA,
                    b,
                    t.BOff,
                    t.Ldb,
                    t.StrideB,
                    c,
                    t.COff,
                    t.Ldc,
                    t.StrideC,
                    t.Accumulate,
                    t.Threads
                )
            else
                Gemm.Dgemm(t.TransA, t.TransB, t.M, t.N, t.K, a, t.AOff, t.Lda, b, t.BOff, t.Ldb, c, t.COff, t.Ldc, t.Accumulate, t.Threads)

            c

    let eps =
        if t.Dtype = F32 then
            1.1920929e-7
        else
            2.220446049250313e-16

    let tol = eps * float (2 * t.K + 16)
    let written = Array.zeroCreate<bool> cLen
    let rows = defaultArg t.Rows [| 0 .. t.M - 1 |]

    for item in 0 .. t.Batch - 1 do
        let a0 = t.AOff + item * t.StrideA
        let b0 = t.BOff + item * t.StrideB
        let cItem = t.COff + item * t.StrideC

        let opA i p =
            if t.TransA then
                a[a0 + p * t.Lda + i]
            else
                a[a0 + i * t.Lda + p]

        let opB p j =
            if t.TransB then
                b[b0 + j * t.Ldb + p]
            else
                b[b0 + p * t.Ldb + j]

        for i in 0 .. t.M - 1 do
            for j in 0 .. t.N - 1 do
                written[cItem + i * t.Ldc + j] <- true

        for i in rows do
            for j in 0 .. t.N - 1 do
                let mutable s = 0.0
                let mutable mag = 0.0

                for p in 0 .. t.K - 1 do
                    let x = opA i p * opB p j
                    s <- s + x
                    mag <- mag + abs x

                let idx = cItem + i * t.Ldc + j

                let expected, mag =
                    if t.Accumulate then
                        c0[idx] + s, mag + abs c0[idx]
                    else
                        s, mag

                let err = abs (c[idx] - expected)

                if not (err <= tol * mag + 1e-300) then
                    failwithf
                        "%A\nbatch item %d, C[%d, %d] = %g but expected %g (error %g > allowed %g)"
                        t
                        item
                        i
                        j
                        c[idx]
                        expected
                        err
                        (tol * mag)

    for idx in 0 .. cLen - 1 do
        if not written[idx] && c[idx] <> c0[idx] then
            failwithf "%A\nc[%d] lies outside every C but changed from %g to %g" t idx c0[idx] c[idx]

let private bools = [ false; true ]

[<Fact>]
let ``small and odd square sizes, all transpositions, both dtypes`` () =
    for dtype in [ F32; F64 ] do
        for n in [ 1; 3; 17 ] do
            for tA in bools do
                for tB in bools do
                    for acc in bools do
                        run
                            { case dtype tA tB n n n with
                                Accumulate = acc
                            }

                        run
                            { padded (case dtype tA tB n n n) with
                                Accumulate = acc
                                Threads = 2
                            }

[<Fact>]
let ``255 and 257, all transpositions, both dtypes, 1 and 2 threads`` () =
    for dtype in [ F32; F64 ] do
        for n in [ 255; 257 ] do
            for tA in bools do
                for tB in bools do
                    let threads = if tA = tB then 2 else 1

                    let c =
                        { case dtype tA tB n n n with
                            Threads = threads
                            Accumulate = (n = 257)
                        }

                    run (if tB then padded c else c)

[<Fact>]
let ``1031 cubed, float32 and float64, 2 threads (sampled rows)`` () =
    let rows = [| 0; 1; 11; 12; 13; 239; 240; 511; 512; 1019; 1020; 1029; 1030 |]

    run
        { padded (case F32 false false 1031 1031 1031) with
            Threads = 2
            Rows = Some rows
        }

    run
        { case F64 true true 1031 1031 1031 with
            Threads = 2
            Accumulate = true
            Rows = Some rows
        }

[<Fact>]
let ``non-square shapes`` () =
    let shapes =
        [
            5, 1031, 17
            257, 3, 255
            1, 1031, 300
            1031, 1, 70
            100, 37, 700
            13, 33, 1
            64, 64, 513
        ]

    for dtype in [ F32; F64 ] do
        for (m, n, k) in shapes do
            for tA in bools do
                for tB in bools do
                    let threads = if tA then 2 else 1

                    let c =
                        { case dtype tA tB m n k with
                            Threads = threads
                            Accumulate = tB
                        }

                    run (if tA = tB then padded c else c)

[<Fact>]
let ``two threads splitting rows or columns, with ragged edges`` () =
    // large enough to be split: m > n splits rows, otherwise columns
    for dtype in [ F32; F64 ] do
        for (m, n, k) in [ 700, 41, 300; 41, 700, 300; 333, 333, 100 ] do
            for tA in bools do
                for tB in bools do
                    let c =
                        { case dtype tA tB m n k with
                            Threads = 2
                            Accumulate = (tA <> tB)
                        }

                    run (if tA then padded c else c)

[<Fact>]
let ``more threads than work, and the default thread count`` () =
    run
        { case F32 false false 30 40 50 with
            Threads = 64
        }

    run
        { case F32 false false 200 200 200 with
            Threads = 0
        }

    run
        { case F64 true false 200 300 100 with
            Threads = -1
        }

[<Fact>]
let ``k = 0 clears C, or leaves it unchanged when accumulating`` () =
    for dtype in [ F32; F64 ] do
        for acc in bools do
            run
                { padded (case dtype false false 7 9 0) with
                    Accumulate = acc
                }

            run
                { case dtype true true 40 3 0 with
                    Accumulate = acc
                    Threads = 2
                }

    let c = Array.create 12 5.0f
    Gemm.Sgemm(false, false, 3, 4, 0, [||], 0, 0, [||], 0, 4, c, 0, 4, false)
    Assert.True(Array.forall ((=) 0.0f) c)
    let d = Array.create 12 5.0
    Gemm.Dgemm(true, true, 3, 4, 0, [||], 0, 3, [||], 0, 0, d, 0, 4, true)
    Assert.True(Array.forall ((=) 5.0) d)

[<Fact>]
let ``m = 0 or n = 0 does nothing`` () =
    for dtype in [ F32; F64 ] do
        run (case dtype false false 0 5 7)
        run (case dtype true true 5 0 7)

        run
            { case dtype false false 0 0 0 with
                Batched = true
                Batch = 3
            }

    Gemm.Sgemm(false, false, 0, 0, 0, [||], 0, 0, [||], 0, 0, [||], 0, 0, false)
    Gemm.DgemmBatched(false, false, 0, 4, 4, 4, [||], 0, 4, 16, [||], 0, 4, 16, [||], 0, 4, 16, false)

[<Fact>]
let ``batched: general strides, broadcast A, broadcast B (folded and not), 1 and 2 threads`` () =
    for dtype in [ F32; F64 ] do
        for threads in [ 1; 2 ] do
            for tA in bools do
                for tB in bools do
                    let m, n, k, batch = 19, 35, 23, 5

                    let c =
                        { case dtype tA tB m n k with
                            Batched = true
                            Batch = batch
                            Threads = threads
                        }

                    let aSize = (if tA then k * m else m * k) + 3
                    let bSize = (if tB then n * k else k * n) + 2
                    // independent products, gaps between the items
                    run
                        { c with
                            StrideA = aSize
                            StrideB = bSize
                            StrideC = m * n + 4
                            Accumulate = tA
                        }
                    // one A for every item
                    run
                        { padded c with
                            StrideA = 0
                            StrideB = bSize + 9 * k
                            StrideC = (m * (n + 13)) + 1
                        }
                    // one B for every item, A and C contiguous (folds into one tall GEMM when not transA)
                    run
                        { c with
                            StrideA = m * k
                            StrideB = 0
                            StrideC = m * n
                            Accumulate = tB
                        }
                    // one B, with padded leading dimensions that still fold
                    let p = padded c

                    run
                        { p with
                            StrideA = m * p.Lda
                            StrideB = 0
                            StrideC = m * p.Ldc
                        }

    // a batch of larger products (each one multi-threaded) and one of many tiny ones
    run
        { case F32 false true 150 140 130 with
            Batched = true
            Batch = 3
            StrideA = 150 * 130
            StrideB = 0
            StrideC = 150 * 140
            Threads = 2
        }

    run
        { case F64 true false 4 5 6 with
            Batched = true
            Batch = 40
            StrideA = 24
            StrideB = 30
            StrideC = 20
            Threads = 2
        }

// ---------------------------------------------------------------------------------------------------------------
// Invalid arguments
// ---------------------------------------------------------------------------------------------------------------

/// Asserts that f raises an ArgumentException whose message contains every fragment.
let private throws (fragments: string list) (f: unit -> unit) =
    let ex = Assert.ThrowsAny<ArgumentException>(Action f)

    for s in fragments do
        Assert.Contains(s, ex.Message)

[<Fact>]
let ``invalid sizes and leading dimensions are rejected with a clear message`` () =
    let a = Array.zeroCreate<float32> 100
    let b = Array.zeroCreate<float32> 100
    let c = Array.zeroCreate<float32> 100

    let s m n k lda ldb ldc tA tB () =
        Gemm.Sgemm(tA, tB, m, n, k, a, 0, lda, b, 0, ldb, c, 0, ldc, false)

    throws [ "Gemm.Sgemm"; "m = -1" ] (s -1 2 2 2 2 2 false false)
    throws [ "Gemm.Sgemm"; "n = -2" ] (s 2 -2 2 2 2 2 false false)
    throws [ "Gemm.Sgemm"; "k = -3" ] (s 2 2 -3 2 2 2 false false)
    throws [ "Gemm.Sgemm"; "lda = 3"; "k = 5"; "not transposed" ] (s 2 2 5 3 2 2 false false)
    throws [ "Gemm.Sgemm"; "lda = 1"; "m = 2"; "transposed" ] (s 2 2 5 1 2 2 true false)
    throws [ "Gemm.Sgemm"; "ldb = 1"; "n = 2" ] (s 2 2 2 2 1 2 false false)
    throws [ "Gemm.Sgemm"; "ldb = 1"; "k = 2"; "transposed" ] (s 2 2 2 2 1 2 false true)
    throws [ "Gemm.Sgemm"; "ldc = 1"; "n = 2" ] (s 2 2 2 2 2 1 false false)

    let da = Array.zeroCreate<float> 100

    let d () =
        Gemm.Dgemm(false, false, 4, 4, 4, da, 0, 3, da, 0, 4, da, 0, 4, true)

    throws [ "Gemm.Dgemm"; "lda = 3" ] d

[<Fact>]
let ``arrays too short, bad offsets and null arrays are rejected`` () =
    let a = Array.zeroCreate<float32> 20 // 4×5
    let b = Array.zeroCreate<float32> 30 // 5×6
    let c = Array.zeroCreate<float32> 24 // 4×6

    let call (a: float32[]) aOff (b: float32[]) bOff (c: float32[]) cOff () =
        Gemm.Sgemm(false, false, 4, 6, 5, a, aOff, 5, b, bOff, 6, c, cOff, 6, false)

    call a 0 b 0 c 0 () // fits exactly
    throws [ "Gemm.Sgemm"; "array a"; "length 19" ] (call a[..18] 0 b 0 c 0)
    throws [ "Gemm.Sgemm"; "aOffset = 1" ] (call a 1 b 0 c 0)
    throws [ "Gemm.Sgemm"; "array b"; "bOffset = 2" ] (call a 0 b 2 c 0)
    throws [ "Gemm.Sgemm"; "array c"; "length 23" ] (call a 0 b 0 c[..22] 0)
    throws [ "Gemm.Sgemm"; "aOffset = -1" ] (call a -1 b 0 c 0)
    throws [ "Gemm.Sgemm"; "cOffset = -4" ] (call a 0 b 0 c -4)
    throws [ "Gemm.Sgemm"; "array a" ] (call null 0 b 0 c 0)
    throws [ "Gemm.Sgemm"; "array b" ] (call a 0 null 0 c 0)
    throws [ "Gemm.Sgemm"; "array c" ] (call a 0 b 0 null 0)
    // nothing is read, but an offset past the end is still a bug
    throws [ "Gemm.Sgemm"; "bOffset = 31" ] (fun () -> Gemm.Sgemm(false, false, 4, 6, 0, a, 0, 0, b, 31, 6, c, 0, 6, false))
    // transposed A is k×m: 5×4 needs lda >= 4 and 20 elements
    throws [ "Gemm.Dgemm"; "array a"; "length 19" ] (fun () ->
        Gemm.Dgemm(true, false, 4, 6, 5, Array.zeroCreate 19, 0, 4, Array.zeroCreate 30, 0, 6, Array.zeroCreate 24, 0, 6, false))

[<Fact>]
let ``batched argument errors name the batched operation`` () =
    let a = Array.zeroCreate<float32> 40
    let b = Array.zeroCreate<float32> 40
    let c = Array.zeroCreate<float32> 40

    let sb batch sA sB sC () =
        Gemm.SgemmBatched(false, false, batch, 2, 2, 2, a, 0, 2, sA, b, 0, 2, sB, c, 0, 2, sC, false)

    sb 10 4 4 4 () // fits exactly
    throws [ "Gemm.SgemmBatched"; "batch = -1" ] (sb -1 4 4 4)
    throws [ "Gemm.SgemmBatched"; "strideA = -4" ] (sb 2 -4 4 4)
    throws [ "Gemm.SgemmBatched"; "strideB = -1" ] (sb 2 4 -1 4)
    throws [ "Gemm.SgemmBatched"; "strideC = -2" ] (sb 2 4 4 -2)
    throws [ "Gemm.SgemmBatched"; "array a"; "batch = 11" ] (sb 11 4 0 0)
    throws [ "Gemm.SgemmBatched"; "array c"; "strideC = 5" ] (sb 10 0 0 5)
    let d = Array.zeroCreate<float> 8

    throws [ "Gemm.DgemmBatched"; "ldc = 1" ] (fun () ->
        Gemm.DgemmBatched(false, false, 2, 2, 2, 2, d, 0, 2, 0, d, 0, 2, 0, d, 0, 1, 4, false))

[<Fact>]
let ``many consecutive and concurrent multi-threaded calls`` () =
    // back-to-back calls exercise the worker hand-over; concurrent callers exercise the fallback path
    let n = 128
    let a = Array.init (n * n) (fun i -> float32 (i % 7) - 3.0f)
    let b = Array.init (n * n) (fun i -> float32 (i % 5) - 2.0f)
    let expected = Array.zeroCreate<float32> (n * n)
    Gemm.Sgemm(false, false, n, n, n, a, 0, n, b, 0, n, expected, 0, n, false, 1)

    for _ in 1..300 do
        let c = Array.zeroCreate<float32> (n * n)
        Gemm.Sgemm(false, false, n, n, n, a, 0, n, b, 0, n, c, 0, n, false, 2)
        Assert.Equal<float32[]>(expected, c)

    System.Threading.Tasks.Parallel.For(
        0,
        8,
        fun _ ->
            for _ in 1..30 do
                let c = Array.zeroCreate<float32> (n * n)
                Gemm.Sgemm(false, false, n, n, n, a, 0, n, b, 0, n, c, 0, n, false, 2)
                Assert.Equal<float32[]>(expected, c)
    )
    |> ignore
