/// `--backend bss2`: the Yin-Yang network trained with the BrainScaleS-2 emulator in the loop. The
/// chip runs graphs, so the network is Program.fs's as a Graph, with each of the 5 inputs sent
/// on 5 synapse rows (as jaxsnn's BrainScaleS-2 Yin-Yang does, bss2.md 4): 25 6-bit weights per
/// neuron resolve the input drive √5 times finer than 5 would. Each batch runs on the emulated
/// chip with fresh trial noise and the gradient is the software model's surrogate BPTT along the
/// chip's trajectory (Hil.runWith: the readout's CADC membrane and the hidden layer's spikes
/// replace the model's).
module YinYangOnChip

open System.Diagnostics
open SnnFunc
open SnnFunc.Backends
open SnnFunc.Data

/// Trains on the chip of `o.Chip` and returns the test accuracy measured on it.
let train (o: YinYangOptions.Settings) (data: TrainValidationTest) (latency: Tensor -> Tensor) (lif: Snn.Lif.Spec) (li: Snn.Li.Spec) =
    let repeat = 5

    let encode (x: Tensor) =
        Tensor.Concat(Array.create repeat (latency x), 2)

    let net =
        Graph.empty
        |> Graph.input "x" (5 * repeat)
        |> Graph.population "hidden" o.Hidden (Neuron.lif lif)
        |> Graph.population "out" YinYang.classes (Neuron.li li)
        |> Graph.connect "x" "hidden" (Projection.dense (Init.normalWith 6.0))
        |> Graph.connect "hidden" "out" (Projection.dense (Init.normalWith 2.0))

    // Input weights N(0, 6² / 25) reach about ±3: scale 20 keeps them within ±63 (a 0.05 step);
    // readout weights N(0, 2² / 120) take scale 32. The readout's membrane is read with trace
    // scale 4: [-4.6, 10] model units in the CADC's range.
    let chip =
        Chips.emulator o.Chip (fun c ->
            { c with
                WeightScale = o.Chip.WeightScale |> Option.defaultValue 32.0
                WeightScales = Map [ "x->hidden", 20.0 ]
                TraceScales = Map [ "out", 4.0 ]
            })

    printfn "emulated BrainScaleS-2 chip %d (%s)" o.Chip.ChipSeed chip.Trim.Description
    let rc = RunConfig.steps o.Steps lif.Dt
    let initKey, shuffleKey = Random.split (Random.key o.Seed)
    let isNeuron name = name = "hidden" || name = "out"

    let neurons, parameters =
        Graph.init initKey net |> Map.partition (fun name _ -> isNeuron name)

    let withNeurons (w: GraphParams) =
        Map.fold (fun acc k v -> Map.add k v acc) neurons w

    let batches = Batching.batchCount o.BatchSize true data.Train.Count

    let tx =
        Optim.adamWith (Optim.cosineDecay o.LearningRate (o.Epochs * batches) 0.05) 0.9 0.999 1e-8

    let onChip (trial: int) (p: GraphParams) (spikes: Tensor) =
        (Chips.trial chip o.Seed trial).Run(net, withNeurons p, Map [ "x", spikes ], rc)

    let logits (r: RunResult) = Decode.maxOverTime r["out"].Membrane

    /// Accuracy on the chip, and its hardware-time account.
    let accuracy (trial: int) p (d: Dataset) =
        let r = onChip trial p (encode d.X)
        Loss.accuracy (logits r.Dense) d.Labels, r.Account.Value

    let mutable p = parameters
    let mutable state = Optim.init tx parameters
    let sw = Stopwatch.StartNew()
    let mutable epochBatches: (Tensor * int[])[] = [||]

    let step epoch b =
        if b = 0 then
            epochBatches <-
                Batching.batchesDropLast (Random.foldIn shuffleKey epoch) o.BatchSize data.Train
                |> Array.ofSeq

        let x, labels = epochBatches[b]
        let spikes = encode x
        let observed = onChip (epoch * batches + b) p spikes

        let l, g =
            Ad.valueAndGrad
                (fun p ->
                    let r =
                        Hil.runWith ((=) "out") net (withNeurons p) rc (Map [ "x", spikes ]) observed

                    Loss.crossEntropy (logits r) labels)
                p

        let u, s = Optim.update tx g state p
        p <- Optim.applyUpdates p u
        state <- s
        [ "loss", l.ToScalar() ]

    let endEpoch epoch _ =
        [
            "val_accuracy", fst (accuracy (-1 - epoch) p data.Validation)
            "seconds", sw.Elapsed.TotalSeconds
        ]

    let history = Train.runWithHistory 0 o.Epochs batches step endEpoch
    printfn "training took %.1f s" sw.Elapsed.TotalSeconds
    let test, account = accuracy -1_000_000 p data.Test
    Chips.printAccount "test set" account

    // --plots: the curves, the chip's fixed-pattern spread before and after its trim, and the
    // hidden spikes and readout membrane (CADC) of 8 test samples as the chip ran them.
    o.Plots
    |> Option.iter (fun dir ->
        SamplePlots.curves "Yin-Yang on the emulated chip" dir history

        Plot.fixedPatternSpread chip.Chip Chip.untrimmed chip.Trim
        |> Plot.withTitle $"emulated chip %d{o.Chip.ChipSeed}: fixed-pattern deviations of its circuits, untrimmed and as run"
        |> SamplePlots.write dir "fixed-pattern-spread.png"

        let r = onChip -2_000_000 p (encode (Tensor.narrow 0 0 8 data.Test.X))

        Plot.raster lif.Dt r.Dense["hidden"].Spikes
        |> Plot.withTitle "Yin-Yang on the chip: hidden spikes of test sample 0"
        |> SamplePlots.write dir "raster.png"

        Plot.tracesOf 0 [ 0..2 ] lif.Dt None r.Dense["out"].Membrane
        |> Plot.withTitle "Yin-Yang on the chip: readout membranes (CADC) of test sample 0"
        |> SamplePlots.write dir "traces.png")

    test
