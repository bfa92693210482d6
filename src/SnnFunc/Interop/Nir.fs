/// NIR graphs as SnnFunc graphs (the binding `SnnFunc.Nir`): a NIR document becomes a Graph whose
/// nodes keep the file's names, primitives, field values (in their dtypes and time unit) and
/// metadata, so that writing it back gives the same document; a graph built with SnnFunc's own
/// neurons is written as the NIR primitives with the same dynamics.
namespace SnnFunc

open System
open System.IO

/// How the times of a NIR file become seconds and steps. NIR does not say (trap T1 of
/// ../shared/reference/nir/README.md): its documentation says milliseconds, Norse and snnTorch write
/// seconds, Spyx writes time steps. Import and export take it explicitly.
type NirOptions =
    {
        /// Seconds per unit of the file's times (time constants, delays).
        TimeUnit: float
        /// The simulation step in seconds (NIR's ODEs are discretised by explicit Euler with it).
        Dt: float
        /// The surrogate derivative given to imported spiking neurons and thresholds (NIR has none).
        Surrogate: SurrogateFn
    }

/// Conventions of the common writers.
[<RequireQualifiedAccess>]
module NirOptions =
    let private positiveFinite (x: float) = x > 0.0 && not (Double.IsInfinity x)

    /// The options, or an ArgumentException naming the field that is not a positive finite number.
    let validate (o: NirOptions) =
        if not (positiveFinite o.Dt) then
            invalidArg "options" $"NirOptions: Dt must be a positive finite number of seconds, got %g{o.Dt}"

        if not (positiveFinite o.TimeUnit) then
            invalidArg "options" $"NirOptions: TimeUnit must be a positive finite number of seconds, got %g{o.TimeUnit}"

        o

    /// Milliseconds, NIR's documented unit (and jaxsnn's), simulated with step `dt` seconds.
    let milliseconds (dt: float) =
        validate
            {
                TimeUnit = 1e-3
                Dt = dt
                Surrogate = Surrogate.superSpike 100.0
            }

    /// Seconds, as Norse writes (its default dt is 1 ms) and snnTorch (with dt = 1e-4 s).
    let seconds (dt: float) = { milliseconds dt with TimeUnit = 1.0 }

    /// Time steps of length `dt` seconds, as Spyx writes.
    let steps (dt: float) = { milliseconds dt with TimeUnit = dt }

    /// Milliseconds, 1 ms steps.
    let defaults = milliseconds 1e-3

/// What Nir.read keeps of a node (in Graph.Notes), to write it back as it was.
type NirNote = { Type: string; Metadata: NirMetadata }

/// What Nir.read keeps of the file (Graph.Notes[""]).
type NirFileNote =
    {
        Version: string option
        Metadata: NirMetadata
        Options: NirOptions
        /// Doubts about the file's conventions (e.g. time constants that look like seconds).
        Warnings: string list
    }

/// Reading and writing NIR files as graphs.
[<RequireQualifiedAccess>]
module Nir =

    let private fail (where: string) (message: string) : 'a =
        invalidArg "graph" $"Nir: %s{where}: %s{message}"

    /// Scoped names of nested graphs: "outer/inner" ('/' cannot occur in HDF5 group names).
    let private scoped (prefix: string) (name: string) =
        if prefix = "" then name else prefix + "/" + name

    // -----------------------------------------------------------------------------------------
    // NIR -> Graph

    let private transposed (w: Tensor) =
        if w.Rank <> 2 then
            invalidArg "weight" "Nir: only 2-d weights map to dense projections"

        w.Transpose()

    /// The neuron kind and fields of a NIR neuron primitive (NIR field names).
    let private neuronOf (node: NirNode) : (NirNeuronKind * (string * Tensor) list) option =
        match node with
        | NirNode.CubaLIF n ->
            Some(
                NirCubaLif,
                [
                    "tau_syn", n.TauSyn
                    "tau_mem", n.TauMem
                    "r", n.R
                    "v_leak", n.VLeak
                    "v_threshold", n.VThreshold
                    "v_reset", n.VReset
                    "w_in", n.WIn
                ]
            )
        | NirNode.LIF n ->
            Some(
                NirLif,
                [
                    "tau", n.Tau
                    "r", n.R
                    "v_leak", n.VLeak
                    "v_threshold", n.VThreshold
                    "v_reset", n.VReset
                ]
            )
        | NirNode.CubaLI n ->
            Some(
                NirCubaLi,
                [
                    "tau_syn", n.TauSyn
                    "tau_mem", n.TauMem
                    "r", n.R
                    "v_leak", n.VLeak
                    "w_in", n.WIn
                ]
            )
        | NirNode.LI n -> Some(NirLi, [ "tau", n.Tau; "r", n.R; "v_leak", n.VLeak ])
        | NirNode.IF n -> Some(NirIf, [ "r", n.R; "v_threshold", n.VThreshold; "v_reset", n.VReset ])
        | NirNode.I n -> Some(NirIntegrator, [ "r", n.R ])
        | _ -> None

    let private isTimeField (field: string) = field.StartsWith "tau"

    /// The Input (or Output) node of a nested graph, through which edges enter (or leave) it.
    let private port (where: string) (kind: string) (sub: NirGraph) =
        let ports =
            sub.Nodes
            |> Map.toList
            |> List.filter (fun (_, n) ->
                match n, kind with
                | NirNode.Input _, "Input"
                | NirNode.Output _, "Output" -> true
                | _ -> false)

        match ports with
        | [ name, _ ] -> name
        | [] -> fail where $"the nested graph has no %s{kind} node to connect through"
        | _ -> fail where $"the nested graph has several %s{kind} nodes; edges to the graph itself are ambiguous"

    /// A NIR document as a graph and its parameters (the file's tensors, weights transposed to
    /// SnnFunc's [in; out]).
    let toGraph (options: NirOptions) (doc: NirDocument) : Graph * GraphParams =
        NirOptions.validate options |> ignore
        let mutable g = Graph.empty
        let mutable p: GraphParams = Map.empty
        let warnings = ResizeArray<string>()
        let taus = ResizeArray<float>()
        // Convolutions' declared spatial input shapes, checked against the graph's once it is built.
        let convInputs = ResizeArray<string * int[]>()

        let rec add (prefix: string) (ng: NirGraph) =
            for KeyValue(name, node) in ng.Nodes do
                let full = scoped prefix name
                let where = $"node '%s{full}'"

                let noted (t: string) (m: NirMetadata) =
                    g <- Graph.note full (box { Type = t; Metadata = m }) g

                let put (fields: (string * Tensor) list) = p <- p.Add(full, Map fields)

                match node with
                | NirNode.Input io ->
                    // An Input of the top graph is a source; inside a nested graph, a port.
                    g <-
                        Graph.addNode
                            full
                            (if prefix = "" then
                                 Source io.Shape
                             else
                                 Op(Identity, Some io.Shape))
                            g

                    noted "Input" io.Metadata
                | NirNode.Output io ->
                    g <- Graph.addNode full (Op(Identity, Some io.Shape)) g
                    noted "Output" io.Metadata
                | NirNode.Affine a ->
                    let w = transposed a.Weight

                    let proj =
                        { Projection.dense (Init.ofTensor w) with
                            Bias = Some(Init.ofTensor a.Bias)
                            OutShape = Some [| a.Weight.Shape[0] |]
                        }

                    g <- Graph.addNode full (Synapses proj) g
                    put [ "weight", w; "bias", a.Bias ]
                    noted "Affine" a.Metadata
                | NirNode.Linear l ->
                    let w = transposed l.Weight

                    let proj =
                        { Projection.dense (Init.ofTensor w) with
                            OutShape = Some [| l.Weight.Shape[0] |]
                        }

                    g <- Graph.addNode full (Synapses proj) g
                    put [ "weight", w ]
                    noted "Linear" l.Metadata
                | NirNode.Scale s ->
                    g <- Graph.addNode full (Op(Scale(Init.ofTensor s.Scale), None)) g
                    put [ "scale", s.Scale ]
                    noted "Scale" s.Metadata
                | NirNode.Threshold t ->
                    g <- Graph.addNode full (Op(Threshold(Init.ofTensor t.Threshold, options.Surrogate), None)) g
                    put [ "threshold", t.Threshold ]
                    noted "Threshold" t.Metadata
                | NirNode.Flatten f ->
                    g <- Graph.addNode full (Op(Flatten(f.StartDim, f.EndDim), None)) g
                    noted "Flatten" f.Metadata
                | NirNode.Delay d ->
                    let longest = if d.Delay.Count = 0 then 0.0 else d.Delay.Max().ToScalar()
                    let maxSteps = max 1 (int (Math.Round(longest * options.TimeUnit / options.Dt)))
                    g <- Graph.addNode full (Op(NeuronDelay(Init.ofTensor d.Delay, options.TimeUnit, options.Dt, maxSteps), None)) g
                    put [ "delay", d.Delay ]
                    noted "Delay" d.Metadata
                | NirNode.Graph sub ->
                    add full sub
                    noted "NIRGraph" sub.Metadata
                | NirNode.Conv1d c
                | NirNode.Conv2d c ->
                    let spec =
                        {
                            OutChannels = c.Weight.Shape[0]
                            Kernel = c.Weight.Shape[2..]
                            Stride = c.Stride
                            Padding =
                                match c.Padding with
                                | NirPadding.Explicit pad -> ConvPadding.Explicit pad
                                | NirPadding.Same -> ConvPadding.Same
                                | NirPadding.Valid -> ConvPadding.Valid
                            Dilation = c.Dilation
                            Groups = c.Groups
                        }

                    let proj =
                        try
                            Projection.conv spec (Init.ofTensor c.Weight)
                            |> Projection.withBias (Init.ofTensor c.Bias)
                        with :? ArgumentException as e ->
                            fail where e.Message

                    g <- Graph.addNode full (Synapses proj) g
                    put [ "weight", c.Weight; "bias", c.Bias ]
                    c.InputShape |> Option.iter (fun s -> convInputs.Add(full, s))
                    noted node.TypeName c.Metadata
                | NirNode.SumPool2d pool
                | NirNode.AvgPool2d pool ->
                    let o =
                        {
                            Kernel = (pool.KernelSize[0], pool.KernelSize[1])
                            Stride = (pool.Stride[0], pool.Stride[1])
                            Padding = (pool.Padding[0], pool.Padding[1])
                        }

                    let t =
                        match node with
                        | NirNode.SumPool2d _ -> SumPool2d o
                        | _ -> AvgPool2d o

                    g <- Graph.addNode full (Op(t, None)) g
                    noted node.TypeName pool.Metadata
                | neuronNode ->
                    match neuronOf neuronNode with
                    | None -> fail where $"%s{neuronNode.TypeName} has no mapping"
                    | Some(kind, fields) ->
                        let shape = (snd fields.Head).Shape

                        if shape.Length = 0 then
                            fail where "its parameters are scalars; NIR neurons need parameters of the neuron shape"

                        let neuron =
                            fields
                            |> List.fold
                                (fun n (field, t) -> Neuron.withInit field (Init.ofTensor t) n)
                                (Neuron.nir
                                    {
                                        Kind = kind
                                        TimeUnit = options.TimeUnit
                                        Dt = options.Dt
                                        Surrogate = options.Surrogate
                                    })

                        for field, t in fields do
                            if isTimeField field then
                                taus.AddRange(t.ToDoubleArray())

                        g <- Graph.addNode full (Population(shape, neuron)) g
                        put fields
                        noted neuronNode.TypeName neuronNode.Metadata

            // Edges in the file's order; an edge to or from a nested graph goes through its ports.
            for a, b in ng.Edges do
                let source =
                    match ng.Nodes.TryFind a with
                    | Some(NirNode.Graph sub) -> scoped (scoped prefix a) (port $"nested graph '%s{scoped prefix a}'" "Output" sub)
                    | _ -> scoped prefix a

                let target =
                    match ng.Nodes.TryFind b with
                    | Some(NirNode.Graph sub) -> scoped (scoped prefix b) (port $"nested graph '%s{scoped prefix b}'" "Input" sub)
                    | _ -> scoped prefix b

                g <- Graph.edge source target g

        add "" doc.Graph

        for name, declared in convInputs do
            let input =
                Graph.shapeOf g (List.head (g.Edges |> List.filter (snd >> (=) name) |> List.map fst))

            if input[1..] <> declared then
                fail $"node '%s{name}'" $"input_shape is %s{Shape.format declared}, but the node receives %s{Shape.format input}"

        if
            options.TimeUnit = 1e-3
            && taus.Count > 0
            && taus |> Seq.forall (fun t -> t > 0.0 && t < 0.1)
        then
            warnings.Add
                "every time constant is below 0.1 in a file read as milliseconds: it was probably written in seconds (Norse, snnTorch); read it with NirOptions.seconds"

        let note =
            {
                Version = doc.Version
                Metadata = doc.Graph.Metadata
                Options = options
                Warnings = List.ofSeq warnings
            }

        Graph.note "" (box note) g, p

    // -----------------------------------------------------------------------------------------
    // Graph -> NIR

    let private noteOf (g: Graph) (name: string) =
        match g.Notes.TryFind name with
        | Some(:? NirNote as n) -> Some n
        | _ -> None

    let private metadataOf (g: Graph) (name: string) =
        noteOf g name
        |> Option.map (fun n -> n.Metadata)
        |> Option.defaultValue Map.empty

    /// A parameter of a node, as stored.
    let private field (p: GraphParams) (node: string) (name: string) =
        match p.TryFind node |> Option.bind (fun m -> m.TryFind name) with
        | Some t -> t
        | None -> fail $"node '%s{node}'" $"the parameters have no '%s{name}'"

    /// A host value (or a parameter tensor) as an array of the neuron shape and `dtype` (trap T8:
    /// NIR neurons always get arrays of the neuron shape).
    let private ofShape (shape: int[]) (t: Tensor) =
        if t.Rank = 0 || t.ShapeRef <> shape then
            t.BroadcastTo shape
        else
            t

    /// The NIR node of a graph node (None for nodes that NIR writes otherwise).
    let private nirNode
        (options: NirOptions)
        (g: Graph)
        (a: Map<string, int[]>)
        (preds: Map<string, string list>)
        (p: GraphParams)
        (name: string)
        (node: Node)
        : NirNode =
        let where = $"node '%s{name}'"
        let meta = metadataOf g name
        let get = field p name

        match node with
        | Source shape -> NirNode.Input { Shape = shape; Metadata = meta }
        | Op(Identity, _) ->
            let io = { Shape = a[name]; Metadata = meta }

            match noteOf g name with
            | Some { Type = "Input" } -> NirNode.Input io
            | _ -> NirNode.Output io
        | Op(Scale _, _) -> NirNode.Scale { Scale = get "scale"; Metadata = meta }
        | Op(Threshold _, _) ->
            NirNode.Threshold
                {
                    Threshold = get "threshold"
                    Metadata = meta
                }
        | Op(Flatten(s, e), _) ->
            NirNode.Flatten
                {
                    InputType = Some a[preds[name].Head]
                    StartDim = s
                    EndDim = e
                    Metadata = meta
                }
        | Op((SumPool2d o | AvgPool2d o) as t, _) ->
            let pair (x, y) = [| x; y |]

            let pool =
                {
                    KernelSize = pair o.Kernel
                    Stride = pair o.Stride
                    Padding = pair o.Padding
                    Metadata = meta
                }

            match t with
            | SumPool2d _ -> NirNode.SumPool2d pool
            | _ -> NirNode.AvgPool2d pool
        | Op(NeuronDelay(_, unit, dt, _), _) ->
            if unit <> options.TimeUnit || dt <> options.Dt then
                fail where "its delay was read with another time unit or step than the export options"

            NirNode.Delay { Delay = get "delay"; Metadata = meta }
        | Synapses proj ->
            if
                (match proj.Delay with
                 | NoDelay -> false
                 | _ -> true)
            then
                fail where "delayed projections have no NIR primitive of their own yet; add a Delay transform before the projection"

            let w = Projection.signed proj (get "weight")

            match proj.Kind with
            | Conv c ->
                let bias =
                    match p.TryFind name |> Option.bind (fun m -> m.TryFind "bias") with
                    | Some b -> b
                    | None -> Tensor.Full([| c.OutChannels |], 0.0, w.DType)

                let conv =
                    {
                        InputShape = Some(a[preds[name].Head][1..])
                        Weight = w
                        Stride = c.Stride
                        Padding =
                            match c.Padding with
                            | ConvPadding.Explicit pad -> NirPadding.Explicit pad
                            | ConvPadding.Same -> NirPadding.Same
                            | ConvPadding.Valid -> NirPadding.Valid
                        Dilation = c.Dilation
                        Groups = c.Groups
                        Bias = bias
                        Metadata = meta
                    }

                if c.Kernel.Length = 1 then
                    NirNode.Conv1d conv
                else
                    NirNode.Conv2d conv
            | Dense
            | Sparse _ ->

                let w =
                    match proj.Kind with
                    | Sparse mask -> w * mask.Convert w.DType
                    | _ -> w

                let weight = w.Transpose()

                match (p.TryFind name |> Option.bind (fun m -> m.TryFind "bias")), noteOf g name with
                | Some b, _ ->
                    NirNode.Affine
                        {
                            Weight = weight
                            Bias = b
                            Metadata = meta
                        }
                | None, Some { Type = "Affine" } ->
                    NirNode.Affine
                        {
                            Weight = weight
                            Bias = Tensor.Full([| weight.Shape[0] |], 0.0, weight.DType)
                            Metadata = meta
                        }
                | None, _ -> NirNode.Linear { Weight = weight; Metadata = meta }
        | Population(shape, neuron) ->
            match neuron.Model with
            | NirModel n ->
                if n.TimeUnit <> options.TimeUnit || n.Dt <> options.Dt then
                    fail where "it was read with another time unit or step than the export options"

                let f k = get k

                match n.Kind with
                | NirCubaLif ->
                    NirNode.CubaLIF
                        {
                            TauSyn = f "tau_syn"
                            TauMem = f "tau_mem"
                            R = f "r"
                            VLeak = f "v_leak"
                            VThreshold = f "v_threshold"
                            VReset = f "v_reset"
                            WIn = f "w_in"
                            Metadata = meta
                        }
                | NirLif ->
                    NirNode.LIF
                        {
                            Tau = f "tau"
                            R = f "r"
                            VLeak = f "v_leak"
                            VThreshold = f "v_threshold"
                            VReset = f "v_reset"
                            Metadata = meta
                        }
                | NirCubaLi ->
                    NirNode.CubaLI
                        {
                            TauSyn = f "tau_syn"
                            TauMem = f "tau_mem"
                            R = f "r"
                            VLeak = f "v_leak"
                            WIn = f "w_in"
                            Metadata = meta
                        }
                | NirLi ->
                    NirNode.LI
                        {
                            Tau = f "tau"
                            R = f "r"
                            VLeak = f "v_leak"
                            Metadata = meta
                        }
                | NirIf ->
                    NirNode.IF
                        {
                            R = f "r"
                            VThreshold = f "v_threshold"
                            VReset = f "v_reset"
                            Metadata = meta
                        }
                | NirIntegrator -> NirNode.I { R = f "r"; Metadata = meta }
            | LifModel spec ->
                // SnnFunc's LIF is NIR's CubaLIF with i = r I and inputs r w_in dt/τs S: r = 1 and
                // w_in = τs/dt give unit input gain; τ as the dynamics use it (effectiveTau).
                if spec.Dt <> options.Dt then
                    fail where $"its step Dt = %g{spec.Dt} s differs from the export step %g{options.Dt} s"

                if spec.Reset <> Snn.ToValue then
                    fail where "NIR resets to v_reset; a reset by subtraction has no NIR primitive"

                if spec.RefractorySteps <> 0 then
                    fail where "NIR neurons have no refractory period"

                let tau k =
                    ofShape shape (Snn.effectiveTau spec.Dt (get k))

                let tauSyn = tau "tauSyn"

                NirNode.CubaLIF
                    {
                        TauSyn = tauSyn / options.TimeUnit
                        TauMem = tau "tauMem" / options.TimeUnit
                        R = Tensor.Full(shape, 1.0, tauSyn.DType)
                        VLeak = ofShape shape (get "vLeak")
                        VThreshold = ofShape shape (get "vTh")
                        VReset = ofShape shape (get "vReset")
                        WIn = tauSyn / spec.Dt
                        Metadata = meta
                    }
            | LiModel spec ->
                if spec.Dt <> options.Dt then
                    fail where $"its step Dt = %g{spec.Dt} s differs from the export step %g{options.Dt} s"

                let tau k =
                    ofShape shape (Snn.effectiveTau spec.Dt (get k))

                let tauSyn = tau "tauSyn"

                NirNode.CubaLI
                    {
                        TauSyn = tauSyn / options.TimeUnit
                        TauMem = tau "tauMem" / options.TimeUnit
                        R = Tensor.Full(shape, 1.0, tauSyn.DType)
                        VLeak = ofShape shape (get "vLeak")
                        WIn = tauSyn / spec.Dt
                        Metadata = meta
                    }
            | IfModel spec ->
                if spec.Reset <> Snn.ToValue || spec.RefractorySteps <> 0 then
                    fail where "NIR's IF resets to v_reset and has no refractory period"

                let vTh = ofShape shape (get "vTh")

                // v += input is NIR's dv/dt = r I with r = 1/dt (dt in the file's unit).
                NirNode.IF
                    {
                        R = Tensor.Full(shape, options.TimeUnit / options.Dt, vTh.DType)
                        VThreshold = vTh
                        VReset = ofShape shape (get "vReset")
                        Metadata = meta
                    }
            | AlifModel _
            | AdExModel _ -> fail where "adaptive neurons (ALIF, AdEx) have no NIR primitive"

    /// A graph and its parameters as a NIR document: nodes named "outer/inner" become nested graphs,
    /// nodes read from NIR are written back as they were, SnnFunc's own neurons as the NIR
    /// primitives with the same dynamics (see nirNode). The options say in which time unit and
    /// for which step to write; they are recorded under metadata/ (time_unit, dt, discretization).
    let ofGraph (options: NirOptions) (g: Graph) (p: GraphParams) : NirDocument =
        NirOptions.validate options |> ignore
        let a = GraphCheck.analyse g
        let names = g.Nodes |> List.map fst

        let inScope (scope: string) (n: string) =
            if scope = "" then true else n.StartsWith(scope + "/")

        let local (scope: string) (n: string) =
            if scope = "" then n else n.Substring(scope.Length + 1)

        // The child of `scope` a name belongs to (a node, or a nested graph's name).
        let child (scope: string) (n: string) =
            let rest = local scope n

            match rest.IndexOf '/' with
            | -1 -> rest
            | k -> rest.Substring(0, k)

        let rec build (scope: string) : NirGraph =
            let members = names |> List.filter (inScope scope)
            let children = members |> List.map (child scope) |> List.distinct

            let nodes =
                children
                |> List.map (fun c ->
                    let full = scoped scope c

                    match a.Nodes.TryFind full with
                    | Some node -> c, nirNode options g a.Shapes a.Preds p full node
                    | None -> c, NirNode.Graph(build full))
                |> Map.ofList

            let edges =
                g.Edges
                |> List.filter (fun (x, y) ->
                    inScope scope x && inScope scope y && child scope x <> child scope y
                    || (inScope scope x
                        && inScope scope y
                        && local scope x = child scope x
                        && local scope y = child scope y))
                |> List.map (fun (x, y) -> child scope x, child scope y)
                |> List.distinct

            {
                Nodes = nodes
                Edges = edges
                Metadata = metadataOf g scope
            }

        let root = build ""

        let fileNote =
            match g.Notes.TryFind "" with
            | Some(:? NirFileNote as n) -> Some n
            | _ -> None

        let metadata =
            match fileNote with
            | Some n -> n.Metadata
            | None ->
                // A graph of our own: say how its times are to be read (trap T1).
                Map
                    [
                        "time_unit", NirValue.Float options.TimeUnit
                        "dt", NirValue.Float options.Dt
                        "discretization", NirValue.Text "euler"
                        "writer", NirValue.Text "SnnFunc"
                    ]

        {
            Version =
                (match fileNote with
                 | Some n -> n.Version
                 | None -> Some NirFile.ReferenceVersion)
            Graph = { root with Metadata = metadata }
        }

    /// The options a graph was read with (or `fallback` for a graph of SnnFunc's own).
    let optionsOf (fallback: NirOptions) (g: Graph) =
        match g.Notes.TryFind "" with
        | Some(:? NirFileNote as n) -> n.Options
        | _ -> fallback

    /// Doubts Nir.read had about the file's conventions (e.g. time constants that look like seconds).
    let warnings (g: Graph) : string list =
        match g.Notes.TryFind "" with
        | Some(:? NirFileNote as n) -> n.Warnings
        | _ -> []

    /// Options recorded by SnnFunc's own writer in the file's metadata, when present.
    let private recorded (doc: NirDocument) (fallback: NirOptions) =
        match doc.Graph.Metadata.TryFind "time_unit", doc.Graph.Metadata.TryFind "dt" with
        | Some(NirValue.Float unit), Some(NirValue.Float dt) ->
            { fallback with
                TimeUnit = unit
                Dt = dt
            }
        | _ -> fallback

    /// Reads a NIR file as a graph with explicit options.
    let readWith (options: NirOptions) (path: string) : Graph * GraphParams = toGraph options (NirFile.read path)

    /// Reads a NIR file as a graph: in the time unit and step the file records (SnnFunc writes them
    /// under metadata/), else milliseconds with 1 ms steps (see Nir.warnings).
    let read (path: string) : Graph * GraphParams =
        let doc = NirFile.read path
        toGraph (recorded doc NirOptions.defaults) doc

    /// Writes a graph as a NIR file with explicit options.
    let writeWith (options: NirOptions) (path: string) (g: Graph) (p: GraphParams) : unit =
        NirFile.write path (ofGraph options g p)

    /// Writes a graph as a NIR file, in the options it was read with (or milliseconds and the step
    /// of its populations for a graph of SnnFunc's own).
    let write (path: string) (g: Graph) (p: GraphParams) : unit =
        let step =
            g.Nodes
            |> List.tryPick (fun (_, n) ->
                match n with
                | Population(_, neuron) -> Neuron.dtOf neuron.Model
                | _ -> None)
            |> Option.defaultValue 1e-3

        writeWith (optionsOf (NirOptions.milliseconds step) g) path g p
