/// Networks as data: graphs run time-stepped against hand-written step scans (feed-forward,
/// recurrent within and between populations, delayed), runs continued from a final state, the
/// stax chain they generalise, gradients through a run, and the errors that name the node.
module SnnFunc.Tests.GraphTests

open System
open Xunit
open SnnFunc
open SnnFunc.Tests.AdTestUtil

let private dt = 1e-3

let private lifSpec =
    { Snn.Lif.defaults with
        Dt = dt
        VTh = 0.3
    }

let private liSpec = { Snn.Li.defaults with Dt = dt }
let private lifC, liC = Snn.Lif.config lifSpec, Snn.Li.config liSpec

let private lifP, liP =
    Snn.Lif.paramsAs Float64 lifSpec, Snn.Li.paramsAs Float64 liSpec

let private steps, batch = 25, 3

/// Input spikes [T; B; 5], 0/1.
let private spikes =
    t64
        [| steps; batch; 5 |]
        [
            for k in 0 .. steps * batch * 5 - 1 -> if (k * 7919) % 13 < 3 then 1.0 else 0.0
        ]

let private run (g: Graph) (p: GraphParams) (inputs: (string * Tensor) list) =
    Graph.run g p (RunConfig.steps steps dt) (Map inputs)

let private ffGraph =
    Graph.empty
    |> Graph.input "x" 5
    |> Graph.population "hidden" 7 (Neuron.lif lifSpec)
    |> Graph.population "out" 3 (Neuron.li liSpec)
    |> Graph.connect "x" "hidden" (Projection.dense (Init.normalWith 8.0))
    |> Graph.connect
        "hidden"
        "out"
        (Projection.dense (Init.normalWith 3.0)
         |> Projection.withBias (Init.constant 0.1))

[<Fact>]
let ``a feed-forward graph equals the hand-written step scans`` () =
    let p = Graph.initAs Float64 (Random.key 1L) ffGraph
    Assert.Equal<int[]>([| 5; 7 |], (p.["x->hidden"].["weight"]).Shape)
    Assert.Equal<int[]>([||], (p.["hidden"].["tauMem"]).Shape)
    let r = run ffGraph p [ "x", spikes ]
    // By hand: currents in one product, the LIF and LI steps scanned.
    let c1 = spikes.MatMul p.["x->hidden"].["weight"]

    let _, (z, v, i) =
        Ad.scan (Snn.Lif.stepFull lifC lifP) (Snn.Lif.init [| batch; 7 |] Float64) c1

    let c2 = z.MatMul p.["hidden->out"].["weight"] + p.["hidden->out"].["bias"]

    let _, (vo, io) =
        Ad.scan (Snn.Li.stepFull liC liP) (Snn.Li.init [| batch; 3 |] Float64) c2

    assertEqualValues "hidden spikes" z r.["hidden"].Spikes
    assertEqualValues "hidden membrane" v r.["hidden"].Membrane
    assertEqualValues "hidden current" i r.["hidden"].Current
    assertEqualValues "out membrane" vo r.["out"].Membrane
    assertEqualValues "out current" io r.["out"].Current
    Assert.True(z.Sum().ToScalar() > 5.0, "the hidden layer spikes")
    Assert.Null(r.["out"].Spikes)

[<Fact>]
let ``self-recurrence reaches the population one step later, as in a hand-written scan`` () =
    let g =
        Graph.empty
        |> Graph.input "x" 5
        |> Graph.population "h" 6 (Neuron.lif lifSpec)
        |> Graph.connect "x" "h" (Projection.dense (Init.normalWith 8.0))
        |> Graph.connect "h" "h" (Projection.dense (Init.normalWith 2.0))

    let p = Graph.initAs Float64 (Random.key 2L) g
    let w, rr = p.["x->h"].["weight"], p.["h->h"].["weight"]
    let r = run g p [ "x", spikes ]

    let step (s: Snn.Lif.State, zPrev: Tensor) (x: Tensor) =
        let s', (z, v, _) = Snn.Lif.stepFull lifC lifP s (x.MatMul w + zPrev.MatMul rr)
        (s', z), (z, v)

    let (final, _), (z, v) =
        Ad.scan step (Snn.Lif.init [| batch; 6 |] Float64, Tensor.Full([| batch; 6 |], 0.0, Float64)) spikes

    assertEqualValues "spikes" z r.["h"].Spikes
    assertEqualValues "membrane" v r.["h"].Membrane
    assertEqualValues "final v" final.V r.Final["h"].["v"]
    Assert.True(z.Sum().ToScalar() > 5.0)

[<Fact>]
let ``recurrence between two populations: each sees the other's previous step`` () =
    let g =
        Graph.empty
        |> Graph.input "x" 5
        |> Graph.population "a" 4 (Neuron.lif lifSpec)
        |> Graph.population
            "b"
            3
            (Neuron.lif
                { lifSpec with
                    Reset = Snn.BySubtraction
                })
        |> Graph.connect "x" "a" (Projection.dense (Init.normalWith 8.0))
        |> Graph.connect "a" "b" (Projection.dense (Init.normalWith 6.0))
        |> Graph.connect "b" "a" (Projection.dense (Init.normalWith 3.0) |> Projection.inhibitory)

    let p = Graph.initAs Float64 (Random.key 3L) g
    let r = run g p [ "x", spikes ]

    let bC =
        Snn.Lif.config
            { lifSpec with
                Reset = Snn.BySubtraction
            }

    let wx, wab, wba =
        p.["x->a"].["weight"], p.["a->b"].["weight"], -((p.["b->a"].["weight"]).Abs())

    let step (sa: Snn.Lif.State, sb: Snn.Lif.State, za: Tensor, zb: Tensor) (x: Tensor) =
        let sa', (za', va, _) = Snn.Lif.stepFull lifC lifP sa (x.MatMul wx + zb.MatMul wba)
        let sb', (zb', vb, _) = Snn.Lif.stepFull bC lifP sb (za.MatMul wab)
        (sa', sb', za', zb'), (za', va, zb', vb)

    let zeros n =
        Tensor.Full([| batch; n |], 0.0, Float64)

    let _, (za, va, zb, vb) =
        Ad.scan step (Snn.Lif.init [| batch; 4 |] Float64, Snn.Lif.init [| batch; 3 |] Float64, zeros 4, zeros 3) spikes

    assertEqualValues "a spikes" za r.["a"].Spikes
    assertEqualValues "a membrane" va r.["a"].Membrane
    assertEqualValues "b spikes" zb r.["b"].Spikes
    assertEqualValues "b membrane" vb r.["b"].Membrane
    Assert.True(zb.Sum().ToScalar() > 0.0, "b spikes, so the inhibition acts")

[<Fact>]
let ``delays: whole steps, per input neuron, and learnable fractional delays`` () =
    let make (proj: Projection) =
        Graph.empty
        |> Graph.input "x" 5
        |> Graph.population "h" 4 (Neuron.li liSpec)
        |> Graph.connect "x" "h" proj

    let direct = Projection.dense (Init.normalWith 2.0)
    let p0 = Graph.initAs Float64 (Random.key 4L) (make direct)
    let w = p0.["x->h"].["weight"]

    let liOf (c: Tensor) =
        snd (Ad.scan (Snn.Li.step liC liP) (Snn.Li.init [| batch; 4 |] Float64) c)

    let shifted (d: int) (x: Tensor) =
        x.Pad([| d; 0; 0 |], [| 0; 0; 0 |]).Narrow(0, 0, steps)
    // Whole steps.
    let g3 = make (direct |> Projection.delayed 3)
    let r3 = run g3 (Map [ "x->h", Map [ "weight", w ]; "h", p0.["h"] ]) [ "x", spikes ]
    assertEqualValues "delay 3" (liOf ((shifted 3 spikes).MatMul w)) r3.["h"].Membrane
    // Per input neuron.
    let ds = [| 0; 2; 1; 4; 3 |]
    let gi = make (direct |> Projection.delayedPerInput ds)
    let ri = run gi (Map [ "x->h", Map [ "weight", w ]; "h", p0.["h"] ]) [ "x", spikes ]

    let perInput =
        Tensor.concat 2 [ for k in 0..4 -> shifted ds[k] (spikes.Narrow(2, k, 1)) ]

    assertEqualValues "per-input delays" (liOf (perInput.MatMul w)) ri.["h"].Membrane
    // Learnable: 1.25 steps = 0.75 of one step back + 0.25 of two steps back; the gradient
    // with respect to the delay matches finite differences.
    let gl = make (direct |> Projection.learnableDelay 1.25 6 false)
    let pl = Map [ "x->h", Map [ "weight", w; "delay", s64 1.25 ]; "h", p0.["h"] ]
    let rl = run gl pl [ "x", spikes ]

    let expected =
        liOf (((shifted 1 spikes) * 0.75 + (shifted 2 spikes) * 0.25).MatMul w)

    assertClose "learnable delay 1.25" 1e-14 1e-15 expected rl.["h"].Membrane

    let loss (delay: Tensor) =
        let r =
            run gl (Map [ "x->h", Map [ "weight", w; "delay", delay ]; "h", p0.["h"] ]) [ "x", spikes ]

        (r.["h"].Membrane * r.["h"].Membrane).Sum()

    let g = Ad.grad loss (s64 1.25)
    let fd = (loss (s64 1.26) - loss (s64 1.24)) / 0.02
    assertNear "d loss / d delay" 1e-6 (fd.ToScalar()) (g.ToScalar())
    Assert.True(abs (g.ToScalar()) > 0.0)

[<Fact>]
let ``a run continues from its final state exactly as one long run`` () =
    let g =
        Graph.empty
        |> Graph.input "x" 5
        |> Graph.population "h" 6 (Neuron.lif { lifSpec with RefractorySteps = 1 })
        |> Graph.population "o" 3 (Neuron.li liSpec)
        |> Graph.connect "x" "h" (Projection.dense (Init.normalWith 8.0) |> Projection.delayed 2)
        |> Graph.connect "h" "h" (Projection.dense (Init.normalWith 2.0))
        |> Graph.connect
            "h"
            "o"
            (Projection.dense (Init.normalWith 2.0)
             |> Projection.delayedPerInput [| 0; 1; 2; 0; 1; 3 |])

    let p = Graph.initAs Float64 (Random.key 5L) g
    let whole = run g p [ "x", spikes ]

    let first =
        Graph.run g p (RunConfig.steps 11 dt) (Map [ "x", spikes.Narrow(0, 0, 11) ])

    let second =
        Graph.run g p (RunConfig.steps 14 dt |> RunConfig.from first.Final) (Map [ "x", spikes.Narrow(0, 11, 14) ])

    for n in [ "h"; "o" ] do
        assertEqualValues $"%s{n} membrane" whole[n].Membrane (Tensor.concat 0 [ first[n].Membrane; second[n].Membrane ])

[<Fact>]
let ``a stax serial chain and the same graph give identical numbers`` () =
    let chain =
        Layers.serial
            [
                Layers.dense 7
                Layers.lif lifSpec
                Layers.denseWith
                    { Layers.denseDefaults with
                        Bias = true
                    }
                    3
                Layers.li liSpec
            ]

    let g =
        Graph.empty
        |> Graph.input "x" 5
        |> Graph.population "hidden" 7 (Neuron.lif lifSpec)
        |> Graph.population "out" 3 (Neuron.li liSpec)
        |> Graph.connect "x" "hidden" (Projection.dense Init.normal)
        |> Graph.connect "hidden" "out" (Projection.dense Init.normal |> Projection.withBias Init.zeros)

    let x = spikes.Convert Float32
    let lp, _ = Layer.init chain (Random.key 6L) [| 5 |]

    // The chain's weights, with a non-zero bias, copied into the graph's parameters.
    let lp, w1, w2, b2 =
        match lp with
        | Children [ Weights a; n1; Weights b; n2 ] ->
            let b2 = b.["b"] + 0.05
            Children [ Weights a; n1; Weights(b.Add("b", b2)); n2 ], a.["W"], b.["W"], b2
        | _ -> failwith "unexpected parameters"

    let p =
        Graph.init (Random.key 0L) g
        |> Map.add "x->hidden" (Map [ "weight", w1 ])
        |> Map.add "hidden->out" (Map [ "weight", w2; "bias", b2 ])

    let viaChain = Layer.apply chain lp x
    let viaGraph = (run g p [ "x", x ]).["out"].Membrane
    assertEqualValues "LI membrane" viaChain viaGraph

[<Fact>]
let ``gradients through a run reach weights and per-neuron parameters, and match finite differences`` () =
    let g =
        Graph.empty
        |> Graph.input "x" 5
        |> Graph.population "hidden" 7 (Neuron.lif lifSpec |> Neuron.withInit "tauMem" (Init.uniform 8e-3 14e-3))
        |> Graph.population "out" 3 (Neuron.li liSpec)
        |> Graph.connect "x" "hidden" (Projection.dense (Init.normalWith 8.0))
        |> Graph.connect "hidden" "out" (Projection.dense (Init.normalWith 3.0))

    let p = Graph.initAs Float64 (Random.key 7L) g
    Assert.Equal<int[]>([| 7 |], (p.["hidden"].["tauMem"]).Shape)
    let taus = (p.["hidden"].["tauMem"]).ToDoubleArray()

    Assert.True(
        taus |> Array.forall (fun t -> t >= 8e-3 && t < 14e-3)
        && (Array.distinct taus).Length = 7
    )

    let loss (p: GraphParams) =
        let r = run g p [ "x", spikes ]
        (r.["out"].Membrane.Max 0).Square().Sum() + r.["hidden"].Spikes.Mean() * 0.1

    let grads = Ad.grad loss p
    Assert.True(maxAbs grads.["hidden"].["tauMem"] > 0.0)
    Assert.True(maxAbs grads.["x->hidden"].["weight"] > 0.0)
    // The readout weights act on the membrane only (smooth): their gradient is a true derivative.
    let readoutLoss (w2: Tensor) =
        let r = run g (p |> Map.add "hidden->out" (Map [ "weight", w2 ])) [ "x", spikes ]
        (r.["out"].Membrane.Max 0).Square().Sum()

    let w2 = p.["hidden->out"].["weight"]
    let g2 = Ad.grad readoutLoss w2
    let dir = randn (Random 8) w2.Shape
    let fd = (readoutLoss (w2 + dir * 1e-6) - readoutLoss (w2 - dir * 1e-6)) / 2e-6
    assertNear "readout gradient along a direction" 1e-6 (fd.ToScalar()) (dot g2 dir)
    // Key paths name graph parameters: hidden/tauMem gets its own optimizer.
    let paths = Tree.leavesWithPath p |> Array.map (fun (k, _) -> KeyPath.toName k)
    Assert.Contains("hidden/tauMem", paths)
    // File-safe names escape '>' (a projection's default name "x->hidden"); the display form keeps it.
    Assert.Contains("x-%3Ehidden/weight", paths)
    Assert.Contains("[\"x->hidden\"][\"weight\"]", Tree.leavesWithPath p |> Array.map (fun (k, _) -> KeyPath.toString k))

    let tx =
        Optim.multiTransform
            (fun path ->
                if KeyPath.toName path = "hidden/tauMem" then
                    "slow"
                else
                    "fast")
            (Map [ "slow", Optim.adam 1e-5; "fast", Optim.adam 1e-2 ])

    let state = Optim.init tx p
    let updates, _ = Optim.update tx grads state p
    let moved = Optim.applyUpdates p updates

    let dTau =
        (moved.["hidden"].["tauMem"] - p.["hidden"].["tauMem"]).Abs().Max().ToScalar()

    let dW =
        (moved.["x->hidden"].["weight"] - p.["x->hidden"].["weight"]).Abs().Max().ToScalar()

    assertNear "tauMem moves by the slow rate" 1e-6 1e-5 dTau
    assertNear "weights move by the fast rate" 1e-6 1e-2 dW

[<Fact>]
let ``graph errors name the node, the edge or the shape`` () =
    let throws (fragments: string list) (f: unit -> 'a) =
        let e = Assert.ThrowsAny<ArgumentException>(fun () -> f () |> ignore)

        for fragment in fragments do
            Assert.Contains(fragment, e.Message)

    let base' =
        Graph.empty |> Graph.input "x" 5 |> Graph.population "h" 4 (Neuron.lif lifSpec)

    throws [ "Graph.addNode"; "'h' already exists" ] (fun () -> base' |> Graph.population "h" 3 (Neuron.lif lifSpec))
    throws [ "Graph.edge"; "'nowhere'" ] (fun () -> base' |> Graph.connect "x" "nowhere" (Projection.dense Init.normal))

    throws [ "leads nowhere"; "'p'" ] (fun () ->
        base'
        |> Graph.addNode "p" (Synapses(Projection.dense Init.normal))
        |> Graph.edge "x" "p"
        |> Graph.validate)

    throws [ "population 'h'"; "[4]"; "'x'"; "[5]" ] (fun () -> base' |> Graph.edge "x" "h" |> Graph.validate)
    throws [ "source 'x'"; "incoming" ] (fun () -> base' |> Graph.edge "h" "x" |> Graph.validate)

    // A projection that feeds no population needs its output shape; a cycle needs a population to
    // delay through.
    throws [ "the projection 'p' feeds 'q'"; "Projection.withOutShape" ] (fun () ->
        Graph.empty
        |> Graph.input "x" 4
        |> Graph.addNode "p" (Synapses(Projection.dense Init.normal))
        |> Graph.addNode "q" (Synapses(Projection.dense Init.normal))
        |> Graph.edge "x" "p"
        |> Graph.edge "p" "q"
        |> Graph.edge "q" "p"
        |> Graph.validate)

    throws [ "cycle"; "p -> q"; "no population" ] (fun () ->
        let shaped = Projection.dense Init.normal |> Projection.withOutShape [| 4 |]

        Graph.empty
        |> Graph.input "x" 4
        |> Graph.addNode "p" (Synapses shaped)
        |> Graph.addNode "q" (Synapses shaped)
        |> Graph.edge "x" "p"
        |> Graph.edge "p" "q"
        |> Graph.edge "q" "p"
        |> Graph.validate)

    let g = base' |> Graph.connect "x" "h" (Projection.dense Init.normal)
    let p = Graph.init (Random.key 0L) g
    throws [ "no input"; "'x'" ] (fun () -> Graph.run g p (RunConfig.steps 4 dt) Map.empty)

    throws [ "input of 'x'"; "[4; 2; 3]"; "[4 steps; batch...; 5]" ] (fun () ->
        Graph.run g p (RunConfig.steps 4 dt) (Map [ "x", Tensor.zeros [| 4; 2; 3 |] ]))

    throws [ "'h'"; "not recorded" ] (fun () ->
        (Graph.run g p (RunConfig.steps 4 dt |> RunConfig.recording [ "x" ]) (Map [ "x", Tensor.zeros [| 4; 5 |] ]))["h"])

    throws [ "population 'h'"; "step 0.001 s"; "run 0.002 s" ] (fun () ->
        Graph.run g p (RunConfig.steps 4 (2.0 * dt)) (Map [ "x", Tensor.zeros [| 4; 5 |] ]))

    throws [ "RunConfig.steps"; "step length"; "-0.001" ] (fun () -> RunConfig.steps 4 -1e-3)

    throws [ "the delay 'd'"; "at least 1 step"; "0" ] (fun () ->
        Graph.empty
        |> Graph.input "x" 3
        |> Graph.transform "d" (NeuronDelay(Init.zeros, 1e-3, dt, 0))
        |> Graph.edge "x" "d"
        |> Graph.validate)

    throws [ "population 'h'"; "TauMem of neuron" ] (fun () ->
        Graph.empty
        |> Graph.population "h" 3 (Neuron.lif lifSpec |> Neuron.withInit "tauMem" (Init.uniform -1e-3 0.5e-3))
        |> Graph.init (Random.key 0L))

    throws [ "Neuron.withInit"; "'tau'"; "tauMem" ] (fun () -> Neuron.lif lifSpec |> Neuron.withInit "tau" Init.zeros)

[<Fact>]
let ``Init.gaussian draws N(mean, std²) whatever the fan-in, and refuses a negative std`` () =
    for fanIn in [ 1; 400 ] do
        let w =
            (Init.gaussian 1.5 0.78).Draw (Random.key 3L) [| 200; 100 |] fanIn DType.Float64

        let xs = w.ToDoubleArray()
        let mean = Array.average xs
        let std = sqrt (xs |> Array.averageBy (fun x -> (x - mean) ** 2.0))
        // 20,000 draws: the standard errors are 0.0055 (mean) and 0.0039 (std).
        Assert.InRange(mean, 1.48, 1.52)
        Assert.InRange(std, 0.765, 0.795)

    let e = Assert.Throws<ArgumentException>(fun () -> Init.gaussian 0.0 -1.0 |> ignore)

    for fragment in [ "Init.gaussian"; "std >= 0"; "-1" ] do
        Assert.Contains(fragment, e.Message)
