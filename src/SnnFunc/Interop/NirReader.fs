/// Reading NIR graph files into NirDocument values, with errors that name the file, the HDF5 path
/// and the field (NirFile.read is the public entry).
module internal SnnFunc.NirReader

open System
open System.Collections.Generic
open System.IO
open PureHDF

/// What the reader needs to name a failure: the file.
type private Source = { Name: string }

let private bad (src: Source) (path: string) (msg: string) =
    InvalidDataException($"NirFile.read: %s{src.Name}: %s{path}: %s{msg}") :> exn

let private value (src: Source) (path: string) (d: IH5Dataset) =
    Hdf5.readDataset (fun msg -> bad src path $"the dataset %s{msg}") d

let private toInt (fail: string -> exn) (v: int64) =
    if v < int64 Int32.MinValue || v > int64 Int32.MaxValue then
        raise (fail $"the value %d{v} does not fit int32")

    int v

/// Integers stored in any numeric type (the reference does not check dtypes: an f32 shape is
/// accepted), as int32 with range and integrality checks.
let private intsOf (fail: string -> exn) (v: Hdf5.Value) : int[] =
    let ofFloat (x: float) =
        if Double.IsInteger x then
            toInt fail (int64 x)
        else
            raise (fail $"must hold integers, got %g{x}")

    match v.Elements with
    | Hdf5.Ints a -> Array.map (toInt fail) a
    | Hdf5.F32 a -> Array.map (float >> ofFloat) a
    | Hdf5.F64 a -> Array.map ofFloat a
    | other -> raise (fail $"must hold integers, got %s{other.Kind} data")

/// A float parameter in its stored dtype; integer data (accepted by the reference, never written
/// by it) becomes Float64, exact below 2^53.
let private tensorOf (fail: string -> exn) (v: Hdf5.Value) : Tensor =
    match v.Elements with
    | Hdf5.F32 a -> Tensor.FromStorage(v.Shape, Storage.F32 a)
    | Hdf5.F64 a -> Tensor.FromStorage(v.Shape, Storage.F64 a)
    | Hdf5.Ints a -> Tensor.FromStorage(v.Shape, Storage.F64(Array.map float a))
    | other -> raise (fail $"must be a float array, got %s{other.Kind} data")

let rec private metadataOf (src: Source) (path: string) (g: IH5Group) : NirMetadata =
    Hdf5.children g
    |> List.map (fun (name, child) ->
        let p = path + "/" + name

        match child with
        | Choice2Of2 sub -> name, NirValue.Group(metadataOf src p sub)
        | Choice1Of2 d ->
            let v = value src p d

            let item =
                match v.Elements, v.Shape with
                | Hdf5.Texts a, [||] -> NirValue.Text a[0]
                | Hdf5.Texts a, shape -> NirValue.TextArray(a, shape)
                | Hdf5.Ints a, [||] -> NirValue.Int a[0]
                | Hdf5.Ints a, shape -> NirValue.IntArray(a, shape)
                | Hdf5.Bools a, [||] -> NirValue.Bool a[0]
                | Hdf5.Bools a, shape -> NirValue.BoolArray(a, shape)
                | Hdf5.F64 a, [||] -> NirValue.Float a[0]
                | Hdf5.F64 a, shape -> NirValue.Array(Tensor.FromStorage(shape, Storage.F64 a))
                | Hdf5.F32 a, shape -> NirValue.Array(Tensor.FromStorage(shape, Storage.F32 a))

            name, item)
    |> Map.ofList

/// The datasets of one node group, read on demand, with a record of which fields were used so
/// that unknown ones can be reported.
type private Fields(src: Source, path: string, typeName: string, datasets: Map<string, IH5Dataset>) =
    let used = HashSet<string>([ "type" ])

    member _.Fail(field: string) =
        fun (msg: string) -> bad src path $"%s{typeName} field '%s{field}' %s{msg}"

    member f.Value(field: string) : Hdf5.Value option =
        used.Add field |> ignore

        datasets.TryFind field |> Option.map (Hdf5.readDataset (f.Fail field))

    member f.Required(field: string) : Hdf5.Value =
        match f.Value field with
        | Some v -> v
        | None ->
            let present = String.Join(", ", datasets.Keys)
            raise (bad src path $"the %s{typeName} node has no '%s{field}' dataset (it has: %s{present})")

    member f.Tensor(field: string) =
        tensorOf (f.Fail field) (f.Required field)

    /// A float parameter with a default of `fill` like `like` (rank 0: broadcast by NirCheck).
    member f.TensorOr (field: string) (fill: float) (like: Tensor) =
        match f.Value field with
        | Some v -> tensorOf (f.Fail field) v
        | None -> Tensor.Full([||], fill, like.DType)

    /// Integers of a scalar or 1-D dataset, and whether it was a scalar.
    member private f.IntsOf (field: string) (v: Hdf5.Value) =
        if v.Shape.Length > 1 then
            raise (f.Fail field $"must be a scalar or a 1-D array, got shape %s{Shape.format v.Shape}")

        intsOf (f.Fail field) v, v.Shape.Length = 0

    member f.Ints(field: string) =
        f.IntsOf field (f.Required field) |> fst

    /// One entry per spatial dimension; a scalar means the same for each (Conv2d.__post_init__).
    member private f.SpatialOf (field: string) (spatial: int) (v: Hdf5.Value) =
        match f.IntsOf field v with
        | [| x |], true -> Array.create spatial x
        | ints, _ -> ints

    member f.Spatial (field: string) (spatial: int) =
        f.SpatialOf field spatial (f.Required field)

    member f.Int(field: string) =
        match f.IntsOf field (f.Required field) with
        | [| x |], _ -> x
        | ints, _ -> raise (f.Fail field $"must be one integer, got %s{Shape.format ints}")

    member f.IntOr (field: string) (fallback: int) =
        if datasets.ContainsKey field then f.Int field else fallback

    member f.Padding (field: string) (spatial: int) =
        match f.Required field with
        | { Elements = Hdf5.Texts [| "same" |] } -> NirPadding.Same
        | { Elements = Hdf5.Texts [| "valid" |] } -> NirPadding.Valid
        | { Elements = Hdf5.Texts a } -> raise (f.Fail field $"must be an integer, a pair, \"same\" or \"valid\", got %A{a}")
        | v -> NirPadding.Explicit(f.SpatialOf field spatial v)

    /// Datasets nobody asked for, apart from the derived types the reference also drops.
    member _.Unused(ignorable: string list) =
        datasets.Keys
        |> Seq.filter (fun k -> not (used.Contains k) && not (List.contains k ignorable))
        |> List.ofSeq

let private knownTypes =
    "NIRGraph, Input, Output, Affine, Linear, Scale, Threshold, Flatten, Delay, Conv1d, Conv2d, SumPool2d, AvgPool2d, I, IF, LI, LIF, CubaLI, CubaLIF"

let rec private readNode (src: Source) (path: string) (g: IH5Group) : NirNode =
    let items = Hdf5.children g

    let datasets =
        items
        |> List.choose (fun (n, c) ->
            match c with
            | Choice1Of2 d -> Some(n, d)
            | _ -> None)
        |> Map.ofList

    let groups =
        items
        |> List.choose (fun (n, c) ->
            match c with
            | Choice2Of2 sub -> Some(n, sub)
            | _ -> None)
        |> Map.ofList

    let typeName =
        match datasets.TryFind "type" with
        | None -> raise (bad src path "the node group has no 'type' dataset")
        | Some d ->
            match value src (path + "/type") d with
            | { Elements = Hdf5.Texts [| t |] } -> t
            | _ -> raise (bad src (path + "/type") "must be one string (the node's class name)")

    let f = Fields(src, path, typeName, datasets)

    let meta =
        match groups.TryFind "metadata" with
        | Some m -> metadataOf src (path + "/metadata") m
        | None -> Map.empty

    let conv spatial =
        {
            InputShape =
                if datasets.ContainsKey "input_shape" then
                    Some(f.Spatial "input_shape" spatial)
                else
                    None
            Weight = f.Tensor "weight"
            Stride = f.Spatial "stride" spatial
            Padding = f.Padding "padding" spatial
            Dilation = f.Spatial "dilation" spatial
            Groups = f.Int "groups"
            Bias = f.Tensor "bias"
            Metadata = meta
        }

    let pool () =
        {
            KernelSize = f.Spatial "kernel_size" 2
            Stride = f.Spatial "stride" 2
            Padding = f.Spatial "padding" 2
            Metadata = meta
        }

    let node =
        match typeName with
        | "NIRGraph" -> NirNode.Graph(readGraph src path groups f meta)
        | "Input" ->
            NirNode.Input
                {
                    Shape = f.Ints "shape"
                    Metadata = meta
                }
        | "Output" ->
            NirNode.Output
                {
                    Shape = f.Ints "shape"
                    Metadata = meta
                }
        | "Affine" ->
            NirNode.Affine
                {
                    Weight = f.Tensor "weight"
                    Bias = f.Tensor "bias"
                    Metadata = meta
                }
        | "Linear" ->
            NirNode.Linear
                {
                    Weight = f.Tensor "weight"
                    Metadata = meta
                }
        | "Scale" ->
            NirNode.Scale
                {
                    Scale = f.Tensor "scale"
                    Metadata = meta
                }
        | "Threshold" ->
            NirNode.Threshold
                {
                    Threshold = f.Tensor "threshold"
                    Metadata = meta
                }
        | "Delay" ->
            NirNode.Delay
                {
                    Delay = f.Tensor "delay"
                    Metadata = meta
                }
        | "Flatten" ->
            NirNode.Flatten
                {
                    InputType =
                        if datasets.ContainsKey "input_type" then
                            Some(f.Ints "input_type")
                        else
                            None
                    StartDim = f.IntOr "start_dim" 1
                    EndDim = f.IntOr "end_dim" -1
                    Metadata = meta
                }
        | "Conv1d" -> NirNode.Conv1d(conv 1)
        | "Conv2d" -> NirNode.Conv2d(conv 2)
        | "SumPool2d" -> NirNode.SumPool2d(pool ())
        | "AvgPool2d" -> NirNode.AvgPool2d(pool ())
        | "I" -> NirNode.I { R = f.Tensor "r"; Metadata = meta }
        | "IF" ->
            let th = f.Tensor "v_threshold"

            NirNode.IF
                {
                    R = f.Tensor "r"
                    VThreshold = th
                    VReset = f.TensorOr "v_reset" 0.0 th
                    Metadata = meta
                }
        | "LI" ->
            NirNode.LI
                {
                    Tau = f.Tensor "tau"
                    R = f.Tensor "r"
                    VLeak = f.Tensor "v_leak"
                    Metadata = meta
                }
        | "LIF" ->
            let th = f.Tensor "v_threshold"

            NirNode.LIF
                {
                    Tau = f.Tensor "tau"
                    R = f.Tensor "r"
                    VLeak = f.Tensor "v_leak"
                    VThreshold = th
                    VReset = f.TensorOr "v_reset" 0.0 th
                    Metadata = meta
                }
        | "CubaLI" ->
            let tauSyn = f.Tensor "tau_syn"

            NirNode.CubaLI
                {
                    TauSyn = tauSyn
                    TauMem = f.Tensor "tau_mem"
                    R = f.Tensor "r"
                    VLeak = f.Tensor "v_leak"
                    WIn = f.TensorOr "w_in" 1.0 tauSyn
                    Metadata = meta
                }
        | "CubaLIF" ->
            let tauSyn = f.Tensor "tau_syn"
            let th = f.Tensor "v_threshold"

            NirNode.CubaLIF
                {
                    TauSyn = tauSyn
                    TauMem = f.Tensor "tau_mem"
                    R = f.Tensor "r"
                    VLeak = f.Tensor "v_leak"
                    VThreshold = th
                    VReset = f.TensorOr "v_reset" 0.0 th
                    WIn = f.TensorOr "w_in" 1.0 tauSyn
                    Metadata = meta
                }
        | other -> raise (bad src path $"the node type '%s{other}' is not a NIR primitive this reader knows (%s{knownTypes})")

    // Checked after the type, so that an unknown type is reported as such.
    let allowedGroups =
        if typeName = "NIRGraph" then
            [ "metadata"; "nodes" ]
        else
            [ "metadata" ]

    for name in groups.Keys do
        if not (List.contains name allowedGroups) then
            raise (bad src path $"the %s{typeName} node has an unexpected group '%s{name}'")

    // Flatten's input_type is a real field; elsewhere it and output_type are derived types.
    let ignorable =
        if typeName = "Flatten" then
            [ "output_type" ]
        else
            [ "input_type"; "output_type" ]

    match f.Unused ignorable with
    | [] -> node
    | extra ->
        let names = String.Join(", ", extra |> List.map (sprintf "'%s'"))
        raise (bad src path $"the %s{typeName} node has dataset(s) %s{names} that are not %s{typeName} fields")

and private readGraph src path groups (f: Fields) meta : NirGraph =
    let nodesGroup =
        match Map.tryFind "nodes" groups with
        | Some n -> n
        | None -> raise (bad src path "the NIRGraph node has no 'nodes' group")

    let nodes =
        Hdf5.children nodesGroup
        |> List.map (fun (name, child) ->
            let p = path + "/nodes/" + name

            match child with
            | Choice2Of2 g -> name, readNode src p g
            | Choice1Of2 _ -> raise (bad src p "is a dataset, but the members of 'nodes' must be node groups"))
        |> Map.ofList

    let edgeValue = f.Required "edges"

    let edges =
        match edgeValue.Elements, edgeValue.Shape with
        | Hdf5.Texts a, [| n; 2 |] -> List.init n (fun i -> a[2 * i], a[2 * i + 1])
        | Hdf5.Texts [||], _ -> []
        // nir.write stores an empty edge list as float64 (0,): numpy's array of [].
        | (Hdf5.F64 [||] | Hdf5.F32 [||] | Hdf5.Ints [||]), _ -> []
        | e, shape ->
            raise (bad src (path + "/edges") $"must be an [n; 2] array of node names, got %s{e.Kind} data of shape %s{Shape.format shape}")

    {
        Nodes = nodes
        Edges = edges
        Metadata = meta
    }

let private readFile (src: Source) (file: IH5Group) : NirDocument =
    let root = Hdf5.children file |> Map.ofList

    let version =
        match root.TryFind "version" with
        | Some(Choice1Of2 d) ->
            match value src "/version" d with
            | { Elements = Hdf5.Texts [| v |] } -> Some v
            // The reference reader never reads /version, so a strange one does not stop us.
            | _ -> None
        | _ -> None

    match root.TryFind "node" with
    | Some(Choice2Of2 g) ->
        match readNode src "/node" g with
        | NirNode.Graph graph ->
            let check: NirCheck.Fail = bad src

            {
                Version = version
                Graph = NirCheck.graph check "/node" graph
            }
        | other -> raise (bad src "/node" $"the root node must be a NIRGraph, got %s{other.TypeName}")
    | _ when root.ContainsKey "nodes" && root.ContainsKey "edges" ->
        raise (bad src "/" "this is the layout of NIR 0.0.x (root 'nodes' and 'edges', before July 2023), which is not supported")
    | _ -> raise (bad src "/" "there is no '/node' group, so this is not a NIR graph file")

let private open' (src: Source) (openFile: unit -> IH5Group) =
    try
        openFile ()
    with
    | :? FileNotFoundException
    | :? DirectoryNotFoundException
    | :? UnauthorizedAccessException -> reraise ()
    | e -> raise (InvalidDataException($"NirFile.read: %s{src.Name}: not an HDF5 file (%s{e.Message})", e))

/// Reads an opened file; a PureHDF failure outside a dataset (a damaged group) still names the file.
let private readOpened (src: Source) (file: IH5Group) =
    use _ = file :?> IDisposable

    try
        readFile src file
    with
    | :? InvalidDataException -> reraise ()
    | e -> raise (InvalidDataException($"NirFile.read: %s{src.Name}: cannot read the HDF5 structure (%s{e.Message})", e))

/// Reads a NIR graph file (see NirFile.read).
let read (path: string) : NirDocument =
    if String.IsNullOrWhiteSpace path then
        invalidArg "path" "NirFile.read: the file path is empty"

    if not (File.Exists path) then
        raise (FileNotFoundException($"NirFile.read: the file '%s{path}' does not exist", path))

    let src = { Name = $"'%s{path}'" }
    readOpened src (open' src (fun () -> H5File.OpenRead path :> IH5Group))

/// Reads a NIR graph from a stream (see NirFile.readStream).
let readStream (name: string) (stream: Stream) : NirDocument =
    if isNull stream then
        nullArg "stream"

    let src = { Name = $"'%s{name}'" }

    if stream.CanSeek then
        readOpened src (open' src (fun () -> H5File.Open(stream, true) :> IH5Group))
    else
        // PureHDF seeks, so a forward-only stream is read into memory first.
        use copy = new MemoryStream()
        stream.CopyTo copy
        copy.Position <- 0L
        readOpened src (open' src (fun () -> H5File.Open(copy, true) :> IH5Group))
