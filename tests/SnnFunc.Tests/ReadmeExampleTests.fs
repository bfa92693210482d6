/// The README's F# examples of graphs and NIR, as written there (file names replaced by temporary
/// paths and fixtures): they compile, run, and do what their comments say.
module SnnFunc.Tests.ReadmeExampleTests

open System
open System.IO
open Xunit
open SnnFunc

[<Fact>]
let ``the README's graph and NIR examples run and do what they say`` () =
    let netNir =
        Path.Combine(Path.GetTempPath(), "snnfunc-readme-" + Guid.NewGuid().ToString("N") + ".nir")

    let norseNir = NirFileTests.fixture "legacy/lif_norse.nir"

    try
        let dt = 0.5e-3
        let lif = { Snn.Lif.defaults with Dt = dt }

        let g =
            Graph.empty
            |> Graph.input "x" 5
            |> Graph.population "hidden" 100 (Neuron.lif lif |> Neuron.withInit "tauMem" (Init.uniform 5e-3 20e-3))
            |> Graph.population "out" 3 (Neuron.li { Snn.Li.defaults with Dt = dt })
            |> Graph.connect "x" "hidden" (Projection.dense (Init.normalWith 6.0))
            |> Graph.connect "hidden" "hidden" (Projection.dense Init.normal |> Projection.inhibitory) // one step later
            |> Graph.connect "hidden" "out" (Projection.dense (Init.normalWith 2.0) |> Projection.withBias Init.zeros)

        let p = Graph.init (Random.key 0L) g // p["hidden"]["tauMem"] [100], p["x->hidden"]["weight"] [5; 100]
        let x = Random.bernoulli (Random.key 1L) 0.05 [| 60; 16; 5 |]
        let labels = Array.init 16 (fun i -> i % 3)

        let loss (q: GraphParams) =
            let r = Graph.run g q (RunConfig.steps 60 dt) (Map [ "x", x ]) // r["hidden"].Spikes [60; 16; 100]

            Loss.crossEntropy (Decode.maxOverTime r["out"].Membrane) labels
            + Loss.firingRate 2.0 (r["hidden"].Spikes) * 0.01

        let group (path: KeyPath) = // weights fast, tauMem slowly, the other neuron parameters fixed
            match KeyPath.toName path with
            | "hidden/tauMem" -> "tau"
            | name when name.EndsWith "/weight" || name.EndsWith "/bias" -> "weights"
            | _ -> "fixed"

        let tx =
            Optim.multiTransform group (Map [ "weights", Optim.adam 1e-2; "tau", Optim.adam 1e-4; "fixed", Optim.setToZero ])

        let value, grads = Ad.valueAndGrad loss p // grads: a GraphParams like p
        let updates, state = Optim.update tx grads (Optim.init tx p) p
        let trained = Optim.applyUpdates p updates

        let first =
            Graph.run g trained (RunConfig.steps 30 dt) (Map [ "x", x.Narrow(0, 0, 30) ])

        let rest =
            Graph.run g trained (RunConfig.steps 30 dt |> RunConfig.from first.Final) (Map [ "x", x.Narrow(0, 30, 30) ])

        let exported = g |> Graph.transform "output" Identity |> Graph.edge "out" "output" // NIR graphs end in Output nodes
        Nir.write netNir exported trained // LIF as CubaLIF, LI as CubaLI; ms, dt under metadata/
        let g2, p2 = Nir.read netNir // the file's recorded time unit and dt, else ms and 1 ms steps
        let g3, p3 = Nir.readWith (NirOptions.seconds 1e-3) norseNir // Norse and snnTorch write seconds
        let doubts = Nir.warnings g3 // e.g. time constants that look like another unit
        let r2 = Graph.run g2 p2 (RunConfig.steps 60 dt) (Map [ "x", x ]) // r2["output"].Output = r["out"].Membrane

        Assert.Equal<int[]>([| 100 |], p.["hidden"].["tauMem"].Shape)
        Assert.Equal<int[]>([| 5; 100 |], p.["x->hidden"].["weight"].Shape)
        Assert.True(Double.IsFinite(value.ToScalar()))
        // Only the weights and tauMem moved.
        Assert.NotEqual<float[]>(p.["x->hidden"].["weight"].ToDoubleArray(), trained.["x->hidden"].["weight"].ToDoubleArray())
        Assert.NotEqual<float[]>(p.["hidden"].["tauMem"].ToDoubleArray(), trained.["hidden"].["tauMem"].ToDoubleArray())
        Assert.Equal<float[]>(p.["hidden"].["vTh"].ToDoubleArray(), trained.["hidden"].["vTh"].ToDoubleArray())
        // The run continued from the final state is the second half of one run.
        let whole = Graph.run g trained (RunConfig.steps 60 dt) (Map [ "x", x ])
        Assert.Equal<float[]>(whole.["out"].Membrane.Narrow(0, 30, 30).ToDoubleArray(), rest.["out"].Membrane.ToDoubleArray())
        // The NIR file read back runs as the graph did.
        let a, b =
            r2.["output"].Output.ToDoubleArray(), whole.["out"].Membrane.ToDoubleArray()

        Assert.True(Array.forall2 (fun (u: float) v -> abs (u - v) <= 1e-4 * (1.0 + abs v)) a b, "the NIR round trip runs alike")
        Assert.Empty(Nir.warnings g2)
        Assert.Empty doubts
        ignore (g3, p3, state)
    finally
        File.Delete netNir

[<Fact>]
let ``the README's events example runs, and its two gradients agree`` () =
    let lif =
        { Snn.Lif.defaults with
            TauMem = 20e-3
            TauSyn = 5e-3
        } // threshold 1, reset 0

    let g =
        Graph.empty
        |> Graph.input "x" 5
        |> Graph.population "hidden" 200 (Neuron.lif lif)
        |> Graph.population "out" 3 (Neuron.lif lif)
        |> Graph.connect "x" "hidden" (Projection.dense (Init.gaussian 1.5 0.78))
        |> Graph.connect "hidden" "out" (Projection.dense (Init.gaussian 0.93 0.1))

    let p = Graph.initAs DType.Float64 (Random.key 0L) g
    let data = Data.YinYang.generate (Random.key 1L) 32
    let x = EventBuffer.latency 0.0 30e-3 (data.X.Convert DType.Float64) // [32; 5]: u spikes at u · 30 ms, the bias at 0

    let config =
        { Events.defaults with
            TEnd = 60e-3
            Capacity = 512
            Gradient = EventProp
        } // or Solver: the same numbers

    let lossWith (config: EventConfig) (q: GraphParams) =
        let out = Events.run g q config (Map [ "x", x ]) // out["hidden"].Overflow: the spikes that did not fit
        let t = Events.firstSpikeTimes out["out"] // [32; 3], +inf where silent
        EventLoss.ttfsCrossEntropy 0.5e-3 6.4e-3 3e-3 60e-3 t data.Labels

    let value, grads = Ad.valueAndGrad (lossWith config) p // grads["x->hidden"]["weight"], grads["hidden"]["tauMem"], ...
    // Added: what the comments say.
    let out = Events.run g p config (Map [ "x", x ])
    Assert.Equal(0, out["hidden"].Overflow.ToInt32Array() |> Array.sum)
    Assert.Equal<int[]>([| 32; 3 |], (Events.firstSpikeTimes out["out"]).Shape)
    Assert.True(Double.IsFinite(value.ToScalar()))
    let solver = Ad.grad (lossWith { config with Gradient = Solver }) p

    for node, name in
        [
            "x->hidden", "weight"
            "hidden->out", "weight"
            "hidden", "tauMem"
            "out", "vTh"
        ] do
        let a, b = (grads[node][name]).ToDoubleArray(), (solver[node][name]).ToDoubleArray()
        Assert.Contains(a, fun v -> v <> 0.0)

        for i in 0 .. a.Length - 1 do
            Assert.True(abs (a[i] - b[i]) <= 1e-9 * (abs b[i] + 1e-6), $"%s{node}/%s{name}[%d{i}]: EventProp %g{a[i]}, solver %g{b[i]}")

[<Fact>]
let ``the README's hardware-in-the-loop snippet runs and reaches the weights`` () =
    // Added: the network and data the snippet assumes.
    let net =
        Graph.empty
        |> Graph.input "x" 20
        |> Graph.population "hidden" 30 (Neuron.lif Snn.Lif.defaults)
        |> Graph.population "out" 4 (Neuron.li Snn.Li.defaults)
        |> Graph.connect "x" "hidden" (Projection.dense (Init.normalWith 5.0))
        |> Graph.connect "hidden" "out" (Projection.dense (Init.normalWith 2.0))

    let p0 = Graph.init (Random.key 0L) net
    let x0 = (Random.uniform (Random.key 1L) [| 30; 8; 20 |]).Lt(0.1).Convert Float32
    let labels0 = Array.init 8 (fun i -> i % 4)

    let hilStepOf (net: Graph) =
        let chip =
            SnnFunc.Backends.Bss2Emulator(
                SnnFunc.Backends.Chip.create 0L,
                SnnFunc.Backends.Chip.untrimmed,
                { SnnFunc.Backends.Bss2Config.defaults with
                    TraceScales = Map [ "out", 8.0 ]
                }
            )

        let rc = RunConfig.steps 30 1e-3

        let hilStep (p: GraphParams) (x: Tensor) (labels: int[]) (trial: int) =
            // The batch on the chip (fresh trial noise), then the gradient of a loss of its observables.
            let trialChip =
                chip.With
                    { chip.Config with
                        TrialKey = Random.foldIn (Random.key 0L) trial
                    }

            let observed = trialChip.Run(net, p, Map [ "x", x ], rc)

            let loss (q: GraphParams) =
                let r = SnnFunc.Backends.Hil.runWith ((=) "out") net q rc (Map [ "x", x ]) observed // readout: CADC membrane; hidden: spikes
                Loss.crossEntropy (Decode.maxOverTime r["out"].Membrane) labels

            Ad.valueAndGrad loss p // observed.Account: hardware time, energy

        hilStep

    let value, grads = hilStepOf net p0 x0 labels0 1
    Assert.True(Double.IsFinite(value.ToScalar()))
    let toHidden, toOut = grads["x->hidden"]["weight"], grads["hidden->out"]["weight"]
    Assert.Contains(toHidden.ToDoubleArray(), fun v -> v <> 0.0)
    Assert.Contains(toOut.ToDoubleArray(), fun v -> v <> 0.0)

[<Fact>]
let ``the README's event-based hardware-in-the-loop snippet runs and reaches the weights`` () =
    // Added: the network, chip and data the snippet assumes (5 latency-coded inputs, 5-40-3 LIF).
    let lif =
        { Snn.Lif.defaults with
            TauMem = 20e-3
            TauSyn = 5e-3
            VTh = 1.0
            VReset = 0.0
            VLeak = 0.0
        }

    let net =
        Graph.empty
        |> Graph.input "x" 5
        |> Graph.population "hidden" 40 (Neuron.lif lif)
        |> Graph.population "out" 3 (Neuron.lif lif)
        |> Graph.connect "x" "hidden" (Projection.dense (Init.gaussian 1.5 0.78))
        |> Graph.connect "hidden" "out" (Projection.dense (Init.gaussian 0.93 0.1))

    let p = Graph.initAs Float64 (Random.key 0L) net

    let chip =
        SnnFunc.Backends.Bss2Emulator(
            SnnFunc.Backends.Chip.create 0L,
            SnnFunc.Backends.Chip.untrimmed,
            { SnnFunc.Backends.Bss2Config.defaults with
                WeightScale = 15.0
            }
        )

    let events =
        EventBuffer.latency 0.0 30e-3 (Random.uniform (Random.key 2L) [| 8; 5 |] |> Tensor.convert Float64)

    let labels = Array.init 8 (fun i -> i % 3)

    let observed = chip.RunEvents(net, p, Map [ "x", events ], 60e-3, 100e-6) // tEnd, the circuits' step

    let loss (q: GraphParams) =
        let run =
            SnnFunc.Backends.Hil.runEvents net q Events.defaults (Map [ "x", events ]) observed // the chip's spike times

        EventLoss.ttfsCrossEntropy 0.5e-3 6.4e-3 3e-3 60e-3 (Events.firstSpikeTimes run["out"]) labels

    let value, grads = Ad.valueAndGrad loss p
    Assert.True(Double.IsFinite(value.ToScalar()))
    Assert.Contains((grads["x->hidden"]["weight"]).ToDoubleArray(), fun v -> v <> 0.0)
    Assert.Contains((grads["hidden->out"]["weight"]).ToDoubleArray(), fun v -> v <> 0.0)

[<Fact>]
let ``the README's MAC snippet runs and reaches the weights`` () =
    // Added: inputs in 0..31 and weights the snippet assumes.
    let x = (Random.uniform (Random.key 1L) [| 4; 200 |]) * 31.0
    let w1 = (Random.normal (Random.key 2L) [| 200; 16 |]) * 20.0

    let g =
        let mac =
            { SnnFunc.Backends.Bss2.Mac.defaults with
                Key = Random.key 7L
            }

        let hidden (w1: Tensor) (x: Tensor) =
            SnnFunc.Backends.Bss2.Mac.linear mac w1 None x
            |> SnnFunc.Backends.Bss2.Mac.convertingRelu mac 1

        Ad.grad (fun w1 -> (hidden w1 x).Sum()) w1

    Assert.Equal<int[]>([| 200; 16 |], g.Shape)
    Assert.Contains(g.ToDoubleArray(), fun v -> v <> 0.0)
