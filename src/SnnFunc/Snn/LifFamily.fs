/// The fused LIF/LI layer as three kernels — the forward run, its tangent and the transposed
/// tangent — whose rules apply one another, so that every transform runs on the loops of
/// Kernels/Lif.fs with concrete data; the parameters and the initial state are arguments like the
/// currents, so their derivatives come out of the same loops. Each kernel has a twin of tensor
/// operations (the step functions of Snn) for calls that meet a tracer.
///
/// Arguments (every lane argument is rank 0 — one value for all lanes — or exactly the lane shape,
/// the currents' shape without the time axis):
/// - forward: [c; a; b; vLeak; vTh; vReset; v0; i0; r0] -> [v1; i] (+ [z] for LIF)
///   (+ [r; rEnd] with a refractory period), with a = dt/τm and b = 1 - dt/τs, r0/rEnd the silent
///   steps left at the start/end (not differentiated);
/// - tangent: residuals [v1; i] (+ [z]) (+ [r]), the 7 lanes [a .. i0], then the present tangents
///   among [dc; da; db; dvLeak; dvTh; dvReset; dv0; di0] -> [dv1; di];
/// - transposed tangent: the same residuals and lanes, then the present cotangents among [gv1; gi]
///   -> the cotangents of the wanted slots among [c; a; ...; i0].
/// The spikes' tangent dz = s (dv1 - dvTh), with s the surrogate derivative, is tensor operations
/// outside the kernels: reverse mode then forms s gz itself, and s keeps derivatives of its own.
module internal SnnFunc.LifFamily

open System
open SnnFunc.Kernels

/// Names of the lane slots and of the 8 linear slots (for messages).
let private laneNames = [| "a"; "b"; "vLeak"; "vTh"; "vReset"; "v0"; "i0" |]
let private lanes = laneNames.Length
let private slots = 1 + lanes

let private f32 (t: Tensor) = t.Storage.Float32s
let private f64 (t: Tensor) = t.Storage.Float64s

let private steps (x: Tensor) =
    x.ShapeRef[0], x.Count / max 1 x.ShapeRef[0]

/// How many residual arguments precede the lanes.
let private residualCount (mode: LifMode) =
    2 + (if mode.Spiking then 1 else 0) + (if mode.Refractory > 0 then 1 else 0)

/// v1, i, z (or null), r (or null) of a residual block.
let private residuals (mode: LifMode) (args: Tensor[]) =
    let z = if mode.Spiking then args[2] else null

    let r =
        if mode.Refractory > 0 then
            args[2 + (if mode.Spiking then 1 else 0)]
        else
            null

    args[0], args[1], z, r

let private lanes32 (ts: Tensor[]) : LifLanes<float32> =
    {
        A = f32 ts[0]
        B = f32 ts[1]
        VLeak = f32 ts[2]
        VTh = f32 ts[3]
        VReset = f32 ts[4]
        V0 = f32 ts[5]
        I0 = f32 ts[6]
    }

let private lanes64 (ts: Tensor[]) : LifLanes<float> =
    {
        A = f64 ts[0]
        B = f64 ts[1]
        VLeak = f64 ts[2]
        VTh = f64 ts[3]
        VReset = f64 ts[4]
        V0 = f64 ts[5]
        I0 = f64 ts[6]
    }

/// Lane arrays where only some slots are given (the others null): for tangents and cotangents.
let private partial (present: bool[]) (ts: Tensor[]) (get: Tensor -> 'T[]) : 'T[][] =
    let mutable next = 0

    Array.init present.Length (fun k ->
        if present[k] then
            let t = ts[next]
            next <- next + 1
            if isNull t then null else get t
        else
            null)

let private lanesOf (xs: 'T[][]) : LifLanes<'T> =
    {
        A = xs[0]
        B = xs[1]
        VLeak = xs[2]
        VTh = xs[3]
        VReset = xs[4]
        V0 = xs[5]
        I0 = xs[6]
    }

let private tensor (shape: int[]) (dtype: DType) (f32: unit -> float32[]) (f64: unit -> float[]) =
    match dtype with
    | Float32 -> Tensor.FromStorage(shape, Storage.F32(f32 ()))
    | Float64 -> Tensor.FromStorage(shape, Storage.F64(f64 ()))
    | Int32 -> invalidOp "internal error: a LIF kernel on int32 data"

let private buffer32 (n: int) =
    GC.AllocateUninitializedArray<float32> n

let private buffer64 (n: int) = GC.AllocateUninitializedArray<float> n

/// The lane shape of a time-major tensor.
let private laneShape (x: Tensor) = x.ShapeRef[1..]

/// `t` summed to rank 0 when the lane argument it is the cotangent of was rank 0.
let private toArgShape (arg: Tensor) (t: Tensor) =
    if isNull t then null
    elif arg.Rank = 0 then t.Sum()
    else t

/// The batching rule shared by the family: time-major arguments get the batch at axis 1, lane
/// arguments at axis 0 (a rank-0 lane stays rank 0 when unbatched, unless `fullLanes`, and is
/// broadcast to the batched lane shape when batched); time-major outputs return the batch to axis 0.
let private batchRule
    (fullLanes: bool)
    (isTimeMajor: int -> bool)
    (outTimeMajor: int -> bool)
    (apply: Tensor[] -> Tensor[])
    (args: Tensor[])
    (batched: bool[])
    (size: int)
    =
    // The per-example lane shape, read off a time-major argument.
    let reference =
        args
        |> Array.indexed
        |> Array.find (fun (i, _) -> isTimeMajor i)
        |> fun (i, a) -> if batched[i] then a.ShapeRef[2..] else a.ShapeRef[1..]

    let lane = Array.append [| size |] reference

    let folded =
        args
        |> Array.mapi (fun i a ->
            if isTimeMajor i then
                KernelBatching.moveBatchTo 1 size batched[i] a
            elif batched[i] then
                if a.Rank = 1 && reference.Length > 0 then
                    a.Reshape(Array.append [| size |] (Array.create reference.Length 1)).BroadcastTo lane
                else
                    a
            elif a.Rank = 0 && not fullLanes then
                a
            else
                a.Unsqueeze(0).BroadcastTo lane)

    apply folded
    |> Array.mapi (fun k o ->
        if isNull o then null
        elif outTimeMajor k then KernelBatching.moveToFront 1 o
        else o)

/// The surrogate derivative s = f'(v1 - vTh) at every membrane value: one kernel pass for the
/// built-in shapes on concrete data, the surrogate's tensor operations otherwise (so that it has
/// derivatives itself).
let surrogateAt (sur: SurrogateFn) (vTh: Tensor) (v1: Tensor) =
    let kernel (v: Tensor) (th: float) =
        match v.Storage with
        | Storage.F32 a ->
            let s = GC.AllocateUninitializedArray<float32> a.Length
            Spiking.Surrogate(sur.Shape, float32 sur.Parameter, float32 th, a, s)
            Tensor.FromStorage(v.ShapeRef, Storage.F32 s)
        | Storage.F64 a ->
            let s = GC.AllocateUninitializedArray<float> a.Length
            Spiking.Surrogate(sur.Shape, sur.Parameter, th, a, s)
            Tensor.FromStorage(v.ShapeRef, Storage.F64 s)
        | Storage.I32 _ -> invalidOp "internal error: surrogate of int32 data"

    if sur.Shape = SurrogateShape.Custom || not v1.IsConcrete || not vTh.IsConcrete then
        sur.Derivative(v1 - vTh)
    elif vTh.Rank = 0 then
        kernel v1 (vTh.ToScalar())
    else
        kernel (v1 - vTh) 0.0

// ---------------------------------------------------------------------------------------------
// The tangent: linear in its present slots

/// Whether the tangents of a tangent-family call's residuals and lanes change its result: those of
/// the decay factors a and b always do; those of v1, i and the other lanes (leak, threshold, reset,
/// initial state) only when `usesState`, i.e. when the decay factors' own terms, which read the
/// primal state, are present; z and r never do (they are masks: the reset carries no gradient).
let private dependsOnWith (mode: LifMode) (tangents: Tensor[]) (usesState: bool) =
    let nres = residualCount mode
    let given (k: int) = not (isNull tangents[k])
    let decays = given nres || given (nres + 1)

    let state =
        given 0 || given 1 || ([ nres + 2 .. nres + lanes - 1 ] |> List.exists given)

    decays || (usesState && state)

/// The tangent of a run, args: residuals, lanes, present tangents (see the module comment).
type LifTangent(mode: LifMode, present: bool[]) =
    inherit KernelFn("Fused.lif (tangent)")
    let nres = residualCount mode
    let firstLinear = nres + lanes
    let dependsOn = dependsOnWith mode

    member _.Present = present

    /// The slot values: residuals, lanes and the 8 linear slots (null where absent).
    member private _.Split(args: Tensor[]) =
        let res = args[.. nres - 1]
        let ls = args[nres .. nres + lanes - 1]
        let mutable next = firstLinear

        let lin =
            Array.init slots (fun k ->
                if present[k] then
                    let t = args[next]
                    next <- next + 1
                    t
                else
                    null)

        res, ls, lin

    override this.Kernel args =
        let res, ls, lin = this.Split args
        let v1, i, z, r = residuals mode res
        let t, m = steps v1
        let shape, dtype = v1.ShapeRef, v1.DType

        match dtype with
        | Float32 ->
            let dv1, di = buffer32 (t * m), buffer32 (t * m)
            let dk = lanesOf (lin[1..] |> Array.map (fun x -> if isNull x then null else f32 x))
            let dc = if isNull lin[0] then null else f32 lin[0]
            let zz, rr = (if isNull z then null else f32 z), (if isNull r then null else f32 r)
            LifKernels.Tangent(mode, lanes32 ls, t, m, zz, rr, f32 v1, f32 i, dc, dk, dv1, di)

            [|
                tensor shape dtype (fun () -> dv1) (fun () -> null)
                tensor shape dtype (fun () -> di) (fun () -> null)
            |]
        | _ ->
            let dv1, di = buffer64 (t * m), buffer64 (t * m)
            let dk = lanesOf (lin[1..] |> Array.map (fun x -> if isNull x then null else f64 x))
            let dc = if isNull lin[0] then null else f64 lin[0]
            let zz, rr = (if isNull z then null else f64 z), (if isNull r then null else f64 r)
            LifKernels.Tangent(mode, lanes64 ls, t, m, zz, rr, f64 v1, f64 i, dc, dk, dv1, di)

            [|
                tensor shape dtype (fun () -> null) (fun () -> dv1)
                tensor shape dtype (fun () -> null) (fun () -> di)
            |]

    override this.Twin args =
        let res, ls, lin = this.Split args
        LifTangent.TwinOf mode res ls lin

    /// The tangent recurrence in tensor operations (the loop of LifLoops.tangent, step by step).
    static member TwinOf (mode: LifMode) (res: Tensor[]) (ls: Tensor[]) (lin: Tensor[]) : Tensor[] =
        let v1, i, z, r = residuals mode res
        // Spikes and refractory flags are masks here: the reset carries no gradient (as in Snn).
        let z = if isNull z then null else Ad.stopGradient z
        let r = if isNull r then null else Ad.stopGradient r
        let lane = laneShape v1
        let zeroLane = Tensor.Full(lane, 0.0, v1.DType)
        let orZero (t: Tensor) = if isNull t then zeroLane else t

        let a, b, vLeak, vTh, vReset, v0, i0 =
            ls[0], ls[1], ls[2], ls[3], ls[4], ls[5], ls[6]

        let da, db, dvLeak, dvTh, dvReset = lin[1], lin[2], lin[3], lin[4], lin[5]
        let zeroT = Tensor.Full(v1.ShapeRef, 0.0, v1.DType)
        // The primal state each step starts from: v0, i0, then the previous step's values.
        let shift (first: Tensor) (x: Tensor) =
            if x.ShapeRef[0] = 0 then
                x
            else
                Tensor.Concat([| first.BroadcastTo(lane).Unsqueeze 0; x.Narrow(0, 0, x.ShapeRef[0] - 1) |], 0)

        let vAfter =
            if not mode.Spiking then v1
            elif mode.ResetToValue then v1 * (1.0 - z) + z * vReset
            else v1 - z * (vTh - vReset)

        let vPrev, iPrev = shift v0 vAfter, shift i0 i
        let orZeroT (t: Tensor) = if isNull t then zeroT else t

        let step (dv: Tensor, di: Tensor) (vp: Tensor, ip: Tensor, zt: Tensor, rt: Tensor, dct: Tensor) =
            let integrated =
                dv
                + (orZero dvLeak - dv + di) * a
                + (if isNull da then zeroLane else da * (vLeak - vp + ip))

            let d =
                if isNull r then
                    integrated
                else
                    Tensor.Where(rt, dv, integrated)

            let di' = di * b + (if isNull db then zeroLane else db * ip) + dct

            let dv' =
                if not mode.Spiking then
                    d
                elif mode.ResetToValue then
                    d * (1.0 - zt) + zt * orZero dvReset
                else
                    d - zt * (orZero dvTh - orZero dvReset)

            (dv', di'), (d, di')

        let dv0 = if isNull lin[6] then zeroLane else lin[6].BroadcastTo lane
        let di0 = if isNull lin[7] then zeroLane else lin[7].BroadcastTo lane

        let _, (dv1, di) =
            Ad.scan step (dv0, di0) (vPrev, iPrev, orZeroT z, orZeroT r, orZeroT lin[0])

        [| dv1; di |]

    override _.IsLinear = true
    override _.IsConstantArg k = k < firstLinear

    override _.OutputTypes args =
        let v1 = args[0]
        [| v1.Shape, v1.DType; v1.Shape, v1.DType |]

    override this.Jvp(primals, tangents) =
        let res, ls, _ = this.Split primals
        let outs = Tensor.ApplyCustom(this, primals)

        // Tangents of the residuals or lanes (second order): the map does not depend on z and r
        // (masks: the reset carries no gradient), on v1 and i only through the decay factors'
        // tangents; where it does depend on them, differentiate the twin.
        if dependsOn tangents (present[1] || present[2]) then
            let _, outTangents =
                AdCore.Flat.jvp "Fused.lif (tangent)" (fun xs -> this.CountedTwin xs) primals tangents

            outs, outTangents
        else
            let lin = tangents[firstLinear..]

            if lin |> Array.forall isNull then
                outs, [| null; null |]
            else
                let present' = Array.copy present
                let mutable next = 0

                for k in 0 .. slots - 1 do
                    if present[k] then
                        present'[k] <- not (isNull lin[next])
                        next <- next + 1

                let given = lin |> Array.filter (fun t -> not (isNull t))
                outs, Tensor.ApplyCustom(LifTangent(mode, present'), Array.concat [ res; ls; given ])

    override this.Transpose(consts, cts) =
        let res, ls = consts[.. nres - 1], consts[nres .. nres + lanes - 1]
        // A present slot needs its cotangent when it was recorded as a variable (a null constant).
        let mutable next = firstLinear

        let wanted =
            Array.init slots (fun k ->
                if present[k] then
                    let w = isNull consts[next]
                    next <- next + 1
                    w
                else
                    false)

        let given = cts |> Array.filter (fun c -> not (isNull c))
        let ctsPresent = [| not (isNull cts[0]); not (isNull cts[1]) |]

        if given.Length = 0 || not (Array.exists id wanted) then
            Array.zeroCreate consts.Length
        else
            let g =
                Tensor.ApplyCustom(LifTangentT(mode, ctsPresent, wanted), Array.concat [ res; ls; given ])

            let result: Tensor[] = Array.zeroCreate consts.Length
            let mutable slot = firstLinear
            let mutable out = 0

            for k in 0 .. slots - 1 do
                if present[k] then
                    if wanted[k] then
                        result[slot] <- g[out]
                        out <- out + 1

                    slot <- slot + 1

            result

    override this.Batch(args, batched, size) =
        let timeMajor k =
            k < nres || (present[0] && k = firstLinear)

        Some(batchRule false timeMajor (fun _ -> true) (fun a -> Tensor.ApplyCustom(this, a)) args batched size)

/// The transposed tangent: from the present cotangents among [gv1; gi] the cotangents of the
/// wanted slots among [c; a; b; vLeak; vTh; vReset; v0; i0]. Linear in the cotangents.
and LifTangentT(mode: LifMode, ctsPresent: bool[], wanted: bool[]) =
    inherit KernelFn("Fused.lif (transposed tangent)")
    let nres = residualCount mode
    let firstLinear = nres + lanes
    let dependsOn = dependsOnWith mode

    member private _.Split(args: Tensor[]) =
        let res = args[.. nres - 1]
        let ls = args[nres .. nres + lanes - 1]
        let mutable next = firstLinear

        let cts =
            Array.init 2 (fun k ->
                if ctsPresent[k] then
                    let t = args[next]
                    next <- next + 1
                    t
                else
                    null)

        res, ls, cts

    override this.Kernel args =
        let res, ls, cts = this.Split args
        let v1, i, z, r = residuals mode res
        let t, m = steps v1
        let shape, dtype = v1.ShapeRef, v1.DType
        let lane = laneShape v1

        let outputs (gc: 'T[]) (gk: 'T[][]) (make: int[] -> 'T[] -> Tensor) =
            [|
                if wanted[0] then
                    make shape gc
                for k in 1 .. slots - 1 do
                    if wanted[k] then
                        toArgShape ls[k - 1] (make lane gk[k - 1])
            |]

        match dtype with
        | Float32 ->
            let gc = if wanted[0] then buffer32 (t * m) else null
            let gk = Array.init lanes (fun k -> if wanted[k + 1] then buffer32 m else null)
            let get (x: Tensor) = if isNull x then null else f32 x
            LifKernels.Transpose(mode, lanes32 ls, t, m, get z, get r, f32 v1, f32 i, get cts[0], get cts[1], gc, lanesOf gk)
            outputs gc gk (fun s a -> Tensor.FromStorage(s, Storage.F32 a))
        | _ ->
            let gc = if wanted[0] then buffer64 (t * m) else null
            let gk = Array.init lanes (fun k -> if wanted[k + 1] then buffer64 m else null)
            let get (x: Tensor) = if isNull x then null else f64 x
            LifKernels.Transpose(mode, lanes64 ls, t, m, get z, get r, f64 v1, f64 i, get cts[0], get cts[1], gc, lanesOf gk)
            outputs gc gk (fun s a -> Tensor.FromStorage(s, Storage.F64 a))

    override this.Twin args =
        let res, ls, cts = this.Split args
        let v1 = res[0]
        // The transpose of the tangent twin, by reverse mode over it (linear in the slots).
        let lane = laneShape v1

        let slotShape k =
            if k = 0 then v1.ShapeRef else ls[k - 1].ShapeRef

        let zeros =
            [|
                for k in 0 .. slots - 1 -> Tensor.Full((if k = 0 then v1.ShapeRef else lane), 0.0, v1.DType)
            |]

        let f (lin: Tensor[]) = LifTangent.TwinOf mode res ls lin

        let _, pullback = AdCore.Flat.vjp "Fused.lif (transposed tangent)" f zeros
        let g = pullback cts

        [|
            for k in 0 .. slots - 1 do
                if wanted[k] then
                    let gk = g[k]
                    if k = 0 then gk else Linear.unbroadcast gk (slotShape k)
        |]

    override _.IsLinear = true
    override _.IsConstantArg k = k < firstLinear

    override _.OutputTypes args =
        let v1 = args[0]
        let ls = args[nres .. nres + lanes - 1]

        [|
            for k in 0 .. slots - 1 do
                if wanted[k] then
                    (if k = 0 then v1.Shape else ls[k - 1].Shape), v1.DType
        |]

    override this.Jvp(primals, tangents) =
        let res, ls, _ = this.Split primals
        let outs = Tensor.ApplyCustom(this, primals)

        if dependsOn tangents (wanted[1] || wanted[2]) then
            let _, outTangents =
                AdCore.Flat.jvp "Fused.lif (transposed tangent)" (fun xs -> this.CountedTwin xs) primals tangents

            outs, outTangents
        else
            let lin = tangents[firstLinear..]

            if lin |> Array.forall isNull then
                outs, Array.zeroCreate outs.Length
            else
                let present' = Array.copy ctsPresent
                let mutable next = 0

                for k in 0..1 do
                    if ctsPresent[k] then
                        present'[k] <- not (isNull lin[next])
                        next <- next + 1

                let given = lin |> Array.filter (fun t -> not (isNull t))
                outs, Tensor.ApplyCustom(LifTangentT(mode, present', wanted), Array.concat [ res; ls; given ])

    override this.Transpose(consts, cts) =
        let res, ls = consts[.. nres - 1], consts[nres .. nres + lanes - 1]
        // Lᵀ's transpose is L: the outputs' cotangents are the tangent's inputs.
        let mutable out = 0

        let inputs =
            Array.init slots (fun k ->
                if wanted[k] then
                    let c = cts[out]
                    out <- out + 1
                    // A rank-0 lane's cotangent came summed; its tangent broadcasts back.
                    c
                else
                    null)

        let present = inputs |> Array.map (fun t -> not (isNull t))
        let result: Tensor[] = Array.zeroCreate consts.Length

        if Array.exists id present then
            let given = inputs |> Array.filter (fun t -> not (isNull t))

            let d =
                Tensor.ApplyCustom(LifTangent(mode, present), Array.concat [ res; ls; given ])

            let mutable slot = firstLinear

            for k in 0..1 do
                if ctsPresent[k] then
                    // Only slots that were recorded as variables get cotangents.
                    if isNull consts[slot] then
                        result[slot] <- d[k]

                    slot <- slot + 1

        result

    override this.Batch(args, batched, size) =
        // Every lane goes in batched, so that each example's parameter cotangents come out apart;
        // those of rank-0 lanes are then summed per example.
        let timeMajor k = k < nres || k >= firstLinear
        let outTimeMajor k = wanted[0] && k = 0

        let outs =
            batchRule true timeMajor outTimeMajor (fun a -> Tensor.ApplyCustom(this, a)) args batched size

        let ls = args[nres .. nres + lanes - 1]
        let lanesBatched = batched[nres .. nres + lanes - 1]
        let mutable out = if wanted[0] then 1 else 0

        for k in 1 .. slots - 1 do
            if wanted[k] then
                let perExampleRank =
                    if lanesBatched[k - 1] then
                        ls[k - 1].Rank - 1
                    else
                        ls[k - 1].Rank

                if perExampleRank = 0 && outs[out].Rank > 1 then
                    outs[out] <- outs[out].SumAxes(Array.init (outs[out].Rank - 1) ((+) 1))

                out <- out + 1

        Some outs

// ---------------------------------------------------------------------------------------------
// The forward run

/// The layer over time: args [c; a; b; vLeak; vTh; vReset; v0; i0; r0].
type LifForward(mode: LifMode, surrogate: SurrogateFn, name: string) =
    inherit KernelFn(name)

    override _.Kernel args =
        let c = args[0]
        let t, m = steps c
        let shape, dtype, lane = c.ShapeRef, c.DType, laneShape c
        let refractory = mode.Refractory > 0

        match dtype with
        | Float32 ->
            let v1, i = buffer32 (t * m), buffer32 (t * m)
            let z = if mode.Spiking then buffer32 (t * m) else null
            let r = if refractory then buffer32 (t * m) else null
            let rEnd = if refractory then buffer32 m else null
            LifKernels.Forward(mode, lanes32 args[1..7], t, m, f32 c, f32 args[8], z, v1, i, r, rEnd)

            [|
                Tensor.FromStorage(shape, Storage.F32 v1)
                Tensor.FromStorage(shape, Storage.F32 i)
                if mode.Spiking then
                    Tensor.FromStorage(shape, Storage.F32 z)
                if refractory then
                    Tensor.FromStorage(shape, Storage.F32 r)
                    Tensor.FromStorage(lane, Storage.F32 rEnd)
            |]
        | _ ->
            let v1, i = buffer64 (t * m), buffer64 (t * m)
            let z = if mode.Spiking then buffer64 (t * m) else null
            let r = if refractory then buffer64 (t * m) else null
            let rEnd = if refractory then buffer64 m else null
            LifKernels.Forward(mode, lanes64 args[1..7], t, m, f64 c, f64 args[8], z, v1, i, r, rEnd)

            [|
                Tensor.FromStorage(shape, Storage.F64 v1)
                Tensor.FromStorage(shape, Storage.F64 i)
                if mode.Spiking then
                    Tensor.FromStorage(shape, Storage.F64 z)
                if refractory then
                    Tensor.FromStorage(shape, Storage.F64 r)
                    Tensor.FromStorage(lane, Storage.F64 rEnd)
            |]

    override _.Twin args =
        let c = args[0]
        let lane = laneShape c
        let a, b, vLeak, vTh, vReset = args[1], args[2], args[3], args[4], args[5]
        let at (x: Tensor) = x.BroadcastTo lane

        if mode.Spiking then
            let config: Snn.Lif.Config =
                {
                    Dt = 1.0 // unused: the decays are given
                    Reset = (if mode.ResetToValue then Snn.ToValue else Snn.BySubtraction)
                    Surrogate = surrogate
                    RefractorySteps = mode.Refractory
                }

            let state: Snn.Lif.State =
                {
                    V = at args[6]
                    I = at args[7]
                    Refractory = at args[8]
                }

            let stepR (s: Snn.Lif.State) (x: Tensor) =
                let s', (z, v, i) = Snn.Lif.stepWithDecays config (a, b, vLeak, vTh, vReset) s x
                s', (z, v, i, s.Refractory.Gt 0.0)

            let final, (z, v1, i, r) = Ad.scan stepR state c

            [|
                v1
                i
                z
                if mode.Refractory > 0 then
                    r
                    final.Refractory
            |]
        else
            let state: Snn.Li.State = { V = at args[6]; I = at args[7] }
            let _, (v, i) = Ad.scan (Snn.Li.stepWithDecays (a, b, vLeak)) state c
            [| v; i |]

    override this.Jvp(primals, tangents) =
        let outs = Tensor.ApplyCustom(this, primals)
        let v1, i = outs[0], outs[1]
        let lin = tangents[0..7]
        let present = lin |> Array.map (fun t -> not (isNull t))
        let given = lin |> Array.filter (fun t -> not (isNull t))
        let res = outs[.. residualCount mode - 1]
        let ls = primals[1..7]

        let d =
            Tensor.ApplyCustom(LifTangent(mode, present), Array.concat [ res; ls; given ])

        let dv1, di = d[0], d[1]

        let rest =
            if not mode.Spiking then
                [||]
            else
                // dz = s (dv1 - dvTh), with s the surrogate derivative (zero while refractory).
                let vTh = primals[4]
                let s = surrogateAt surrogate vTh v1
                let s = if mode.Refractory > 0 then s * (1.0 - outs[3]) else s
                let dz = s * (if isNull lin[4] then dv1 else dv1 - lin[4])
                Array.append [| dz |] (if mode.Refractory > 0 then [| null; null |] else [||])

        ignore i
        outs, Array.append [| dv1; di |] rest

    override this.Batch(args, batched, size) =
        let outTimeMajor k = k < 3 || (mode.Refractory > 0 && k = 3)
        Some(batchRule false (fun k -> k = 0) outTimeMajor (fun a -> Tensor.ApplyCustom(this, a)) args batched size)
