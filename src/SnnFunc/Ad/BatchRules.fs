/// Batching rules (vmap): each primitive applied to arguments some of which carry a leading batch
/// axis of size B becomes one primitive call on the whole batch — no per-example loop.
module internal SnnFunc.BatchRules

/// Gives a batched value ([B] + per-example shape) the per-example rank `rank` by inserting unit
/// axes after the batch axis, so NumPy's right-aligned broadcasting meets unbatched operands right.
let private padRank (v: Tensor) (rank: int) =
    let s = v.ShapeRef
    let missing = rank - (s.Length - 1)

    if missing <= 0 then
        v
    else
        v.Reshape(Array.concat [ [| s[0] |]; Array.create missing 1; s[1..] ])

let private shift (axes: int[]) = Array.map ((+) 1) axes

/// The result of `prim` on the batched values; `batched[i]` tells whether vals[i] has the batch
/// axis (at 0). The result always has it.
let apply (prim: Prim) (vals: Tensor[]) (batched: bool[]) (batchSize: int) : Tensor =
    let exampleRank i =
        if batched[i] then vals[i].Rank - 1 else vals[i].Rank

    /// Aligns batched operands for broadcasting primitives (elementwise, where, matmul batch axes).
    let aligned (rank: int) =
        vals |> Array.mapi (fun i v -> if batched[i] then padRank v rank else v)

    let x = vals[0]

    match prim with
    | Prim.Unary _
    | Prim.Convert _ -> Tensor.Apply(prim, x)
    | Prim.Binary _
    | Prim.Where ->
        let rank = Array.init vals.Length exampleRank |> Array.max
        Tensor.Apply(prim, aligned rank)
    | Prim.Reduce(op, axes) -> Tensor.Apply(Prim.Reduce(op, shift axes), x)
    | Prim.ArgMax axis -> Tensor.Apply(Prim.ArgMax(axis + 1), x)
    | Prim.ArgMin axis -> Tensor.Apply(Prim.ArgMin(axis + 1), x)
    | Prim.MatMul _ ->
        // The batch axis joins the matmul's own batch axes; an unbatched matrix broadcasts over it
        // (and a batched [B; m; k] times a plain [k; n] becomes a single GEMM in Eval).
        let rank = max (exampleRank 0) (exampleRank 1)
        Tensor.Apply(prim, aligned rank)
    | Prim.Reshape shape -> Tensor.Apply(Prim.Reshape(Array.append [| batchSize |] shape), x)
    | Prim.BroadcastTo shape -> Tensor.Apply(Prim.BroadcastTo(Array.append [| batchSize |] shape), padRank x shape.Length)
    | Prim.Permute perm -> Tensor.Apply(Prim.Permute(Array.append [| 0 |] (shift perm)), x)
    | Prim.Slice(starts, sizes) -> Tensor.Apply(Prim.Slice(Array.append [| 0 |] starts, Array.append [| batchSize |] sizes), x)
    | Prim.Pad(low, high) -> Tensor.Apply(Prim.Pad(Array.append [| 0 |] low, Array.append [| 0 |] high), x)
    | Prim.Concat axis ->
        let parts =
            vals
            |> Array.mapi (fun i v ->
                if batched[i] then
                    v
                else
                    v.Unsqueeze(0).BroadcastTo(Array.append [| batchSize |] v.ShapeRef))

        Tensor.Apply(Prim.Concat(axis + 1), parts)
    | Prim.Gather(axis, indices, indexShape) -> Tensor.Apply(Prim.Gather(axis + 1, indices, indexShape), x)
    | Prim.ScatterAdd(axis, indices, indexShape, size) -> Tensor.Apply(Prim.ScatterAdd(axis + 1, indices, indexShape, size), x)
