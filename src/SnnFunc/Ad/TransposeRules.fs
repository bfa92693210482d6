/// Transpose rules of the linear primitives: cotangents of the linear inputs from the cotangent of
/// the output. Reverse mode runs these over the recorded tangent operations.
module internal SnnFunc.TransposeRules

open SnnFunc.Linear

/// Cotangents for each argument (null for constants) of `prim`, linear in the arguments flagged by
/// `isVar`; `consts` holds the constant arguments (null in linear slots), `shapes`/`dtypes` all
/// arguments' types, `ct` the output cotangent.
let apply (prim: Prim) (consts: Tensor[]) (isVar: bool[]) (shapes: int[][]) (dtypes: DType[]) (ct: Tensor) : Tensor[] =
    let n = isVar.Length
    let result: Tensor[] = Array.zeroCreate n

    let notLinear () =
        let which =
            String.concat ", " [ for i in 0 .. n - 1 -> if isVar.[i] then "linear" else "constant" ]

        invalidOp $"internal error: %s{Prim.name prim} is not linear in its arguments (%s{which}); it has no transpose rule"

    let set i (value: unit -> Tensor) =
        if isVar[i] then
            result[i] <- value ()

    match prim with
    | Prim.Unary UnaryOp.Neg -> set 0 (fun () -> -ct)
    | Prim.Binary BinaryOp.Add ->
        set 0 (fun () -> unbroadcast ct shapes[0])
        set 1 (fun () -> unbroadcast ct shapes[1])
    | Prim.Binary BinaryOp.Sub ->
        set 0 (fun () -> unbroadcast ct shapes[0])
        set 1 (fun () -> unbroadcast (-ct) shapes[1])
    | Prim.Binary BinaryOp.Mul ->
        if isVar[0] && isVar[1] then
            notLinear ()

        set 0 (fun () -> unbroadcast (ct * consts[1]) shapes[0])
        set 1 (fun () -> unbroadcast (ct * consts[0]) shapes[1])
    | Prim.Binary BinaryOp.Div ->
        if isVar[1] then
            notLinear ()

        set 0 (fun () -> unbroadcast (ct / consts[1]) shapes[0])
    | Prim.Where ->
        if isVar[0] then
            notLinear ()

        let zero = Tensor.Scalar(0.0, ct.DType)
        set 1 (fun () -> unbroadcast (Tensor.Where(consts[0], ct, zero)) shapes[1])
        set 2 (fun () -> unbroadcast (Tensor.Where(consts[0], zero, ct)) shapes[2])
    | Prim.Reduce(ReduceOp.Sum, axes) ->
        let keep =
            shapes[0] |> Array.mapi (fun i d -> if Array.contains i axes then 1 else d)

        set 0 (fun () -> ct.Reshape(keep).BroadcastTo shapes[0])
    | Prim.MatMul(transA, transB) ->
        if isVar[0] && isVar[1] then
            notLinear ()
        // C = op(A)·op(B):  dop(A) = dC·op(B)ᵀ,  dop(B) = op(A)ᵀ·dC; the transposes are folded into
        // the GEMM flags, then broadcast batch axes are summed away.
        set 0 (fun () ->
            let b = consts[1]

            let g =
                if transA then
                    b.MatMul(ct, transB, true)
                else
                    ct.MatMul(b, false, not transB)

            unbroadcast g shapes[0])

        set 1 (fun () ->
            let a = consts[0]

            let g =
                if transB then
                    ct.MatMul(a, true, transA)
                else
                    a.MatMul(ct, not transA, false)

            unbroadcast g shapes[1])
    | Prim.Reshape _ -> set 0 (fun () -> ct.Reshape shapes[0])
    | Prim.BroadcastTo _ -> set 0 (fun () -> unbroadcast ct shapes[0])
    | Prim.Permute perm ->
        let inverse = Array.zeroCreate perm.Length
        perm |> Array.iteri (fun i p -> inverse[p] <- i)
        set 0 (fun () -> ct.Permute inverse)
    | Prim.Slice(starts, sizes) ->
        let high = Array.init starts.Length (fun i -> shapes[0][i] - starts[i] - sizes[i])
        set 0 (fun () -> ct.Pad(starts, high))
    | Prim.Pad(low, _) -> set 0 (fun () -> ct.Slice(low, shapes[0]))
    | Prim.Concat axis ->
        let mutable offset = 0

        for i in 0 .. n - 1 do
            let start = offset
            set i (fun () -> ct.Narrow(axis, start, shapes[i][axis]))
            offset <- offset + shapes[i][axis]
    | Prim.Gather(axis, batchDims) -> set 0 (fun () -> Tensor.Apply(Prim.ScatterAdd(axis, batchDims, shapes[0][axis]), ct, consts[1]))
    | Prim.ScatterAdd(axis, batchDims, _) -> set 0 (fun () -> Tensor.Apply(Prim.Gather(axis, batchDims), ct, consts[1]))
    | Prim.Cumsum(axis, reverse) -> set 0 (fun () -> Tensor.Apply(Prim.Cumsum(axis, not reverse), ct))
    | Prim.Convert _ -> set 0 (fun () -> ct.Convert dtypes[0])
    | _ -> notLinear ()

    result
