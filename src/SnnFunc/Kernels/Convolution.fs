/// Loops of convolution and pooling: im2col (unfold) and its transpose col2im (fold) over NCHW
/// planes with implicit zero padding, stride and dilation.
namespace SnnFunc.Kernels

open System
open System.Numerics
open System.Numerics.Tensors
open System.Runtime.CompilerServices

/// The geometry of a sliding window over one [H; W] plane (1-d: H = 1 and a 1-row kernel): kernel
/// extent, stride, zero padding on both sides, dilation, and the output extent OutH × OutW
/// (out = (in + 2 pad - dilation (kernel - 1) - 1) / stride + 1). Validated by the caller.
[<Struct>]
type WindowGeometry =
    {
        Channels: int
        Height: int
        Width: int
        KernelH: int
        KernelW: int
        StrideH: int
        StrideW: int
        PadH: int
        PadW: int
        DilationH: int
        DilationW: int
        OutH: int
        OutW: int
    }

    /// Rows of one sample's patch matrix: Channels · KernelH · KernelW.
    member g.Rows = g.Channels * g.KernelH * g.KernelW
    /// Columns of one sample's patch matrix (output positions): OutH · OutW.
    member g.Positions = g.OutH * g.OutW

/// Where a sample's patch matrix lies in the buffer: element (row r, position l) of sample n is at
/// n · SampleStride + r · RowStride + l. [N; rows; positions] (PyTorch's unfold) has SampleStride =
/// rows · positions and RowStride = positions; [rows; N; positions] (one GEMM over the whole
/// batch) has SampleStride = positions and RowStride = N · positions.
[<Struct>]
type PatchLayout = { SampleStride: int; RowStride: int }

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
        lo, max lo hi

    /// Runs body over [0, units) split into contiguous ranges on up to Parallelism.MaxThreads
    /// threads when `work` (elements touched) pays for the hand-over (GEMM's spinning workers, so
    /// a call between two GEMMs costs microseconds).
    static member private Split(units: int, work: int64, body: int -> int -> unit) =
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

    /// Patches of planes [p0, p1) (plane = sample · Channels + channel).
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member private UnfoldPlanes<'T when 'T :> INumberBase<'T>>
        (g: WindowGeometry, layout: PatchLayout, x: 'T[], patches: 'T[], p0: int, p1: int)
        =
        let kk = g.KernelH * g.KernelW
        let planeSize = g.Height * g.Width

        for p in p0 .. p1 - 1 do
            let n, c = p / g.Channels, p % g.Channels
            let plane = p * planeSize

            for i in 0 .. g.KernelH - 1 do
                for j in 0 .. g.KernelW - 1 do
                    let row = c * kk + i * g.KernelW + j
                    let rowStart = n * layout.SampleStride + row * layout.RowStride

                    let lo, hi =
                        Convolution.ValidRange(g.Width, g.PadW, g.StrideW, g.DilationW, g.OutW, j)

                    let shift = j * g.DilationW - g.PadW

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
                                Array.Copy(x, src, patches, dst + lo, hi - lo)
                            else
                                let mutable s = src

                                for ow in lo .. hi - 1 do
                                    patches[dst + ow] <- x[s]
                                    s <- s + g.StrideW

    /// Planes [p0, p1) of the fold: each plane is cleared, then every patch entry is added at the
    /// input position it was read from (entries that read padding are dropped).
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member private FoldPlanes<'T when 'T :> INumberBase<'T>>
        (g: WindowGeometry, layout: PatchLayout, patches: 'T[], x: 'T[], p0: int, p1: int)
        =
        let kk = g.KernelH * g.KernelW
        let planeSize = g.Height * g.Width

        for p in p0 .. p1 - 1 do
            let n, c = p / g.Channels, p % g.Channels
            let plane = p * planeSize
            Span<'T>(x, plane, planeSize).Clear()

            for i in 0 .. g.KernelH - 1 do
                for j in 0 .. g.KernelW - 1 do
                    let row = c * kk + i * g.KernelW + j
                    let rowStart = n * layout.SampleStride + row * layout.RowStride

                    let lo, hi =
                        Convolution.ValidRange(g.Width, g.PadW, g.StrideW, g.DilationW, g.OutW, j)

                    let shift = j * g.DilationW - g.PadW

                    if hi > lo then
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
        Convolution.Split(planes, work, fun p0 p1 -> Convolution.FoldPlanes(g, layout, patches, x, p0, p1))
