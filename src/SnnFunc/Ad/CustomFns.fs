/// The custom functions behind stopGradient, customJvp, customVjp, checkpoint and scan's unstack:
/// each a CustomFn whose rules the transforms call instead of looking inside.
namespace SnnFunc.AdCore

open SnnFunc

/// Identity whose derivative is zero.
type internal StopGradientFn() =
    inherit CustomFn("Ad.stopGradient")
    override _.Call args = args

    override _.Jvp(primals, _) =
        primals, Array.zeroCreate primals.Length

/// A function with a user forward rule: rule primals tangents -> (outputs, output tangents).
/// The rule receives zero tensors for symbolic-zero tangents.
type internal CustomJvpFn(name: string, f: Tensor[] -> Tensor[], rule: Tensor[] -> Tensor[] -> Tensor[] * Tensor[]) =
    inherit CustomFn(name)
    override _.Call args = f args

    override _.Jvp(primals, tangents) =
        let tangents =
            Array.map2 (fun (p: Tensor) (t: Tensor) -> if isNull t then Tensor.ZerosLike p else t) primals tangents

        rule primals tangents

/// True when every non-zero tangent is a recorded (reverse-mode) variable, or, under vmap inside
/// grad, a batch of recorded variables.
module internal TangentKind =
    let rec private isRecorded (t: Tensor) =
        match t.Tracer with
        | :? LinTracer -> true
        | :? BatchTracer as b -> isRecorded b.Value
        | _ -> false

    let allRecorded (tangents: Tensor[]) =
        tangents |> Array.forall (fun t -> isNull t || isRecorded t)

/// A linear function given only by its transpose (a pullback); used to record the tangent of a
/// customVjp or checkpointed function as a single step of the reverse-mode tape.
type internal PullbackLinearFn(name: string, outTypes: (int[] * DType)[], pullback: Tensor[] -> Tensor[]) =
    inherit CustomFn(name)

    override _.Call _ =
        invalidOp $"%s{name}: forward-mode evaluation of a reverse-only linear map is not supported"

    override _.Jvp(_, _) =
        invalidOp $"%s{name}: forward-mode differentiation through a customVjp/checkpoint pullback is not supported"

    override _.IsLinear = true
    override _.OutputTypes = outTypes

    override _.Transpose(_, cts) =
        let cts =
            Array.map2 (fun (ct: Tensor) (shape, dtype) -> if isNull ct then Tensor.Full(shape, 0.0, dtype) else ct) cts outTypes

        pullback cts

/// A function with a user reverse rule: fwd gives outputs and residuals, bwd maps residuals and
/// output cotangents to input cotangents. Reverse mode only.
type internal CustomVjpFn(name: string, f: Tensor[] -> Tensor[], fwd: Tensor[] -> Tensor[] * obj, bwd: obj -> Tensor[] -> Tensor[]) =
    inherit CustomFn(name)
    override _.Call args = f args

    override _.Jvp(primals, tangents) =
        if not (TangentKind.allRecorded tangents) then
            invalidOp $"%s{name}: a customVjp function supports reverse mode only (grad, vjp); use Ad.customJvp for forward mode"

        let outs, residuals = fwd primals
        let types = outs |> Array.map (fun o -> o.Shape, o.DType)
        let linear = PullbackLinearFn(name, types, bwd residuals)

        outs,
        Tensor.ApplyCustom(
            linear,
            tangents
            |> Array.mapi (fun i t -> if isNull t then Tensor.ZerosLike primals[i] else t)
        )

/// Splits a tensor along axis 0 into its slices (one output per index). Linear, so reverse mode
/// records one step for all slices and transposes it by stacking: O(T) work, not O(T²).
type internal UnstackFn(steps: int, sliceShape: int[], dtype: DType) =
    inherit CustomFn("Ad.scan (unstack)")

    override _.Call args =
        let x = args[0]
        let rest = x.ShapeRef[1..]
        Array.init steps (fun t -> x.Slice(Array.init x.Rank (fun i -> if i = 0 then t else 0), Array.append [| 1 |] rest).Reshape rest)

    override this.Jvp(primals, tangents) =
        Tensor.ApplyCustom(this, primals), Tensor.ApplyCustom(this, tangents)

    override _.IsLinear = true

    override _.Transpose(consts, cts) =
        ignore consts
        let nonNull = cts |> Array.find (fun c -> not (isNull c))

        let parts =
            cts |> Array.map (fun c -> if isNull c then Tensor.ZerosLike nonNull else c)

        [| Tensor.Stack(parts, 0) |]

    override _.OutputTypes = Array.create steps (sliceShape, dtype)
