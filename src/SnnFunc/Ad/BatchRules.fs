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

/// The value with the batch axis: itself when batched, else broadcast along a new axis 0.
let private broadcastBatch (v: Tensor) (isBatched: bool) (batchSize: int) =
    if isBatched then
        v
    else
        v.Unsqueeze(0).BroadcastTo(Array.append [| batchSize |] v.ShapeRef)

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
    | Prim.Gather(axis, batchDims) ->
        match batched[0], batched[1] with
        | _, true when batched[0] || batchDims > 0 ->
            // Per-example indices: the vmap axis becomes one more batch axis of both.
            Tensor.Apply(Prim.Gather(axis + 1, batchDims + 1), broadcastBatch x batched[0] batchSize, vals[1])
        | false, _ ->
            // One x, per-example indices without batch axes: the vmap axis is one more index
            // axis, whose place in the result (at `axis`) moves to the front.
            let out = Tensor.Apply(prim, x, vals[1])

            out.Permute(
                Array.init out.Rank (fun i ->
                    if i = 0 then axis
                    elif i <= axis then i - 1
                    else i)
            )
        | _ ->
            // A batch of x, one set of indices.
            if batchDims = 0 then
                Tensor.Apply(Prim.Gather(axis + 1, 0), x, vals[1])
            else
                Tensor.Apply(Prim.Gather(axis + 1, batchDims + 1), x, broadcastBatch vals[1] false batchSize)
    | Prim.ScatterAdd(axis, batchDims, size) ->
        // Every example scatters into its own target: both get the vmap axis as a batch axis.
        Tensor.Apply(
            Prim.ScatterAdd(axis + 1, batchDims + 1, size),
            broadcastBatch x batched[0] batchSize,
            broadcastBatch vals[1] batched[1] batchSize
        )
    | Prim.Cumsum(axis, reverse) -> Tensor.Apply(Prim.Cumsum(axis + 1, reverse), x)
    | Prim.Argsort(axis, descending) -> Tensor.Apply(Prim.Argsort(axis + 1, descending), x)
    | Prim.SearchSorted _ -> Tensor.Apply(prim, broadcastBatch x batched[0] batchSize, broadcastBatch vals[1] batched[1] batchSize)
