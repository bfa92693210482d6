/// Trains a spiking network on the Yin-Yang data set (Kriener et al. 2021) with surrogate gradients:
/// 5 latency-coded inputs -> 120 LIF -> 3 LI readout, max-over-time + cross-entropy, Adam.
/// Ends with the line `test_accuracy=<fraction>`. With --export-nir the trained network is also
/// written as a NIR file (and read back, to show the same accuracy); --import-nir evaluates one.
module Program

open System
open System.Diagnostics
open SnnFunc
open SnnFunc.Data

[<EntryPoint>]
let main argv =
    let o =
        match YinYangOptions.parse argv with
        | Ok o -> o
        | Error(code, message) ->
            eprintfn "%s" message
            exit code

    let epochs, batchSize, lr, hidden, steps, seed =
        o.Epochs, o.BatchSize, o.LearningRate, o.Hidden, o.Steps, o.Seed

    o.Threads |> Option.iter (fun n -> Kernels.Parallelism.MaxThreads <- n)

    // Data and encoding: each of (x, y, 1-x, 1-y, bias) spikes once at u · 15 ms.
    let dt, tLate = 0.5e-3, 15e-3
    let data = YinYang.splits seed
    let encode (x: Tensor) = Encode.latency steps dt tLate false x

    let importedAccuracy (path: string) =
        let net = YinYangNir.import path
        Nir.warnings net.Graph |> List.iter (eprintfn "%s: %s" path)

        if abs (net.Dt - dt) > 1e-9 * dt then
            eprintfn "%s: the network steps by %g ms, the encoding by %g ms" path (net.Dt * 1e3) (dt * 1e3)

        Loss.accuracy (YinYangNir.logits net (encode data.Test.X)) data.Test.Labels

    match o.ImportNir with
    | Some path ->
        printfn "Yin-Yang: evaluating the network of %s on %d test samples, %d steps" path data.Test.Count steps
        printfn "test_accuracy=%.4f" (importedAccuracy path)
        exit 0
    | None -> ()

    // Network: surrogate-gradient LIF hidden layer, leaky-integrator readout.
    let lif = { Snn.Lif.defaults with Dt = dt }
    let li = { Snn.Li.defaults with Dt = dt }

    if o.Chip.Backend = Chips.Bss2 then
        printfn "Yin-Yang on the emulated chip: 5-%d-3 LIF network, %d steps of %g ms" hidden steps (dt * 1e3)
        printfn "test_accuracy=%.4f" (YinYangOnChip.train o data encode lif li)
        exit 0

    let layers =
        [
            Layers.denseWith
                { Layers.denseDefaults with
                    Scale = 6.0
                }
                hidden
            Layers.lif lif
            Layers.denseWith
                { Layers.denseDefaults with
                    Scale = 2.0
                }
                YinYang.classes
            Layers.li li
        ]

    let net = Layers.serial layers

    let initKey, shuffleKey = Random.split (Random.key seed)
    let parameters, _ = Layer.init net initKey [| 5 |]
    let batches = Batching.batchCount batchSize true data.Train.Count

    let tx =
        Optim.adamWith (Optim.cosineDecay lr (epochs * batches) 0.05) 0.9 0.999 1e-8

    let logits p (x: Tensor) =
        Layer.apply net p (encode x) |> Decode.maxOverTime

    let loss (labels: int[]) (x: Tensor) p = Loss.crossEntropy (logits p x) labels
    let accuracy p (d: Dataset) = Loss.accuracy (logits p d.X) d.Labels

    // Resume from a checkpoint when one exists: training continues exactly where it stopped.
    let mutable p = parameters
    let mutable state = Optim.init tx parameters
    let mutable start = 0

    match o.Checkpoint with
    | Some path when IO.File.Exists path ->
        let p', s', e = Train.loadCheckpoint path p state
        p <- p'
        state <- s'
        start <- e
        printfn "resumed from %s after epoch %d" path e
    | _ -> ()

    printfn
        "Yin-Yang: train %d, validation %d, test %d; 5-%d-3 LIF network, %d steps of %g ms"
        data.Train.Count
        data.Validation.Count
        data.Test.Count
        hidden
        steps
        (dt * 1e3)

    let sw = Stopwatch.StartNew()
    let mutable epochBatches: (Tensor * int[])[] = [||]

    let step epoch b =
        if b = 0 then
            epochBatches <-
                Batching.batchesDropLast (Random.foldIn shuffleKey epoch) batchSize data.Train
                |> Array.ofSeq

        let x, labels = epochBatches[b]
        let l, g = Ad.valueAndGrad (loss labels x) p
        let u, s = Optim.update tx g state p
        p <- Optim.applyUpdates p u
        state <- s
        [ "loss", l.ToScalar() ]

    let endEpoch epoch _ =
        o.Checkpoint
        |> Option.iter (fun path -> Train.saveCheckpoint path p state (epoch + 1))

        [
            "val_accuracy", accuracy p data.Validation
            "seconds", sw.Elapsed.TotalSeconds
        ]

    let history = Train.runWithHistory start epochs batches step endEpoch
    printfn "training took %.1f s" sw.Elapsed.TotalSeconds
    let testAccuracy = accuracy p data.Test

    // --plots: the curves, the hidden layer's spikes and the readout's membrane for 8 test samples
    // (the hidden spikes from the chain's first two layers with their parameters).
    o.Plots
    |> Option.iter (fun dir ->
        SamplePlots.curves "Yin-Yang" dir history
        let x = Tensor.narrow 0 0 8 data.Test.X
        let spikes = encode x

        match p with
        | Children ps ->
            let z =
                Layer.apply (Layers.serial (List.take 2 layers)) (Children(List.take 2 ps)) spikes

            let label = data.Test.Labels[0]

            Plot.raster dt z
            |> Plot.withTitle $"Yin-Yang: hidden spikes of test sample 0 (class %d{label})"
            |> SamplePlots.write dir "raster.png"

            Plot.tracesOf 0 [ 0..2 ] dt None (Layer.apply net p spikes)
            |> Plot.withTitle $"Yin-Yang: readout membranes of test sample 0 (class %d{label})"
            |> SamplePlots.write dir "traces.png"
        | _ -> ())

    o.ExportNir
    |> Option.iter (fun path ->
        YinYangNir.export path lif li p
        printfn "wrote %s; read back, its test_accuracy=%.4f" path (importedAccuracy path))

    // --neurobench: the trained chain as a graph (as NIR export sees it), measured over the test set.
    if o.NeuroBench then
        let g, gp = YinYangNir.graphOf lif li p
        let config = RunConfig.steps steps dt

        let measured =
            Batching.inOrder batchSize data.Test
            |> Seq.map (fun (x, labels) ->
                let inputs = Map [ "x", encode x ]
                let r = Graph.run g gp config inputs

                NeuroBench.measureRun NeuroBench.defaults g gp inputs r
                |> NeuroBench.withAccuracy (NeuroBench.argmax (Decode.maxOverTime r["out"].Membrane)) labels)
            |> List.ofSeq

        let options =
            { NeuroBench.defaults with
                DatasetSize = Some data.Test.Count
            }

        printfn "%s" (NeuroBench.report options g gp measured)

    printfn "test_accuracy=%.4f" testAccuracy
    0
