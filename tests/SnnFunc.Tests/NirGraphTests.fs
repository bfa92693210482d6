/// NIR files as graphs: round trips are the identity for the reference and legacy files, imported
/// graphs run as an independent Euler implementation of NIR's equations says, recurrent and nested
/// graphs run, the time-unit convention is explicit, and SnnFunc's own graphs written to NIR read
/// back as networks with the same dynamics.
module SnnFunc.Tests.NirGraphTests

open System
open System.IO
open Xunit
open SnnFunc
open SnnFunc.Tests.AdTestUtil

let private fixture = NirFileTests.fixture

/// Every reference and legacy file but the deliberately malformed one.
let private mappable =
    [
        "conv1d_li.nir"
        "conv2d_pool.nir"
        "legacy/cnn_sinabs.nir"
        "ff_cubalif.nir"
        "ff_cubalif_v107.nir"
        "mixed_nodes.nir"
        "recurrent_cubalif.nir"
        "recurrent_subgraph.nir"
        "legacy/braille_noDelay_bias_zero.nir"
        "legacy/lif_norse.nir"
        "legacy/lif_rockpool.nir"
    ]

let mappableFiles: obj[] seq = mappable |> Seq.map (fun f -> [| box f |])

[<Theory; MemberData(nameof mappableFiles)>]
let ``a NIR document read as a graph and written back is the same document`` (file: string) =
    let doc = NirFile.read (fixture file)
    let g, p = Nir.toGraph NirOptions.defaults doc
    NirFileTests.assertSameDoc file doc (Nir.ofGraph NirOptions.defaults g p)
    // Through files too.
    let path =
        Path.Combine(Path.GetTempPath(), "snnfunc-nir-" + Guid.NewGuid().ToString("N") + ".nir")

    try
        Nir.write path g p
        NirFileTests.assertSameDoc $"%s{file} (file)" doc (NirFile.read path)
    finally
        File.Delete path

/// Runs an imported graph on constant input drive and returns its result.
let private runOn (g: Graph) (p: GraphParams) (steps: int) (inputs: (string * Tensor) list) =
    Graph.run g p (RunConfig.steps steps 1e-3 |> RunConfig.recording (g.Nodes |> List.map fst)) (Map inputs)

[<Fact>]
let ``ff_cubalif runs as an independent Euler implementation of NIR's CubaLIF equations`` () =
    let doc = NirFile.read (fixture "ff_cubalif.nir")
    let dt = 1e-3
    let g, p = Nir.toGraph (NirOptions.milliseconds dt) doc
    let steps, batch = 60, 2
    let x = uniform (Random 3) 0.0 10.0 [| steps; batch; 5 |] |> Tensor.convert Float32
    let r = runOn g p steps [ "input", x ]
    // The reference, from NIR's definitions: fc1 = W x + b; CubaLIF
    //   I += dt/τs (-I + w_in fc1);  v += dt/τm (v_leak - v + r I);  v > v_th: spike, v <- v_reset
    // (τ in ms), then fc2 and CubaLI (no threshold). Float64 throughout.
    let node n = doc.Graph.Nodes[n]

    let affine n =
        match node n with
        | NirNode.Affine a -> a.Weight.ToDoubleArray(), a.Bias.ToDoubleArray(), a.Weight.Shape
        | _ -> failwith n

    let w1, b1, s1 = affine "fc1"
    let w2, b2, s2 = affine "fc2"

    let lif =
        match node "lif1" with
        | NirNode.CubaLIF l -> l
        | _ -> failwith "lif1"

    let li =
        match node "li_out" with
        | NirNode.CubaLI l -> l
        | _ -> failwith "li_out"

    let d (t: Tensor) = t.ToDoubleArray()
    let xs = x.ToDoubleArray()
    let hidden, outs = s1[0], s2[0]
    let expectedSpikes = Array.zeroCreate (steps * batch * hidden)
    let expectedOut = Array.zeroCreate (steps * batch * outs)
    let dtMs = dt * 1e3

    for b in 0 .. batch - 1 do
        let v, i = Array.zeroCreate hidden, Array.zeroCreate hidden
        let vo, io = Array.zeroCreate outs, Array.zeroCreate outs

        for t in 0 .. steps - 1 do
            let input k = xs[(t * batch + b) * 5 + k]

            let fc1 j =
                b1[j] + Seq.sum (seq { for k in 0..4 -> w1[j * 5 + k] * input k })

            let z = Array.zeroCreate hidden

            for j in 0 .. hidden - 1 do
                let vNew =
                    v[j]
                    + dtMs / (d lif.TauMem)[j] * ((d lif.VLeak)[j] - v[j] + (d lif.R)[j] * i[j])

                i[j] <- i[j] + dtMs / (d lif.TauSyn)[j] * (-i[j] + (d lif.WIn)[j] * fc1 j)

                if vNew > (d lif.VThreshold)[j] then
                    z[j] <- 1.0
                    v[j] <- (d lif.VReset)[j]
                else
                    v[j] <- vNew

                expectedSpikes[(t * batch + b) * hidden + j] <- z[j]

            for j in 0 .. outs - 1 do
                let fc2 =
                    b2[j] + Seq.sum (seq { for k in 0 .. hidden - 1 -> w2[j * hidden + k] * z[k] })

                vo[j] <-
                    vo[j]
                    + dtMs / (d li.TauMem)[j] * ((d li.VLeak)[j] - vo[j] + (d li.R)[j] * io[j])

                io[j] <- io[j] + dtMs / (d li.TauSyn)[j] * (-io[j] + (d li.WIn)[j] * fc2)
                expectedOut[(t * batch + b) * outs + j] <- vo[j]

    Assert.Equal<float[]>(expectedSpikes, r["lif1"].Spikes.ToDoubleArray())
    Assert.True(Array.sum expectedSpikes > 10.0, "the hidden neurons spike")
    assertClose "CubaLI membrane" 1e-5 1e-6 (t64 [| steps; batch; outs |] (List.ofArray expectedOut)) r["li_out"].Membrane
    assertClose "output node" 0.0 0.0 r["li_out"].Membrane r["output"].Output

[<Fact>]
let ``recurrent and nested NIR graphs run, their recurrence through a one-step delay`` () =
    for file in
        [
            "recurrent_cubalif.nir"
            "recurrent_subgraph.nir"
            "legacy/braille_noDelay_bias_zero.nir"
        ] do
        let g, p = Nir.read (fixture file)

        let source =
            g.Nodes
            |> List.pick (fun (n, node) ->
                match node with
                | Source _ -> Some n
                | _ -> None)

        let shape = Graph.shapeOf g source

        let x =
            uniform (Random 4) 0.0 5.0 (Array.append [| 30; 2 |] shape)
            |> Tensor.convert Float32

        let r = runOn g p 30 [ source, x ]
        let outputs = r.Observed |> Map.filter (fun n _ -> n.EndsWith "output")
        Assert.False(outputs.IsEmpty, file)

        for KeyValue(n, o) in outputs do
            Assert.True(o.Output.ToDoubleArray() |> Array.forall Double.IsFinite, $"%s{file}: %s{n} is finite")

    // The flat recurrent file by hand: w_rec feeds lif's previous spikes back.
    let doc = NirFile.read (fixture "recurrent_cubalif.nir")
    let g, p = Nir.toGraph NirOptions.defaults doc
    let x = uniform (Random 5) 0.0 20.0 [| 80; 4 |] |> Tensor.convert Float64
    let r = runOn g p 80 [ "input", x ]
    let wIn = (p["w_in"]["weight"])
    let wRec = (p["w_rec"]["weight"])
    let q k = p["lif"][k]
    let dtMs = 1.0
    let a = dtMs / q "tau_mem"
    let b = 1.0 - dtMs / q "tau_syn"
    let gain = q "r" * q "w_in" * (dtMs / q "tau_syn")

    let step (v: Tensor, i: Tensor, z: Tensor) (xt: Tensor) =
        let v1 = v + (q "v_leak" - v + i) * a
        let i' = i * b + (xt.MatMul wIn + z.MatMul wRec) * gain
        let spike = (v1 - q "v_threshold").Gt 0.0
        let v' = v1 * (1.0 - spike) + spike * q "v_reset"
        (v', i', spike), spike

    let zeros = Tensor.Full([| 6 |], 0.0, Float64)
    let _, z = Ad.scan step (zeros, zeros, zeros) x
    Assert.Equal<float[]>(z.ToDoubleArray(), r["lif"].Spikes.ToDoubleArray())
    Assert.True(z.Sum().ToScalar() > 3.0)

[<Fact>]
let ``mixed NIR primitives (LIF, Delay, Scale, IF, Linear, integrator, Threshold) run`` () =
    let g, p = Nir.read (fixture "mixed_nodes.nir")

    let source =
        g.Nodes
        |> List.pick (fun (n, node) ->
            match node with
            | Source _ -> Some n
            | _ -> None)

    let x =
        uniform (Random 6) 0.0 4.0 (Array.append [| 25; 3 |] (Graph.shapeOf g source))
        |> Tensor.convert Float32

    let r = runOn g p 25 [ source, x ]

    for KeyValue(n, o) in r.Observed do
        Assert.True(o.Output.ToDoubleArray() |> Array.forall Double.IsFinite, $"%s{n} is finite")

[<Fact>]
let ``the time unit is explicit: Norse's seconds read as such, and a warning when they are read as milliseconds`` () =
    let _, _ = Nir.readWith (NirOptions.seconds 1e-4) (fixture "legacy/lif_norse.nir")
    let g, _ = Nir.read (fixture "legacy/lif_norse.nir")
    let w = Nir.warnings g
    Assert.Single w |> ignore
    Assert.Contains("seconds", w.Head)
    let g2, _ = Nir.readWith (NirOptions.seconds 1e-4) (fixture "legacy/lif_norse.nir")
    Assert.Empty(Nir.warnings g2)

[<Fact>]
let ``a graph of SnnFunc's own neurons written to NIR reads back as a network with the same dynamics`` () =
    let dt = 0.5e-3

    let g =
        Graph.empty
        |> Graph.input "x" 5
        |> Graph.population
            "hidden"
            8
            (Neuron.lif
                { Snn.Lif.defaults with
                    Dt = dt
                    VTh = 0.4
                }
             |> Neuron.withInit "tauMem" (Init.uniform 8e-3 15e-3))
        |> Graph.population "out" 3 (Neuron.li { Snn.Li.defaults with Dt = dt })
        |> Graph.connect
            "x"
            "hidden"
            (Projection.dense (Init.normalWith 8.0)
             |> Projection.withBias (Init.constant 0.1))
        |> Graph.connect "hidden" "out" (Projection.dense (Init.normalWith 3.0))

    let p = Graph.initAs Float64 (Random.key 9L) g

    let path =
        Path.Combine(Path.GetTempPath(), "snnfunc-own-" + Guid.NewGuid().ToString("N") + ".nir")

    try
        Nir.write path g p
        let doc = NirFile.read path
        Assert.Equal(Some(NirValue.Float 1e-3), doc.Graph.Metadata.TryFind "time_unit")
        Assert.Equal(Some(NirValue.Float dt), doc.Graph.Metadata.TryFind "dt")
        let g2, p2 = Nir.read path

        let x =
            t64 [| 40; 2; 5 |] [ for k in 0..399 -> if (k * 7919) % 11 < 3 then 1.0 else 0.0 ]

        let before = Graph.run g p (RunConfig.steps 40 dt) (Map [ "x", x ])

        let after =
            Graph.run g2 p2 (RunConfig.steps 40 dt |> RunConfig.recording [ "hidden"; "out" ]) (Map [ "x", x ])

        Assert.Equal<float[]>(before["hidden"].Spikes.ToDoubleArray(), after["hidden"].Spikes.ToDoubleArray())
        assertClose "readout membrane" 1e-10 1e-12 before["out"].Membrane after["out"].Membrane
        // And it writes back as the same document.
        NirFileTests.assertSameDoc "own graph" doc (Nir.ofGraph (Nir.optionsOf NirOptions.defaults g2) g2 p2)
    finally
        File.Delete path

[<Fact>]
let ``what NIR cannot express is an error naming the node`` () =
    let g =
        Graph.empty
        |> Graph.input "x" 3
        |> Graph.population
            "h"
            2
            (Neuron.lif
                { Snn.Lif.defaults with
                    Reset = Snn.BySubtraction
                })
        |> Graph.connect "x" "h" (Projection.dense Init.normal)

    let p = Graph.init (Random.key 0L) g

    let e =
        Assert.ThrowsAny<ArgumentException>(fun () -> Nir.ofGraph NirOptions.defaults g p |> ignore)

    Assert.Contains("node 'h'", e.Message)
    Assert.Contains("subtraction", e.Message)

[<Fact>]
let ``NIR options must have a positive finite step and time unit`` () =
    for dt in [ 0.0; -1e-3; nan; infinity ] do
        let e = Assert.Throws<ArgumentException>(fun () -> NirOptions.seconds dt |> ignore)
        Assert.Contains("Dt must be a positive finite number", e.Message)

    let odd =
        { NirOptions.defaults with
            TimeUnit = 0.0
        }

    let e =
        Assert.Throws<ArgumentException>(fun () -> Nir.toGraph odd (NirFile.read (fixture "ff_cubalif.nir")) |> ignore)

    Assert.Contains("TimeUnit", e.Message)

[<Fact>]
let ``NIR's LIF and LI integrate the step's own input: whole runs, steps in a cycle and continued runs agree with the loop`` () =
    for kind in [ NirLif; NirLi ] do
        let neuron =
            Neuron.nir
                {
                    Kind = kind
                    TimeUnit = 1e-3
                    Dt = 1e-3
                    Surrogate = Surrogate.superSpike 100.0
                }
            |> Neuron.withInit "tau" (Init.constant 4.0)
            |> Neuron.withInit "r" (Init.constant 1.5)
            |> Neuron.withInit "v_leak" (Init.constant 0.1)

        let neuron =
            if kind = NirLif then
                neuron
                |> Neuron.withInit "v_threshold" (Init.constant 0.8)
                |> Neuron.withInit "v_reset" (Init.constant -0.2)
            else
                neuron

        let ff =
            Graph.empty
            |> Graph.input "x" 3
            |> Graph.population "h" 3 neuron
            |> Graph.connect "x" "h" (Projection.dense (Init.ofTensor (Tensor.Eye(3, Float64))))
        // The same with a self-loop of zero weight: the population then runs step by step.
        let looped =
            ff
            |> Graph.connect "h" "h" (Projection.dense (Init.ofTensor (Tensor.Full([| 3; 3 |], 0.0, Float64))))

        let x = uniform (Random 9) 0.0 1.0 [| 16; 2; 3 |] |> Tensor.convert Float64

        let run g =
            Graph.run g (Graph.initAs Float64 (Random.key 0L) g) (RunConfig.steps 16 1e-3) (Map [ "x", x ])

        let whole, stepped = run ff, run looped
        // v(t+1) = v + dt/tau (v_leak - v + r x(t)); spike above v_threshold, then v_reset (the
        // Membrane observable is the value before the reset).
        let xs = x.ToDoubleArray()
        let v = Array.zeroCreate 6
        let expected = ResizeArray<float>()

        for t in 0..15 do
            for k in 0..5 do
                v[k] <- v[k] + 0.25 * (0.1 - v[k] + 1.5 * xs[t * 6 + k])
                expected.Add v[k]

                if kind = NirLif && v[k] > 0.8 then
                    v[k] <- -0.2

        let expectedV = t64 [| 16; 2; 3 |] (List.ofSeq expected)
        assertClose $"%A{kind} whole" 1e-12 1e-12 expectedV whole["h"].Membrane
        assertClose $"%A{kind} stepped" 1e-12 1e-12 expectedV stepped["h"].Membrane

        if kind = NirLif then
            Assert.True(whole["h"].Spikes.Sum().ToScalar() > 3.0, "the LIF spikes")

        // Continued from the final state after 7 steps.
        let p = Graph.initAs Float64 (Random.key 0L) ff
        let first = Graph.run ff p (RunConfig.steps 7 1e-3) (Map [ "x", x.Narrow(0, 0, 7) ])

        let rest =
            Graph.run ff p (RunConfig.steps 9 1e-3 |> RunConfig.from first.Final) (Map [ "x", x.Narrow(0, 7, 9) ])

        assertClose $"%A{kind} continued" 1e-12 1e-12 (expectedV.Narrow(0, 7, 9)) rest["h"].Membrane
