/// The BrainScaleS-2 emulator's spiking mode: an ideal chip equals the software backend exactly;
/// a chip's fixed-pattern and trial noise have the configured spreads; weights and readouts are
/// quantised as the chip does; graphs that do not fit fail with the limit named; the
/// hardware-in-the-loop observables carry the software model's derivative.
module SnnFunc.Tests.Bss2Tests

open System
open Xunit
open SnnFunc
open SnnFunc.Backends
open SnnFunc.Tests.TestUtil

let private scale = Bss2Config.defaults.WeightScale

/// A [a; b] weight matrix on the 6-bit grid: k / scale for integer k in [-63, 63].
let private gridWeights (rng: Random) (a: int) (b: int) (bias: int) =
    let w =
        Array.init (a * b) (fun _ -> float (Math.Clamp(rng.Next(-40, 41) + bias, -63, 63)) / scale)

    Init.ofTensor (Tensor.FromArray(w, a, b))

/// x (nIn) -> h (LIF, per-neuron targets, maybe refractory) -> [h2 (LIF) ->] o (LI), weights on
/// the grid, dt 1 ms; and random input spikes [T; B; nIn].
let private randomNet (rng: Random) (dtype: DType) =
    let u lo hi = lo + (hi - lo) * rng.NextDouble()
    let nIn, nH, nO = rng.Next(3, 30), rng.Next(2, 60), rng.Next(1, 8)

    let vec (n: int) lo hi =
        Init.ofTensor (Tensor.FromArray(Array.init n (fun _ -> u lo hi), n))

    let lif (n: int) =
        Neuron.lif
            { Snn.Lif.defaults with
                TauMem = u 4e-3 20e-3
                TauSyn = u 2e-3 10e-3
                RefractorySteps = (if rng.NextDouble() < 0.5 then rng.Next(1, 4) else 0)
            }
        |> Neuron.withInit "vTh" (vec n 0.6 1.2)
        |> Neuron.withInit "vReset" (vec n -0.3 0.2)
        |> Neuron.withInit "tauMem" (vec n 5e-3 15e-3)

    let li =
        Neuron.li
            { Snn.Li.defaults with
                TauMem = u 4e-3 20e-3
                TauSyn = u 2e-3 10e-3
            }

    let mutable g =
        Graph.empty
        |> Graph.input "x" nIn
        |> Graph.population "h" nH (lif nH)
        |> Graph.connect "x" "h" (Projection.dense (gridWeights rng nIn nH 12))

    let last =
        if rng.NextDouble() < 0.5 then
            let n2 = rng.Next(1, 20)

            g <-
                g
                |> Graph.population "h2" n2 (lif n2)
                |> Graph.connect "h" "h2" (Projection.dense (gridWeights rng nH n2 10))

            "h2", n2
        else
            "h", nH

    g <-
        g
        |> Graph.population "o" nO li
        |> Graph.connect (fst last) "o" (Projection.dense (gridWeights rng (snd last) nO 0))

    let steps, batch = 40, rng.Next(1, 4)

    let x =
        Tensor.FromArray(Array.init (steps * batch * nIn) (fun _ -> if rng.NextDouble() < 0.15 then 1.0 else 0.0), steps, batch, nIn)

    g, Graph.initAs dtype (Random.key (int64 (rng.Next()))) g, x.Convert dtype, RunConfig.steps steps 1e-3

let private idealChip = Bss2Emulator(Chip.ideal, Chip.untrimmed, Bss2Config.ideal)

[<Theory>]
[<InlineData("float32")>]
[<InlineData("float64")>]
let ``an ideal chip without noise equals the software backend exactly`` (dtypeName: string) =
    let dtype = if dtypeName = "float64" then Float64 else Float32
    let rng = Random 11
    let mutable spikes = 0.0

    for trial in 1..60 do
        let g, p, x, rc = randomNet rng dtype
        let sw = (SoftwareBackend() :> IBackend).Run(g, p, Map [ "x", x ], rc)
        let hw = (idealChip :> IBackend).Run(g, p, Map [ "x", x ], rc)

        for pop in [ "h"; "h2"; "o" ] do
            match sw.Dense.Observed.TryFind pop with
            | Some s ->
                let e = hw.Dense[pop]
                let what = $"trial %d{trial} %s{pop}"
                Assert.Equal(dtype, e.Membrane.DType)
                assertSameValues $"%s{what} membrane" (s.Membrane.ToDoubleArray()) (e.Membrane.ToDoubleArray())
                assertSameValues $"%s{what} current" (s.Current.ToDoubleArray()) (e.Current.ToDoubleArray())

                if not (isNull s.Spikes) then
                    assertSameValues $"%s{what} spikes" (s.Spikes.ToDoubleArray()) (e.Spikes.ToDoubleArray())
                    spikes <- spikes + s.Spikes.Sum().ToScalar()
            | None -> ()

    // The networks spike (the comparison covers resets and refractory periods).
    Assert.True(spikes > 500.0, $"only %g{spikes} spikes in all trials")

[<Fact>]
let ``off-grid weights are rounded half away from zero and saturate at 63`` () =
    let proj = Projection.dense Init.zeros

    let w =
        Tensor.FromArray([| 0.5 / scale; -0.5 / scale; 1.49 / scale; 2.5 / scale; 100.0; -100.0 |], 2, 3)

    let hw = EmulatorCore.hardwareWeights proj scale w
    Assert.Equal<float[]>([| 1.0; -1.0; 1.0; 3.0; 63.0; -63.0 |], hw)
    let inhibitory = EmulatorCore.hardwareWeights (Projection.inhibitory proj) scale w
    Assert.Equal<float[]>([| -1.0; -1.0; -1.0; -3.0; -63.0; -63.0 |], inhibitory)

[<Fact>]
let ``the ideal chip differs from the software backend when weights are off the grid`` () =
    // The exactness test above is not vacuous: quantisation changes the numbers.
    let rng = Random 5
    let g, p, x, rc = randomNet rng Float64

    let p =
        p
        |> Map.map (fun node m ->
            if node.Contains "->" then
                m |> Map.map (fun _ w -> w + 0.3 / scale)
            else
                m)

    let sw = (SoftwareBackend() :> IBackend).Run(g, p, Map [ "x", x ], rc)
    let hw = (idealChip :> IBackend).Run(g, p, Map [ "x", x ], rc)
    Assert.NotEqual<float[]>(sw.Dense["o"].Membrane.ToDoubleArray(), hw.Dense["o"].Membrane.ToDoubleArray())

/// A graph of one silent input and 512 LIF neurons: every circuit once.
let private wholeChip (vTh: float) =
    Graph.empty
    |> Graph.input "x" 1
    |> Graph.population "n" 512 (Neuron.lif { Snn.Lif.defaults with VTh = vTh })
    |> Graph.connect "x" "n" (Projection.dense Init.zeros)

let private std (xs: float[]) =
    let m = Array.average xs
    sqrt (xs |> Array.averageBy (fun x -> (x - m) * (x - m)))

[<Fact>]
let ``a chip's fixed-pattern deviations have the uncalibrated spreads of the reference table`` () =
    let g = wholeChip 1.0
    let p = Graph.initAs Float64 (Random.key 0L) g
    let spec = Snn.Lif.defaults

    for seed in [ 1L; 2L ] do
        let chip = Bss2Emulator(Chip.create seed, Chip.untrimmed, Bss2Config.defaults)
        let r = chip.Realised(g, p)["n"]
        let u = Bss2Figures.uncalibrated

        let check (what: string) (expected: float) (measured: float) =
            // The standard error of a standard deviation over 512 draws is ~3 %.
            Assert.True(
                abs (measured / expected - 1.0) < 0.12,
                $"seed %d{seed} %s{what}: measured %.4g{measured}, configured %.4g{expected}"
            )

        check "tauMem" u.TauMem (std (r.TauMem |> Array.map (fun t -> t / spec.TauMem - 1.0)))
        check "tauSyn" u.TauSyn (std (r.TauSyn |> Array.map (fun t -> t / spec.TauSyn - 1.0)))
        check "leak" u.Leak (std (r.VLeak |> Array.map (fun v -> (v - spec.VLeak) * Bss2Figures.cadcPerUnit)))
        check "threshold" u.Threshold (std (r.VTh |> Array.map (fun v -> (v - spec.VTh) * Bss2Figures.cadcPerUnit)))
        check "reset" u.Reset (std (r.VReset |> Array.map (fun v -> (v - spec.VReset) * Bss2Figures.cadcPerUnit)))
        check "gain" u.Gain (std r.GainExcitatory)

    // Same seed, same chip; another seed, another chip.
    Assert.Equal<float[]>((Chip.create 1L).Deviation[0], (Chip.create 1L).Deviation[0])
    Assert.NotEqual<float[]>((Chip.create 1L).Deviation[0], (Chip.create 2L).Deviation[0])

[<Fact>]
let ``trial noise gives a resting membrane the configured standard deviation, fresh per trial key`` () =
    let g = wholeChip 1e9
    let p = Graph.initAs Float64 (Random.key 0L) g
    let sigma = 0.05
    let steps = 400

    let config key =
        { Bss2Config.ideal with
            MembraneNoise = sigma
            TrialKey = Random.key key
        }

    let run key =
        let e = Bss2Emulator(Chip.ideal, Chip.untrimmed, config key)
        let x = Tensor.Full([| steps; 4; 1 |], 0.0, Float64)
        (e.Run(g, p, Map [ "x", x ], RunConfig.steps steps 1e-3)).Dense["n"].Membrane.ToDoubleArray()

    let v = run 3L
    // After 10 time constants (100 steps of 1 ms at τm 10 ms) the membrane is stationary.
    let settled = v[100 * 4 * 512 ..]
    let measured = std settled
    Assert.True(abs (measured / sigma - 1.0) < 0.03, $"membrane noise std %.5g{measured}, configured %g{sigma}")
    Assert.True(abs (Array.average settled) < 0.002, $"membrane noise mean %.5g{Array.average settled}")
    Assert.Equal<float[]>(v, run 3L)
    Assert.NotEqual<float[]>(v, run 4L)

[<Fact>]
let ``the CADC readout is 8-bit on the 1.7 µs grid and reads back to within half a code`` () =
    let rng = Random 3
    let g, p, x, rc = randomNet rng Float64
    let exact = (idealChip :> IBackend).Run(g, p, Map [ "x", x ], rc)
    let cadcChip = idealChip.With { Bss2Config.ideal with Readout = Cadc }
    let r = (cadcChip :> IBackend).Run(g, p, Map [ "x", x ], rc)
    let codes = r.Raw["cadc/o"]
    let times = r.RawTimes["cadc/o"]
    // 40 steps of 1 ms model time = 40 µs hardware, sampled every 1.7 µs from 0 to 39 ms.
    Assert.Equal(23, times.Length)
    Assert.Equal(23, codes.Shape[0])

    for c in codes.ToDoubleArray() do
        Assert.True(c >= 0.0 && c <= 255.0 && c = Math.Round c, $"code %g{c}")

    // At a sample time that falls on a step, the code is the exact membrane's, rounded.
    let m = exact.Dense["o"].Membrane.ToDoubleArray()
    let width = m.Length / 40
    let k = 10 // 17 ms: step 17
    let c = codes.ToDoubleArray()

    for q in 0 .. width - 1 do
        let expected = Math.Clamp(Math.Round(80.0 + 70.0 * m[17 * width + q]), 0.0, 255.0)
        Assert.Equal(expected, c[k * width + q])

    Assert.Null(r.Dense["o"].Current)

[<Fact>]
let ``the account charges the run's hardware time and the chip's power`` () =
    let rng = Random 4
    let g, p, x, rc = randomNet rng Float32
    let r = (idealChip :> IBackend).Run(g, p, Map [ "x", x ], rc)
    let a = r.Account.Value
    // 40 steps of 1 ms model time: 40 µs of hardware time per sample.
    Assert.Equal(float x.Shape[1] * 40e-6, a.BackendSeconds, 12)
    Assert.Equal(25000.0, a.SamplesPerSecond, 6)
    Assert.Equal(0.2 * 40e-6, a.JoulesPerSample, 12)

[<Fact>]
let ``spike timestamps lie on the 125 MHz clock`` () =
    let rng = Random 6
    let g, p, x, _ = randomNet rng Float64
    // A step of 1.003 ms model time is 1.003 µs hardware: not a multiple of 8 ns.
    let g =
        { g with
            Nodes =
                g.Nodes
                |> List.map (fun (n, node) ->
                    match node with
                    | Population(s, ({ Model = LifModel spec } as neuron)) ->
                        n,
                        Population(
                            s,
                            { neuron with
                                Model = LifModel { spec with Dt = 1.003e-3 }
                            }
                        )
                    | Population(s, ({ Model = LiModel spec } as neuron)) ->
                        n,
                        Population(
                            s,
                            { neuron with
                                Model = LiModel { spec with Dt = 1.003e-3 }
                            }
                        )
                    | other -> n, other)
        }

    let r =
        (idealChip :> IBackend).Run(g, p, Map [ "x", x ], RunConfig.steps 40 1.003e-3)

    let times = r.Events["h"].Times.ToDoubleArray() |> Array.filter Double.IsFinite
    Assert.NotEmpty times

    for t in times do
        let ticks = t / 8e-6
        Assert.True(abs (ticks - Math.Round ticks) < 1e-6, $"time %g{t} is not on the 8 µs model clock")

[<Fact>]
let ``the MADC records one neuron's membrane as 10-bit codes at 29.4 MSample/s`` () =
    let rng = Random 8
    let g, p, x, rc = randomNet rng Float64

    let e =
        idealChip.With
            { Bss2Config.ideal with
                Madc = Some("h", 1)
            }

    let nH = Graph.shapeOf g "h" |> Array.head

    if nH > 1 then
        let r = (e :> IBackend).Run(g, p, Map [ "x", x ], rc)
        let trace = r.Raw["madc"]
        // 39 ms of model time at 34 µs per sample: samples 0 to 1147.
        Assert.Equal(1148, trace.Shape[0])
        Assert.Equal(x.Shape[1], trace.Shape[1])
        let m = r.Dense["h"].Membrane.ToDoubleArray()
        let width = m.Length / 40
        // Sample 1000 is at 34.0 ms (1000 / 29.41 MHz · 1000), i.e. step 34.
        let expected =
            Math.Clamp(Math.Round(4.0 * (80.0 + 70.0 * m[34 * width + 1])), 0.0, 1023.0)

        Assert.Equal(expected, trace.ToDoubleArray()[1000 * x.Shape[1]])

    assertThrowsArg [ "MADC"; "'nope'" ] (fun () ->
        (idealChip.With
            { Bss2Config.ideal with
                Madc = Some("nope", 0)
            }
        :> IBackend)
            .Run(g, p, Map [ "x", x ], rc))

/// 256 -> hidden -> 10 with signed weights: 512 synapses per neuron, two circuits each.
let private mnistShape (hidden: int) =
    Graph.empty
    |> Graph.input "x" 256
    |> Graph.population "hidden" hidden (Neuron.lif Snn.Lif.defaults)
    |> Graph.population "out" 10 (Neuron.li Snn.Li.defaults)
    |> Graph.connect "x" "hidden" (Projection.dense Init.normal)
    |> Graph.connect "hidden" "out" (Projection.dense Init.normal)

[<Fact>]
let ``Cramer et al.'s 256-246-10 network fills the chip and one more hidden neuron does not fit`` () =
    let placement = Placement.place (mnistShape 246)
    Assert.Equal(512, placement.CircuitsUsed)
    Assert.Equal(2, placement.Populations["hidden"].Compartments)

    let all =
        placement.Populations
        |> Map.values
        |> Seq.collect (fun p -> p.Circuits |> Seq.collect id)
        |> Array.ofSeq

    Assert.Equal(512, (Array.distinct all).Length)
    // Each two-compartment neuron takes one column in both hemispheres.
    Assert.Equal<int[]>([| 0; 256 |], placement.Populations["hidden"].Circuits[0])

    assertThrowsArg
        [
            "514 neuron circuits"
            "512"
            "'hidden' 247 neurons x 2 circuit(s) (512 synapses each"
        ]
        (fun () -> Placement.place (mnistShape 247))

[<Fact>]
let ``graphs the chip cannot run fail with the node named`` () =
    let cyclic =
        mnistShape 10 |> Graph.connect "hidden" "hidden" (Projection.dense Init.normal)

    assertThrowsArg [ "cycle"; "hidden" ] (fun () -> Placement.place cyclic)

    let conv =
        Graph.empty
        |> Graph.inputShaped "x" [| 1; 8; 8 |]
        |> Graph.populationShaped "c" [| 2; 6; 6 |] (Neuron.lif Snn.Lif.defaults)
        |> Graph.connect "x" "c" (Projection.conv2d 2 (3, 3) Init.normal)

    assertThrowsArg [ "'x->c'"; "convolution" ] (fun () -> Placement.place conv)

    let adex =
        Graph.empty
        |> Graph.input "x" 2
        |> Graph.population "a" 2 (Neuron.adex Snn.AdEx.defaults)
        |> Graph.connect "x" "a" (Projection.dense Init.normal)

    assertThrowsArg [ "'a'"; "LIF and LI" ] (fun () -> Placement.place adex)

    let biased =
        mnistShape 10
        |> Graph.connect "x" "out" (Projection.dense Init.normal |> Projection.withBias Init.zeros)

    assertThrowsArg [ "'x->out'"; "bias" ] (fun () -> Placement.place biased)

[<Fact>]
let ``hardware-in-the-loop observables have the backend's values exactly`` () =
    let rng = Random 9
    let g, p, x, rc = randomNet rng Float32
    let chip = Bss2Emulator(Chip.create 3L, Chip.untrimmed, Bss2Config.defaults)
    let hw = (chip :> IBackend).Run(g, p, Map [ "x", x ], rc)
    let r = Hil.run g p rc (Map [ "x", x ]) hw

    for pop in [ "h"; "o" ] do
        assertSameValues $"%s{pop} membrane" (hw.Dense[pop].Membrane.ToDoubleArray()) (r[pop].Membrane.ToDoubleArray())

    assertSameValues "h spikes" (hw.Dense["h"].Spikes.ToDoubleArray()) (r["h"].Spikes.ToDoubleArray())

[<Fact>]
let ``without spikes the hardware-in-the-loop gradient is the software model's`` () =
    // x -> LI: no reset to skip, so the observed trajectory of an ideal chip and the software
    // model's are the same and so are their gradients.
    let rng = Random 10

    let g =
        Graph.empty
        |> Graph.input "x" 12
        |> Graph.population "o" 4 (Neuron.li Snn.Li.defaults)
        |> Graph.connect "x" "o" (Projection.dense (gridWeights rng 12 4 0))

    let p = Graph.initAs Float64 (Random.key 1L) g
    let rc = RunConfig.steps 30 1e-3

    let x =
        Tensor.FromArray(Array.init (30 * 3 * 12) (fun _ -> if rng.NextDouble() < 0.2 then 1.0 else 0.0), 30, 3, 12)

    let hw = (idealChip :> IBackend).Run(g, p, Map [ "x", x ], rc)

    let loss (r: RunResult) =
        (Decode.maxOverTime r["o"].Membrane).Square().Sum()

    let gHil = Ad.grad (fun p -> loss (Hil.run g p rc (Map [ "x", x ]) hw)) p
    let gSw = Ad.grad (fun p -> loss (Graph.run g p rc (Map [ "x", x ]))) p

    for node in [ "x->o"; "o" ] do
        for KeyValue(name, t) in gSw[node] do
            let hil = gHil[node][name]
            assertCloseValues $"%s{node}/%s{name}" 1e-10 (t.ToDoubleArray()) (hil.ToDoubleArray())

[<Fact>]
let ``the hardware-in-the-loop gradient is closed under vmap and forward mode`` () =
    let rng = Random 12
    let g, p, x, rc = randomNet rng Float64
    let chip = Bss2Emulator(Chip.create 5L, Chip.untrimmed, Bss2Config.defaults)
    let hw = (chip :> IBackend).Run(g, p, Map [ "x", x ], rc)
    let w0 = p["x->h"]["weight"]

    let loss (w: Tensor) =
        let p = p |> Map.add "x->h" (Map [ "weight", w ])
        let r = Hil.run g p rc (Map [ "x", x ]) hw
        (r["o"].Membrane * r["o"].Membrane).Sum() + r["h"].Spikes.Sum()

    let grad = Ad.grad loss w0
    Assert.True(grad.Abs().Sum().ToScalar() > 0.0, "the gradient reaches the input weights")
    // Dot-product test: jvp along a random direction equals <grad, direction>.
    let direction = Random.normalAs Float64 (Random.key 2L) w0.Shape
    let _, tangent = Ad.jvp loss w0 direction
    Assert.Equal((grad * direction).Sum().ToScalar(), tangent.ToScalar(), 8)
    // vmap of the gradient over two weight matrices equals the two gradients.
    let ws = Tensor.Stack([| w0; w0 * 0.5 |], 0)
    let batched = Ad.vmap (Ad.grad loss) ws

    let row (i: int) =
        batched.Slice([| i; 0; 0 |], [| 1; w0.Shape[0]; w0.Shape[1] |]).ToDoubleArray()

    assertCloseValues "vmap(grad)[0]" 1e-12 (grad.ToDoubleArray()) (row 0)
    assertCloseValues "vmap(grad)[1]" 1e-12 ((Ad.grad loss (w0 * 0.5)).ToDoubleArray()) (row 1)

[<Fact>]
let ``with spikes only, the hardware-in-the-loop gradient of an ideal chip is the software model's`` () =
    // Populations that take only the observed spikes integrate the model's membrane and reset it
    // with those spikes: on an ideal chip, the software model's run and derivative.
    let rng = Random 13

    let g =
        Graph.empty
        |> Graph.input "x" 10
        |> Graph.population "h" 16 (Neuron.lif Snn.Lif.defaults)
        |> Graph.population "o" 3 (Neuron.li Snn.Li.defaults)
        |> Graph.connect "x" "h" (Projection.dense (gridWeights rng 10 16 12))
        |> Graph.connect "h" "o" (Projection.dense (gridWeights rng 16 3 0))

    let p = Graph.initAs Float64 (Random.key 1L) g
    let rc = RunConfig.steps 30 1e-3

    let x =
        Tensor.FromArray(Array.init (30 * 3 * 10) (fun _ -> if rng.NextDouble() < 0.2 then 1.0 else 0.0), 30, 3, 10)

    let hw = (idealChip :> IBackend).Run(g, p, Map [ "x", x ], rc)
    Assert.True(hw.Dense["h"].Spikes.Sum().ToScalar() > 20.0)

    let loss (r: RunResult) =
        (Decode.maxOverTime r["o"].Membrane).Square().Sum() + r["h"].Spikes.Sum() * 0.1

    let gHil =
        Ad.grad (fun p -> loss (Hil.runWith ((=) "o") g p rc (Map [ "x", x ]) hw)) p

    let gSw = Ad.grad (fun p -> loss (Graph.run g p rc (Map [ "x", x ]))) p

    for node in [ "x->h"; "h->o" ] do
        let hil, sw = gHil[node]["weight"], gSw[node]["weight"]
        assertCloseValues $"%s{node}" 1e-9 (sw.ToDoubleArray()) (hil.ToDoubleArray())

[<Fact>]
let ``a trace scale reads k times the model range and scales the voltage noise with it`` () =
    let g = wholeChip 1e9
    let p = Graph.initAs Float64 (Random.key 0L) g
    let k = 4.0

    let config =
        { Bss2Config.defaults with
            TraceScales = Map [ "n", k ]
        }

    let chip = Bss2Emulator(Chip.create 1L, Chip.untrimmed, config)
    let plain = Bss2Emulator(Chip.create 1L, Chip.untrimmed, Bss2Config.defaults)
    let leak (e: Bss2Emulator) = (e.Realised(g, p)["n"]).VLeak
    // Deviations fixed in codes are k times larger in model units.
    assertCloseValues "leak" 1e-12 (leak plain |> Array.map (fun v -> v * k)) (leak chip)
    // A membrane of 2 model units reads 80 + 70 / 4 · 2 = 115.
    Assert.Equal(115.0, EmulatorCore.cadcCode (Bss2Config.codesPerUnit config "n") 2.0)
    Assert.Equal(255.0, EmulatorCore.cadcCode (Bss2Config.codesPerUnit Bss2Config.defaults "n") 2.6)

[<Fact>]
let ``on event inputs an ideal chip spikes at the exact crossing, to its step and clock`` () =
    // One input spike at 1 ms, weight w = 6 on the grid of scale 8, τm = 2τs: the closed-form
    // first spike time is t_in − τm ln((1 + sqrt(1 − 4/w)) / 2).
    let lif =
        { Snn.Lif.defaults with
            TauMem = 10e-3
            TauSyn = 5e-3
            VTh = 1.0
            VReset = 0.0
            VLeak = 0.0
        }

    let g =
        Graph.empty
        |> Graph.input "x" 1
        |> Graph.population "h" 1 (Neuron.lif lif)
        |> Graph.connect "x" "h" (Projection.dense (Init.constant 6.0))

    let p = Graph.initAs Float64 (Random.key 0L) g
    let exact = 1e-3 - 10e-3 * log ((1.0 + sqrt (1.0 - 4.0 / 6.0)) / 2.0)

    // One sample: neuron 0 of the source spikes at 1 ms.
    let input = EventBuffer.ofEvents Float64 [| 1 |] 1 [| [| 1e-3, 0 |] |]

    let chip =
        idealChip.With
            { Bss2Config.ideal with
                WeightScale = 8.0
            }

    let dt = 10e-6
    let r = chip.RunEvents(g, p, Map [ "x", input ], 20e-3, dt)
    let t = (EventBuffer.firstSpikeTimes r.Events["h"]).ToScalar()
    let clock = Bss2Figures.timestampClock * Bss2Figures.acceleration
    Assert.True(abs (t - exact) <= 2.0 * dt + clock / 2.0, $"chip %g{t} s against the exact %g{exact} s")
    Assert.True(abs (t / clock - Math.Round(t / clock)) < 1e-6, $"%g{t} s is off the 8 ns clock")
    Assert.Equal(Float64, r.Events["h"].Times.DType)

    // The software replay of the chip's spikes reports them; a population without events is named.
    let config = { Events.defaults with TEnd = 20e-3 }
    let replayed = Hil.runEvents g p config (Map [ "x", input ]) r
    Assert.Equal(t, (EventBuffer.firstSpikeTimes replayed["h"]).ToScalar())

    let e =
        Assert.ThrowsAny<ArgumentException>(fun () ->
            Hil.runEvents g p config (Map [ "x", input ]) { r with Events = Map.empty }
            |> ignore)

    Assert.Contains("'h'", e.Message)
