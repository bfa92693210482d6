/// Row-chunk tiles of stride-1 convolutions: vectors of output positions (chunks of output rows)
/// read from shifted input planes, stored straight into the output with masked stores.
namespace SnnFunc.Kernels

open System
open System.Numerics
open System.Runtime.CompilerServices
open System.Threading
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open Microsoft.FSharp.NativeInterop
open SnnFunc.Kernels.ConvTiles

/// 8 × 2 zmm (4 × 2 ymm, 4 × 2 scalar) tiles: A packed (output channels broadcast), the two B
/// vectors two chunks of output rows; and the panel that runs them over all row chunk pairs.
module internal ConvRowTiles =

    /// 8 × 2 zmm for stride-1 convolutions, written straight into the output: A packed (output
    /// channels), the two B vectors two chunks of output rows (a vector of positions of one row
    /// each, read from the shifted input planes at b0/b1 + boffs[p]); accumulators start at the
    /// bias (if any); stores go to c0/c1 + r · ldc for the first `rows` rows, only `lanes0`/`lanes1`
    /// lanes of each (a row's last chunk), through `storePart`.
    let inline private tileR512
        ([<InlineIfLambda>] fma: Vector512<'T> -> Vector512<'T> -> Vector512<'T> -> Vector512<'T>)
        ([<InlineIfLambda>] storePart: nativeptr<'T> -> Vector512<'T> -> int -> unit)
        ([<InlineIfLambda>] loadPart: nativeptr<'T> -> int -> Vector512<'T>)
        (kc: int)
        (a: nativeptr<'T>)
        (aps: int)
        (b0: nativeptr<'T>)
        (b1: nativeptr<'T>)
        (boffs: nativeptr<int>)
        (rows: int)
        (c0: nativeptr<'T>)
        (c1: nativeptr<'T>)
        (ldc: int)
        (lanes0: int)
        (lanes1: int)
        =
        let w = Vector512<'T>.Count
        let mutable s00 = Vector512<'T>.Zero
        let mutable s01 = Vector512<'T>.Zero
        let mutable s10 = Vector512<'T>.Zero
        let mutable s11 = Vector512<'T>.Zero
        let mutable s20 = Vector512<'T>.Zero
        let mutable s21 = Vector512<'T>.Zero
        let mutable s30 = Vector512<'T>.Zero
        let mutable s31 = Vector512<'T>.Zero
        let mutable s40 = Vector512<'T>.Zero
        let mutable s41 = Vector512<'T>.Zero
        let mutable s50 = Vector512<'T>.Zero
        let mutable s51 = Vector512<'T>.Zero
        let mutable s60 = Vector512<'T>.Zero
        let mutable s61 = Vector512<'T>.Zero
        let mutable s70 = Vector512<'T>.Zero
        let mutable s71 = Vector512<'T>.Zero
        let mutable pa = a
        let mutable po = boffs

        for _ in 1..kc do
            let o = NativePtr.read po
            let v0 = Vector512.Load<'T>(NativePtr.add b0 o)
            let v1 = Vector512.Load<'T>(NativePtr.add b1 o)
            let x = Vector512.Create<'T>(NativePtr.read pa)
            s00 <- fma x v0 s00
            s01 <- fma x v1 s01
            let x = Vector512.Create<'T>(NativePtr.get pa 1)
            s10 <- fma x v0 s10
            s11 <- fma x v1 s11
            let x = Vector512.Create<'T>(NativePtr.get pa 2)
            s20 <- fma x v0 s20
            s21 <- fma x v1 s21
            let x = Vector512.Create<'T>(NativePtr.get pa 3)
            s30 <- fma x v0 s30
            s31 <- fma x v1 s31
            let x = Vector512.Create<'T>(NativePtr.get pa 4)
            s40 <- fma x v0 s40
            s41 <- fma x v1 s41
            let x = Vector512.Create<'T>(NativePtr.get pa 5)
            s50 <- fma x v0 s50
            s51 <- fma x v1 s51
            let x = Vector512.Create<'T>(NativePtr.get pa 6)
            s60 <- fma x v0 s60
            s61 <- fma x v1 s61
            let x = Vector512.Create<'T>(NativePtr.get pa 7)
            s70 <- fma x v0 s70
            s71 <- fma x v1 s71
            pa <- NativePtr.add pa aps
            po <- NativePtr.add po 1

        // Added to what c holds (the bias, or the sums of earlier slices of the inner dimension).
        let inline put (row: int) (v0: Vector512<'T>) (v1: Vector512<'T>) =
            if row < rows then
                let p = NativePtr.add c0 (row * ldc)
                let q = NativePtr.add c1 (row * ldc)

                if lanes0 = w then
                    Vector512.Store<'T>(Vector512.Load<'T> p + v0, p)
                else
                    storePart p (loadPart p lanes0 + v0) lanes0

                // An odd last chunk is paired with itself: add it once.
                if NativePtr.toNativeInt q <> NativePtr.toNativeInt p then
                    if lanes1 = w then
                        Vector512.Store<'T>(Vector512.Load<'T> q + v1, q)
                    else
                        storePart q (loadPart q lanes1 + v1) lanes1

        put 0 s00 s01
        put 1 s10 s11
        put 2 s20 s21
        put 3 s30 s31
        put 4 s40 s41
        put 5 s50 s51
        put 6 s60 s61
        put 7 s70 s71

    /// 4 × 2 ymm version of tileR512.
    let inline private tileR256
        ([<InlineIfLambda>] fma: Vector256<'T> -> Vector256<'T> -> Vector256<'T> -> Vector256<'T>)
        ([<InlineIfLambda>] storePart: nativeptr<'T> -> Vector256<'T> -> int -> unit)
        ([<InlineIfLambda>] loadPart: nativeptr<'T> -> int -> Vector256<'T>)
        (kc: int)
        (a: nativeptr<'T>)
        (aps: int)
        (b0: nativeptr<'T>)
        (b1: nativeptr<'T>)
        (boffs: nativeptr<int>)
        (rows: int)
        (c0: nativeptr<'T>)
        (c1: nativeptr<'T>)
        (ldc: int)
        (lanes0: int)
        (lanes1: int)
        =
        let w = Vector256<'T>.Count
        let mutable s00 = Vector256<'T>.Zero
        let mutable s01 = Vector256<'T>.Zero
        let mutable s10 = Vector256<'T>.Zero
        let mutable s11 = Vector256<'T>.Zero
        let mutable s20 = Vector256<'T>.Zero
        let mutable s21 = Vector256<'T>.Zero
        let mutable s30 = Vector256<'T>.Zero
        let mutable s31 = Vector256<'T>.Zero
        let mutable pa = a
        let mutable po = boffs

        for _ in 1..kc do
            let o = NativePtr.read po
            let v0 = Vector256.Load<'T>(NativePtr.add b0 o)
            let v1 = Vector256.Load<'T>(NativePtr.add b1 o)
            let x = Vector256.Create<'T>(NativePtr.read pa)
            s00 <- fma x v0 s00
            s01 <- fma x v1 s01
            let x = Vector256.Create<'T>(NativePtr.get pa 1)
            s10 <- fma x v0 s10
            s11 <- fma x v1 s11
            let x = Vector256.Create<'T>(NativePtr.get pa 2)
            s20 <- fma x v0 s20
            s21 <- fma x v1 s21
            let x = Vector256.Create<'T>(NativePtr.get pa 3)
            s30 <- fma x v0 s30
            s31 <- fma x v1 s31
            pa <- NativePtr.add pa aps
            po <- NativePtr.add po 1

        // Added to what c holds (the bias, or the sums of earlier slices of the inner dimension).
        let inline put (row: int) (v0: Vector256<'T>) (v1: Vector256<'T>) =
            if row < rows then
                let p = NativePtr.add c0 (row * ldc)
                let q = NativePtr.add c1 (row * ldc)

                if lanes0 = w then
                    Vector256.Store<'T>(Vector256.Load<'T> p + v0, p)
                else
                    storePart p (loadPart p lanes0 + v0) lanes0

                // An odd last chunk is paired with itself: add it once.
                if NativePtr.toNativeInt q <> NativePtr.toNativeInt p then
                    if lanes1 = w then
                        Vector256.Store<'T>(Vector256.Load<'T> q + v1, q)
                    else
                        storePart q (loadPart q lanes1 + v1) lanes1

        put 0 s00 s01
        put 1 s10 s11
        put 2 s20 s21
        put 3 s30 s31

    /// 4 rows × 2 chunks of 4 lanes in scalar arithmetic.
    let inline private tileRScalar
        (kc: int)
        (a: nativeptr< ^T >)
        (aps: int)
        (b0: nativeptr< ^T >)
        (b1: nativeptr< ^T >)
        (boffs: nativeptr<int>)
        (rows: int)
        (c0: nativeptr< ^T >)
        (c1: nativeptr< ^T >)
        (ldc: int)
        (lanes0: int)
        (lanes1: int)
        =
        // A pair may be one chunk twice (an odd last chunk): add it once (the vector tiles load
        // both before they store either).
        let chunks =
            if NativePtr.toNativeInt c0 = NativePtr.toNativeInt c1 then
                1
            else
                2

        for r in 0 .. rows - 1 do
            for chunk in 0 .. chunks - 1 do
                let b, c, lanes = if chunk = 0 then b0, c0, lanes0 else b1, c1, lanes1

                for j in 0 .. lanes - 1 do
                    let mutable s = NativePtr.get c (r * ldc + j)

                    for p in 0 .. kc - 1 do
                        s <- s + NativePtr.get a (p * aps + r) * NativePtr.get b (NativePtr.get boffs p + j)

                    NativePtr.set c (r * ldc + j) s

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileRS512 (kc, a: nativeptr<float32>, aps, b0, b1, boffs, rows, c0, c1, ldc, lanes0, lanes1) =
        tileR512
            (fun (x: Vector512<float32>) y z -> Avx512F.FusedMultiplyAdd(x, y, z))
            (fun p v n -> Avx512F.MaskStore(p, Vector512.LessThan(Vector512<int>.Indices, Vector512.Create n).AsSingle(), v))
            (fun p n ->
                Avx512F.MaskLoad(p, Vector512.LessThan(Vector512<int>.Indices, Vector512.Create n).AsSingle(), Vector512<float32>.Zero))
            kc
            a
            aps
            b0
            b1
            boffs
            rows
            c0
            c1
            ldc
            lanes0
            lanes1

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileRD512 (kc, a: nativeptr<float>, aps, b0, b1, boffs, rows, c0, c1, ldc, lanes0, lanes1) =
        tileR512
            (fun (x: Vector512<float>) y z -> Avx512F.FusedMultiplyAdd(x, y, z))
            (fun p v n -> Avx512F.MaskStore(p, Vector512.LessThan(Vector512<int64>.Indices, Vector512.Create(int64 n)).AsDouble(), v))
            (fun p n ->
                Avx512F.MaskLoad(
                    p,
                    Vector512.LessThan(Vector512<int64>.Indices, Vector512.Create(int64 n)).AsDouble(),
                    Vector512<float>.Zero
                ))
            kc
            a
            aps
            b0
            b1
            boffs
            rows
            c0
            c1
            ldc
            lanes0
            lanes1

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileRS256 (kc, a: nativeptr<float32>, aps, b0, b1, boffs, rows, c0, c1, ldc, lanes0, lanes1) =
        tileR256
            (fun (x: Vector256<float32>) y z -> Fma.MultiplyAdd(x, y, z))
            (fun p v n -> Avx.MaskStore(p, Vector256.LessThan(Vector256<int>.Indices, Vector256.Create n).AsSingle(), v))
            (fun p n -> Avx.MaskLoad(p, Vector256.LessThan(Vector256<int>.Indices, Vector256.Create n).AsSingle()))
            kc
            a
            aps
            b0
            b1
            boffs
            rows
            c0
            c1
            ldc
            lanes0
            lanes1

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileRD256 (kc, a: nativeptr<float>, aps, b0, b1, boffs, rows, c0, c1, ldc, lanes0, lanes1) =
        tileR256
            (fun (x: Vector256<float>) y z -> Fma.MultiplyAdd(x, y, z))
            (fun p v n -> Avx.MaskStore(p, Vector256.LessThan(Vector256<int64>.Indices, Vector256.Create(int64 n)).AsDouble(), v))
            (fun p n -> Avx.MaskLoad(p, Vector256.LessThan(Vector256<int64>.Indices, Vector256.Create(int64 n)).AsDouble()))
            kc
            a
            aps
            b0
            b1
            boffs
            rows
            c0
            c1
            ldc
            lanes0
            lanes1

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileRSScalar (kc, a: nativeptr<float32>, aps, b0, b1, boffs, rows, c0, c1, ldc, lanes0, lanes1) =
        tileRScalar kc a aps b0 b1 boffs rows c0 c1 ldc lanes0 lanes1

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileRDScalar (kc, a: nativeptr<float>, aps, b0, b1, boffs, rows, c0, c1, ldc, lanes0, lanes1) =
        tileRScalar kc a aps b0 b1 boffs rows c0 c1 ldc lanes0 lanes1

    /// Lanes of one row chunk (nr / 2: the tiles' vector width).
    let chunkWidth<'T> = nr<'T> / 2

    /// The row chunks of an OutH × OutW output in pairs, 6 ints each: (source offset, output
    /// offset, lanes) twice; source offsets on a plane of width `rowStride`. An odd last chunk is
    /// paired with itself (computed twice, added once).
    let rowChunks (outH: int) (outW: int) (rowStride: int) (width: int) =
        let chunks =
            [|
                for oh in 0 .. outH - 1 do
                    for c in 0 .. (outW + width - 1) / width - 1 do
                        oh * rowStride + c * width, oh * outW + c * width, min width (outW - c * width)
            |]

        let pairs = (chunks.Length + 1) / 2

        Array.init (pairs * 6) (fun i ->
            let q, f = i / 6, i % 6
            let s, d, l = chunks[min (chunks.Length - 1) (2 * q + f / 3)]

            match f % 3 with
            | 0 -> s
            | 1 -> d
            | _ -> l)

    /// Output channels [0, m) (m a multiple of mr, `rows` of them real) of every row chunk pair.
    /// A is packed per row block, [m / mr; k; mr]; the inner dimension runs in slices of `slice`
    /// steps (whole input planes), each block's slices one after the other over all chunk pairs,
    /// so a slice's shifted planes and weights stay in L1 (later slices add to the stored sums).
    let inline private panelR
        ([<InlineIfLambda>] tile:
            int *
            nativeptr<'T> *
            int *
            nativeptr<'T> *
            nativeptr<'T> *
            nativeptr<int> *
            int *
            nativeptr<'T> *
            nativeptr<'T> *
            int *
            int *
            int
                -> unit)
        (
            m: int,
            rows: int,
            k: int,
            slice: int,
            a: nativeptr<'T>,
            b: nativeptr<'T>,
            boffs: nativeptr<int>,
            bias: nativeptr<'T>,
            chunks: nativeptr<int>,
            pairs: int,
            c: nativeptr<'T>,
            ldc: int
        ) =
        let mutable i0 = 0

        while i0 < m do
            let ai = NativePtr.add a (i0 * k)
            let ci = NativePtr.add c (i0 * ldc)
            let real = min mr (rows - i0)

            // The tiles add to the output: it starts as the bias.
            for r in 0 .. real - 1 do
                let start =
                    if NativePtr.isNullPtr bias then
                        LanguagePrimitives.GenericZero
                    else
                        NativePtr.get bias (i0 + r)

                Span<'T>(NativePtr.toVoidPtr (NativePtr.add ci (r * ldc)), ldc).Fill start

            let mutable k0 = 0

            while k0 < k do
                let kc = min slice (k - k0)

                for q in 0 .. pairs - 1 do
                    let ch = NativePtr.add chunks (q * 6)

                    tile (
                        kc,
                        NativePtr.add ai (k0 * mr),
                        mr,
                        NativePtr.add b (NativePtr.get ch 0),
                        NativePtr.add b (NativePtr.get ch 3),
                        NativePtr.add boffs k0,
                        real,
                        NativePtr.add ci (NativePtr.get ch 1),
                        NativePtr.add ci (NativePtr.get ch 4),
                        ldc,
                        NativePtr.get ch 2,
                        NativePtr.get ch 5
                    )

                k0 <- k0 + kc

            i0 <- i0 + mr

    let panelRS args =
        match path with
        | 2 -> panelR tileRS512 args
        | 1 -> panelR tileRS256 args
        | _ -> panelR tileRSScalar args

    let panelRD args =
        match path with
        | 2 -> panelR tileRD512 args
        | 1 -> panelR tileRD256 args
        | _ -> panelR tileRDScalar args
