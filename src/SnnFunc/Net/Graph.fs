/// Building, initialising and running graphs (the binding `SnnFunc.Graph`).
///
/// ```
/// let g =
///     Graph.empty
///     |> Graph.input "x" 5
///     |> Graph.population "hidden" 100 (Neuron.lif Snn.Lif.defaults)
///     |> Graph.population "out" 3 (Neuron.li Snn.Li.defaults)
///     |> Graph.connect "x" "hidden" (Projection.dense Init.normal)
///     |> Graph.connect "hidden" "out" (Projection.dense Init.normal)
/// let p = Graph.init (Random.key 0L) g          // p["hidden"]["tauMem"], p["x->hidden"]["weight"]
/// let r = Graph.run g p (RunConfig.steps 60 1e-3) (Map [ "x", spikes ])   // r["out"].Membrane
/// ```
[<RequireQualifiedAccess; CompilationRepresentation(CompilationRepresentationFlags.ModuleSuffix)>]
module SnnFunc.Graph

open System
open SnnFunc.RandomBits

/// A graph without nodes.
let empty: Graph =
    {
        Nodes = []
        Edges = []
        Notes = Map.empty
    }

let private checkName (op: string) (g: Graph) (name: string) =
    if String.IsNullOrWhiteSpace name then
        invalidArg "name" $"%s{op}: the node name is empty"

    if g.Nodes |> List.exists (fun (n, _) -> n = name) then
        invalidArg "name" $"%s{op}: a node named '%s{name}' already exists"

let private checkShape (op: string) (shape: int[]) =
    if isNull shape || shape.Length = 0 || shape |> Array.exists (fun d -> d <= 0) then
        invalidArg "shape" $"%s{op}: the shape must have positive dimensions, got %s{Shape.format (if isNull shape then [||] else shape)}"

/// Adds a node (any kind) under a fresh name.
let addNode (name: string) (node: Node) (g: Graph) : Graph =
    checkName "Graph.addNode" g name

    { g with
        Nodes = g.Nodes @ [ name, node ]
    }

/// Adds a directed edge between existing nodes.
let edge (source: string) (target: string) (g: Graph) : Graph =
    for n in [ source; target ] do
        if not (g.Nodes |> List.exists (fun (m, _) -> m = n)) then
            invalidArg "source" $"Graph.edge: no node named '%s{n}' (for the edge '%s{source}' -> '%s{target}')"

    { g with
        Edges = g.Edges @ [ source, target ]
    }

/// A source of `size` features.
let input (name: string) (size: int) (g: Graph) : Graph =
    checkShape "Graph.input" [| size |]
    addNode name (Source [| size |]) g

/// A source of the given feature shape (e.g. [channels; height; width]).
let inputShaped (name: string) (shape: int[]) (g: Graph) : Graph =
    checkShape "Graph.inputShaped" shape
    addNode name (Source(Array.copy shape)) g

/// A population of `size` neurons.
let population (name: string) (size: int) (neuron: Neuron) (g: Graph) : Graph =
    checkShape "Graph.population" [| size |]
    addNode name (Population([| size |], neuron)) g

/// A population of neurons of the given shape.
let populationShaped (name: string) (shape: int[]) (neuron: Neuron) (g: Graph) : Graph =
    checkShape "Graph.populationShaped" shape
    addNode name (Population(Array.copy shape, neuron)) g

/// Connects `source` to `target` through a projection node named `name`.
let connectNamed (name: string) (source: string) (target: string) (projection: Projection) (g: Graph) : Graph =
    g |> addNode name (Synapses projection) |> edge source name |> edge name target

/// Connects `source` to `target` through a projection node named "source->target" (its
/// parameters are p["source->target"]). A population may connect to itself (recurrence).
let connect (source: string) (target: string) (projection: Projection) (g: Graph) : Graph =
    connectNamed $"%s{source}->%s{target}" source target projection g

/// A transform node (scale, threshold, flatten, per-neuron delay, or an identity port).
let transform (name: string) (t: Transform) (g: Graph) : Graph = addNode name (Op(t, None)) g

/// Attaches a note to a node ("" for the graph); other layers (NIR) keep their metadata there.
let note (name: string) (value: obj) (g: Graph) : Graph =
    { g with
        Notes = Map.add name value g.Notes
    }

/// Checks the graph (names, edges, shapes, cycles) and raises with the node at fault.
let validate (g: Graph) : Graph =
    GraphCheck.analyse g |> ignore
    g

/// The per-sample shape of a node's output.
let shapeOf (g: Graph) (name: string) : int[] =
    match (GraphCheck.analyse g).Shapes.TryFind name with
    | Some s -> Array.copy s
    | None -> invalidArg "name" $"Graph.shapeOf: no node named '%s{name}'"

/// Initial parameters of every node in `dtype`: neuron parameters (the spec's values, or per-neuron
/// draws where Neuron.withInit asks), weights [in; out] (convolutions [out; in / groups; kernel...])
/// and biases from the projections'
/// initialisers, learnable delays at their initial values. Each node draws from its own key, folded
/// in from `key` by the node's position, so adding a node does not change the others' draws.
let initAs (dtype: DType) (key: Key) (g: Graph) : GraphParams =
    let a = GraphCheck.analyse g

    g.Nodes
    |> List.mapi (fun k (name, node) ->
        let nodeKey = Random.foldIn key k

        match node with
        | Source _ -> None
        | Population(shape, neuron) -> Some(name, GraphRun.initPopulation nodeKey dtype name shape neuron)
        | Synapses proj ->
            let inputs = Shape.count a.Shapes[a.Preds[name].Head]
            let outputs = Shape.count a.Shapes[name]
            let kw, kb = Random.split nodeKey

            // Conv weights [out; in / groups; kernel...] with that fan-in; biases per out channel.
            let weightShape, fanIn, biasShape =
                match proj.Kind with
                | Conv c ->
                    let perGroup = a.Shapes[a.Preds[name].Head][0] / c.Groups
                    let shape = Array.append [| c.OutChannels; perGroup |] c.Kernel
                    shape, Shape.count shape[1..], [| c.OutChannels |]
                | Dense
                | Sparse _ -> [| inputs; outputs |], inputs, [| outputs |]

            let entries =
                [
                    "weight", proj.Weight.Draw kw weightShape fanIn dtype
                    match proj.Bias with
                    | Some b -> "bias", b.Draw kb biasShape fanIn dtype
                    | None -> ()
                    match proj.Delay with
                    | Learnable(initial, _, perInput) -> "delay", Tensor.Full((if perInput then [| inputs |] else [||]), initial, dtype)
                    | Seconds(init, axes) ->
                        let shape =
                            match axes with
                            | PerProjection -> [||]
                            | PerInput -> [| inputs |]
                            | PerSynapse -> [| inputs; outputs |]

                        "delay", init.Draw (Random.foldIn kb 1) shape 1 dtype
                    | _ -> ()
                ]

            Some(name, Map entries)
        | Op(t, _) ->
            let m = GraphRun.initTransform nodeKey dtype a.Shapes[name] t
            if m.IsEmpty then None else Some(name, m))
    |> List.choose id
    |> Map.ofList

/// initAs Float32.
let init (key: Key) (g: Graph) : GraphParams = initAs Float32 key g

/// Runs the graph time-stepped: `inputs` by source name, each [T; batch...; feature shape] with
/// T = config.Steps. Nodes outside cycles run over the whole time axis at once (fused kernels for
/// LIF and LI populations); each cycle runs as one scan in which a population's output reaches the
/// nodes it feeds within the cycle one step later. Returns the recorded nodes' observables and the
/// final state, from which a later run continues (RunConfig.from).
let run (g: Graph) (p: GraphParams) (config: RunConfig) (inputs: Map<string, Tensor>) : RunResult =
    GraphRun.run (GraphCheck.analyse g) p config inputs

/// Runs the graph time-stepped for inference: the same observables and final state as `run`, for
/// the nodes RunConfig.Record names (record only what is needed: e.g. the readout), with no
/// gradients. A feed-forward graph of dense or masked projections without delays into LIF (no
/// refractory period) and LI populations, with concrete values and no initial state, runs one
/// step of the whole graph at a time per sample, its state in the cache and nothing of size
/// [T; B; N] made but the recorded observables — several times faster than `run` there; its
/// numbers equal `run`'s where that takes its sparse spike products, and agree to rounding where
/// it multiplies densely. Any other graph, and values traced by a transform, run `run`.
let infer (g: Graph) (p: GraphParams) (config: RunConfig) (inputs: Map<string, Tensor>) : RunResult =
    GraphInfer.infer (GraphCheck.analyse g) p config inputs
