/// Convolutional graphs: conv projections and pool transforms against hand-written runs of the
/// Conv ops and fused kernels, NIR's conv2d_pool and conv1d_li files against a nested-loop
/// implementation of NIR's equations (ConvTests' references), and the errors that name the node.
module SnnFunc.Tests.GraphConvTests

open System
open Xunit
open SnnFunc
open SnnFunc.Tests.AdTestUtil
open SnnFunc.Tests.ConvTests

let private dt = 1e-3

let private lif =
    { Snn.Lif.defaults with
        Dt = dt
        VTh = 0.4
    }

let private throws (fragments: string list) (f: unit -> 'a) =
    let e = Assert.ThrowsAny<ArgumentException>(fun () -> f () |> ignore)

    for s in fragments do
        Assert.Contains(s, e.Message)

/// x [2; 6; 6] -> conv 3x3 (4 channels, padding 1, bias) -> LIF [4; 6; 6] -> sum pool 2 -> flatten
/// -> dense -> LI [3]; the same by hand.
let private convGraph =
    Graph.empty
    |> Graph.inputShaped "x" [| 2; 6; 6 |]
    |> Graph.populationShaped "h" [| 4; 6; 6 |] (Neuron.lif lif)
    |> Graph.population "out" 3 (Neuron.li { Snn.Li.defaults with Dt = dt })
    |> Graph.connect
        "x"
        "h"
        (Projection.conv2dWith
            { Conv2dOptions.Default with
                Padding = (1, 1)
            }
            4
            (3, 3)
            (Init.normalWith 3.0)
         |> Projection.withBias (Init.uniform 0.0 0.2))
    |> Graph.transform "pool" (SumPool2d(Pool2dOptions.Of(2, 2)))
    |> Graph.edge "h" "pool"
    |> Graph.transform "flat" (Flatten(0, -1))
    |> Graph.edge "pool" "flat"
    |> Graph.connect "flat" "out" (Projection.dense Init.normal)

/// A LIF population's parameters in the graph's parameters, as the step functions take them.
let private lifParamsIn (m: Map<string, Tensor>) : Snn.Lif.Params =
    {
        TauSyn = m["tauSyn"]
        TauMem = m["tauMem"]
        VLeak = m["vLeak"]
        VTh = m["vTh"]
        VReset = m["vReset"]
    }

let private byHand (p: GraphParams) (x: Tensor) =
    let steps, batch = x.Shape[0], x.Shape[1]
    let w, b = p.["x->h"].["weight"], p.["x->h"].["bias"]

    let currents =
        Conv.conv2dWith
            { Conv2dOptions.Default with
                Padding = (1, 1)
            }
            w
            (Some b)
            (x.Reshape(steps * batch, 2, 6, 6))

    let lifP = lifParamsIn p.["h"]

    let r =
        Fused.lifRun (Snn.Lif.config lif) lifP (Snn.Lif.init [| batch; 4; 6; 6 |] x.DType) (currents.Reshape(steps, batch, 4, 6, 6))

    let pooled =
        Conv.sumPool2d (2, 2) (r.Spikes.Reshape(steps * batch, 4, 6, 6))
        |> fun t -> t.Reshape(steps, batch, 36)

    let li = { Snn.Li.defaults with Dt = dt }
    r.Spikes, Fused.li li (pooled.MatMul p.["flat->out"].["weight"])

[<Fact>]
let ``a conv projection, sum pool and flatten run as the Conv ops and fused kernels by hand, values and gradients`` () =
    let p = Graph.initAs Float64 (Random.key 3L) convGraph
    Assert.Equal<int[]>([| 4; 2; 3; 3 |], p.["x->h"].["weight"].Shape)
    Assert.Equal<int[]>([| 4 |], p.["x->h"].["bias"].Shape)
    Assert.Equal<int[]>([| 36; 3 |], p.["flat->out"].["weight"].Shape)
    Assert.Equal<int[]>([| 36 |], Graph.shapeOf convGraph "flat")
    let x = Random.bernoulliAs Float64 (Random.key 4L) 0.3 [| 20; 2; 2; 6; 6 |]

    let run q =
        Graph.run convGraph q (RunConfig.steps 20 dt) (Map [ "x", x ])

    let r = run p
    let spikes, out = byHand p x
    Assert.Equal<float[]>(spikes.ToDoubleArray(), r.["h"].Spikes.ToDoubleArray())
    Assert.True(spikes.Sum().ToScalar() > 20.0, "the conv population spikes")
    assertClose "readout" 1e-12 1e-12 out r.["out"].Membrane

    // Gradients with respect to the conv weights and bias, through the surrogate.
    let loss (q: GraphParams) = (run q).["out"].Membrane.Square().Sum()

    let lossByHand (w: Tensor, b: Tensor) =
        let q = p.Add("x->h", Map [ "weight", w; "bias", b ])
        (snd (byHand q x)).Square().Sum()

    let g = Ad.grad loss p
    let gw, gb = Ad.grad lossByHand (p.["x->h"].["weight"], p.["x->h"].["bias"])
    assertClose "weight gradient" 1e-10 1e-12 gw g.["x->h"].["weight"]
    assertClose "bias gradient" 1e-10 1e-12 gb g.["x->h"].["bias"]
    Assert.True(gw.Abs().Sum().ToScalar() > 0.0)

[<Fact>]
let ``conv1d projections and average pools infer their shapes; conv within a cycle runs step by step`` () =
    let g =
        Graph.empty
        |> Graph.inputShaped "x" [| 2; 10 |]
        |> Graph.populationShaped "h" [| 3; 8 |] (Neuron.lif lif)
        |> Graph.connect "x" "h" (Projection.conv1d 3 3 (Init.normalWith 4.0))
        // Recurrence through a "same" conv: the population's spikes reach it one step later.
        |> Graph.connectNamed
            "rec"
            "h"
            "h"
            (Projection.conv
                {
                    OutChannels = 3
                    Kernel = [| 3 |]
                    Stride = [| 1 |]
                    Padding = ConvPadding.Same
                    Dilation = [| 1 |]
                    Groups = 1
                }
                Init.normal)

    let p = Graph.initAs Float64 (Random.key 5L) g
    let x = Random.bernoulliAs Float64 (Random.key 6L) 0.4 [| 15; 2; 2; 10 |]
    let r = Graph.run g p (RunConfig.steps 15 dt) (Map [ "x", x ])
    // By hand: the input currents at once, then a scan feeding back the last step's spikes.
    let inCur =
        Conv.conv1d p.["x->h"].["weight"] (x.Reshape(30, 2, 10))
        |> fun t -> t.Reshape(15, 2, 3, 8)

    let c, lp = Snn.Lif.config lif, lifParamsIn p.["h"]

    let step (s: Snn.Lif.State, z: Tensor) (xt: Tensor) =
        let rec' =
            Conv.conv1dWith
                { Conv1dOptions.Default with
                    Padding = 1
                }
                p.["rec"].["weight"]
                None
                z

        let s', z' = Snn.Lif.step c lp s (xt + rec')
        (s', z'), z'

    let _, z =
        Ad.scan step (Snn.Lif.init [| 2; 3; 8 |] Float64, Tensor.Full([| 2; 3; 8 |], 0.0, Float64)) inCur

    Assert.Equal<float[]>(z.ToDoubleArray(), r.["h"].Spikes.ToDoubleArray())
    Assert.True(z.Sum().ToScalar() > 10.0)

    let pooled =
        Graph.empty
        |> Graph.inputShaped "x" [| 2; 5; 7 |]
        |> Graph.transform
            "avg"
            (AvgPool2d
                {
                    Kernel = (3, 2)
                    Stride = (2, 2)
                    Padding = (1, 1)
                })
        |> Graph.edge "x" "avg"

    Assert.Equal<int[]>([| 2; 3; 4 |], Graph.shapeOf pooled "avg")

/// NIR's equations for conv2d_pool.nir by nested loops (ConvTests' references), one sample at a
/// time, Float64: conv1 -> IF -> SumPool2d -> conv2 ("same") -> LIF -> AvgPool2d -> Flatten ->
/// Affine. IF: v += dt r I; LIF: v += dt/tau (v_leak - v + r I) (dt = 1 ms in the file's ms);
/// both spike when v > v_threshold and then take v_reset.
[<Fact>]
let ``conv2d_pool.nir runs as a nested-loop implementation of NIR's equations`` () =
    let doc = NirFile.read (NirFileTests.fixture "conv2d_pool.nir")
    let g, p = Nir.toGraph NirOptions.defaults doc
    let node n = doc.Graph.Nodes[n]
    let d (t: Tensor) = t.ToDoubleArray()

    let conv n =
        match node n with
        | NirNode.Conv2d c -> c
        | _ -> failwith n

    let c1, c2 = conv "conv1", conv "conv2"

    let if1 =
        match node "if1" with
        | NirNode.IF n -> n
        | _ -> failwith "if1"

    let lif2 =
        match node "lif2" with
        | NirNode.LIF n -> n
        | _ -> failwith "lif2"

    let fc =
        match node "fc" with
        | NirNode.Affine a -> a
        | _ -> failwith "fc"

    let spec c h w o pad =
        {
            N = 1
            C = c
            H = h
            W = w
            O = o
            KH = 3
            KW = 3
            SH = 1
            SW = 1
            PH = pad
            PW = pad
            DH = 1
            DW = 1
            Groups = 1
        }

    let s1, s2 = spec 2 8 8 4 1, spec 4 4 4 3 1

    let pool c h =
        { spec c h h c 0 with
            KH = 2
            KW = 2
            SH = 2
            SW = 2
        }

    let steps, batch = 25, 2
    let x = Random.uniformAs Float64 (Random.key 7L) [| steps; batch; 2; 8; 8 |] * 2.0
    let r = Graph.run g p (RunConfig.steps steps dt) (Map [ "input", x ])
    let xs = d x
    let expected1 = Array.zeroCreate (steps * batch * 256)
    let expectedOut = Array.zeroCreate (steps * batch * 2)

    for b in 0 .. batch - 1 do
        let v1 = Array.zeroCreate 256
        let v2 = Array.zeroCreate 48

        for t in 0 .. steps - 1 do
            let input = Array.sub xs ((t * batch + b) * 128) 128
            let i1 = refConv2d s1 input (d c1.Weight) (Some(d c1.Bias))
            let z1 = Array.zeroCreate 256

            for k in 0..255 do
                v1[k] <- v1[k] + (d if1.R)[k] * i1[k]

                if v1[k] > (d if1.VThreshold)[k] then
                    z1[k] <- 1.0
                    v1[k] <- (d if1.VReset)[k]

            Array.blit z1 0 expected1 ((t * batch + b) * 256) 256
            let i2 = refConv2d s2 (refPool Sum (pool 4 8) z1) (d c2.Weight) (Some(d c2.Bias))
            let z2 = Array.zeroCreate 48

            for k in 0..47 do
                v2[k] <-
                    v2[k]
                    + 1.0 / (d lif2.Tau)[k] * ((d lif2.VLeak)[k] - v2[k] + (d lif2.R)[k] * i2[k])

                if v2[k] > (d lif2.VThreshold)[k] then
                    z2[k] <- 1.0
                    v2[k] <- (d lif2.VReset)[k]

            let flat = refPool Avg (pool 3 4) z2
            let w, bias = d fc.Weight, d fc.Bias

            for o in 0..1 do
                expectedOut[(t * batch + b) * 2 + o] <- bias[o] + Seq.sum (seq { for k in 0..11 -> w[o * 12 + k] * flat[k] })

    Assert.Equal<float[]>(expected1, d r.["if1"].Spikes)
    Assert.True(Array.sum expected1 > 100.0, "conv1's neurons spike")
    Assert.True(r.["lif2"].Spikes.Sum().ToScalar() > 5.0, "conv2's neurons spike")
    assertClose "output" 1e-12 1e-12 (t64 [| steps; batch; 2 |] (List.ofArray expectedOut)) r.["output"].Output

[<Fact>]
let ``conv1d_li.nir runs as NIR's conv1d and LI by loops`` () =
    let doc = NirFile.read (NirFileTests.fixture "conv1d_li.nir")
    let g, p = Nir.toGraph NirOptions.defaults doc
    let d (t: Tensor) = t.ToDoubleArray()

    let c =
        match doc.Graph.Nodes["conv"] with
        | NirNode.Conv1d c -> c
        | _ -> failwith "conv"

    let li =
        match doc.Graph.Nodes["li"] with
        | NirNode.LI l -> l
        | _ -> failwith "li"

    let steps = 12
    let x = Random.uniformAs Float64 (Random.key 8L) [| steps; 1; 2; 10 |]
    let r = Graph.run g p (RunConfig.steps steps dt) (Map [ "input", x ])
    let w, bias, xs = d c.Weight, d c.Bias, d x
    let v = Array.zeroCreate 24
    let expected = ResizeArray<float>()

    for t in 0 .. steps - 1 do
        for o in 0..2 do
            for q in 0..7 do
                let cur =
                    bias[o]
                    + Seq.sum (
                        seq {
                            for ci in 0..1 do
                                for k in 0..2 -> w[(o * 2 + ci) * 3 + k] * xs[t * 20 + ci * 10 + q + k]
                        }
                    )

                let j = o * 8 + q
                v[j] <- v[j] + 1.0 / (d li.Tau)[j] * ((d li.VLeak)[j] - v[j] + (d li.R)[j] * cur)

        expected.AddRange v

    assertClose "LI membrane" 1e-12 1e-12 (t64 [| steps; 1; 3; 8 |] (List.ofSeq expected)) r.["output"].Output

[<Fact>]
let ``bad convolutions and pools are errors naming the node`` () =
    let on (shape: int[]) (proj: Projection) =
        Graph.empty
        |> Graph.inputShaped "x" shape
        |> Graph.addNode "c" (Synapses proj)
        |> Graph.edge "x" "c"
        |> Graph.transform "o" Identity
        |> Graph.edge "c" "o"
        |> Graph.validate

    throws [ "convolution 'c'"; "2-d kernel"; "[5; 5]" ] (fun () -> on [| 5; 5 |] (Projection.conv2d 2 (3, 3) Init.normal))

    throws [ "convolution 'c'"; "2 groups"; "3 input channels" ] (fun () ->
        on
            [| 3; 5; 5 |]
            (Projection.conv2dWith
                { Conv2dOptions.Default with
                    Groups = 2
                }
                2
                (3, 3)
                Init.normal))

    throws [ "convolution 'c'"; "leaves no output" ] (fun () -> on [| 1; 2; 2 |] (Projection.conv2d 2 (3, 3) Init.normal))

    throws [ "Projection.conv"; "stride 1" ] (fun () ->
        Projection.conv
            {
                OutChannels = 2
                Kernel = [| 3 |]
                Stride = [| 2 |]
                Padding = ConvPadding.Same
                Dilation = [| 1 |]
                Groups = 1
            }
            Init.normal)

    throws [ "Projection.conv"; "odd dilated kernel" ] (fun () ->
        Projection.conv
            {
                OutChannels = 2
                Kernel = [| 2 |]
                Stride = [| 1 |]
                Padding = ConvPadding.Same
                Dilation = [| 1 |]
                Groups = 1
            }
            Init.normal)

    throws [ "Projection.conv"; "Kernel needs 1 entries" ] (fun () ->
        Projection.conv
            {
                OutChannels = 2
                Kernel = [| 0 |]
                Stride = [| 1 |]
                Padding = ConvPadding.Valid
                Dilation = [| 1 |]
                Groups = 1
            }
            Init.normal)

    throws [ "pool 'p'"; "[channels; height; width]"; "[4]" ] (fun () ->
        Graph.empty
        |> Graph.input "x" 4
        |> Graph.transform "p" (SumPool2d(Pool2dOptions.Of(2, 2)))
        |> Graph.edge "x" "p"
        |> Graph.validate)

    // A window larger than the input (integer division would have given one output row).
    throws [ "pool 'p'"; "leaves no output" ] (fun () ->
        Graph.empty
        |> Graph.inputShaped "x" [| 2; 2; 2 |]
        |> Graph.transform "p" (SumPool2d(Pool2dOptions.Of(3, 3)))
        |> Graph.edge "x" "p"
        |> Graph.validate)

    throws [ "convolution 'c'"; "leaves no output" ] (fun () ->
        on
            [| 1; 2; 9 |]
            (Projection.conv2dWith
                { Conv2dOptions.Default with
                    Stride = (3, 1)
                }
                2
                (3, 3)
                Init.normal))

[<Fact>]
let ``convolution of integer data is an error naming the dtype`` () =
    let x = Tensor.Arange(2 * 9, DType.Int32).Reshape(1, 2, 3, 3)
    let w = Tensor.Full([| 1; 2; 2; 2 |], 1.0, Float32)
    throws [ "Float32 or Float64"; "Int32" ] (fun () -> Conv.conv2d w x)
