/// The weight gradient of a convolution: dy transposed per sample, then tiles over the patch rows.
namespace SnnFunc.Kernels

open System
open System.Numerics
open System.Runtime.CompilerServices
open System.Threading
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open Microsoft.FSharp.NativeInterop
open SnnFunc.Kernels.ConvProducts

/// Weight-gradient products, each thread accumulating its samples.
module internal ConvWeightGradient =

    /// One group's dy of a sample transposed: dst[(oh · rs + ow) · nrp + oi] = src[oi · plane +
    /// oh · outW + ow] for oi < og (og channel planes of `plane` elements each).
    let inline private transposeScalar
        (src: nativeptr<'T>)
        (plane: int)
        (og: int)
        (outH: int)
        (outW: int)
        (dst: nativeptr<'T>)
        (rs: int)
        (nrp: int)
        =
        for oh in 0 .. outH - 1 do
            for ow in 0 .. outW - 1 do
                let d = NativePtr.add dst ((oh * rs + ow) * nrp)
                let mutable q = NativePtr.add src (oh * outW + ow)

                for oi in 0 .. og - 1 do
                    NativePtr.set d oi (NativePtr.read q)
                    q <- NativePtr.add q plane

    /// The float32 transpose in 8 × 8 blocks of AVX registers (unpack, shuffle, lane permute):
    /// a scalar transpose of dy cost a tenth of the weight gradient of a 16 -> 32 layer.
    let private transposeS
        (src: nativeptr<float32>)
        (plane: int)
        (og: int)
        (outH: int)
        (outW: int)
        (dst: nativeptr<float32>)
        (rs: int)
        (nrp: int)
        =
        if not Avx.IsSupported || outW < 8 then
            transposeScalar src plane og outH outW dst rs nrp
        else
            let blocks = og / 8

            for ob in 0 .. blocks - 1 do
                let rows = NativePtr.add src (ob * 8 * plane)

                for oh in 0 .. outH - 1 do
                    let mutable ow = 0

                    while ow < outW do
                        // The last block overlaps the previous one when outW is not a multiple of 8.
                        let o0 = min ow (outW - 8)

                        let at (r: int) =
                            Vector256.Load(NativePtr.add rows (r * plane + oh * outW + o0))

                        let t0 = Avx.UnpackLow(at 0, at 1)
                        let t1 = Avx.UnpackHigh(at 0, at 1)
                        let t2 = Avx.UnpackLow(at 2, at 3)
                        let t3 = Avx.UnpackHigh(at 2, at 3)
                        let t4 = Avx.UnpackLow(at 4, at 5)
                        let t5 = Avx.UnpackHigh(at 4, at 5)
                        let t6 = Avx.UnpackLow(at 6, at 7)
                        let t7 = Avx.UnpackHigh(at 6, at 7)
                        let u0 = Avx.Shuffle(t0, t2, 0x44uy)
                        let u1 = Avx.Shuffle(t0, t2, 0xEEuy)
                        let u2 = Avx.Shuffle(t1, t3, 0x44uy)
                        let u3 = Avx.Shuffle(t1, t3, 0xEEuy)
                        let u4 = Avx.Shuffle(t4, t6, 0x44uy)
                        let u5 = Avx.Shuffle(t4, t6, 0xEEuy)
                        let u6 = Avx.Shuffle(t5, t7, 0x44uy)
                        let u7 = Avx.Shuffle(t5, t7, 0xEEuy)
                        let d = NativePtr.add dst ((oh * rs + o0) * nrp + ob * 8)

                        let put (j: int) (v: Vector256<float32>) =
                            Vector256.Store(v, NativePtr.add d (j * nrp))

                        put 0 (Avx.Permute2x128(u0, u4, 0x20uy))
                        put 1 (Avx.Permute2x128(u1, u5, 0x20uy))
                        put 2 (Avx.Permute2x128(u2, u6, 0x20uy))
                        put 3 (Avx.Permute2x128(u3, u7, 0x20uy))
                        put 4 (Avx.Permute2x128(u0, u4, 0x31uy))
                        put 5 (Avx.Permute2x128(u1, u5, 0x31uy))
                        put 6 (Avx.Permute2x128(u2, u6, 0x31uy))
                        put 7 (Avx.Permute2x128(u3, u7, 0x31uy))
                        ow <- o0 + 8

            if blocks * 8 < og then
                transposeScalar
                    (NativePtr.add src (blocks * 8 * plane))
                    plane
                    (og - blocks * 8)
                    outH
                    outW
                    (NativePtr.add dst (blocks * 8))
                    rs
                    nrp

    let private transposeD
        (src: nativeptr<float>)
        (plane: int)
        (og: int)
        (outH: int)
        (outW: int)
        (dst: nativeptr<float>)
        (rs: int)
        (nrp: int)
        =
        transposeScalar src plane og outH outW dst rs nrp

    /// dw [O; C/groups; kh; kw] = Σ over samples of dy · patchesᵀ, from x [batch; C; H; W] and dy
    /// [batch; O; OutH; OutW]: computed transposed (patch rows × output channels), each thread
    /// accumulating its samples in its own [groups; kpad; nrp] buffer, summed after the join.
    /// With stride 1 and whole tiles of input channels, the patch rows go in blocks of one kernel
    /// offset (i, j) (all channels), each over only the output positions whose input at that
    /// offset is not padding: a 5 × 5 "same" kernel on 14 × 14 reads 64² of its 70² products.
    let inline private backwardWeight
        ([<InlineIfLambda>] panelA:
            int * int * int * int * int * int * nativeptr<'T> * nativeptr<int> * nativeptr<'T> * int * nativeptr<'T> * int * bool -> unit)
        ([<InlineIfLambda>] transpose: nativeptr<'T> -> int -> int -> int -> int -> nativeptr<'T> -> int -> int -> unit)
        (scratchOf: int -> 'T[])
        (nr: int)
        (cg: ConvGeometry)
        (batch: int)
        (x: 'T[])
        (dy: 'T[])
        (dw: 'T[])
        =
        let g = cg.Window
        let mr = ConvTiles.mr
        let groups, kg, og, o = cg.Groups, cg.GroupRows, cg.GroupOutputs, cg.OutChannels
        let cgc, kh, kw = cg.GroupChannels, g.KernelH, g.KernelW
        let src = sourceOf cg nr
        let l = g.Positions
        // The A rows (patch rows) skip the padded width's extra columns between output rows.
        let rowSkip = if src.Implicit then src.RowStride - g.OutW else 0
        let byOffset = src.Implicit && cgc % mr = 0
        let kpad, nrp = roundUp kg mr, roundUp og nr
        // The accumulator row of patch row p = (c · kh + i) · kw + j: (i · kw + j) · cgc + c in
        // blocks by offset, else p.
        let rowOf p =
            if byOffset then
                let c, ij = p / (kh * kw), p % (kh * kw)
                ij * cgc + c
            else
                p

        // Row offsets for whole tiles, in accumulator-row order (rows past kg read a valid
        // address; their sums are dropped).
        let offsets = Array.zeroCreate<int> kpad

        for p in 0 .. kg - 1 do
            offsets[rowOf p] <- src.Offsets[p]

        // The panels of one group: (first accumulator row, rows, first position (oh, ow),
        // output rows, row length); one over all rows and positions unless byOffset.
        let blocks =
            if byOffset then
                [|
                    for i in 0 .. kh - 1 do
                        for j in 0 .. kw - 1 do
                            // Output positions whose padded input at offset (i, j) is inside the image.
                            let range pad dilation size outSize k =
                                max 0 (pad - k * dilation), min outSize (pad + size - k * dilation)

                            let oh0, oh1 = range g.PadH g.DilationH g.Height g.OutH i
                            let ow0, ow1 = range g.PadW g.DilationW g.Width g.OutW j

                            if oh1 > oh0 && ow1 > ow0 then
                                struct ((i * kw + j) * cgc, cgc, oh0, ow0, oh1 - oh0, ow1 - ow0)
                |]
            else
                [| struct (0, kpad, 0, 0, g.OutH, g.OutW) |]

        let accSize = groups * kpad * nrp
        let threads = max 1 (min Parallelism.MaxThreads Environment.ProcessorCount)
        let acc = Array.zeroCreate<'T> (threads * accSize)
        // Scratch: the source, then one group's dy transposed [l; nrp] (columns past og unused).
        let dytStart = src.Size

        let used =
            split batch (macs cg batch) (fun worker samples ->
                let scratch = scratchOf (dytStart + l * nrp)

                if src.Implicit then
                    Span<'T>(scratch, 0, src.Size).Clear()

                // The transpose writes columns [0, og) only: the others must not hold leftovers
                // (denormals there made a 1 -> 16 weight gradient ten times slower).
                if og < nrp then
                    Span<'T>(scratch, dytStart, l * nrp).Clear()

                use ps = fixed scratch
                use pdy = fixed dy
                use pa = fixed acc
                use po = fixed offsets
                let mine = NativePtr.add pa (worker * accSize)

                let mutable n = samples.Take()

                while n >= 0 do
                    load src g x n scratch

                    for gi in 0 .. groups - 1 do
                        transpose
                            (NativePtr.add pdy ((n * o + gi * og) * g.Positions))
                            g.Positions
                            og
                            g.OutH
                            g.OutW
                            (NativePtr.add ps dytStart)
                            g.OutW
                            nrp

                        for struct (r0, rows, oh0, ow0, outRows, rowLen) in blocks do
                            panelA (
                                rows,
                                nrp,
                                outRows * rowLen,
                                rowLen,
                                rowSkip + g.OutW - rowLen,
                                (g.OutW - rowLen) * nrp,
                                NativePtr.add ps (gi * src.GroupStride + oh0 * (g.OutW + rowSkip) + ow0),
                                NativePtr.add po r0,
                                NativePtr.add ps (dytStart + (oh0 * g.OutW + ow0) * nrp),
                                nrp,
                                NativePtr.add mine ((gi * kpad + r0) * nrp),
                                nrp,
                                true
                            )

                    n <- samples.Take())

        for gi in 0 .. groups - 1 do
            for oi in 0 .. og - 1 do
                for p in 0 .. kg - 1 do
                    let q = rowOf p
                    let mutable s = acc[(gi * kpad + q) * nrp + oi]

                    for t in 1 .. used - 1 do
                        s <- s + acc[t * accSize + (gi * kpad + q) * nrp + oi]

                    dw[(gi * og + oi) * kg + p] <- s

    let backwardWeightS (cg, batch, x: float32[], dy, dw) =
        backwardWeight ConvTiles.panelAS transposeS ConvScratch.F32 ConvTiles.nr<float32> cg batch x dy dw

    let backwardWeightD (cg, batch, x: float[], dy, dw) =
        backwardWeight ConvTiles.panelAD transposeD ConvScratch.F64 ConvTiles.nr<float> cg batch x dy dw
