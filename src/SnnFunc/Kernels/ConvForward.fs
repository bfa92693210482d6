/// The forward convolution product (row tiles, channels-in-lanes tiles, or unfolded patches) and
/// the input gradient (a flipped-kernel convolution, or Wᵀ · dy and a fold).
namespace SnnFunc.Kernels

open System
open System.Numerics
open System.Runtime.CompilerServices
open System.Threading
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open Microsoft.FSharp.NativeInterop
open SnnFunc.Kernels.ConvProducts

/// Forward and input-gradient products, sample by sample.
module internal ConvForward =

    /// The channel block of forwardP for a convolution (0: forwardP does not take it): float32,
    /// stride 1, whole blocks of 32 (or 16) output channels per group on the AVX-512 path and of
    /// 16 (or 8) on the AVX2 path, and an inner dimension long enough to pay for a tile's 28 loads
    /// and stores and the transpose (1 -> 16 channels with 3 × 3 or 5 × 5 kernels ran a third
    /// slower than with the row tiles). On AVX2 the row tiles hold 8 sums (4 × 2 ymm, too few for
    /// two FMA units) where ConvFlatTiles' tile holds 12 and tileP256 14.
    let private blockP (cg: ConvGeometry) =
        if
            ConvTiles.path = 0
            || cg.Window.StrideH <> 1
            || cg.Window.StrideW <> 1
            || cg.GroupRows < 64
        then
            0
        elif ConvTiles.path = 1 then
            if cg.GroupOutputs % 16 = 0 then 16
            elif cg.GroupOutputs % 8 = 0 then 8
            else 0
        elif cg.GroupOutputs % 32 = 0 then
            32
        elif cg.GroupOutputs % 16 = 0 then
            16
        else
            0

    /// Whether forwardP runs a block of cb channels by ConvFlatTiles (16 channels on AVX2) rather
    /// than by ConvChannelTiles' rows of 14 positions.
    let private flat (cb: int) = ConvTiles.path = 1 && cb = 16

    /// The output positions forwardP's tiles compute for an outH × outW plane.
    let private tiledPositions (cb: int) (outH: int) (outW: int) =
        if flat cb then
            ConvFlatTiles.paddedPositions outH outW
        else
            outH * roundUp outW ConvChannelTiles.tilePositions

    /// The stride-1 forward with output channels in the vector lanes (ConvChannelTiles.tileP512): a
    /// 14-wide row fills 14 of 16 lanes of the row tiles, while 32 (16) channels fill all of theirs,
    /// and a step loads two weight vectors for 28 multiply-adds instead of two input vectors for
    /// 16. Each channel block of a sample goes to a [positions; cb] scratch, then is transposed
    /// into y in 8 × 8 blocks.
    let private forwardP (cb: int) (cg: ConvGeometry) (batch: int) (x: float32[]) (w: float32[]) (bias: float32[]) (y: float32[]) =
        let g = cg.Window
        let groups, kg, og, o = cg.Groups, cg.GroupRows, cg.GroupOutputs, cg.OutChannels
        let src = sourceOf cg ConvTiles.nr<float32>
        let blocks = og / cb
        let kh, kw, cgc = g.KernelH, g.KernelW, cg.GroupChannels
        // Steps in kernel-offset-major order (i, j, c), so that panelP can skip the rows and
        // positions that read padding: step (i · kw + j) · cgc + c is patch row (c · kh + i) · kw + j.
        let patchRow s =
            let ij, c = s / cgc, s % cgc
            (c * kh + ij / kw) * kw + ij % kw

        let offsets = Array.init kg (fun s -> src.Offsets[patchRow s])
        let wb = Array.zeroCreate<float32> (groups * og * kg)

        for gi in 0 .. groups - 1 do
            for oi in 0 .. og - 1 do
                for s in 0 .. kg - 1 do
                    wb[((gi * blocks + oi / cb) * kg + s) * cb + oi % cb] <- w[(gi * og + oi) * kg + patchRow s]

        let biasOrZero = if isNull bias then Array.zeroCreate<float32> o else bias
        // Slices of whole kernel rows, about 224 steps of 32 channels each (28 KB of weights).
        let slices = (kg * cb / 32 + 223) / 224
        let rowsPerSlice = (kh + slices - 1) / slices
        // The scratch's row stride: whole row chunks of ConvChannelTiles, or the plane's rows
        // one after another for ConvFlatTiles.
        let rsT =
            if flat cb then
                g.OutW
            else
                roundUp g.OutW ConvChannelTiles.tilePositions
        // Per row chunk and kernel column j, the range of the chunk's positions whose input
        // column ow + j · dilation (padded) is inside the image and whose output is kept
        // (ConvChannelTiles only).
        let patterns =
            if flat cb then
                [||]
            else
                Array.init (rsT / ConvChannelTiles.tilePositions * kw) (fun q ->
                    let ow0, j = q / kw * ConvChannelTiles.tilePositions, q % kw
                    let first = max 0 (g.PadW - ow0 - j * g.DilationW)
                    let last = min (g.OutW - ow0) (g.PadW + g.Width - ow0 - j * g.DilationW)
                    ConvChannelTiles.rangeCode first (min ConvChannelTiles.tilePositions last))

        let tStart = src.Size
        let plane = g.Positions

        let flatTable =
            if flat cb then
                ConvFlatTiles.tileTable kh g.DilationH g.PadH g.Height g.OutH g.OutW src.RowStride
            else
                [||]

        let flatTiles =
            ConvFlatTiles.paddedPositions g.OutH g.OutW / ConvFlatTiles.tilePositions

        split batch (macs cg batch) (fun _ samples ->
            let scratch = ConvScratch.F32(tStart + tiledPositions cb g.OutH g.OutW * cb)
            Span<float32>(scratch, 0, src.Size).Clear()
            use ps = fixed scratch
            use pw = fixed wb
            use po = fixed offsets
            use pp = fixed patterns
            use pf = fixed flatTable
            use pbias = fixed biasOrZero
            use py = fixed y
            let pt = NativePtr.add ps tStart

            let mutable n = samples.Take()

            while n >= 0 do
                load src g x n scratch

                for gi in 0 .. groups - 1 do
                    for ob in 0 .. blocks - 1 do
                        if flat cb then
                            ConvFlatTiles.panelF (
                                kh,
                                kw,
                                cgc,
                                rowsPerSlice,
                                pf,
                                flatTiles,
                                NativePtr.add pw ((gi * blocks + ob) * kg * cb),
                                NativePtr.add ps (gi * src.GroupStride),
                                po,
                                NativePtr.add pbias (gi * og + ob * cb),
                                pt
                            )
                        else
                            ConvChannelTiles.panelP (
                                cb,
                                kh,
                                kw,
                                cgc,
                                rowsPerSlice,
                                g.DilationH,
                                g.PadH,
                                g.Height,
                                pp,
                                NativePtr.add pw ((gi * blocks + ob) * kg * cb),
                                NativePtr.add ps (gi * src.GroupStride),
                                po,
                                NativePtr.add pbias (gi * og + ob * cb),
                                g.OutH,
                                g.OutW,
                                src.RowStride,
                                pt,
                                rsT
                            )

                        let dst = NativePtr.add py ((n * o + gi * og + ob * cb) * plane)

                        if g.OutW < 8 || not Avx.IsSupported then
                            for oh in 0 .. g.OutH - 1 do
                                for ow in 0 .. g.OutW - 1 do
                                    for oc in 0 .. cb - 1 do
                                        NativePtr.set dst (oc * plane + oh * g.OutW + ow) (NativePtr.get pt ((oh * rsT + ow) * cb + oc))
                        else
                            for q in 0 .. cb / 8 - 1 do
                                for oh in 0 .. g.OutH - 1 do
                                    let mutable ow = 0

                                    while ow < g.OutW do
                                        // The last block overlaps the previous one.
                                        let o0 = min ow (g.OutW - 8)

                                        transpose8
                                            (NativePtr.add pt ((oh * rsT + o0) * cb + q * 8))
                                            cb
                                            (NativePtr.add dst (q * 8 * plane + oh * g.OutW + o0))
                                            plane

                                        ow <- o0 + 8

                n <- samples.Take())
        |> ignore

    /// y [batch; O; OutH; OutW] from x [batch; C; H; W], w [O; C/groups; kh; kw] and bias [O] (or null).
    let inline private forward
        ([<InlineIfLambda>] panelB:
            int * int * int * nativeptr<'T> * int * nativeptr<'T> * nativeptr<int> * nativeptr<'T> * int * bool -> unit)
        ([<InlineIfLambda>] panelR:
            int *
            int *
            int *
            int *
            nativeptr<'T> *
            nativeptr<'T> *
            nativeptr<int> *
            nativeptr<'T> *
            nativeptr<int> *
            int *
            nativeptr<'T> *
            int
                -> unit)
        (scratchOf: int -> 'T[])
        (nr: int)
        (cg: ConvGeometry)
        (batch: int)
        (x: 'T[])
        (w: 'T[])
        (bias: 'T[])
        (y: 'T[])
        =
        let g = cg.Window
        let mr = ConvTiles.mr
        let groups, kg, og, o = cg.Groups, cg.GroupRows, cg.GroupOutputs, cg.OutChannels
        let src = sourceOf cg nr
        let lp, rs = src.Lp, src.RowStride
        let opad = roundUp og mr
        let wt = packForward cg opad w

        if src.Implicit then
            // Tiles of two row chunks each, stored straight into y (masked at a row's end):
            // no output scratch, and only a chunk's unused lanes are computed in vain.
            let chunks = ConvRowTiles.rowChunks g.OutH g.OutW rs (nr / 2)
            let pairs = chunks.Length / 6
            let wb = packBlocks cg opad w
            // Slices of whole input planes, about 192 steps each (kk per plane).
            let kk = g.KernelH * g.KernelW
            let slices = (kg + 191) / 192
            let slice = (cg.GroupChannels + slices - 1) / slices * kk
            // The bias per group padded to whole tiles (the rows past og start anywhere; not stored).
            let biasPadded =
                if isNull bias then
                    [||]
                else
                    Array.init (groups * opad) (fun i ->
                        let gi, oi = i / opad, i % opad
                        if oi < og then bias[gi * og + oi] else bias[0])

            split batch (macs cg batch) (fun _ samples ->
                let scratch = scratchOf src.Size
                Span<'T>(scratch, 0, src.Size).Clear()
                use ps = fixed scratch
                use pw = fixed wb
                use po = fixed src.Offsets
                use pc = fixed chunks
                use pbias = fixed biasPadded
                use py = fixed y

                let mutable n = samples.Take()

                while n >= 0 do
                    load src g x n scratch

                    for gi in 0 .. groups - 1 do
                        panelR (
                            opad,
                            og,
                            kg,
                            slice,
                            NativePtr.add pw (gi * kg * opad),
                            NativePtr.add ps (gi * src.GroupStride),
                            po,
                            (if isNull bias then
                                 NativePtr.nullPtr
                             else
                                 NativePtr.add pbias (gi * opad)),
                            pc,
                            pairs,
                            NativePtr.add py ((n * o + gi * og) * g.Positions),
                            g.Positions
                        )

                    n <- samples.Take())
            |> ignore
        else
            // Scratch: the source, then the sample's output [o (+ mr rows the last group's tiles may
            // write); lp].
            let outStart = src.Size

            split batch (macs cg batch) (fun _ samples ->
                let scratch = scratchOf (outStart + (o + mr) * lp)

                // The unfold writes columns [0, positions) of each patch row, and the tiles read up
                // to lp (and add to the mr rows past the output with a bias): those must not hold
                // leftovers, whose denormals slow every multiply-add that reads them.
                for r in 0 .. g.Rows - 1 do
                    Span<'T>(scratch, r * lp + g.Positions, lp - g.Positions).Clear()

                Span<'T>(scratch, outStart + o * lp, mr * lp).Clear()

                use ps = fixed scratch
                use pw = fixed wt
                use po = fixed src.Offsets

                let mutable n = samples.Take()

                while n >= 0 do
                    load src g x n scratch

                    // Groups in order: a group's last row tile may spill into the next group's rows,
                    // which that group then overwrites (or fills with its bias first).
                    for gi in 0 .. groups - 1 do
                        let withBias = not (isNull bias)

                        if withBias then
                            for oi in 0 .. og - 1 do
                                Span<'T>(scratch, outStart + (gi * og + oi) * lp, lp).Fill(bias[gi * og + oi])

                        panelB (
                            opad,
                            lp,
                            kg,
                            NativePtr.add pw (gi * kg * opad),
                            opad,
                            NativePtr.add ps (gi * src.GroupStride),
                            po,
                            NativePtr.add ps (outStart + gi * og * lp),
                            lp,
                            withBias
                        )

                    if rs = g.OutW then
                        for oi in 0 .. o - 1 do
                            ReadOnlySpan<'T>(scratch, outStart + oi * lp, g.Positions)
                                .CopyTo(Span<'T>(y, (n * o + oi) * g.Positions, g.Positions))
                    else
                        use py = fixed y

                        for oi in 0 .. o - 1 do
                            copyRows
                                (NativePtr.add ps (outStart + oi * lp))
                                rs
                                (NativePtr.add py ((n * o + oi) * g.Positions))
                                g.OutW
                                g.OutH
                                g.OutW

                    n <- samples.Take())
            |> ignore

    /// dx [batch; C; H; W] from w [O; C/groups; kh; kw] and dy [batch; O; OutH; OutW].
    let inline private backwardData
        ([<InlineIfLambda>] panelB:
            int * int * int * nativeptr<'T> * int * nativeptr<'T> * nativeptr<int> * nativeptr<'T> * int * bool -> unit)
        (forwardOf: ConvGeometry -> int -> 'T[] -> 'T[] -> 'T[] -> 'T[] -> unit)
        (channelBlock: ConvGeometry -> int)
        (scratchOf: int -> 'T[])
        (nr: int)
        (cg: ConvGeometry)
        (batch: int)
        (w: 'T[])
        (dy: 'T[])
        (dx: 'T[])
        =
        let g = cg.Window
        let mr = ConvTiles.mr

        let groups, kg, og, o, cgc =
            cg.Groups, cg.GroupRows, cg.GroupOutputs, cg.OutChannels, cg.GroupChannels

        let kh, kw = g.KernelH, g.KernelW
        let flippedPadH = g.DilationH * (kh - 1) - g.PadH
        let flippedPadW = g.DilationW * (kw - 1) - g.PadW

        // The transposed convolution of stride 1 is a convolution: dy padded by the kernel's span
        // minus the padding, with the kernel flipped and its in/out channels swapped.
        let transposed =
            {
                Window =
                    {
                        Channels = o
                        Height = g.OutH
                        Width = g.OutW
                        KernelH = kh
                        KernelW = kw
                        StrideH = 1
                        StrideW = 1
                        PadH = flippedPadH
                        PadW = flippedPadW
                        DilationH = g.DilationH
                        DilationW = g.DilationW
                        OutH = g.Height
                        OutW = g.Width
                    }
                Groups = groups
                OutChannels = g.Channels
            }

        // Multiply-adds of the tiles either way (the fold counted as two per patch entry): the
        // flipped convolution's tiles have C/groups rows, which wastes most of a tile when the
        // input has few channels (C = 1: 7 of 8 rows).
        let l = g.Positions

        let implicitCost =
            match channelBlock transposed with
            | 0 ->
                // Output H × W in row chunks of nr / 2 lanes.
                let columns = g.Height * roundUp g.Width (nr / 2)
                int64 (roundUp cgc mr) * int64 columns * int64 (og * kh * kw)
            | cb ->
                // The channels-in-lanes tiles: C/groups in blocks of cb.
                int64 (roundUp cgc cb)
                * int64 (tiledPositions cb g.Height g.Width)
                * int64 (og * kh * kw)

        let explicitCost =
            int64 (roundUp kg mr) * int64 (roundUp l nr) * int64 og
            + 2L * int64 g.Rows * int64 l

        if
            g.StrideH = 1
            && g.StrideW = 1
            && flippedPadH >= 0
            && flippedPadW >= 0
            && implicitCost <= explicitCost
        then
            let flipped = Array.zeroCreate<'T> w.Length

            for gi in 0 .. groups - 1 do
                for oi in 0 .. og - 1 do
                    for ci in 0 .. cgc - 1 do
                        for i in 0 .. kh - 1 do
                            for j in 0 .. kw - 1 do
                                flipped[(((gi * cgc + ci) * og + oi) * kh + i) * kw + j] <-
                                    w[(((gi * og + oi) * cgc + ci) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)]

            forwardOf transposed batch dy flipped null dx
        else
            // Patches' gradient Wᵀ · dy per sample, folded back.
            let lp, kpad = roundUp l nr, roundUp kg mr
            // Weights per group as [og; kpad] with zero columns past kg: Wᵀ's tile rows (patch
            // rows) are consecutive scalars of one output channel's weights.
            let wd = Array.zeroCreate<'T> (groups * og * kpad)

            for gi in 0 .. groups - 1 do
                for oi in 0 .. og - 1 do
                    Array.Copy(w, (gi * og + oi) * kg, wd, (gi * og + oi) * kpad, kg)

            let offsets = Array.init og (fun oi -> oi * lp)
            let layout = { SampleStride = 0; RowStride = lp }
            // Scratch: the patches' gradient [k (+ mr); lp], then the sample's dy [o; lp].
            let dyStart = (g.Rows + mr) * lp

            split batch (macs cg batch) (fun _ samples ->
                let scratch = scratchOf (dyStart + o * lp)

                // The copies below fill columns [0, l) of each dy row; the tiles also read the
                // columns up to lp, which must not hold leftovers (denormals there made the AVX2
                // input gradient of a 16 -> 32 layer 10-30 times slower).
                for oi in 0 .. o - 1 do
                    Span<'T>(scratch, dyStart + oi * lp + l, lp - l).Clear()

                use ps = fixed scratch
                use pw = fixed wd
                use po = fixed offsets

                let mutable n = samples.Take()

                while n >= 0 do
                    for oi in 0 .. o - 1 do
                        ReadOnlySpan<'T>(dy, (n * o + oi) * l, l).CopyTo(Span<'T>(scratch, dyStart + oi * lp, l))

                    for gi in 0 .. groups - 1 do
                        panelB (
                            kpad,
                            lp,
                            og,
                            NativePtr.add pw (gi * og * kpad),
                            kpad,
                            NativePtr.add ps (dyStart + gi * og * lp),
                            po,
                            NativePtr.add ps (gi * kg * lp),
                            lp,
                            false
                        )

                    Convolution.FoldPlanes(g, layout, scratch, dx, n * g.Channels, (n + 1) * g.Channels, true)

                    n <- samples.Take())
            |> ignore

    let forwardS (cg, batch, x: float32[], w, bias, y) =
        match blockP cg with
        | 0 -> forward ConvTiles.panelBS ConvRowTiles.panelRS ConvScratch.F32 ConvTiles.nr<float32> cg batch x w bias y
        | cb -> forwardP cb cg batch x w bias y

    let forwardD (cg, batch, x: float[], w, bias, y) =
        forward ConvTiles.panelBD ConvRowTiles.panelRD ConvScratch.F64 ConvTiles.nr<float> cg batch x w bias y

    let backwardDataS (cg, batch, w: float32[], dy, dx) =
        backwardData
            ConvTiles.panelBS
            (fun cg batch x w bias y -> forwardS (cg, batch, x, w, bias, y))
            blockP
            ConvScratch.F32
            ConvTiles.nr<float32>
            cg
            batch
            w
            dy
            dx

    let backwardDataD (cg, batch, w: float[], dy, dx) =
        backwardData
            ConvTiles.panelBD
            (fun cg batch x w bias y -> forwardD (cg, batch, x, w, bias, y))
            (fun _ -> 0)
            ConvScratch.F64
            ConvTiles.nr<float>
            cg
            batch
            w
            dy
            dx
