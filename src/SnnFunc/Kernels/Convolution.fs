/// Loops of convolution and pooling: im2col (unfold) and its transpose col2im (fold) over NCHW
/// planes with implicit zero padding, stride and dilation.
namespace SnnFunc.Kernels

open System
open System.Numerics
open System.Numerics.Tensors
open System.Runtime.CompilerServices
open System.Threading
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open Microsoft.FSharp.NativeInterop

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

/// The sizes of a convolution: the window over each input plane, the groups (input channels,
/// output channels and weight rows split into that many independent blocks) and the output channels.
[<Struct>]
type ConvGeometry =
    {
        Window: WindowGeometry
        Groups: int
        OutChannels: int
    }

    /// Input channels per group.
    member g.GroupChannels = g.Window.Channels / g.Groups
    /// Patch rows per group (input channels per group · kernel size): the inner dimension.
    member g.GroupRows = g.GroupChannels * g.Window.KernelH * g.Window.KernelW
    /// Output channels per group.
    member g.GroupOutputs = g.OutChannels / g.Groups

/// Register tiles of the convolution's products, C[mr × nr] (+)= Σ_p A[r, p] · B[p, 0 .. nr), in
/// two forms. `tileB`: A packed (the mr scalars of step p consecutive, steps aps apart), B's row p at
/// b + boffs[p] — a patch matrix's rows, or, for stride 1, shifted views of the zero-padded input
/// planes themselves (the patch matrix is never built). `tileA`: A's row r at a + aoffs[r],
/// advancing by one element per step (rows of the patch matrix, explicit or shifted views), B's row
/// p at b + p · ldb. Callers pad every operand to whole tiles.
module internal ConvTiles =

    /// 2: AVX-512 (8 × 2 zmm tiles), 1: AVX2 + FMA (4 × 2 ymm), 0: portable (4 × 4).
    let path =
        if Vector512.IsHardwareAccelerated && Avx512F.IsSupported then
            2
        elif Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported then
            1
        else
            0

    /// Tile rows.
    let mr = if path = 2 then 8 else 4

    /// Tile columns for element type 'T.
    let nr<'T> =
        if path = 2 then 2 * Vector512<'T>.Count
        elif path = 1 then 2 * Vector256<'T>.Count
        else 4

    /// 8 × 2 zmm, A packed, B rows by offset table: 16 accumulators, two B loads and eight
    /// broadcasts per step.
    let inline private tileB512
        ([<InlineIfLambda>] fma: Vector512<'T> -> Vector512<'T> -> Vector512<'T> -> Vector512<'T>)
        (kc: int)
        (a: nativeptr<'T>)
        (aps: int)
        (b: nativeptr<'T>)
        (boffs: nativeptr<int>)
        (c: nativeptr<'T>)
        (ldc: int)
        (add: bool)
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
            let pb = NativePtr.add b (NativePtr.read po)
            let b0 = Vector512.Load<'T> pb
            let b1 = Vector512.Load<'T>(NativePtr.add pb w)
            let x = Vector512.Create<'T>(NativePtr.read pa)
            s00 <- fma x b0 s00
            s01 <- fma x b1 s01
            let x = Vector512.Create<'T>(NativePtr.get pa 1)
            s10 <- fma x b0 s10
            s11 <- fma x b1 s11
            let x = Vector512.Create<'T>(NativePtr.get pa 2)
            s20 <- fma x b0 s20
            s21 <- fma x b1 s21
            let x = Vector512.Create<'T>(NativePtr.get pa 3)
            s30 <- fma x b0 s30
            s31 <- fma x b1 s31
            let x = Vector512.Create<'T>(NativePtr.get pa 4)
            s40 <- fma x b0 s40
            s41 <- fma x b1 s41
            let x = Vector512.Create<'T>(NativePtr.get pa 5)
            s50 <- fma x b0 s50
            s51 <- fma x b1 s51
            let x = Vector512.Create<'T>(NativePtr.get pa 6)
            s60 <- fma x b0 s60
            s61 <- fma x b1 s61
            let x = Vector512.Create<'T>(NativePtr.get pa 7)
            s70 <- fma x b0 s70
            s71 <- fma x b1 s71
            pa <- NativePtr.add pa aps
            po <- NativePtr.add po 1

        let inline put (row: int) (v0: Vector512<'T>) (v1: Vector512<'T>) =
            let p = NativePtr.add c (row * ldc)
            let q = NativePtr.add p w

            if add then
                Vector512.Store<'T>(Vector512.Load<'T> p + v0, p)
                Vector512.Store<'T>(Vector512.Load<'T> q + v1, q)
            else
                Vector512.Store<'T>(v0, p)
                Vector512.Store<'T>(v1, q)

        put 0 s00 s01
        put 1 s10 s11
        put 2 s20 s21
        put 3 s30 s31
        put 4 s40 s41
        put 5 s50 s51
        put 6 s60 s61
        put 7 s70 s71

    /// 8 × 2 zmm, A rows by offset table, B rows ldb apart.
    let inline private tileA512
        ([<InlineIfLambda>] fma: Vector512<'T> -> Vector512<'T> -> Vector512<'T> -> Vector512<'T>)
        (kc: int)
        (rowLen: int)
        (rowSkip: int)
        (a: nativeptr<'T>)
        (aoffs: nativeptr<int>)
        (b: nativeptr<'T>)
        (ldb: int)
        (c: nativeptr<'T>)
        (ldc: int)
        (add: bool)
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
        let o0 = NativePtr.read aoffs

        let r1, r2, r3 =
            NativePtr.get aoffs 1 - o0, NativePtr.get aoffs 2 - o0, NativePtr.get aoffs 3 - o0

        let r4, r5, r6 =
            NativePtr.get aoffs 4 - o0, NativePtr.get aoffs 5 - o0, NativePtr.get aoffs 6 - o0

        let r7 = NativePtr.get aoffs 7 - o0
        let mutable pa = NativePtr.add a o0
        let mutable pb = b

        // kc steps in rows of rowLen, the A rows skipping rowSkip elements between rows (the
        // padded width's extra columns, which hold no positions).
        for _ in 1 .. kc / rowLen do
            for _ in 1..rowLen do
                let b0 = Vector512.Load<'T> pb
                let b1 = Vector512.Load<'T>(NativePtr.add pb w)
                let x = Vector512.Create<'T>(NativePtr.read pa)
                s00 <- fma x b0 s00
                s01 <- fma x b1 s01
                let x = Vector512.Create<'T>(NativePtr.get pa r1)
                s10 <- fma x b0 s10
                s11 <- fma x b1 s11
                let x = Vector512.Create<'T>(NativePtr.get pa r2)
                s20 <- fma x b0 s20
                s21 <- fma x b1 s21
                let x = Vector512.Create<'T>(NativePtr.get pa r3)
                s30 <- fma x b0 s30
                s31 <- fma x b1 s31
                let x = Vector512.Create<'T>(NativePtr.get pa r4)
                s40 <- fma x b0 s40
                s41 <- fma x b1 s41
                let x = Vector512.Create<'T>(NativePtr.get pa r5)
                s50 <- fma x b0 s50
                s51 <- fma x b1 s51
                let x = Vector512.Create<'T>(NativePtr.get pa r6)
                s60 <- fma x b0 s60
                s61 <- fma x b1 s61
                let x = Vector512.Create<'T>(NativePtr.get pa r7)
                s70 <- fma x b0 s70
                s71 <- fma x b1 s71
                pa <- NativePtr.add pa 1
                pb <- NativePtr.add pb ldb

            pa <- NativePtr.add pa rowSkip

        let inline put (row: int) (v0: Vector512<'T>) (v1: Vector512<'T>) =
            let p = NativePtr.add c (row * ldc)
            let q = NativePtr.add p w

            if add then
                Vector512.Store<'T>(Vector512.Load<'T> p + v0, p)
                Vector512.Store<'T>(Vector512.Load<'T> q + v1, q)
            else
                Vector512.Store<'T>(v0, p)
                Vector512.Store<'T>(v1, q)

        put 0 s00 s01
        put 1 s10 s11
        put 2 s20 s21
        put 3 s30 s31
        put 4 s40 s41
        put 5 s50 s51
        put 6 s60 s61
        put 7 s70 s71

    /// 4 × 2 ymm (AVX2 has 16 registers), A packed, B rows by offset table.
    let inline private tileB256
        ([<InlineIfLambda>] fma: Vector256<'T> -> Vector256<'T> -> Vector256<'T> -> Vector256<'T>)
        (kc: int)
        (a: nativeptr<'T>)
        (aps: int)
        (b: nativeptr<'T>)
        (boffs: nativeptr<int>)
        (c: nativeptr<'T>)
        (ldc: int)
        (add: bool)
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
            let pb = NativePtr.add b (NativePtr.read po)
            let b0 = Vector256.Load<'T> pb
            let b1 = Vector256.Load<'T>(NativePtr.add pb w)
            let x = Vector256.Create<'T>(NativePtr.read pa)
            s00 <- fma x b0 s00
            s01 <- fma x b1 s01
            let x = Vector256.Create<'T>(NativePtr.get pa 1)
            s10 <- fma x b0 s10
            s11 <- fma x b1 s11
            let x = Vector256.Create<'T>(NativePtr.get pa 2)
            s20 <- fma x b0 s20
            s21 <- fma x b1 s21
            let x = Vector256.Create<'T>(NativePtr.get pa 3)
            s30 <- fma x b0 s30
            s31 <- fma x b1 s31
            pa <- NativePtr.add pa aps
            po <- NativePtr.add po 1

        let inline put (row: int) (v0: Vector256<'T>) (v1: Vector256<'T>) =
            let p = NativePtr.add c (row * ldc)
            let q = NativePtr.add p w

            if add then
                Vector256.Store<'T>(Vector256.Load<'T> p + v0, p)
                Vector256.Store<'T>(Vector256.Load<'T> q + v1, q)
            else
                Vector256.Store<'T>(v0, p)
                Vector256.Store<'T>(v1, q)

        put 0 s00 s01
        put 1 s10 s11
        put 2 s20 s21
        put 3 s30 s31

    /// 4 × 2 ymm, A rows by offset table, B rows ldb apart.
    let inline private tileA256
        ([<InlineIfLambda>] fma: Vector256<'T> -> Vector256<'T> -> Vector256<'T> -> Vector256<'T>)
        (kc: int)
        (rowLen: int)
        (rowSkip: int)
        (a: nativeptr<'T>)
        (aoffs: nativeptr<int>)
        (b: nativeptr<'T>)
        (ldb: int)
        (c: nativeptr<'T>)
        (ldc: int)
        (add: bool)
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
        let o0 = NativePtr.read aoffs

        let r1, r2, r3 =
            NativePtr.get aoffs 1 - o0, NativePtr.get aoffs 2 - o0, NativePtr.get aoffs 3 - o0

        let mutable pa = NativePtr.add a o0
        let mutable pb = b

        // kc steps in rows of rowLen, the A rows skipping rowSkip elements between rows (the
        // padded width's extra columns, which hold no positions).
        for _ in 1 .. kc / rowLen do
            for _ in 1..rowLen do
                let b0 = Vector256.Load<'T> pb
                let b1 = Vector256.Load<'T>(NativePtr.add pb w)
                let x = Vector256.Create<'T>(NativePtr.read pa)
                s00 <- fma x b0 s00
                s01 <- fma x b1 s01
                let x = Vector256.Create<'T>(NativePtr.get pa r1)
                s10 <- fma x b0 s10
                s11 <- fma x b1 s11
                let x = Vector256.Create<'T>(NativePtr.get pa r2)
                s20 <- fma x b0 s20
                s21 <- fma x b1 s21
                let x = Vector256.Create<'T>(NativePtr.get pa r3)
                s30 <- fma x b0 s30
                s31 <- fma x b1 s31
                pa <- NativePtr.add pa 1
                pb <- NativePtr.add pb ldb

            pa <- NativePtr.add pa rowSkip

        let inline put (row: int) (v0: Vector256<'T>) (v1: Vector256<'T>) =
            let p = NativePtr.add c (row * ldc)
            let q = NativePtr.add p w

            if add then
                Vector256.Store<'T>(Vector256.Load<'T> p + v0, p)
                Vector256.Store<'T>(Vector256.Load<'T> q + v1, q)
            else
                Vector256.Store<'T>(v0, p)
                Vector256.Store<'T>(v1, q)

        put 0 s00 s01
        put 1 s10 s11
        put 2 s20 s21
        put 3 s30 s31

    /// 4 × 4 in scalar arithmetic (no SIMD), A packed, B rows by offset table.
    let inline private tileBScalar
        (kc: int)
        (a: nativeptr< ^T >)
        (aps: int)
        (b: nativeptr< ^T >)
        (boffs: nativeptr<int>)
        (c: nativeptr< ^T >)
        (ldc: int)
        (add: bool)
        =
        for r in 0..3 do
            for j in 0..3 do
                let mutable s =
                    if add then
                        NativePtr.get c (r * ldc + j)
                    else
                        LanguagePrimitives.GenericZero< ^T>

                for p in 0 .. kc - 1 do
                    s <- s + NativePtr.get a (p * aps + r) * NativePtr.get b (NativePtr.get boffs p + j)

                NativePtr.set c (r * ldc + j) s

    /// 4 × 4 in scalar arithmetic, A rows by offset table.
    let inline private tileAScalar
        (kc: int)
        (rowLen: int)
        (rowSkip: int)
        (a: nativeptr< ^T >)
        (aoffs: nativeptr<int>)
        (b: nativeptr< ^T >)
        (ldb: int)
        (c: nativeptr< ^T >)
        (ldc: int)
        (add: bool)
        =
        for r in 0..3 do
            for j in 0..3 do
                let mutable s =
                    if add then
                        NativePtr.get c (r * ldc + j)
                    else
                        LanguagePrimitives.GenericZero< ^T>

                for p in 0 .. kc - 1 do
                    let q = p / rowLen * (rowLen + rowSkip) + p % rowLen
                    s <- s + NativePtr.get a (NativePtr.get aoffs r + q) * NativePtr.get b (p * ldb + j)

                NativePtr.set c (r * ldc + j) s

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileBS512 (kc, a: nativeptr<float32>, aps, b, boffs, c, ldc, add) =
        tileB512 (fun (x: Vector512<float32>) y z -> Avx512F.FusedMultiplyAdd(x, y, z)) kc a aps b boffs c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileBD512 (kc, a: nativeptr<float>, aps, b, boffs, c, ldc, add) =
        tileB512 (fun (x: Vector512<float>) y z -> Avx512F.FusedMultiplyAdd(x, y, z)) kc a aps b boffs c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileBS256 (kc, a: nativeptr<float32>, aps, b, boffs, c, ldc, add) =
        tileB256 (fun (x: Vector256<float32>) y z -> Fma.MultiplyAdd(x, y, z)) kc a aps b boffs c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileBD256 (kc, a: nativeptr<float>, aps, b, boffs, c, ldc, add) =
        tileB256 (fun (x: Vector256<float>) y z -> Fma.MultiplyAdd(x, y, z)) kc a aps b boffs c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileBSScalar (kc, a: nativeptr<float32>, aps, b, boffs, c, ldc, add) = tileBScalar kc a aps b boffs c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileBDScalar (kc, a: nativeptr<float>, aps, b, boffs, c, ldc, add) = tileBScalar kc a aps b boffs c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileAS512 (kc, rowLen, rowSkip, a: nativeptr<float32>, aoffs, b, ldb, c, ldc, add) =
        tileA512 (fun (x: Vector512<float32>) y z -> Avx512F.FusedMultiplyAdd(x, y, z)) kc rowLen rowSkip a aoffs b ldb c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileAD512 (kc, rowLen, rowSkip, a: nativeptr<float>, aoffs, b, ldb, c, ldc, add) =
        tileA512 (fun (x: Vector512<float>) y z -> Avx512F.FusedMultiplyAdd(x, y, z)) kc rowLen rowSkip a aoffs b ldb c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileAS256 (kc, rowLen, rowSkip, a: nativeptr<float32>, aoffs, b, ldb, c, ldc, add) =
        tileA256 (fun (x: Vector256<float32>) y z -> Fma.MultiplyAdd(x, y, z)) kc rowLen rowSkip a aoffs b ldb c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileAD256 (kc, rowLen, rowSkip, a: nativeptr<float>, aoffs, b, ldb, c, ldc, add) =
        tileA256 (fun (x: Vector256<float>) y z -> Fma.MultiplyAdd(x, y, z)) kc rowLen rowSkip a aoffs b ldb c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileASScalar (kc, rowLen, rowSkip, a: nativeptr<float32>, aoffs, b, ldb, c, ldc, add) =
        tileAScalar kc rowLen rowSkip a aoffs b ldb c ldc add

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileADScalar (kc, rowLen, rowSkip, a: nativeptr<float>, aoffs, b, ldb, c, ldc, add) =
        tileAScalar kc rowLen rowSkip a aoffs b ldb c ldc add

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

    /// Positions of one tileP512: a row chunk of the output.
    let tilePositions = 14

    /// 14 positions × 32 output channels (two zmm per position), for stride-1 convolutions with
    /// 32k output channels per group: every lane does useful work, whatever the output width. A
    /// packed [k; 32] (the step's 32 weights, two loads), one broadcast per position of the
    /// shifted input row at b + boffs[p] (positions consecutive); the sums start at init (+ r ·
    /// initStride for position r: the bias with stride 0, or c for later slices of the inner
    /// dimension) and go to c + 32 r ([position; 32] scratch, transposed into the output later).
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileP512
        (kc: int)
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

        for _ in 1..kc do
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


    /// tileP512 for 16 output channels (one zmm per position): 14 sums, one weight load and 14
    /// broadcasts per step; c holds [position; 16].
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private tileP512x1
        (kc: int)
        (a: nativeptr<float32>)
        (b: nativeptr<float32>)
        (boffs: nativeptr<int>)
        (init: nativeptr<float32>)
        (initStride: int)
        (c: nativeptr<float32>)
        =
        let mutable s0 = Vector512.Load(NativePtr.add init (0 * initStride))
        let mutable s1 = Vector512.Load(NativePtr.add init (1 * initStride))
        let mutable s2 = Vector512.Load(NativePtr.add init (2 * initStride))
        let mutable s3 = Vector512.Load(NativePtr.add init (3 * initStride))
        let mutable s4 = Vector512.Load(NativePtr.add init (4 * initStride))
        let mutable s5 = Vector512.Load(NativePtr.add init (5 * initStride))
        let mutable s6 = Vector512.Load(NativePtr.add init (6 * initStride))
        let mutable s7 = Vector512.Load(NativePtr.add init (7 * initStride))
        let mutable s8 = Vector512.Load(NativePtr.add init (8 * initStride))
        let mutable s9 = Vector512.Load(NativePtr.add init (9 * initStride))
        let mutable s10 = Vector512.Load(NativePtr.add init (10 * initStride))
        let mutable s11 = Vector512.Load(NativePtr.add init (11 * initStride))
        let mutable s12 = Vector512.Load(NativePtr.add init (12 * initStride))
        let mutable s13 = Vector512.Load(NativePtr.add init (13 * initStride))
        let mutable pa = a
        let mutable po = boffs

        for _ in 1..kc do
            let pb = NativePtr.add b (NativePtr.read po)
            let w0 = Vector512.Load pa
            s0 <- Avx512F.FusedMultiplyAdd(Vector512.Create(NativePtr.get pb 0), w0, s0)
            s1 <- Avx512F.FusedMultiplyAdd(Vector512.Create(NativePtr.get pb 1), w0, s1)
            s2 <- Avx512F.FusedMultiplyAdd(Vector512.Create(NativePtr.get pb 2), w0, s2)
            s3 <- Avx512F.FusedMultiplyAdd(Vector512.Create(NativePtr.get pb 3), w0, s3)
            s4 <- Avx512F.FusedMultiplyAdd(Vector512.Create(NativePtr.get pb 4), w0, s4)
            s5 <- Avx512F.FusedMultiplyAdd(Vector512.Create(NativePtr.get pb 5), w0, s5)
            s6 <- Avx512F.FusedMultiplyAdd(Vector512.Create(NativePtr.get pb 6), w0, s6)
            s7 <- Avx512F.FusedMultiplyAdd(Vector512.Create(NativePtr.get pb 7), w0, s7)
            s8 <- Avx512F.FusedMultiplyAdd(Vector512.Create(NativePtr.get pb 8), w0, s8)
            s9 <- Avx512F.FusedMultiplyAdd(Vector512.Create(NativePtr.get pb 9), w0, s9)
            s10 <- Avx512F.FusedMultiplyAdd(Vector512.Create(NativePtr.get pb 10), w0, s10)
            s11 <- Avx512F.FusedMultiplyAdd(Vector512.Create(NativePtr.get pb 11), w0, s11)
            s12 <- Avx512F.FusedMultiplyAdd(Vector512.Create(NativePtr.get pb 12), w0, s12)
            s13 <- Avx512F.FusedMultiplyAdd(Vector512.Create(NativePtr.get pb 13), w0, s13)
            pa <- NativePtr.add pa 16
            po <- NativePtr.add po 1

        Vector512.Store(s0, NativePtr.add c (0 * 16))
        Vector512.Store(s1, NativePtr.add c (1 * 16))
        Vector512.Store(s2, NativePtr.add c (2 * 16))
        Vector512.Store(s3, NativePtr.add c (3 * 16))
        Vector512.Store(s4, NativePtr.add c (4 * 16))
        Vector512.Store(s5, NativePtr.add c (5 * 16))
        Vector512.Store(s6, NativePtr.add c (6 * 16))
        Vector512.Store(s7, NativePtr.add c (7 * 16))
        Vector512.Store(s8, NativePtr.add c (8 * 16))
        Vector512.Store(s9, NativePtr.add c (9 * 16))
        Vector512.Store(s10, NativePtr.add c (10 * 16))
        Vector512.Store(s11, NativePtr.add c (11 * 16))
        Vector512.Store(s12, NativePtr.add c (12 * 16))
        Vector512.Store(s13, NativePtr.add c (13 * 16))

    /// One block of cb (32 or 16) output channels of a sample's stride-1 convolution into t
    /// [OutH · rowStride; cb] (position (oh, ow) at oh · rowStride + ow, rowStride a multiple of
    /// tilePositions; the columns past outW are computed and dropped). A packed [k; cb]; b the
    /// group's padded input planes (rows srcStride apart). The inner dimension runs in slices of
    /// `slice` steps, each over all row chunks, so a slice's weights and input planes stay in L1;
    /// the first slice starts at the bias.
    let panelP
        (
            cb: int,
            k: int,
            slice: int,
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
        let mutable k0 = 0

        while k0 < k do
            let kc = min slice (k - k0)
            let ak = NativePtr.add a (k0 * cb)
            let ok = NativePtr.add boffs k0

            for oh in 0 .. outH - 1 do
                let mutable ow = 0

                while ow < outW do
                    let c = NativePtr.add t ((oh * rowStride + ow) * cb)
                    let bk = NativePtr.add b (oh * srcStride + ow)
                    let init, initStride = if k0 = 0 then bias, 0 else c, cb

                    if cb = 32 then
                        tileP512 kc ak bk ok init initStride c
                    else
                        tileP512x1 kc ak bk ok init initStride c

                    ow <- ow + tilePositions

            k0 <- k0 + kc

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

    /// The inner dimension is cut into slices of at most this many steps, so that the B rows of
    /// one slice stay in L1 while the tiles of a column block run.
    let kcMax = 256

    /// The weight gradient's B rows are dy's columns for nr output channels (a slice of 128 steps
    /// is 16 KB in float32), read while the shifted input planes stay in L1 beside them.
    let kcMaxA = 128

    /// C[m × n] (+)= A · B over whole tiles (m a multiple of mr, n of nr), A packed [k; aps],
    /// B's rows at b + boffs[p]; the first slice of the inner dimension overwrites C unless `add`.
    let inline private panelB
        ([<InlineIfLambda>] tile: int * nativeptr<'T> * int * nativeptr<'T> * nativeptr<int> * nativeptr<'T> * int * bool -> unit)
        (nr: int)
        (m: int, n: int, k: int, a: nativeptr<'T>, aps: int, b: nativeptr<'T>, boffs: nativeptr<int>, c: nativeptr<'T>, ldc: int, add: bool)
        =
        let mutable k0 = 0

        while k0 < k do
            let kc = min kcMax (k - k0)
            let ak = NativePtr.add a (k0 * aps)
            let ok = NativePtr.add boffs k0
            let mutable j0 = 0

            while j0 < n do
                let mutable i0 = 0

                while i0 < m do
                    tile (kc, NativePtr.add ak i0, aps, NativePtr.add b j0, ok, NativePtr.add c (i0 * ldc + j0), ldc, add || k0 > 0)
                    i0 <- i0 + mr

                j0 <- j0 + nr

            k0 <- k0 + kc

    /// C[m × n] (+)= A · B over whole tiles, A's rows at a + aoffs[r] (m entries), B rows ldb apart.
    let inline private panelA
        ([<InlineIfLambda>] tile:
            int * int * int * nativeptr<'T> * nativeptr<int> * nativeptr<'T> * int * nativeptr<'T> * int * bool -> unit)
        (nr: int)
        (
            m: int,
            n: int,
            k: int,
            rowLen: int,
            rowSkip: int,
            a: nativeptr<'T>,
            aoffs: nativeptr<int>,
            b: nativeptr<'T>,
            ldb: int,
            c: nativeptr<'T>,
            ldc: int,
            add: bool
        ) =
        // Slices of whole rows of about kcMaxA steps.
        let slice = max 1 (kcMaxA / rowLen) * rowLen
        let mutable k0 = 0

        while k0 < k do
            let kc = min slice (k - k0)
            let ak = NativePtr.add a (k0 / rowLen * (rowLen + rowSkip))
            let bk = NativePtr.add b (k0 * ldb)
            let mutable j0 = 0

            while j0 < n do
                let mutable i0 = 0

                while i0 < m do
                    tile (
                        kc,
                        rowLen,
                        rowSkip,
                        ak,
                        NativePtr.add aoffs i0,
                        NativePtr.add bk j0,
                        ldb,
                        NativePtr.add c (i0 * ldc + j0),
                        ldc,
                        add || k0 > 0
                    )

                    i0 <- i0 + mr

                j0 <- j0 + nr

            k0 <- k0 + kc

    let panelBS args =
        match path with
        | 2 -> panelB tileBS512 nr<float32> args
        | 1 -> panelB tileBS256 nr<float32> args
        | _ -> panelB tileBSScalar nr<float32> args

    let panelBD args =
        match path with
        | 2 -> panelB tileBD512 nr<float> args
        | 1 -> panelB tileBD256 nr<float> args
        | _ -> panelB tileBDScalar nr<float> args

    let panelAS args =
        match path with
        | 2 -> panelA tileAS512 nr<float32> args
        | 1 -> panelA tileAS256 nr<float32> args
        | _ -> panelA tileASScalar nr<float32> args

    let panelAD args =
        match path with
        | 2 -> panelA tileAD512 nr<float> args
        | 1 -> panelA tileAD256 nr<float> args
        | _ -> panelA tileADScalar nr<float> args

/// Per-thread scratch arrays of the convolution products (grown on demand, never shrunk, so a
/// steady stream of calls allocates nothing large).
[<AbstractClass; Sealed>]
type internal ConvScratch =
    [<ThreadStatic; DefaultValue>]
    static val mutable private f32: float32[]

    [<ThreadStatic; DefaultValue>]
    static val mutable private f64: float[]

    static member F32(n: int) =
        if isNull ConvScratch.f32 || ConvScratch.f32.Length < n then
            ConvScratch.f32 <- null
            ConvScratch.f32 <- GC.AllocateUninitializedArray<float32> n

        ConvScratch.f32

    static member F64(n: int) =
        if isNull ConvScratch.f64 || ConvScratch.f64.Length < n then
            ConvScratch.f64 <- null
            ConvScratch.f64 <- GC.AllocateUninitializedArray<float> n

        ConvScratch.f64

/// The three products of a convolution, computed sample by sample so that a sample's operands
/// stay in cache (the batch's patch matrix never goes through memory): forward y = W · patches
/// (+ bias), the input gradient and the weight gradient (Σ over samples of dy · patchesᵀ). With
/// stride 1 the patch matrix is never built: its rows are shifted views of the sample's zero-padded
/// input planes, read in place through an offset table (positions then run over the padded width,
/// whose few extra columns are computed and dropped), and the input gradient is the forward
/// product of dy with the flipped, transposed kernel. Other strides unfold each sample first.
/// Samples are split over the threads.
module internal ConvProducts =

    let inline private roundUp (v: int) (m: int) = (v + m - 1) / m * m

    /// Runs body worker n0 n1 over contiguous ranges of samples on up to Parallelism.MaxThreads
    /// threads (when the work, in multiply-adds, pays for the hand-over); returns the thread count.
    /// The ranges are about a quarter of a thread's share, taken in turn from a shared counter: on
    /// a shared machine one core is often busy with someone else's work, and fixed halves would
    /// make every call wait for the slower one.
    let private split (batch: int) (work: int64) (body: int -> int -> int -> unit) =
        let t =
            if work < 200_000L then
                1
            else
                max 1 (min (min Parallelism.MaxThreads Environment.ProcessorCount) batch)

        if t = 1 then
            body 0 0 batch
        else
            let chunk = max 1 (batch / (4 * t))
            let next = ref 0

            GemmImpl.forkJoin t (fun w ->
                let mutable n0 = Interlocked.Add(&next.contents, chunk) - chunk

                while n0 < batch do
                    body w n0 (min batch (n0 + chunk))
                    n0 <- Interlocked.Add(&next.contents, chunk) - chunk)

        t

    let private macs (cg: ConvGeometry) (batch: int) =
        int64 batch
        * int64 cg.OutChannels
        * int64 cg.Window.Positions
        * int64 cg.GroupRows

    /// Where a sample's patch rows are read from, in the first `Size` elements of the scratch.
    type private Source =
        {
            /// Stride 1: the zero-padded planes [C; Hp; Wp] (else the unfolded patches [K; Lp]).
            Implicit: bool
            /// Position (oh, ow) is column oh · RowStride + ow (Wp, or OutW).
            RowStride: int
            /// Columns that hold positions (OutH · RowStride).
            Columns: int
            /// Columns rounded up to whole tiles.
            Lp: int
            /// Padded plane size Hp · Wp (implicit only).
            Plane: int
            /// Offset of each patch row of a group (c', i, j) from the group's base.
            Offsets: int[]
            /// Offset between the bases of consecutive groups.
            GroupStride: int
            Size: int
        }

    let private sourceOf (cg: ConvGeometry) (nr: int) =
        let g = cg.Window
        let kk = g.KernelH * g.KernelW

        if g.StrideH = 1 && g.StrideW = 1 then
            let hp, wp = g.Height + 2 * g.PadH, g.Width + 2 * g.PadW
            let columns = g.OutH * wp
            let lp = roundUp columns nr

            {
                Implicit = true
                RowStride = wp
                Columns = columns
                Lp = lp
                Plane = hp * wp
                Offsets =
                    Array.init cg.GroupRows (fun r ->
                        let c, i, j = r / kk, r % kk / g.KernelW, r % g.KernelW
                        c * hp * wp + i * g.DilationH * wp + j * g.DilationW)
                GroupStride = cg.GroupChannels * hp * wp
                // Tiles read up to a tile width past the last plane (into columns that are dropped).
                Size = g.Channels * hp * wp + lp + nr
            }
        else
            let lp = roundUp g.Positions nr

            {
                Implicit = false
                RowStride = g.OutW
                Columns = g.Positions
                Lp = lp
                Plane = 0
                Offsets = Array.init cg.GroupRows (fun r -> r * lp)
                GroupStride = cg.GroupRows * lp
                // The input gradient's tiles may write mr rows past the last.
                Size = (g.Rows + ConvTiles.mr) * lp
            }

    /// Copies `rows` rows of `width` elements (rows srcStride and dstStride apart). The rows of
    /// small images are a few vectors long, where a memmove call per row costs more than the copy:
    /// whole vectors, the last one overlapping the previous.
    let inline private copyRows (src: nativeptr<'T>) (srcStride: int) (dst: nativeptr<'T>) (dstStride: int) (rows: int) (width: int) =
        let v = Vector256<'T>.Count

        if Vector256.IsHardwareAccelerated && width >= v && width <= 4 * v then
            for r in 0 .. rows - 1 do
                let s = NativePtr.add src (r * srcStride)
                let d = NativePtr.add dst (r * dstStride)
                let mutable i = 0

                while i < width - v do
                    Vector256.Store<'T>(Vector256.Load<'T>(NativePtr.add s i), NativePtr.add d i)
                    i <- i + v

                Vector256.Store<'T>(Vector256.Load<'T>(NativePtr.add s (width - v)), NativePtr.add d (width - v))
        else
            for r in 0 .. rows - 1 do
                let s = NativePtr.add src (r * srcStride)
                let d = NativePtr.add dst (r * dstStride)

                for i in 0 .. width - 1 do
                    NativePtr.set d i (NativePtr.get s i)

    /// Sample n's source in the scratch (whose padding the caller zeroed once, for implicit ones).
    let private load (src: Source) (g: WindowGeometry) (x: 'T[]) (n: int) (scratch: 'T[]) =
        if src.Implicit then
            let wp = src.RowStride

            use px = fixed x
            use ps = fixed scratch

            for c in 0 .. g.Channels - 1 do
                copyRows
                    (NativePtr.add px ((n * g.Channels + c) * g.Height * g.Width))
                    g.Width
                    (NativePtr.add ps (c * src.Plane + g.PadH * wp + g.PadW))
                    wp
                    g.Height
                    g.Width
        else
            Convolution.UnfoldPlanes(g, { SampleStride = 0; RowStride = src.Lp }, x, scratch, n * g.Channels, (n + 1) * g.Channels)

    /// The forward tiles' packed weights, [groups; kg; opad] with zero columns past og: a tile's
    /// rows are output channels, consecutive scalars at each step of the inner dimension.
    let private packForward (cg: ConvGeometry) (opad: int) (w: 'T[]) =
        let groups, kg, og = cg.Groups, cg.GroupRows, cg.GroupOutputs
        let wt = Array.zeroCreate<'T> (groups * kg * opad)

        for gi in 0 .. groups - 1 do
            for oi in 0 .. og - 1 do
                for p in 0 .. kg - 1 do
                    wt[(gi * kg + p) * opad + oi] <- w[(gi * og + oi) * kg + p]

        wt

    /// The row tiles' packed weights, [groups; opad / mr; kg; mr] with zero rows past og: each row
    /// block's weights contiguous, mr consecutive scalars per step of the inner dimension.
    let private packBlocks (cg: ConvGeometry) (opad: int) (w: 'T[]) =
        let groups, kg, og, mr = cg.Groups, cg.GroupRows, cg.GroupOutputs, ConvTiles.mr
        let wb = Array.zeroCreate<'T> (groups * kg * opad)

        for gi in 0 .. groups - 1 do
            for oi in 0 .. og - 1 do
                let block, r = oi / mr, oi % mr

                for p in 0 .. kg - 1 do
                    wb[((gi * (opad / mr) + block) * kg + p) * mr + r] <- w[(gi * og + oi) * kg + p]

        wb

    /// Eight float32 vectors of eight, rows srcStride apart, transposed into rows dstStride apart
    /// (AVX unpack, shuffle and lane permute).
    let inline private transpose8 (src: nativeptr<float32>) (srcStride: int) (dst: nativeptr<float32>) (dstStride: int) =
        let inline at (r: int) =
            Vector256.Load(NativePtr.add src (r * srcStride))

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

        let inline put (j: int) (v: Vector256<float32>) =
            Vector256.Store(v, NativePtr.add dst (j * dstStride))

        put 0 (Avx.Permute2x128(u0, u4, 0x20uy))
        put 1 (Avx.Permute2x128(u1, u5, 0x20uy))
        put 2 (Avx.Permute2x128(u2, u6, 0x20uy))
        put 3 (Avx.Permute2x128(u3, u7, 0x20uy))
        put 4 (Avx.Permute2x128(u0, u4, 0x31uy))
        put 5 (Avx.Permute2x128(u1, u5, 0x31uy))
        put 6 (Avx.Permute2x128(u2, u6, 0x31uy))
        put 7 (Avx.Permute2x128(u3, u7, 0x31uy))

    /// The channel block of forwardP for a convolution (0: forwardP does not take it): float32 on
    /// the AVX-512 path, stride 1, whole blocks of 32 (or 16) output channels per group, and an
    /// inner dimension long enough to pay for a tile's 28 loads and stores and the transpose (1 ->
    /// 16 channels with 3 × 3 or 5 × 5 kernels ran a third slower than with the row tiles).
    let private blockP (cg: ConvGeometry) =
        if
            ConvTiles.path <> 2
            || cg.Window.StrideH <> 1
            || cg.Window.StrideW <> 1
            || cg.GroupRows < 64
        then
            0
        elif cg.GroupOutputs % 32 = 0 then 32
        elif cg.GroupOutputs % 16 = 0 then 16
        else 0

    /// The stride-1 forward with output channels in the vector lanes (ConvTiles.tileP512): a
    /// 14-wide row fills 14 of 16 lanes of the row tiles, while 32 (16) channels fill all of theirs,
    /// and a step loads two weight vectors for 28 multiply-adds instead of two input vectors for
    /// 16. Each channel block of a sample goes to a [positions; cb] scratch, then is transposed
    /// into y in 8 × 8 blocks.
    let private forwardP (cb: int) (cg: ConvGeometry) (batch: int) (x: float32[]) (w: float32[]) (bias: float32[]) (y: float32[]) =
        let g = cg.Window
        let groups, kg, og, o = cg.Groups, cg.GroupRows, cg.GroupOutputs, cg.OutChannels
        let src = sourceOf cg ConvTiles.nr<float32>
        let blocks = og / cb
        let wb = Array.zeroCreate<float32> (groups * og * kg)

        for gi in 0 .. groups - 1 do
            for oi in 0 .. og - 1 do
                for p in 0 .. kg - 1 do
                    wb[((gi * blocks + oi / cb) * kg + p) * cb + oi % cb] <- w[(gi * og + oi) * kg + p]

        let biasOrZero = if isNull bias then Array.zeroCreate<float32> o else bias
        // Slices of whole input planes, at most about 224 steps (28 KB of weights for 32 channels).
        let kk = g.KernelH * g.KernelW
        let slices = (kg * cb / 32 + 223) / 224
        let slice = (cg.GroupChannels + slices - 1) / slices * kk
        let rsT = roundUp g.OutW ConvTiles.tilePositions
        let tStart = src.Size
        let plane = g.Positions

        split batch (macs cg batch) (fun _ n0 n1 ->
            let scratch = ConvScratch.F32(tStart + g.OutH * rsT * cb)
            Span<float32>(scratch, 0, src.Size).Clear()
            use ps = fixed scratch
            use pw = fixed wb
            use po = fixed src.Offsets
            use pbias = fixed biasOrZero
            use py = fixed y
            let pt = NativePtr.add ps tStart

            for n in n0 .. n1 - 1 do
                load src g x n scratch

                for gi in 0 .. groups - 1 do
                    for ob in 0 .. blocks - 1 do
                        ConvTiles.panelP (
                            cb,
                            kg,
                            slice,
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
                                        NativePtr.set
                                            dst
                                            (oc * plane + oh * g.OutW + ow)
                                            (NativePtr.get pt ((oh * rsT + ow) * cb + oc))
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

                                        ow <- o0 + 8)
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
            let chunks = ConvTiles.rowChunks g.OutH g.OutW rs (nr / 2)
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

            split batch (macs cg batch) (fun _ n0 n1 ->
                let scratch = scratchOf src.Size
                Span<'T>(scratch, 0, src.Size).Clear()
                use ps = fixed scratch
                use pw = fixed wb
                use po = fixed src.Offsets
                use pc = fixed chunks
                use pbias = fixed biasPadded
                use py = fixed y

                for n in n0 .. n1 - 1 do
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
                        ))
            |> ignore
        else
            // Scratch: the source, then the sample's output [o (+ mr rows the last group's tiles may
            // write); lp].
            let outStart = src.Size

            split batch (macs cg batch) (fun _ n0 n1 ->
                let scratch = scratchOf (outStart + (o + mr) * lp)

                if src.Implicit then
                    Span<'T>(scratch, 0, src.Size).Clear()

                use ps = fixed scratch
                use pw = fixed wt
                use po = fixed src.Offsets

                for n in n0 .. n1 - 1 do
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
                                g.OutW)
            |> ignore

    /// dx [batch; C; H; W] from w [O; C/groups; kh; kw] and dy [batch; O; OutH; OutW].
    let inline private backwardData
        ([<InlineIfLambda>] panelB:
            int * int * int * nativeptr<'T> * int * nativeptr<'T> * nativeptr<int> * nativeptr<'T> * int * bool -> unit)
        (forwardOf: ConvGeometry -> int -> 'T[] -> 'T[] -> 'T[] -> 'T[] -> unit)
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

        // Multiply-adds of the tiles either way (the fold counted as two per patch entry): the
        // flipped convolution's tiles have C/groups rows, which wastes most of a tile when the
        // input has few channels (C = 1: 7 of 8 rows).
        let l = g.Positions

        let implicitCost =
            // Output H × W in row chunks of nr / 2 lanes.
            let columns = g.Height * roundUp g.Width (nr / 2)
            int64 (roundUp cgc mr) * int64 columns * int64 (og * kh * kw)

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
            // The transposed convolution of stride 1 is a convolution: dy padded by the kernel's
            // span minus the padding, with the kernel flipped and its in/out channels swapped.
            let flipped = Array.zeroCreate<'T> w.Length

            for gi in 0 .. groups - 1 do
                for oi in 0 .. og - 1 do
                    for ci in 0 .. cgc - 1 do
                        for i in 0 .. kh - 1 do
                            for j in 0 .. kw - 1 do
                                flipped[(((gi * cgc + ci) * og + oi) * kh + i) * kw + j] <-
                                    w[(((gi * og + oi) * cgc + ci) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)]

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

            split batch (macs cg batch) (fun _ n0 n1 ->
                let scratch = scratchOf (dyStart + o * lp)
                use ps = fixed scratch
                use pw = fixed wd
                use po = fixed offsets

                for n in n0 .. n1 - 1 do
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

                    Convolution.FoldPlanes(g, layout, scratch, dx, n * g.Channels, (n + 1) * g.Channels, true))
            |> ignore

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
    let inline private backwardWeight
        ([<InlineIfLambda>] panelA:
            int * int * int * int * int * nativeptr<'T> * nativeptr<int> * nativeptr<'T> * int * nativeptr<'T> * int * bool -> unit)
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
        let src = sourceOf cg nr
        let l = g.Positions
        // The A rows (patch rows) skip the padded width's extra columns between output rows.
        let rowSkip = if src.Implicit then src.RowStride - g.OutW else 0
        let kpad, nrp = roundUp kg mr, roundUp og nr
        // Row offsets for whole tiles (rows past kg read a valid address; their sums are dropped).
        let offsets = Array.init kpad (fun r -> if r < kg then src.Offsets[r] else 0)
        let accSize = groups * kpad * nrp
        let threads = max 1 (min Parallelism.MaxThreads Environment.ProcessorCount)
        let acc = Array.zeroCreate<'T> (threads * accSize)
        // Scratch: the source, then one group's dy transposed [l; nrp] (columns past og unused).
        let dytStart = src.Size

        let used =
            split batch (macs cg batch) (fun worker n0 n1 ->
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

                for n in n0 .. n1 - 1 do
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

                        panelA (
                            kpad,
                            nrp,
                            l,
                            g.OutW,
                            rowSkip,
                            NativePtr.add ps (gi * src.GroupStride),
                            po,
                            NativePtr.add ps dytStart,
                            nrp,
                            NativePtr.add mine (gi * kpad * nrp),
                            nrp,
                            true
                        ))

        for gi in 0 .. groups - 1 do
            for oi in 0 .. og - 1 do
                for p in 0 .. kg - 1 do
                    let mutable s = acc[(gi * kpad + p) * nrp + oi]

                    for t in 1 .. used - 1 do
                        s <- s + acc[t * accSize + (gi * kpad + p) * nrp + oi]

                    dw[(gi * og + oi) * kg + p] <- s

    let forwardS (cg, batch, x: float32[], w, bias, y) =
        match blockP cg with
        | 0 -> forward ConvTiles.panelBS ConvTiles.panelRS ConvScratch.F32 ConvTiles.nr<float32> cg batch x w bias y
        | cb -> forwardP cb cg batch x w bias y

    let forwardD (cg, batch, x: float[], w, bias, y) =
        forward ConvTiles.panelBD ConvTiles.panelRD ConvScratch.F64 ConvTiles.nr<float> cg batch x w bias y

    let backwardDataS (cg, batch, w: float32[], dy, dx) =
        backwardData
            ConvTiles.panelBS
            (fun cg batch x w bias y -> forwardS (cg, batch, x, w, bias, y))
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
            ConvScratch.F64
            ConvTiles.nr<float>
            cg
            batch
            w
            dy
            dx

    let backwardWeightS (cg, batch, x: float32[], dy, dw) =
        backwardWeight ConvTiles.panelAS transposeS ConvScratch.F32 ConvTiles.nr<float32> cg batch x dy dw

    let backwardWeightD (cg, batch, x: float[], dy, dw) =
        backwardWeight ConvTiles.panelAD transposeD ConvScratch.F64 ConvTiles.nr<float> cg batch x dy dw

/// The convolution products on concrete buffers (row-major NCHW / OIHW; every output entry written).
[<AbstractClass; Sealed>]
type ConvKernels =
    /// y [batch; O; OutH; OutW] = conv(x [batch; C; H; W], w [O; C/groups; kh; kw]) + bias [O] (bias may be null).
    static member Forward(cg: ConvGeometry, batch: int, x: float32[], w: float32[], bias: float32[], y: float32[]) =
        ConvProducts.forwardS (cg, batch, x, w, bias, y)

    static member Forward(cg: ConvGeometry, batch: int, x: float[], w: float[], bias: float[], y: float[]) =
        ConvProducts.forwardD (cg, batch, x, w, bias, y)

    /// dx [batch; C; H; W], the transposed convolution of dy [batch; O; OutH; OutW] with w.
    static member BackwardData(cg: ConvGeometry, batch: int, w: float32[], dy: float32[], dx: float32[]) =
        ConvProducts.backwardDataS (cg, batch, w, dy, dx)

    static member BackwardData(cg: ConvGeometry, batch: int, w: float[], dy: float[], dx: float[]) =
        ConvProducts.backwardDataD (cg, batch, w, dy, dx)

    /// dw [O; C/groups; kh; kw] = Σ over the batch of dy's correlation with x's patches.
    static member BackwardWeight(cg: ConvGeometry, batch: int, x: float32[], dy: float32[], dw: float32[]) =
        ConvProducts.backwardWeightS (cg, batch, x, dy, dw)

    static member BackwardWeight(cg: ConvGeometry, batch: int, x: float[], dy: float[], dw: float[]) =
        ConvProducts.backwardWeightD (cg, batch, x, dy, dw)
