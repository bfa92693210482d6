/// Layers and combinators by central finite differences in Float64, the surrogate path by the
/// dot-product test of the two AD modes and by an unrolled reference; encoders, decoders, losses.
///
/// A spike is a step, so its true derivative is 0 almost everywhere and finite differences cannot
/// see a surrogate. The spiking layers are therefore checked twice: (1) with a boxcar surrogate far
/// narrower than any distance to threshold, AD must give the exact derivative of the piecewise-smooth
/// forward pass — checked by finite differences on the membrane (leak, synapse, resets that carry no
/// gradient, adaptation, refractory gating, AdEx's exponential term); (2) with SuperSpike, the
/// surrogate path is checked by <grad, v> = jvp(v) and, for recurrent LIF, against an unrolled loop.
module SnnFunc.Tests.LayerTests

open System
open Xunit
open SnnFunc
open SnnFunc.Tests.TestUtil
open SnnFunc.Tests.SnnCheck

let private f64 =
    { Layers.denseDefaults with
        DType = Float64
    }

let private key (seed: int64) = Random.key seed
let private to64 (p: Params) : Params = Tree.map (fun t -> t.Convert Float64) p

/// A smooth scalar of an output: sum of tanh(y) weighted by fixed random coefficients.
let private smoothLoss (seed: int64) (y: Tensor) =
    (y.Tanh() * randn seed y.Shape 1.0).Sum()

let private fdEps, fdRel, fdAbs = 1e-6, 1e-6, 1e-9

// ---------------------------------------------------------------------------------------------
// Dense, LI and combinators

[<Fact>]
let ``dense: gradient by finite differences (weights, bias and input; dense and sparse spike input)`` () =
    let layer = Layers.denseWith { f64 with Bias = true } 4
    let p, outShape = Layer.init layer (key 1L) [| 5 |]
    Assert.Equal<int[]>([| 4 |], outShape)
    let x = randn 2L [| 3; 2; 5 |] 1.0
    checkGradFd "dense (params, x)" fdEps fdRel fdAbs (fun (p, x) -> smoothLoss 3L (Layer.apply layer p x)) (p, x)
    // Sparse 0/1 input takes the accumulation path; the weight gradient must be the same.
    let spikes = (uniform 4L [| 30; 2; 5 |] 0.0 1.0).Lt 0.1
    checkGradFd "dense (spike input)" fdEps fdRel fdAbs (fun p -> smoothLoss 5L (Layer.apply layer p spikes)) p

[<Fact>]
let ``li: gradient by finite differences through a dense layer, with VLeak not 0`` () =
    let li =
        { Snn.Li.defaults with
            VLeak = 0.2
            Dt = 5e-4
        }

    let net = Layers.serial [ Layers.denseWith f64 3; Layers.li li ]
    let p, _ = Layer.init net (key 6L) [| 4 |]
    let x = randn 7L [| 25; 2; 4 |] 1.0
    checkGradFd "li (params, x)" fdEps fdRel fdAbs (fun (p, x) -> smoothLoss 8L (Layer.apply net p x)) (p, x)
    // Max over time and cross-entropy, the usual readout loss.
    let ce p =
        Loss.crossEntropy (Decode.maxOverTime (Layer.apply net p x)) [| 2; 0 |]

    checkGradFd "li + max-over-time + cross-entropy" fdEps fdRel fdAbs ce p

[<Fact>]
let ``serial, parallel, fanOut and fanInSum: shapes and gradient by finite differences`` () =
    let net =
        Layers.serial
            [
                Layers.fanOut 2
                Layers.``parallel``
                    [
                        Layers.denseWith { f64 with Bias = true } 4
                        Layers.serial [ Layers.denseWith f64 4; Layers.ofFunction "tanh" (fun x -> x.Tanh()) ]
                    ]
                Layers.fanInSum
                Layers.denseWith f64 2
            ]

    let p, outShape = Layer.init net (key 9L) [| 3 |]
    Assert.Equal<int[]>([| 2 |], outShape)
    let x = randn 10L [| 5; 3 |] 1.0
    checkGradFd "combinators" fdEps fdRel fdAbs (fun (p, x) -> smoothLoss 11L (Layer.apply net p x)) (p, x)
    // The composition computes what it says: d2 (d1a x + tanh (d1b x)).
    match p with
    | Children [ NoParams; Children [ pa; Children [ pb; NoParams ] ]; NoParams; pc ] ->
        let expected =
            (x.MatMul pa["W"] + pa["b"] + (x.MatMul pb["W"]).Tanh()).MatMul pc["W"]

        assertTensorClose "composition" 1e-14 1e-14 expected (Layer.apply net p x)
    | other -> failwithf "unexpected parameter tree %A" other
    // Several inputs and outputs through branches.
    let two = Layers.branches [ Layers.denseWith f64 2; Layers.ofFunction "id" id ]
    let p2, shapes = two.Init (key 12L) [ [| 3 |]; [| 7 |] ]
    Assert.Equal<int[] list>([ [| 2 |]; [| 7 |] ], shapes)
    Assert.Equal(2, (two.Apply p2 Eval [ x; randn 13L [| 5; 7 |] 1.0 ]).Length)
    assertThrowsArg [ "fanInSum"; "shapes differ" ] (fun () -> Layers.fanInSum.Init (key 1L) [ [| 2 |]; [| 3 |] ])
    assertThrowsArg [ "parallel"; "2 layers but 1 inputs" ] (fun () -> two.Init (key 1L) [ [| 3 |] ])

[<Fact>]
let ``dropout: identity in Eval mode, a fixed scaled mask in Train mode; gradients by finite differences`` () =
    let net =
        Layers.serial [ Layers.denseWith f64 6; Layers.dropout 0.5; Layers.denseWith f64 2 ]

    let plain =
        Layers.serial [ Layers.denseWith f64 6; Layers.ofFunction "id" id; Layers.denseWith f64 2 ]

    let p, _ = Layer.init net (key 14L) [| 3 |]
    let x = randn 15L [| 8; 3 |] 1.0
    assertSame "Eval dropout is the identity" (Layer.apply plain p x) (Layer.apply net p x)
    checkGradFd "dropout (Eval)" fdEps fdRel fdAbs (fun (p, x) -> smoothLoss 16L (Layer.apply net p x)) (p, x)
    let k = key 17L
    checkGradFd "dropout (Train, fixed key)" fdEps fdRel fdAbs (fun (p, x) -> smoothLoss 16L (Layer.applyTrain net p k x)) (p, x)
    // The mask: about `rate` of the elements zeroed, the rest scaled by 1 / (1 - rate).
    let ones = Tensor.Full([| 200; 50 |], 1.0, Float64)
    let y = values (Layer.applyTrain (Layers.dropout 0.3) NoParams (key 18L) ones)
    Assert.True(y |> Array.forall (fun v -> v = 0.0 || abs (v - 1.0 / 0.7) < 1e-15))
    let dropped = float (y |> Array.filter ((=) 0.0) |> Array.length) / float y.Length
    Assert.True(abs (dropped - 0.3) < 0.02, $"dropped fraction %g{dropped}")
    assertSame "same key, same mask" (t64 y [| 200; 50 |]) (Layer.applyTrain (Layers.dropout 0.3) NoParams (key 18L) ones)
    assertThrowsArg [ "dropout"; "[0, 1)" ] (fun () -> Layers.dropout 1.0)

// ---------------------------------------------------------------------------------------------
// Spiking layers, (1): exact derivative of the membrane dynamics by finite differences

/// A surrogate that is exactly zero farther than 5e-13 from threshold: AD then computes the true
/// derivative of the forward pass (spikes held fixed), which finite differences can check.
let private exactOnly = Surrogate.boxcar 1e-12

/// A layer that scans a step function and outputs a membrane-valued quantity.
let private membraneLayer name init (step: 'S -> Tensor -> 'S * Tensor) (observe: 'S -> Tensor -> Tensor) =
    Layers.ofStep name init (fun s x -> let s', z = step s x in s', observe s' z)

let private checkSpikingFd (what: string) (layer: Layer) (steps: int) (scale: float) (seed: int64) (spikeCount: Params -> Tensor -> float) =
    let net = Layers.serial [ Layers.denseWith { f64 with Scale = scale } 4; layer ]
    let p, _ = Layer.init net (key seed) [| 3 |]
    let x = uniform (seed + 1L) [| steps; 2; 3 |] 0.0 1.0
    let count = spikeCount p x
    Assert.True(count >= 4.0, $"%s{what}: only %g{count} spikes; the reset path would go untested")
    checkGradFd what fdEps 1e-5 1e-8 (fun (p, x) -> smoothLoss (seed + 2L) (Layer.apply net p x)) (p, x)

[<Fact>]
let ``lif (generic step): exact membrane derivative with resets by finite differences`` () =
    for reset in [ Snn.ToValue; Snn.BySubtraction ] do
        let p =
            { Snn.Lif.defaults with
                Surrogate = exactOnly
                Reset = reset
                VLeak = 0.1
                VReset = -0.1
            }

        let layer =
            Layers.ofStep "lif-membrane" Snn.Lif.init (fun s x ->
                let s', (z, v) = Snn.Lif.stepWithMembraneOf p s x in s', v + 0.5 * s'.V + z)

        let spikes (ps: Params) (x: Tensor) =
            match ps with
            | Children [ d; _ ] -> (Layer.apply (Layers.lifGeneric p) NoParams (x.MatMul d["W"])).Sum().ToScalar()
            | _ -> 0.0

        checkSpikingFd $"lif %A{reset}" layer 40 6.0 20L spikes

[<Fact>]
let ``alif: exact membrane derivative with adaptation by finite differences`` () =
    let p =
        { Snn.Alif.defaults with
            Beta = 0.3
            TauAdapt = 20e-3
            Lif =
                { Snn.Lif.defaults with
                    Surrogate = exactOnly
                    VLeak = 0.05
                }
        }

    let layer =
        membraneLayer "alif-membrane" Snn.Alif.init (Snn.Alif.stepOf p) (fun s z -> s.V + s.A * 0.1 + z)

    let spikes (ps: Params) (x: Tensor) =
        match ps with
        | Children [ d; _ ] -> (Layer.apply (Layers.alif p) NoParams (x.MatMul d["W"])).Sum().ToScalar()
        | _ -> 0.0

    checkSpikingFd "alif" layer 40 6.0 30L spikes

[<Fact>]
let ``adex: exact membrane derivative (exponential term, adaptation current, refractory period) by finite differences`` () =
    let p =
        { Snn.AdEx.defaults with
            Surrogate = exactOnly
            A = 0.3
            B = 0.05
            Dt = 2e-4
            TRef = 1e-3
        }

    let layer =
        membraneLayer "adex-membrane" Snn.AdEx.init (Snn.AdEx.stepOf p) (fun s z -> s.V + s.W + z)

    let spikes (ps: Params) (x: Tensor) =
        match ps with
        | Children [ d; _ ] -> (Layer.apply (Layers.adex p) NoParams (x.MatMul d["W"])).Sum().ToScalar()
        | _ -> 0.0

    checkSpikingFd "adex" layer 60 1.5 40L spikes

[<Fact>]
let ``integrateAndFire: exact membrane derivative by finite differences`` () =
    for reset in [ Snn.ToValue; Snn.BySubtraction ] do
        let p =
            { Snn.IF.defaults with
                Surrogate = exactOnly
                Reset = reset
            }

        let layer =
            membraneLayer "if-membrane" Snn.IF.init (Snn.IF.stepOf p) (fun s z -> s.V + z)

        let spikes (ps: Params) (x: Tensor) =
            match ps with
            | Children [ d; _ ] -> (Layer.apply (Layers.integrateAndFire p) NoParams (x.MatMul d["W"])).Sum().ToScalar()
            | _ -> 0.0

        checkSpikingFd $"if %A{reset}" layer 20 1.0 50L spikes

// ---------------------------------------------------------------------------------------------
// Spiking layers, (2): the surrogate path

/// dense -> spiking layer -> dense -> LI -> max over time -> cross-entropy, in Float64.
let private readoutNet (spiking: Layer) (hidden: int) (scale: float) =
    Layers.serial
        [
            Layers.denseWith { f64 with Scale = scale } hidden
            spiking
            Layers.denseWith { f64 with Scale = 2.0 } 3
            Layers.li Snn.Li.defaults
        ]

let private checkSurrogatePath (what: string) (spiking: Layer) (steps: int) (scale: float) (seed: int64) =
    let net = readoutNet spiking 6 scale
    let p, _ = Layer.init net (key seed) [| 4 |]
    let p = to64 p
    let x = uniform (seed + 1L) [| steps; 3; 4 |] 0.0 1.0
    // A smooth readout loss: max over time has ties at the zero initial membrane.
    let loss p =
        smoothLoss (seed + 2L) (Layer.apply net p x)

    let v = Tree.map (fun (t: Tensor) -> randn (seed + int64 t.Count) t.Shape 1.0) p
    checkJvpVjp what 1e-10 loss p v
    // The gradient reaches the input weights only through the surrogate.
    match Ad.grad loss p with
    | Children(first :: _) -> Assert.True(values first["W"] |> Array.exists ((<>) 0.0), $"%s{what}: no gradient reached the input weights")
    | other -> failwithf "unexpected tree %A" other

[<Fact>]
let ``spiking layers: surrogate gradients agree in forward and reverse mode (dot-product test)`` () =
    checkSurrogatePath "lif (fused)" (Layers.lif Snn.Lif.defaults) 40 6.0 60L

    checkSurrogatePath
        "lif (generic)"
        (Layers.lifGeneric
            { Snn.Lif.defaults with
                Reset = Snn.BySubtraction
            })
        40
        6.0
        61L

    checkSurrogatePath "alif" (Layers.alif Snn.Alif.defaults) 40 6.0 62L
    checkSurrogatePath "adex" (Layers.adex { Snn.AdEx.defaults with Dt = 2e-4 }) 60 1.5 63L
    checkSurrogatePath "if" (Layers.integrateAndFire Snn.IF.defaults) 20 1.0 64L
    checkSurrogatePath "recurrentLif" (Layers.recurrentLif Snn.Lif.defaults 3.0 6) 40 6.0 65L

[<Fact>]
let ``fused lif layer and generic lif layer give the same network gradient`` () =
    let x = uniform 70L [| 40; 3; 4 |] 0.0 1.0

    let fused, generic =
        readoutNet (Layers.lif Snn.Lif.defaults) 8 6.0, readoutNet (Layers.lifGeneric Snn.Lif.defaults) 8 6.0

    let p, _ = Layer.init fused (key 71L) [| 4 |]

    let loss net p =
        Loss.crossEntropy (Decode.maxOverTime (Layer.apply net p x)) [| 0; 2; 1 |]

    let lf, gf = Ad.valueAndGrad (loss fused) p
    let lg, gg = Ad.valueAndGrad (loss generic) p
    Assert.Equal(lg.ToScalar(), lf.ToScalar(), 13)
    Array.iter2 (fun e a -> assertTensorClose "fused vs generic network gradient" 1e-10 1e-13 e a) (Tree.leaves gg) (Tree.leaves gf)

[<Fact>]
let ``recurrentLif equals an unrolled loop in value and surrogate gradient`` () =
    let lif = { Snn.Lif.defaults with VLeak = 0.05 }
    let layer = Layers.recurrentLif lif 4.0 5
    let p, _ = Layer.init layer (key 80L) [| 3 |]
    let p = to64 p
    let x = uniform 81L [| 30; 2; 3 |] 0.0 1.0
    let coef = randn 82L [| 30; 2; 5 |] 1.0

    let unrolled (p: Params) =
        let w, r = p["W"], p["R"]
        let mutable s = Snn.Lif.init [| 2; 5 |] Float64
        let mutable z = Tensor.Full([| 2; 5 |], 0.0, Float64)

        let zs =
            [|
                for t in 0..29 do
                    let xt = x.Narrow(0, t, 1).Squeeze 0
                    let s', z' = Snn.Lif.stepOf lif s (xt.MatMul w + z.MatMul r)
                    s <- s'
                    z <- z'
                    yield z'
            |]

        Tensor.Stack zs

    let zLayer = Layer.apply layer p x
    assertSame "recurrent spikes" (unrolled p) zLayer
    Assert.True((values zLayer |> Array.sum) > 10.0)
    let g = Ad.grad (fun p -> (Layer.apply layer p x * coef).Sum()) p
    let gRef = Ad.grad (fun p -> (unrolled p * coef).Sum()) p
    Array.iter2 (fun e a -> assertTensorClose "recurrent gradient" 1e-11 1e-13 e a) (Tree.leaves gRef) (Tree.leaves g)
    Assert.True(values g["R"] |> Array.exists ((<>) 0.0), "the recurrent weights get a gradient")

// ---------------------------------------------------------------------------------------------
// Encoders

let private spikeSteps (z: Tensor) =
    // [T; 1; N] -> for each n the steps where it spikes.
    let t, n = z.Shape[0], z.Shape[2]
    let v = values z

    Array.init n (fun j ->
        [|
            for s in 0 .. t - 1 do
                if v[s * n + j] = 1.0 then
                    yield s
        |])

[<Fact>]
let ``latency coding: one spike at u · tLate (or (1 - u) · tLate), rounded to the nearest step`` () =
    let x = t64 [| 0.0; 0.26; 0.5; 0.73; 1.0 |] [| 1; 5 |]
    Assert.Equal<int[][]>([| [| 0 |]; [| 3 |]; [| 5 |]; [| 7 |]; [| 10 |] |], spikeSteps (Encode.latency 20 1e-3 10e-3 false x))
    Assert.Equal<int[][]>([| [| 10 |]; [| 7 |]; [| 5 |]; [| 3 |]; [| 0 |] |], spikeSteps (Encode.latency 20 1e-3 10e-3 true x))
    // Beyond the window: no spike.
    Assert.Equal<int[][]>([| [||]; [| 2 |] |], spikeSteps (Encode.latency 5 1e-3 10e-3 true (t64 [| 0.0; 0.8 |] [| 1; 2 |])))
    Assert.Equal(Float32, (Encode.latency 5 1e-3 1e-3 false (Tensor.Zeros(2, 3))).DType)
    assertThrowsArg [ "Encode.latency"; "[0, 1]" ] (fun () -> Encode.latency 5 1e-3 1e-3 false (t64 [| 1.5 |] [| 1; 1 |]))
    // A value a hair above 1 (area averaging in float32 can produce one) is shown as it is, not as "1".
    assertThrowsArg [ "Encode.latency"; "got 1.0000001" ] (fun () ->
        Encode.latency 5 1e-3 1e-3 false (Tensor.FromArray([| 1.0000001f |], 1, 1)))

    assertThrowsArg [ "Encode.latency"; "[B; N]" ] (fun () -> Encode.latency 5 1e-3 1e-3 false (t64 [| 0.5 |] [| 1 |]))

[<Fact>]
let ``logarithmic latency coding: t = tau ln(x / (x - theta)); x <= theta never spikes`` () =
    let tau, theta, dt = 5e-3, 0.2, 1e-5
    let xs = [| 0.1; 0.2; 0.21; 0.3; 0.5; 0.9; 1.0; 3.0 |]
    let z = Encode.logLatency 4000 dt tau theta (t64 xs [| 1; xs.Length |])

    let expected =
        xs
        |> Array.map (fun x ->
            if x <= theta then
                [||]
            else
                [| int (Math.Round(tau * Math.Log(x / (x - theta)) / dt)) |])

    Assert.Equal<int[][]>(expected, spikeSteps z)
    // Spot value: x = 0.4 -> tau ln 2.
    Assert.Equal<int[][]>(
        [| [| int (Math.Round(tau * Math.Log 2.0 / dt)) |] |],
        spikeSteps (Encode.logLatency 4000 dt tau theta (t64 [| 0.4 |] [| 1; 1 |]))
    )

    assertThrowsArg [ "Encode.logLatency"; "positive" ] (fun () -> Encode.logLatency 10 dt 0.0 theta (t64 [| 0.4 |] [| 1; 1 |]))

[<Fact>]
let ``poisson coding: rate statistics and determinism by key`` () =
    let rate, dt, steps, batch = 100.0, 1e-3, 2000, 50
    let u = [| 0.0; 0.25; 0.5; 1.0 |]

    let x =
        t64 (Array.init (batch * u.Length) (fun k -> u[k % u.Length])) [| batch; u.Length |]

    let z = Encode.poisson (key 90L) steps dt rate x
    Assert.Equal<int[]>([| steps; batch; u.Length |], z.Shape)
    Assert.True(values z |> Array.forall (fun v -> v = 0.0 || v = 1.0))
    let perSample = values (z.Sum(0).Mean 0)

    for j in 0 .. u.Length - 1 do
        let p = rate * u[j] * dt
        let mean = float steps * p
        let sd = sqrt (float steps * p * (1.0 - p) / float batch)

        Assert.True(
            abs (perSample[j] - mean) <= 5.0 * sd + 1e-12,
            $"u = %g{u[j]}: %g{perSample[j]} spikes per sample, expected %g{mean} ± %g{sd}"
        )

    assertSame "same key, same spikes" z (Encode.poisson (key 90L) steps dt rate x)
    Assert.NotEqual<float[]>(values z, values (Encode.poisson (key 91L) steps dt rate x))
    assertThrowsArg [ "Encode.poisson"; "[0, 1]" ] (fun () -> Encode.poisson (key 1L) 10 dt rate (t64 [| -0.1 |] [| 1; 1 |]))

[<Fact>]
let ``current coding repeats the values at every step`` () =
    let x = randn 92L [| 2; 3 |] 1.0
    let c = Encode.current 4 x
    Assert.Equal<int[]>([| 4; 2; 3 |], c.Shape)

    for t in 0..3 do
        assertSame $"step %d{t}" x (c.Narrow(0, t, 1).Squeeze 0)

// ---------------------------------------------------------------------------------------------
// Decoders and losses

[<Fact>]
let ``decoders: max over time, spike count, mean, first spike time`` () =
    // [T = 4; B = 1; N = 3]
    let z =
        t64 [| 0.0; 0.0; 0.0; 1.0; 0.0; 0.0; 0.0; 1.0; 0.0; 1.0; 1.0; 0.0 |] [| 4; 1; 3 |]

    Assert.Equal<float[]>([| 2.0; 2.0; 0.0 |], values (Decode.spikeCount z))
    Assert.Equal<float[]>([| 1.0; 1.0; 0.0 |], values (Decode.maxOverTime z))
    Assert.Equal<float[]>([| 0.5; 0.5; 0.0 |], values (Decode.meanOverTime z))
    // First spikes at steps 1 and 2; the third neuron never fires: T · dt.
    assertAllClose "first spike time" 1e-15 0.0 [| 1e-3; 2e-3; 4e-3 |] (values (Decode.firstSpikeTime 1e-3 z))
    let v = randn 93L [| 6; 2; 3 |] 1.0
    let g = Ad.grad (fun v -> (Decode.maxOverTime v).Sum()) v
    Assert.Equal(6.0, (values g |> Array.sum))

[<Fact>]
let ``cross-entropy, nll, mse, firing-rate regularisers and accuracy against hand computation`` () =
    let logits = t64 [| 1.0; 2.0; 3.0; 0.0; 0.0; 0.0 |] [| 2; 3 |]
    let lse = log (exp 1.0 + exp 2.0 + exp 3.0)
    let expected = ((lse - 3.0) + log 3.0) / 2.0
    Assert.Equal(expected, (Loss.crossEntropy logits [| 2; 0 |]).ToScalar(), 14)
    Assert.Equal(expected, (Loss.nll (logits.LogSoftmax 1) [| 2; 0 |]).ToScalar(), 14)
    // Gradient of mean cross-entropy: (softmax - onehot) / B.
    let g = values (Ad.grad (fun l -> Loss.crossEntropy l [| 2; 0 |]) logits)
    let sm = [| exp 1.0; exp 2.0; exp 3.0 |] |> Array.map (fun e -> e / exp lse)

    assertAllClose
        "cross-entropy gradient"
        1e-13
        1e-15
        [|
            sm[0] / 2.0
            sm[1] / 2.0
            (sm[2] - 1.0) / 2.0
            (1.0 / 3.0 - 1.0) / 2.0
            1.0 / 6.0
            1.0 / 6.0
        |]
        g

    Assert.Equal(0.5, Loss.accuracy logits [| 2; 1 |])
    Assert.Equal(1.0, Loss.accuracy logits [| 2; 0 |])

    Assert.Equal(
        (1.0 + 4.0 + 0.0 + 0.25) / 4.0,
        (Loss.mse (t64 [| 1.0; 2.0; 3.0; 4.5 |] [| 4 |]) (t64 [| 0.0; 0.0; 3.0; 5.0 |] [| 4 |])).ToScalar(),
        15
    )
    // Spikes [T = 2; B = 2; N = 2]: per-sample counts [[2; 0]; [1; 1]].
    let z = t64 [| 1.0; 0.0; 1.0; 1.0; 1.0; 0.0; 0.0; 0.0 |] [| 2; 2; 2 |]
    // Mean over samples per neuron: [1.5; 0.5]; target 1: ((0.5)^2 + (0.5)^2) / 2.
    Assert.Equal(0.25, (Loss.firingRate 1.0 z).ToScalar(), 15)
    // Above 1 only the count 2 is penalised: (2 - 1)^2 / 4.
    Assert.Equal(0.25, (Loss.firingRateAbove 1.0 z).ToScalar(), 15)
    assertThrowsArg [ "Loss."; "3 labels for a batch of 2" ] (fun () -> Loss.crossEntropy logits [| 0; 1; 2 |])
    assertThrowsArg [ "Loss.accuracy"; "[B; classes]" ] (fun () -> Loss.accuracy (t64 [| 1.0 |] [| 1 |]) [| 0 |])

// ---------------------------------------------------------------------------------------------
// Shape and size validation of every layer's Init
// ---------------------------------------------------------------------------------------------

[<Fact>]
let ``recurrentLif rejects a feature shape that is not one positive length, and n <= 0`` () =
    let r = Layers.recurrentLif Snn.Lif.defaults 1.0 4
    // Before: [] threw IndexOutOfRange, [3; 4] was accepted, n = 0 was accepted.
    assertThrowsArg [ "Layers.recurrentLif"; "[]"; "[n]" ] (fun () -> Layer.init r (key 1L) [||])
    assertThrowsArg [ "Layers.recurrentLif"; "[3; 4]"; "[n]" ] (fun () -> Layer.init r (key 1L) [| 3; 4 |])
    assertThrowsArg [ "Layers.recurrentLif"; "[0]"; "positive" ] (fun () -> Layer.init r (key 1L) [| 0 |])
    assertThrowsArg [ "Layers.recurrentLif"; "n"; "0" ] (fun () -> Layers.recurrentLif Snn.Lif.defaults 1.0 0)
    assertThrowsArg [ "Layers.recurrentLif"; "scale"; "NaN" ] (fun () -> Layers.recurrentLif Snn.Lif.defaults nan 3)
    let _, out = Layer.init r (key 1L) [| 3 |]
    Assert.Equal<int[]>([| 4 |], out)

[<Fact>]
let ``every layer's Init rejects empty or negative feature sizes, naming the layer and the shape`` () =
    let layers =
        [
            "Layers.dense", Layers.dense 3
            "Layers.lif", Layers.lif Snn.Lif.defaults
            "Layers.lifGeneric", Layers.lifGeneric Snn.Lif.defaults
            "Layers.li", Layers.li Snn.Li.defaults
            "Layers.alif", Layers.alif Snn.Alif.defaults
            "Layers.adex", Layers.adex Snn.AdEx.defaults
            "Layers.integrateAndFire", Layers.integrateAndFire Snn.IF.defaults
            "Layers.recurrentLif", Layers.recurrentLif Snn.Lif.defaults 1.0 2
            "Layers.dropout", Layers.dropout 0.5
            "Layers.ofFunction(tanh)", Layers.ofFunction "tanh" Tensor.tanh
            "Layers.fanOut", Layers.fanOut 2
            "Layers.fanInSum", Layers.fanInSum
            // Combinators: the first layer to see the shape reports it.
            "Layers.dense", Layers.serial [ Layers.dense 2; Layers.lif Snn.Lif.defaults ]
            "Layers.dense", Layers.branches [ Layers.dense 2 ]
        ]

    for name, layer in layers do
        for bad in [ [| 0 |]; [| -2 |]; [| 4; 0 |] ] do
            assertThrowsArg [ name; Shape.format bad ] (fun () -> layer.Init (key 1L) [ bad ])

[<Fact>]
let ``dense needs one feature axis; fanOut and dense sizes must be positive; dense scale finite`` () =
    assertThrowsArg [ "Layers.dense"; "[]"; "[n]" ] (fun () -> Layer.init (Layers.dense 2) (key 1L) [||])
    assertThrowsArg [ "Layers.dense"; "[2; 3]"; "[n]" ] (fun () -> Layer.init (Layers.dense 2) (key 1L) [| 2; 3 |])
    assertThrowsArg [ "Layers.fanOut"; "0" ] (fun () -> Layers.fanOut 0)
    assertThrowsArg [ "Layers.dense"; "outDim"; "-1" ] (fun () -> Layers.dense -1)

    assertThrowsArg [ "Layers.dense"; "Scale"; "Infinity" ] (fun () ->
        Layers.denseWith
            { Layers.denseDefaults with
                Scale = infinity
            }
            2)
    // Elementwise layers take any positive feature shape, scalar features included.
    let _, out = Layer.init (Layers.lif Snn.Lif.defaults) (key 1L) [| 2; 3 |]
    Assert.Equal<int[]>([| 2; 3 |], out)
    let _, out = Layer.init (Layers.li Snn.Li.defaults) (key 1L) [||]
    Assert.Equal<int[]>([||], out)

// ---------------------------------------------------------------------------------------------
// Encoders and decoders reject non-finite and out-of-range input
// ---------------------------------------------------------------------------------------------

let private values2 (xs: float[]) = Tensor.FromArray(xs, 1, xs.Length)

[<Fact>]
let ``logLatency rejects NaN and infinities with the value and its flat index`` () =
    // Before: NaN was silently dropped and +inf spiked at t = 0.
    assertThrowsArg [ "Encode.logLatency"; "NaN"; "flat index 1" ] (fun () ->
        Encode.logLatency 10 1e-3 8e-3 0.2 (values2 [| 0.5; nan; 0.9 |]))

    assertThrowsArg [ "Encode.logLatency"; "Infinity"; "flat index 2" ] (fun () ->
        Encode.logLatency 10 1e-3 8e-3 0.2 (values2 [| 0.5; 0.1; infinity |]))

    assertThrowsArg [ "Encode.logLatency"; "-Infinity"; "flat index 0" ] (fun () ->
        Encode.logLatency 10 1e-3 8e-3 0.2 (values2 [| -infinity |]))

    assertThrowsArg [ "Encode.logLatency"; "tau"; "Infinity" ] (fun () -> Encode.logLatency 10 1e-3 infinity 0.2 (values2 [| 0.5 |]))

    assertThrowsArg [ "Encode.logLatency"; "theta"; "NaN" ] (fun () -> Encode.logLatency 10 1e-3 8e-3 nan (values2 [| 0.5 |]))
    assertThrowsArg [ "Encode.logLatency"; "dt"; "Infinity" ] (fun () -> Encode.logLatency 10 infinity 8e-3 0.2 (values2 [| 0.5 |]))

[<Fact>]
let ``poisson rejects negative or non-finite rates, a bad dt or step count, with the value in full`` () =
    let x = values2 [| 0.5; 0.25 |]
    // Before: a negative rate and a NaN dt were accepted.
    assertThrowsArg [ "Encode.poisson"; "maxRate"; "-100" ] (fun () -> Encode.poisson (key 1L) 10 1e-3 -100.0 x)
    assertThrowsArg [ "Encode.poisson"; "maxRate"; "Infinity" ] (fun () -> Encode.poisson (key 1L) 10 1e-3 infinity x)
    assertThrowsArg [ "Encode.poisson"; "dt"; "NaN" ] (fun () -> Encode.poisson (key 1L) 10 nan 100.0 x)
    assertThrowsArg [ "Encode.poisson"; "dt"; "-0.001" ] (fun () -> Encode.poisson (key 1L) 10 -1e-3 100.0 x)
    assertThrowsArg [ "Encode.poisson"; "steps"; "0" ] (fun () -> Encode.poisson (key 1L) 0 1e-3 100.0 x)

    assertThrowsArg [ "Encode.poisson"; "1.0000000000000002"; "flat index 1" ] (fun () ->
        Encode.poisson (key 1L) 10 1e-3 100.0 (values2 [| 0.5; 1.0000000000000002 |]))

[<Fact>]
let ``latency, current and the decoders reject non-finite or out-of-range input`` () =
    assertThrowsArg [ "Encode.latency"; "NaN"; "flat index 1" ] (fun () -> Encode.latency 10 1e-3 5e-3 false (values2 [| 0.5; nan |]))
    assertThrowsArg [ "Encode.latency"; "tLate"; "NaN" ] (fun () -> Encode.latency 10 1e-3 nan false (values2 [| 0.5 |]))
    assertThrowsArg [ "Encode.latency"; "dt"; "Infinity" ] (fun () -> Encode.latency 10 infinity 5e-3 false (values2 [| 0.5 |]))
    assertThrowsArg [ "Encode.current"; "Infinity"; "flat index 1" ] (fun () -> Encode.current 3 (values2 [| 0.5; infinity |]))
    assertThrowsArg [ "Encode.current"; "steps"; "-1" ] (fun () -> Encode.current -1 (values2 [| 0.5 |]))
    let z = Tensor.zeros [| 4; 1; 2 |]
    assertThrowsArg [ "Decode.firstSpikeTime"; "dt"; "NaN" ] (fun () -> Decode.firstSpikeTime nan z)
    assertThrowsArg [ "Decode.firstSpikeTime"; "time axis"; "[]" ] (fun () -> Decode.firstSpikeTime 1e-3 (Tensor.Scalar 1.0))
    assertThrowsArg [ "Decode.maxOverTime"; "time axis"; "[]" ] (fun () -> Decode.maxOverTime (Tensor.Scalar 1.0))
    assertThrowsArg [ "Decode.spikeCount"; "time axis"; "[]" ] (fun () -> Decode.spikeCount (Tensor.Scalar 1.0))
    assertThrowsArg [ "Decode.meanOverTime"; "time axis"; "[]" ] (fun () -> Decode.meanOverTime (Tensor.Scalar 1.0))
