/// Channels-in-lanes tiles of stride-1 convolutions (float32, AVX-512 and AVX2): the output channels fill
/// the vector lanes, 14 output positions per tile, whatever the output width.
namespace SnnFunc.Kernels

open System
open System.Numerics
open System.Runtime.CompilerServices
open System.Threading
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open Microsoft.FSharp.NativeInterop

/// tileP512 (32 channels), tileP512x1 (16), tileP256 (8, AVX2) and the panel over a sample's row chunks.
module internal ConvChannelTiles =

    /// Positions of one tileP512: a row chunk of the output.
    let tilePositions = 14

    /// 14 positions × 32 output channels (two zmm per position), for stride-1 convolutions with
    /// 32k output channels per group: every lane does useful work, whatever the output width. A
    /// packed [rows; kw; cin; 32] (a step's 32 weights, two loads), one broadcast per position of
    /// the shifted input row at b + boffs[step] (positions consecutive). The steps run in segments
    /// of cin (one kernel offset j of one kernel row), each with the position range patterns[j]
    /// (see rangeCode): the positions whose input at that offset is padding are skipped. The sums
    /// start at init (+ r · initStride for position r: the bias with stride 0, or c for later
    /// slices of the kernel rows) and go to c + 32 r ([position; 32] scratch, transposed into the
    /// output later).
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileP512
        (rows: int)
        (kw: int)
        (cin: int)
        (patterns: nativeptr<int>)
        (a: nativeptr<float32>)
        (b: nativeptr<float32>)
        (boffs: nativeptr<int>)
        (init: nativeptr<float32>)
        (initStride: int)
        (c: nativeptr<float32>)
        =
        let mutable s0a = Vector512.Load(NativePtr.add init (0 * initStride))
        let mutable s0b = Vector512.Load(NativePtr.add init (0 * initStride + 16))
        let mutable s1a = Vector512.Load(NativePtr.add init (1 * initStride))
        let mutable s1b = Vector512.Load(NativePtr.add init (1 * initStride + 16))
        let mutable s2a = Vector512.Load(NativePtr.add init (2 * initStride))
        let mutable s2b = Vector512.Load(NativePtr.add init (2 * initStride + 16))
        let mutable s3a = Vector512.Load(NativePtr.add init (3 * initStride))
        let mutable s3b = Vector512.Load(NativePtr.add init (3 * initStride + 16))
        let mutable s4a = Vector512.Load(NativePtr.add init (4 * initStride))
        let mutable s4b = Vector512.Load(NativePtr.add init (4 * initStride + 16))
        let mutable s5a = Vector512.Load(NativePtr.add init (5 * initStride))
        let mutable s5b = Vector512.Load(NativePtr.add init (5 * initStride + 16))
        let mutable s6a = Vector512.Load(NativePtr.add init (6 * initStride))
        let mutable s6b = Vector512.Load(NativePtr.add init (6 * initStride + 16))
        let mutable s7a = Vector512.Load(NativePtr.add init (7 * initStride))
        let mutable s7b = Vector512.Load(NativePtr.add init (7 * initStride + 16))
        let mutable s8a = Vector512.Load(NativePtr.add init (8 * initStride))
        let mutable s8b = Vector512.Load(NativePtr.add init (8 * initStride + 16))
        let mutable s9a = Vector512.Load(NativePtr.add init (9 * initStride))
        let mutable s9b = Vector512.Load(NativePtr.add init (9 * initStride + 16))
        let mutable s10a = Vector512.Load(NativePtr.add init (10 * initStride))
        let mutable s10b = Vector512.Load(NativePtr.add init (10 * initStride + 16))
        let mutable s11a = Vector512.Load(NativePtr.add init (11 * initStride))
        let mutable s11b = Vector512.Load(NativePtr.add init (11 * initStride + 16))
        let mutable s12a = Vector512.Load(NativePtr.add init (12 * initStride))
        let mutable s12b = Vector512.Load(NativePtr.add init (12 * initStride + 16))
        let mutable s13a = Vector512.Load(NativePtr.add init (13 * initStride))
        let mutable s13b = Vector512.Load(NativePtr.add init (13 * initStride + 16))
        let mutable pa = a
        let mutable po = boffs

        for _ in 1..rows do
            for j in 0 .. kw - 1 do
                match NativePtr.get patterns j with
                | 1 ->
                    for _ in 1..cin do
                        let pb = NativePtr.add b (NativePtr.read po)
                        let w0 = Vector512.Load pa
                        let w1 = Vector512.Load(NativePtr.add pa 16)
                        let x = Vector512.Create(NativePtr.get pb 1)
                        s1a <- Avx512F.FusedMultiplyAdd(x, w0, s1a)
                        s1b <- Avx512F.FusedMultiplyAdd(x, w1, s1b)
                        let x = Vector512.Create(NativePtr.get pb 2)
                        s2a <- Avx512F.FusedMultiplyAdd(x, w0, s2a)
                        s2b <- Avx512F.FusedMultiplyAdd(x, w1, s2b)
                        let x = Vector512.Create(NativePtr.get pb 3)
                        s3a <- Avx512F.FusedMultiplyAdd(x, w0, s3a)
                        s3b <- Avx512F.FusedMultiplyAdd(x, w1, s3b)
                        let x = Vector512.Create(NativePtr.get pb 4)
                        s4a <- Avx512F.FusedMultiplyAdd(x, w0, s4a)
                        s4b <- Avx512F.FusedMultiplyAdd(x, w1, s4b)
                        let x = Vector512.Create(NativePtr.get pb 5)
                        s5a <- Avx512F.FusedMultiplyAdd(x, w0, s5a)
                        s5b <- Avx512F.FusedMultiplyAdd(x, w1, s5b)
                        let x = Vector512.Create(NativePtr.get pb 6)
                        s6a <- Avx512F.FusedMultiplyAdd(x, w0, s6a)
                        s6b <- Avx512F.FusedMultiplyAdd(x, w1, s6b)
                        let x = Vector512.Create(NativePtr.get pb 7)
                        s7a <- Avx512F.FusedMultiplyAdd(x, w0, s7a)
                        s7b <- Avx512F.FusedMultiplyAdd(x, w1, s7b)
                        let x = Vector512.Create(NativePtr.get pb 8)
                        s8a <- Avx512F.FusedMultiplyAdd(x, w0, s8a)
                        s8b <- Avx512F.FusedMultiplyAdd(x, w1, s8b)
                        let x = Vector512.Create(NativePtr.get pb 9)
                        s9a <- Avx512F.FusedMultiplyAdd(x, w0, s9a)
                        s9b <- Avx512F.FusedMultiplyAdd(x, w1, s9b)
                        let x = Vector512.Create(NativePtr.get pb 10)
                        s10a <- Avx512F.FusedMultiplyAdd(x, w0, s10a)
                        s10b <- Avx512F.FusedMultiplyAdd(x, w1, s10b)
                        let x = Vector512.Create(NativePtr.get pb 11)
                        s11a <- Avx512F.FusedMultiplyAdd(x, w0, s11a)
                        s11b <- Avx512F.FusedMultiplyAdd(x, w1, s11b)
                        let x = Vector512.Create(NativePtr.get pb 12)
                        s12a <- Avx512F.FusedMultiplyAdd(x, w0, s12a)
                        s12b <- Avx512F.FusedMultiplyAdd(x, w1, s12b)
                        let x = Vector512.Create(NativePtr.get pb 13)
                        s13a <- Avx512F.FusedMultiplyAdd(x, w0, s13a)
                        s13b <- Avx512F.FusedMultiplyAdd(x, w1, s13b)
                        pa <- NativePtr.add pa 32
                        po <- NativePtr.add po 1

                | 2 ->
                    for _ in 1..cin do
                        let pb = NativePtr.add b (NativePtr.read po)
                        let w0 = Vector512.Load pa
                        let w1 = Vector512.Load(NativePtr.add pa 16)
                        let x = Vector512.Create(NativePtr.get pb 2)
                        s2a <- Avx512F.FusedMultiplyAdd(x, w0, s2a)
                        s2b <- Avx512F.FusedMultiplyAdd(x, w1, s2b)
                        let x = Vector512.Create(NativePtr.get pb 3)
                        s3a <- Avx512F.FusedMultiplyAdd(x, w0, s3a)
                        s3b <- Avx512F.FusedMultiplyAdd(x, w1, s3b)
                        let x = Vector512.Create(NativePtr.get pb 4)
                        s4a <- Avx512F.FusedMultiplyAdd(x, w0, s4a)
                        s4b <- Avx512F.FusedMultiplyAdd(x, w1, s4b)
                        let x = Vector512.Create(NativePtr.get pb 5)
                        s5a <- Avx512F.FusedMultiplyAdd(x, w0, s5a)
                        s5b <- Avx512F.FusedMultiplyAdd(x, w1, s5b)
                        let x = Vector512.Create(NativePtr.get pb 6)
                        s6a <- Avx512F.FusedMultiplyAdd(x, w0, s6a)
                        s6b <- Avx512F.FusedMultiplyAdd(x, w1, s6b)
                        let x = Vector512.Create(NativePtr.get pb 7)
                        s7a <- Avx512F.FusedMultiplyAdd(x, w0, s7a)
                        s7b <- Avx512F.FusedMultiplyAdd(x, w1, s7b)
                        let x = Vector512.Create(NativePtr.get pb 8)
                        s8a <- Avx512F.FusedMultiplyAdd(x, w0, s8a)
                        s8b <- Avx512F.FusedMultiplyAdd(x, w1, s8b)
                        let x = Vector512.Create(NativePtr.get pb 9)
                        s9a <- Avx512F.FusedMultiplyAdd(x, w0, s9a)
                        s9b <- Avx512F.FusedMultiplyAdd(x, w1, s9b)
                        let x = Vector512.Create(NativePtr.get pb 10)
                        s10a <- Avx512F.FusedMultiplyAdd(x, w0, s10a)
                        s10b <- Avx512F.FusedMultiplyAdd(x, w1, s10b)
                        let x = Vector512.Create(NativePtr.get pb 11)
                        s11a <- Avx512F.FusedMultiplyAdd(x, w0, s11a)
                        s11b <- Avx512F.FusedMultiplyAdd(x, w1, s11b)
                        let x = Vector512.Create(NativePtr.get pb 12)
                        s12a <- Avx512F.FusedMultiplyAdd(x, w0, s12a)
                        s12b <- Avx512F.FusedMultiplyAdd(x, w1, s12b)
                        let x = Vector512.Create(NativePtr.get pb 13)
                        s13a <- Avx512F.FusedMultiplyAdd(x, w0, s13a)
                        s13b <- Avx512F.FusedMultiplyAdd(x, w1, s13b)
                        pa <- NativePtr.add pa 32
                        po <- NativePtr.add po 1

                | 3 ->
                    for _ in 1..cin do
                        let pb = NativePtr.add b (NativePtr.read po)
                        let w0 = Vector512.Load pa
                        let w1 = Vector512.Load(NativePtr.add pa 16)
                        let x = Vector512.Create(NativePtr.get pb 0)
                        s0a <- Avx512F.FusedMultiplyAdd(x, w0, s0a)
                        s0b <- Avx512F.FusedMultiplyAdd(x, w1, s0b)
                        let x = Vector512.Create(NativePtr.get pb 1)
                        s1a <- Avx512F.FusedMultiplyAdd(x, w0, s1a)
                        s1b <- Avx512F.FusedMultiplyAdd(x, w1, s1b)
                        let x = Vector512.Create(NativePtr.get pb 2)
                        s2a <- Avx512F.FusedMultiplyAdd(x, w0, s2a)
                        s2b <- Avx512F.FusedMultiplyAdd(x, w1, s2b)
                        let x = Vector512.Create(NativePtr.get pb 3)
                        s3a <- Avx512F.FusedMultiplyAdd(x, w0, s3a)
                        s3b <- Avx512F.FusedMultiplyAdd(x, w1, s3b)
                        let x = Vector512.Create(NativePtr.get pb 4)
                        s4a <- Avx512F.FusedMultiplyAdd(x, w0, s4a)
                        s4b <- Avx512F.FusedMultiplyAdd(x, w1, s4b)
                        let x = Vector512.Create(NativePtr.get pb 5)
                        s5a <- Avx512F.FusedMultiplyAdd(x, w0, s5a)
                        s5b <- Avx512F.FusedMultiplyAdd(x, w1, s5b)
                        let x = Vector512.Create(NativePtr.get pb 6)
                        s6a <- Avx512F.FusedMultiplyAdd(x, w0, s6a)
                        s6b <- Avx512F.FusedMultiplyAdd(x, w1, s6b)
                        let x = Vector512.Create(NativePtr.get pb 7)
                        s7a <- Avx512F.FusedMultiplyAdd(x, w0, s7a)
                        s7b <- Avx512F.FusedMultiplyAdd(x, w1, s7b)
                        let x = Vector512.Create(NativePtr.get pb 8)
                        s8a <- Avx512F.FusedMultiplyAdd(x, w0, s8a)
                        s8b <- Avx512F.FusedMultiplyAdd(x, w1, s8b)
                        let x = Vector512.Create(NativePtr.get pb 9)
                        s9a <- Avx512F.FusedMultiplyAdd(x, w0, s9a)
                        s9b <- Avx512F.FusedMultiplyAdd(x, w1, s9b)
                        let x = Vector512.Create(NativePtr.get pb 10)
                        s10a <- Avx512F.FusedMultiplyAdd(x, w0, s10a)
                        s10b <- Avx512F.FusedMultiplyAdd(x, w1, s10b)
                        let x = Vector512.Create(NativePtr.get pb 11)
                        s11a <- Avx512F.FusedMultiplyAdd(x, w0, s11a)
                        s11b <- Avx512F.FusedMultiplyAdd(x, w1, s11b)
                        let x = Vector512.Create(NativePtr.get pb 12)
                        s12a <- Avx512F.FusedMultiplyAdd(x, w0, s12a)
                        s12b <- Avx512F.FusedMultiplyAdd(x, w1, s12b)
                        pa <- NativePtr.add pa 32
                        po <- NativePtr.add po 1

                | 4 ->
                    for _ in 1..cin do
                        let pb = NativePtr.add b (NativePtr.read po)
                        let w0 = Vector512.Load pa
                        let w1 = Vector512.Load(NativePtr.add pa 16)
                        let x = Vector512.Create(NativePtr.get pb 0)
                        s0a <- Avx512F.FusedMultiplyAdd(x, w0, s0a)
                        s0b <- Avx512F.FusedMultiplyAdd(x, w1, s0b)
                        let x = Vector512.Create(NativePtr.get pb 1)
                        s1a <- Avx512F.FusedMultiplyAdd(x, w0, s1a)
                        s1b <- Avx512F.FusedMultiplyAdd(x, w1, s1b)
                        let x = Vector512.Create(NativePtr.get pb 2)
                        s2a <- Avx512F.FusedMultiplyAdd(x, w0, s2a)
                        s2b <- Avx512F.FusedMultiplyAdd(x, w1, s2b)
                        let x = Vector512.Create(NativePtr.get pb 3)
                        s3a <- Avx512F.FusedMultiplyAdd(x, w0, s3a)
                        s3b <- Avx512F.FusedMultiplyAdd(x, w1, s3b)
                        let x = Vector512.Create(NativePtr.get pb 4)
                        s4a <- Avx512F.FusedMultiplyAdd(x, w0, s4a)
                        s4b <- Avx512F.FusedMultiplyAdd(x, w1, s4b)
                        let x = Vector512.Create(NativePtr.get pb 5)
                        s5a <- Avx512F.FusedMultiplyAdd(x, w0, s5a)
                        s5b <- Avx512F.FusedMultiplyAdd(x, w1, s5b)
                        let x = Vector512.Create(NativePtr.get pb 6)
                        s6a <- Avx512F.FusedMultiplyAdd(x, w0, s6a)
                        s6b <- Avx512F.FusedMultiplyAdd(x, w1, s6b)
                        let x = Vector512.Create(NativePtr.get pb 7)
                        s7a <- Avx512F.FusedMultiplyAdd(x, w0, s7a)
                        s7b <- Avx512F.FusedMultiplyAdd(x, w1, s7b)
                        let x = Vector512.Create(NativePtr.get pb 8)
                        s8a <- Avx512F.FusedMultiplyAdd(x, w0, s8a)
                        s8b <- Avx512F.FusedMultiplyAdd(x, w1, s8b)
                        let x = Vector512.Create(NativePtr.get pb 9)
                        s9a <- Avx512F.FusedMultiplyAdd(x, w0, s9a)
                        s9b <- Avx512F.FusedMultiplyAdd(x, w1, s9b)
                        let x = Vector512.Create(NativePtr.get pb 10)
                        s10a <- Avx512F.FusedMultiplyAdd(x, w0, s10a)
                        s10b <- Avx512F.FusedMultiplyAdd(x, w1, s10b)
                        let x = Vector512.Create(NativePtr.get pb 11)
                        s11a <- Avx512F.FusedMultiplyAdd(x, w0, s11a)
                        s11b <- Avx512F.FusedMultiplyAdd(x, w1, s11b)
                        pa <- NativePtr.add pa 32
                        po <- NativePtr.add po 1

                | _ ->
                    for _ in 1..cin do
                        let pb = NativePtr.add b (NativePtr.read po)
                        let w0 = Vector512.Load pa
                        let w1 = Vector512.Load(NativePtr.add pa 16)
                        let x = Vector512.Create(NativePtr.get pb 0)
                        s0a <- Avx512F.FusedMultiplyAdd(x, w0, s0a)
                        s0b <- Avx512F.FusedMultiplyAdd(x, w1, s0b)
                        let x = Vector512.Create(NativePtr.get pb 1)
                        s1a <- Avx512F.FusedMultiplyAdd(x, w0, s1a)
                        s1b <- Avx512F.FusedMultiplyAdd(x, w1, s1b)
                        let x = Vector512.Create(NativePtr.get pb 2)
                        s2a <- Avx512F.FusedMultiplyAdd(x, w0, s2a)
                        s2b <- Avx512F.FusedMultiplyAdd(x, w1, s2b)
                        let x = Vector512.Create(NativePtr.get pb 3)
                        s3a <- Avx512F.FusedMultiplyAdd(x, w0, s3a)
                        s3b <- Avx512F.FusedMultiplyAdd(x, w1, s3b)
                        let x = Vector512.Create(NativePtr.get pb 4)
                        s4a <- Avx512F.FusedMultiplyAdd(x, w0, s4a)
                        s4b <- Avx512F.FusedMultiplyAdd(x, w1, s4b)
                        let x = Vector512.Create(NativePtr.get pb 5)
                        s5a <- Avx512F.FusedMultiplyAdd(x, w0, s5a)
                        s5b <- Avx512F.FusedMultiplyAdd(x, w1, s5b)
                        let x = Vector512.Create(NativePtr.get pb 6)
                        s6a <- Avx512F.FusedMultiplyAdd(x, w0, s6a)
                        s6b <- Avx512F.FusedMultiplyAdd(x, w1, s6b)
                        let x = Vector512.Create(NativePtr.get pb 7)
                        s7a <- Avx512F.FusedMultiplyAdd(x, w0, s7a)
                        s7b <- Avx512F.FusedMultiplyAdd(x, w1, s7b)
                        let x = Vector512.Create(NativePtr.get pb 8)
                        s8a <- Avx512F.FusedMultiplyAdd(x, w0, s8a)
                        s8b <- Avx512F.FusedMultiplyAdd(x, w1, s8b)
                        let x = Vector512.Create(NativePtr.get pb 9)
                        s9a <- Avx512F.FusedMultiplyAdd(x, w0, s9a)
                        s9b <- Avx512F.FusedMultiplyAdd(x, w1, s9b)
                        let x = Vector512.Create(NativePtr.get pb 10)
                        s10a <- Avx512F.FusedMultiplyAdd(x, w0, s10a)
                        s10b <- Avx512F.FusedMultiplyAdd(x, w1, s10b)
                        let x = Vector512.Create(NativePtr.get pb 11)
                        s11a <- Avx512F.FusedMultiplyAdd(x, w0, s11a)
                        s11b <- Avx512F.FusedMultiplyAdd(x, w1, s11b)
                        let x = Vector512.Create(NativePtr.get pb 12)
                        s12a <- Avx512F.FusedMultiplyAdd(x, w0, s12a)
                        s12b <- Avx512F.FusedMultiplyAdd(x, w1, s12b)
                        let x = Vector512.Create(NativePtr.get pb 13)
                        s13a <- Avx512F.FusedMultiplyAdd(x, w0, s13a)
                        s13b <- Avx512F.FusedMultiplyAdd(x, w1, s13b)
                        pa <- NativePtr.add pa 32
                        po <- NativePtr.add po 1

        Vector512.Store(s0a, NativePtr.add c (0 * 32))
        Vector512.Store(s0b, NativePtr.add c (0 * 32 + 16))
        Vector512.Store(s1a, NativePtr.add c (1 * 32))
        Vector512.Store(s1b, NativePtr.add c (1 * 32 + 16))
        Vector512.Store(s2a, NativePtr.add c (2 * 32))
        Vector512.Store(s2b, NativePtr.add c (2 * 32 + 16))
        Vector512.Store(s3a, NativePtr.add c (3 * 32))
        Vector512.Store(s3b, NativePtr.add c (3 * 32 + 16))
        Vector512.Store(s4a, NativePtr.add c (4 * 32))
        Vector512.Store(s4b, NativePtr.add c (4 * 32 + 16))
        Vector512.Store(s5a, NativePtr.add c (5 * 32))
        Vector512.Store(s5b, NativePtr.add c (5 * 32 + 16))
        Vector512.Store(s6a, NativePtr.add c (6 * 32))
        Vector512.Store(s6b, NativePtr.add c (6 * 32 + 16))
        Vector512.Store(s7a, NativePtr.add c (7 * 32))
        Vector512.Store(s7b, NativePtr.add c (7 * 32 + 16))
        Vector512.Store(s8a, NativePtr.add c (8 * 32))
        Vector512.Store(s8b, NativePtr.add c (8 * 32 + 16))
        Vector512.Store(s9a, NativePtr.add c (9 * 32))
        Vector512.Store(s9b, NativePtr.add c (9 * 32 + 16))
        Vector512.Store(s10a, NativePtr.add c (10 * 32))
        Vector512.Store(s10b, NativePtr.add c (10 * 32 + 16))
        Vector512.Store(s11a, NativePtr.add c (11 * 32))
        Vector512.Store(s11b, NativePtr.add c (11 * 32 + 16))
        Vector512.Store(s12a, NativePtr.add c (12 * 32))
        Vector512.Store(s12b, NativePtr.add c (12 * 32 + 16))
        Vector512.Store(s13a, NativePtr.add c (13 * 32))
        Vector512.Store(s13b, NativePtr.add c (13 * 32 + 16))

    /// One vector of output channels (`lanes` of them) per position, 14 positions: 14 sums, one
    /// weight load and up to 14 broadcasts per step (`step pb k w s` adds pb[k] · w to s); a packed
    /// [rows; kw; cin; lanes], c holds [position; lanes]. tileP512 without the second vector, for
    /// 16 channels on AVX-512 and 8 on AVX2 (15 of the 16 ymm registers: the widest tile that
    /// keeps both FMA units of an AVX2 core busy with one weight and one broadcast register).
    let inline private tileP14
        ([<InlineIfLambda>] load: nativeptr<float32> -> 'V)
        ([<InlineIfLambda>] store: 'V -> nativeptr<float32> -> unit)
        ([<InlineIfLambda>] step: nativeptr<float32> -> int -> 'V -> 'V -> 'V)
        (lanes: int)
        (rows: int)
        (kw: int)
        (cin: int)
        (patterns: nativeptr<int>)
        (a: nativeptr<float32>)
        (b: nativeptr<float32>)
        (boffs: nativeptr<int>)
        (init: nativeptr<float32>)
        (initStride: int)
        (c: nativeptr<float32>)
        =
        let mutable s0 = load (NativePtr.add init (0 * initStride))
        let mutable s1 = load (NativePtr.add init (1 * initStride))
        let mutable s2 = load (NativePtr.add init (2 * initStride))
        let mutable s3 = load (NativePtr.add init (3 * initStride))
        let mutable s4 = load (NativePtr.add init (4 * initStride))
        let mutable s5 = load (NativePtr.add init (5 * initStride))
        let mutable s6 = load (NativePtr.add init (6 * initStride))
        let mutable s7 = load (NativePtr.add init (7 * initStride))
        let mutable s8 = load (NativePtr.add init (8 * initStride))
        let mutable s9 = load (NativePtr.add init (9 * initStride))
        let mutable s10 = load (NativePtr.add init (10 * initStride))
        let mutable s11 = load (NativePtr.add init (11 * initStride))
        let mutable s12 = load (NativePtr.add init (12 * initStride))
        let mutable s13 = load (NativePtr.add init (13 * initStride))
        let mutable pa = a
        let mutable po = boffs

        for _ in 1..rows do
            for j in 0 .. kw - 1 do
                match NativePtr.get patterns j with
                | 1 ->
                    for _ in 1..cin do
                        let pb = NativePtr.add b (NativePtr.read po)
                        let w0 = load pa
                        s1 <- step pb 1 w0 s1
                        s2 <- step pb 2 w0 s2
                        s3 <- step pb 3 w0 s3
                        s4 <- step pb 4 w0 s4
                        s5 <- step pb 5 w0 s5
                        s6 <- step pb 6 w0 s6
                        s7 <- step pb 7 w0 s7
                        s8 <- step pb 8 w0 s8
                        s9 <- step pb 9 w0 s9
                        s10 <- step pb 10 w0 s10
                        s11 <- step pb 11 w0 s11
                        s12 <- step pb 12 w0 s12
                        s13 <- step pb 13 w0 s13
                        pa <- NativePtr.add pa lanes
                        po <- NativePtr.add po 1

                | 2 ->
                    for _ in 1..cin do
                        let pb = NativePtr.add b (NativePtr.read po)
                        let w0 = load pa
                        s2 <- step pb 2 w0 s2
                        s3 <- step pb 3 w0 s3
                        s4 <- step pb 4 w0 s4
                        s5 <- step pb 5 w0 s5
                        s6 <- step pb 6 w0 s6
                        s7 <- step pb 7 w0 s7
                        s8 <- step pb 8 w0 s8
                        s9 <- step pb 9 w0 s9
                        s10 <- step pb 10 w0 s10
                        s11 <- step pb 11 w0 s11
                        s12 <- step pb 12 w0 s12
                        s13 <- step pb 13 w0 s13
                        pa <- NativePtr.add pa lanes
                        po <- NativePtr.add po 1

                | 3 ->
                    for _ in 1..cin do
                        let pb = NativePtr.add b (NativePtr.read po)
                        let w0 = load pa
                        s0 <- step pb 0 w0 s0
                        s1 <- step pb 1 w0 s1
                        s2 <- step pb 2 w0 s2
                        s3 <- step pb 3 w0 s3
                        s4 <- step pb 4 w0 s4
                        s5 <- step pb 5 w0 s5
                        s6 <- step pb 6 w0 s6
                        s7 <- step pb 7 w0 s7
                        s8 <- step pb 8 w0 s8
                        s9 <- step pb 9 w0 s9
                        s10 <- step pb 10 w0 s10
                        s11 <- step pb 11 w0 s11
                        s12 <- step pb 12 w0 s12
                        pa <- NativePtr.add pa lanes
                        po <- NativePtr.add po 1

                | 4 ->
                    for _ in 1..cin do
                        let pb = NativePtr.add b (NativePtr.read po)
                        let w0 = load pa
                        s0 <- step pb 0 w0 s0
                        s1 <- step pb 1 w0 s1
                        s2 <- step pb 2 w0 s2
                        s3 <- step pb 3 w0 s3
                        s4 <- step pb 4 w0 s4
                        s5 <- step pb 5 w0 s5
                        s6 <- step pb 6 w0 s6
                        s7 <- step pb 7 w0 s7
                        s8 <- step pb 8 w0 s8
                        s9 <- step pb 9 w0 s9
                        s10 <- step pb 10 w0 s10
                        s11 <- step pb 11 w0 s11
                        pa <- NativePtr.add pa lanes
                        po <- NativePtr.add po 1

                | _ ->
                    for _ in 1..cin do
                        let pb = NativePtr.add b (NativePtr.read po)
                        let w0 = load pa
                        s0 <- step pb 0 w0 s0
                        s1 <- step pb 1 w0 s1
                        s2 <- step pb 2 w0 s2
                        s3 <- step pb 3 w0 s3
                        s4 <- step pb 4 w0 s4
                        s5 <- step pb 5 w0 s5
                        s6 <- step pb 6 w0 s6
                        s7 <- step pb 7 w0 s7
                        s8 <- step pb 8 w0 s8
                        s9 <- step pb 9 w0 s9
                        s10 <- step pb 10 w0 s10
                        s11 <- step pb 11 w0 s11
                        s12 <- step pb 12 w0 s12
                        s13 <- step pb 13 w0 s13
                        pa <- NativePtr.add pa lanes
                        po <- NativePtr.add po 1

        store s0 (NativePtr.add c (0 * lanes))
        store s1 (NativePtr.add c (1 * lanes))
        store s2 (NativePtr.add c (2 * lanes))
        store s3 (NativePtr.add c (3 * lanes))
        store s4 (NativePtr.add c (4 * lanes))
        store s5 (NativePtr.add c (5 * lanes))
        store s6 (NativePtr.add c (6 * lanes))
        store s7 (NativePtr.add c (7 * lanes))
        store s8 (NativePtr.add c (8 * lanes))
        store s9 (NativePtr.add c (9 * lanes))
        store s10 (NativePtr.add c (10 * lanes))
        store s11 (NativePtr.add c (11 * lanes))
        store s12 (NativePtr.add c (12 * lanes))
        store s13 (NativePtr.add c (13 * lanes))

    /// tileP14 for 16 output channels (one zmm per position).
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileP512x1 rows kw cin patterns a b boffs init initStride c =
        tileP14
            (fun (p: nativeptr<float32>) -> Vector512.Load p)
            (fun (v: Vector512<float32>) p -> Vector512.Store(v, p))
            (fun pb k w s -> Avx512F.FusedMultiplyAdd(Vector512.Create(NativePtr.get pb k), w, s))
            16
            rows
            kw
            cin
            patterns
            a
            b
            boffs
            init
            initStride
            c

    /// tileP14 for 8 output channels (one ymm per position): the AVX2 path's channel tile.
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileP256 rows kw cin patterns a b boffs init initStride c =
        tileP14
            (fun (p: nativeptr<float32>) -> Vector256.Load p)
            (fun (v: Vector256<float32>) p -> Vector256.Store(v, p))
            (fun pb k w s -> Fma.MultiplyAdd(Vector256.Create(NativePtr.get pb k), w, s))
            8
            rows
            kw
            cin
            patterns
            a
            b
            boffs
            init
            initStride
            c

    /// The position range of a tile's segment (see tileP512), from the first and one past the last
    /// of its positions whose input is not padding: 1 or 2 skip the first one or two positions, 3
    /// or 4 the last one or two, 0 none (the tiles then read the padding's zeros; the positions past
    /// the output width are computed and dropped, whatever they read).
    let rangeCode (first: int) (last: int) =
        let head, tail = first, tilePositions - last

        if head >= tail && head > 0 then min head 2
        elif tail > 0 then 2 + min tail 2
        else 0

    /// The kernel rows i of output row oh whose padded input row oh + i · dilation lies in
    /// [pad, pad + height) (the others read padding only), as [lo, hi).
    let kernelRows (kh: int) (dilation: int) (pad: int) (height: int) (oh: int) =
        let lo =
            if pad - oh <= 0 then
                0
            else
                (pad - oh + dilation - 1) / dilation

        let hi =
            let last = pad + height - 1 - oh
            if last < 0 then 0 else min kh (last / dilation + 1)

        lo, hi

    /// One block of cb (32 or 16 on AVX-512, 8 on AVX2) output channels of a sample's stride-1 convolution into t
    /// [OutH · rowStride; cb] (position (oh, ow) at oh · rowStride + ow, rowStride a multiple of
    /// tilePositions; the columns past outW are computed and dropped). A packed [kh; kw; cin; cb]
    /// and the offset table in the same order, so the steps of the kernel rows that read an output
    /// row's top or bottom padding form a prefix and a suffix that are skipped (their products are
    /// zero: a 5 × 5 "same" kernel on 14 rows does 64 of its 70 row-steps), and within a row the
    /// tiles skip the positions that read the left or right padding (patterns [chunk; kw], the
    /// rangeCode of each row chunk and kernel column). b the group's padded input planes (rows
    /// srcStride apart; the input's rows are padded rows [pad, pad + height)). The kernel rows run
    /// in slices of rowsPerSlice, each over all row chunks, so a slice's weights and input rows
    /// stay in L1; the first slice starts at the bias.
    let panelP
        (
            cb: int,
            kh: int,
            kw: int,
            cin: int,
            rowsPerSlice: int,
            dilation: int,
            pad: int,
            height: int,
            patterns: nativeptr<int>,
            a: nativeptr<float32>,
            b: nativeptr<float32>,
            boffs: nativeptr<int>,
            bias: nativeptr<float32>,
            outH: int,
            outW: int,
            srcStride: int,
            t: nativeptr<float32>,
            rowStride: int
        ) =
        let rowSteps = cin * kw
        let mutable r0 = 0

        while r0 < kh do
            let r1 = min kh (r0 + rowsPerSlice)

            for oh in 0 .. outH - 1 do
                let lo, hi = kernelRows kh dilation pad height oh
                let lo, hi = max lo r0, min hi r1
                let rows = max 0 (hi - lo)
                let first = if rows > 0 then lo * rowSteps else 0
                let ak = NativePtr.add a (first * cb)
                let ok = NativePtr.add boffs first
                let mutable ow = 0

                while ow < outW do
                    let c = NativePtr.add t ((oh * rowStride + ow) * cb)
                    let bk = NativePtr.add b (oh * srcStride + ow)
                    let init, initStride = if r0 = 0 then bias, 0 else c, cb
                    let pk = NativePtr.add patterns (ow / tilePositions * kw)

                    match cb with
                    | 32 -> tileP512 rows kw cin pk ak bk ok init initStride c
                    | 16 -> tileP512x1 rows kw cin pk ak bk ok init initStride c
                    | _ -> tileP256 rows kw cin pk ak bk ok init initStride c

                    ow <- ow + tilePositions

            r0 <- r1
