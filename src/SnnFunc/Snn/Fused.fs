/// Fused spiking primitives: whole LIF/LI layers over time (the kernel family of LifFamily.fs) and
/// sparse spike-matrix products. Each is a small family of kernels whose rules apply one another,
/// so every transform and nesting of transforms runs on the loops of Kernels/; each kernel has a
/// twin of tensor operations (the step functions of Snn) for the calls that meet a tracer.
[<RequireQualifiedAccess>]
module SnnFunc.Fused

open System
open System.Runtime.CompilerServices
open SnnFunc.Kernels

let private f32 (t: Tensor) = t.Storage.Float32s
let private f64 (t: Tensor) = t.Storage.Float64s

let private steps (op: string) (x: Tensor) =
    if x.Rank < 1 then
        invalidArg "currents" $"%s{op}: input currents need a leading time axis, got shape %s{Shape.format x.ShapeRef}"

    if not x.DType.IsFloat then
        invalidArg "currents" $"%s{op}: input currents must be float32 or float64, got %s{x.DType.Name}"

    x.ShapeRef[0], x.Count / max 1 x.ShapeRef[0]

// ---------------------------------------------------------------------------------------------
// LIF and LI layers over time (the kernel family of LifFamily.fs)

/// What a fused LIF run returns, all [T; ...] but the final state.
type LifRun =
    {
        Spikes: Tensor
        /// The membrane before the reset.
        Membrane: Tensor
        /// The synaptic current after each step's input.
        Current: Tensor
        /// The state after the last step (a later run can continue from it).
        Final: Snn.Lif.State
    }

/// What a fused LI run returns.
type LiRun =
    {
        Membrane: Tensor
        Current: Tensor
        Final: Snn.Li.State
    }

/// A lane argument of the kernels: rank 0 stays (one value for all lanes), anything else is
/// broadcast to the lane shape (the broadcast's transpose sums the cotangents back).
let private laneArg (like: Tensor) (lane: int[]) (t: Tensor) =
    let t = if t.DType = like.DType then t else t.Convert like.DType

    if t.Rank = 0 || t.ShapeRef = lane then
        t
    else
        t.BroadcastTo lane

/// The state after the last step from the run's outputs (or `initial` after zero steps).
let private lastSlice (x: Tensor) =
    x.Narrow(0, x.ShapeRef[0] - 1, 1).Squeeze 0

let private kernelMode (spiking: bool) (reset: Snn.Reset) (refractory: int) : LifMode =
    {
        Spiking = spiking
        ResetToValue = (reset = Snn.ToValue)
        Refractory = refractory
    }

/// A LIF layer over time from `state` with the per-step factors a = dt/τm and b = 1 - dt/τs and the
/// other parameters given, each rank 0 or broadcastable to the per-step shape: for models that
/// derive them otherwise (NIR's primitives, an emulator's circuits) — lifRun derives them from a
/// Config and Params. c.Dt is not used.
let lifRunDecays
    (c: Snn.Lif.Config)
    (a: Tensor, b: Tensor, vLeak: Tensor, vTh: Tensor, vReset: Tensor)
    (state: Snn.Lif.State)
    (currents: Tensor)
    : LifRun =
    steps "Fused.lif" currents |> ignore
    let lane = currents.ShapeRef[1..]

    if state.V.ShapeRef <> lane then
        invalidArg
            "state"
            $"Fused.lif: the state's shape %s{Shape.format state.V.ShapeRef} is not the per-step shape %s{Shape.format lane} of the currents %s{Shape.format currents.ShapeRef}"

    let arg = laneArg currents lane
    let mode = kernelMode true c.Reset c.RefractorySteps
    let vTh, vReset = arg vTh, arg vReset

    let outs =
        Tensor.ApplyCustom(
            LifFamily.LifForward(mode, c.Surrogate, "Fused.lif"),
            currents,
            arg a,
            arg b,
            arg vLeak,
            vTh,
            vReset,
            arg state.V,
            arg state.I,
            arg state.Refractory
        )

    let v1, i, z = outs[0], outs[1], outs[2]

    let final: Snn.Lif.State =
        if currents.ShapeRef[0] = 0 then
            state
        else
            let zl, vl = Ad.stopGradient (lastSlice z), lastSlice v1

            {
                V =
                    (match c.Reset with
                     | Snn.ToValue -> vl * (1.0 - zl) + zl * vReset
                     | Snn.BySubtraction -> vl - zl * (vTh - vReset))
                I = lastSlice i
                Refractory = if c.RefractorySteps > 0 then outs[4] else state.Refractory
            }

    {
        Spikes = z
        Membrane = v1
        Current = i
        Final = final
    }

/// The check of lifRun's parameters (every value finite), also made by Graph.infer's step loop.
let internal checkLifParams (p: Snn.Lif.Params) =
    NeuronParams.checkAllFinite
        "Fused.lif"
        [
            "TauSyn", p.TauSyn
            "TauMem", p.TauMem
            "VLeak", p.VLeak
            "VTh", p.VTh
            "VReset", p.VReset
        ]

/// The check of liRun's parameters.
let internal checkLiParams (p: Snn.Li.Params) =
    NeuronParams.checkAllFinite "Fused.li" [ "TauSyn", p.TauSyn; "TauMem", p.TauMem; "VLeak", p.VLeak ]

/// A LIF layer over time from `state`: input currents [T; ...] to spikes, membrane (before reset)
/// and synaptic current, [T; ...] each, and the final state. The same numbers as scanning
/// Snn.Lif.stepFull; one fused loop forward and one backpropagation-through-time loop backward,
/// under every transform, with the gradients of the parameters (rank 0 or broadcastable to the
/// neuron shape) and of the initial state from the same loops.
let lifRun (c: Snn.Lif.Config) (p: Snn.Lif.Params) (state: Snn.Lif.State) (currents: Tensor) : LifRun =
    steps "Fused.lif" currents |> ignore
    checkLifParams p
    let a, b = Snn.Lif.decays c p currents
    lifRunDecays c (a, b, p.VLeak, p.VTh, p.VReset) state currents

/// A LIF layer over time from zero state: input currents [T; ...] to (spikes, membrane before reset).
let lifWith (c: Snn.Lif.Config) (p: Snn.Lif.Params) (currents: Tensor) : Tensor * Tensor =
    steps "Fused.lif" currents |> ignore
    let r = lifRun c p (Snn.Lif.init currents.ShapeRef[1..] currents.DType) currents
    r.Spikes, r.Membrane

/// A LIF layer over time from zero state with a spec's (constant) parameters: input currents
/// [T; ...] to (spikes, membrane before reset), both [T; ...]. Same numbers as scanning
/// Snn.Lif.stepWithMembrane.
let lif (p: Snn.Lif.Spec) (currents: Tensor) : Tensor * Tensor =
    Snn.Lif.validate p |> ignore
    steps "Fused.lif" currents |> ignore
    lifWith (Snn.Lif.config p) (Snn.Lif.paramsAs currents.DType p) currents

/// An LI readout layer over time from `state` with the per-step factors a, b and the leak given
/// (as lifRunDecays).
let liRunDecays (a: Tensor, b: Tensor, vLeak: Tensor) (state: Snn.Li.State) (currents: Tensor) : LiRun =
    steps "Fused.li" currents |> ignore
    let lane = currents.ShapeRef[1..]

    if state.V.ShapeRef <> lane then
        invalidArg
            "state"
            $"Fused.li: the state's shape %s{Shape.format state.V.ShapeRef} is not the per-step shape %s{Shape.format lane} of the currents %s{Shape.format currents.ShapeRef}"

    let arg = laneArg currents lane
    let unused = Tensor.Scalar(0.0, currents.DType)

    let outs =
        Tensor.ApplyCustom(
            LifFamily.LifForward(kernelMode false Snn.ToValue 0, Surrogate.straightThrough, "Fused.li"),
            currents,
            arg a,
            arg b,
            arg vLeak,
            unused,
            unused,
            arg state.V,
            arg state.I,
            unused
        )

    let v, i = outs[0], outs[1]

    {
        Membrane = v
        Current = i
        Final =
            if currents.ShapeRef[0] = 0 then
                state
            else
                { V = lastSlice v; I = lastSlice i }
    }

/// An LI readout layer over time from `state`: input currents [T; ...] to membrane and synaptic
/// current [T; ...] and the final state; the same numbers as scanning Snn.Li.stepFull, fused as lifRun.
let liRun (c: Snn.Li.Config) (p: Snn.Li.Params) (state: Snn.Li.State) (currents: Tensor) : LiRun =
    steps "Fused.li" currents |> ignore
    checkLiParams p
    let a, b = Snn.Li.decays c p currents
    liRunDecays (a, b, p.VLeak) state currents

/// An LI readout layer over time from zero state: input currents [T; ...] to membrane [T; ...].
let liWith (c: Snn.Li.Config) (p: Snn.Li.Params) (currents: Tensor) : Tensor =
    steps "Fused.li" currents |> ignore
    (liRun c p (Snn.Li.init currents.ShapeRef[1..] currents.DType) currents).Membrane

/// An LI readout layer over time from zero state with a spec's (constant) parameters. Same numbers
/// as scanning Snn.Li.step.
let li (p: Snn.Li.Spec) (currents: Tensor) : Tensor =
    Snn.Li.validate p |> ignore
    steps "Fused.li" currents |> ignore
    liWith (Snn.Li.config p) (Snn.Li.paramsAs currents.DType p) currents

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
