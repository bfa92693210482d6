/// Reading NIRData files (`nir.write_data`, NIR PR #175, 2026-01): recorded observables of a NIR
/// graph's nodes, as time-gridded arrays or event lists.
///
/// Layout: root attribute `__type__ = "NIRGraphData"`, groups `nodes/<name>/` whose `__type__` is
/// NIRNodeData (with a group `observables/<name>/`) or NIRGraphData (nested), and observables whose
/// `__type__` is TimeGriddedData (dataset `data` [samples; steps; neurons], attribute `dt`),
/// EventData (datasets `idx` int64, -1 = no event, and `time` f64, inf = no event, both
/// [samples; events]; attributes `n_neurons`, `t_max`) or ValuedEventData (plus `value`). Units are
/// whatever the writer used: the NIR docs leave them open (jaxsnn writes seconds and 2 t_max for
/// "no event").
namespace SnnFunc

open System
open System.IO
open PureHDF

/// Values on a time grid: Data is [samples; steps; neurons]. numpy bool data (spikes) is read as
/// Float32 0/1, SnnFunc's mask convention, with IsBool set; other data keeps its float dtype.
type NirTimeGridded =
    {
        Data: Tensor
        Dt: float
        IsBool: bool
    }

/// Events per sample: Idx (Int32, -1 in empty slots) and Time (Float64), both [samples; events].
type NirEvents =
    {
        Idx: Tensor
        Time: Tensor
        NNeurons: int
        TMax: float
    }

/// Events with a value each ([samples; events], float dtype as stored).
type NirValuedEvents =
    {
        Idx: Tensor
        Time: Tensor
        Value: Tensor
        NNeurons: int
        TMax: float
    }

/// One recorded observable.
[<RequireQualifiedAccess>]
type NirObservable =
    | TimeGridded of NirTimeGridded
    | Events of NirEvents
    | ValuedEvents of NirValuedEvents

/// The recordings of one node: its observables by name, or those of a nested graph's nodes.
[<RequireQualifiedAccess>]
type NirNodeData =
    | Node of Map<string, NirObservable>
    | Graph of NirGraphData

/// The recordings of a graph, by node name.
and NirGraphData = { Nodes: Map<string, NirNodeData> }

/// NIRData files.
[<RequireQualifiedAccess>]
module NirData =

    let private bad (file: string) (path: string) (msg: string) =
        InvalidDataException($"NirData.read: '%s{file}': %s{path}: %s{msg}") :> exn

    let private attribute (file: string) (path: string) (o: IH5Object) (name: string) =
        if not (o.AttributeExists name) then
            raise (bad file path $"the attribute '%s{name}' is missing")

        Hdf5.readAttribute (fun msg -> bad file path $"the attribute '%s{name}' %s{msg}") (o.Attribute name)

    let private typeOf (file: string) (path: string) (o: IH5Object) =
        match (attribute file path o "__type__").Elements with
        | Hdf5.Texts [| t |] -> t
        | _ -> raise (bad file path "the attribute '__type__' must be one string")

    let private float' (file: string) (path: string) (o: IH5Object) (name: string) =
        match (attribute file path o name).Elements with
        | Hdf5.F64 [| x |] -> x
        | Hdf5.F32 [| x |] -> float x
        | Hdf5.Ints [| x |] -> float x
        | _ -> raise (bad file path $"the attribute '%s{name}' must be one number")

    let private int' (file: string) (path: string) (o: IH5Object) (name: string) =
        match (attribute file path o name).Elements with
        | Hdf5.Ints [| x |] when x >= 0L && x <= int64 Int32.MaxValue -> int x
        | _ -> raise (bad file path $"the attribute '%s{name}' must be one non-negative int32")

    let private dataset (file: string) (path: string) (g: IH5Group) (name: string) =
        if not (g.LinkExists name) then
            raise (bad file path $"the dataset '%s{name}' is missing")

        Hdf5.readDataset (fun msg -> bad file (path + "/" + name) $"the dataset %s{msg}") (g.Dataset name)

    /// A float array in its dtype; bool becomes Float32 0/1 (second result true).
    let private floats (file: string) (path: string) (v: Hdf5.Value) =
        match v.Elements with
        | Hdf5.F32 a -> Tensor.FromStorage(v.Shape, Storage.F32 a), false
        | Hdf5.F64 a -> Tensor.FromStorage(v.Shape, Storage.F64 a), false
        | Hdf5.Bools a -> Tensor.FromStorage(v.Shape, Storage.F32(a |> Array.map (fun b -> if b then 1.0f else 0.0f))), true
        | Hdf5.Ints a -> Tensor.FromStorage(v.Shape, Storage.F64(Array.map float a)), false
        | other -> raise (bad file path $"must be numeric, got %s{other.Kind} data")

    let private indices (file: string) (path: string) (v: Hdf5.Value) =
        match v.Elements with
        | Hdf5.Ints a ->
            let ints =
                a
                |> Array.map (fun x ->
                    if x < -1L || x > int64 Int32.MaxValue then
                        raise (bad file path $"neuron index %d{x} is out of range")

                    int x)

            Tensor.FromStorage(v.Shape, Storage.I32 ints)
        | other -> raise (bad file path $"must hold integer neuron indices, got %s{other.Kind} data")

    let private observable (file: string) (path: string) (g: IH5Group) : NirObservable =
        let sameShape (names: string list) (values: Hdf5.Value list) =
            match values with
            | first :: rest when rest |> List.exists (fun v -> v.Shape <> first.Shape) ->
                let shapes =
                    List.map2 (fun n (v: Hdf5.Value) -> $"%s{n} %s{Shape.format v.Shape}") names values

                let listed = String.Join(", ", shapes)
                raise (bad file path $"event arrays must share one shape, got %s{listed}")
            | _ -> ()

        match typeOf file path g with
        | "TimeGriddedData" ->
            let data, isBool = floats file (path + "/data") (dataset file path g "data")

            NirObservable.TimeGridded
                {
                    Data = data
                    Dt = float' file path g "dt"
                    IsBool = isBool
                }
        | "EventData" ->
            let idx, time = dataset file path g "idx", dataset file path g "time"
            sameShape [ "idx"; "time" ] [ idx; time ]

            NirObservable.Events
                {
                    Idx = indices file (path + "/idx") idx
                    Time = fst (floats file (path + "/time") time)
                    NNeurons = int' file path g "n_neurons"
                    TMax = float' file path g "t_max"
                }
        | "ValuedEventData" ->
            let idx, time, value =
                dataset file path g "idx", dataset file path g "time", dataset file path g "value"

            sameShape [ "idx"; "time"; "value" ] [ idx; time; value ]

            NirObservable.ValuedEvents
                {
                    Idx = indices file (path + "/idx") idx
                    Time = fst (floats file (path + "/time") time)
                    Value = fst (floats file (path + "/value") value)
                    NNeurons = int' file path g "n_neurons"
                    TMax = float' file path g "t_max"
                }
        | other -> raise (bad file path $"unknown observable type '%s{other}' (TimeGriddedData, EventData, ValuedEventData)")

    let private subgroups (g: IH5Group) =
        Hdf5.children g
        |> List.choose (fun (n, c) ->
            match c with
            | Choice2Of2 sub -> Some(n, sub)
            | _ -> None)

    let rec private graphData (file: string) (path: string) (g: IH5Group) : NirGraphData =
        let nodes =
            if g.LinkExists "nodes" then
                subgroups (g.Group "nodes")
            else
                []

        {
            Nodes =
                nodes
                |> List.map (fun (name, ng) ->
                    let p = path + "/nodes/" + name

                    match typeOf file p ng with
                    | "NIRNodeData" ->
                        let obs =
                            if ng.LinkExists "observables" then
                                subgroups (ng.Group "observables")
                            else
                                []

                        name,
                        NirNodeData.Node(
                            obs
                            |> List.map (fun (o, og) -> o, observable file (p + "/observables/" + o) og)
                            |> Map.ofList
                        )
                    | "NIRGraphData" -> name, NirNodeData.Graph(graphData file p ng)
                    | other -> raise (bad file p $"unknown node data type '%s{other}' (NIRNodeData, NIRGraphData)"))
                |> Map.ofList
        }

    /// Reads a NIRData file.
    let read (path: string) : NirGraphData =
        if String.IsNullOrWhiteSpace path then
            invalidArg "path" "NirData.read: the file path is empty"

        if not (File.Exists path) then
            raise (FileNotFoundException($"NirData.read: the file '%s{path}' does not exist", path))

        use file =
            try
                H5File.OpenRead path
            with e ->
                raise (InvalidDataException($"NirData.read: '%s{path}': not an HDF5 file (%s{e.Message})", e))

        match typeOf path "/" file with
        | "NIRGraphData" -> graphData path "" file
        | other -> raise (bad path "/" $"the root '__type__' is '%s{other}', not NIRGraphData")
