/// Building the HDF5 tree of a NIR document in the reference layout (NirFile.write is the public
/// entry).
module internal SnnFunc.NirWriter

open System
open System.IO
open PureHDF

let private invalid (path: string) (msg: string) =
    ArgumentException($"NirFile.write: %s{path}: %s{msg}", "doc") :> exn

/// The flat data of a concrete tensor (NirCheck has rejected tracers and Int32).
let private data (t: Tensor) : Array =
    match t.Storage with
    | Storage.F32 a -> a
    | Storage.F64 a -> a
    | Storage.I32 a -> a

/// Builds one HDF5 group per graph and node, members added in name order so that PureHDF
/// (which lists in insertion order) shows them in h5py's order.
type private Builder(level: int option) =

    let group (members: (string * obj) list) =
        let g = H5Group()

        for name, v in List.sortWith (fun (a, _) (b, _) -> String.CompareOrdinal(a, b)) members do
            g[name] <- v

        g

    /// A numpy array field: one deflated chunk, or contiguous.
    member _.Array(t: Tensor) : obj = Hdf5.dataset (data t) t.Shape level

    member _.IntArray(v: int[]) : obj =
        Hdf5.dataset (Array.map int64 v) [| v.Length |] level

    /// A Python tuple of ints: contiguous, never compressed.
    member _.Tuple(v: int[]) : obj =
        Hdf5.dataset (Array.map int64 v) [| v.Length |] None

    /// A Python int: a scalar int64.
    member _.Int(v: int) : obj = Hdf5.plain (int64 v)

    member b.Metadata(m: NirMetadata) : obj =
        m
        |> Map.toList
        |> List.map (fun (name, v) ->
            let item: obj =
                match v with
                | NirValue.Text s -> Hdf5.plain s
                | NirValue.Int i -> Hdf5.plain i
                | NirValue.Float x -> Hdf5.plain x
                | NirValue.Bool x -> Hdf5.plain (if x then Hdf5.NumpyBool.TRUE else Hdf5.NumpyBool.FALSE)
                | NirValue.Array t -> b.Array t
                | NirValue.IntArray(a, shape) -> Hdf5.dataset a shape level
                | NirValue.BoolArray(a, shape) ->
                    let e =
                        a
                        |> Array.map (fun x -> if x then Hdf5.NumpyBool.TRUE else Hdf5.NumpyBool.FALSE)

                    Hdf5.dataset e shape level
                | NirValue.TextArray(a, shape) -> Hdf5.dataset a shape None
                | NirValue.Group g -> b.Metadata g

            name, item)
        |> group
        |> box

    member b.Node (path: string) (n: NirNode) : H5Group =
        let fields: (string * obj) list =
            let neuron (pairs: (string * Tensor) list) =
                pairs |> List.map (fun (k, t) -> k, b.Array t)

            match n with
            | NirNode.Input p
            | NirNode.Output p -> [ "shape", b.IntArray p.Shape ]
            | NirNode.Affine p -> [ "weight", b.Array p.Weight; "bias", b.Array p.Bias ]
            | NirNode.Linear p -> [ "weight", b.Array p.Weight ]
            | NirNode.Scale p -> [ "scale", b.Array p.Scale ]
            | NirNode.Threshold p -> [ "threshold", b.Array p.Threshold ]
            | NirNode.Delay p -> [ "delay", b.Array p.Delay ]
            | NirNode.Flatten p ->
                [
                    "start_dim", b.Int p.StartDim
                    "end_dim", b.Int p.EndDim
                    // Flatten(input_type=None) reads back as None when the dataset is absent.
                    match p.InputType with
                    | Some shape -> "input_type", b.IntArray shape
                    | None -> ()
                ]
            | NirNode.Conv1d c
            | NirNode.Conv2d c ->
                let spatial (field: string) (v: int[]) =
                    match n with
                    | NirNode.Conv1d _ -> field, b.Int v[0] // Conv1d's ints are Python ints
                    | _ -> field, b.Tuple v // Conv2d.__post_init__ makes tuples

                let inputShape =
                    match c.InputShape with
                    | Some s -> s
                    | None ->
                        raise (
                            invalid
                                path
                                $"%s{n.TypeName} has no input_shape, which the reference reader requires; fill it in from the input's shape"
                        )

                [
                    spatial "input_shape" inputShape
                    "weight", b.Array c.Weight
                    spatial "stride" c.Stride
                    match c.Padding with
                    | NirPadding.Explicit p -> spatial "padding" p
                    | NirPadding.Same -> "padding", Hdf5.plain "same"
                    | NirPadding.Valid -> "padding", Hdf5.plain "valid"
                    spatial "dilation" c.Dilation
                    "groups", b.Int c.Groups
                    "bias", b.Array c.Bias
                ]
            | NirNode.SumPool2d p
            | NirNode.AvgPool2d p ->
                [
                    "kernel_size", b.IntArray p.KernelSize
                    "stride", b.IntArray p.Stride
                    "padding", b.IntArray p.Padding
                ]
            | NirNode.I p -> neuron [ "r", p.R ]
            | NirNode.IF p -> neuron [ "r", p.R; "v_threshold", p.VThreshold; "v_reset", p.VReset ]
            | NirNode.LI p -> neuron [ "tau", p.Tau; "r", p.R; "v_leak", p.VLeak ]
            | NirNode.LIF p ->
                neuron
                    [
                        "tau", p.Tau
                        "r", p.R
                        "v_leak", p.VLeak
                        "v_threshold", p.VThreshold
                        "v_reset", p.VReset
                    ]
            | NirNode.CubaLI p ->
                neuron
                    [
                        "tau_syn", p.TauSyn
                        "tau_mem", p.TauMem
                        "r", p.R
                        "v_leak", p.VLeak
                        "w_in", p.WIn
                    ]
            | NirNode.CubaLIF p ->
                neuron
                    [
                        "tau_syn", p.TauSyn
                        "tau_mem", p.TauMem
                        "r", p.R
                        "v_leak", p.VLeak
                        "v_threshold", p.VThreshold
                        "v_reset", p.VReset
                        "w_in", p.WIn
                    ]
            | NirNode.Graph g -> b.GraphFields path g

        let metadata =
            match n with
            | NirNode.Graph _ -> [] // in GraphFields
            | _ when n.Metadata.IsEmpty -> []
            | _ -> [ "metadata", b.Metadata n.Metadata ]

        group ([ "type", Hdf5.plain n.TypeName ] @ metadata @ fields)

    member b.GraphFields (path: string) (g: NirGraph) : (string * obj) list =
        let nodes =
            g.Nodes
            |> Map.toList
            |> List.map (fun (name, n) -> name, box (b.Node (path + "/nodes/" + name) n))
            |> group

        let edges: obj =
            match g.Edges with
            // numpy's array of an empty list: what nir.write stores, and nir.read accepts.
            | [] -> Hdf5.dataset Array.empty<float> [| 0 |] None
            | edges -> Hdf5.plain (array2D [ for s, t in edges -> [ s; t ] ])

        [
            "nodes", box nodes
            "edges", edges
            if not g.Metadata.IsEmpty then
                "metadata", b.Metadata g.Metadata
        ]

/// The HDF5 tree of a document, checked and normalised first (ArgumentException naming the node
/// and field). `level`: deflate level of numpy-array fields, None for contiguous storage.
let build (level: int option) (doc: NirDocument) : H5File =
    if isNull (box doc) || isNull (box doc.Graph) then
        nullArg "doc"

    let graph = NirCheck.graph invalid "/node" doc.Graph
    let b = Builder(level)
    let root = b.Node "/node" (NirNode.Graph graph)
    let file = H5File()
    file["node"] <- root

    match doc.Version with
    | Some v when not (isNull v) -> file["version"] <- Hdf5.plain v
    | _ -> ()

    file
