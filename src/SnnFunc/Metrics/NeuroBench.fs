/// NeuroBench metrics of graph runs, with the reference harness's definitions (the binding
/// `SnnFunc.NeuroBench`; `shared/reference/neurobench.md` has the definitions this follows).
///
/// ```
/// let acc = NeuroBench.start NeuroBench.defaults g p
/// let acc =
///     batches |> Seq.fold (fun acc (x, labels) ->
///         let r = Graph.run g p config (Map [ "x", x ])
///         let predictions = NeuroBench.argmax (Decode.maxOverTime r["out"].Membrane)
///         NeuroBench.add (NeuroBench.measureRun NeuroBench.defaults g p (Map [ "x", x ]) r
///                         |> NeuroBench.withAccuracy predictions labels) acc) acc
/// let results = NeuroBench.finish acc
/// printfn "%s" (NeuroBench.format [ results ])
/// ```
///
/// How the harness's hooks map onto a graph: each projection (Synapses node) is a connection layer,
/// called once per time step with its whole input [batch; in]; each population is a neuron module,
/// whose output is an activation (spiking populations by default, NeuroBenchOptions.Activations)
/// and whose recorded membrane [T; batch; shape] is the harness's post-call membrane (the pre-call
/// membrane of step t being the post-call one of step t - 1, as with snnTorch).
[<RequireQualifiedAccess; CompilationRepresentation(CompilationRepresentationFlags.ModuleSuffix)>]
module SnnFunc.NeuroBench

open System

/// Reference mode, the dataset size taken as the samples processed, the spiking populations as
/// activation layers, events binned by each population's Dt.
let defaults: NeuroBenchOptions =
    {
        Mode = Reference
        DatasetSize = None
        Activations = None
        EventBin = None
    }

let private fail (op: string) (message: string) : 'a =
    invalidArg "input" $"NeuroBench.%s{op}: %s{message}"

/// Footprint, parameter count and connection sparsity of a graph's parameters (§1 of the
/// reference). Footprint: every parameter tensor's elements times its dtype's size (4 bytes for
/// Float32 and Int32, 8 for Float64), plus the buffers: each sparse projection's fixed mask. A
/// graph has no state buffers between runs (its state is a value), so this is the harness's
/// fresh-model footprint. Parameter count: the elements of every parameter tensor (neuron
/// parameters included, as the harness counts snnTorch's learnable ones). Connection sparsity:
/// exact zeros among every projection's effective weights (sign applied, a sparse projection's
/// mask applied, as a pruned weight is), biases excluded, rounded to 4 decimals.
let staticMetrics (g: Graph) (p: GraphParams) : NeuroBenchStatic = NeuroBenchCounts.staticMetrics g p

/// The counts of one time-stepped batch: `inputs` the sources' tensors [T; batch...; shape] as
/// given to Graph.run, `run` its result (every population, and every transform that feeds a
/// projection, recorded). Synaptic operations (§2.3 of the reference): each projection at each
/// step is one call with input x [batch; in] — its source's tensor, its population's output, or on
/// a cycle the previous step's output (zeros at step 0, as snnTorch's recurrent layer), delayed by
/// its whole-step delays; effective ops Σ_b Σ_in Σ_out [x ≠ 0][w ≠ 0] (a convolution's through its
/// geometry), bias never counted; dense ops the same with every input and weight non-zero. Membrane
/// updates (§2.4): per population B·N at step 0 plus the neuron-steps whose membrane changed
/// afterwards. Activations (§2.1): the zeros and the elements of the activation populations' outputs.
let measureRun (options: NeuroBenchOptions) (g: Graph) (p: GraphParams) (inputs: Map<string, Tensor>) (run: RunResult) : NeuroBenchBatch =
    NeuroBenchCounts.measureRun options g p inputs run

/// The counts of one event-driven batch: `inputs` the sources' event buffers as given to
/// Events.run, `run` its result, `config` its settings (TEnd). An event-driven run has no time
/// steps, so the metrics are defined per event (events after TEnd are not counted):
/// - synaptic operations: every event of a projection's presynaptic node (input or spike) is one
///   accumulate per non-zero synapse of that neuron: effective ACs Σ_events nnz(w[i, :]), dense ops
///   Σ_events out (every synapse of the neuron), no MACs (spike events are binary in both modes);
/// - membrane updates: one per (event, postsynaptic neuron) pair joined by a non-zero weight (the
///   event moves that neuron's state), plus one per spike of the population itself (its reset);
/// - activation sparsity: the spiking activation populations' spikes on a grid of
///   NeuroBenchOptions.EventBin (or each population's Dt) over [0, TEnd]: a neuron-bin is active
///   if it holds a spike, as the time-stepped run on that grid would see it; an LI population has
///   no spikes and cannot be an activation population here.
let measureEvents
    (options: NeuroBenchOptions)
    (g: Graph)
    (p: GraphParams)
    (config: EventConfig)
    (inputs: Map<string, EventBuffer>)
    (run: EventRun)
    : NeuroBenchBatch =
    NeuroBenchCounts.measureEvents options g p config inputs run

// ---------------------------------------------------------------------------------------------
// Accuracy and aggregation

/// Adds the batch's classification result: `predictions` class indices (ChooseMaxCount, argmax of
/// a readout), `labels` the targets, one each per sample of the batch. Unequal lengths are an error
/// (the harness scores such a batch 0 silently).
let withAccuracy (predictions: int[]) (labels: int[]) (batch: NeuroBenchBatch) : NeuroBenchBatch =
    if isNull predictions || isNull labels then
        fail "withAccuracy" "predictions and labels must be given"

    if predictions.Length <> labels.Length || labels.Length <> batch.Samples then
        fail
            "withAccuracy"
            $"%d{predictions.Length} predictions and %d{labels.Length} labels for a batch of %d{batch.Samples} samples; they must agree"

    { batch with
        Correct = Some(Array.fold2 (fun n p l -> if p = l then n + 1 else n) 0 predictions labels)
    }

/// The class of each sample, as the harness's ChooseMaxCount: spikes [T; B; C] summed over time,
/// the largest count's index (ties to the lowest index).
let chooseMaxCount (spikes: Tensor) : int[] =
    if isNull spikes || spikes.Rank <> 3 then
        fail "chooseMaxCount" "spikes must be [T; batch; classes]"

    let counts = spikes.Sum(0)
    let c = spikes.Shape[2]
    let v = counts.ToDoubleArray()

    Array.init spikes.Shape[1] (fun b ->
        let mutable best = 0

        for k in 1 .. c - 1 do
            if v[b * c + k] > v[b * c + best] then
                best <- k

        best)

/// The index of each row's largest value of [B; C] scores (ties to the lowest index).
let argmax (scores: Tensor) : int[] =
    if isNull scores || scores.Rank <> 2 then
        fail "argmax" "scores must be [batch; classes]"

    chooseMaxCount (scores.Unsqueeze 0)

/// The metrics so far: the network's static metrics and the batches measured.
type Accumulator =
    {
        Options: NeuroBenchOptions
        Static: NeuroBenchStatic
        /// Most recent first.
        Batches: NeuroBenchBatch list
    }

/// Starts an accumulation: the static metrics of the network (its parameters `p`), no batch yet.
let start (options: NeuroBenchOptions) (g: Graph) (p: GraphParams) : Accumulator =
    match options.DatasetSize with
    | Some n when n < 1 -> fail "start" $"DatasetSize must be at least 1, got %d{n}"
    | _ -> ()

    {
        Options = options
        Static = staticMetrics g p
        Batches = []
    }

/// Adds one batch's counts.
let add (batch: NeuroBenchBatch) (acc: Accumulator) : Accumulator =
    if batch.Samples < 1 then
        fail "add" $"a batch must hold at least one sample, got %d{batch.Samples}"

    { acc with
        Batches = batch :: acc.Batches
    }

/// The results (§3 of the reference for the aggregation): synaptic operations and membrane
/// updates are totals divided by the samples processed (the harness's accumulated metrics);
/// accuracy and activation sparsity follow the mode (NeuroBenchMode).
let finish (acc: Accumulator) : NeuroBenchResults =
    let op = "finish"

    if acc.Batches.IsEmpty then
        fail op "no batch was added (an empty data set)"

    let batches = List.rev acc.Batches
    let samples = batches |> List.sumBy (fun b -> b.Samples)
    let n = float samples
    let sum f = batches |> List.sumBy f

    let divisor =
        match acc.Options.Mode, acc.Options.DatasetSize with
        | Reference, Some d when d < samples -> fail op $"DatasetSize is %d{d}, but %d{samples} samples were processed"
        | Reference, Some d -> float d
        | _ -> n

    let accuracy =
        match batches |> List.map (fun b -> b.Correct) with
        | all when all |> List.forall Option.isNone -> None
        | all when all |> List.exists Option.isNone -> fail op "some batches have predictions and others not (NeuroBench.withAccuracy)"
        | _ ->
            // Reference: Σ_b (correct_b / B_b) · B_b / dataset size; corrected: correct / samples.
            match acc.Options.Mode with
            | Reference ->
                Some(
                    batches
                    |> List.sumBy (fun b -> float b.Correct.Value / float b.Samples * float b.Samples)
                    |> fun s -> s / divisor
                )
            | Corrected -> Some(sum (fun b -> float b.Correct.Value) / n)

    let sparsity =
        match acc.Options.Mode with
        | Reference ->
            // Σ_b s_b · B_b / dataset size, s_b the batch's zero fraction (0 for a batch without activations).
            sum (fun b ->
                if b.Activations = 0.0 then
                    0.0
                else
                    b.ActivationZeros / b.Activations * float b.Samples)
            / divisor
        | Corrected ->
            let total = sum (fun b -> b.Activations)

            if total = 0.0 then
                0.0
            else
                sum (fun b -> b.ActivationZeros) / total

    let macs, acs =
        match acc.Options.Mode with
        | Reference -> sum (fun b -> b.BatchMACs), sum (fun b -> b.BatchACs)
        | Corrected -> sum (fun b -> b.SampleMACs), sum (fun b -> b.SampleACs)

    {
        Mode = acc.Options.Mode
        Samples = samples
        Batches = batches.Length
        Footprint = acc.Static.Footprint
        ParameterCount = acc.Static.ParameterCount
        ConnectionSparsity = acc.Static.ConnectionSparsity
        ActivationSparsity = sparsity
        SynapticOperations =
            {
                Dense = sum (fun b -> b.Dense) / n
                EffectiveMACs = macs / n
                EffectiveACs = acs / n
            }
        MembraneUpdates = sum (fun b -> b.MembraneUpdates) / n
        ClassificationAccuracy = accuracy
    }

/// start, add each batch, finish.
let evaluate (options: NeuroBenchOptions) (g: Graph) (p: GraphParams) (batches: NeuroBenchBatch seq) : NeuroBenchResults =
    batches |> Seq.fold (fun acc b -> add b acc) (start options g p) |> finish

/// The results as one readable block, a column per result (e.g. the Reference and the Corrected
/// aggregation of the same batches).
let format (results: NeuroBenchResults list) : string =
    if results.IsEmpty then
        fail "format" "no results to format"

    let rows =
        [
            "mode", (fun r -> sprintf "%A" r.Mode)
            "samples", (fun r -> string r.Samples)
            "footprint (bytes)", (fun r -> string r.Footprint)
            "parameter count", (fun r -> string r.ParameterCount)
            "connection sparsity",
            (fun r ->
                match r.ConnectionSparsity with
                | Some s -> sprintf "%.4f" s
                | None -> "n/a")
            "activation sparsity", (fun r -> sprintf "%.4f" r.ActivationSparsity)
            "synops dense / sample", (fun r -> sprintf "%.1f" r.SynapticOperations.Dense)
            "effective MACs / sample", (fun r -> sprintf "%.1f" r.SynapticOperations.EffectiveMACs)
            "effective ACs / sample", (fun r -> sprintf "%.1f" r.SynapticOperations.EffectiveACs)
            "membrane updates / sample", (fun r -> sprintf "%.1f" r.MembraneUpdates)
            "classification accuracy",
            (fun r ->
                match r.ClassificationAccuracy with
                | Some a -> sprintf "%.4f" a
                | None -> "n/a")
        ]

    let width = rows |> List.map (fst >> String.length) |> List.max

    let lines =
        rows
        |> List.map (fun (label, f) ->
            let cells = results |> List.map (fun r -> (f r).PadLeft 12)
            "  " + label.PadRight width + String.Join("", cells))

    String.Join(Environment.NewLine, "NeuroBench metrics:" :: lines)

/// The Reference and the Corrected aggregation of the same batches (the options' other settings
/// for both) as one block: what the samples print for `--neurobench`.
let report (options: NeuroBenchOptions) (g: Graph) (p: GraphParams) (batches: NeuroBenchBatch seq) : string =
    let batches = List.ofSeq batches

    format
        [
            evaluate { options with Mode = Reference } g p batches
            evaluate { options with Mode = Corrected } g p batches
        ]
