/// The DelayedXor network as a Graph and its training: 2K inputs -> (learnable per-input delays) ->
/// H recurrent LIF neurons with learnable membrane time constants -> 2 LI readout neurons, whose
/// maxima over the response window are the logits of "match" and "differ".
module DelayedXorNet

open System.Diagnostics
open DelayedXorOptions
open DelayedXorTask
open SnnFunc

/// The network of a sample's settings: `--no-recurrence` leaves out the edge h -> h, `--no-delays`
/// the input delays (the projection x -> h then has no "delay" parameter: delays fixed at 0).
let graph (s: Settings) : Graph =
    let l = layoutOf s
    let lif = { Snn.Lif.defaults with Dt = dt }
    let li = { Snn.Li.defaults with Dt = dt }

    // Membrane time constants differ per neuron, drawn in [5, 20] ms and then learned.
    let hidden = Neuron.lif lif |> Neuron.withInit "tauMem" (Init.uniform 5e-3 20e-3)
    let input = Projection.dense (Init.normalWith 8.0)

    let input =
        if s.Delays then
            // Per input neuron, up to the whole trial (initial values: see `init`).
            input |> Projection.learnableDelay 0.0 (steps l) true
        else
            input

    Graph.empty
    |> Graph.input "x" (inputs l)
    |> Graph.population "h" s.Hidden hidden
    |> Graph.population "out" 2 (Neuron.li li)
    |> Graph.connect "x" "h" input
    |> (if s.Recurrence then
            Graph.connect "h" "h" (Projection.dense (Init.normalWith 1.0))
        else
            id)
    |> Graph.connect "h" "out" (Projection.dense (Init.normalWith 2.0))

/// Whether a parameter learns: every weight, the input delays and the hidden time constants (unless
/// their learning rate is 0). The other neuron parameters (thresholds, synaptic time constants, the
/// readout's) stay at the spec's values and are not differentiated.
let learns (s: Settings) (node: string) (name: string) =
    name = "weight"
    || (name = "delay" && s.DelayLearningRate > 0.0)
    || (node = "h" && name = "tauMem" && s.TauLearningRate > 0.0)

/// A graph's parameters split into (learned, fixed), both GraphParams.
let split (s: Settings) (p: GraphParams) : GraphParams * GraphParams =
    let part (keep: string -> string -> bool) =
        p
        |> Map.map (fun node m -> m |> Map.filter (fun name _ -> keep node name))
        |> Map.filter (fun _ m -> not m.IsEmpty)

    part (learns s), part (fun node name -> not (learns s node name))

/// Learned and fixed parameters together again.
let merge (learned: GraphParams) (fixedPart: GraphParams) : GraphParams =
    Map.fold
        (fun acc node m ->
            let old = acc |> Map.tryFind node |> Option.defaultValue Map.empty
            Map.add node (Map.fold (fun a k v -> Map.add k v a) old m) acc)
        fixedPart
        learned

/// Initial parameters. The input delays start spread uniformly over [0, T] steps (Graph.init gives
/// them one initial value): the gradient of a delay only sees a spike's neighbouring steps, so
/// delays learn to fine-tune, and a spread start lets every cue reach the hidden neurons at many
/// times from the first epoch on.
let init (s: Settings) (key: RandomBits.Key) : GraphParams =
    let g = graph s
    let kGraph, kDelay = Random.split key
    let p = Graph.init kGraph g

    if s.Delays then
        let l = layoutOf s
        let d = Random.uniformRange kDelay 0.0 (float (steps l)) [| inputs l |]
        p |> Map.add "x->h" (p["x->h"] |> Map.add "delay" d)
    else
        p

/// The keys of initialisation and of shuffling, from the seed (the data use keys of their own).
let keys (s: Settings) =
    Random.split (Random.foldIn (Random.key s.Seed) 2)

/// The initial parameters training starts from.
let initial (s: Settings) = init s (fst (keys s))

/// The optimizer of the learned parameters, each group labelled by its key path (KeyPath.toName:
/// "h/tauMem", "x-%3Eh/delay", "x-%3Eh/weight" ...): Adam with a cosine-decayed rate for the weights,
/// Adam with rates of their own for the time constants (seconds) and the delays (steps).
let optimizer (s: Settings) (totalSteps: int) =
    let label (path: KeyPath) =
        match KeyPath.toName path with
        | "h/tauMem" -> "tau"
        | name when name.EndsWith "/delay" -> "delay"
        | _ -> "weights"

    Optim.multiTransform
        label
        (Map
            [
                "weights", Optim.adamWith (Optim.cosineDecay s.LearningRate totalSteps 0.05) 0.9 0.999 1e-8
                "tau", Optim.adam s.TauLearningRate
                "delay", Optim.adam s.DelayLearningRate
            ])

/// What one run of the network gives: the logits [B; 2] (the readout's maxima over the response
/// window) and the hidden spikes [T; B; H].
let forward (s: Settings) (g: Graph) (p: GraphParams) (x: Tensor) =
    let l = layoutOf s
    let r = Graph.run g p (RunConfig.steps (steps l) dt) (Map [ "x", x ])
    let window = r["out"].Membrane.Narrow(0, windowStart l, l.Window)
    Decode.maxOverTime window, r["h"].Spikes

/// The training loss: cross-entropy of the logits, and a mild penalty on hidden neurons that fire
/// more than 5 times per trial (it keeps the recurrent activity from running away).
let loss (s: Settings) (g: Graph) (fixedPart: GraphParams) (labels: int[]) (x: Tensor) (learned: GraphParams) =
    let logits, z = forward s g (merge learned fixedPart) x
    Loss.crossEntropy logits labels + Loss.firingRateAbove 5.0 z * 1e-3, logits

/// Accuracy and hidden spikes per trial over a set of trials, in chunks of 512.
let evaluate (s: Settings) (g: Graph) (p: GraphParams) (d: Trials) =
    let mutable correct, spikes = 0.0, 0.0

    for start in 0..512 .. d.Count - 1 do
        let x, labels = batch d [| start .. min d.Count (start + 512) - 1 |]
        let logits, z = forward s g p x
        correct <- correct + Loss.accuracy logits labels * float labels.Length
        spikes <- spikes + z.Sum().ToScalar()

    correct / float d.Count, spikes / float d.Count

/// What training gives.
type Outcome =
    {
        /// Mean training loss of each epoch run (after a resume, of the epochs run since).
        Losses: float list
        /// Test accuracy after each epoch run.
        Accuracies: float list
        TestAccuracy: float
        HiddenSpikes: float
        Parameters: GraphParams
        Seconds: float
        /// Train.runWithHistory's per-epoch metrics (for --plots).
        History: (int * Metric list) list
    }

/// Trains the network of `s` on its trials (Adam, per-epoch lines through Train.run) and evaluates
/// it on the test trials; resumes from and saves to s.Checkpoint when given.
let train (s: Settings) (train: Trials) (test: Trials) (log: string -> unit) : Outcome =
    let g = graph s
    let shuffleKey = snd (keys s)
    let learned0, fixedPart = split s (initial s)
    let batches = train.Count / s.BatchSize
    let tx = optimizer s (s.Epochs * batches)
    let mutable p = learned0
    let mutable state = Optim.init tx p
    let mutable start = 0

    match s.Checkpoint with
    | Some path when System.IO.File.Exists path ->
        let p', s', e = Train.loadCheckpoint path p state
        p <- p'
        state <- s'
        start <- e
        log $"resumed from %s{path} after epoch %d{e}"
    | _ -> ()

    let losses, accuracies = ResizeArray(), ResizeArray()
    let sw = Stopwatch.StartNew()
    let mutable order: int[] = [||]

    let step epoch b =
        if b = 0 then
            // A fresh order of the training trials every epoch.
            let u =
                (Random.uniformAs Float64 (Random.foldIn shuffleKey epoch) [| train.Count |]).ToDoubleArray()

            order <- Array.init train.Count id |> Array.sortBy (fun i -> u[i])

        let x, labels = batch train order[b * s.BatchSize .. (b + 1) * s.BatchSize - 1]

        let (l, logits), grads = Ad.valueAndGradAux (loss s g fixedPart labels x) p

        let u, st = Optim.update tx grads state p
        p <- Optim.applyUpdates p u
        state <- st
        [ "loss", l.ToScalar(); "train_acc", Loss.accuracy logits labels ]

    let endEpoch epoch (averages: Metric list) =
        s.Checkpoint
        |> Option.iter (fun path -> Train.saveCheckpoint path p state (epoch + 1))

        let acc, spikes = evaluate s g (merge p fixedPart) test
        losses.Add(averages |> List.find (fst >> (=) "loss") |> snd)
        accuracies.Add acc
        [ "test_acc", acc; "hidden_spikes", spikes; "seconds", sw.Elapsed.TotalSeconds ]

    let history =
        if start < s.Epochs then
            Train.runWithHistory start s.Epochs batches step endEpoch
        else
            []

    let seconds = sw.Elapsed.TotalSeconds
    let full = merge p fixedPart
    let acc, spikes = evaluate s g full test

    {
        Losses = List.ofSeq losses
        Accuracies = List.ofSeq accuracies
        TestAccuracy = acc
        HiddenSpikes = spikes
        Parameters = full
        Seconds = seconds
        History = history
    }
