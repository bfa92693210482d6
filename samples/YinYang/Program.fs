/// Trains a spiking network on the Yin-Yang data set (Kriener et al. 2021) with surrogate gradients:
/// 5 latency-coded inputs -> 120 LIF -> 3 LI readout, max-over-time + cross-entropy, Adam.
/// Ends with the line `test_accuracy=<fraction>`.
module Program

open System
open System.Diagnostics
open Argu
open SnnFunc
open SnnFunc.Data

type Arguments =
    | Epochs of int
    | Batch_Size of int
    | Learning_Rate of float
    | Hidden of int
    | Steps of int
    | Seed of int64
    | Threads of int
    | Checkpoint of path: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Epochs _ -> "training epochs (default 30)"
            | Batch_Size _ -> "samples per batch (default 100)"
            | Learning_Rate _ -> "initial Adam learning rate, cosine-decayed (default 0.01)"
            | Hidden _ -> "hidden LIF neurons (default 120)"
            | Steps _ -> "time steps of 0.5 ms (default 60)"
            | Seed _ -> "seed of data, initialisation and shuffling (default 0)"
            | Threads _ -> "kernel threads (default: all cores)"
            | Checkpoint _ -> "save a checkpoint here after every epoch and resume from it if present"

[<EntryPoint>]
let main argv =
    let parser = ArgumentParser.Create<Arguments>(programName = "YinYang")

    let args =
        try
            parser.ParseCommandLine(argv)
        with :? ArguParseException as e ->
            eprintfn "%s" e.Message
            exit (if e.ErrorCode = ErrorCode.HelpText then 0 else 2)

    let epochs = args.GetResult(Epochs, 30)
    let batchSize = args.GetResult(Batch_Size, 100)
    let lr = args.GetResult(Learning_Rate, 0.01)
    let hidden = args.GetResult(Hidden, 120)
    let steps = args.GetResult(Steps, 60)
    let seed = args.GetResult(Seed, 0L)

    args.TryGetResult Threads
    |> Option.iter (fun n -> Kernels.Parallelism.MaxThreads <- n)

    // Data and encoding: each of (x, y, 1-x, 1-y, bias) spikes once at u · 15 ms.
    let dt, tLate = 0.5e-3, 15e-3
    let data = YinYang.splits seed
    let encode (x: Tensor) = Encode.latency steps dt tLate false x

    // Network: surrogate-gradient LIF hidden layer, leaky-integrator readout.
    let lif = { Snn.Lif.defaults with Dt = dt }
    let li = { Snn.Li.defaults with Dt = dt }

    let net =
        Layers.serial
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

    match args.TryGetResult Checkpoint with
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
        args.TryGetResult Checkpoint
        |> Option.iter (fun path -> Train.saveCheckpoint path p state (epoch + 1))

        [
            "val_accuracy", accuracy p data.Validation
            "seconds", sw.Elapsed.TotalSeconds
        ]

    Train.run start epochs batches step endEpoch
    printfn "training took %.1f s" sw.Elapsed.TotalSeconds
    printfn "test_accuracy=%.4f" (accuracy p data.Test)
    0
