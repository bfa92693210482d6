/// The three kinds of transform and their tracers: forward mode (Dual), the recording of linear
/// tangent operations for reverse mode (Lin, with its transposing backward pass) and batching (Batch).
namespace SnnFunc.AdCore

open System.Threading
open SnnFunc

/// Unique, increasing level ids: later (inner) transforms get higher levels.
module internal Levels =
    let mutable private counter = 0L
    let next () = Interlocked.Increment(&counter)

// ---------------------------------------------------------------------------------------------
// Forward mode

/// Forward mode: each traced value carries a primal and a tangent.
type internal JvpTrace(name: string) =
    inherit Trace(Levels.next (), name)
    let mutable live = true
    member _.Close() = live <- false
    override _.IsLive = live

    /// Primal and tangent (null = zero) of an argument as seen from this level.
    member this.Unwrap(t: Tensor) : Tensor * Tensor =
        match t.Tracer with
        | :? DualTracer as d when obj.ReferenceEquals(d.Trace, this) -> d.Primal, d.Tangent
        | _ -> t, null

    /// A value of this level (or just the primal when the tangent is a symbolic zero, or when the
    /// primal is integer data, which is never differentiated).
    member this.Wrap(primal: Tensor, tangent: Tensor) =
        if isNull tangent || not primal.DType.IsFloat then
            primal
        else
            Tensor.OfTracer(primal.ShapeRef, primal.DType, DualTracer(this, primal, tangent))

    override this.Process(prim, args, _, _) =
        let unwrapped = args |> Array.map this.Unwrap
        let primals = Array.map fst unwrapped
        let tangents = Array.map snd unwrapped
        let primal, tangent = JvpRules.apply prim primals tangents
        this.Wrap(primal, tangent)

    override this.ProcessCustom(fn, args) =
        let unwrapped = args |> Array.map this.Unwrap
        let primals = Array.map fst unwrapped
        let tangents = Array.map snd unwrapped

        if Array.forall isNull tangents then
            Tensor.ApplyCustom(fn, primals)
        else
            let outs, outTangents = fn.JvpAt(this, primals, tangents)

            // An output traced by this very level means the function closed over a value this
            // transform differentiates: the rule only sees explicit arguments, so its result would
            // be wrong or fail later with a confusing escaped-tracer error. Say so now.
            for o in outs do
                match (if isNull o then null else box o.Tracer) with
                | :? DualTracer as d when obj.ReferenceEquals(d.Trace, this) ->
                    invalidOp
                        $"%s{fn.Name}: the function closes over a value traced by '%s{name}' instead of taking it as an argument; its custom rules only differentiate explicit arguments, so pass it as one (Ad.checkpoint and Ad.scan's segments convert such closures themselves)"
                | _ -> ()

            // Lower transforms must see the custom function itself, not the rule's primal computation
            // (kernels' rules already apply custom functions, which lower transforms see).
            let outs =
                if
                    fn.JvpPrimalsDispatched
                    || Array.forall (fun (p: Tensor) -> p.IsConcrete) primals
                then
                    outs
                else
                    Tensor.ApplyCustom(fn, primals)

            Array.map2 (fun p t -> this.Wrap(p, t)) outs outTangents

and internal DualTracer(trace: JvpTrace, primal: Tensor, tangent: Tensor) =
    inherit Tracer(trace)
    member _.Primal = primal
    member _.Tangent = tangent

// ---------------------------------------------------------------------------------------------
// Reverse mode: recording linear tangent operations, then transposing them

/// What a recorded operation is.
type internal LinOp =
    | PrimOp of Prim
    | CustomOp of CustomFn

/// One recorded linear operation: arguments are recorded variables (vars[i] >= 0) or constants.
type internal Eqn =
    {
        Op: LinOp
        Consts: Tensor[]
        Vars: int[]
        Shapes: int[][]
        DTypes: DType[]
        Outs: int[]
    }

/// Records the tangent operations of a linearisation on a tape; Backward transposes them.
type internal LinTrace(name: string) =
    inherit Trace(Levels.next (), name)
    let mutable live = true
    let eqns = ResizeArray<Eqn>()
    let mutable varCount = 0
    member _.Close() = live <- false
    override _.IsLive = live
    member _.EqnCount = eqns.Count

    /// A fresh variable of the given type.
    member this.NewVar(shape: int[], dtype: DType) =
        let id = varCount
        varCount <- varCount + 1
        Tensor.OfTracer(shape, dtype, LinTracer(this, id))

    member this.VarOf(t: Tensor) =
        match t.Tracer with
        | :? LinTracer as v when obj.ReferenceEquals(v.Trace, this) -> v.Id
        | _ -> -1

    member private this.Record(op: LinOp, args: Tensor[], outs: (int[] * DType)[]) =
        let vars = args |> Array.map this.VarOf
        let outTensors = outs |> Array.map (fun (shape, dtype) -> this.NewVar(shape, dtype))

        eqns.Add
            {
                Op = op
                Consts = Array.map2 (fun (a: Tensor) v -> if v >= 0 then null else a) args vars
                Vars = vars
                Shapes = args |> Array.map (fun a -> a.ShapeRef)
                DTypes = args |> Array.map (fun a -> a.DType)
                Outs = outTensors |> Array.map this.VarOf
            }

        outTensors

    override this.Process(prim, args, outShape, outDType) =
        if not live then
            invalidOp $"escaped tracer: a tangent recorded by '%s{name}' was used after that transform returned"

        (this.Record(PrimOp prim, args, [| outShape, outDType |]))[0]

    override this.ProcessCustom(fn, args) =
        if fn.IsLinear then
            for i in 0 .. args.Length - 1 do
                if fn.IsConstantArg i && this.VarOf args[i] >= 0 then
                    invalidOp
                        $"internal error: %s{fn.Name} is linear only in its other arguments, but argument %d{i} (a constant of the function) is a recorded tangent"

            this.Record(CustomOp fn, args, fn.OutputTypes args)
        else
            fn.Call args // not linear: record what it does, primitive by primitive

    /// Transposes the tape: given cotangents of the output variables, the cotangents of the input
    /// variables (null where zero). Walks the tape backwards in a loop: no recursion.
    member this.Backward(outputs: (int * Tensor)[], inputs: int[]) : Tensor[] =
        let cts: Tensor[] = Array.zeroCreate varCount

        let accumulate id (ct: Tensor) =
            if not (isNull ct) then
                cts[id] <- (if isNull cts[id] then ct else cts[id] + ct)

        for id, ct in outputs do
            accumulate id ct

        for k in eqns.Count - 1 .. -1 .. 0 do
            let e = eqns[k]
            let outCts = e.Outs |> Array.map (fun o -> cts[o])

            if not (Array.forall isNull outCts) then
                let isVar = e.Vars |> Array.map (fun v -> v >= 0)

                let argCts =
                    match e.Op with
                    | PrimOp prim -> TransposeRules.apply prim e.Consts isVar e.Shapes e.DTypes outCts[0]
                    | CustomOp fn -> fn.Transpose(e.Consts, outCts)

                for i in 0 .. e.Vars.Length - 1 do
                    if e.Vars[i] >= 0 then
                        accumulate e.Vars[i] argCts[i]

                // Output cotangents are consumed: release them (and the residuals) early.
                for o in e.Outs do
                    cts[o] <- null

        inputs |> Array.map (fun i -> if i < 0 then null else cts[i])

and internal LinTracer(trace: LinTrace, id: int) =
    inherit Tracer(trace)
    member _.Id = id

// ---------------------------------------------------------------------------------------------
// Batching

/// vmap: each traced value carries the whole batch in a leading axis of size BatchSize.
type internal BatchTrace(batchSize: int) =
    inherit Trace(Levels.next (), "vmap")
    let mutable live = true
    let mutable reopened = 0
    member _.Close() = live <- false
    override _.IsLive = live || Volatile.Read(&reopened) > 0

    /// Makes the level live again until the matching Release (counted, so concurrent backward
    /// passes may overlap): see BatchedCustom.Transpose.
    member _.Reopen() =
        Interlocked.Increment(&reopened) |> ignore

    member _.Release() =
        Interlocked.Decrement(&reopened) |> ignore

    member _.BatchSize = batchSize

    /// The batched value and whether it has the batch axis.
    member this.Unwrap(t: Tensor) : Tensor * bool =
        match t.Tracer with
        | :? BatchTracer as b when obj.ReferenceEquals(b.Trace, this) -> b.Value, true
        | _ -> t, false

    /// A value whose axis 0 is the batch, seen per example.
    member this.Wrap(value: Tensor) =
        Tensor.OfTracer(value.ShapeRef[1..], value.DType, BatchTracer(this, value))

    /// The batched value of an output (broadcast along a new batch axis if it does not depend on it).
    member this.Materialise(t: Tensor) =
        match this.Unwrap t with
        | v, true -> v
        | v, false -> v.Unsqueeze(0).BroadcastTo(Array.append [| batchSize |] v.ShapeRef)

    override this.Process(prim, args, _, _) =
        let unwrapped = args |> Array.map this.Unwrap
        this.Wrap(BatchRules.apply prim (Array.map fst unwrapped) (Array.map snd unwrapped) batchSize)

    override this.ProcessCustom(fn, args) =
        let unwrapped = args |> Array.map this.Unwrap
        let batched = Array.map snd unwrapped

        let values = Array.map fst unwrapped

        let outs =
            match fn.BatchAt(this, values, batched, batchSize) with
            | Some outs -> outs
            | None -> Tensor.ApplyCustom(BatchedCustom(fn, this, batched), values)

        outs |> Array.map this.Wrap

and internal BatchTracer(trace: BatchTrace, value: Tensor) =
    inherit Tracer(trace)
    member _.Value = value

/// A custom function seen through a batch level: its call and rules run on per-example tracers of
/// that level (which batch every operation), so lower transforms still see one custom function.
and internal BatchedCustom(fn: CustomFn, trace: BatchTrace, batched: bool[]) =
    inherit CustomFn(fn.Name)

    member private _.In(values: Tensor[], flags: bool[]) =
        Array.map2
            (fun (v: Tensor) b ->
                if isNull v then null
                elif b then trace.Wrap v
                else v)
            values
            flags

    member private _.Out(values: Tensor[]) =
        values |> Array.map (fun v -> if isNull v then null else trace.Materialise v)

    override this.Call args =
        this.Out(fn.Call(this.In(args, batched)))

    override this.Jvp(primals, tangents) =
        let outs, outTangents =
            fn.Jvp(this.In(primals, batched), this.In(tangents, batched))

        this.Out outs, this.Out outTangents

    override this.JvpAt(jvpTrace, primals, tangents) =
        let outs, outTangents =
            fn.JvpAt(jvpTrace, this.In(primals, batched), this.In(tangents, batched))

        this.Out outs, this.Out outTangents

    override _.JvpPrimalsDispatched = fn.JvpPrimalsDispatched
    override _.IsLinear = fn.IsLinear
    override _.IsConstantArg i = fn.IsConstantArg i

    override this.Transpose(consts, cts) =
        // Transposes run in the backward pass, which for grad of vmap comes after vmap returned: the
        // per-example values the rule works on (constants, cotangents and any residuals the rule
        // captured while vmap ran, e.g. a customVjp's) are tracers of this batch level, so the level
        // is reopened while the rule runs. Nesting is unchanged: the backward pass runs under the
        // transforms that enclosed vmap, or under later ones that wrap the cotangents (jacrev).
        trace.Reopen()

        try
            let all = Array.create cts.Length true
            this.Out(fn.Transpose(this.In(consts, batched), this.In(cts, all)))
        finally
            trace.Release()

    override this.OutputTypes args =
        fn.OutputTypes(this.In(args, batched))
        |> Array.map (fun (shape, dtype) -> Array.append [| trace.BatchSize |] shape, dtype)
