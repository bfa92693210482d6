(**
---
title: First network and training
category: Tutorials
categoryindex: 1
index: 1
---
*)
(*** condition: prepare ***)
#r "../src/SnnFunc/bin/Release/net10.0/SnnFunc.dll"
#r "../src/SnnFunc.Plots/bin/Release/net10.0/ScottPlot.dll"
#r "../src/SnnFunc.Plots/bin/Release/net10.0/SnnFunc.Plots.dll"
(*** condition: fsx ***)
#if FSX
#r "nuget: SnnFunc"
#r "nuget: SnnFunc.Plots"
#endif
(**
# First network and training

This tutorial trains a small spiking network on the Yin-Yang data set (Kriener et al.): points in a square,
classified into yin, yang and dot. Each of the five inputs (x, y, 1 − x, 1 − y and a bias) spikes once, at a
time proportional to its value (a latency code); 120 leaky integrate-and-fire (LIF) neurons feed 3 leaky
integrators (LI), and the class is the LI neuron whose membrane reaches the highest value. The spike's
derivative, zero almost everywhere, is replaced by a surrogate (SuperSpike's fast sigmoid), so the network
trains by gradient descent through time.

The data set, the coding and the network:
*)
open SnnFunc
open SnnFunc.Data

let steps, dt = 60, 0.5e-3 // 60 steps of 0.5 ms
let data = YinYang.splits 0L // 5000 / 1000 / 1000 samples, seed 0
let encode x = Encode.latency steps dt 15e-3 false x // a spike at u · 15 ms per input

let hiddenLayers =
    [
        Layers.denseWith
            { Layers.denseDefaults with
                Scale = 6.0
            }
            120
        Layers.lif { Snn.Lif.defaults with Dt = dt }
    ]

let net =
    Layers.serial (
        hiddenLayers
        @ [
            Layers.denseWith
                { Layers.denseDefaults with
                    Scale = 2.0
                }
                YinYang.classes
            Layers.li { Snn.Li.defaults with Dt = dt }
        ]
    )

let initKey, shuffleKey = Random.split (Random.key 0L)
let p0, _ = Layer.init net initKey [| 5 |]

(**
A network is a value: `Layer.apply net p x` runs it on a batch of spike trains `[steps; batch; 5]` with the
parameters `p`, a tree of tensors. The loss is the cross-entropy of the readout's maximum over time:
*)
let logits p x =
    Layer.apply net p (encode x) |> Decode.maxOverTime

let loss labels x p = Loss.crossEntropy (logits p x) labels
let accuracy p (d: Dataset) = Loss.accuracy (logits p d.X) d.Labels

printfn
    "before training: validation accuracy %.3f"
    (accuracy p0 data.Validation)
(*** include-output ***)

(**
Training is a loop over batches: `Ad.valueAndGrad` gives the loss and its gradient with respect to every
parameter, and an optax-style optimizer turns the gradient into an update. Four epochs here (the sample
`samples/YinYang` trains for 20 and reaches about 97 %):
*)
let epochs, batchSize = 4, 100
let batches = Batching.batchCount batchSize true data.Train.Count

let tx =
    Optim.adamWith
        (Optim.cosineDecay 0.01 (epochs * batches) 0.05)
        0.9
        0.999
        1e-8

let mutable p, state = p0, Optim.init tx p0

for epoch in 0 .. epochs - 1 do
    let mutable sum = 0.0

    for x, labels in
        Batching.batchesDropLast
            (Random.foldIn shuffleKey epoch)
            batchSize
            data.Train do
        let l, g = Ad.valueAndGrad (loss labels x) p
        let u, s = Optim.update tx g state p
        p <- Optim.applyUpdates p u
        state <- s
        sum <- sum + l.ToScalar()

    printfn
        "epoch %d: loss %.4f, validation accuracy %.3f"
        (epoch + 1)
        (sum / float batches)
        (accuracy p data.Validation)

printfn "test accuracy %.3f" (accuracy p data.Test)
(*** include-output ***)

(**
Before trusting the number, look at the spikes. `SnnFunc.Plots` draws rasters, membrane traces, training
curves and histograms (PNG or SVG, by `Plot.save`'s extension; here inline). The hidden layer's spikes for the
first test sample, from the first two layers and their parameters:
*)
let hiddenSpikes =
    match p with
    | Children layers ->
        Layer.apply
            (Layers.serial hiddenLayers)
            (Children(List.take 2 layers))
            (encode (data.Test.X.Narrow(0, 0, 1)))
    | _ -> failwith "a serial network has one parameter entry per layer"

Plot.raster dt hiddenSpikes
|> Plot.withTitle "hidden spikes of test sample 0"
|> Plot.toSvg 600 320 // the width of this page's column
(*** include-it-raw ***)

(**
Everything above is pure: the same keys give the same network, the same batches and the same numbers.
`Train.run` wraps this loop with metrics, checkpoints and resumption; the samples show it in use.
*)
