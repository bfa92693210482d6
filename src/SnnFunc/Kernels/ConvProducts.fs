/// What the convolution products share: per-thread scratch, the sample split over threads, where a
/// sample's patch rows are read from, weight packing and the 8 × 8 transpose.
namespace SnnFunc.Kernels

open System
open System.Numerics
open System.Runtime.CompilerServices
open System.Threading
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open Microsoft.FSharp.NativeInterop

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

    let inline roundUp (v: int) (m: int) = (v + m - 1) / m * m

    /// One worker's share of a call's samples, claimed `chunk` at a time from a counter shared by
    /// all workers.
    [<Sealed>]
    type Samples(shared: int ref, batch: int, chunk: int) =
        let mutable cursor = 0
        let mutable stop = 0

        /// The next sample of this worker, or -1 when the batch is done.
        member _.Take() =
            if cursor < stop then
                cursor <- cursor + 1
                cursor - 1
            else
                let n0 = Interlocked.Add(&shared.contents, chunk) - chunk

                if n0 < batch then
                    cursor <- n0 + 1
                    stop <- min batch (n0 + chunk)
                    n0
                else
                    -1

    /// Runs body worker samples on up to Parallelism.MaxThreads threads (when the work, in
    /// multiply-adds, pays for the hand-over); returns the thread count. The workers take the
    /// samples one at a time from a shared counter: on a shared machine one core is often slowed
    /// or taken by someone else's work, and then the others take over its samples; the call
    /// waits at most one sample for the last worker (quarter shares, 8 of 64 samples, left a
    /// 0.15-0.19 ms gap between the workers' ends on a 16 -> 32 k5 layer, single samples
    /// 0.02-0.04 ms). Each worker sets up its scratch once per call, not per sample.
    let split (batch: int) (work: int64) (body: int -> Samples -> unit) =
        let t =
            if work < 200_000L then
                1
            else
                max 1 (min (min Parallelism.MaxThreads Environment.ProcessorCount) batch)

        let shared = ref 0

        if t = 1 then
            body 0 (Samples(shared, batch, batch))
        else
            GemmImpl.forkJoin t (fun w -> body w (Samples(shared, batch, 1)))

        t

    let macs (cg: ConvGeometry) (batch: int) =
        int64 batch
        * int64 cg.OutChannels
        * int64 cg.Window.Positions
        * int64 cg.GroupRows

    /// Where a sample's patch rows are read from, in the first `Size` elements of the scratch.
    type Source =
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

    let sourceOf (cg: ConvGeometry) (nr: int) =
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
    let inline copyRows (src: nativeptr<'T>) (srcStride: int) (dst: nativeptr<'T>) (dstStride: int) (rows: int) (width: int) =
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
    let load (src: Source) (g: WindowGeometry) (x: 'T[]) (n: int) (scratch: 'T[]) =
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
    let packForward (cg: ConvGeometry) (opad: int) (w: 'T[]) =
        let groups, kg, og = cg.Groups, cg.GroupRows, cg.GroupOutputs
        let wt = Array.zeroCreate<'T> (groups * kg * opad)

        for gi in 0 .. groups - 1 do
            for oi in 0 .. og - 1 do
                for p in 0 .. kg - 1 do
                    wt[(gi * kg + p) * opad + oi] <- w[(gi * og + oi) * kg + p]

        wt

    /// The row tiles' packed weights, [groups; opad / mr; kg; mr] with zero rows past og: each row
    /// block's weights contiguous, mr consecutive scalars per step of the inner dimension.
    let packBlocks (cg: ConvGeometry) (opad: int) (w: 'T[]) =
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
    let inline transpose8 (src: nativeptr<float32>) (srcStride: int) (dst: nativeptr<float32>) (dstStride: int) =
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
