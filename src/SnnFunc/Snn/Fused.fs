/// Fused spiking primitives: whole LIF/LI layers over time and sparse spike-matrix products, each one
/// custom function with hand-written derivative loops (Kernels/Spiking.fs). They compute exactly what
/// the step functions of Snn compute (and fall back to them when the inputs are traced by an inner
/// transform), but reverse mode records one tape entry per layer instead of several per step.
[<RequireQualifiedAccess>]
module SnnFunc.Fused

open System
open SnnFunc.Kernels

let private f32 (t: Tensor) =
    match t.Storage with
    | Storage.F32 a -> a
    | Storage.F64 _ -> invalidOp "expected Float32 data"

let private f64 (t: Tensor) =
    match t.Storage with
    | Storage.F64 a -> a
    | Storage.F32 _ -> invalidOp "expected Float64 data"

let private steps (op: string) (x: Tensor) =
    if x.Rank < 1 then
        invalidArg "currents" $"%s{op}: input currents need a leading time axis, got shape %s{Shape.format x.ShapeRef}"

    x.ShapeRef[0], x.Count / max 1 x.ShapeRef[0]

// ---------------------------------------------------------------------------------------------
// LIF layer over time

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

/// The LIF recurrence by the generic step function (for traced inputs): spikes and membrane.
let private lifGeneric (p: Snn.Lif.Params) (currents: Tensor) =
    let state = Snn.Lif.init currents.ShapeRef[1..] currents.DType
    let _, (z, v) = Ad.scan (Snn.Lif.stepWithMembrane p) state currents
    z, v

/// The tangent map of one LIF run: linear in the input-current tangents, given the forward run's
/// surrogate derivatives s and spikes z. Its transpose is backpropagation through time.
type private LifLinear(p: Snn.Lif.Params, s: Tensor, z: Tensor) =
    inherit CustomFn("Fused.lif (tangent)")
    let shape = z.ShapeRef
    let t, m = steps "Fused.lif" z
    override _.IsLinear = true
    override _.OutputTypes = [| shape, z.DType; shape, z.DType |]

    override _.Call args =
        let dc = args[0]

        match dc.DType with
        | Float32 ->
            let dz, dv =
                GC.AllocateUninitializedArray(t * m), GC.AllocateUninitializedArray(t * m)

            Spiking.LifTangent(lifConstants32 p, t, m, f32 s, f32 z, f32 dc, dz, dv)

            [|
                Tensor.FromStorage(shape, Storage.F32 dz)
                Tensor.FromStorage(shape, Storage.F32 dv)
            |]
        | Float64 ->
            let dz, dv =
                GC.AllocateUninitializedArray(t * m), GC.AllocateUninitializedArray(t * m)

            Spiking.LifTangent(lifConstants64 p, t, m, f64 s, f64 z, f64 dc, dz, dv)

            [|
                Tensor.FromStorage(shape, Storage.F64 dz)
                Tensor.FromStorage(shape, Storage.F64 dv)
            |]

    override _.Jvp(_, tangents) =
        Tensor.ApplyCustom(LifLinear(p, s, z), tangents), Array.zeroCreate 2

    override _.Transpose(_, cts) =
        let gz, gv = cts[0], cts[1]

        if not ((isNull gz || gz.IsConcrete) && (isNull gv || gv.IsConcrete)) then
            // Cotangents traced by an outer transform (grad of grad): the loops below need concrete data.
            invalidOp "Fused.lif: higher-order reverse mode through the fused LIF layer is not supported; use Layers.lifGeneric (the step function scanned op by op)"

        match z.DType with
        | Float32 ->
            let dc = GC.AllocateUninitializedArray(t * m)

            Spiking.LifTranspose(
                lifConstants32 p,
                t,
                m,
                f32 s,
                f32 z,
                (if isNull gz then null else f32 gz),
                (if isNull gv then null else f32 gv),
                dc
            )

            [| Tensor.FromStorage(shape, Storage.F32 dc) |]
        | Float64 ->
            let dc = GC.AllocateUninitializedArray(t * m)

            Spiking.LifTranspose(
                lifConstants64 p,
                t,
                m,
                f64 s,
                f64 z,
                (if isNull gz then null else f64 gz),
                (if isNull gv then null else f64 gv),
                dc
            )

            [| Tensor.FromStorage(shape, Storage.F64 dc) |]

/// The surrogate derivative at every membrane value (one kernel pass for the built-in shapes).
let private surrogateAt (p: Snn.Lif.Params) (v: Tensor) =
    let sur = p.Surrogate

    match sur.Shape, v.Storage with
    | SurrogateShape.Custom, _ -> sur.Derivative(v - p.VTh)
    | shape, Storage.F32 a ->
        let s = GC.AllocateUninitializedArray<float32> a.Length
        Spiking.Surrogate(shape, float32 sur.Parameter, float32 p.VTh, a, s)
        Tensor.FromStorage(v.ShapeRef, Storage.F32 s)
    | shape, Storage.F64 a ->
        let s = GC.AllocateUninitializedArray<float> a.Length
        Spiking.Surrogate(shape, sur.Parameter, p.VTh, a, s)
        Tensor.FromStorage(v.ShapeRef, Storage.F64 s)

/// The whole LIF layer as one custom function of the input currents [T; ...].
type private LifScan(p: Snn.Lif.Params) =
    inherit CustomFn("Fused.lif")

    member _.Forward(c: Tensor) =
        let t, m = steps "Fused.lif" c

        match c.DType with
        | Float32 ->
            let z, v =
                GC.AllocateUninitializedArray(t * m), GC.AllocateUninitializedArray(t * m)

            Spiking.LifForward(lifConstants32 p, t, m, f32 c, z, v)
            Tensor.FromStorage(c.ShapeRef, Storage.F32 z), Tensor.FromStorage(c.ShapeRef, Storage.F32 v)
        | Float64 ->
            let z, v =
                GC.AllocateUninitializedArray(t * m), GC.AllocateUninitializedArray(t * m)

            Spiking.LifForward(lifConstants64 p, t, m, f64 c, z, v)
            Tensor.FromStorage(c.ShapeRef, Storage.F64 z), Tensor.FromStorage(c.ShapeRef, Storage.F64 v)

    override this.Call args =
        let c = args[0]

        if c.IsConcrete then
            let z, v = this.Forward c
            [| z; v |]
        else
            let z, v = lifGeneric p c
            [| z; v |]

    override this.Jvp(primals, tangents) =
        let c = primals[0]

        if c.IsConcrete then
            let z, v = this.Forward c
            let s = surrogateAt p v
            [| z; v |], Tensor.ApplyCustom(LifLinear(p, s, z), tangents[0])
        else
            let (z, v), (dz, dv) = Ad.jvp (lifGeneric p) c tangents[0]
            [| z; v |], [| dz; dv |]

/// A LIF layer over time from zero state: input currents [T; ...] to (spikes, membrane before reset),
/// both [T; ...]. Same numbers as scanning Snn.Lif.stepWithMembrane; one fused loop forward and one
/// backpropagation-through-time loop backward.
let lif (p: Snn.Lif.Params) (currents: Tensor) : Tensor * Tensor =
    Snn.Lif.validate p |> ignore
    steps "Fused.lif" currents |> ignore
    let outs = Tensor.ApplyCustom(LifScan p, currents)
    outs[0], outs[1]

// ---------------------------------------------------------------------------------------------
// LI layer over time (linear in the input currents when VLeak = 0)

/// The LI membrane [T; ...] for input currents [T; ...] with VLeak = 0: a linear map, transposed by
/// running the recurrence backwards.
type private LiScan(p: Snn.Li.Params) =
    inherit CustomFn("Fused.li")
    let a, b = p.Dt / p.TauMem, 1.0 - p.Dt / p.TauSyn
    override _.IsLinear = true
    override _.OutputTypes = invalidOp "Fused.li: output types are those of the input"

    override _.Call args =
        let c = args[0]
        let t, m = steps "Fused.li" c

        if not c.IsConcrete then
            let _, v =
                Ad.scan (Snn.Li.step { p with VLeak = 0.0 }) (Snn.Li.init c.ShapeRef[1..] c.DType) c

            [| v |]
        else
            match c.DType with
            | Float32 ->
                let v = GC.AllocateUninitializedArray(t * m)
                Spiking.LiForward(float32 a, float32 b, 0.0f, t, m, f32 c, v)
                [| Tensor.FromStorage(c.ShapeRef, Storage.F32 v) |]
            | Float64 ->
                let v = GC.AllocateUninitializedArray(t * m)
                Spiking.LiForward(a, b, 0.0, t, m, f64 c, v)
                [| Tensor.FromStorage(c.ShapeRef, Storage.F64 v) |]

    override this.Jvp(primals, tangents) =
        this.Call primals, Tensor.ApplyCustom(this, tangents)

    override _.Transpose(_, cts) =
        let g = cts[0]

        if not g.IsConcrete then
            invalidOp "Fused.li: higher-order reverse mode through the fused LI layer is not supported; scan Snn.Li.step with Ad.scan (Layers.ofStep) instead"

        let t, m = steps "Fused.li" g

        match g.DType with
        | Float32 ->
            let dc = GC.AllocateUninitializedArray(t * m)
            Spiking.LiTranspose(float32 a, float32 b, t, m, f32 g, dc)
            [| Tensor.FromStorage(g.ShapeRef, Storage.F32 dc) |]
        | Float64 ->
            let dc = GC.AllocateUninitializedArray(t * m)
            Spiking.LiTranspose(a, b, t, m, f64 g, dc)
            [| Tensor.FromStorage(g.ShapeRef, Storage.F64 dc) |]

/// Linear LI records need the output types up front: the same as the input's.
type private LiScanTyped(p: Snn.Li.Params, shape: int[], dtype: DType) =
    inherit LiScan(p)
    override _.OutputTypes = [| shape, dtype |]

/// An LI readout layer over time from zero state: input currents [T; ...] to membrane [T; ...].
/// Same numbers as scanning Snn.Li.step.
let li (p: Snn.Li.Params) (currents: Tensor) : Tensor =
    Snn.Li.validate p |> ignore
    steps "Fused.li" currents |> ignore

    let v =
        (Tensor.ApplyCustom(LiScanTyped(p, currents.ShapeRef, currents.DType), currents))[0]

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

let private compress (x: Tensor) : SpikeRows option =
    if not x.IsConcrete || x.Rank < 1 then
        None
    else
        let width = x.ShapeRef[x.Rank - 1]
        let rows = if width = 0 then 0 else x.Count / width

        match x.Storage with
        | Storage.F32 a -> Spiking.TryCompress(a, rows, width, maxDensity)
        | Storage.F64 a -> Spiking.TryCompress(a, rows, width, maxDensity)

/// x · w for a fixed sparse 0/1 matrix x (given as rows): linear in w, transposed by scattering rows.
type private SparseLeft(rows: SpikeRows, outShape: int[], wShape: int[], dtype: DType) =
    inherit CustomFn("Fused.spikeMatmul (sparse)")
    let n = wShape[1]
    override _.IsLinear = true
    override _.OutputTypes = [| outShape, dtype |]

    override _.Call args =
        let w = args[0]

        match w.Storage with
        | Storage.F32 a ->
            let out = GC.AllocateUninitializedArray(rows.Rows * n)
            Spiking.SparseTimesDense(rows, a, n, out)
            [| Tensor.FromStorage(outShape, Storage.F32 out) |]
        | Storage.F64 a ->
            let out = GC.AllocateUninitializedArray(rows.Rows * n)
            Spiking.SparseTimesDense(rows, a, n, out)
            [| Tensor.FromStorage(outShape, Storage.F64 out) |]

    override this.Jvp(_, tangents) =
        Tensor.ApplyCustom(this, tangents), [| null |]

    override _.Transpose(_, cts) =
        let ct = cts[0]

        if not ct.IsConcrete then
            invalidOp "Fused.spikeMatmul: higher-order reverse mode is not supported for the sparse path"

        match ct.Storage with
        | Storage.F32 a ->
            let g = GC.AllocateUninitializedArray(rows.Width * n)
            Spiking.SparseTransposeTimesDense(rows, a, n, g)
            [| Tensor.FromStorage(wShape, Storage.F32 g) |]
        | Storage.F64 a ->
            let g = GC.AllocateUninitializedArray(rows.Width * n)
            Spiking.SparseTransposeTimesDense(rows, a, n, g)
            [| Tensor.FromStorage(wShape, Storage.F64 g) |]

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

    let outShape = Array.append x.ShapeRef[.. x.Rank - 2] [| w.ShapeRef[1] |]

    let sparse (rows: SpikeRows) (w: Tensor) =
        SparseLeft(rows, outShape, w.ShapeRef, w.DType)

    let fn =
        { new CustomFn("Fused.spikeMatmul") with
            member _.Call args =
                let x, w = args[0], args[1]

                match compress x with
                | Some rows when w.IsConcrete -> Tensor.ApplyCustom(sparse rows w, w)
                | _ -> [| x.MatMul w |]

            member _.Jvp(primals, tangents) =
                let x, w = primals[0], primals[1]
                // One pass over x decides the path for the value and the weight tangent alike.
                let rows = compress x

                let y =
                    match rows with
                    | Some r when w.IsConcrete -> (Tensor.ApplyCustom(sparse r w, w))[0]
                    | _ -> x.MatMul w

                let fromX = if isNull tangents[0] then null else tangents[0].MatMul w

                let fromW =
                    match tangents[1], rows with
                    | null, _ -> null
                    | tw, Some r -> (Tensor.ApplyCustom(sparse r w, tw))[0]
                    | tw, None -> x.MatMul tw

                [| y |], [| Linear.addZ fromX fromW |]
        }

    (Tensor.ApplyCustom(fn, x, w))[0]
