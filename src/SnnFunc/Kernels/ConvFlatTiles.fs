/// The AVX2 channels-in-lanes tile of stride-1 convolutions (float32): 16 output channels (two ymm)
/// × 6 output positions taken in order over the whole output plane, so that the tiles fill a plane
/// of any width.
namespace SnnFunc.Kernels

open System.Runtime.CompilerServices
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open Microsoft.FSharp.NativeInterop

/// tileF6 and the panel over a sample's output plane.
module internal ConvFlatTiles =

    /// Positions of one tileF6.
    let tilePositions = 6

    /// 6 positions × 16 output channels: 12 sums, two weight registers and one broadcast register
    /// (15 of the 16 ymm). A step loads 2 weight vectors and broadcasts 6 inputs for 12
    /// multiply-adds, which keeps both FMA units of an AVX2 core busy; tileP256's 8 channels × 14
    /// positions need 15 loads for 14 (its broadcasts bound it at about 70 % of the FMA peak of a
    /// Zen 2 core). Position r reads its input at p_r + boffs[step] (the positions need not be
    /// consecutive: a tile may continue on the next output row). A packed [steps; 16]; the sums
    /// start at init (+ r · initStride) and go to c + 16 r.
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileF6
        (steps: int)
        (a: nativeptr<float32>)
        (boffs: nativeptr<int>)
        (p0: nativeptr<float32>)
        (p1: nativeptr<float32>)
        (p2: nativeptr<float32>)
        (p3: nativeptr<float32>)
        (p4: nativeptr<float32>)
        (p5: nativeptr<float32>)
        (init: nativeptr<float32>)
        (initStride: int)
        (c: nativeptr<float32>)
        =
        let mutable s0a = Vector256.Load(NativePtr.add init (0 * initStride))
        let mutable s0b = Vector256.Load(NativePtr.add init (0 * initStride + 8))
        let mutable s1a = Vector256.Load(NativePtr.add init (1 * initStride))
        let mutable s1b = Vector256.Load(NativePtr.add init (1 * initStride + 8))
        let mutable s2a = Vector256.Load(NativePtr.add init (2 * initStride))
        let mutable s2b = Vector256.Load(NativePtr.add init (2 * initStride + 8))
        let mutable s3a = Vector256.Load(NativePtr.add init (3 * initStride))
        let mutable s3b = Vector256.Load(NativePtr.add init (3 * initStride + 8))
        let mutable s4a = Vector256.Load(NativePtr.add init (4 * initStride))
        let mutable s4b = Vector256.Load(NativePtr.add init (4 * initStride + 8))
        let mutable s5a = Vector256.Load(NativePtr.add init (5 * initStride))
        let mutable s5b = Vector256.Load(NativePtr.add init (5 * initStride + 8))
        let mutable pa = a
        let mutable po = boffs

        for _ in 1..steps do
            let off = NativePtr.read po
            let w0 = Vector256.Load pa
            let w1 = Vector256.Load(NativePtr.add pa 8)
            let x = Vector256.Create(NativePtr.get p0 off)
            s0a <- Fma.MultiplyAdd(x, w0, s0a)
            s0b <- Fma.MultiplyAdd(x, w1, s0b)
            let x = Vector256.Create(NativePtr.get p1 off)
            s1a <- Fma.MultiplyAdd(x, w0, s1a)
            s1b <- Fma.MultiplyAdd(x, w1, s1b)
            let x = Vector256.Create(NativePtr.get p2 off)
            s2a <- Fma.MultiplyAdd(x, w0, s2a)
            s2b <- Fma.MultiplyAdd(x, w1, s2b)
            let x = Vector256.Create(NativePtr.get p3 off)
            s3a <- Fma.MultiplyAdd(x, w0, s3a)
            s3b <- Fma.MultiplyAdd(x, w1, s3b)
            let x = Vector256.Create(NativePtr.get p4 off)
            s4a <- Fma.MultiplyAdd(x, w0, s4a)
            s4b <- Fma.MultiplyAdd(x, w1, s4b)
            let x = Vector256.Create(NativePtr.get p5 off)
            s5a <- Fma.MultiplyAdd(x, w0, s5a)
            s5b <- Fma.MultiplyAdd(x, w1, s5b)
            pa <- NativePtr.add pa 16
            po <- NativePtr.add po 1

        Vector256.Store(s0a, NativePtr.add c (0 * 16))
        Vector256.Store(s0b, NativePtr.add c (0 * 16 + 8))
        Vector256.Store(s1a, NativePtr.add c (1 * 16))
        Vector256.Store(s1b, NativePtr.add c (1 * 16 + 8))
        Vector256.Store(s2a, NativePtr.add c (2 * 16))
        Vector256.Store(s2b, NativePtr.add c (2 * 16 + 8))
        Vector256.Store(s3a, NativePtr.add c (3 * 16))
        Vector256.Store(s3b, NativePtr.add c (3 * 16 + 8))
        Vector256.Store(s4a, NativePtr.add c (4 * 16))
        Vector256.Store(s4b, NativePtr.add c (4 * 16 + 8))
        Vector256.Store(s5a, NativePtr.add c (5 * 16))
        Vector256.Store(s5b, NativePtr.add c (5 * 16 + 8))

    /// The positions a plane of outH × outW takes in tiles: whole tiles, the last one's extra
    /// positions computed (from the plane's last position) and dropped.
    let paddedPositions (outH: int) (outW: int) =
        (outH * outW + tilePositions - 1) / tilePositions * tilePositions

    /// Ints per tile in a tileTable.
    let private tableStride = 2 + tilePositions

    /// Per tile of an outH × outW plane: the kernel rows [lo, hi) it runs (those that read the
    /// image for at least one of its positions: the rows valid for its last output row and for
    /// its first; a tile spans at most two output rows when outW >= 6), then the input offset
    /// (oh · srcStride + ow) of each of its positions (the plane's last for the padding
    /// positions). Made once per convolution: the divisions cost as much as a 3 × 3 tile's work.
    let tileTable (kh: int) (dilation: int) (pad: int) (height: int) (outH: int) (outW: int) (srcStride: int) =
        let last = outH * outW - 1
        let tiles = paddedPositions outH outW / tilePositions
        let table = Array.zeroCreate<int> (tiles * tableStride)

        for tile in 0 .. tiles - 1 do
            let p = tile * tilePositions

            let lo, _ =
                ConvChannelTiles.kernelRows kh dilation pad height (min (p + tilePositions - 1) last / outW)

            let _, hi = ConvChannelTiles.kernelRows kh dilation pad height (min p last / outW)
            table[tile * tableStride] <- lo
            table[tile * tableStride + 1] <- max lo hi

            for r in 0 .. tilePositions - 1 do
                let q = min (p + r) last
                table[tile * tableStride + 2 + r] <- q / outW * srcStride + q % outW

        table

    /// One block of 16 output channels of a sample's stride-1 convolution into t [positions; 16]
    /// (position oh · outW + ow; paddedPositions of them). A packed [kh; kw; cin; 16] and the
    /// offset table in the same order (ConvChannelTiles.panelP's), b the group's padded input planes,
    /// table the plane's tileTable. A tile skips the kernel rows that read the top or bottom
    /// padding for all of its positions; the positions that read padding otherwise multiply its
    /// zeros. The kernel rows run in slices of rowsPerSlice, each over all tiles; the first slice
    /// starts at the bias.
    let panelF
        (
            kh: int,
            kw: int,
            cin: int,
            rowsPerSlice: int,
            table: nativeptr<int>,
            tiles: int,
            a: nativeptr<float32>,
            b: nativeptr<float32>,
            boffs: nativeptr<int>,
            bias: nativeptr<float32>,
            t: nativeptr<float32>
        ) =
        let rowSteps = cin * kw
        let mutable r0 = 0

        while r0 < kh do
            let r1 = min kh (r0 + rowsPerSlice)

            for tile in 0 .. tiles - 1 do
                let e = NativePtr.add table (tile * tableStride)
                let lo, hi = max (NativePtr.get e 0) r0, min (NativePtr.get e 1) r1
                let first = if hi > lo then lo * rowSteps else 0
                let steps = max 0 (hi - lo) * rowSteps
                let c = NativePtr.add t (tile * tilePositions * 16)
                let init, initStride = if r0 = 0 then bias, 0 else c, 16

                tileF6
                    steps
                    (NativePtr.add a (first * 16))
                    (NativePtr.add boffs first)
                    (NativePtr.add b (NativePtr.get e 2))
                    (NativePtr.add b (NativePtr.get e 3))
                    (NativePtr.add b (NativePtr.get e 4))
                    (NativePtr.add b (NativePtr.get e 5))
                    (NativePtr.add b (NativePtr.get e 6))
                    (NativePtr.add b (NativePtr.get e 7))
                    init
                    initStride
                    c

            r0 <- r1
