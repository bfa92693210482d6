// Yin-Yang with surrogate gradients, interactively: 5 latency-coded inputs -> 120 LIF -> 3 LI.
// After `dotnet build -c Release`:   dotnet fsi samples/scripts/yinyang.fsx   (about a minute)
#r "../../src/SnnFunc/bin/Release/net10.0/SnnFunc.dll"

open SnnFunc
open SnnFunc.Data

let epochs, batchSize, lr, steps, dt = 20, 100, 0.01, 60, 0.5e-3
let data = YinYang.splits 0L
let encode x = Encode.latency steps dt 15e-3 false x // a spike at u · 15 ms per input

let net =
    Layers.serial
        [
            Layers.denseWith
                { Layers.denseDefaults with
                    Scale = 6.0
                }
                120
            Layers.lif { Snn.Lif.defaults with Dt = dt }
            Layers.denseWith
                { Layers.denseDefaults with
                    Scale = 2.0
                }
                YinYang.classes
            Layers.li { Snn.Li.defaults with Dt = dt }
        ]

let initKey, shuffleKey = Random.split (Random.key 0L)
let p0, _ = Layer.init net initKey [| 5 |]
let batches = Batching.batchCount batchSize true data.Train.Count

let tx =
    Optim.adamWith (Optim.cosineDecay lr (epochs * batches) 0.05) 0.9 0.999 1e-8

let logits p x =
    Layer.apply net p (encode x) |> Decode.maxOverTime

let loss labels x p = Loss.crossEntropy (logits p x) labels
let accuracy p (d: Dataset) = Loss.accuracy (logits p d.X) d.Labels

let mutable p, state = p0, Optim.init tx p0

for epoch in 0 .. epochs - 1 do
    let mutable sum = 0.0

    for x, labels in Batching.batchesDropLast (Random.foldIn shuffleKey epoch) batchSize data.Train do
        let l, g = Ad.valueAndGrad (loss labels x) p
        let u, s = Optim.update tx g state p
        p <- Optim.applyUpdates p u
        state <- s
        sum <- sum + l.ToScalar()

    printfn "epoch %d loss=%.4f val_accuracy=%.4f" (epoch + 1) (sum / float batches) (accuracy p data.Validation)

printfn "test_accuracy=%.4f" (accuracy p data.Test)
