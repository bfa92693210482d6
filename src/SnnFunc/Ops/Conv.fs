/// Convolution and pooling over NCW / NCHW tensors with PyTorch's semantics, composed from one pair
/// of linear kernels — unfold (im2col) and fold (col2im, its transpose) — with the packed GEMM,
/// reductions and elementwise operations, so every transform reaches the kernels through their rules.
namespace SnnFunc

open System
open SnnFunc.Kernels

// The 1-d option records require qualified field names, so that an unqualified literal with the
// field names they share with the 2-d records is always a 2-d record (F# would otherwise infer
// whichever it met last). Write them as `{ Conv1dOptions.Default with Stride = 2 }`.

/// Options of Conv.conv1dWith: torch.nn.functional.conv1d's stride, zero padding (each side),
/// dilation and groups.
[<RequireQualifiedAccess>]
type Conv1dOptions =
    {
        Stride: int
        Padding: int
        Dilation: int
        Groups: int
    }

    /// Stride 1, no padding, no dilation, one group.
    static member Default =
        {
            Conv1dOptions.Stride = 1
            Padding = 0
            Dilation = 1
            Groups = 1
        }

/// Options of Conv.conv2dWith: torch.nn.functional.conv2d's stride, zero padding (each side),
/// dilation (as (height, width) pairs) and groups.
type Conv2dOptions =
    {
        Stride: int * int
        Padding: int * int
        Dilation: int * int
        Groups: int
    }

    /// Stride 1, no padding, no dilation, one group.
    static member Default =
        {
            Stride = (1, 1)
            Padding = (0, 0)
            Dilation = (1, 1)
            Groups = 1
        }

/// Options of the 1-d pools: window size, stride and padding (each side).
[<RequireQualifiedAccess>]
type Pool1dOptions =
    {
        Kernel: int
        Stride: int
        Padding: int
    }

    /// Non-overlapping windows of `kernel` elements (stride = kernel, PyTorch's default), no padding.
    static member Of(kernel: int) =
        {
            Pool1dOptions.Kernel = kernel
            Stride = kernel
            Padding = 0
        }

/// Options of Conv.unfoldWith and Conv.fold: torch.nn.functional.unfold's kernel size, stride,
/// zero padding and dilation, as (height, width) pairs.
type UnfoldOptions =
    {
        Kernel: int * int
        Stride: int * int
        Padding: int * int
        Dilation: int * int
    }

    /// A kh × kw window moved by one position, no padding, no dilation.
    static member Of(kernelH: int, kernelW: int) =
        {
            Kernel = (kernelH, kernelW)
            Stride = (1, 1)
            Padding = (0, 0)
            Dilation = (1, 1)
        }

/// Options of the 2-d pools: window size, stride and padding (each side), as (height, width) pairs.
type Pool2dOptions =
    {
        Kernel: int * int
        Stride: int * int
        Padding: int * int
    }

    /// Non-overlapping kh × kw windows (stride = kernel, PyTorch's default), no padding.
    static member Of(kernelH: int, kernelW: int) =
        {
            Kernel = (kernelH, kernelW)
            Stride = (kernelH, kernelW)
            Padding = (0, 0)
        }

/// Convolution (conv1d, conv2d), unfold/fold and sum/average/max pooling (1-d and 2-d). Inputs are
/// [N; C; W] / [N; C; H; W], or the same without the batch axis ([C; W] / [C; H; W]: what a
/// per-example function sees under vmap); weights are [out; in/groups; k] / [out; in/groups; kh; kw]
/// (PyTorch's layouts); outputs have the input's rank.
[<RequireQualifiedAccess>]
module Conv =

    let private fail (op: string) (param: string) (message: string) : 'a = invalidArg param $"%s{op}: %s{message}"
    let private fmt = Shape.format

    // -----------------------------------------------------------------------------------------
    // Window geometry and its validation

    /// A (height, width) pair as messages show it: "(3, 2)", or just the width for 1-d operations.
    let private show (oneD: bool) (a: int, b: int) =
        if oneD then string b else $"(%d{a}, %d{b})"

    /// The window geometry for planes of `channels` × height × width, or an error naming `op` and
    /// the offending values (1-d operations, height 1, show only the widths). `what` names the
    /// input in messages ("the input [2; 3; 28; 28]").
    let private geometry
        (op: string)
        (oneD: bool)
        (what: string)
        (channels: int)
        (height: int, width: int)
        (kh: int, kw: int)
        (sh: int, sw: int)
        (ph: int, pw: int)
        (dh: int, dw: int)
        : WindowGeometry =
        let show = show oneD

        if kh < 1 || kw < 1 then
            fail op "kernel" $"kernel size %s{show (kh, kw)} must be positive"

        if sh < 1 || sw < 1 then
            fail op "stride" $"stride %s{show (sh, sw)} must be positive"

        if dh < 1 || dw < 1 then
            fail op "dilation" $"dilation %s{show (dh, dw)} must be positive"

        if ph < 0 || pw < 0 then
            fail op "padding" $"padding %s{show (ph, pw)} must not be negative"

        let spanH, spanW = dh * (kh - 1) + 1, dw * (kw - 1) + 1

        if spanH > height + 2 * ph || spanW > width + 2 * pw then
            fail
                op
                "x"
                $"the kernel %s{show (kh, kw)} with dilation %s{show (dh, dw)} spans %s{show (spanH, spanW)}, larger than %s{what} padded by %s{show (ph, pw)} to %s{show (height + 2 * ph, width + 2 * pw)}"

        {
            Channels = channels
            Height = height
            Width = width
            KernelH = kh
            KernelW = kw
            StrideH = sh
            StrideW = sw
            PadH = ph
            PadW = pw
            DilationH = dh
            DilationW = dw
            OutH = (height + 2 * ph - spanH) / sh + 1
            OutW = (width + 2 * pw - spanW) / sw + 1
        }

    // -----------------------------------------------------------------------------------------
    // The kernel pair

    /// Where the unfolded patch matrix puts the batch: [N; rows; positions] is PyTorch's unfold;
    /// [rows; N; positions] makes the convolution one GEMM over the whole batch, weights [O; rows]
    /// times patches [rows; N · positions], and its weight gradient another ([O; N · positions] times
    /// its transpose), where the per-sample layout would need N small products and a sum.
    type private Batching =
        | SampleMajor
        | RowMajor

    let private patchLayout (g: WindowGeometry) (batching: Batching) (n: int) : PatchLayout =
        match batching with
        | SampleMajor ->
            {
                SampleStride = g.Rows * g.Positions
                RowStride = g.Positions
            }
        | RowMajor ->
            {
                SampleStride = g.Positions
                RowStride = n * g.Positions
            }

    let private patchShape (g: WindowGeometry) (batching: Batching) (n: int) =
        match batching with
        | SampleMajor -> [| n; g.Rows; g.Positions |]
        | RowMajor -> [| g.Rows; n; g.Positions |]

    let private batchOfPatches (batching: Batching) (patches: Tensor) =
        match batching with
        | SampleMajor -> patches.ShapeRef[0]
        | RowMajor -> patches.ShapeRef[1]

    /// The flat input positions (of the zero-padded [H + 2 ph; W + 2 pw] plane) that the patch
    /// entries read, [kh · kw; positions]: the twins' gather and scatter indices.
    let private sourceIndices (g: WindowGeometry) =
        let paddedW = g.Width + 2 * g.PadW

        [|
            for i in 0 .. g.KernelH - 1 do
                for j in 0 .. g.KernelW - 1 do
                    for oh in 0 .. g.OutH - 1 do
                        for ow in 0 .. g.OutW - 1 do
                            (oh * g.StrideH + i * g.DilationH) * paddedW + ow * g.StrideW + j * g.DilationW
        |]

    let private runKernel (outShape: int[]) (x: Tensor) (f32: float32[] -> float32[] -> unit) (f64: float[] -> float[] -> unit) =
        let count = Shape.count outShape

        match x.Storage with
        | Storage.F32 a ->
            let out = GC.AllocateUninitializedArray<float32> count
            f32 a out
            Tensor.FromStorage(outShape, Storage.F32 out)
        | Storage.F64 a ->
            let out = GC.AllocateUninitializedArray<float> count
            f64 a out
            Tensor.FromStorage(outShape, Storage.F64 out)
        | _ -> invalidOp $"Conv: floating-point data expected, got %A{x.DType}"

    /// im2col, args [x] -> [patches]: x [N; C; H; W] to the patch matrix (rows (c, i, j), as
    /// torch.nn.functional.unfold orders them; zero padding implicit). Linear; FoldFn is its transpose.
    type private UnfoldFn(g: WindowGeometry, batching: Batching) =
        inherit KernelFn("Conv.unfold")

        override _.Kernel args =
            let x = args[0]
            let n = x.ShapeRef[0]
            let layout = patchLayout g batching n

            [|
                runKernel (patchShape g batching n) x (fun a o -> Convolution.Unfold(g, n, a, layout, o)) (fun a o ->
                    Convolution.Unfold(g, n, a, layout, o))
            |]

        override _.Twin args =
            // One gather of the padded planes at the positions each patch entry reads.
            let x = args[0]
            let n = x.ShapeRef[0]
            let kk = g.KernelH * g.KernelW

            let padded =
                if g.PadH = 0 && g.PadW = 0 then
                    x
                else
                    x.Pad([| 0; 0; g.PadH; g.PadW |], [| 0; 0; g.PadH; g.PadW |])

            let planeSize = (g.Height + 2 * g.PadH) * (g.Width + 2 * g.PadW)

            let patches =
                padded.Reshape(n, g.Channels, planeSize).Gather(2, sourceIndices g, [| kk; g.Positions |]).Reshape(n, g.Rows, g.Positions)

            [|
                match batching with
                | SampleMajor -> patches
                | RowMajor -> patches.Permute(1, 0, 2)
            |]

        override this.Jvp(primals, tangents) =
            Tensor.ApplyCustom(this, primals),
            (if isNull tangents[0] then
                 [| null |]
             else
                 Tensor.ApplyCustom(this, tangents))

        override _.IsLinear = true

        override _.OutputTypes args =
            [| patchShape g batching args[0].ShapeRef[0], args[0].DType |]

        override _.Transpose(_, cts) =
            if isNull cts[0] then
                [| null |]
            else
                Tensor.ApplyCustom(FoldFn(g, batching), cts[0])

        override this.Batch(args, batched, size) =
            // The vmap axis joins N: one kernel call for the whole batch of batches.
            let x = KernelBatching.moveBatchTo 0 size batched[0] args[0]
            let s = x.ShapeRef
            let n = s[1]
            let p = (Tensor.ApplyCustom(this, x.Reshape(size * n, s[2], s[3], s[4])))[0]

            Some
                [|
                    match batching with
                    | SampleMajor -> p.Reshape(size, n, g.Rows, g.Positions)
                    | RowMajor -> p.Reshape(g.Rows, size, n, g.Positions).Permute(1, 0, 2, 3)
                |]

    /// col2im, args [patches] -> [x]: every patch entry added at the input position it was read
    /// from ([N; C; H; W]; entries in the padding are dropped). Linear; UnfoldFn is its transpose.
    and private FoldFn(g: WindowGeometry, batching: Batching) =
        inherit KernelFn("Conv.fold")

        override _.Kernel args =
            let p = args[0]
            let n = batchOfPatches batching p
            let layout = patchLayout g batching n

            [|
                runKernel [| n; g.Channels; g.Height; g.Width |] p (fun a o -> Convolution.Fold(g, n, a, layout, o)) (fun a o ->
                    Convolution.Fold(g, n, a, layout, o))
            |]

        override _.Twin args =
            // The transpose of the unfold twin: one scatter-add into the padded planes, then the
            // interior.
            let p = args[0]
            let n = batchOfPatches batching p
            let kk = g.KernelH * g.KernelW
            let hp, wp = g.Height + 2 * g.PadH, g.Width + 2 * g.PadW

            let perSample =
                match batching with
                | SampleMajor -> p
                | RowMajor -> p.Permute(1, 0, 2)

            let padded =
                perSample
                    .Reshape(n, g.Channels, kk, g.Positions)
                    .ScatterAdd(2, sourceIndices g, hp * wp, [| kk; g.Positions |])
                    .Reshape(n, g.Channels, hp, wp)

            [|
                if g.PadH = 0 && g.PadW = 0 then
                    padded
                else
                    padded.Slice([| 0; 0; g.PadH; g.PadW |], [| n; g.Channels; g.Height; g.Width |])
            |]

        override this.Jvp(primals, tangents) =
            Tensor.ApplyCustom(this, primals),
            (if isNull tangents[0] then
                 [| null |]
             else
                 Tensor.ApplyCustom(this, tangents))

        override _.IsLinear = true

        override _.OutputTypes args =
            [|
                [| batchOfPatches batching args[0]; g.Channels; g.Height; g.Width |], args[0].DType
            |]

        override _.Transpose(_, cts) =
            if isNull cts[0] then
                [| null |]
            else
                Tensor.ApplyCustom(UnfoldFn(g, batching), cts[0])

        override this.Batch(args, batched, size) =
            let p = KernelBatching.moveBatchTo 0 size batched[0] args[0]

            let folded =
                match batching with
                | SampleMajor ->
                    let n = p.ShapeRef[1]
                    p.Reshape(size * n, g.Rows, g.Positions)
                | RowMajor ->
                    let n = p.ShapeRef[2]
                    p.Permute(1, 0, 2, 3).Reshape(g.Rows, size * n, g.Positions)

            let x = (Tensor.ApplyCustom(this, folded))[0]
            let n = x.ShapeRef[0] / size
            Some [| x.Reshape(size, n, g.Channels, g.Height, g.Width) |]

    let private unfoldWithGeometry (g: WindowGeometry) (batching: Batching) (x: Tensor) =
        (Tensor.ApplyCustom(UnfoldFn(g, batching), x))[0]

    // -----------------------------------------------------------------------------------------
    // The convolution's three products

    /// A convolution's bilinear products: Forward (x, w) -> y = conv(x, w); InputGrad (w, dy) -> dx,
    /// the transposed convolution (Forward's transpose in x); WeightGrad (x, dy) -> dw, the
    /// correlation of dy with x's patches summed over the batch (Forward's transpose in w). Each is
    /// the transpose of the others in one argument, so reverse mode, forward mode and their nestings
    /// never leave this family.
    type private ConvOp =
        | Forward
        | InputGrad
        | WeightGrad

    let private flat (t: Tensor) (rows: int) = t.Reshape(rows, t.Count / rows)

    /// dy [N; O; OutH; OutW] as [O; N · L], the layout of the twins' GEMMs.
    let private channelsFirst (dy: Tensor) =
        let s = dy.ShapeRef
        dy.Reshape(s[0], s[1], s[2] * s[3]).Permute(1, 0, 2).Reshape(s[1], s[0] * s[2] * s[3])

    /// The twins: the same products composed of the unfold/fold kernels and GEMMs (batched over the
    /// groups), patches [rows; N; L] so that each is one product for the whole batch. Internal, for
    /// the tests that check them against the kernels (transforms never reach them).
    let internal twinForward (cg: ConvGeometry) (x: Tensor) (w: Tensor) (bias: Tensor) =
        let g, groups, o = cg.Window, cg.Groups, cg.OutChannels
        let n = x.ShapeRef[0]
        let patches = unfoldWithGeometry g RowMajor x

        let y =
            if groups = 1 then
                flat w o |> _.MatMul(flat patches g.Rows)
            else
                w.Reshape(groups, o / groups, cg.GroupRows).MatMul(patches.Reshape(groups, cg.GroupRows, -1)).Reshape(o, -1)

        let y = if isNull bias then y else y + bias.Reshape(o, 1)
        y.Reshape(o, n, g.Positions).Permute(1, 0, 2).Reshape(n, o, g.OutH, g.OutW)

    let internal twinInputGrad (cg: ConvGeometry) (w: Tensor) (dy: Tensor) =
        let g, groups, o = cg.Window, cg.Groups, cg.OutChannels
        let n = dy.ShapeRef[0]
        let d = channelsFirst dy

        let patches =
            if groups = 1 then
                (flat w o).MatMul(d, true, false)
            else
                w.Reshape(groups, o / groups, cg.GroupRows).MatMul(d.Reshape(groups, o / groups, -1), true, false)

        (Tensor.ApplyCustom(FoldFn(g, RowMajor), patches.Reshape(g.Rows, n, g.Positions)))[0]

    let internal twinWeightGrad (cg: ConvGeometry) (x: Tensor) (dy: Tensor) =
        let g, groups, o = cg.Window, cg.Groups, cg.OutChannels
        let patches = unfoldWithGeometry g RowMajor x
        let d = channelsFirst dy

        let dw =
            if groups = 1 then
                d.MatMul(flat patches g.Rows, false, true)
            else
                d.Reshape(groups, o / groups, -1).MatMul(patches.Reshape(groups, cg.GroupRows, -1), false, true)

        dw.Reshape(o, cg.GroupChannels, g.KernelH, g.KernelW)

    /// The vmap axis of batched arguments folded into the groups: B convolutions side by side are
    /// one convolution with B times the groups, inputs [N; B · C; ...] and weights [B · O; ...].
    let private sideBySide (cg: ConvGeometry) (size: int) =
        { cg with
            Window =
                { cg.Window with
                    Channels = size * cg.Window.Channels
                }
            Groups = size * cg.Groups
            OutChannels = size * cg.OutChannels
        }

    /// [B; N; C; ...] -> [N; B · C; ...] and back.
    let private joinChannels (t: Tensor) =
        let s = t.ShapeRef
        t.Permute(1, 0, 2, 3, 4).Reshape(s[1], s[0] * s[2], s[3], s[4])

    let private splitChannels (size: int) (t: Tensor) =
        let s = t.ShapeRef
        t.Reshape(s[0], size, s[1] / size, s[2], s[3]).Permute(1, 0, 2, 3, 4)

    /// One product of the family. `linear` = Some slot: the product as a linear map of that
    /// argument, the other a constant (what reverse mode records); None: the function itself, with
    /// a bias [O] as third argument when `withBias` (Forward only).
    type private ConvFn(op: ConvOp, cg: ConvGeometry, linear: int option, withBias: bool) =
        inherit
            KernelFn(
                match op with
                | Forward -> "Conv.conv2d"
                | InputGrad -> "Conv.conv2d (input gradient)"
                | WeightGrad -> "Conv.conv2d (weight gradient)"
            )

        member private _.OutShape(args: Tensor[]) =
            let g = cg.Window

            match op with
            | Forward -> [| args[0].ShapeRef[0]; cg.OutChannels; g.OutH; g.OutW |]
            | InputGrad -> [| args[1].ShapeRef[0]; g.Channels; g.Height; g.Width |]
            | WeightGrad -> [| cg.OutChannels; cg.GroupChannels; g.KernelH; g.KernelW |]

        override this.Kernel args =
            let shape = this.OutShape args
            let batch = if op = WeightGrad then args[0].ShapeRef[0] else shape[0]
            let count = Shape.count shape
            let bias = if withBias then args[2] else null

            let out =
                match args[0].Storage, args[1].Storage with
                | Storage.F32 a, Storage.F32 b ->
                    let y = GC.AllocateUninitializedArray<float32> count

                    match op with
                    | Forward ->
                        let bs =
                            if isNull bias then
                                null
                            else
                                match bias.Storage with
                                | Storage.F32 v -> v
                                | _ -> invalidOp "Conv.conv2d: bias dtype"

                        ConvKernels.Forward(cg, batch, a, b, bs, y)
                    | InputGrad -> ConvKernels.BackwardData(cg, batch, a, b, y)
                    | WeightGrad -> ConvKernels.BackwardWeight(cg, batch, a, b, y)

                    Storage.F32 y
                | Storage.F64 a, Storage.F64 b ->
                    let y = GC.AllocateUninitializedArray<float> count

                    match op with
                    | Forward ->
                        let bs =
                            if isNull bias then
                                null
                            else
                                match bias.Storage with
                                | Storage.F64 v -> v
                                | _ -> invalidOp "Conv.conv2d: bias dtype"

                        ConvKernels.Forward(cg, batch, a, b, bs, y)
                    | InputGrad -> ConvKernels.BackwardData(cg, batch, a, b, y)
                    | WeightGrad -> ConvKernels.BackwardWeight(cg, batch, a, b, y)

                    Storage.F64 y
                | _ -> invalidOp "Conv.conv2d: arguments of different dtypes"

            [| Tensor.FromStorage(shape, out) |]

        override _.Twin args =
            [|
                match op with
                | Forward -> twinForward cg args[0] args[1] (if withBias then args[2] else null)
                | InputGrad -> twinInputGrad cg args[0] args[1]
                | WeightGrad -> twinWeightGrad cg args[0] args[1]
            |]

        override this.Jvp(primals, tangents) =
            let outs = Tensor.ApplyCustom(this, primals)
            let shape = outs[0].ShapeRef
            // Bilinear in the first two arguments: the tangent of each is the product linear in it.
            let along (slot: int) =
                if isNull tangents[slot] then
                    null
                else
                    let args = [| primals[0]; primals[1] |]
                    args[slot] <- tangents[slot]
                    (Tensor.ApplyCustom(ConvFn(op, cg, Some slot, false), args))[0]

            let fromBias =
                if withBias && not (isNull tangents[2]) then
                    tangents[2].Reshape(1, cg.OutChannels, 1, 1).BroadcastTo shape
                else
                    null

            outs, [| Linear.addZ (Linear.addZ (along 0) (along 1)) fromBias |]

        override _.IsLinear = linear.IsSome
        override _.IsConstantArg i = linear.IsSome && linear.Value <> i
        override this.OutputTypes args = [| this.OutShape args, args[0].DType |]

        override _.Transpose(consts, cts) =
            match cts[0], linear with
            | null, _ -> [| null; null |]
            | ct, Some slot ->
                let apply op' linear' (args: Tensor[]) =
                    (Tensor.ApplyCustom(ConvFn(op', cg, Some linear', false), args))[0]

                match op, slot with
                | Forward, 0 -> [| apply InputGrad 1 [| consts[1]; ct |]; null |]
                | Forward, _ -> [| null; apply WeightGrad 1 [| consts[0]; ct |] |]
                | InputGrad, 1 -> [| null; apply Forward 0 [| ct; consts[0] |] |]
                | InputGrad, _ -> [| apply WeightGrad 0 [| ct; consts[1] |]; null |]
                | WeightGrad, 1 -> [| null; apply Forward 1 [| consts[0]; ct |] |]
                | WeightGrad, _ -> [| apply InputGrad 0 [| ct; consts[1] |]; null |]
            | _, None -> invalidOp "Conv.conv2d: internal error: the primal convolution has no transpose"

        override this.Batch(args, batched, size) =
            let onlyImages =
                // Only the argument with a sample axis is batched: the vmap axis joins N.
                match op with
                | Forward -> batched[0] && not batched[1] && not (withBias && batched[2])
                | InputGrad -> batched[1] && not batched[0]
                | WeightGrad -> false

            if onlyImages then
                let slot = if op = Forward then 0 else 1
                let a = args[slot]
                let s = a.ShapeRef
                let folded = Array.copy args
                folded[slot] <- a.Reshape(size * s[1], s[2], s[3], s[4])
                let y = (Tensor.ApplyCustom(this, folded))[0]
                let ys = y.ShapeRef
                Some [| y.Reshape(size, s[1], ys[1], ys[2], ys[3]) |]
            else
                // Otherwise the B problems run side by side as one with B times the groups (the
                // unbatched arguments broadcast).
                let all =
                    Array.mapi (fun i (a: Tensor) -> KernelBatching.moveBatchTo 0 size batched[i] a) args

                let weights (w: Tensor) =
                    let s = w.ShapeRef
                    w.Reshape(size * s[1], s[2], s[3], s[4])

                let wide = ConvFn(op, sideBySide cg size, linear, withBias)

                let folded =
                    match op with
                    | Forward ->
                        Array.append
                            [| joinChannels all[0]; weights all[1] |]
                            (if withBias then
                                 [| all[2].Reshape(size * cg.OutChannels) |]
                             else
                                 [||])
                    | InputGrad -> [| weights all[0]; joinChannels all[1] |]
                    | WeightGrad -> [| joinChannels all[0]; joinChannels all[1] |]

                let y = (Tensor.ApplyCustom(wide, folded))[0]

                Some
                    [|
                        match op with
                        | Forward
                        | InputGrad -> splitChannels size y
                        | WeightGrad ->
                            let s = y.ShapeRef
                            y.Reshape(size, s[0] / size, s[1], s[2], s[3])
                    |]

    // -----------------------------------------------------------------------------------------
    // Argument checks shared by the public functions

    let private checkTensor (op: string) (name: string) (t: Tensor) =
        if isNull t then
            fail op name $"%s{name} is null"

        if not t.DType.IsFloat then
            fail op name $"%s{name} must be Float32 or Float64, got %A{t.DType} (convert integer data first)"

    /// x as a batch [N; C; *spatial] (rank `spatial` + 2), adding the batch axis when it is missing;
    /// the flag says whether it was.
    let private asBatch (op: string) (spatial: int) (x: Tensor) =
        checkTensor op "x" x

        let layout =
            if spatial = 1 then
                "[N; C; W] or [C; W]"
            else
                "[N; C; H; W] or [C; H; W]"

        if x.Rank = spatial + 2 then
            x, false
        elif x.Rank = spatial + 1 then
            x.Unsqueeze 0, true
        else
            fail op "x" $"needs an input %s{layout}, got shape %s{fmt x.ShapeRef}"

    let private dropBatch (unbatched: bool) (y: Tensor) = if unbatched then y.Squeeze 0 else y

    // -----------------------------------------------------------------------------------------
    // Unfold and fold (public)

    /// torch.nn.functional.unfold: x [N; C; H; W] (or [C; H; W]) to its sliding-window patches
    /// [N; C · kh · kw; L] (or [C · kh · kw; L]), L = OutH · OutW output positions in row-major order.
    /// Row (c · kh + i) · kw + j holds channel c at kernel offset (i, j) — PyTorch's order, which a
    /// patch matrix multiplied on other hardware (the BrainScaleS-2 MAC mode lowers a convolution to
    /// the transpose of this matrix, rows (n, oh, ow) × columns (c, i, j)) relies on. Zero padding.
    let unfoldWith (options: UnfoldOptions) (x: Tensor) : Tensor =
        let op = "Conv.unfold"
        let xb, unbatched = asBatch op 2 x
        let s = xb.ShapeRef

        let g =
            geometry
                op
                false
                $"the input %s{fmt x.ShapeRef}"
                s[1]
                (s[2], s[3])
                options.Kernel
                options.Stride
                options.Padding
                options.Dilation

        unfoldWithGeometry g SampleMajor xb |> dropBatch unbatched

    /// Unfold with a kh × kw window, stride 1, no padding, no dilation.
    let unfold (kernelH: int, kernelW: int) (x: Tensor) : Tensor =
        unfoldWith (UnfoldOptions.Of(kernelH, kernelW)) x

    /// torch.nn.functional.fold, the transpose of unfold: patches [N; C · kh · kw; L] (or
    /// [C · kh · kw; L]) summed back into [N; C; H; W] (or [C; H; W]), H × W = outputSize; entries an
    /// unfold would have read from the padding are dropped.
    let fold (outputH: int, outputW: int) (options: UnfoldOptions) (patches: Tensor) : Tensor =
        let op = "Conv.fold"
        checkTensor op "patches" patches

        let pb, unbatched =
            match patches.Rank with
            | 3 -> patches, false
            | 2 -> patches.Unsqueeze 0, true
            | _ -> fail op "patches" $"needs patches [N; C · kh · kw; L] or [C · kh · kw; L], got shape %s{fmt patches.ShapeRef}"

        let kh, kw = options.Kernel

        if kh < 1 || kw < 1 then
            fail op "kernel" $"kernel size (%d{kh}, %d{kw}) must be positive"

        if outputH < 1 || outputW < 1 then
            fail op "outputSize" $"output size (%d{outputH}, %d{outputW}) must be positive"

        let rows = pb.ShapeRef[1]

        if rows % (kh * kw) <> 0 then
            fail op "patches" $"patches %s{fmt patches.ShapeRef} have %d{rows} rows, not a multiple of kh · kw = %d{kh * kw}"

        let g =
            geometry
                op
                false
                $"the output size (%d{outputH}, %d{outputW})"
                (rows / (kh * kw))
                (outputH, outputW)
                options.Kernel
                options.Stride
                options.Padding
                options.Dilation

        if pb.ShapeRef[2] <> g.Positions then
            fail
                op
                "patches"
                $"patches %s{fmt patches.ShapeRef} have %d{pb.ShapeRef[2]} positions, but the window gives %d{g.OutH} × %d{g.OutW} = %d{g.Positions} for output size (%d{outputH}, %d{outputW})"

        (Tensor.ApplyCustom(FoldFn(g, SampleMajor), pb))[0] |> dropBatch unbatched

    // -----------------------------------------------------------------------------------------
    // Convolution

    /// The 2-d convolution of a batch xb [N; C; H; W] with w [O; C/groups; kh; kw] (validated).
    let private convolve (g: WindowGeometry) (groups: int) (w: Tensor) (bias: Tensor option) (xb: Tensor) =
        let cg =
            {
                Window = g
                Groups = groups
                OutChannels = w.ShapeRef[0]
            }

        let args =
            match bias with
            | Some b -> [| xb; w; b |]
            | None -> [| xb; w |]

        (Tensor.ApplyCustom(ConvFn(Forward, cg, None, bias.IsSome), args))[0]

    /// Checks weight, bias and groups against the input's channels; returns (out channels, kernel).
    let private checkWeights (op: string) (xb: Tensor) (x: Tensor) (w: Tensor) (bias: Tensor option) (groups: int) (spatial: int) =
        checkTensor op "weight" w
        let c = xb.ShapeRef[1]

        let layout =
            if spatial = 1 then
                "[out; in/groups; k]"
            else
                "[out; in/groups; kh; kw]"

        if w.Rank <> spatial + 2 then
            fail op "weight" $"needs a weight %s{layout}, got shape %s{fmt w.ShapeRef}"

        if w.DType <> x.DType then
            fail op "weight" $"dtypes differ: input %s{x.DType.Name}, weight %s{w.DType.Name}"

        if groups < 1 then
            fail op "groups" $"groups = %d{groups} must be positive"

        let o = w.ShapeRef[0]

        if c % groups <> 0 then
            fail op "groups" $"the input %s{fmt x.ShapeRef} has %d{c} channels, not divisible by groups = %d{groups}"

        if o % groups <> 0 then
            fail op "groups" $"the weight %s{fmt w.ShapeRef} has %d{o} output channels, not divisible by groups = %d{groups}"

        if w.ShapeRef[1] <> c / groups then
            fail
                op
                "weight"
                $"the weight %s{fmt w.ShapeRef} expects %d{w.ShapeRef[1] * groups} input channels (%d{w.ShapeRef[1]} per group × %d{groups} groups), but the input %s{fmt x.ShapeRef} has %d{c}"

        if o < 1 then
            fail op "weight" $"the weight %s{fmt w.ShapeRef} has no output channels"

        match bias with
        | Some b ->
            checkTensor op "bias" b

            if b.Rank <> 1 || b.ShapeRef[0] <> o then
                fail
                    op
                    "bias"
                    $"needs a bias [%d{o}] (one per output channel of the weight %s{fmt w.ShapeRef}), got shape %s{fmt b.ShapeRef}"

            if b.DType <> x.DType then
                fail op "bias" $"dtypes differ: input %s{x.DType.Name}, bias %s{b.DType.Name}"
        | None -> ()

    /// torch.nn.functional.conv2d: x [N; C; H; W] (or [C; H; W]) with weight [O; C/groups; kh; kw]
    /// and an optional bias [O] to [N; O; OutH; OutW] (or [O; OutH; OutW]), where
    /// Out = (In + 2 padding - dilation (k - 1) - 1) / stride + 1. Cross-correlation, as in PyTorch
    /// (the kernel is not flipped); zero padding.
    let conv2dWith (options: Conv2dOptions) (weight: Tensor) (bias: Tensor option) (x: Tensor) : Tensor =
        let op = "Conv.conv2d"
        let xb, unbatched = asBatch op 2 x
        checkWeights op xb x weight bias options.Groups 2
        let s, ws = xb.ShapeRef, weight.ShapeRef

        let g =
            geometry
                op
                false
                $"the input %s{fmt x.ShapeRef}"
                s[1]
                (s[2], s[3])
                (ws[2], ws[3])
                options.Stride
                options.Padding
                options.Dilation

        convolve g options.Groups weight bias xb |> dropBatch unbatched

    /// conv2dWith with stride 1, no padding, no dilation, one group and no bias.
    let conv2d (weight: Tensor) (x: Tensor) : Tensor =
        conv2dWith Conv2dOptions.Default weight None x

    /// torch.nn.functional.conv1d: x [N; C; W] (or [C; W]) with weight [O; C/groups; k] and an
    /// optional bias [O] to [N; O; OutW] (or [O; OutW]). Computed as a 2-d convolution of height 1.
    let conv1dWith (options: Conv1dOptions) (weight: Tensor) (bias: Tensor option) (x: Tensor) : Tensor =
        let op = "Conv.conv1d"
        let xb, unbatched = asBatch op 1 x
        checkWeights op xb x weight bias options.Groups 1
        let s, ws = xb.ShapeRef, weight.ShapeRef

        let g =
            geometry
                op
                true
                $"the input %s{fmt x.ShapeRef}"
                s[1]
                (1, s[2])
                (1, ws[2])
                (1, options.Stride)
                (0, options.Padding)
                (1, options.Dilation)

        let y =
            convolve g options.Groups (weight.Reshape(ws[0], ws[1], 1, ws[2])) bias (xb.Reshape(s[0], s[1], 1, s[2]))

        y.Reshape(s[0], ws[0], g.OutW) |> dropBatch unbatched

    /// conv1dWith with stride 1, no padding, no dilation, one group and no bias.
    let conv1d (weight: Tensor) (x: Tensor) : Tensor =
        conv1dWith Conv1dOptions.Default weight None x

    // -----------------------------------------------------------------------------------------
    // Pooling

    type private PoolKind =
        | SumPool
        | AvgPool
        | MaxPool

    /// A pool of a batch xb [N; C; H; W] over windows (kh, kw): every plane is unfolded as a
    /// one-channel image into [kh · kw; N · C; L] and reduced over the window axis.
    let private pool
        (op: string)
        (oneD: bool)
        (kind: PoolKind)
        (x: Tensor)
        (xb: Tensor)
        (kernel: int * int)
        (stride: int * int)
        (padding: int * int)
        =
        let s = xb.ShapeRef
        let n, c, h, w = s[0], s[1], s[2], s[3]
        let (kh, kw), (ph, pw) = kernel, padding

        let g =
            geometry op oneD $"the input %s{fmt x.ShapeRef}" 1 (h, w) kernel stride padding (1, 1)

        // PyTorch's rule: a window never lies entirely in the padding (which also keeps max pooling's
        // -inf padding out of every result).
        if ph > kh / 2 || pw > kw / 2 then
            fail op "padding" $"padding %s{show oneD padding} must be at most half the kernel size %s{show oneD kernel}"

        let planes = xb.Reshape(n * c, 1, h, w)

        let g, planes =
            match kind with
            | MaxPool when ph > 0 || pw > 0 ->
                // Max pooling pads with -inf (PyTorch's semantics), which is not linear: pad with
                // zeros, add a constant -inf border, and unfold the padded planes without padding.
                let hp, wp = h + 2 * ph, w + 2 * pw

                let border =
                    Array.init (hp * wp) (fun i ->
                        let r, q = i / wp, i % wp

                        if r < ph || r >= ph + h || q < pw || q >= pw + w then
                            Double.NegativeInfinity
                        else
                            0.0)

                let border = Tensor.FromArray(border, hp, wp).Convert xb.DType

                { g with
                    Height = hp
                    Width = wp
                    PadH = 0
                    PadW = 0
                },
                planes.Pad([| 0; 0; ph; pw |], [| 0; 0; ph; pw |]) + border
            | _ -> g, planes

        let windows = unfoldWithGeometry g RowMajor planes // [kh · kw; N · C; L]

        let pooled =
            match kind with
            | SumPool -> windows.Sum 0
            | AvgPool -> windows.Sum 0 / float (kh * kw)
            | MaxPool -> windows.Max 0

        pooled.Reshape(n, c, g.OutH, g.OutW)

    let private pool2d (op: string) (kind: PoolKind) (options: Pool2dOptions) (x: Tensor) =
        let xb, unbatched = asBatch op 2 x

        pool op false kind x xb options.Kernel options.Stride options.Padding
        |> dropBatch unbatched

    let private pool1d (op: string) (kind: PoolKind) (options: Pool1dOptions) (x: Tensor) =
        let xb, unbatched = asBatch op 1 x
        let s = xb.ShapeRef

        let y =
            pool op true kind x (xb.Reshape(s[0], s[1], 1, s[2])) (1, options.Kernel) (1, options.Stride) (0, options.Padding)

        y.Reshape(s[0], s[1], y.ShapeRef[3]) |> dropBatch unbatched

    /// Sum over each window of x [N; C; H; W] (or [C; H; W]); zero padding.
    let sumPool2dWith (options: Pool2dOptions) (x: Tensor) : Tensor =
        pool2d "Conv.sumPool2d" SumPool options x

    /// Sum over non-overlapping kh × kw windows.
    let sumPool2d (kernelH: int, kernelW: int) (x: Tensor) : Tensor =
        sumPool2dWith (Pool2dOptions.Of(kernelH, kernelW)) x

    /// torch.nn.functional.avg_pool2d: the mean over each window of x [N; C; H; W] (or [C; H; W]).
    /// Padding counts as zeros in the mean (PyTorch's default count_include_pad = True): every mean
    /// divides by kh · kw.
    let avgPool2dWith (options: Pool2dOptions) (x: Tensor) : Tensor =
        pool2d "Conv.avgPool2d" AvgPool options x

    /// Mean over non-overlapping kh × kw windows.
    let avgPool2d (kernelH: int, kernelW: int) (x: Tensor) : Tensor =
        avgPool2dWith (Pool2dOptions.Of(kernelH, kernelW)) x

    /// torch.nn.functional.max_pool2d: the largest element of each window of x [N; C; H; W] (or
    /// [C; H; W]); padding is -inf (never the maximum). The derivative is that of Tensor.max: when
    /// several elements of a window tie for the maximum they share its gradient equally (PyTorch
    /// gives all of it to the first one), so gradients differ from PyTorch's only at exact ties.
    let maxPool2dWith (options: Pool2dOptions) (x: Tensor) : Tensor =
        pool2d "Conv.maxPool2d" MaxPool options x

    /// Maximum over non-overlapping kh × kw windows.
    let maxPool2d (kernelH: int, kernelW: int) (x: Tensor) : Tensor =
        maxPool2dWith (Pool2dOptions.Of(kernelH, kernelW)) x

    /// Sum over each window of x [N; C; W] (or [C; W]); zero padding.
    let sumPool1dWith (options: Pool1dOptions) (x: Tensor) : Tensor =
        pool1d "Conv.sumPool1d" SumPool options x

    /// Sum over non-overlapping windows of `kernel` elements.
    let sumPool1d (kernel: int) (x: Tensor) : Tensor =
        sumPool1dWith (Pool1dOptions.Of kernel) x

    /// torch.nn.functional.avg_pool1d: the mean over each window (padding counts as zeros, as with
    /// PyTorch's default count_include_pad = True).
    let avgPool1dWith (options: Pool1dOptions) (x: Tensor) : Tensor =
        pool1d "Conv.avgPool1d" AvgPool options x

    /// Mean over non-overlapping windows of `kernel` elements.
    let avgPool1d (kernel: int) (x: Tensor) : Tensor =
        avgPool1dWith (Pool1dOptions.Of kernel) x

    /// torch.nn.functional.max_pool1d: the largest element of each window; -inf padding; ties share
    /// the gradient (see maxPool2dWith).
    let maxPool1dWith (options: Pool1dOptions) (x: Tensor) : Tensor =
        pool1d "Conv.maxPool1d" MaxPool options x

    /// Maximum over non-overlapping windows of `kernel` elements.
    let maxPool1d (kernel: int) (x: Tensor) : Tensor =
        maxPool1dWith (Pool1dOptions.Of kernel) x
