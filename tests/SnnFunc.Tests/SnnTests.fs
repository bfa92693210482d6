namespace SnnFunc.Tests

open System
open SnnFunc

/// Helpers shared by the SNN test files: Float64 tensors, element-wise and norm comparisons with
/// messages, and central finite differences over whole parameter trees.
module SnnCheck =

    let t64 (data: float[]) (shape: int[]) =
        Tensor.FromArray(Array.copy data, Array.copy shape)

    /// N(0, 1) · scale, Float64, from a seed.
    let randn (seed: int64) (shape: int[]) (scale: float) =
        Random.normalAs Float64 (Random.key seed) shape * scale

    /// Uniform in [lo, hi), Float64, from a seed.
    let uniform (seed: int64) (shape: int[]) (lo: float) (hi: float) =
        Random.uniformAs Float64 (Random.key seed) shape * (hi - lo) + lo

    let values (t: Tensor) = t.ToDoubleArray()

    /// Every element within abs + rel · |expected|.
    let assertAllClose (what: string) (rel: float) (abs: float) (expected: float[]) (actual: float[]) =
        if expected.Length <> actual.Length then
            failwithf "%s: %d values, expected %d" what actual.Length expected.Length

        for i in 0 .. expected.Length - 1 do
            let e, a = expected[i], actual[i]

            if not (e = a || Math.Abs(e - a) <= abs + rel * Math.Abs e) then
                failwithf "%s: at %d got %.17g, expected %.17g (difference %.3g; rel %g abs %g)" what i a e (a - e) rel abs

    let assertTensorClose (what: string) (rel: float) (abs: float) (expected: Tensor) (actual: Tensor) =
        if expected.Shape <> actual.Shape then
            failwithf "%s: shape %A, expected %A" what actual.Shape expected.Shape

        assertAllClose what rel abs (values expected) (values actual)

    /// Bit-for-bit equality of shapes and values.
    let assertSame (what: string) (expected: Tensor) (actual: Tensor) =
        if expected.Shape <> actual.Shape || expected.DType <> actual.DType then
            failwithf "%s: %A %s, expected %A %s" what actual.Shape actual.DType.Name expected.Shape expected.DType.Name

        let e, a = values expected, values actual

        for i in 0 .. e.Length - 1 do
            if BitConverter.DoubleToInt64Bits e[i] <> BitConverter.DoubleToInt64Bits a[i] then
                failwithf "%s: at %d got %.17g, expected %.17g" what i a[i] e[i]

    /// ||actual - expected|| <= rel · ||expected|| (for gradients whose small entries are noise).
    let assertNormClose (what: string) (rel: float) (expected: float[]) (actual: float[]) =
        let diff = Array.map2 (-) actual expected |> Array.sumBy (fun d -> d * d) |> sqrt
        let norm = expected |> Array.sumBy (fun d -> d * d) |> sqrt

        if not (diff <= rel * norm) then
            failwithf
                "%s: relative difference %.3g of norms (||diff|| %.3g, ||expected|| %.3g), allowed %g"
                what
                (diff / norm)
                diff
                norm
                rel

    /// Central finite differences of a scalar function of a parameter tree, leaf by leaf and element
    /// by element (Float64 leaves): the tree of df/dp.
    let fdGrad (eps: float) (f: 'P -> Tensor) (p: 'P) : 'P =
        let leaves, def = Tree.flatten p

        let grads =
            leaves
            |> Array.mapi (fun li leaf ->
                let data = values leaf

                let g =
                    Array.init data.Length (fun j ->
                        let at delta =
                            let d = Array.copy data
                            d[j] <- d[j] + delta
                            let ls = Array.copy leaves
                            ls[li] <- t64 d leaf.Shape
                            (f (Tree.unflatten def ls)).ToScalar()

                        (at eps - at -eps) / (2.0 * eps))

                t64 g leaf.Shape)

        Tree.unflatten def grads

    /// Asserts that reverse-mode gradients of f match central finite differences, leaf by leaf,
    /// and that they are not all zero (a check that cannot fail is no check).
    let checkGradFd (what: string) (eps: float) (rel: float) (abs: float) (f: 'P -> Tensor) (p: 'P) =
        let ad = Tree.leaves (Ad.grad f p)
        let fd = Tree.leaves (fdGrad eps f p)

        if ad |> Array.forall (fun g -> values g |> Array.forall ((=) 0.0)) then
            failwithf "%s: the gradient is identically zero; the check would be vacuous" what

        Array.iteri2 (fun i (a: Tensor) (d: Tensor) -> assertAllClose $"%s{what} (leaf %d{i})" rel abs (values d) (values a)) ad fd

    /// Dot-product test of the two AD modes: <grad f(x), v> = jvp f x v.
    let checkJvpVjp (what: string) (rel: float) (f: 'P -> Tensor) (x: 'P) (v: 'P) =
        let g = Tree.leaves (Ad.grad f x)
        let _, dy = Ad.jvp f x v

        let lhs =
            Array.map2 (fun (a: Tensor) (b: Tensor) -> (a * b).Sum().ToScalar()) g (Tree.leaves v)
            |> Array.sum

        let rhs = dy.ToScalar()

        if not (Math.Abs(lhs - rhs) <= rel * (Math.Abs lhs + 1e-300)) then
            failwithf "%s: <grad, v> = %.17g but jvp = %.17g" what lhs rhs

        if lhs = 0.0 then
            failwithf "%s: <grad, v> is zero; pick inputs that exercise the derivative" what

module SnnTests =

    open Xunit
    open SnnFunc.Tests.TestUtil
    open SnnCheck

    // -----------------------------------------------------------------------------------------
    // Spikes and surrogate derivatives

    [<Fact>]
    let ``spike is a Heaviside step with H(0) = 0`` () =
        for dtype in [ Float32; Float64 ] do
            let x =
                Tensor.FromArray([| -2.0; -1e-30; 0.0; -0.0; 1e-30; 5e-324; 3.0 |], 7).Convert dtype

            let z = Snn.spike (Surrogate.superSpike 100.0) x
            Assert.Equal(dtype, z.DType)

            let expected =
                if dtype = Float64 then
                    [| 0.0; 0.0; 0.0; 0.0; 1.0; 1.0; 1.0 |]
                else
                    [| 0.0; 0.0; 0.0; 0.0; 1.0; 0.0; 1.0 |]

            Assert.Equal<float[]>(expected, values z)

    let private sigma (x: float) = 1.0 / (1.0 + Math.Exp -x)

    /// The surrogates with their closed-form derivatives, written out here from the published forms.
    let private surrogates: (SurrogateFn * (float -> float)) list =
        [
            Surrogate.superSpike 100.0, (fun x -> 1.0 / ((100.0 * abs x + 1.0) ** 2.0))
            Surrogate.fastSigmoid 10.0, (fun x -> 1.0 / ((10.0 * abs x + 1.0) ** 2.0))
            Surrogate.sigmoid 8.0, (fun x -> 8.0 * sigma (8.0 * x) * (1.0 - sigma (8.0 * x)))
            Surrogate.arctan 2.0, (fun x -> 1.0 / (1.0 + (Math.PI * x) ** 2.0))
            Surrogate.triangle 0.5, (fun x -> max 0.0 (1.0 - abs x / 0.5) / 0.5)
            Surrogate.boxcar 0.5, (fun x -> if abs x < 0.25 then 2.0 else 0.0)
            Surrogate.straightThrough, (fun _ -> 1.0)
        ]

    let private points = [| -1.0; -0.3; -0.25; -0.01; 0.0; 0.01; 0.1; 0.25; 0.3; 0.7 |]

    [<Fact>]
    let ``surrogate derivatives in forward mode match their closed forms, including at 0`` () =
        for s, d in surrogates do
            for dtype in [ Float64; Float32 ] do
                let x = Tensor.FromArray(points, points.Length).Convert dtype

                let tangent =
                    Tensor.FromArray(Array.init points.Length (fun i -> float (i + 1)), points.Length).Convert dtype

                let z, dz = Ad.jvp (Snn.spike s) x tangent
                Assert.Equal<float[]>(points |> Array.map (fun p -> if p > 0.0 then 1.0 else 0.0), values z)
                let expected = points |> Array.mapi (fun i p -> float (i + 1) * d p)
                let tol = if dtype = Float64 then 1e-13 else 2e-6
                assertAllClose $"jvp %s{s.Name} %s{dtype.Name}" tol tol expected (values dz)

    [<Fact>]
    let ``surrogate derivatives in reverse mode match their closed forms, including at 0`` () =
        for s, d in surrogates do
            for dtype in [ Float64; Float32 ] do
                let x = Tensor.FromArray(points, points.Length).Convert dtype

                let weights =
                    Tensor.FromArray(Array.init points.Length (fun i -> 1.0 - 0.3 * float i), points.Length).Convert dtype

                let g = Ad.grad (fun x -> (Snn.spike s x * weights).Sum()) x
                let expected = points |> Array.mapi (fun i p -> (1.0 - 0.3 * float i) * d p)
                let tol = if dtype = Float64 then 1e-13 else 2e-6
                assertAllClose $"grad %s{s.Name} %s{dtype.Name}" tol tol expected (values g)

    [<Fact>]
    let ``documented peak values at exactly 0`` () =
        let at0 (s: SurrogateFn) =
            (Ad.grad (fun x -> (Snn.spike s x).Sum()) (Tensor.Scalar(0.0, Float64))).ToScalar()

        Assert.Equal(1.0, at0 (Surrogate.superSpike 100.0))
        Assert.Equal(2.0, at0 (Surrogate.sigmoid 8.0), 14)
        Assert.Equal(1.5, at0 (Surrogate.arctan 3.0), 14)
        Assert.Equal(4.0, at0 (Surrogate.triangle 0.25), 14)
        Assert.Equal(4.0, at0 (Surrogate.boxcar 0.25), 14)
        Assert.Equal(1.0, at0 Surrogate.straightThrough)

    [<Fact>]
    let ``sigmoid, triangle and boxcar surrogates integrate to 1`` () =
        for s in [ Surrogate.sigmoid 5.0; Surrogate.triangle 0.3; Surrogate.boxcar 0.4 ] do
            let n = 200001
            let xs = Array.init n (fun i -> -10.0 + 20.0 * float i / float (n - 1))
            let d = values (s.Derivative(t64 xs [| n |]))
            let h = 20.0 / float (n - 1)
            let integral = (Array.sum d - 0.5 * (d[0] + d[n - 1])) * h
            Assert.True(abs (integral - 1.0) < 1e-3, $"%s{s.Name}: integral %g{integral}")

    [<Fact>]
    let ``second derivative through the surrogate (grad of grad) matches the closed form`` () =
        // d/dx of the sigmoid surrogate: beta^2 s (1 - s) (1 - 2 s), s = sigma(beta x).
        let beta = 3.0
        let x = t64 [| -0.7; -0.1; 0.0; 0.2; 0.9 |] [| 5 |]

        let first (x: Tensor) =
            Ad.grad (fun x -> (Snn.spike (Surrogate.sigmoid beta) x).Sum()) x

        let second = Ad.grad (fun x -> (first x).Sum()) x

        let expected =
            values x
            |> Array.map (fun x ->
                let s = sigma (beta * x)
                beta * beta * s * (1.0 - s) * (1.0 - 2.0 * s))

        assertAllClose "second derivative" 1e-12 1e-14 expected (values second)

    [<Fact>]
    let ``surrogate parameters are validated`` () =
        assertThrowsArg [ "superSpike"; "beta must be positive" ] (fun () -> Surrogate.superSpike 0.0)
        assertThrowsArg [ "sigmoid"; "beta"; "-1" ] (fun () -> Surrogate.sigmoid -1.0)
        assertThrowsArg [ "arctan"; "alpha" ] (fun () -> Surrogate.arctan infinity)
        assertThrowsArg [ "triangle"; "width" ] (fun () -> Surrogate.triangle nan)
        assertThrowsArg [ "boxcar"; "width" ] (fun () -> Surrogate.boxcar 0.0)

    // -----------------------------------------------------------------------------------------
    // Parameter validation

    [<Fact>]
    let ``LIF parameters are validated with clear messages`` () =
        let p = Snn.Lif.defaults
        assertThrowsArg [ "Lif"; "TauMem must be positive"; "got 0" ] (fun () -> Snn.Lif.validate { p with TauMem = 0.0 })
        assertThrowsArg [ "Lif"; "TauSyn must be positive"; "-0.005" ] (fun () -> Snn.Lif.validate { p with TauSyn = -5e-3 })
        assertThrowsArg [ "Lif"; "TauMem" ] (fun () -> Snn.Lif.validate { p with TauMem = nan })
        assertThrowsArg [ "Lif"; "Dt = 0.005 s must be smaller than TauSyn = 0.005 s" ] (fun () -> Snn.Lif.validate { p with Dt = 5e-3 })

        assertThrowsArg [ "Lif"; "smaller than TauMem" ] (fun () ->
            Snn.Lif.validate
                { p with
                    Dt = 2e-3
                    TauSyn = 5e-3
                    TauMem = 1e-3
                })

        assertThrowsArg [ "Lif"; "Dt must be positive" ] (fun () -> Snn.Lif.validate { p with Dt = 0.0 })
        assertThrowsArg [ "Lif"; "threshold VTh = 0 must lie above the reset VReset = 0" ] (fun () -> Snn.Lif.validate { p with VTh = 0.0 })
        assertThrowsArg [ "Lif"; "VTh = 0.5"; "VReset = 0.7" ] (fun () -> Snn.Lif.validate { p with VTh = 0.5; VReset = 0.7 })
        // Layers and fused primitives validate too, before any data is seen.
        assertThrowsArg [ "Lif"; "TauMem" ] (fun () -> Layers.lif { p with TauMem = -1.0 })
        assertThrowsArg [ "Lif"; "TauMem" ] (fun () -> Layers.lifGeneric { p with TauMem = -1.0 })
        assertThrowsArg [ "Lif"; "VTh" ] (fun () -> Fused.lif { p with VTh = -1.0 } (Tensor.Zeros(3, 2)))
        Snn.Lif.validate p |> ignore

    [<Fact>]
    let ``LI, ALIF, AdEx and IF parameters are validated with clear messages`` () =
        let li = Snn.Li.defaults
        assertThrowsArg [ "Li"; "TauSyn must be positive" ] (fun () -> Snn.Li.validate { li with TauSyn = 0.0 })
        assertThrowsArg [ "Li"; "Dt = 0.02 s must be smaller than TauMem" ] (fun () -> Snn.Li.validate { li with Dt = 0.02; TauSyn = 0.05 })
        assertThrowsArg [ "Li"; "TauMem" ] (fun () -> Layers.li { li with TauMem = -2.0 })
        let alif = Snn.Alif.defaults
        assertThrowsArg [ "Alif"; "TauAdapt must be positive" ] (fun () -> Snn.Alif.validate { alif with TauAdapt = 0.0 })
        assertThrowsArg [ "Alif"; "smaller than TauAdapt" ] (fun () -> Snn.Alif.validate { alif with TauAdapt = 1e-3 })
        assertThrowsArg [ "Alif"; "Beta must be non-negative" ] (fun () -> Snn.Alif.validate { alif with Beta = -0.1 })

        assertThrowsArg [ "Lif"; "threshold" ] (fun () ->
            Layers.alif
                { alif with
                    Lif = { alif.Lif with VReset = 2.0 }
                })

        let adex = Snn.AdEx.defaults
        assertThrowsArg [ "AdEx"; "TauAdapt must be positive" ] (fun () -> Snn.AdEx.validate { adex with TauAdapt = -1.0 })

        assertThrowsArg [ "AdEx"; "Dt = 0.001 s must be smaller than TauSyn = 0.001 s" ] (fun () ->
            Snn.AdEx.validate { adex with Dt = 1e-3; TauSyn = 1e-3 })

        assertThrowsArg [ "AdEx"; "DeltaT must be positive" ] (fun () -> Snn.AdEx.validate { adex with DeltaT = 0.0 })

        assertThrowsArg [ "AdEx"; "threshold VTh = 0.3"; "VReset = 0.3" ] (fun () ->
            Snn.AdEx.validate { adex with VTh = 0.3; VReset = 0.3 })

        assertThrowsArg [ "AdEx"; "TRef must be non-negative" ] (fun () -> Layers.adex { adex with TRef = -1e-3 })
        let iF = Snn.IF.defaults

        assertThrowsArg [ "IF"; "threshold VTh = -1 must lie above the reset VReset = 0" ] (fun () ->
            Snn.IF.validate { iF with VTh = -1.0 })

        assertThrowsArg [ "IF"; "VTh" ] (fun () -> Layers.integrateAndFire { iF with VReset = 1.0 })

        for ok in
            [
                box (Snn.Li.validate li)
                box (Snn.Alif.validate alif)
                box (Snn.AdEx.validate adex)
                box (Snn.IF.validate iF)
            ] do
            Assert.NotNull ok

    [<Fact>]
    let ``every model rejects every non-finite parameter, naming the model and the parameter`` () =
        let lif = Snn.Lif.defaults
        let li = Snn.Li.defaults
        let alif = Snn.Alif.defaults
        let adex = Snn.AdEx.defaults
        let iF = Snn.IF.defaults

        // (model, parameter, validation of the defaults with that parameter set to v)
        let cases: (string * string * (float -> obj)) list =
            [
                for name, set in
                    [
                        "TauSyn", (fun v -> { lif with TauSyn = v })
                        "TauMem", (fun v -> { lif with TauMem = v })
                        "VLeak", (fun v -> { lif with VLeak = v })
                        "VTh", (fun v -> { lif with VTh = v })
                        "VReset", (fun v -> { lif with VReset = v })
                        "Dt", (fun v -> { lif with Dt = v })
                    ] do
                    "Lif", name, (fun v -> box (Snn.Lif.validate (set v)))
                for name, set in
                    [
                        "TauSyn", (fun v -> { li with TauSyn = v })
                        "TauMem", (fun v -> { li with TauMem = v })
                        "VLeak", (fun v -> { li with VLeak = v })
                        "Dt", (fun v -> { li with Dt = v })
                    ] do
                    "Li", name, (fun v -> box (Snn.Li.validate (set v)))
                for name, set in
                    [
                        "TauAdapt", (fun v -> { alif with TauAdapt = v })
                        "Beta", (fun v -> { alif with Beta = v })
                        "VLeak",
                        (fun v ->
                            { alif with
                                Lif = { alif.Lif with VLeak = v }
                            })
                    ] do
                    "Alif", name, (fun v -> box (Snn.Alif.validate (set v)))
                for name, set in
                    [
                        "TauSyn", (fun v -> { adex with TauSyn = v })
                        "TauMem", (fun v -> { adex with TauMem = v })
                        "TauAdapt", (fun v -> { adex with TauAdapt = v })
                        "VLeak", (fun v -> { adex with VLeak = v })
                        "VT", (fun v -> { adex with VT = v })
                        "DeltaT", (fun v -> { adex with DeltaT = v })
                        "VTh", (fun v -> { adex with VTh = v })
                        "VReset", (fun v -> { adex with VReset = v })
                        "A", (fun v -> { adex with A = v })
                        "B", (fun v -> { adex with B = v })
                        "TRef", (fun v -> { adex with TRef = v })
                        "Dt", (fun v -> { adex with Dt = v })
                    ] do
                    "AdEx", name, (fun v -> box (Snn.AdEx.validate (set v)))
                for name, set in
                    [
                        "VTh", (fun v -> { iF with VTh = v })
                        "VReset", (fun v -> { iF with VReset = v })
                    ] do
                    "IF", name, (fun v -> box (Snn.IF.validate (set v)))
            ]

        // Before: NaN VLeak, NaN AdEx B and VReset = -inf (NaN in the generic LIF, a finite value in
        // the fused one) were among the accepted values.
        for model, name, validate in cases do
            for bad in [ nan; infinity; -infinity ] do
                assertThrowsArg [ model + ":"; name; "finite" ] (fun () -> validate bad)

        // The layers built on them too.
        assertThrowsArg [ "Lif"; "VReset"; "finite" ] (fun () -> Layers.lif { lif with VReset = -infinity })
        assertThrowsArg [ "Lif"; "VLeak"; "finite" ] (fun () -> Fused.lif { lif with VLeak = nan } (Tensor.zeros [| 2; 1; 1 |]))

    // -----------------------------------------------------------------------------------------
    // Fused LIF / LI layers against the generic step scan

    let private lifVariants =
        [
            "reset to value",
            { Snn.Lif.defaults with
                VReset = -0.2
                VLeak = 0.1
            }
            "reset by subtraction",
            { Snn.Lif.defaults with
                Reset = Snn.BySubtraction
                VReset = -0.2
                VLeak = 0.1
            }
            "defaults", Snn.Lif.defaults
        ]

    let private genericLif (p: Snn.Lif.Spec) (c: Tensor) =
        let _, (z, v) =
            Ad.scan (Snn.Lif.stepWithMembraneOf p) (Snn.Lif.init c.Shape[1..] c.DType) c

        z, v

    /// Random currents [T; B; N] that make the neurons spike several times.
    let private currents (seed: int64) = uniform seed [| 60; 3; 7 |] -0.3 1.2

    [<Fact>]
    let ``fused LIF equals the generic step scan in value (both resets, Float64 and Float32)`` () =
        for name, p in lifVariants do
            for dtype in [ Float64; Float32 ] do
                let c = (currents 11L).Convert dtype
                let z, v = Fused.lif p c
                let zg, vg = genericLif p c
                Assert.True((values z |> Array.sum) > 20.0, $"%s{name}: too few spikes to test")
                assertSame $"%s{name} spikes %s{dtype.Name}" zg z
                let tol = if dtype = Float64 then 1e-14 else 1e-6
                assertTensorClose $"%s{name} membrane %s{dtype.Name}" tol tol vg v

    [<Fact>]
    let ``fused LIF equals the generic step scan in jvp and gradient (Float64)`` () =
        for name, p in lifVariants do
            let c = currents 12L
            let dc = randn 13L c.Shape 1.0
            let wz, wv = randn 14L c.Shape 1.0, randn 15L c.Shape 1.0

            let loss (run: Tensor -> Tensor * Tensor) (c: Tensor) =
                let (z: Tensor), (v: Tensor) = run c in (z * wz + v * wv).Sum()

            let (z, v), (dz, dv) = Ad.jvp (Fused.lif p) c dc
            let (zg, vg), (dzg, dvg) = Ad.jvp (genericLif p) c dc
            assertSame $"%s{name} jvp spikes" zg z
            assertTensorClose $"%s{name} jvp membrane" 1e-14 1e-14 vg v
            assertTensorClose $"%s{name} spike tangents" 1e-11 1e-13 dzg dz
            assertTensorClose $"%s{name} membrane tangents" 1e-11 1e-13 dvg dv
            let g = Ad.grad (loss (Fused.lif p)) c
            let gg = Ad.grad (loss (genericLif p)) c
            assertTensorClose $"%s{name} gradient" 1e-11 1e-13 gg g
            // Only the spike cotangent (the membrane output unused), as in a network.
            let g1 = Ad.grad (fun c -> (fst (Fused.lif p c) * wz).Sum()) c
            let g1g = Ad.grad (fun c -> (fst (genericLif p c) * wz).Sum()) c
            assertTensorClose $"%s{name} spike-only gradient" 1e-11 1e-13 g1g g1

    let private genericLi (p: Snn.Li.Spec) (c: Tensor) =
        snd (Ad.scan (Snn.Li.stepOf p) (Snn.Li.init c.Shape[1..] c.DType) c)

    [<Fact>]
    let ``fused LI equals the generic step scan in value, jvp and gradient (VLeak 0 and not 0)`` () =
        for p in
            [
                Snn.Li.defaults
                { Snn.Li.defaults with
                    VLeak = 0.35
                    TauMem = 7e-3
                    TauSyn = 3e-3
                }
            ] do
            let c = randn 21L [| 40; 2; 5 |] 1.0
            let dc = randn 22L c.Shape 1.0
            let w = randn 23L c.Shape 1.0
            assertTensorClose $"LI value VLeak=%g{p.VLeak}" 1e-13 1e-14 (genericLi p c) (Fused.li p c)
            let v, dv = Ad.jvp (Fused.li p) c dc
            let vg, dvg = Ad.jvp (genericLi p) c dc
            assertTensorClose "LI jvp value" 1e-13 1e-14 vg v
            assertTensorClose "LI tangent" 1e-12 1e-14 dvg dv
            let g = Ad.grad (fun c -> (Fused.li p c * w).Sum()) c
            let gg = Ad.grad (fun c -> (genericLi p c * w).Sum()) c
            assertTensorClose $"LI gradient VLeak=%g{p.VLeak}" 1e-12 1e-14 gg g

    [<Fact>]
    let ``fused layers reject inputs without a time axis`` () =
        assertThrowsArg [ "Fused.lif"; "time axis" ] (fun () -> Fused.lif Snn.Lif.defaults (Tensor.Scalar 1.0))
        assertThrowsArg [ "Fused.li"; "time axis" ] (fun () -> Fused.li Snn.Li.defaults (Tensor.Scalar 1.0))

    [<Fact>]
    let ``LIF kernels reject buffers shorter than steps times lanes (their loops are unchecked)`` () =
        let one = [| 0.5 |]

        let k: Kernels.LifLanes<float> =
            {
                A = one
                B = one
                VLeak = [| 0.0 |]
                VTh = [| 1.0 |]
                VReset = [| 0.0 |]
                V0 = [| 0.0 |]
                I0 = [| 0.0 |]
            }

        let mode: Kernels.LifMode =
            {
                Spiking = true
                ResetToValue = true
                Refractory = 0
            }

        let steps, m = 3, 8
        let full () = Array.zeroCreate<float> (steps * m)
        let short () = Array.zeroCreate<float> (steps * m - 1)
        // The sizes that fit run; one element short of any buffer is refused by name.
        Kernels.LifKernels.Forward(mode, k, steps, m, full (), null, full (), full (), full (), null, null)

        assertThrowsArg [ "LifKernels.Forward"; "over 3 steps" ] (fun () ->
            Kernels.LifKernels.Forward(mode, k, steps, m, short (), null, full (), full (), full (), null, null))

        assertThrowsArg [ "LifKernels.Forward" ] (fun () ->
            Kernels.LifKernels.Forward(mode, k, steps, m, full (), null, short (), full (), full (), null, null))

        let gk: Kernels.LifLanes<float> =
            {
                A = null
                B = null
                VLeak = null
                VTh = null
                VReset = null
                V0 = null
                I0 = null
            }

        Kernels.LifKernels.Transpose(mode, k, steps, m, full (), null, full (), full (), full (), full (), full (), gk)

        assertThrowsArg [ "LifKernels.Transpose" ] (fun () ->
            Kernels.LifKernels.Transpose(mode, k, steps, m, full (), null, full (), full (), full (), short (), full (), gk))

        assertThrowsArg [ "LifKernels.Transpose" ] (fun () ->
            Kernels.LifKernels.Transpose(mode, k, steps, m, short (), null, full (), full (), full (), full (), full (), gk))

    // -----------------------------------------------------------------------------------------
    // Sparse spike products

    let private binary (seed: int64) (shape: int[]) (density: float) = (uniform seed shape 0.0 1.0).Lt density

    let private checkSpikeMatmul (what: string) (x: Tensor) (w: Tensor) =
        let ct = randn 31L (Array.append x.Shape[.. x.Rank - 2] [| w.Shape[1] |]) 1.0
        assertTensorClose $"%s{what} value" 1e-13 1e-13 (x.MatMul w) (Fused.spikeMatmul x w)
        let loss (mm: Tensor -> Tensor -> Tensor) (x: Tensor, w: Tensor) = (mm x w * ct).Sum()
        let gx, gw = Ad.grad (loss Fused.spikeMatmul) (x, w)
        let ex, ew = Ad.grad (loss (fun (x: Tensor) w -> x.MatMul w)) (x, w)
        assertTensorClose $"%s{what} dx" 1e-13 1e-13 ex gx
        assertTensorClose $"%s{what} dw" 1e-13 1e-13 ew gw
        // Gradient with respect to the weights alone (the path training takes).
        assertTensorClose $"%s{what} dw only" 1e-13 1e-13 ew (Ad.grad (fun w -> (Fused.spikeMatmul x w * ct).Sum()) w)
        let dx, dw = randn 32L x.Shape 1.0, randn 33L w.Shape 1.0
        let _, t = Ad.jvp (fun (x, w) -> Fused.spikeMatmul x w) (x, w) (dx, dw)
        assertTensorClose $"%s{what} jvp" 1e-12 1e-13 (dx.MatMul w + x.MatMul dw) t

    [<Fact>]
    let ``spikeMatmul equals the dense product for sparse binary input (accumulation path)`` () =
        let x = binary 1L [| 20; 4; 30 |] 0.05
        Assert.True((values x |> Array.sum) > 10.0)
        checkSpikeMatmul "sparse binary [T; B; K]" x (randn 2L [| 30; 9 |] 1.0)
        checkSpikeMatmul "sparse binary [B; K]" (binary 3L [| 50; 12 |] 0.1) (randn 4L [| 12; 3 |] 1.0)
        checkSpikeMatmul "all zero" (Tensor.Full([| 5; 6 |], 0.0, Float64)) (randn 5L [| 6; 2 |] 1.0)

    [<Fact>]
    let ``spikeMatmul splits rows, columns and the compression over threads exactly`` () =
        // 37 · 41 rows of 300: enough elements for two chunks of the compression and of both
        // products (about (1517 + 9100) · 45 elements each); n = 45 makes the transposed product's
        // column slices ragged (24 + 21), and 1517 rows an uneven split.
        let x = binary 14L [| 37; 41; 300 |] 0.02
        checkSpikeMatmul "threaded [T; B; K]" x (randn 15L [| 300; 45 |] 1.0)
        let a = (x.Convert Float32).ToArray()
        let rows, width = 37 * 41, 300
        let saved = Kernels.Parallelism.MaxThreads

        let compress threads (xs: float32[]) maxDensity =
            Kernels.Parallelism.MaxThreads <- threads

            try
                Kernels.Spiking.TryCompress(xs, rows, width, maxDensity)
            finally
                Kernels.Parallelism.MaxThreads <- saved

        match compress 1 a 0.15, compress 2 a 0.15 with
        | Some one, Some two ->
            Assert.Equal<int[]>(one.RowStart, two.RowStart)
            Assert.Equal<int[]>(one.Cols, two.Cols)
            Assert.Equal(int (Array.sum a), two.Cols.Length)
        | _ -> failwith "a sparse binary tensor must compress"

        // Not binary in the last row only (the second chunk), and denser than the limit overall
        // while neither chunk alone holds more ones than it: None either way, as with one thread.
        let graded = Array.copy a
        graded[graded.Length - 1] <- 0.5f
        Assert.True((compress 2 graded 0.15).IsNone)
        let ones = Array.sum a |> int
        let limit = float (ones - 1) / float a.Length
        Assert.True((compress 1 a limit).IsNone)
        Assert.True((compress 2 a limit).IsNone)

    [<Fact>]
    let ``spikeMatmul equals the dense product for non-binary and dense input (GEMM fallback)`` () =
        checkSpikeMatmul "non-binary" (binary 6L [| 10; 3; 8 |] 0.05 * 0.5) (randn 7L [| 8; 5 |] 1.0)
        checkSpikeMatmul "binary but dense" (binary 8L [| 10; 3; 8 |] 0.6) (randn 9L [| 8; 5 |] 1.0)
        checkSpikeMatmul "real valued" (randn 10L [| 4; 8 |] 1.0) (randn 11L [| 8; 5 |] 1.0)

    [<Fact>]
    let ``spikeMatmul in Float32 and its argument errors`` () =
        let x = (binary 12L [| 30; 16 |] 0.1).Convert Float32
        let w = (randn 13L [| 16; 4 |] 1.0).Convert Float32
        assertTensorClose "Float32 value" 1e-6 1e-6 (x.MatMul w) (Fused.spikeMatmul x w)
        assertThrowsArg [ "Fused.spikeMatmul"; "[30; 16]"; "[15; 4]" ] (fun () -> Fused.spikeMatmul x (Tensor.Zeros(15, 4)))
        assertThrowsArg [ "Fused.spikeMatmul"; "dtypes differ" ] (fun () -> Fused.spikeMatmul x (randn 1L [| 16; 4 |] 1.0))
