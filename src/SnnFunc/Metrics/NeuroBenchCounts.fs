/// The counts behind the NeuroBench metrics: a graph's static metrics, and the synaptic operations,
/// membrane updates and activations of one time-stepped or event-driven batch (NeuroBench
/// aggregates them over a data set).
module internal SnnFunc.NeuroBenchCounts

open System

let private fail (op: string) (message: string) : 'a =
    invalidArg "input" $"NeuroBench.%s{op}: %s{message}"

// ---------------------------------------------------------------------------------------------
// Static metrics

let private effectiveWeight (op: string) (p: GraphParams) (name: string) (proj: Projection) =
    match p.TryFind name |> Option.bind (fun m -> m.TryFind "weight") with
    | Some w -> Projection.effectiveWeights proj w
    | None -> fail op $"the parameters have no weight for the projection '%s{name}'"

let private countZeros (xs: float[]) =
    xs |> Array.sumBy (fun v -> if v = 0.0 then 1L else 0L)

/// See NeuroBench.staticMetrics.
let staticMetrics (g: Graph) (p: GraphParams) : NeuroBenchStatic =
    let op = "staticMetrics"
    let nodes = Map.ofList g.Nodes

    for name in p.Keys do
        if not (nodes.ContainsKey name) then
            fail op $"the parameters have an entry '%s{name}', which is not a node of the graph"

    let leaves = p |> Seq.collect (fun kv -> kv.Value.Values) |> Array.ofSeq

    let masks =
        g.Nodes
        |> List.choose (fun (_, node) ->
            match node with
            | Synapses { Kind = Sparse mask } -> Some mask
            | _ -> None)

    let bytes (t: Tensor) = int64 t.Count * int64 t.DType.Size

    let zeros, total =
        g.Nodes
        |> List.choose (fun (name, node) ->
            match node with
            | Synapses proj ->
                let w = (effectiveWeight op p name proj).ToDoubleArray()
                Some(countZeros w, int64 w.Length)
            | _ -> None)
        |> List.fold (fun (z, t) (z', t') -> z + z', t + t') (0L, 0L)

    {
        Footprint = (leaves |> Array.sumBy bytes) + (masks |> List.sumBy bytes)
        ParameterCount = leaves |> Array.sumBy (fun t -> int64 t.Count)
        ZeroWeights = zeros
        Weights = total
        ConnectionSparsity =
            if total = 0L then
                None
            else
                Some(Math.Round(float zeros / float total, 4, MidpointRounding.ToEven))
    }

// ---------------------------------------------------------------------------------------------
// Time-stepped runs

/// A signal on the host: values [T; B; n] row-major.
type private Signal =
    {
        T: int
        B: int
        N: int
        Values: float[]
    }

let private isBinary (v: float) = v = 0.0 || v = 1.0 || v = -1.0

/// The signal a node's output carries in a run, checked against its per-sample shape.
let private signalOf (op: string) (a: GraphCheck.Analysis) (inputs: Map<string, Tensor>) (run: RunResult) (name: string) =
    let t =
        match a.Nodes[name] with
        | Source _ ->
            match inputs.TryFind name with
            | Some t when not (isNull t) -> t
            | _ -> fail op $"the inputs have no tensor for the source '%s{name}'"
        | _ ->
            match run.Observed.TryFind name with
            | Some o when not (isNull o.Output) -> o.Output
            | _ ->
                fail
                    op
                    $"the run did not record '%s{name}', whose output the metrics need; record it (RunConfig.recording) or leave Record at its default"

    let shape = a.Shapes[name]
    let rank = t.Rank

    if rank < shape.Length + 1 || t.Shape[rank - shape.Length ..] <> shape then
        fail op $"'%s{name}' has shape %s{Shape.format t.Shape}, but [T; batch...; %s{Shape.format shape}] is needed"

    let T = t.Shape[0]
    let n = Shape.count shape

    let B =
        if T = 0 then
            Shape.count t.Shape[1 .. rank - shape.Length - 1]
        else
            t.Count / (T * n)

    {
        T = T
        B = B
        N = n
        Values = t.ToDoubleArray()
    }

/// x[t - d_i] per input i (zeros before the start): a projection's delayed input.
let private delayed (delays: int -> int) (s: Signal) =
    let out = Array.zeroCreate s.Values.Length

    for t in 0 .. s.T - 1 do
        for b in 0 .. s.B - 1 do
            for i in 0 .. s.N - 1 do
                let d = delays i

                if t >= d then
                    out[(t * s.B + b) * s.N + i] <- s.Values[((t - d) * s.B + b) * s.N + i]

    { s with Values = out }

/// One convolution of x [n; C; spatial...] with the spec's geometry (no bias).
let private convolve (c: ConvSpec) (w: Tensor) (x: Tensor) = GraphRun.convolve c w None x

let private nonZero (t: Tensor) =
    t.ToDoubleArray()
    |> Array.map (fun v -> if v <> 0.0 then 1.0 else 0.0)
    |> fun a -> Tensor.FromArray(a, t.Shape)

/// Per (t, b): the effective operations of a projection's input, and its dense operations per call
/// for one sample.
let private projectionOps (op: string) (p: GraphParams) (name: string) (proj: Projection) (inShape: int[]) (x: Signal) =
    let w = effectiveWeight op p name proj

    match proj.Kind with
    | Dense
    | Sparse _ ->
        if w.Rank <> 2 || w.Shape[0] <> x.N then
            fail op $"the weight of '%s{name}' has shape %s{Shape.format w.Shape}, but its input has %d{x.N} features"

        let wv = w.ToDoubleArray()
        let outs = w.Shape[1]

        let perInput =
            Array.init x.N (fun i -> Seq.init outs (fun j -> if wv[i * outs + j] <> 0.0 then 1.0 else 0.0) |> Seq.sum)

        let ops =
            Array.init (x.T * x.B) (fun tb ->
                let mutable s = 0.0

                for i in 0 .. x.N - 1 do
                    if x.Values[tb * x.N + i] <> 0.0 then
                        s <- s + perInput[i]

                s)

        ops, float x.N * float outs
    | Conv c ->
        let wb = nonZero w
        let rows = x.T * x.B

        let ops =
            if rows = 0 then
                [||]
            else
                let xb =
                    x.Values
                    |> Array.map (fun v -> if v <> 0.0 then 1.0 else 0.0)
                    |> fun a -> Tensor.FromArray(a, Array.append [| rows |] inShape)

                let y = convolve c wb xb
                y.Reshape(rows, y.Count / rows).Sum(1).ToDoubleArray()

        let dense =
            convolve c (Tensor.OnesLike wb) (Tensor.Full(Array.append [| 1 |] inShape, 1.0, DType.Float64))
            |> fun y -> y.Sum().ToScalar()

        ops, dense

/// See NeuroBench.measureRun.
let measureRun (options: NeuroBenchOptions) (g: Graph) (p: GraphParams) (inputs: Map<string, Tensor>) (run: RunResult) : NeuroBenchBatch =
    let op = "measureRun"
    let a = GraphCheck.analyse g
    let signal = signalOf op a inputs run

    // Every signal must share T and B.
    let mutable dims: (string * int * int) option = None

    let checkDims (name: string) (s: Signal) =
        match dims with
        | None -> dims <- Some(name, s.T, s.B)
        | Some(first, t, b) when t <> s.T || b <> s.B ->
            fail op $"'%s{name}' has %d{s.T} steps of batch %d{s.B}, but '%s{first}' has %d{t} steps of batch %d{b}; they must agree"
        | Some _ -> ()

        s

    let componentOf =
        a.Components
        |> List.collect (fun c -> c |> List.map (fun n -> n, c))
        |> Map.ofList

    let mutable dense, bMac, bAc, sMac, sAc = 0.0, 0.0, 0.0, 0.0, 0.0

    for name, node in g.Nodes do
        match node with
        | Synapses proj ->
            let inShape = a.Shapes[a.Preds[name].Head]

            // The sum of the incoming signals; within a cycle a population's output arrives a step later.
            let x =
                a.Preds[name]
                |> List.map (fun q ->
                    let s = checkDims q (signal q)

                    let inCycle = a.Cyclic.Contains name && List.contains q componentOf[name]

                    match a.Nodes[q] with
                    | Population _ when inCycle -> delayed (fun _ -> 1) s
                    | _ -> s)
                |> List.reduce (fun s u ->
                    { s with
                        Values = Array.map2 (+) s.Values u.Values
                    })

            let x =
                match proj.Delay with
                | NoDelay
                | Steps 0 -> x
                | Steps d -> delayed (fun _ -> d) x
                | PerInputSteps ds -> delayed (fun i -> ds[i]) x
                | Learnable _ ->
                    fail
                        op
                        $"the projection '%s{name}' has a learnable (interpolated) delay, whose input is not measured; use whole-step delays"
                | Seconds _ -> fail op $"the projection '%s{name}' has a delay in seconds, which only event-driven runs have"

            let ops, densePerCall = projectionOps op p name proj inShape x
            dense <- dense + densePerCall * float (x.T * x.B)

            for t in 0 .. x.T - 1 do
                let mutable stepOps, stepBinary = 0.0, true

                for b in 0 .. x.B - 1 do
                    let tb = t * x.B + b
                    let mutable binary = true
                    let mutable i = 0

                    while binary && i < x.N do
                        binary <- isBinary x.Values[tb * x.N + i]
                        i <- i + 1

                    stepOps <- stepOps + ops[tb]
                    stepBinary <- stepBinary && binary

                    if binary then
                        sAc <- sAc + ops[tb]
                    else
                        sMac <- sMac + ops[tb]

                if stepBinary then
                    bAc <- bAc + stepOps
                else
                    bMac <- bMac + stepOps
        | _ -> ()

    let populations =
        g.Nodes
        |> List.choose (fun (name, node) ->
            match node with
            | Population(_, neuron) -> Some(name, neuron)
            | _ -> None)

    // Membrane updates of every population.
    let mutable updates = 0.0

    for name, _ in populations do
        let m =
            match run.Observed.TryFind name with
            | Some o when not (isNull o.Membrane) -> o.Membrane
            | _ ->
                fail op $"the run did not record the membrane of the population '%s{name}'; record every population (RunConfig.recording)"

        let s =
            checkDims name (signal name |> fun s -> { s with Values = m.ToDoubleArray() })

        if m.Shape <> (run.Observed[name].Output).Shape then
            fail
                op
                $"the membrane of '%s{name}' has shape %s{Shape.format m.Shape}, its output %s{Shape.format run.Observed[name].Output.Shape}"

        let lane = s.B * s.N

        if s.T > 0 then
            updates <- updates + float lane

        for t in 1 .. s.T - 1 do
            for k in 0 .. lane - 1 do
                if s.Values[t * lane + k] - s.Values[(t - 1) * lane + k] <> 0.0 then
                    updates <- updates + 1.0

    // Activations.
    let activationNames =
        match options.Activations with
        | Some names ->
            for n in names do
                if not (populations |> List.exists (fun (m, _) -> m = n)) then
                    fail op $"the activation population '%s{n}' is not a population of the graph"

            names
        | None ->
            populations
            |> List.filter (fun (_, n) -> Neuron.isSpiking n.Model)
            |> List.map fst

    let mutable zeros, total = 0.0, 0.0

    for n in activationNames do
        let s = checkDims n (signal n)
        zeros <- zeros + float (countZeros s.Values)
        total <- total + float s.Values.Length

    let samples =
        match dims with
        | Some(_, _, b) -> b
        | None -> fail op "the graph has no projection and no population to measure"

    {
        Samples = samples
        Dense = dense
        BatchMACs = bMac
        BatchACs = bAc
        SampleMACs = sMac
        SampleACs = sAc
        MembraneUpdates = updates
        ActivationZeros = zeros
        Activations = total
        Correct = None
    }

// ---------------------------------------------------------------------------------------------
// Event-driven runs

/// Per sample, the (neuron, time) pairs of the events held up to tEnd.
let private eventsOf (buffer: EventBuffer) (tEnd: float) =
    let cap = buffer.Capacity
    let times = buffer.Times.ToDoubleArray()
    let neurons = buffer.Neurons.ToInt32Array()
    let counts = buffer.Count.ToInt32Array()

    counts
    |> Array.mapi (fun b c ->
        [|
            for k in 0 .. c - 1 do
                if times[b * cap + k] <= tEnd then
                    neurons[b * cap + k], times[b * cap + k]
        |])

/// See NeuroBench.measureEvents.
let measureEvents
    (options: NeuroBenchOptions)
    (g: Graph)
    (p: GraphParams)
    (config: EventConfig)
    (inputs: Map<string, EventBuffer>)
    (run: EventRun)
    : NeuroBenchBatch =
    let op = "measureEvents"
    let a = GraphCheck.analyse g
    let tEnd = config.TEnd
    let mutable batch: (string * int) option = None

    let checkBatch (name: string) (perSample: 'a[]) =
        match batch with
        | None -> batch <- Some(name, perSample.Length)
        | Some(first, b) when b <> perSample.Length ->
            fail op $"'%s{name}' has a batch of %d{perSample.Length}, but '%s{first}' has %d{b}; they must agree"
        | Some _ -> ()

        perSample

    // The events a node emits, looking through identity ports.
    let rec eventsFrom (name: string) =
        match a.Nodes[name] with
        | Source _ ->
            match inputs.TryFind name with
            | Some b when not (isNull (box b)) -> checkBatch name (eventsOf b tEnd)
            | _ -> fail op $"the inputs have no event buffer for the source '%s{name}'"
        | Population _ ->
            match run.Spikes.TryFind name with
            | Some b -> checkBatch name (eventsOf b tEnd)
            | None -> fail op $"the run has no spikes of '%s{name}', which feeds a projection"
        | Op(Identity, _) ->
            match a.Preds[name] with
            | [ q ] -> eventsFrom q
            | _ -> fail op $"the port '%s{name}' must have exactly one input"
        | _ -> fail op $"'%s{name}' is not a source, population or identity port"

    let mutable dense, acs = 0.0, 0.0
    let received = Collections.Generic.Dictionary<string, float>()

    for name, node in g.Nodes do
        match node with
        | Synapses proj ->
            let w = effectiveWeight op p name proj

            if w.Rank <> 2 then
                fail op $"the weight of '%s{name}' has shape %s{Shape.format w.Shape}; event-driven runs have [in; out] weights"

            let wv = w.ToDoubleArray()
            let ins, outs = w.Shape[0], w.Shape[1]

            let perInput =
                Array.init ins (fun i -> Seq.init outs (fun j -> if wv[i * outs + j] <> 0.0 then 1.0 else 0.0) |> Seq.sum)

            let mutable ops, events = 0.0, 0.0

            for q in a.Preds[name] do
                for sample in eventsFrom q do
                    for i, _ in sample do
                        if i < 0 || i >= ins then
                            fail op $"an event of '%s{q}' names neuron %d{i}, but '%s{name}' has %d{ins} inputs"

                        ops <- ops + perInput[i]
                        events <- events + 1.0

            dense <- dense + events * float outs
            acs <- acs + ops

            for target in a.Succs[name] do
                received[target] <-
                    (match received.TryGetValue target with
                     | true, v -> v
                     | _ -> 0.0)
                    + ops
        | _ -> ()

    let populations =
        g.Nodes
        |> List.choose (fun (name, node) ->
            match node with
            | Population(shape, neuron) -> Some(name, (shape, neuron))
            | _ -> None)
        |> Map.ofList

    let mutable updates =
        received
        |> Seq.filter (fun kv -> populations.ContainsKey kv.Key)
        |> Seq.sumBy (fun kv -> kv.Value)

    for KeyValue(name, buffer) in run.Spikes do
        if populations.ContainsKey name then
            updates <-
                updates
                + (checkBatch name (eventsOf buffer tEnd) |> Array.sumBy (fun s -> float s.Length))

    let activationNames =
        match options.Activations with
        | Some names ->
            for n in names do
                if not (populations.ContainsKey n) then
                    fail op $"the activation population '%s{n}' is not a population of the graph"

                if not (run.Spikes.ContainsKey n) then
                    fail op $"the activation population '%s{n}' has no spikes in an event-driven run (an LI readout)"

            names
        | None ->
            populations
            |> Map.toList
            |> List.filter (fun (n, _) -> run.Spikes.ContainsKey n)
            |> List.map fst

    let mutable zeros, total = 0.0, 0.0

    for n in activationNames do
        let shape, neuron = populations[n]

        let bin =
            match options.EventBin, Neuron.dtOf neuron.Model with
            | Some b, _ -> b
            | None, Some dt -> dt
            | None, None -> fail op $"the population '%s{n}' has no Dt: give NeuroBenchOptions.EventBin"

        if not (bin > 0.0) || Double.IsInfinity bin then
            fail op $"the event bin must be positive and finite, got %g{bin}"

        let bins = int (Math.Ceiling(tEnd / bin - 1e-9))
        let cells = float (Shape.count shape) * float bins

        for sample in checkBatch n (eventsOf run.Spikes[n] tEnd) do
            let active =
                sample
                |> Array.map (fun (i, t) -> i, min (bins - 1) (int (Math.Floor(t / bin))))
                |> Array.distinct
                |> Array.length

            zeros <- zeros + cells - float active
            total <- total + cells

    let samples =
        match batch with
        | Some(_, b) -> b
        | None -> fail op "the graph has no projection and no spiking population to measure"

    {
        Samples = samples
        Dense = dense
        BatchMACs = 0.0
        BatchACs = acs
        SampleMACs = 0.0
        SampleACs = acs
        MembraneUpdates = updates
        ActivationZeros = zeros
        Activations = total
        Correct = None
    }
