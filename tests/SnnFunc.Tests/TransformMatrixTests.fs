/// The transform matrix: every custom function (fused kernels, customJvp/customVjp, checkpoint,
/// checkpointed scan, stopGradient) through every transform and nesting of transforms, compared in
/// Float64 with its generic twin (the same function written with plain tensor operations or step
/// functions). A new kernel joins by one line in `cases`.
module SnnFunc.Tests.TransformMatrixTests

open System
open Xunit
open SnnFunc
open SnnFunc.Tests.AdTestUtil

/// A custom function and its twin, both Tensor -> Tensor, with a generator of inputs.
type Case =
    {
        Name: string
        Custom: Tensor -> Tensor
        Twin: Tensor -> Tensor
        /// A random input (Float64); called for the base point, directions and batch members.
        Input: Random -> Tensor
        /// For kernels (KernelFn): the transforms under which the custom side must never fall back
        /// to a kernel's twin.
        KernelsUnder: string -> bool
    }

// ---------------------------------------------------------------------------------------------
// The cases

let private lifA =
    { Snn.Lif.defaults with
        VTh = 0.3
        Dt = 1e-3
    }

let private lifB =
    { lifA with
        Reset = Snn.BySubtraction
        VLeak = 0.1
        VReset = -0.2
        Surrogate = Surrogate.sigmoid 20.0
    }

let private li0 = { Snn.Li.defaults with Dt = 1e-3 }
let private liLeak = { li0 with VLeak = 0.4 }

let private lifTwin (p: Snn.Lif.Spec) (c: Tensor) =
    let _, (z, v) =
        Ad.scan (Snn.Lif.stepWithMembraneOf p) (Snn.Lif.init c.Shape[1..] c.DType) c

    z * 0.5 + v

let private liTwin (p: Snn.Li.Spec) (c: Tensor) =
    snd (Ad.scan (Snn.Li.stepOf p) (Snn.Li.init c.Shape[1..] c.DType) c)

/// Currents [T; 3] large enough that LIF neurons spike a few times.
let private currents (rng: Random) = uniform rng -1.0 12.0 [| 6; 3 |]

let private spikesX =
    t64 [| 4; 10 |] [ for i in 0..39 -> if i % 7 = 0 || i % 11 = 3 then 1.0 else 0.0 ]

let private weightsW =
    (Tensor.arange 30 |> Tensor.convert Float64) * 0.05 - 0.6
    |> Tensor.reshape [| 10; 3 |]

/// A 0/1 matrix, sparse (the kernel's sparse path), random per call.
let private spikes01 (rng: Random) =
    t64 [| 4; 10 |] [ for _ in 0..39 -> if rng.NextDouble() < 0.12 then 1.0 else 0.0 ]

let private sinTimes (x: Tensor) = x.Sin() * x

let private sinTimesRule (x: Tensor) (dx: Tensor) =
    sinTimes x, dx * (x.Cos() * x + x.Sin())

let private customVjpSinTimes =
    Ad.customVjp sinTimes (fun x -> sinTimes x, x) (fun (x: Tensor) ct -> ct * (x.Cos() * x + x.Sin()))

let private scanStep (w: Tensor) (c: Tensor) (xt: Tensor) =
    let c' = (c * w + xt).Tanh()
    c', c' * w

let private scanXs =
    (Tensor.arange 21 |> Tensor.convert Float64) * 0.1 - 1.0
    |> Tensor.reshape [| 7; 3 |]

let private scanned (options: ScanOptions) (w: Tensor) =
    snd (Ad.scanWith options (scanStep w) (w * 0.5) scanXs)

let private zeroDerivativeIdentity = Ad.customJvp id (fun x dx -> x, dx * 0.0)

let private every (_: string) = true
let private none (_: string) = false

/// First-order transforms (and batching): learned parameters stay on the kernels there; second
/// order through learned parameters differentiates the kernels' twins (counted fallbacks).
let private firstOrder (t: string) =
    not (
        List.contains
            t
            [
                "hessian"
                "hvp"
                "grad of grad (reverse over reverse)"
                "grad of jvp (reverse over forward)"
                "jvp of jvp"
                "vmap of hvp"
                "linearize of grad"
            ]
    )

/// Per-neuron LIF parameters of 3 neurons as rows of one input: tauMem, tauSyn, vLeak, vTh, vReset.
let private lifParamsOf (theta: Tensor) : Snn.Lif.Params =
    let row k = theta.Narrow(0, k, 1).Squeeze 0

    {
        TauMem = row 0
        TauSyn = row 1
        VLeak = row 2
        VTh = row 3
        VReset = row 4
    }

let private lifTheta (rng: Random) =
    Tensor.stack
        0
        [
            uniform rng 6e-3 15e-3 [| 3 |]
            uniform rng 3e-3 6e-3 [| 3 |]
            uniform rng -0.1 0.1 [| 3 |]
            uniform rng 0.25 0.4 [| 3 |]
            uniform rng -0.3 -0.1 [| 3 |]
        ]

let private fixedCurrents = uniform (Random 99) -1.0 12.0 [| 6; 3 |]

let private lifByParams (config: Snn.Lif.Config) (fused: bool) (theta: Tensor) =
    let p = lifParamsOf theta

    if fused then
        let r = Fused.lifRun config p (Snn.Lif.init [| 3 |] Float64) fixedCurrents
        r.Spikes * 0.5 + r.Membrane + r.Current * 0.25 + r.Final.V
    else
        let final, (z, v, i) =
            Ad.scan (Snn.Lif.stepFull config p) (Snn.Lif.init [| 3 |] Float64) fixedCurrents

        z * 0.5 + v + i * 0.25 + final.V

/// A LIF run from a given initial state (rows: V0, I0), parameters fixed.
let private lifFromState (config: Snn.Lif.Config) (fused: bool) (state: Tensor) =
    let p = Snn.Lif.paramsAs Float64 lifA

    let s0: Snn.Lif.State =
        {
            V = state.Narrow(0, 0, 1).Squeeze 0
            I = state.Narrow(0, 1, 1).Squeeze 0
            Refractory = Tensor.Full([| 3 |], 0.0, Float64)
        }

    if fused then
        let r = Fused.lifRun config p s0 fixedCurrents
        r.Spikes * 0.5 + r.Membrane + r.Final.I
    else
        let final, (z, v, _) = Ad.scan (Snn.Lif.stepFull config p) s0 fixedCurrents
        z * 0.5 + v + final.I

let private liByParams (fused: bool) (theta: Tensor) =
    let p: Snn.Li.Params =
        {
            TauMem = theta.Narrow(0, 0, 1).Squeeze 0
            TauSyn = theta.Narrow(0, 1, 1).Squeeze 0
            VLeak = theta.Narrow(0, 2, 1).Squeeze 0
        }

    let c = Snn.Li.config li0

    if fused then
        let r = Fused.liRun c p (Snn.Li.init [| 3 |] Float64) fixedCurrents
        r.Membrane + r.Current * 0.5
    else
        let _, (v, i) =
            Ad.scan (Snn.Li.stepFull c p) (Snn.Li.init [| 3 |] Float64) fixedCurrents

        v + i * 0.5

let private lifRefractory =
    { lifA with
        RefractorySteps = 2
        VReset = -0.1
    }

// Convolution: small problems with every option different from its default (the twins are the
// plain tensor-operation versions in ConvTests.Twins).
let private unfoldOpts =
    {
        Kernel = (2, 3)
        Stride = (2, 1)
        Padding = (1, 1)
        Dilation = (1, 2)
    }

let private convOpts =
    {
        Stride = (2, 1)
        Padding = (1, 2)
        Dilation = (1, 2)
        Groups = 2
    }

let private convW =
    (Tensor.arange 48 |> Tensor.convert Float64) * 0.04 - 0.9
    |> Tensor.reshape [| 4; 2; 2; 3 |]

let private convB = t64 [| 4 |] [ 0.3; -0.2; 0.1; 0.5 ]

let private convX =
    (Tensor.arange 60 |> Tensor.convert Float64) * 0.03 - 0.8
    |> Tensor.reshape [| 1; 4; 5; 3 |]

let private conv1dOpts =
    { Conv1dOptions.Default with
        Stride = 2
        Padding = 1
        Dilation = 2
        Groups = 1
    }

let private conv1dW =
    (Tensor.arange 18 |> Tensor.convert Float64) * 0.1 - 0.8
    |> Tensor.reshape [| 2; 3; 3 |]

let private poolOpts =
    {
        Pool2dOptions.Kernel = (3, 2)
        Stride = (2, 1)
        Padding = (1, 1)
    }

/// Events.run: three LIF neurons (τm = 2τs) fed one input spike at 1 ms through weights w [3]
/// (w > 4 spikes); their first spike times, whose twin is the quadratic's closed form.
let private eventGraph =
    Graph.empty
    |> Graph.input "x" 1
    |> Graph.population
        "h"
        3
        (Neuron.lif
            { Snn.Lif.defaults with
                TauMem = 10e-3
                TauSyn = 5e-3
                Dt = 1e-5
            })
    |> Graph.connect "x" "h" (Projection.dense Init.zeros)

let private eventSpikeTimesOf (replayed: bool) (viaHil: bool) (w: Tensor) =
    let p =
        (Graph.initAs Float64 (Random.key 0L) eventGraph).Add("x->h", Map [ "weight", w.Reshape(1, 3) ])

    // One sample: neuron 0 of the source spikes at 1 ms.
    let input = EventBuffer.ofEvents Float64 [| 1 |] 1 [| [| 1e-3, 0 |] |]

    let config =
        { Events.defaults with
            TEnd = 0.05
            Capacity = 4
        }

    let x = Map [ "x", input ]

    let out =
        if replayed then
            // The replay of the model's own spikes (found at the primal weights) is the run itself.
            let own =
                Events.run eventGraph (Tree.map Ad.stopGradient p) { config with Capacity = 256 } x

            if viaHil then
                let observed: SnnFunc.Backends.Observables =
                    {
                        Dense =
                            {
                                Observed = Map.empty
                                Final = Map.empty
                            }
                        Events = own.Spikes
                        Raw = Map.empty
                        RawTimes = Map.empty
                        Account = None
                    }

                SnnFunc.Backends.Hil.runEvents eventGraph p config x observed
            else
                Events.replay eventGraph p config x (Map [ "h", own["h"] ])
        else
            Events.run eventGraph p config x

    (Events.firstSpikeTimes out["h"]).Reshape [| 3 |]

let private eventSpikeTimes = eventSpikeTimesOf false false

let private eventTwin (w: Tensor) =
    -(((((1.0 - 4.0 / w).Sqrt() + 1.0) * 0.5).Log()) * 10e-3) + 1e-3

/// Hil.run (time-stepped hardware in the loop), observing the software backend's own run at the
/// primal weights: x (4 inputs, fixed spikes) -> h (3 LIF); spikes / 2 + membrane of h. Its twin
/// writes the substitution out: the model's LIF whose reset is a detached offset (the measured
/// membrane holds the reset, so the derivative skips it, bss2.md 5.1).
let private hilLif = { lifA with VTh = 0.6; VReset = -0.1 }

let private hilGraph =
    Graph.empty
    |> Graph.input "x" 4
    |> Graph.population "h" 3 (Neuron.lif hilLif)
    |> Graph.connect "x" "h" (Projection.dense Init.zeros)

let private hilSpikes =
    t64 [| 8; 1; 4 |] [ for i in 0..31 -> if i % 3 = 0 || i % 5 = 1 then 1.0 else 0.0 ]

let private hilRun (w: Tensor) =
    let p =
        (Graph.initAs Float64 (Random.key 0L) hilGraph).Add("x->h", Map [ "weight", w.Reshape(4, 3) ])

    let rc = RunConfig.steps 8 hilLif.Dt
    let inputs = Map [ "x", hilSpikes ]

    let observed =
        (SnnFunc.Backends.SoftwareBackend() :> SnnFunc.Backends.IBackend).Run(hilGraph, Tree.map Ad.stopGradient p, inputs, rc)

    let h = (SnnFunc.Backends.Hil.run hilGraph p rc inputs observed)["h"]
    h.Spikes * 0.5 + h.Membrane

let private hilTwin (w: Tensor) =
    let c = Snn.Lif.config hilLif
    let lp = Snn.Lif.paramsAs Float64 hilLif
    let a, b = Snn.Lif.decays c lp w
    let currents = Tensor.matmul hilSpikes (w.Reshape(4, 3))

    let step (v: Tensor, i: Tensor) (input: Tensor) =
        let integrated = v + (lp.VLeak - v + i) * a
        let z = Snn.spike hilLif.Surrogate (integrated - lp.VTh)
        let next = integrated + Ad.stopGradient (z * (lp.VReset - integrated))
        (next, i * b + input), z * 0.5 + integrated

    let zero = Tensor.Full([| 1; 3 |], 0.0, Float64)
    snd (Ad.scan step (zero, zero) currents)

/// Bss2.Mac.matmul without noise (gain 0.05, one chunk, no saturation: |S| · 0.05 <= 46.5) with
/// fixed integer weights; its twin rounds, multiplies (in float32) and floors in tensor operations and takes
/// the straight-through derivative of gain · x @ w.
let private macConfig =
    { SnnFunc.Backends.Bss2.Mac.noiseless with
        Gain = 0.05
    }

let private macWeights =
    t64 [| 6; 3 |] [ for i in 0..17 -> float ((i * 7) % 11 - 5) ]

/// A MAC twin: the linear product of the rounded input times the scale in float32, floored, as the
/// value (S · 0.05 just above an integer in float64 is the integer in float32, as on the chip), and
/// the derivative of the unrounded product times the scale (straight through).
let private straightThroughTwin (product: Tensor -> Tensor) (x: Tensor) =
    let s = float (SnnFunc.Backends.Bss2.Mac.scaleOf macConfig)
    let surrogate = product x * s
    let chip = ((product (x.Round())).Convert Float32 * s).Floor().Convert Float64
    chip + (surrogate - Ad.stopGradient surrogate)

let private macTwin = straightThroughTwin (fun x -> Tensor.matmul x macWeights)

/// Bss2.Mac.conv2d (no noise, 8 patch rows, no saturation) of x [1; 2; 3; 3]; its twin is
/// Conv.conv2d on the rounded input, floored in float32, with the straight-through derivative.
let private macKernel =
    t64 [| 2; 2; 2; 2 |] [ for i in 0..15 -> float ((i * 5) % 11 - 5) ]

let private macConvTwin = straightThroughTwin (Conv.conv2d macKernel)

/// Bss2.Mac.conv1d (no noise, 6 patch rows, no saturation) of x [1; 2; 5]; its twin is
/// Conv.conv1d on the rounded input, floored in float32, with the straight-through derivative.
let private macKernel1d =
    t64 [| 2; 2; 3 |] [ for i in 0..11 -> float ((i * 5) % 11 - 5) ]

let private macConv1dTwin = straightThroughTwin (Conv.conv1d macKernel1d)

/// The ideal mode's linear layer with a bias and a converting ReLU: plain tensor operations (inputs
/// outside 0..31 allowed); the twin writes them out.
let private macIdeal =
    { macConfig with
        Mode = SnnFunc.Backends.Bss2.MacMode.Ideal
    }

let private macBias = t64 [| 3 |] [ 1.5; -20.0; 0.0 ]

let private macIdealLayers (x: Tensor) =
    SnnFunc.Backends.Bss2.Mac.linear macIdeal macWeights (Some macBias) x
    |> SnnFunc.Backends.Bss2.Mac.convertingRelu macIdeal 1

let private macIdealTwin (x: Tensor) =
    let y =
        Tensor.matmul x macWeights * float (SnnFunc.Backends.Bss2.Mac.scaleOf macIdeal)
        + macBias

    y * Ad.stopGradient ((y.Gt 0.0).Convert y.DType) / 2.0

/// The transforms of second order, which the event kernels reject with a clear error.
let secondOrder =
    set
        [
            "hessian"
            "hvp"
            "grad of grad (reverse over reverse)"
            "grad of jvp (reverse over forward)"
            "jvp of jvp"
            "vmap of hvp"
            "linearize of grad"
        ]

let cases: Case list =
    [
        {
            Name = "Events.run (first spike times; first order only)"
            Custom = eventSpikeTimes
            Twin = eventTwin
            Input = fun rng -> uniform rng 4.5 9.0 [| 3 |]
            KernelsUnder = every
        }
        {
            Name = "Events.replay (own spikes given; first order only)"
            Custom = eventSpikeTimesOf true false
            Twin = eventTwin
            Input = fun rng -> uniform rng 4.5 9.0 [| 3 |]
            KernelsUnder = every
        }
        {
            Name = "Events.replay by Hil.runEvents (own spikes observed; first order only)"
            Custom = eventSpikeTimesOf true true
            Twin = eventTwin
            Input = fun rng -> uniform rng 4.5 9.0 [| 3 |]
            KernelsUnder = every
        }
        {
            Name = "Hil.run (the software backend observed)"
            Custom = hilRun
            Twin = hilTwin
            Input = fun rng -> uniform rng -0.5 1.5 [| 12 |]
            KernelsUnder = every
        }
        {
            Name = "Bss2.Mac.matmul (straight-through)"
            Custom = fun x -> SnnFunc.Backends.Bss2.Mac.matmul macConfig x macWeights
            Twin = macTwin
            Input = fun rng -> uniform rng 0.0 31.0 [| 4; 6 |]
            KernelsUnder = every
        }
        {
            Name = "Bss2.Mac.conv2d (straight-through)"
            Custom = SnnFunc.Backends.Bss2.Mac.conv2d macConfig (1, 1) (0, 0) macKernel None
            Twin = macConvTwin
            Input = fun rng -> uniform rng 0.0 31.0 [| 1; 2; 3; 3 |]
            KernelsUnder = every
        }
        {
            Name = "Bss2.Mac.conv1d (straight-through)"
            Custom = SnnFunc.Backends.Bss2.Mac.conv1d macConfig 1 0 macKernel1d None
            Twin = macConv1dTwin
            Input = fun rng -> uniform rng 0.0 31.0 [| 1; 2; 5 |]
            KernelsUnder = every
        }
        {
            Name = "Bss2.Mac ideal mode (linear, bias, converting ReLU)"
            Custom = macIdealLayers
            Twin = macIdealTwin
            Input = fun rng -> uniform rng -5.0 35.0 [| 4; 6 |]
            KernelsUnder = none
        }
        {
            Name = "Fused.lif (reset to value)"
            Custom = fun c -> let z, v = Fused.lif lifA c in z * 0.5 + v
            Twin = lifTwin lifA
            Input = currents
            KernelsUnder = every
        }
        {
            Name = "Fused.lif (subtraction, leak, sigmoid)"
            Custom = fun c -> let z, v = Fused.lif lifB c in z * 0.5 + v
            Twin = lifTwin lifB
            Input = currents
            KernelsUnder = every
        }
        {
            Name = "Fused.li"
            Custom = Fused.li li0
            Twin = liTwin li0
            Input = currents
            KernelsUnder = every
        }
        {
            Name = "Fused.li (leak)"
            Custom = Fused.li liLeak
            Twin = liTwin liLeak
            Input = currents
            KernelsUnder = every
        }
        {
            Name = "Fused.lif (refractory period)"
            Custom = fun c -> let z, v = Fused.lif lifRefractory c in z * 0.5 + v
            Twin = lifTwin lifRefractory
            Input = currents
            KernelsUnder = every
        }
        {
            Name = "Fused.lif w.r.t. per-neuron parameters"
            Custom = lifByParams (Snn.Lif.config lifA) true
            Twin = lifByParams (Snn.Lif.config lifA) false
            Input = lifTheta
            KernelsUnder = firstOrder
        }
        {
            Name = "Fused.lif w.r.t. parameters (subtraction, refractory)"
            Custom = lifByParams (Snn.Lif.config { lifB with RefractorySteps = 1 }) true
            Twin = lifByParams (Snn.Lif.config { lifB with RefractorySteps = 1 }) false
            Input = lifTheta
            KernelsUnder = firstOrder
        }
        {
            Name = "Fused.lif w.r.t. the initial state"
            Custom = lifFromState (Snn.Lif.config lifA) true
            Twin = lifFromState (Snn.Lif.config lifA) false
            Input = fun rng -> uniform rng -0.2 0.3 [| 2; 3 |]
            KernelsUnder = every
        }
        {
            Name = "Fused.li w.r.t. per-neuron parameters"
            Custom = liByParams true
            Twin = liByParams false
            Input =
                fun rng ->
                    Tensor.stack
                        0
                        [
                            uniform rng 6e-3 15e-3 [| 3 |]
                            uniform rng 3e-3 6e-3 [| 3 |]
                            uniform rng -0.2 0.2 [| 3 |]
                        ]
            KernelsUnder = firstOrder
        }
        {
            Name = "Fused.spikeMatmul (weights)"
            Custom = Fused.spikeMatmul spikesX
            Twin = Tensor.matmul spikesX
            Input = fun rng -> randn rng [| 10; 3 |]
            KernelsUnder = every
        }
        {
            Name = "Fused.spikeMatmul (spikes)"
            Custom = fun x -> Fused.spikeMatmul x weightsW
            Twin = fun x -> Tensor.matmul x weightsW
            Input = spikes01
            KernelsUnder = every
        }
        {
            Name = "Conv.unfold"
            Custom = Conv.unfoldWith unfoldOpts
            Twin = ConvTests.Twins.unfold unfoldOpts
            Input = fun rng -> randn rng [| 2; 2; 4; 3 |]
            KernelsUnder = every
        }
        {
            Name = "Conv.fold"
            Custom = Conv.fold (4, 3) unfoldOpts
            Twin = ConvTests.Twins.fold (4, 3) unfoldOpts
            Input = fun rng -> randn rng [| 2; 12; 3 |]
            KernelsUnder = every
        }
        {
            Name = "Conv.conv2d (input)"
            Custom = Conv.conv2dWith convOpts convW (Some convB)
            Twin = ConvTests.Twins.conv2d convOpts convW (Some convB)
            Input = fun rng -> randn rng [| 1; 4; 5; 3 |]
            KernelsUnder = every
        }
        {
            Name = "Conv.conv2d (weights)"
            Custom = fun w -> Conv.conv2dWith convOpts w None convX
            Twin = fun w -> ConvTests.Twins.conv2d convOpts w None convX
            Input = fun rng -> randn rng [| 4; 2; 2; 3 |]
            KernelsUnder = every
        }
        {
            Name = "Conv.conv1d"
            Custom = Conv.conv1dWith conv1dOpts conv1dW None
            Twin = ConvTests.Twins.conv1d conv1dOpts conv1dW None
            Input = fun rng -> randn rng [| 2; 3; 8 |]
            KernelsUnder = every
        }
        {
            Name = "Conv.maxPool2d"
            Custom = Conv.maxPool2dWith poolOpts
            Twin = ConvTests.Twins.maxPool2d poolOpts
            // Distinct values: no ties, where max pooling is differentiable.
            Input = fun rng -> distinct rng [| 1; 2; 5; 4 |]
            KernelsUnder = every
        }
        {
            Name = "Ad.customJvp"
            Custom = Ad.customJvp sinTimes sinTimesRule
            Twin = sinTimes
            Input = fun rng -> randn rng [| 2; 3 |]
            KernelsUnder = none
        }
        {
            Name = "Ad.customVjp"
            Custom = customVjpSinTimes
            Twin = sinTimes
            Input = fun rng -> randn rng [| 2; 3 |]
            KernelsUnder = none
        }
        {
            Name = "Ad.checkpoint"
            Custom = Ad.checkpoint (fun (x: Tensor) -> (x * 0.7).Exp() * x.Sin())
            Twin = fun x -> (x * 0.7).Exp() * x.Sin()
            Input = fun rng -> randn rng [| 4 |]
            KernelsUnder = none
        }
        {
            Name = "Ad.checkpoint closing over a differentiated value"
            Custom = fun x -> Ad.checkpoint (fun (a: Tensor) -> (a * x).Sin() + x.Sum()) (x.Exp())
            Twin = fun x -> (x.Exp() * x).Sin() + x.Sum()
            Input = fun rng -> randn rng [| 3 |]
            KernelsUnder = none
        }
        {
            Name = "Ad.scan with CheckpointEvery (step closes over weights)"
            Custom =
                scanned
                    { ScanOptions.Default with
                        CheckpointEvery = 2
                    }
            Twin = scanned ScanOptions.Default
            Input = fun rng -> randn rng [| 3 |]
            KernelsUnder = none
        }
        {
            Name = "Ad.stopGradient"
            Custom = fun x -> x * Ad.stopGradient (x.Sin()) + x
            Twin = fun x -> x * zeroDerivativeIdentity (x.Sin()) + x
            Input = fun rng -> randn rng [| 5 |]
            KernelsUnder = none
        }
    ]

// ---------------------------------------------------------------------------------------------
// The transforms

/// What a transform is evaluated at: the base point, a direction, an output weighting, batches.
type Probe =
    {
        X: Tensor
        V: Tensor
        /// Weights of the scalar loss, shaped like the output.
        U: Tensor
        /// A batch of inputs [3; ...] and one of batches [2; 3; ...].
        Xs: Tensor
        Vs: Tensor
        Xss: Tensor
    }

/// A scalar of the output with non-zero second derivative.
let private loss (p: Probe) (f: Tensor -> Tensor) (x: Tensor) =
    let y = f x
    (y * p.U + y * y * 0.5).Sum()

let transforms: (string * (Probe -> (Tensor -> Tensor) -> Tensor)) list =
    [
        "value", (fun p f -> f p.X)
        "jvp", (fun p f -> snd (Ad.jvp f p.X p.V))
        "vjp", (fun p f -> (snd (Ad.vjp f p.X)) p.U)
        "grad", (fun p f -> Ad.grad (loss p f) p.X)
        "vmap", (fun p f -> Ad.vmap f p.Xs)
        "vmap of grad (per-example gradients)", (fun p f -> Ad.vmap (Ad.grad (loss p f)) p.Xs)
        "grad of vmap", (fun p f -> Ad.grad (fun xs -> (Ad.vmap (loss p f) xs).Sum()) p.Xs)
        "jacfwd", (fun p f -> Ad.jacfwd f p.X)
        "jacrev", (fun p f -> Ad.jacrev f p.X)
        "hessian", (fun p f -> Ad.hessian (loss p f) p.X)
        "hvp", (fun p f -> Ad.hvp (loss p f) p.X p.V)
        "linearize", (fun p f -> (snd (Ad.linearize f p.X)) p.V)
        "grad of grad (reverse over reverse)", (fun p f -> Ad.grad (fun x -> (Ad.grad (loss p f) x * p.V).Sum()) p.X)
        "grad of jvp (reverse over forward)", (fun p f -> Ad.grad (fun x -> (snd (Ad.jvp f x p.V) * p.U).Sum()) p.X)
        "jvp of jvp", (fun p f -> snd (Ad.jvp (fun x -> snd (Ad.jvp f x p.V)) p.X p.V))
        "vmap of vmap", (fun p f -> Ad.vmap (Ad.vmap f) p.Xss)
        "vmap of jvp", (fun p f -> Ad.vmap (fun x -> snd (Ad.jvp f x p.V)) p.Xs)
        "jvp of vmap", (fun p f -> snd (Ad.jvp (Ad.vmap f) p.Xs p.Vs))
        "vmap of jacrev", (fun p f -> Ad.vmap (Ad.jacrev f) p.Xs)
        "vmap of hvp", (fun p f -> Ad.vmap (fun x -> Ad.hvp (loss p f) x p.V) p.Xs)
        "linearize of grad", (fun p f -> (snd (Ad.linearize (Ad.grad (loss p f)) p.X)) p.V)
    ]

let private probe (case: Case) =
    let rng = Random(case.Name.Length * 7919 + 17)
    let x = case.Input rng
    let y = case.Twin x

    let batch n =
        Tensor.stack 0 [ for _ in 1..n -> case.Input rng ]

    {
        X = x
        V = randn rng x.Shape
        U = randn rng y.Shape
        Xs = batch 3
        Vs = randn rng (Array.append [| 3 |] x.Shape)
        Xss = Tensor.stack 0 [ batch 3; batch 3 ]
    }

let matrix: obj[] seq =
    seq {
        for c in cases do
            for name, _ in transforms do
                if not (c.Name.StartsWith "Events." && secondOrder.Contains name) then
                    yield [| box c.Name; box name |]
    }

[<Theory; MemberData(nameof matrix)>]
let ``custom function equals its twin under the transform`` (caseName: string, transformName: string) =
    let case = cases |> List.find (fun c -> c.Name = caseName)
    let transform = transforms |> List.find (fun (n, _) -> n = transformName) |> snd
    let p = probe case
    let expected = transform p case.Twin
    let before = KernelFn.TwinCallsOnThisThread
    let actual = transform p case.Custom
    let fellBack = KernelFn.TwinCallsOnThisThread - before
    let scale = 1.0 + maxAbs expected
    assertClose $"%s{caseName} under %s{transformName}" 1e-10 (1e-11 * scale) expected actual

    if case.KernelsUnder transformName then
        Assert.True((fellBack = 0), $"%s{caseName} under %s{transformName}: %d{fellBack} kernel call(s) fell back to the twin")

// ---------------------------------------------------------------------------------------------
// The repros of the issue, as written there

[<Fact>]
let ``repros: vmap of grad of Fused.li, jacfwd, hvp, linearize and hessian through fused kernels`` () =
    let li = Snn.Li.defaults
    let lif = Snn.Lif.defaults
    let ones = Tensor.ones [| 2; 3; 1; 1 |]
    let g = Ad.vmap (Ad.grad (fun c -> (Fused.li li c).Square().Sum())) ones
    let gTwin = Ad.vmap (Ad.grad (fun c -> (liTwin li c).Square().Sum())) ones
    assertClose "vmap (grad (li))" 1e-6 1e-7 gTwin g
    Assert.True(maxAbs g > 0.0)

    let spikesTwin (c: Tensor) =
        fst (snd (Ad.scan (Snn.Lif.stepWithMembraneOf lif) (Snn.Lif.init c.Shape[1..] c.DType) c))

    let j = Ad.jacfwd (fun c -> fst (Fused.lif lif c)) (Tensor.ones [| 3; 1 |])
    Assert.Equal<int[]>([| 3; 1; 3; 1 |], j.Shape)
    let jTwin = Ad.jacfwd spikesTwin (Tensor.ones [| 3; 1 |])

    assertClose "jacfwd (lif)" 1e-6 1e-7 jTwin j
    let x01 = spikesX |> Tensor.convert Float32
    let w = weightsW |> Tensor.convert Float32
    let h = Ad.hvp (fun w -> (Fused.spikeMatmul x01 w).Square().Sum()) w w
    let hTwin = Ad.hvp (fun w -> (Tensor.matmul x01 w).Square().Sum()) w w
    assertClose "hvp (spikeMatmul)" 1e-6 1e-6 hTwin h
    let c = Tensor.ones [| 3; 2 |] * 40.0
    let _, lin = Ad.linearize (fun c -> fst (Fused.lif lif c)) c
    let _, linTwin = Ad.linearize spikesTwin c
    assertClose "linearize (lif)" 1e-6 1e-7 (linTwin (Tensor.onesLike c)) (lin (Tensor.onesLike c))

    let hess =
        Ad.hessian (fun c -> (Fused.li li c).Square().Sum()) (Tensor.ones [| 3; 1 |])

    let hessTwin =
        Ad.hessian (fun c -> (liTwin li c).Square().Sum()) (Tensor.ones [| 3; 1 |])

    assertClose "hessian (li)" 1e-6 1e-9 hessTwin hess

[<Fact>]
let ``vmap of a fused LIF is one kernel call on the folded batch`` () =
    // Same numbers as the per-example loop, and no fallback to the step function.
    let rng = Random 3
    let cs = Tensor.stack 0 [ for _ in 1..4 -> currents rng ]
    let before = KernelFn.TwinCallsOnThisThread
    let z, v = Ad.vmap (Fused.lif lifA) cs
    Assert.Equal(0, KernelFn.TwinCallsOnThisThread - before)

    for b in 0..3 do
        let zb, vb = Fused.lif lifA (cs.Narrow(0, b, 1).Squeeze 0)
        assertEqualValues $"spikes of example %d{b}" zb (z.Narrow(0, b, 1).Squeeze 0)
        assertEqualValues $"membrane of example %d{b}" vb (v.Narrow(0, b, 1).Squeeze 0)

[<Fact>]
let ``Events.run under second-order transforms is a clear error`` () =
    let case = cases |> List.find (fun c -> c.Name.StartsWith "Events.run")
    let p = probe case

    for name in secondOrder do
        let transform = transforms |> List.find (fun (n, _) -> n = name) |> snd
        let e = Assert.ThrowsAny<exn>(fun () -> transform p case.Custom |> ignore)
        Assert.True(e.Message.Contains "second-order", $"%s{name}: %s{e.Message}")
