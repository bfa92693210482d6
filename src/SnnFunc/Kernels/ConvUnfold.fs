/// Loops of convolution and pooling: im2col (unfold) and its transpose col2im (fold) over NCHW
/// planes with implicit zero padding, stride and dilation.
namespace SnnFunc.Kernels

open System
open System.Numerics
open System.Numerics.Tensors

[<AbstractClass; Sealed>]
type Convolution =

    /// The output columns [lo, hi) of kernel column j whose input column lies inside [0, extent):
    /// the others read padding.
    static member private ValidRange(extent: int, pad: int, stride: int, dilation: int, outExtent: int, j: int) =
        let first = pad - j * dilation // ow · stride >= first
        let last = extent - 1 + pad - j * dilation // ow · stride <= last

        let lo =
            if first <= 0 then
                0
            else
                min outExtent ((first + stride - 1) / stride)

        let hi = if last < 0 then 0 else min outExtent (last / stride + 1)
        struct (lo, max lo hi)

    /// Runs body over [0, units) split into contiguous ranges on up to Parallelism.MaxThreads
    /// threads when `work` (elements touched) pays for the hand-over (GEMM's spinning workers, so
    /// a call between two GEMMs costs microseconds).
    static member internal Split(units: int, work: int64, body: int -> int -> unit) =
        let t =
            if work < 65_536L then
                1
            else
                min (min Parallelism.MaxThreads Environment.ProcessorCount) units

        if t <= 1 then
            body 0 units
        else
            let per, extra = units / t, units % t

            GemmImpl.forkJoin t (fun w ->
                let u0 = w * per + min w extra
                body u0 (u0 + per + (if w < extra then 1 else 0)))

    /// True when a patch row is the input plane shifted by a constant offset (stride 1, output as
    /// wide as the input, i.e. "same" padding): it is then copied as one block, and only the entries
    /// that wrap around a row edge into the padding are fixed up.
    static member private IsShift(g: WindowGeometry) =
        g.StrideH = 1 && g.StrideW = 1 && g.OutW = g.Width

    /// The output rows [lo, hi) of kernel row i whose input row lies inside the plane.
    static member private ValidRows(g: WindowGeometry, i: int) =
        let lo = max 0 (g.PadH - i * g.DilationH)
        let hi = min g.OutH (g.Height + g.PadH - i * g.DilationH)
        struct (lo, max lo hi)

    /// Zeroes columns [0, lo) and [hi, width) of `rows` rows of `width` elements starting at
    /// `start`: the entries of a shifted patch row that wrapped around a row edge. Column by column,
    /// so each is one tight strided loop (the usual padding leaves one or two such columns).
    static member private ZeroColumns<'T when 'T :> INumberBase<'T>>(a: 'T[], start: int, width: int, rows: int, lo: int, hi: int) =
        let column (q: int) =
            let mutable r = start + q

            for _ in 1..rows do
                a[r] <- 'T.Zero
                r <- r + width

        for q in 0 .. lo - 1 do
            column q

        for q in hi .. width - 1 do
            column q

    /// Patches of planes [p0, p1) (plane = sample · Channels + channel).
    static member internal UnfoldPlanes<'T when 'T :> INumberBase<'T>>
        (g: WindowGeometry, layout: PatchLayout, x: 'T[], patches: 'T[], p0: int, p1: int)
        =
        let kk = g.KernelH * g.KernelW
        let planeSize = g.Height * g.Width
        let shiftRows = Convolution.IsShift g

        for p in p0 .. p1 - 1 do
            let n, c = p / g.Channels, p % g.Channels
            let plane = p * planeSize

            for i in 0 .. g.KernelH - 1 do
                for j in 0 .. g.KernelW - 1 do
                    let row = c * kk + i * g.KernelW + j
                    let rowStart = n * layout.SampleStride + row * layout.RowStride

                    let struct (lo, hi) =
                        Convolution.ValidRange(g.Width, g.PadW, g.StrideW, g.DilationW, g.OutW, j)

                    let shift = j * g.DilationW - g.PadW

                    if shiftRows then
                        let struct (ohLo, ohHi) = Convolution.ValidRows(g, i)

                        if ohHi = ohLo || hi = lo then
                            Span<'T>(patches, rowStart, g.Positions).Clear()
                        else
                            let ow = g.OutW

                            if ohLo > 0 then
                                Span<'T>(patches, rowStart, ohLo * ow).Clear()

                            if ohHi < g.OutH then
                                Span<'T>(patches, rowStart + ohHi * ow, (g.OutH - ohHi) * ow).Clear()

                            let first = ohLo * ow + lo
                            let src = plane + (ohLo - g.PadH + i * g.DilationH) * g.Width + lo + shift
                            let count = (ohHi - 1) * ow + hi - first
                            ReadOnlySpan<'T>(x, src, count).CopyTo(Span<'T>(patches, rowStart + first, count))

                            Convolution.ZeroColumns(patches, rowStart + ohLo * ow, ow, ohHi - ohLo, lo, hi)
                    else
                        for oh in 0 .. g.OutH - 1 do
                            let ih = oh * g.StrideH - g.PadH + i * g.DilationH
                            let dst = rowStart + oh * g.OutW

                            if ih < 0 || ih >= g.Height || hi = lo then
                                Span<'T>(patches, dst, g.OutW).Clear()
                            else
                                if lo > 0 then
                                    Span<'T>(patches, dst, lo).Clear()

                                if hi < g.OutW then
                                    Span<'T>(patches, dst + hi, g.OutW - hi).Clear()

                                let src = plane + ih * g.Width + lo * g.StrideW + shift

                                if g.StrideW = 1 then
                                    ReadOnlySpan<'T>(x, src, hi - lo).CopyTo(Span<'T>(patches, dst + lo, hi - lo))
                                else
                                    let mutable s = src

                                    for ow in lo .. hi - 1 do
                                        patches[dst + ow] <- x[s]
                                        s <- s + g.StrideW

    /// Planes [p0, p1) of the fold: each plane is cleared, then every patch entry is added at the
    /// input position it was read from (entries that read padding are dropped). With `scratch`, the
    /// patches may be modified: shifted rows (see IsShift) are then added as one block after their
    /// padding entries are zeroed.
    static member internal FoldPlanes<'T when 'T :> INumberBase<'T>>
        (g: WindowGeometry, layout: PatchLayout, patches: 'T[], x: 'T[], p0: int, p1: int, scratch: bool)
        =
        let kk = g.KernelH * g.KernelW
        let planeSize = g.Height * g.Width
        let shiftRows = scratch && Convolution.IsShift g

        for p in p0 .. p1 - 1 do
            let n, c = p / g.Channels, p % g.Channels
            let plane = p * planeSize
            Span<'T>(x, plane, planeSize).Clear()

            for i in 0 .. g.KernelH - 1 do
                for j in 0 .. g.KernelW - 1 do
                    let row = c * kk + i * g.KernelW + j
                    let rowStart = n * layout.SampleStride + row * layout.RowStride

                    let struct (lo, hi) =
                        Convolution.ValidRange(g.Width, g.PadW, g.StrideW, g.DilationW, g.OutW, j)

                    let shift = j * g.DilationW - g.PadW

                    if shiftRows then
                        let struct (ohLo, ohHi) = Convolution.ValidRows(g, i)

                        if ohHi > ohLo && hi > lo then
                            let ow = g.OutW

                            Convolution.ZeroColumns(patches, rowStart + ohLo * ow, ow, ohHi - ohLo, lo, hi)

                            let first = ohLo * ow + lo
                            let count = (ohHi - 1) * ow + hi - first
                            let dst = plane + (ohLo - g.PadH + i * g.DilationH) * g.Width + lo + shift
                            let target = Span<'T>(x, dst, count)

                            TensorPrimitives.Add<'T>(
                                Span<'T>.op_Implicit target,
                                ReadOnlySpan<'T>(patches, rowStart + first, count),
                                target
                            )
                    elif hi > lo then
                        for oh in 0 .. g.OutH - 1 do
                            let ih = oh * g.StrideH - g.PadH + i * g.DilationH

                            if ih >= 0 && ih < g.Height then
                                let src = rowStart + oh * g.OutW + lo
                                let dst = plane + ih * g.Width + lo * g.StrideW + shift

                                if g.StrideW = 1 then
                                    let target = Span<'T>(x, dst, hi - lo)
                                    TensorPrimitives.Add<'T>(Span<'T>.op_Implicit target, ReadOnlySpan<'T>(patches, src, hi - lo), target)
                                else
                                    let mutable d = dst

                                    for l in src .. src + hi - lo - 1 do
                                        x[d] <- x[d] + patches[l]
                                        d <- d + g.StrideW

    /// im2col: the patch matrices of `batch` samples x [batch; Channels; Height; Width] into
    /// `patches` (every entry written). Row r = (c · KernelH + i) · KernelW + j holds input channel
    /// c at kernel offset (i, j) — torch.nn.functional.unfold's order — and column l = oh · OutW + ow
    /// the output position; entries that fall in the padding are 0.
    static member Unfold<'T when 'T :> INumberBase<'T>>(g: WindowGeometry, batch: int, x: 'T[], layout: PatchLayout, patches: 'T[]) =
        let planes = batch * g.Channels
        let work = int64 planes * int64 (g.KernelH * g.KernelW) * int64 g.Positions
        Convolution.Split(planes, work, fun p0 p1 -> Convolution.UnfoldPlanes(g, layout, x, patches, p0, p1))

    /// col2im, the transpose of Unfold: x [batch; Channels; Height; Width] (every entry written)
    /// receives the sum of the patch entries read from each input position.
    static member Fold<'T when 'T :> INumberBase<'T>>(g: WindowGeometry, batch: int, patches: 'T[], layout: PatchLayout, x: 'T[]) =
        let planes = batch * g.Channels
        let work = int64 planes * int64 (g.KernelH * g.KernelW) * int64 g.Positions
        Convolution.Split(planes, work, fun p0 p1 -> Convolution.FoldPlanes(g, layout, patches, x, p0, p1, false))
