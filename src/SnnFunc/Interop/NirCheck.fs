/// The checks every NIR graph passes on reading and on writing, and the one normalisation:
/// neuron parameters are arrays of one common shape (the reference constructors assert this), so
/// rank-0 ones, as a missing v_reset or w_in default, are broadcast to it (trap T8).
module internal SnnFunc.NirCheck

open System

let private shapeText (s: int[]) = Shape.format s

/// Raised through the caller's `fail` (InvalidDataException on reading, ArgumentException on
/// writing) with a message naming the node and the field.
type Fail = string -> string -> exn

let private floatTensor (fail: Fail) (node: string) (field: string) (t: Tensor) =
    if isNull t then
        raise (fail node $"field '%s{field}' is null")

    if not t.IsConcrete then
        raise (fail node $"field '%s{field}' is a traced tensor; NIR stores values, not tracers")

    if not t.DType.IsFloat then
        raise (fail node $"field '%s{field}' must be Float32 or Float64, got %s{t.DType.Name}")

let private ints (fail: Fail) (node: string) (field: string) (minimum: int) (expectedLength: int option) (v: int[]) =
    if isNull v then
        raise (fail node $"field '%s{field}' is null")

    match expectedLength with
    | Some n when v.Length <> n -> raise (fail node $"field '%s{field}' must have %d{n} entries, got %s{shapeText v}")
    | _ -> ()

    if Array.exists (fun x -> x < minimum) v then
        raise (fail node $"field '%s{field}' must have entries >= %d{minimum}, got %s{shapeText v}")

/// A rank-0 tensor repeated to `shape`, keeping its dtype.
let private fill (shape: int[]) (t: Tensor) =
    let n = Shape.count shape

    let storage =
        match t.Storage with
        | Storage.F32 a -> Storage.F32(Array.create n a[0])
        | Storage.F64 a -> Storage.F64(Array.create n a[0])
        | Storage.I32 a -> Storage.I32(Array.create n a[0])

    Tensor.FromStorage(shape, storage)

/// Checks the named neuron parameters and returns them with rank-0 ones broadcast to the
/// common shape (all rank 0: left as scalars, the neuron shape is then unknown here).
let private neuron (fail: Fail) (node: string) (fields: (string * Tensor) list) : Tensor list =
    for field, t in fields do
        floatTensor fail node field t

    let shaped = fields |> List.filter (fun (_, t) -> t.Rank > 0)

    match shaped with
    | [] -> List.map snd fields
    | (firstName, first) :: _ ->
        let common = first.Shape

        for field, t in shaped do
            if t.Shape <> common then
                raise (
                    fail
                        node
                        $"neuron parameters must share one shape: '%s{firstName}' is %s{shapeText common} but '%s{field}' is %s{shapeText t.Shape}"
                )

        fields |> List.map (fun (_, t) -> if t.Rank = 0 then fill common t else t)

let private weightRank (fail: Fail) (node: string) (minimum: int) (w: Tensor) =
    floatTensor fail node "weight" w

    if w.Rank < minimum then
        raise (fail node $"field 'weight' must have rank >= %d{minimum} (..., N_out, N_in), got %s{shapeText w.Shape}")

let private conv (fail: Fail) (node: string) (spatial: int) (c: NirConv) =
    floatTensor fail node "weight" c.Weight
    floatTensor fail node "bias" c.Bias

    if c.Weight.Rank <> spatial + 2 then
        raise (fail node $"field 'weight' must have rank %d{spatial + 2} (C_out, C_in, kernel...), got %s{shapeText c.Weight.Shape}")

    let cOut = c.Weight.Shape[0]

    if c.Bias.Shape <> [| cOut |] then
        raise (fail node $"field 'bias' has shape %s{shapeText c.Bias.Shape} but weight %s{shapeText c.Weight.Shape} needs [%d{cOut}]")

    ints fail node "stride" 1 (Some spatial) c.Stride
    ints fail node "dilation" 1 (Some spatial) c.Dilation

    match c.Padding with
    | NirPadding.Explicit p -> ints fail node "padding" 0 (Some spatial) p
    | NirPadding.Same
    | NirPadding.Valid -> ()

    if c.Groups < 1 || cOut % c.Groups <> 0 then
        raise (fail node $"field 'groups' must be >= 1 and divide C_out = %d{cOut}, got %d{c.Groups}")

    c.InputShape |> Option.iter (ints fail node "input_shape" 0 (Some spatial))

let private pool (fail: Fail) (node: string) (p: NirPool) =
    ints fail node "kernel_size" 1 (Some 2) p.KernelSize
    ints fail node "stride" 1 (Some 2) p.Stride
    ints fail node "padding" 0 (Some 2) p.Padding

let private flatten (fail: Fail) (node: string) (f: NirFlatten) =
    match f.InputType with
    | Some shape ->
        ints fail node "input_type" 0 None shape
        let r = shape.Length

        let inRange d = d >= -r && d < r
        let norm d = if d < 0 then d + r else d

        if not (inRange f.StartDim && inRange f.EndDim) || norm f.StartDim > norm f.EndDim then
            raise (
                fail node $"start_dim %d{f.StartDim} .. end_dim %d{f.EndDim} is not a range of the dims of input_type %s{shapeText shape}"
            )
    | None -> ()

/// A node name or metadata key must be a valid HDF5 link name.
let private name (fail: Fail) (where: string) (what: string) (n: string) =
    if String.IsNullOrEmpty n || n.Contains '/' || n = "." then
        raise (fail where $"%s{what} '%s{n}' is not allowed (empty, '.', or containing '/')")

/// Metadata must be writable as it stands: keys are link names, arrays match their shapes.
let rec private metadata (fail: Fail) (path: string) (m: NirMetadata) =
    if isNull (box m) then
        raise (fail path "the metadata map is null")

    for KeyValue(key, v) in m do
        name fail path "metadata key" key
        let p = path + "/" + key

        let sized (length: int) (shape: int[]) =
            if
                isNull shape
                || Array.exists (fun d -> d < 0) shape
                || Shape.count shape <> length
            then
                raise (fail p $"has %d{length} values but shape %A{shape}")

        match v with
        | NirValue.Text s when isNull s -> raise (fail p "is a null string")
        | NirValue.Array t ->
            if isNull t || not t.IsConcrete || not t.DType.IsFloat then
                raise (fail p "must be a concrete Float32 or Float64 tensor (use IntArray for integers)")
        | NirValue.IntArray(a, shape) -> sized (if isNull a then -1 else a.Length) shape
        | NirValue.BoolArray(a, shape) -> sized (if isNull a then -1 else a.Length) shape
        | NirValue.TextArray(a, shape) ->
            sized (if isNull a then -1 else a.Length) shape

            if Array.exists isNull a then
                raise (fail p "holds a null string")
        | NirValue.Group g -> metadata fail p g
        | NirValue.Text _
        | NirValue.Int _
        | NirValue.Float _
        | NirValue.Bool _ -> ()

/// Checks a node (named `path` in messages) and returns it normalised.
let rec node (fail: Fail) (path: string) (n: NirNode) : NirNode =
    let one (field: string) (t: Tensor) = floatTensor fail path field t

    match n with
    | NirNode.Graph _ -> () // graph checks its own
    | _ -> metadata fail (path + "/metadata") n.Metadata

    match n with
    | NirNode.Input p
    | NirNode.Output p ->
        ints fail path "shape" 0 None p.Shape
        n
    | NirNode.Affine p ->
        weightRank fail path 2 p.Weight
        one "bias" p.Bias
        let w = p.Weight.Shape
        let lead = w[.. w.Length - 2]

        if p.Bias.Shape <> [| w[w.Length - 2] |] && p.Bias.Shape <> lead then
            raise (fail path $"field 'bias' has shape %s{shapeText p.Bias.Shape} but weight %s{shapeText w} needs [%d{w[w.Length - 2]}]")

        n
    | NirNode.Linear p ->
        weightRank fail path 2 p.Weight
        n
    | NirNode.Scale p ->
        one "scale" p.Scale
        n
    | NirNode.Threshold p ->
        one "threshold" p.Threshold
        n
    | NirNode.Delay p ->
        one "delay" p.Delay
        n
    | NirNode.Flatten p ->
        flatten fail path p
        n
    | NirNode.Conv1d c ->
        conv fail path 1 c
        n
    | NirNode.Conv2d c ->
        conv fail path 2 c
        n
    | NirNode.SumPool2d p
    | NirNode.AvgPool2d p ->
        pool fail path p
        n
    | NirNode.I p ->
        match neuron fail path [ "r", p.R ] with
        | [ r ] -> NirNode.I { p with R = r }
        | _ -> n
    | NirNode.IF p ->
        match neuron fail path [ "r", p.R; "v_threshold", p.VThreshold; "v_reset", p.VReset ] with
        | [ r; th; reset ] ->
            NirNode.IF
                { p with
                    R = r
                    VThreshold = th
                    VReset = reset
                }
        | _ -> n
    | NirNode.LI p ->
        match neuron fail path [ "tau", p.Tau; "r", p.R; "v_leak", p.VLeak ] with
        | [ tau; r; leak ] ->
            NirNode.LI
                { p with
                    Tau = tau
                    R = r
                    VLeak = leak
                }
        | _ -> n
    | NirNode.LIF p ->
        match
            neuron
                fail
                path
                [
                    "tau", p.Tau
                    "r", p.R
                    "v_leak", p.VLeak
                    "v_threshold", p.VThreshold
                    "v_reset", p.VReset
                ]
        with
        | [ tau; r; leak; th; reset ] ->
            NirNode.LIF
                { p with
                    Tau = tau
                    R = r
                    VLeak = leak
                    VThreshold = th
                    VReset = reset
                }
        | _ -> n
    | NirNode.CubaLI p ->
        match
            neuron
                fail
                path
                [
                    "tau_syn", p.TauSyn
                    "tau_mem", p.TauMem
                    "r", p.R
                    "v_leak", p.VLeak
                    "w_in", p.WIn
                ]
        with
        | [ ts; tm; r; leak; w ] ->
            NirNode.CubaLI
                { p with
                    TauSyn = ts
                    TauMem = tm
                    R = r
                    VLeak = leak
                    WIn = w
                }
        | _ -> n
    | NirNode.CubaLIF p ->
        match
            neuron
                fail
                path
                [
                    "tau_syn", p.TauSyn
                    "tau_mem", p.TauMem
                    "r", p.R
                    "v_leak", p.VLeak
                    "v_threshold", p.VThreshold
                    "v_reset", p.VReset
                    "w_in", p.WIn
                ]
        with
        | [ ts; tm; r; leak; th; reset; w ] ->
            NirNode.CubaLIF
                { p with
                    TauSyn = ts
                    TauMem = tm
                    R = r
                    VLeak = leak
                    VThreshold = th
                    VReset = reset
                    WIn = w
                }
        | _ -> n
    | NirNode.Graph g -> NirNode.Graph(graph fail path g)

/// Checks every node and that every edge names nodes of this graph (edges do not reach into
/// subgraphs: NIR's "g.port" addressing is not implemented by the reference either).
and graph (fail: Fail) (path: string) (g: NirGraph) : NirGraph =
    if isNull (box g.Nodes) || isNull (box g.Edges) || isNull (box g.Metadata) then
        raise (fail path "the graph's Nodes, Edges and Metadata must not be null")

    metadata fail (path + "/metadata") g.Metadata

    let nodes =
        g.Nodes
        |> Map.map (fun key n ->
            name fail path "node name" key
            node fail (path + "/nodes/" + key) n)

    for src, dst in g.Edges do
        for endpoint in [ src; dst ] do
            if isNull endpoint || not (nodes.ContainsKey endpoint) then
                let known = String.Join(", ", nodes.Keys)

                raise (
                    fail
                        path
                        $"the edge '%s{src}' -> '%s{dst}' names the node '%s{endpoint}', which is not in this graph (its nodes: %s{known})"
                )

    { g with Nodes = nodes }
