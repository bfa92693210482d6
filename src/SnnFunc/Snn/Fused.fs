/// Fused spiking primitives: whole LIF/LI layers over time and sparse spike-matrix products. Each is
/// a small family of kernels (forward, tangent, transposed tangent) whose rules apply one another,
/// so every transform and nesting of transforms runs on the loops of Kernels/Spiking.fs; each kernel
/// has a twin of tensor operations (the step functions of Snn) for the calls that meet a tracer.
[<RequireQualifiedAccess>]
module SnnFunc.Fused

open System
open System.Runtime.CompilerServices
open SnnFunc.Kernels

let private f32 (t: Tensor) =
    match t.Storage with
    | Storage.F32 a -> a
    | _ -> invalidOp "expected Float32 data"

let private f64 (t: Tensor) =
    match t.Storage with
    | Storage.F64 a -> a
    | _ -> invalidOp "expected Float64 data"

let private f32OrNull (t: Tensor) = if isNull t then null else f32 t
let private f64OrNull (t: Tensor) = if isNull t then null else f64 t

let private steps (op: string) (x: Tensor) =
    if x.Rank < 1 then
        invalidArg "currents" $"%s{op}: input currents need a leading time axis, got shape %s{Shape.format x.ShapeRef}"

    if not x.DType.IsFloat then
        invalidArg "currents" $"%s{op}: input currents must be float32 or float64, got %s{x.DType.Name}"

    x.ShapeRef[0], x.Count / max 1 x.ShapeRef[0]

/// `count` uninitialised buffers shaped like `like`, filled by `fill32`/`fill64` by dtype.
let private run (like: Tensor) (count: int) (fill32: float32[][] -> unit) (fill64: float[][] -> unit) =
    let n = like.Count

    match like.DType with
    | Float32 ->
        let outs = Array.init count (fun _ -> GC.AllocateUninitializedArray<float32> n)
        fill32 outs
        outs |> Array.map (fun o -> Tensor.FromStorage(like.ShapeRef, Storage.F32 o))
    | Float64 ->
        let outs = Array.init count (fun _ -> GC.AllocateUninitializedArray<float> n)
        fill64 outs
        outs |> Array.map (fun o -> Tensor.FromStorage(like.ShapeRef, Storage.F64 o))
    | Int32 -> invalidOp "internal error: a spiking kernel on int32 data"

let private sameAs (x: Tensor) (count: int) = Array.create count (x.Shape, x.DType)

// ---------------------------------------------------------------------------------------------
// LIF layer over time: forward, tangent (linear in the current tangents) and its transpose

let private lifConstants32 (p: Snn.Lif.Params) : LifConstants<float32> =
    {
        A = float32 (p.Dt / p.TauMem)
        B = float32 (1.0 - p.Dt / p.TauSyn)
        VLeak = float32 p.VLeak
        VTh = float32 p.VTh
        VReset = float32 p.VReset
        Jump = float32 (p.VTh - p.VReset)
        ResetToValue = (p.Reset = Snn.ToValue)
    }

let private lifConstants64 (p: Snn.Lif.Params) : LifConstants<float> =
    {
        A = p.Dt / p.TauMem
        B = 1.0 - p.Dt / p.TauSyn
        VLeak = p.VLeak
        VTh = p.VTh
        VReset = p.VReset
        Jump = p.VTh - p.VReset
        ResetToValue = (p.Reset = Snn.ToValue)
    }

/// The LIF recurrence by the generic step function: spikes and membrane before reset.
let private lifGeneric (p: Snn.Lif.Params) (currents: Tensor) =
    let state = Snn.Lif.init currents.ShapeRef[1..] currents.DType
    let _, (z, v) = Ad.scan (Snn.Lif.stepWithMembrane p) state currents
    z, v

/// The surrogate derivative at every membrane value: one kernel pass for the built-in shapes on
/// concrete data, the surrogate's tensor operations otherwise (so it has derivatives itself).
let private surrogateAt (p: Snn.Lif.Params) (v: Tensor) =
    let sur = p.Surrogate

    if sur.Shape = SurrogateShape.Custom || not v.IsConcrete then
        sur.Derivative(v - p.VTh)
    else
        (run v 1 (fun o -> Spiking.Surrogate(sur.Shape, float32 sur.Parameter, float32 p.VTh, f32 v, o[0])) (fun o ->
            Spiking.Surrogate(sur.Shape, sur.Parameter, p.VTh, f64 v, o[0])))[0]

/// Tangent of the LIF run, args [s; z; dc] -> [dz; dv]: the membrane tangent dv = L dc does not
/// depend on the surrogate derivatives s (the reset carries no gradient), and dz = s dv. Linear in
/// dc; s and z are constants (z only as the reset mask, whose own tangent is ignored, as in the
/// step function's stopGradient).
type private LifTangent(p: Snn.Lif.Params) =
    inherit KernelFn("Fused.lif (tangent)")

    override _.Kernel args =
        let s, z, dc = args[0], args[1], args[2]
        let t, m = steps "Fused.lif" z

        run z 2 (fun o -> Spiking.LifTangent(lifConstants32 p, t, m, f32 s, f32 z, f32 dc, o[0], o[1])) (fun o ->
            Spiking.LifTangent(lifConstants64 p, t, m, f64 s, f64 z, f64 dc, o[0], o[1]))

    override _.Twin args =
        let s, z, dc = args[0], args[1], args[2]
        let a, b = p.Dt / p.TauMem, 1.0 - p.Dt / p.TauSyn
        let zero = Tensor.Full(dc.ShapeRef[1..], 0.0, dc.DType)

        let step (dv: Tensor, di: Tensor) (st: Tensor, zt: Tensor, dct: Tensor) =
            let d = dv + (di - dv) * a
            let dv' = if p.Reset = Snn.ToValue then d * (1.0 - zt) else d
            (dv', di * b + dct), (st * d, d)

        let _, (dz, dv) = Ad.scan step (zero, zero) (s, z, dc)
        [| dz; dv |]

    override _.IsLinear = true
    override _.IsConstantArg i = i < 2
    override _.OutputTypes args = sameAs args[2] 2

    override this.Jvp(primals, tangents) =
        let s, z = primals[0], primals[1]
        let outs = Tensor.ApplyCustom(this, primals)

        let fromDc =
            if isNull tangents[2] then
                [| null; null |]
            else
                Tensor.ApplyCustom(this, s, z, tangents[2])

        // d(s dv) = ds dv + s d(dv); z's tangent does not enter (no gradient through the reset).
        let fromS = if isNull tangents[0] then null else tangents[0] * outs[1]
        outs, [| Linear.addZ fromDc[0] fromS; fromDc[1] |]

    override _.Transpose(consts, cts) =
        let s, z = consts[0], consts[1]
        let dc = LifTangent.Transposed p s z cts[0] cts[1]
        [| null; null; dc |]

    override this.Batch(args, batched, size) =
        Some(KernelBatching.timeMajor (fun a -> Tensor.ApplyCustom(this, a)) args batched size)

    /// Lᵀ (gv + s gz) for the cotangents present (null = zero); zeros when both are absent.
    static member Transposed (p: Snn.Lif.Params) (s: Tensor) (z: Tensor) (gz: Tensor) (gv: Tensor) : Tensor =
        match gz, gv with
        | null, null -> null
        | _ ->
            let present = [| gz; gv |] |> Array.filter (fun g -> not (isNull g))
            (Tensor.ApplyCustom(LifTangentT(p, not (isNull gz), not (isNull gv)), Array.append [| s; z |] present))[0]

/// Transposed tangent of the LIF run (backpropagation through time), args [s; z; gz?; gv?] -> [dc]
/// for dc = Lᵀ (gv + s gz); which of gz, gv are present is fixed per instance. Linear in them.
and private LifTangentT(p: Snn.Lif.Params, hasZ: bool, hasV: bool) =
    inherit KernelFn("Fused.lif (transposed tangent)")

    member private _.Parts(args: Tensor[]) =
        let gz = if hasZ then args[2] else null
        let gv = if hasV then args[if hasZ then 3 else 2] else null
        args[0], args[1], gz, gv

    override this.Kernel args =
        let s, z, gz, gv = this.Parts args
        let t, m = steps "Fused.lif" z

        run z 1 (fun o -> Spiking.LifTranspose(lifConstants32 p, t, m, f32 s, f32 z, f32OrNull gz, f32OrNull gv, o[0])) (fun o ->
            Spiking.LifTranspose(lifConstants64 p, t, m, f64 s, f64 z, f64OrNull gz, f64OrNull gv, o[0]))

    override this.Twin args =
        let s, z, gz, gv = this.Parts args
        let a, b = p.Dt / p.TauMem, 1.0 - p.Dt / p.TauSyn
        let zero = Tensor.Full(z.ShapeRef[1..], 0.0, z.DType)

        let orZeros (g: Tensor) =
            if isNull g then Tensor.ZerosLike z else g

        let step (lv: Tensor, li: Tensor) (st: Tensor, zt: Tensor, gzt: Tensor, gvt: Tensor) =
            let kept = if p.Reset = Snn.ToValue then lv * (1.0 - zt) else lv
            let l1 = kept + gzt * st + gvt
            (l1 * (1.0 - a), li * b + l1 * a), li

        let _, dc =
            Ad.scanWith
                { ScanOptions.Default with
                    Reverse = true
                }
                step
                (zero, zero)
                (s, z, orZeros gz, orZeros gv)

        [| dc |]

    override _.IsLinear = true
    override _.IsConstantArg i = i < 2
    override _.OutputTypes args = sameAs args[0] 1

    override this.Jvp(primals, tangents) =
        let s, z, gz, _ = this.Parts primals
        let outs = Tensor.ApplyCustom(this, primals)
        let _, _, dgz, dgv = this.Parts tangents
        let fromG = LifTangent.Transposed p s z dgz dgv
        // d Lᵀ(gv + s gz) / ds = Lᵀ(ds gz).
        let fromS =
            if isNull tangents[0] || not hasZ then
                null
            else
                LifTangent.Transposed p s z null (tangents[0] * gz)

        outs, [| Linear.addZ fromG fromS |]

    override this.Transpose(consts, cts) =
        let s, z = consts[0], consts[1]

        match cts[0] with
        | null -> Array.zeroCreate consts.Length
        | g ->
            // Lᵀ's transpose is L: gv gets L g, gz gets s L g.
            let dzdv = Tensor.ApplyCustom(LifTangent p, s, z, g)

            Array.append [| null; null |] (Array.append (if hasZ then [| dzdv[0] |] else [||]) (if hasV then [| dzdv[1] |] else [||]))

    override this.Batch(args, batched, size) =
        Some(KernelBatching.timeMajor (fun a -> Tensor.ApplyCustom(this, a)) args batched size)

/// The whole LIF layer over time, args [c] -> [z; v]: one forward loop; its tangent is LifTangent.
type private LifForward(p: Snn.Lif.Params) =
    inherit KernelFn("Fused.lif")

    override _.Kernel args =
        let c = args[0]
        let t, m = steps "Fused.lif" c

        run c 2 (fun o -> Spiking.LifForward(lifConstants32 p, t, m, f32 c, o[0], o[1])) (fun o ->
            Spiking.LifForward(lifConstants64 p, t, m, f64 c, o[0], o[1]))

    override _.Twin args =
        let z, v = lifGeneric p args[0]
        [| z; v |]

    override this.Jvp(primals, tangents) =
        let outs = Tensor.ApplyCustom(this, primals)
        let z, v = outs[0], outs[1]
        let s = surrogateAt p v
        outs, Tensor.ApplyCustom(LifTangent p, s, z, tangents[0])

    override this.Batch(args, batched, size) =
        Some(KernelBatching.timeMajor (fun a -> Tensor.ApplyCustom(this, a)) args batched size)

/// A LIF layer over time from zero state: input currents [T; ...] to (spikes, membrane before reset),
/// both [T; ...]. Same numbers as scanning Snn.Lif.stepWithMembrane; one fused loop forward and one
/// backpropagation-through-time loop backward, under every transform.
let lif (p: Snn.Lif.Params) (currents: Tensor) : Tensor * Tensor =
    Snn.Lif.validate p |> ignore
    steps "Fused.lif" currents |> ignore
    let outs = Tensor.ApplyCustom(LifForward p, currents)
    outs[0], outs[1]

// ---------------------------------------------------------------------------------------------
// LI layer over time (linear in the input currents when VLeak = 0)

/// The LI membrane for VLeak = 0, args [c] -> [v]: a linear map (and LiTransposed its transpose).
type private LiLinear(p: Snn.Li.Params) =
    inherit KernelFn("Fused.li")
    let a, b = p.Dt / p.TauMem, 1.0 - p.Dt / p.TauSyn

    override _.Kernel args =
        let c = args[0]
        let t, m = steps "Fused.li" c

        run c 1 (fun o -> Spiking.LiForward(float32 a, float32 b, 0.0f, t, m, f32 c, o[0])) (fun o ->
            Spiking.LiForward(a, b, 0.0, t, m, f64 c, o[0]))

    override _.Twin args =
        let c = args[0]

        let _, v =
            Ad.scan (Snn.Li.step { p with VLeak = 0.0 }) (Snn.Li.init c.ShapeRef[1..] c.DType) c

        [| v |]

    override this.Jvp(primals, tangents) =
        Tensor.ApplyCustom(this, primals), Tensor.ApplyCustom(this, tangents)

    override _.IsLinear = true
    override _.OutputTypes args = sameAs args[0] 1

    override _.Transpose(_, cts) =
        Tensor.ApplyCustom(LiTransposed p, cts[0])

    override this.Batch(args, batched, size) =
        Some(KernelBatching.timeMajor (fun a -> Tensor.ApplyCustom(this, a)) args batched size)

/// The transpose of LiLinear, args [gv] -> [dc]: the recurrence run backwards.
and private LiTransposed(p: Snn.Li.Params) =
    inherit KernelFn("Fused.li (transposed)")
    let a, b = p.Dt / p.TauMem, 1.0 - p.Dt / p.TauSyn

    override _.Kernel args =
        let g = args[0]
        let t, m = steps "Fused.li" g

        run g 1 (fun o -> Spiking.LiTranspose(float32 a, float32 b, t, m, f32 g, o[0])) (fun o ->
            Spiking.LiTranspose(a, b, t, m, f64 g, o[0]))

    override _.Twin args =
        let g = args[0]
        let zero = Tensor.Full(g.ShapeRef[1..], 0.0, g.DType)

        let step (lv: Tensor, li: Tensor) (gt: Tensor) =
            let l1 = lv + gt
            (l1 * (1.0 - a), li * b + l1 * a), li

        let _, dc =
            Ad.scanWith
                { ScanOptions.Default with
                    Reverse = true
                }
                step
                (zero, zero)
                g

        [| dc |]

    override this.Jvp(primals, tangents) =
        Tensor.ApplyCustom(this, primals), Tensor.ApplyCustom(this, tangents)

    override _.IsLinear = true
    override _.OutputTypes args = sameAs args[0] 1

    override _.Transpose(_, cts) = Tensor.ApplyCustom(LiLinear p, cts[0])

    override this.Batch(args, batched, size) =
        Some(KernelBatching.timeMajor (fun a -> Tensor.ApplyCustom(this, a)) args batched size)

/// An LI readout layer over time from zero state: input currents [T; ...] to membrane [T; ...].
/// Same numbers as scanning Snn.Li.step.
let li (p: Snn.Li.Params) (currents: Tensor) : Tensor =
    Snn.Li.validate p |> ignore
    steps "Fused.li" currents |> ignore
    let v = (Tensor.ApplyCustom(LiLinear p, currents))[0]

    if p.VLeak = 0.0 then
        v
    else
        // The leak adds the response to zero input, which does not depend on the currents.
        let zero = Tensor.Full(currents.ShapeRef, 0.0, currents.DType)

        let _, offset =
            Ad.scan (Snn.Li.step p) (Snn.Li.init currents.ShapeRef[1..] currents.DType) zero

        v + offset

// ---------------------------------------------------------------------------------------------
// Sparse spike products

/// Density above which a dense GEMM beats accumulating rows.
let private maxDensity = 0.15

type private Compressed = { Rows: SpikeRows option }

/// Compressed rows of each concrete spike tensor, computed once per tensor: the forward product,
/// its weight tangent and the transposed product of one training step all read the same x.
let private compressed = ConditionalWeakTable<Tensor, Compressed>()

/// The rows of a concrete [..., k] tensor as sparse rows, when it is 0/1 and sparse enough.
let private compress (x: Tensor) : SpikeRows option =
    if not x.IsConcrete || x.Rank < 1 then
        None
    else
        let entry =
            compressed.GetValue(
                x,
                fun x ->
                    let width = x.ShapeRef[x.Rank - 1]
                    let rows = if width = 0 then 0 else x.Count / width

                    {
                        Rows =
                            match x.Storage with
                            | Storage.F32 a -> Spiking.TryCompress(a, rows, width, maxDensity)
                            | Storage.F64 a -> Spiking.TryCompress(a, rows, width, maxDensity)
                            | Storage.I32 _ -> None
                    }
            )

        entry.Rows

let private productShape (x: Tensor) (n: int) =
    Array.append x.ShapeRef[.. x.Rank - 2] [| n |]

/// The batching rule of a product x · w: a batched x only adds leading axes; a batched w [B; k; n]
/// is laid side by side as [k; B n] for one product (`apply`), whose result is unfolded; both
/// batched is a batched matrix product.
let private batchProduct (apply: Tensor -> Tensor -> Tensor) (x: Tensor) (w: Tensor) (batched: bool[]) (size: int) =
    match batched[0], batched[1] with
    | true, false -> apply x w
    | false, true ->
        let k, n = w.ShapeRef[1], w.ShapeRef[2]
        let y = apply x (w.Permute(1, 0, 2).Reshape(k, size * n))
        let lead = x.ShapeRef[.. x.Rank - 2]
        KernelBatching.moveToFront lead.Length (y.Reshape(Array.append lead [| size; n |]))
    | _ ->
        let rows = x.Reshape(size, -1, x.ShapeRef[x.Rank - 1])
        rows.MatMul(w).Reshape(Array.append x.ShapeRef[.. x.Rank - 2] [| w.ShapeRef[2] |])

/// x · w for x [..., k], w [k; n], args [x; w]: accumulated rows of w when x is a sparse 0/1
/// matrix, a GEMM otherwise. Linear in w with x a constant (SpikeProduct adds x's tangent).
type private SpikeLeft() =
    inherit KernelFn("Fused.spikeMatmul (weights)")

    override _.Kernel args =
        let x, w = args[0], args[1]

        match compress x with
        | None -> [| x.MatMul w |]
        | Some rows ->
            let n = w.ShapeRef[1]

            [|
                match w.Storage with
                | Storage.F32 a ->
                    let out = GC.AllocateUninitializedArray(rows.Rows * n)
                    Spiking.SparseTimesDense(rows, a, n, out)
                    Tensor.FromStorage(productShape x n, Storage.F32 out)
                | Storage.F64 a ->
                    let out = GC.AllocateUninitializedArray(rows.Rows * n)
                    Spiking.SparseTimesDense(rows, a, n, out)
                    Tensor.FromStorage(productShape x n, Storage.F64 out)
                | Storage.I32 _ -> invalidArg "w" "Fused.spikeMatmul: needs float weights, got int32"
            |]

    override _.Twin args = [| args[0].MatMul args[1] |]
    override _.IsLinear = true
    override _.IsConstantArg i = i = 0

    override _.OutputTypes args =
        [| productShape args[0] args[1].ShapeRef[1], args[1].DType |]

    override this.Jvp(primals, tangents) =
        let x = primals[0]
        let outs = Tensor.ApplyCustom(this, primals)

        let fromW =
            if isNull tangents[1] then
                null
            else
                (Tensor.ApplyCustom(this, x, tangents[1]))[0]

        let fromX =
            if isNull tangents[0] then
                null
            else
                tangents[0].MatMul primals[1]

        outs, [| Linear.addZ fromX fromW |]

    override _.Transpose(consts, cts) =
        [| null; (Tensor.ApplyCustom(SpikeLeftT(), consts[0], cts[0]))[0] |]

    override this.Batch(args, batched, size) =
        let apply x w = (Tensor.ApplyCustom(this, x, w))[0]
        Some [| batchProduct apply args[0] args[1] batched size |]

/// xᵀ · g for x [..., k] and g [..., n] (leading axes flattened into rows), args [x; g] -> [k; n]:
/// scattered rows for a sparse 0/1 x, a GEMM otherwise. Linear in g; the transpose of SpikeLeft.
and private SpikeLeftT() =
    inherit KernelFn("Fused.spikeMatmul (transposed)")

    static member private Rows(t: Tensor) =
        let width = t.ShapeRef[t.Rank - 1]
        t.Reshape(t.Count / max 1 width, width)

    override _.Kernel args =
        let x, g = args[0], args[1]
        let k, n = x.ShapeRef[x.Rank - 1], g.ShapeRef[g.Rank - 1]

        match compress x with
        | None -> [| SpikeLeftT.Rows(x).MatMul(SpikeLeftT.Rows g, true, false) |]
        | Some rows ->
            [|
                match g.Storage with
                | Storage.F32 a ->
                    let out = GC.AllocateUninitializedArray(k * n)
                    Spiking.SparseTransposeTimesDense(rows, a, n, out)
                    Tensor.FromStorage([| k; n |], Storage.F32 out)
                | Storage.F64 a ->
                    let out = GC.AllocateUninitializedArray(k * n)
                    Spiking.SparseTransposeTimesDense(rows, a, n, out)
                    Tensor.FromStorage([| k; n |], Storage.F64 out)
                | Storage.I32 _ -> invalidArg "g" "Fused.spikeMatmul: needs float cotangents, got int32"
            |]

    override _.Twin args =
        [| SpikeLeftT.Rows(args[0]).MatMul(SpikeLeftT.Rows args[1], true, false) |]

    override _.IsLinear = true
    override _.IsConstantArg i = i = 0

    override _.OutputTypes args =
        [|
            [| args[0].ShapeRef[args[0].Rank - 1]; args[1].ShapeRef[args[1].Rank - 1] |], args[1].DType
        |]

    override this.Jvp(primals, tangents) =
        let x, g = primals[0], primals[1]
        let outs = Tensor.ApplyCustom(this, primals)

        let fromG =
            if isNull tangents[1] then
                null
            else
                (Tensor.ApplyCustom(this, x, tangents[1]))[0]

        let fromX =
            if isNull tangents[0] then
                null
            else
                SpikeLeftT.Rows(tangents[0]).MatMul(SpikeLeftT.Rows g, true, false)

        outs, [| Linear.addZ fromX fromG |]

    override _.Transpose(consts, cts) =
        [| null; (Tensor.ApplyCustom(SpikeLeft(), consts[0], cts[0]))[0] |]

    override this.Batch(args, batched, size) =
        let x, g = args[0], args[1]

        match batched[0], batched[1] with
        | false, true ->
            // xᵀ [g_1 ... g_B] side by side: g [B; ...; n] -> [...; B n], one product, then unfold.
            let n = g.ShapeRef[g.Rank - 1]
            let wide = KernelBatching.moveBatchTo (g.Rank - 2) size true g
            let wide = wide.Reshape(Array.append wide.ShapeRef[.. wide.Rank - 3] [| size * n |])
            let y = (Tensor.ApplyCustom(this, x, wide))[0]
            let k = y.ShapeRef[0]
            Some [| y.Reshape(k, size, n).Permute(1, 0, 2) |]
        | _ ->
            // Per-example xᵀ g as one batched product of the row matrices.
            let rows (t: Tensor) b =
                let t = KernelBatching.moveBatchTo 0 size b t
                t.Reshape(size, -1, t.ShapeRef[t.Rank - 1])

            Some [| (rows x batched[0]).MatMul(rows g batched[1], true, false) |]

/// x · w with x's tangent: args [x; w] -> [x · w] (see spikeMatmul).
type private SpikeProduct() =
    inherit KernelFn("Fused.spikeMatmul")
    override _.Kernel args = Tensor.ApplyCustom(SpikeLeft(), args)
    override _.Twin args = [| args[0].MatMul args[1] |]

    override this.Jvp(primals, tangents) =
        let x, w = primals[0], primals[1]
        let outs = Tensor.ApplyCustom(this, primals)
        let fromX = if isNull tangents[0] then null else tangents[0].MatMul w

        let fromW =
            if isNull tangents[1] then
                null
            else
                (Tensor.ApplyCustom(SpikeLeft(), x, tangents[1]))[0]

        outs, [| Linear.addZ fromX fromW |]

    override this.Batch(args, batched, size) =
        let apply x w = (Tensor.ApplyCustom(this, x, w))[0]
        Some [| batchProduct apply args[0] args[1] batched size |]

/// x · w where x [..., k] holds spikes (0/1) and w is a [k; n] matrix: accumulates the rows of w
/// selected by each spike instead of multiplying, when x is binary and sparse (otherwise a GEMM).
/// Differentiable in both arguments; the derivative with respect to x is a dense product.
let spikeMatmul (x: Tensor) (w: Tensor) : Tensor =
    if isNull x || isNull w then
        invalidArg "x" "Fused.spikeMatmul: null argument"

    if w.Rank <> 2 || x.Rank < 1 || x.ShapeRef[x.Rank - 1] <> w.ShapeRef[0] then
        invalidArg "w" $"Fused.spikeMatmul: needs x [..., k] and w [k; n], got %s{Shape.format x.ShapeRef} and %s{Shape.format w.ShapeRef}"

    if x.DType <> w.DType then
        invalidArg "w" $"Fused.spikeMatmul: dtypes differ (%s{x.DType.Name}, %s{w.DType.Name})"

    (Tensor.ApplyCustom(SpikeProduct(), x, w))[0]
