/// The custom functions behind stopGradient, customJvp, customVjp, checkpoint and scan's unstack:
/// each a CustomFn whose rules the transforms call instead of looking inside.
namespace SnnFunc.AdCore

open System.Collections.Generic
open SnnFunc

module internal Tangents =
    /// Zero tensors in place of null (symbolic zero) tangents.
    let zerosIfNull (like: Tensor[]) (values: Tensor[]) =
        Array.map2 (fun (l: Tensor) (v: Tensor) -> if isNull v then Tensor.ZerosLike l else v) like values

    let rec private isRecorded (t: Tensor) =
        match t.Tracer with
        | :? LinTracer -> true
        | :? BatchTracer as b -> isRecorded b.Value
        | _ -> false

    /// True when every non-zero tangent is a recorded (reverse-mode) variable, or, under vmap inside
    /// grad, a batch of recorded variables: the rule may then record one linear step for the tape.
    let allRecorded (tangents: Tensor[]) =
        tangents |> Array.forall (fun t -> isNull t || isRecorded t)

/// Identity whose derivative is zero.
type internal StopGradientFn() =
    inherit CustomFn("Ad.stopGradient")
    override _.Call args = args

    override _.Jvp(primals, _) =
        primals, Array.zeroCreate primals.Length

    override this.Batch(args, _, _) = Some(Tensor.ApplyCustom(this, args))

/// A function with a user forward rule: rule primals tangents -> (outputs, output tangents).
/// The rule receives zero tensors for symbolic-zero tangents.
type internal CustomJvpFn(name: string, f: Tensor[] -> Tensor[], rule: Tensor[] -> Tensor[] -> Tensor[] * Tensor[]) =
    inherit CustomFn(name)
    override _.Call args = f args

    override _.Jvp(primals, tangents) =
        rule primals (Tangents.zerosIfNull primals tangents)

/// A linear function given only by its transpose (a pullback); used to record the tangent of a
/// customVjp or checkpointed function as a single step of the reverse-mode tape. Evaluated forward
/// (forward mode over it, linearize) as the transpose of the pullback.
type internal PullbackLinearFn(name: string, outTypes: (int[] * DType)[], pullback: Tensor[] -> Tensor[]) =
    inherit CustomFn(name)

    let zerosOf (types: (int[] * DType)[]) =
        types |> Array.map (fun (shape, dtype) -> Tensor.Full(shape, 0.0, dtype))

    let filled (cts: Tensor[]) =
        Array.map2 (fun (ct: Tensor) (shape, dtype) -> if isNull ct then Tensor.Full(shape, 0.0, dtype) else ct) cts outTypes

    override _.Call args =
        Flat.transpose name (filled >> pullback) (zerosOf outTypes) args

    override this.Jvp(primals, tangents) =
        Tensor.ApplyCustom(this, primals), Tensor.ApplyCustom(this, Tangents.zerosIfNull primals tangents)

    override _.JvpPrimalsDispatched = true
    override _.IsLinear = true
    override _.OutputTypes _ = outTypes
    override _.Transpose(_, cts) = pullback (filled cts)

/// A function with a user reverse rule: fwd gives outputs and residuals, bwd maps residuals and
/// output cotangents to input cotangents. Reverse mode records one step that calls bwd; forward
/// mode applies the transpose of bwd (exact when bwd is the true pullback, and consistent with the
/// custom rule when it is not).
type internal CustomVjpFn(name: string, f: Tensor[] -> Tensor[], fwd: Tensor[] -> Tensor[] * obj, bwd: obj -> Tensor[] -> Tensor[]) =
    inherit CustomFn(name)
    override _.Call args = f args

    override _.Jvp(primals, tangents) =
        let outs, residuals = fwd primals
        let outTypes = outs |> Array.map (fun o -> o.Shape, o.DType)
        let linear = PullbackLinearFn(name, outTypes, bwd residuals)
        outs, Tensor.ApplyCustom(linear, Tangents.zerosIfNull primals tangents)

/// f run so that reverse mode stores only its inputs and recomputes its inside in the backward pass.
/// Values f captured from the transform that differentiates it (a scan step closing over weights)
/// are found while it runs and made explicit arguments (closure conversion, as JAX does when it
/// traces a function), so they receive their derivatives like the arguments do.
type internal CheckpointFn(name: string, f: Tensor[] -> Tensor[]) =
    inherit CustomFn(name)
    override _.Call args = f args

    override _.Jvp(_, _) =
        invalidOp $"%s{name}: internal error: the rule needs its transform (JvpAt)"

    override _.JvpPrimalsDispatched = true

    override this.JvpAt(trace, primals, tangents) =
        // The lower transforms see f with every value it captured from `trace` read as its primal
        // (from now on, also when they recompute it later); running it collects those values.
        let captured = ResizeArray<DualTracer>()
        let seen = HashSet<Tracer>(HashIdentity.Reference)

        let readPrimal (t: Tracer) =
            match t with
            | :? DualTracer as d when obj.ReferenceEquals(d.Trace, trace) ->
                lock seen (fun () ->
                    if seen.Add t then
                        captured.Add d)

                d.Primal
            | _ -> null

        let lowered =
            CheckpointFn(name, fun args -> Flat.withResolver trace readPrimal (fun () -> f args))

        let outs = Tensor.ApplyCustom(lowered, primals)
        let captured = captured.ToArray()
        let n = primals.Length

        // f with its captured values as explicit arguments after its own (for this level's rules).
        let explicit (args: Tensor[]) =
            if captured.Length = 0 then
                f args
            else
                let standIns = Dictionary<Tracer, Tensor>(HashIdentity.Reference)

                for i in 0 .. captured.Length - 1 do
                    standIns[captured[i]] <- args[n + i]

                let standIn (t: Tracer) =
                    match standIns.TryGetValue t with
                    | true, v -> v
                    | _ -> null

                Flat.withResolver trace standIn (fun () -> f args[.. n - 1])

        let allPrimals = Array.append primals [| for d in captured -> d.Primal |]
        let allTangents = Array.append tangents [| for d in captured -> d.Tangent |]

        if Tangents.allRecorded allTangents then
            let outTypes = outs |> Array.map (fun o -> o.Shape, o.DType)

            let pullback (cts: Tensor[]) =
                let _, pb = Flat.vjp name explicit allPrimals
                pb cts

            let linear = PullbackLinearFn(name, outTypes, pullback)
            outs, Tensor.ApplyCustom(linear, Tangents.zerosIfNull allPrimals allTangents)
        else
            let _, outTangents = Flat.jvp name explicit allPrimals allTangents
            outs, outTangents

    override _.BatchAt(trace, args, batched, batchSize) =
        // vmap of a checkpoint is a checkpoint of the vmapped function. The values f captured from
        // this vmap are per-example views of batches: inside, they become views of the same batches
        // under the inner vmap, so the two batch axes stay one.
        let vmapped (values: Tensor[]) =
            let inner = BatchTrace batchSize

            try
                let lift (t: Tracer) =
                    match t with
                    | :? BatchTracer as b when obj.ReferenceEquals(b.Trace, trace) -> inner.Wrap b.Value
                    | _ -> null

                let inputs =
                    Array.map2 (fun (v: Tensor) b -> if b then inner.Wrap v else v) values batched

                let outs = Flat.withResolver trace lift (fun () -> f inputs)
                outs |> Array.map inner.Materialise
            finally
                inner.Close()

        Some(Tensor.ApplyCustom(CheckpointFn(name, vmapped), args))

/// Splits a tensor along `axis` into its `steps` slices (one output per index). Linear, so reverse
/// mode records one step for all slices and transposes it by stacking: O(T) work, not O(T²).
type internal UnstackFn(steps: int, axis: int) =
    inherit CustomFn("Ad.scan (unstack)")

    override _.Call args =
        let x = args[0]
        let rest = Array.append x.ShapeRef[.. axis - 1] x.ShapeRef[axis + 1 ..]
        Array.init steps (fun t -> x.Narrow(axis, t, 1).Reshape rest)

    override this.Jvp(primals, tangents) =
        Tensor.ApplyCustom(this, primals), Tensor.ApplyCustom(this, tangents)

    override _.JvpPrimalsDispatched = true
    override _.IsLinear = true

    override _.Transpose(_, cts) =
        let nonNull = cts |> Array.find (fun c -> not (isNull c))

        let parts =
            cts |> Array.map (fun c -> if isNull c then Tensor.ZerosLike nonNull else c)

        [| Tensor.Stack(parts, axis) |]

    override _.OutputTypes args =
        let x = args[0]
        Array.create steps (Array.append x.ShapeRef[.. axis - 1] x.ShapeRef[axis + 1 ..], x.DType)

    override _.Batch(args, _, _) =
        Some(Tensor.ApplyCustom(UnstackFn(steps, axis + 1), args))
