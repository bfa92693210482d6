/// NirFile and NirData against the files the reference implementation wrote: every dataset's value
/// as h5py read it (VALUES.json), the manifest's asserts, read-write-read identity, the written
/// layout (walked with PureHDF), and errors from small hand-made files.
module SnnFunc.Tests.NirFileTests

open System
open System.IO
open System.Text.Json
open Xunit
open FsCheck.FSharp
open PureHDF
open SnnFunc
open SnnFunc.Tests.TestUtil

let fixture (name: string) =
    Path.Combine(AppContext.BaseDirectory, "fixtures", "nir", name)

let private referenceFiles =
    [
        "conv1d_li.nir"
        "conv2d_pool.nir"
        "ff_cubalif.nir"
        "ff_cubalif_v107.nir"
        "mixed_nodes.nir"
        "recurrent_cubalif.nir"
        "recurrent_subgraph.nir"
    ]

/// The readable legacy files (the malformed one is tested on its own).
let private legacyFiles =
    [
        "legacy/braille_noDelay_bias_zero.nir"
        "legacy/cnn_sinabs.nir"
        "legacy/lif_norse.nir"
        "legacy/lif_rockpool.nir"
    ]

let allFiles () : obj[] seq =
    referenceFiles @ legacyFiles |> Seq.map (fun f -> [| box f |])

/// A stream that can only be read forward, as from a network or a pipe.
type private ForwardOnly(bytes: byte[]) =
    inherit Stream()
    let inner = new MemoryStream(bytes)
    override _.CanRead = true
    override _.CanSeek = false
    override _.CanWrite = false
    override _.Length = raise (NotSupportedException())

    override _.Position
        with get () = raise (NotSupportedException())
        and set _ = raise (NotSupportedException())

    override _.Flush() = ()
    override _.Read(buffer, offset, count) = inner.Read(buffer, offset, count)
    override _.Seek(_, _) = raise (NotSupportedException())
    override _.SetLength _ = raise (NotSupportedException())
    override _.Write(_, _, _) = raise (NotSupportedException())

let private temp (suffix: string) =
    Path.Combine(Path.GetTempPath(), "snnfunc-nir-" + Guid.NewGuid().ToString "N" + suffix)

// ---------------------------------------------------------------------------------------------
// Expected values (VALUES.json) and actual datasets, in one comparable form

/// A dataset's elements: floats keep their width so float32 values compare as float32.
type Elems =
    | EF32 of float32[]
    | EF64 of float[]
    | EI64 of int64[]
    | EStr of string[]
    | EBool of bool[]

type Dataset =
    {
        Dtype: string
        Shape: int[]
        Elems: Elems
    }

/// What VALUES.json says about one dataset: full data, or for long legacy arrays a summary.
type Expected =
    {
        Dtype: string
        Shape: int[]
        Storage: string
        Data: JsonElement option
        Summary: JsonElement option
    }

let private valuesCache =
    Collections.Concurrent.ConcurrentDictionary<string, JsonDocument>()

/// VALUES.json entries of one fixture file (legacy files are in legacy/VALUES.json).
let private expectedOf (file: string) : Map<string, Expected> =
    let folder = Path.GetDirectoryName file
    let json = Path.Combine(folder, "VALUES.json")

    let doc =
        valuesCache.GetOrAdd(json, fun p -> JsonDocument.Parse(File.ReadAllText(fixture p)))

    let entries = doc.RootElement.GetProperty(Path.GetFileName file)

    [
        for p in entries.EnumerateObject() do
            if not (p.Name.EndsWith "@attrs") then
                let v = p.Value

                let opt (name: string) =
                    match v.TryGetProperty name with
                    | true, x -> Some x
                    | _ -> None

                p.Name,
                {
                    Dtype = v.GetProperty("hdf5_dtype").GetString()
                    Shape = [| for d in v.GetProperty("shape").EnumerateArray() -> d.GetInt32() |]
                    Storage = v.GetProperty("storage").GetString()
                    Data = opt "data"
                    Summary = opt "data_summary"
                }
    ]
    |> Map.ofList

let private jsonFloat (e: JsonElement) =
    if e.ValueKind = JsonValueKind.String then
        match e.GetString() with
        | "inf" -> Double.PositiveInfinity
        | "-inf" -> Double.NegativeInfinity
        | "nan" -> Double.NaN
        | s -> failwithf "unexpected float text %s" s
    else
        e.GetDouble()

let private jsonList (e: JsonElement) =
    if e.ValueKind = JsonValueKind.Array then
        [ for x in e.EnumerateArray() -> x ]
    else
        [ e ] // a scalar string is stored bare

let private sameF32 (e: float) (a: float32) =
    let e32 = float32 e
    e32 = a || (Single.IsNaN e32 && Single.IsNaN a)

let private sameF64 (e: float) (a: float) =
    e = a || (Double.IsNaN e && Double.IsNaN a)

let private asFloats (elems: Elems) =
    match elems with
    | EF32 a -> Array.map float a
    | EF64 a -> a
    | EI64 a -> Array.map float a
    | _ -> [||]

/// Compares one dataset with its VALUES.json entry, element by element.
let private checkDataset (where: string) (exp: Expected) (act: Dataset) =
    let fail msg = failwithf "%s: %s" where msg

    if exp.Dtype <> act.Dtype then
        fail $"dtype %s{act.Dtype}, expected %s{exp.Dtype}"

    if exp.Shape <> act.Shape then
        fail $"shape %A{act.Shape}, expected %A{exp.Shape}"

    match exp.Data, exp.Summary with
    | Some data, _ ->
        let items = jsonList data

        let n =
            match act.Elems with
            | EF32 a -> a.Length
            | EF64 a -> a.Length
            | EI64 a -> a.Length
            | EStr a -> a.Length
            | EBool a -> a.Length

        if n <> items.Length then
            fail $"%d{n} elements, expected %d{items.Length}"

        items
        |> List.iteri (fun i e ->
            let ok =
                match act.Elems with
                | EF32 a -> sameF32 (jsonFloat e) a[i]
                | EF64 a -> sameF64 (jsonFloat e) a[i]
                | EI64 a -> e.GetInt64() = a[i]
                | EStr a -> e.GetString() = a[i]
                | EBool a -> e.GetBoolean() = a[i]

            if not ok then
                fail $"element %d{i} is %A{act.Elems}, expected %s{e.GetRawText()}")
    | None, Some summary ->
        let values = asFloats act.Elems

        let first =
            [ for x in summary.GetProperty("first").EnumerateArray() -> jsonFloat x ]

        let n = summary.GetProperty("n").GetInt32()

        if values.Length <> n then
            fail $"%d{values.Length} elements, expected %d{n}"

        first
        |> List.iteri (fun i e ->
            if not (sameF64 e values[i]) then
                fail $"element %d{i} is %g{values[i]}, expected %g{e}")

        if not (sameF64 (jsonFloat (summary.GetProperty "last")) values[values.Length - 1]) then
            fail "the last element differs"

        let sum = jsonFloat (summary.GetProperty "sum")

        if abs (Array.sum values - sum) > 1e-9 * max 1.0 (abs sum) then
            fail $"sum %.17g{Array.sum values}, expected %.17g{sum}"
    | None, None -> fail "VALUES.json has neither data nor data_summary"

// ---------------------------------------------------------------------------------------------
// The model seen as the datasets the reference writer would store (written here independently
// of NirFile's writer, from the field table in the reference README)

let private str (s: string) =
    {
        Dtype = "vlen-str(utf-8)"
        Shape = [||]
        Elems = EStr [| s |]
    }

let private tensorDs (t: Tensor) =
    match t.Storage with
    | Storage.F32 a ->
        {
            Dtype = "f32"
            Shape = t.Shape
            Elems = EF32 a
        }
    | Storage.F64 a ->
        {
            Dtype = "f64"
            Shape = t.Shape
            Elems = EF64 a
        }
    | Storage.I32 _ -> failwith "an Int32 parameter tensor"

let private intsDs (v: int[]) =
    {
        Dtype = "i64"
        Shape = [| v.Length |]
        Elems = EI64(Array.map int64 v)
    }

let private intDs (v: int) =
    {
        Dtype = "i64"
        Shape = [||]
        Elems = EI64 [| int64 v |]
    }

let rec private metadataDs (prefix: string) (m: NirMetadata) : (string * Dataset) list =
    [
        for KeyValue(k, v) in m do
            let p = prefix + "/" + k

            match v with
            | NirValue.Text s -> p, str s
            | NirValue.Int i ->
                p,
                {
                    Dtype = "i64"
                    Shape = [||]
                    Elems = EI64 [| i |]
                }
            | NirValue.Float x ->
                p,
                {
                    Dtype = "f64"
                    Shape = [||]
                    Elems = EF64 [| x |]
                }
            | NirValue.Bool b ->
                p,
                {
                    Dtype = "bool"
                    Shape = [||]
                    Elems = EBool [| b |]
                }
            | NirValue.Array t -> p, tensorDs t
            | NirValue.IntArray(a, s) ->
                p,
                {
                    Dtype = "i64"
                    Shape = s
                    Elems = EI64 a
                }
            | NirValue.BoolArray(a, s) ->
                p,
                {
                    Dtype = "bool"
                    Shape = s
                    Elems = EBool a
                }
            | NirValue.TextArray(a, s) ->
                p,
                {
                    Dtype = "vlen-str(utf-8)"
                    Shape = s
                    Elems = EStr a
                }
            | NirValue.Group g -> yield! metadataDs p g
    ]

let rec private nodeDs (p: string) (n: NirNode) : (string * Dataset) list =
    let f name ds = p + "/" + name, ds

    let fields =
        match n with
        | NirNode.Input x
        | NirNode.Output x -> [ f "shape" (intsDs x.Shape) ]
        | NirNode.Affine x -> [ f "weight" (tensorDs x.Weight); f "bias" (tensorDs x.Bias) ]
        | NirNode.Linear x -> [ f "weight" (tensorDs x.Weight) ]
        | NirNode.Scale x -> [ f "scale" (tensorDs x.Scale) ]
        | NirNode.Threshold x -> [ f "threshold" (tensorDs x.Threshold) ]
        | NirNode.Delay x -> [ f "delay" (tensorDs x.Delay) ]
        | NirNode.Flatten x ->
            [
                f "start_dim" (intDs x.StartDim)
                f "end_dim" (intDs x.EndDim)
                match x.InputType with
                | Some s -> f "input_type" (intsDs s)
                | None -> ()
            ]
        | NirNode.Conv1d c
        | NirNode.Conv2d c ->
            let sp name (v: int[]) =
                match n with
                | NirNode.Conv1d _ -> f name (intDs v[0])
                | _ -> f name (intsDs v)

            [
                f "weight" (tensorDs c.Weight)
                f "bias" (tensorDs c.Bias)
                f "groups" (intDs c.Groups)
                sp "stride" c.Stride
                sp "dilation" c.Dilation
                match c.InputShape with
                | Some s -> sp "input_shape" s
                | None -> ()
                match c.Padding with
                | NirPadding.Explicit v -> sp "padding" v
                | NirPadding.Same -> f "padding" (str "same")
                | NirPadding.Valid -> f "padding" (str "valid")
            ]
        | NirNode.SumPool2d x
        | NirNode.AvgPool2d x ->
            [
                f "kernel_size" (intsDs x.KernelSize)
                f "stride" (intsDs x.Stride)
                f "padding" (intsDs x.Padding)
            ]
        | NirNode.I x -> [ f "r" (tensorDs x.R) ]
        | NirNode.IF x ->
            [
                f "r" (tensorDs x.R)
                f "v_threshold" (tensorDs x.VThreshold)
                f "v_reset" (tensorDs x.VReset)
            ]
        | NirNode.LI x ->
            [
                f "tau" (tensorDs x.Tau)
                f "r" (tensorDs x.R)
                f "v_leak" (tensorDs x.VLeak)
            ]
        | NirNode.LIF x ->
            [
                f "tau" (tensorDs x.Tau)
                f "r" (tensorDs x.R)
                f "v_leak" (tensorDs x.VLeak)
                f "v_threshold" (tensorDs x.VThreshold)
                f "v_reset" (tensorDs x.VReset)
            ]
        | NirNode.CubaLI x ->
            [
                f "tau_syn" (tensorDs x.TauSyn)
                f "tau_mem" (tensorDs x.TauMem)
                f "r" (tensorDs x.R)
                f "v_leak" (tensorDs x.VLeak)
                f "w_in" (tensorDs x.WIn)
            ]
        | NirNode.CubaLIF x ->
            [
                f "tau_syn" (tensorDs x.TauSyn)
                f "tau_mem" (tensorDs x.TauMem)
                f "r" (tensorDs x.R)
                f "v_leak" (tensorDs x.VLeak)
                f "v_threshold" (tensorDs x.VThreshold)
                f "v_reset" (tensorDs x.VReset)
                f "w_in" (tensorDs x.WIn)
            ]
        | NirNode.Graph g -> graphDs p g

    let meta =
        match n with
        | NirNode.Graph _ -> []
        | _ -> metadataDs (p + "/metadata") n.Metadata

    (p + "/type", str n.TypeName) :: meta @ fields

and private graphDs (p: string) (g: NirGraph) =
    [
        p + "/edges",
        {
            Dtype = "vlen-str(utf-8)"
            Shape = [| g.Edges.Length; 2 |]
            Elems =
                EStr
                    [|
                        for s, t in g.Edges do
                            yield s
                            yield t
                    |]
        }
        yield! metadataDs (p + "/metadata") g.Metadata
        for KeyValue(name, n) in g.Nodes do
            yield! nodeDs (p + "/nodes/" + name) n
    ]

/// Every dataset the document stands for, by HDF5 path.
let private datasetsOf (doc: NirDocument) : Map<string, Dataset> =
    [
        match doc.Version with
        | Some v -> "/version", str v
        | None -> ()
        yield! nodeDs "/node" (NirNode.Graph doc.Graph)
    ]
    |> Map.ofList

/// Structural equality of two documents, float values compared bit for bit.
let assertSameDoc (what: string) (a: NirDocument) (b: NirDocument) =
    Assert.True((a.Version = b.Version), $"%s{what}: version %A{a.Version} vs %A{b.Version}")
    let da, db = datasetsOf a, datasetsOf b
    Assert.Equal<string list>(List.ofSeq da.Keys, List.ofSeq db.Keys)

    for KeyValue(k, x) in da do
        let y = db[k]
        let bits32 = Array.map BitConverter.SingleToInt32Bits
        let bits64 = Array.map BitConverter.DoubleToInt64Bits

        let same =
            x.Dtype = y.Dtype
            && x.Shape = y.Shape
            && match x.Elems, y.Elems with
               | EF32 p, EF32 q -> bits32 p = bits32 q
               | EF64 p, EF64 q -> bits64 p = bits64 q
               | p, q -> p = q

        Assert.True(same, $"%s{what}: %s{k} differs: %A{x} vs %A{y}")

/// Compares a document (or a file walked with PureHDF) with VALUES.json and returns the datasets
/// that are only in `actual`.
let private checkAgainstValues (file: string) (actual: Map<string, Dataset>) =
    let expected = expectedOf file

    for KeyValue(path, exp) in expected do
        match actual.TryFind path with
        | Some act -> checkDataset $"%s{file}:%s{path}" exp act
        | None -> failwithf "%s: %s is in VALUES.json but not in the model" file path

    Set.ofSeq actual.Keys - Set.ofSeq expected.Keys

/// The defaults NirFile fills in for files older than the fields (v_reset since 2025-05).
let private isDefaultField (path: string) =
    path.EndsWith "/v_reset" || path.EndsWith "/w_in"

// ---------------------------------------------------------------------------------------------
// Walking a written file with PureHDF

type private Walked =
    {
        Datasets: Map<string, Dataset * IH5Dataset>
        Groups: string list
        Attributes: string list
    }

let private walk (path: string) (f: IH5Group) : Walked =
    let datasets = Collections.Generic.Dictionary<string, Dataset * IH5Dataset>()
    let groups = ResizeArray<string>()
    let attrs = ResizeArray<string>()

    let rec visit (prefix: string) (g: IH5Group) =
        if Seq.length (g.Attributes()) > 0 then
            attrs.Add(prefix + "/")

        for c in g.Children() do
            let p = prefix + "/" + c.Name

            if Seq.length (c.Attributes()) > 0 then
                attrs.Add p

            match c with
            | :? IH5Group as sub ->
                groups.Add p
                visit p sub
            | :? IH5Dataset as d ->
                let shape =
                    if d.Space.Type = H5DataspaceType.Scalar then
                        [||]
                    else
                        d.Space.Dimensions |> Array.map int

                let ds =
                    match d.Type.Class, d.Type.Size with
                    | H5DataTypeClass.FloatingPoint, 4 ->
                        {
                            Dtype = "f32"
                            Shape = shape
                            Elems = EF32(d.Read<float32[]>())
                        }
                    | H5DataTypeClass.FloatingPoint, 8 ->
                        {
                            Dtype = "f64"
                            Shape = shape
                            Elems = EF64(d.Read<float[]>())
                        }
                    | H5DataTypeClass.FixedPoint, 8 when d.Type.FixedPoint.IsSigned ->
                        {
                            Dtype = "i64"
                            Shape = shape
                            Elems = EI64(d.Read<int64[]>())
                        }
                    | H5DataTypeClass.Enumerated, 1 ->
                        {
                            Dtype = "bool"
                            Shape = shape
                            Elems = EBool(d.Read<bool[]>())
                        }
                    | H5DataTypeClass.VariableLength, _ ->
                        {
                            Dtype = "vlen-str(utf-8)"
                            Shape = shape
                            Elems = EStr(d.Read<string[]>())
                        }
                    | cls, size -> failwithf "%s: %s has type %A/%d, which NirFile should not write" path p cls size

                datasets[p] <- (ds, d)
            | _ -> failwithf "%s: %s is neither a group nor a dataset" path p

    visit "" f

    {
        Datasets = datasets |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq
        Groups = List.ofSeq groups
        Attributes = List.ofSeq attrs
    }

/// The fields the reference stores as Python ints/tuples/strings (never chunked): every other
/// non-empty, non-scalar dataset is a numpy array (one gzip chunk in the current writer). Conv's
/// stride/padding/dilation are tuples, the pools' are numpy arrays.
let private plainFields =
    set [ "type"; "edges"; "groups"; "input_shape"; "start_dim"; "end_dim"; "version" ]

let private isNumpyArray (nodeType: string) (path: string) (ds: Dataset) =
    let name = path.Substring(path.LastIndexOf '/' + 1)
    let conv = nodeType.StartsWith "Conv"

    not (plainFields.Contains name)
    && not (conv && List.contains name [ "stride"; "padding"; "dilation" ])
    && not (path.Contains "/metadata/")
    && ds.Shape.Length > 0
    && Array.forall (fun d -> d > 0) ds.Shape

// ---------------------------------------------------------------------------------------------
// Reading: every file, every value

[<Theory>]
[<MemberData(nameof allFiles)>]
let ``every dataset of every reference and legacy file reads as VALUES.json says`` (file: string) =
    let doc = NirFile.read (fixture file)
    let extras = checkAgainstValues file (datasetsOf doc)

    // The only datasets the model adds are the v_reset defaults of files older than the field.
    if file.StartsWith "legacy/" then
        Assert.All(extras, fun p -> Assert.True(isDefaultField p, $"%s{file}: unexpected %s{p}"))
    else
        Assert.Empty extras

[<Fact>]
let ``ff_cubalif.nir and its nir 1.0.7 twin (uncompressed) give identical models`` () =
    let head = NirFile.read (fixture "ff_cubalif.nir")
    let v107 = NirFile.read (fixture "ff_cubalif_v107.nir")
    Assert.Equal(Some "1.0.8.dev9+g7232ada", head.Version)
    Assert.Equal(Some "1.0.7", v107.Version)
    assertSameDoc "ff_cubalif vs v107" { head with Version = None } { v107 with Version = None }

let private node (doc: NirDocument) (name: string) = doc.Graph.Nodes[name]

let private f32At (t: Tensor) (i: int) = t.ToArray()[i]

[<Fact>]
let ``ff_cubalif.nir: the manifest's values, edge order and metadata`` () =
    let doc = NirFile.read (fixture "ff_cubalif.nir")

    match node doc "fc1", node doc "lif1", node doc "fc2", node doc "li_out", node doc "input" with
    | NirNode.Affine fc1, NirNode.CubaLIF lif1, NirNode.Affine fc2, NirNode.CubaLI li, NirNode.Input input ->
        Assert.Equal(Float32, fc1.Weight.DType)
        Assert.Equal<int[]>([| 7; 5 |], fc1.Weight.Shape)
        Assert.Equal(-0.3f, f32At fc1.Weight 0)
        Assert.Equal(0.3f, f32At fc1.Weight (6 * 5 + 4))
        Assert.Equal(14.5f, f32At lif1.TauMem 3)
        Assert.Equal(-0.5f, f32At lif1.VReset 0)
        Assert.Equal<float32[]>([| 3.0f; 4.0f; 5.0f |], li.TauSyn.ToArray())
        Assert.Equal(0.0625f, f32At fc2.Bias 2)
        Assert.Equal<int[]>([| 5 |], input.Shape)
        Assert.Equal(NirValue.Int 7L, lif1.Metadata["n"])
        Assert.Equal(NirValue.Text "none", lif1.Metadata["discretization"])
    | _ -> failwith "unexpected node types"

    Assert.Equal(NirValue.Text "ref", doc.Graph.Metadata["set"])
    Assert.Equal(NirValue.Int 1L, doc.Graph.Metadata["version_tag"])

    Assert.Equal<(string * string) list>(
        [
            "input", "fc1"
            "fc1", "lif1"
            "lif1", "fc2"
            "fc2", "li_out"
            "li_out", "output"
        ],
        doc.Graph.Edges
    )

[<Fact>]
let ``recurrent_cubalif.nir: the recurrence lif <-> w_rec is kept as two edges, float64 kept`` () =
    let doc = NirFile.read (fixture "recurrent_cubalif.nir")

    Assert.Equal<(string * string) list>(
        [
            "input", "w_in"
            "w_in", "lif"
            "lif", "w_rec"
            "w_rec", "lif"
            "lif", "output"
        ],
        doc.Graph.Edges
    )

    match node doc "w_rec", node doc "lif" with
    | NirNode.Linear w, NirNode.CubaLIF lif ->
        Assert.Equal(Float64, w.Weight.DType)
        let v = w.Weight.ToDoubleArray()
        Assert.Equal(-0.65, v[0])
        Assert.Equal(0.0, v[1])
        Assert.Equal(30.0, lif.TauMem.ToDoubleArray()[5])
    | _ -> failwith "unexpected node types"

[<Fact>]
let ``recurrent_subgraph.nir: a nested graph with its own scoped names and edges`` () =
    let doc = NirFile.read (fixture "recurrent_subgraph.nir")

    match node doc "rsyn", node doc "li", node doc "input" with
    | NirNode.Graph sub, NirNode.LI li, NirNode.Input outer ->
        Assert.Equal<string list>([ "input"; "lif"; "output"; "w_rec" ], List.ofSeq sub.Nodes.Keys)
        Assert.Equal<(string * string) list>([ "input", "lif"; "lif", "w_rec"; "w_rec", "lif"; "lif", "output" ], sub.Edges)

        match sub.Nodes["lif"], sub.Nodes["w_rec"], sub.Nodes["input"] with
        | NirNode.CubaLIF lif, NirNode.Linear w, NirNode.Input inner ->
            Assert.Equal(6.5f, f32At lif.TauSyn 5)
            Assert.Equal(0.1f, f32At w.Weight 1)
            // The names collide on purpose: "input" means [4] outside and [6] inside.
            Assert.Equal<int[]>([| 4 |], outer.Shape)
            Assert.Equal<int[]>([| 6 |], inner.Shape)
        | _ -> failwith "unexpected subgraph node types"

        Assert.Equal<float32[]>([| 10.0f; 15.0f |], li.Tau.ToArray())
    | _ -> failwith "unexpected node types"

[<Fact>]
let ``mixed_nodes.nir: every simple primitive, mixed dtypes, fan-out and fan-in`` () =
    let doc = NirFile.read (fixture "mixed_nodes.nir")
    let types = doc.Graph.Nodes |> Map.map (fun _ n -> n.TypeName)

    Assert.Equal<Map<string, string>>(
        Map
            [
                "delay", "Delay"
                "if", "IF"
                "input", "Input"
                "integrator", "I"
                "lif", "LIF"
                "linear", "Linear"
                "linear_out", "Linear"
                "output", "Output"
                "scale", "Scale"
                "threshold", "Threshold"
            ],
        types
    )

    match node doc "lif", node doc "scale", node doc "if", node doc "delay" with
    | NirNode.LIF lif, NirNode.Scale s, NirNode.IF i, NirNode.Delay d ->
        Assert.Equal(Float64, lif.Tau.DType)
        Assert.Equal(Float32, s.Scale.DType)
        Assert.Equal<float[]>([| 0.0; 0.1; 0.2; 0.3; 0.4 |], i.VReset.ToDoubleArray())
        Assert.Equal<float[]>([| 1.0; 2.0; 0.5; 3.0; 1.5 |], d.Delay.ToDoubleArray())
        Assert.Equal(NirValue.Text "fan-out to delay and scale", lif.Metadata["comment"])
    | _ -> failwith "unexpected node types"

    let into = doc.Graph.Edges |> List.filter (fun (_, t) -> t = "if")
    Assert.Equal<(string * string) list>([ "delay", "if"; "scale", "if" ], into)

[<Fact>]
let ``conv2d_pool.nir: pair and "same" padding, pools, NirNode.Flatten dims, 3-D neuron parameters`` () =
    let doc = NirFile.read (fixture "conv2d_pool.nir")

    match node doc "conv1", node doc "conv2", node doc "pool1", node doc "flatten", node doc "if1" with
    | NirNode.Conv2d c1, NirNode.Conv2d c2, NirNode.SumPool2d p, NirNode.Flatten fl, NirNode.IF if1 ->
        Assert.Equal(NirPadding.Explicit [| 1; 1 |], c1.Padding)
        Assert.Equal<int[]>([| 1; 1 |], c1.Stride)
        Assert.Equal(Some [| 8; 8 |], c1.InputShape)
        Assert.Equal<int[]>([| 4; 2; 3; 3 |], c1.Weight.Shape)
        Assert.Equal(NirPadding.Same, c2.Padding)
        Assert.Equal(Some [| 4; 4 |], c2.InputShape)
        Assert.Equal<int[]>([| 2; 2 |], p.KernelSize)
        Assert.Equal((Some [| 3; 2; 2 |], 0, -1), (fl.InputType, fl.StartDim, fl.EndDim))
        Assert.Equal<int[]>([| 4; 8; 8 |], if1.VThreshold.Shape)
        // v_threshold[c, :, :] = 1 + 0.25 c
        Assert.Equal(1.75f, f32At if1.VThreshold (3 * 64 + 7 * 8 + 7))
    | _ -> failwith "unexpected node types"

    match node doc "pool2", node doc "lif2" with
    | NirNode.AvgPool2d p, NirNode.LIF lif ->
        Assert.Equal<int[]>([| 2; 2 |], p.Stride)
        Assert.Equal(20.0f, f32At lif.Tau 47)
    | _ -> failwith "unexpected node types"

[<Fact>]
let ``conv1d_li.nir: Conv1d's scalar stride, padding, dilation, groups and input_shape`` () =
    let doc = NirFile.read (fixture "conv1d_li.nir")

    match node doc "conv", node doc "li" with
    | NirNode.Conv1d c, NirNode.LI li ->
        Assert.Equal<int[]>([| 1 |], c.Stride)
        Assert.Equal(NirPadding.Explicit [| 0 |], c.Padding)
        Assert.Equal<int[]>([| 1 |], c.Dilation)
        Assert.Equal(1, c.Groups)
        Assert.Equal(Some [| 10 |], c.InputShape)
        Assert.Equal(-1.0f, f32At c.Weight 0)
        Assert.Equal<int[]>([| 3; 8 |], li.Tau.Shape)
    | _ -> failwith "unexpected node types"

[<Fact>]
let ``legacy files: missing v_reset reads as zeros of the neuron shape and dtype; dotted and numeric names`` () =
    let norse = NirFile.read (fixture "legacy/lif_norse.nir")
    Assert.Equal(Some "0.1.1", norse.Version)

    match norse.Graph.Nodes["1"] with
    | NirNode.LIF lif ->
        Assert.Equal(Float32, lif.VReset.DType)
        Assert.Equal<float32[]>([| 0.0f |], lif.VReset.ToArray())
        Assert.Equal(0.0025f, f32At lif.Tau 0) // seconds, as the NIR paper wrote it (trap T1)
    | n -> failwithf "unexpected %s" n.TypeName

    let braille = NirFile.read (fixture "legacy/braille_noDelay_bias_zero.nir")

    match braille.Graph.Nodes["lif1.lif"], braille.Graph.Nodes["lif1.w_rec"] with
    | NirNode.CubaLIF lif, NirNode.Affine recurrent ->
        Assert.Equal(Float64, lif.VReset.DType)
        Assert.Equal<float[]>(Array.zeroCreate 38, lif.VReset.ToDoubleArray())
        Assert.Equal(Float32, recurrent.Weight.DType)
    | _ -> failwith "unexpected node types"

    Assert.Contains(("lif1.lif", "lif1.w_rec"), braille.Graph.Edges)
    Assert.Contains(("lif1.w_rec", "lif1.lif"), braille.Graph.Edges)

    let sinabs = NirFile.read (fixture "legacy/cnn_sinabs.nir")
    Assert.Equal(15, sinabs.Graph.Nodes.Count)

    match sinabs.Graph.Nodes["1"], sinabs.Graph.Nodes["8"] with
    | NirNode.IF i, NirNode.Flatten f ->
        Assert.Equal<int[]>([| 16; 16; 16 |], i.VReset.Shape)
        Assert.Equal((Some [| 8; 4; 4 |], 0), (f.InputType, f.StartDim))
    | _ -> failwith "unexpected node types"

    // Rockpool's Output [1, 1, 1] after a LIF [1] fails the reference's type check; the file
    // layer reads what the file says and leaves shape agreement to the graph layer.
    let rockpool = NirFile.read (fixture "legacy/lif_rockpool.nir")

    match rockpool.Graph.Nodes["output"] with
    | NirNode.Output o -> Assert.Equal<int[]>([| 1; 1; 1 |], o.Shape)
    | n -> failwithf "unexpected %s" n.TypeName

[<Fact>]
let ``the malformed legacy subgraph fails naming the missing node 'lif' and the subgraph 'lif1'`` () =
    let file = fixture "legacy/braille_noDelay_noBias_subtract_subgraph.nir"
    let e = Assert.Throws<InvalidDataException>(fun () -> NirFile.read file |> ignore)
    Assert.Contains("braille_noDelay_noBias_subtract_subgraph.nir", e.Message)
    Assert.Contains("/node/nodes/lif1:", e.Message)
    Assert.Contains("names the node 'lif'", e.Message)

[<Fact>]
let ``a stream reads like the file, also when it cannot seek`` () =
    let file = fixture "recurrent_subgraph.nir"
    let fromFile = NirFile.read file
    use s = File.OpenRead file
    assertSameDoc "stream" fromFile (NirFile.readStream "recurrent_subgraph.nir" s)
    use forward = new ForwardOnly(File.ReadAllBytes file)
    assertSameDoc "forward-only stream" fromFile (NirFile.readStream "forward-only" forward)

// ---------------------------------------------------------------------------------------------
// Writing: identity and layout

let private gzip4 = NirWriteOptions.Default

let private uncompressed =
    { NirWriteOptions.Default with
        Compression = NirCompression.Uncompressed
    }

let compressions () : obj[] seq =
    seq {
        for f in referenceFiles @ legacyFiles do
            yield [| box f; box true |]
            yield [| box f; box false |]
    }

let private withWritten (options: NirWriteOptions) (doc: NirDocument) (body: string -> unit) =
    let path = temp ".nir"

    try
        NirFile.writeWith options path doc
        body path
    finally
        File.Delete path

[<Theory>]
[<MemberData(nameof compressions)>]
let ``read -> write -> read is the identity, gzip and uncompressed`` (file: string, gzip: bool) =
    let doc = NirFile.read (fixture file)
    withWritten (if gzip then gzip4 else uncompressed) doc (fun path -> assertSameDoc file doc (NirFile.read path))

[<Theory>]
[<MemberData(nameof compressions)>]
let ``the written file has the reference layout: node groups, field datasets, dtypes, shapes, values, storage, no attributes``
    (file: string, gzip: bool)
    =
    let doc = NirFile.read (fixture file)

    withWritten (if gzip then gzip4 else uncompressed) doc (fun path ->
        use h5 = H5File.OpenRead path
        let w = walk path h5
        Assert.Empty w.Attributes

        // Every value as h5py read the original; new datasets only the filled-in defaults.
        let extras = checkAgainstValues file (w.Datasets |> Map.map (fun _ (ds, _) -> ds))
        Assert.All(extras, fun p -> Assert.True(file.StartsWith "legacy/" && isDefaultField p, $"%s{file}: unexpected %s{p}"))

        // Groups: the graph, its `nodes`, one per node and `metadata`, nothing else.
        let expected = expectedOf file

        for g in w.Groups do
            Assert.True(expected.Keys |> Seq.exists (fun k -> k.StartsWith(g + "/")), $"%s{file}: unexpected group %s{g}")

        // Storage: numpy arrays as one gzip chunk (or contiguous), everything else never chunked.
        let typeOf (p: string) =
            match w.Datasets.TryFind(p.Substring(0, p.LastIndexOf '/') + "/type") with
            | Some({ Elems = EStr [| t |] }, _) -> t
            | _ -> ""

        for KeyValue(p, (ds, d)) in w.Datasets do
            let chunked = d.Layout.Class = H5DataLayoutClass.Chunked
            let shouldChunk = gzip && isNumpyArray (typeOf p) p ds
            Assert.True((chunked = shouldChunk), $"%s{file}:%s{p}: layout %A{d.Layout.Class}")

            if chunked then
                Assert.Equal<uint64[]>(Array.map uint64 ds.Shape, d.Layout.Chunks)

            // The rule above is the one the current reference writer follows.
            match expected.TryFind p with
            | Some e when gzip && not (file.StartsWith "legacy/") && not (file.Contains "v107") ->
                Assert.True((e.Storage.StartsWith "chunked" = shouldChunk), $"%s{file}:%s{p}: reference storage %s{e.Storage}")
            | _ -> ())

[<Fact>]
let ``gzip writing compresses, uncompressed writing is the size of the data`` () =
    // Large enough for deflate to win: Sinabs' CNN has 16 x 16 x 16 IF parameters of ones.
    let doc = NirFile.read (fixture "legacy/cnn_sinabs.nir")
    let mutable sizes = []

    for options in [ gzip4; uncompressed ] do
        withWritten options doc (fun p -> sizes <- FileInfo(p).Length :: sizes)

    match sizes with
    | [ plain; gz ] -> Assert.True(gz < plain * 3L / 4L, $"gzip %d{gz} bytes vs uncompressed %d{plain}")
    | _ -> failwith "two sizes expected"

[<Fact>]
let ``writeStream and readStream round-trip through memory`` () =
    let doc = NirFile.read (fixture "mixed_nodes.nir")
    use ms = new MemoryStream()
    NirFile.writeStream gzip4 ms doc
    ms.Position <- 0L
    assertSameDoc "memory" doc (NirFile.readStream "memory" ms)

let private docOf (nodes: (string * NirNode) list) (edges: (string * string) list) =
    {
        Version = Some NirFile.ReferenceVersion
        Graph =
            {
                Nodes = Map.ofList nodes
                Edges = edges
                Metadata = Map.empty
            }
    }

let private io n =
    [
        "input",
        NirNode.Input
            {
                Shape = [| n |]
                Metadata = Map.empty
            }
        "output",
        NirNode.Output
            {
                Shape = [| n |]
                Metadata = Map.empty
            }
    ]

/// Random bit patterns (NaN payloads, infinities, subnormals included): HDF5 must keep every bit.
let private randomTensor (rnd: Random) (dtype: DType) (shape: int[]) =
    let n = Shape.count shape

    match dtype with
    | Float64 -> Tensor.FromArray(Array.init n (fun _ -> BitConverter.Int64BitsToDouble(rnd.NextInt64())), shape)
    | _ -> Tensor.FromArray(Array.init n (fun _ -> BitConverter.Int32BitsToSingle(rnd.Next())), shape)

/// A chain input -> affine -> neuron -> output of random sizes, dtypes and values.
let private randomChain (seed: int) (neuronShape: int[]) (dtype: DType) (kind: int) =
    let rnd = Random seed
    let n = Shape.count neuronShape
    let tensor = randomTensor rnd dtype
    let p () = tensor neuronShape

    let neuron =
        match kind with
        | 0 ->
            NirNode.LI
                {
                    Tau = p ()
                    R = p ()
                    VLeak = p ()
                    Metadata = Map.empty
                }
        | 1 ->
            NirNode.IF
                {
                    R = p ()
                    VThreshold = p ()
                    VReset = p ()
                    Metadata = Map [ "seed", NirValue.Int(int64 seed) ]
                }
        | 2 ->
            NirNode.LIF
                {
                    Tau = p ()
                    R = p ()
                    VLeak = p ()
                    VThreshold = p ()
                    VReset = p ()
                    Metadata = Map.empty
                }
        | _ ->
            NirNode.CubaLIF
                {
                    TauSyn = p ()
                    TauMem = p ()
                    R = p ()
                    VLeak = p ()
                    VThreshold = p ()
                    VReset = p ()
                    WIn = p ()
                    Metadata = Map [ "note", NirValue.Text $"chain %d{seed}" ]
                }

    let inputs = 1 + rnd.Next 4

    docOf
        [
            "input",
            NirNode.Input
                {
                    Shape = [| inputs |]
                    Metadata = Map.empty
                }
            "fc",
            NirNode.Affine
                {
                    Weight = tensor [| n; inputs |]
                    Bias = tensor [| n |]
                    Metadata = Map.empty
                }
            "flat",
            NirNode.Flatten
                {
                    InputType = Some [| n |]
                    StartDim = 0
                    EndDim = -1
                    Metadata = Map.empty
                }
            "neuron", neuron
            "output",
            NirNode.Output
                {
                    Shape = neuronShape
                    Metadata = Map.empty
                }
        ]
        [ "input", "fc"; "fc", "flat"; "flat", "neuron"; "neuron", "output" ]

[<Fact>]
let ``random chains of any neuron shape, dtype and bit pattern survive write -> read (property)`` () =
    let gen =
        Gen.zip3 (genShapeWith genDimNonEmpty 1) genDType (Gen.zip (Gen.choose (0, 3)) (Gen.choose (0, 1_000_000)))

    check 40 gen (fun (shape, dtype, (kind, seed)) ->
        let doc = randomChain seed shape dtype kind

        for options in [ gzip4; uncompressed ] do
            withWritten options doc (fun path -> assertSameDoc "random chain" doc (NirFile.read path)))

// ---------------------------------------------------------------------------------------------
// Hand-made files: storage variants to accept and mistakes to name

let private edge (name: string) = fixture ("edge_cases/" + name)

[<Fact>]
let ``fixed-length strings read like variable-length ones`` () =
    let doc = NirFile.read (edge "fixed_strings.nir")
    Assert.Equal(Some "0.2.0", doc.Version)
    Assert.Equal<(string * string) list>([ "input", "lif"; "lif", "output" ], doc.Graph.Edges)

    match doc.Graph.Nodes["lif"], doc.Graph.Nodes["input"] with
    | NirNode.LIF lif, NirNode.Input i ->
        Assert.Equal<float32[]>([| 0.0f; 0.0f; 0.0f |], lif.VReset.ToArray())
        Assert.Equal<int[]>([| 3 |], i.Shape)
    | _ -> failwith "unexpected node types"

[<Fact>]
let ``an empty edge list stored as float64 (0,), no /version and extra root objects are accepted`` () =
    let doc = NirFile.read (edge "empty_edges.nir")
    Assert.Equal(None, doc.Version)
    Assert.Empty doc.Graph.Edges
    Assert.Equal<string list>([ "input" ], List.ofSeq doc.Graph.Nodes.Keys)

    // Written back as nir.write does: an empty float64 dataset, and still readable.
    withWritten gzip4 doc (fun path ->
        use h5 = H5File.OpenRead path
        let e = h5.Dataset "/node/edges"
        Assert.Equal(H5DataTypeClass.FloatingPoint, e.Type.Class)
        Assert.Equal<uint64[]>([| 0UL |], e.Space.Dimensions)
        Assert.False(h5.LinkExists "/version")
        assertSameDoc "empty edges" doc (NirFile.read path))

[<Fact>]
let ``0-d neuron parameters are broadcast to the neuron shape, NirNode.Conv2d ints become pairs, dtypes are tolerated`` () =
    let doc = NirFile.read (edge "scalars.nir")

    match doc.Graph.Nodes["lif"], doc.Graph.Nodes["conv"], doc.Graph.Nodes["flat"], doc.Graph.Nodes["lin"] with
    | NirNode.CubaLIF lif, NirNode.Conv2d conv, NirNode.Flatten flat, NirNode.Linear lin ->
        // tau_mem was a 0-d float64, r a 0-d float32, w_in and v_reset absent: all [3] now, dtypes kept.
        Assert.Equal<int[]>([| 3 |], lif.TauMem.Shape)
        Assert.Equal(Float64, lif.TauMem.DType)
        Assert.Equal<float32[]>([| 1.5f; 1.5f; 1.5f |], lif.R.ToArray())
        Assert.Equal<float32[]>([| 1.0f; 1.0f; 1.0f |], lif.WIn.ToArray())
        Assert.Equal(Float32, lif.WIn.DType)
        Assert.Equal<float32[]>([| 0.0f; 0.0f; 0.0f |], lif.VReset.ToArray())
        Assert.Equal<int[]>([| 2; 2 |], conv.Stride)
        Assert.Equal(NirPadding.Explicit [| 1; 1 |], conv.Padding)
        Assert.Equal<int[]>([| 1; 1 |], conv.Dilation)
        // Flatten's defaults are NIR's: start_dim 1, end_dim -1.
        Assert.Equal((1, -1), (flat.StartDim, flat.EndDim))
        // An int64 weight (the reference does not check dtypes) reads as Float64.
        Assert.Equal(Float64, lin.Weight.DType)
        Assert.Equal<float[]>([| 1.0; 2.0; 3.0; 4.0 |], lin.Weight.ToDoubleArray())
    | _ -> failwith "unexpected node types"

    match doc.Graph.Nodes["input"] with
    | NirNode.Input i -> Assert.Equal<int[]>([| 3 |], i.Shape) // stored as int32
    | n -> failwithf "unexpected %s" n.TypeName

    // After the normalisation, writing and reading again changes nothing.
    withWritten gzip4 doc (fun path -> assertSameDoc "scalars" doc (NirFile.read path))

[<Fact>]
let ``metadata of every kind h5py stores reads, and writes back identically`` () =
    let doc = NirFile.read (edge "metadata_kinds.nir")
    let m = doc.Graph.Metadata
    Assert.Equal(NirValue.Text "ünïcode", m["text"])
    Assert.Equal(NirValue.Int -7L, m["int"])
    Assert.Equal(NirValue.Float 0.25, m["float"])
    Assert.Equal(NirValue.Bool true, m["bool"])
    Assert.Equal(NirValue.IntArray([| 1L; -2L; 3L; 1L <<< 40 |], [| 2; 2 |]), m["ints"])
    Assert.Equal(NirValue.BoolArray([| true; false; true |], [| 3 |]), m["bools"])
    Assert.Equal(NirValue.TextArray([| "a"; "bc" |], [| 2 |]), m["texts"])
    Assert.Equal(NirValue.Group(Map [ "deeper", NirValue.Group(Map [ "dt", NirValue.Float 1e-4 ]) ]), m["nested"])

    match m["f32"], m["floats"] with
    | NirValue.Array f32, NirValue.Array floats ->
        Assert.Equal((Float32, 0), (f32.DType, f32.Rank))
        Assert.Equal<float[]>([| 0.0; 0.125; 0.25; 0.375; 0.5; 0.625 |], floats.ToDoubleArray())
        Assert.Equal<int[]>([| 2; 3 |], floats.Shape)
    | _ -> failwith "unexpected metadata kinds"

    Assert.Equal(NirValue.Text "ms", doc.Graph.Nodes["input"].Metadata["unit"])

    for options in [ gzip4; uncompressed ] do
        withWritten options doc (fun path ->
            assertSameDoc "metadata" doc (NirFile.read path)
            use h5 = H5File.OpenRead path
            // h5py's bool enum, so that Python reads True, not 1.
            Assert.Equal(H5DataTypeClass.Enumerated, (h5.Dataset "/node/metadata/bool").Type.Class))

let private readFails (file: string) (fragments: string list) =
    let e =
        Assert.Throws<InvalidDataException>(fun () -> NirFile.read (edge file) |> ignore)

    Assert.Contains(file, e.Message)

    for f in fragments do
        Assert.Contains(f, e.Message)

[<Fact>]
let ``an LZF-compressed dataset fails naming the filter and the dataset`` () =
    readFails "lzf.nir" [ "/node/nodes/lin"; "'weight'"; "filter lzf is not supported" ]

[<Fact>]
let ``malformed files fail naming the node path and the field`` () =
    readFails "err_unknown_type.nir" [ "/node/nodes/fc"; "'AdEx'"; "not a NIR primitive" ]
    readFails "err_missing_bias.nir" [ "/node/nodes/fc"; "no 'bias' dataset" ]
    readFails "err_bias_shape.nir" [ "/node/nodes/fc"; "'bias' has shape [2]"; "weight [3; 3] needs [3]" ]
    readFails "err_extra_field.nir" [ "/node/nodes/fc"; "'dt'"; "not Affine fields" ]
    readFails "err_missing_type.nir" [ "/node/nodes/fc"; "no 'type' dataset" ]
    readFails "err_weight_rank.nir" [ "/node/nodes/fc"; "'weight' must have rank >= 2" ]
    readFails "err_string_weight.nir" [ "/node/nodes/fc"; "'weight' must be a float array" ]
    readFails "err_edge_target.nir" [ "/node:"; "'fc' -> 'out'"; "names the node 'out'" ]
    readFails "err_padding.nir" [ "/node/nodes/conv"; "'padding'"; "\"same\" or \"valid\"" ]
    readFails "err_neuron_shapes.nir" [ "/node/nodes/lif"; "'tau' is [3] but 'r' is [2]" ]
    readFails "v000_layout.nir" [ "NIR 0.0.x" ]

[<Fact>]
let ``a file that is not HDF5, or is missing, fails clearly`` () =
    let path = temp ".nir"

    try
        File.WriteAllText(path, "not hdf5")
        let e = Assert.Throws<InvalidDataException>(fun () -> NirFile.read path |> ignore)
        Assert.Contains("not an HDF5 file", e.Message)
    finally
        File.Delete path

    Assert.Throws<FileNotFoundException>(fun () -> NirFile.read (temp ".nir") |> ignore)
    |> ignore

// ---------------------------------------------------------------------------------------------
// Writing invalid documents

let private t32 (shape: int[]) (values: float32[]) = Tensor.FromArray(values, shape)

let private affine w b =
    NirNode.Affine
        {
            Weight = w
            Bias = b
            Metadata = Map.empty
        }

let private writeFails (doc: NirDocument) (fragments: string list) =
    let path = temp ".nir"
    assertThrowsArg ("NirFile.write" :: fragments) (fun () -> NirFile.write path doc)
    Assert.False(File.Exists path, "nothing may be written for an invalid document")

[<Fact>]
let ``writing an invalid document fails naming the node and field, and writes nothing`` () =
    let w = t32 [| 2; 2 |] [| 1.0f; 2.0f; 3.0f; 4.0f |]
    let edges = [ "input", "fc"; "fc", "output" ]
    writeFails (docOf (("fc", affine w (t32 [| 3 |] [| 0.0f; 0.0f; 0.0f |])) :: io 2) edges) [ "/node/nodes/fc"; "'bias'" ]

    writeFails (docOf (("fc", affine w (t32 [| 2 |] [| 0.0f; 0.0f |])) :: io 2) [ "input", "fc"; "fc", "out" ]) [ "names the node 'out'" ]

    writeFails (docOf (("a/b", affine w (t32 [| 2 |] [| 0.0f; 0.0f |])) :: io 2) []) [ "'a/b'" ]

    let ints = Tensor.FromArray([| 1; 2; 3; 4 |], [| 2; 2 |])
    writeFails (docOf (("fc", affine ints (t32 [| 2 |] [| 0.0f; 0.0f |])) :: io 2) edges) [ "'weight'"; "Float32 or Float64" ]

    let conv =
        NirNode.Conv2d
            {
                InputShape = None
                Weight = Tensor.Zeros [| 1; 1; 3; 3 |]
                Stride = [| 1; 1 |]
                Padding = NirPadding.Same
                Dilation = [| 1; 1 |]
                Groups = 1
                Bias = Tensor.Zeros [| 1 |]
                Metadata = Map.empty
            }

    writeFails (docOf [ "conv", conv ] []) [ "/node/nodes/conv"; "input_shape" ]

    let lif =
        NirNode.LIF
            {
                Tau = Tensor.Ones [| 3 |]
                R = Tensor.Ones [| 2 |]
                VLeak = Tensor.Zeros [| 3 |]
                VThreshold = Tensor.Ones [| 3 |]
                VReset = Tensor.Zeros [| 3 |]
                Metadata = Map.empty
            }

    writeFails (docOf [ "lif", lif ] []) [ "/node/nodes/lif"; "'r' is [2]" ]

    let badMeta =
        { docOf (io 1) [] with
            Graph =
                { (docOf (io 1) []).Graph with
                    Metadata = Map [ "ids", NirValue.IntArray([| 1L; 2L; 3L |], [| 2; 2 |]) ]
                }
        }

    writeFails badMeta [ "/node/metadata/ids"; "3 values but shape" ]

    assertThrowsArg [ "gzip level" ] (fun () -> NirFile.writeWith { Compression = NirCompression.Gzip 12 } (temp ".nir") (docOf (io 2) []))

[<Fact>]
let ``a failed write leaves an existing file untouched and no temporary file behind`` () =
    let dir =
        Path.Combine(Path.GetTempPath(), "snnfunc-nir-" + Guid.NewGuid().ToString "N")

    Directory.CreateDirectory dir |> ignore

    try
        let path = Path.Combine(dir, "model.nir")
        let good = NirFile.read (fixture "ff_cubalif.nir")
        NirFile.write path good
        let before = File.ReadAllBytes path
        let bad = docOf (io 2) [ "input", "nowhere" ]
        assertThrowsArg [ "nowhere" ] (fun () -> NirFile.write path bad)
        Assert.Equal<byte[]>(before, File.ReadAllBytes path)
        Assert.Equal<string[]>([| path |], Directory.GetFiles dir)
    finally
        Directory.Delete(dir, true)

    Assert.Throws<DirectoryNotFoundException>(fun () -> NirFile.write (Path.Combine(dir, "missing", "x.nir")) (docOf (io 1) []))
    |> ignore

[<Fact>]
let ``scalar neuron parameters are written as arrays of the neuron shape (trap T8)`` () =
    let cuba =
        NirNode.CubaLIF
            {
                TauSyn = Tensor.FromArray([| 2.0f; 3.0f |], [| 2 |])
                TauMem = Tensor.Scalar 10.0
                R = Tensor.Scalar 1.0
                VLeak = Tensor.Scalar 0.0
                VThreshold = Tensor.Scalar 1.0
                VReset = Tensor.Scalar 0.0
                WIn = Tensor.Scalar 1.0
                Metadata = Map.empty
            }

    let doc = docOf (("lif", cuba) :: io 2) [ "input", "lif"; "lif", "output" ]

    withWritten gzip4 doc (fun path ->
        use h5 = H5File.OpenRead path

        for field in [ "tau_syn"; "tau_mem"; "r"; "v_leak"; "v_threshold"; "v_reset"; "w_in" ] do
            let d = h5.Dataset($"/node/nodes/lif/%s{field}")
            Assert.Equal<uint64[]>([| 2UL |], d.Space.Dimensions)
            Assert.Equal(H5DataLayoutClass.Chunked, d.Layout.Class)

        Assert.Equal(NirFile.ReferenceVersion, h5.Dataset("/version").Read<string>()))

// ---------------------------------------------------------------------------------------------
// NIRData

[<Fact>]
let ``the NIRData file reads into observables matching VALUES.json`` () =
    let data = NirData.read (fixture "ff_cubalif_data.nirdata")
    let expected = expectedOf "ff_cubalif_data.nirdata"

    let ds (t: Tensor) dtype =
        match t.Storage with
        | Storage.F32 a ->
            {
                Dtype = dtype
                Shape = t.Shape
                Elems = EF32 a
            }
        | Storage.F64 a ->
            {
                Dtype = dtype
                Shape = t.Shape
                Elems = EF64 a
            }
        | Storage.I32 a ->
            {
                Dtype = dtype
                Shape = t.Shape
                Elems = EI64(Array.map int64 a)
            }

    let obs node name =
        match data.Nodes[node] with
        | NirNodeData.Node o -> o[name]
        | NirNodeData.Graph _ -> failwith "a node, not a graph, expected"

    let at p = expected["/nodes/" + p]

    match obs "lif1" "spikes", obs "lif1" "events", obs "li_out" "v", obs "li_out" "valued" with
    | NirObservable.TimeGridded spikes, NirObservable.Events events, NirObservable.TimeGridded v, NirObservable.ValuedEvents valued ->
        Assert.True(spikes.IsBool)
        Assert.Equal(0.1, spikes.Dt)
        let bools = spikes.Data.ToArray() |> Array.map (fun x -> x = 1.0f)

        checkDataset
            "spikes"
            (at "lif1/observables/spikes/data")
            {
                Dtype = "bool"
                Shape = spikes.Data.Shape
                Elems = EBool bools
            }

        Assert.Equal(3.0f, spikes.Data.ToArray() |> Array.sum)
        checkDataset "events.idx" (at "lif1/observables/events/idx") (ds events.Idx "i64")
        checkDataset "events.time" (at "lif1/observables/events/time") (ds events.Time "f64")
        Assert.Equal((7, 0.6), (events.NNeurons, events.TMax))
        Assert.False(v.IsBool)
        checkDataset "v" (at "li_out/observables/v/data") (ds v.Data "f64")
        checkDataset "valued.idx" (at "li_out/observables/valued/idx") (ds valued.Idx "i64")
        checkDataset "valued.time" (at "li_out/observables/valued/time") (ds valued.Time "f64")
        checkDataset "valued.value" (at "li_out/observables/valued/value") (ds valued.Value "f64")
        Assert.Equal((3, 0.6), (valued.NNeurons, valued.TMax))
    | _ -> failwith "unexpected observable kinds"

[<Fact>]
let ``a NIR graph file is not a NIRData file`` () =
    let e =
        Assert.Throws<InvalidDataException>(fun () -> NirData.read (fixture "ff_cubalif.nir") |> ignore)

    Assert.Contains("__type__", e.Message)
