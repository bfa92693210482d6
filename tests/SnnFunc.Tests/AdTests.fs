/// Transform-level tests of SnnFunc.Ad: nested differentiation (perturbation confusion, Hessians,
/// every pairing of jvp/grad/vmap), vmap against loops, custom rules, and the error messages.
module SnnFunc.Tests.AdTests

open System
open Xunit
open SnnFunc
open SnnFunc.Tests.AdTestUtil

// ---------------------------------------------------------------------------------------------
// Nested differentiation

[<Fact>]
let ``perturbation confusion: d/dx [x * d/dy (x + y)] = 1, in reverse and forward mode`` () =
    let inner (x: Tensor) =
        Ad.grad (fun (y: Tensor) -> x + y) (s64 4.0)

    let g = Ad.grad (fun x -> x * inner x) (s64 3.0)
    Assert.Equal(1.0, g.ToScalar())

    let innerF (x: Tensor) =
        snd (Ad.jvp (fun (y: Tensor) -> x + y) (s64 4.0) (s64 1.0))

    let _, d = Ad.jvp (fun x -> x * innerF x) (s64 3.0) (s64 1.0)
    Assert.Equal(1.0, d.ToScalar())
    // Mixed: forward outside, reverse inside, and the other way round.
    let _, d2 = Ad.jvp (fun x -> x * inner x) (s64 3.0) (s64 1.0)
    Assert.Equal(1.0, d2.ToScalar())
    Assert.Equal(1.0, (Ad.grad (fun x -> x * innerF x) (s64 3.0)).ToScalar())

[<Fact>]
let ``perturbation confusion: d/dx [x * d/dy (x * y)] = 2x`` () =
    for x0 in [ 3.0; -1.5 ] do
        let inner (x: Tensor) =
            Ad.grad (fun (y: Tensor) -> x * y) (s64 5.0)

        Assert.Equal(2.0 * x0, (Ad.grad (fun x -> x * inner x) (s64 x0)).ToScalar())

        let innerF (x: Tensor) =
            snd (Ad.jvp (fun (y: Tensor) -> x * y) (s64 5.0) (s64 1.0))

        Assert.Equal(2.0 * x0, (snd (Ad.jvp (fun x -> x * innerF x) (s64 x0) (s64 1.0))).ToScalar())
        Assert.Equal(2.0 * x0, (Ad.grad (fun x -> x * innerF x) (s64 x0)).ToScalar())

[<Fact>]
let ``grad of grad of grad gives the closed-form derivatives`` () =
    let x = t64 [| 3 |] [ 0.3; -1.2; 2.0 ]
    let f (x: Tensor) = (Tensor.sin x * x).Sum()
    let d1 = Ad.grad f x
    let d2 = Ad.grad (fun x -> (Ad.grad f x).Sum()) x
    let d3 = Ad.grad (fun x -> (Ad.grad (fun x -> (Ad.grad f x).Sum()) x).Sum()) x
    let xs = values x
    assertClose "f'" 1e-14 1e-15 (t64 [| 3 |] [ for v in xs -> sin v + v * cos v ]) d1
    assertClose "f''" 1e-14 1e-15 (t64 [| 3 |] [ for v in xs -> 2.0 * cos v - v * sin v ]) d2
    assertClose "f'''" 1e-14 1e-15 (t64 [| 3 |] [ for v in xs -> -3.0 * sin v - v * cos v ]) d3

[<Fact>]
let ``hessian of a quadratic form x^T A x is A + A^T`` () =
    let rng = Random 1
    let a = randn rng [| 4; 4 |]
    let x = randn rng [| 4 |]
    let h = Ad.hessian (fun x -> Tensor.matmul x (Tensor.matmul a x)) x
    assertClose "hessian" 1e-14 1e-14 (a + Tensor.transpose a) h

[<Fact>]
let ``hessian of sum(sin x * x) is diagonal with 2 cos x - x sin x`` () =
    let x = t64 [| 2; 2 |] [ 0.1; 1.0; -2.0; 3.0 ]
    let h = Ad.hessian (fun x -> (Tensor.sin x * x).Sum()) x
    Assert.Equal<int[]>([| 2; 2; 2; 2 |], h.Shape)
    let xs = values x

    let expected =
        Array.init 16 (fun k -> let i, j = k / 4, k % 4 in if i = j then 2.0 * cos xs[i] - xs[i] * sin xs[i] else 0.0)

    assertClose "hessian" 1e-14 1e-15 (Tensor.ofArray64 expected [| 2; 2; 2; 2 |]) h

/// A small MLP loss on a flat parameter vector: 3 inputs, 4 tanh hidden units, 1 output.
let private mlpLoss (inputs: Tensor) (w: Tensor) =
    let w1 = w.Narrow(0, 0, 12).Reshape([| 3; 4 |])
    let b1 = w.Narrow(0, 12, 4)
    let w2 = w.Narrow(0, 16, 4).Reshape([| 4; 1 |])
    let h = Tensor.tanh (Tensor.matmul inputs w1 + b1)
    let out = Tensor.matmul h w2
    (out * out).Mean()

[<Fact>]
let ``hessian of a small MLP equals finite differences of its gradient, and is symmetric`` () =
    let rng = Random 2
    let inputs = randn rng [| 5; 3 |]
    let w = randn rng [| 20 |]
    let f = mlpLoss inputs
    let h = Ad.hessian f w
    let hr = Ad.jacrev (Ad.grad f) w // reverse over reverse
    assertClose "jacfwd(grad) = jacrev(grad)" 1e-12 1e-13 h hr
    assertClose "symmetric" 1e-12 1e-13 (Tensor.transpose h) h
    let eps = 1e-5

    for i in 0..19 do
        let e =
            Tensor.ofArray64 (Array.init 20 (fun j -> if i = j then eps else 0.0)) [| 20 |]

        let column = (Ad.grad f (w + e) - Ad.grad f (w - e)) / (2.0 * eps)
        assertClose $"hessian column %d{i}" 0.0 1e-7 column (h.Narrow(1, i, 1).Reshape [| 20 |])

[<Fact>]
let ``jvp of grad is the Hessian-vector product, and hvp agrees`` () =
    let rng = Random 3
    let inputs = randn rng [| 5; 3 |]
    let w, v = randn rng [| 20 |], randn rng [| 20 |]
    let f = mlpLoss inputs
    let h = Ad.hessian f w
    let expected = Tensor.matmul h v
    let _, hv = Ad.jvp (Ad.grad f) w v
    assertClose "jvp of grad" 1e-12 1e-14 expected hv
    assertClose "hvp" 1e-12 1e-14 expected (Ad.hvp f w v)

[<Fact>]
let ``per-example gradients: vmap of grad equals a loop`` () =
    let rng = Random 4
    let w = randn rng [| 3; 2 |]
    let xs = randn rng [| 6; 3 |]

    let loss (w: Tensor) (x: Tensor) =
        (Tensor.tanh (Tensor.matmul x w) |> Tensor.square).Sum()

    let batched =
        Ad.vmapWith [| None; Some 0 |] 0 (fun (w, x) -> Ad.grad (fun w -> loss w x) w) (w, xs)

    Assert.Equal<int[]>([| 6; 3; 2 |], batched.Shape)

    for i in 0..5 do
        let x = xs.Narrow(0, i, 1).Reshape [| 3 |]
        assertClose $"example %d{i}" 1e-14 1e-15 (Ad.grad (fun w -> loss w x) w) (batched.Narrow(0, i, 1).Reshape [| 3; 2 |])

[<Fact>]
let ``grad of vmap equals the sum of per-example gradients`` () =
    let rng = Random 5
    let w = randn rng [| 3; 2 |]
    let xs = randn rng [| 6; 3 |]

    let loss (w: Tensor) (x: Tensor) =
        (Tensor.sin (Tensor.matmul x w) * x.Sum()).Sum()

    let g = Ad.grad (fun w -> (Ad.vmap (loss w) xs).Sum()) w

    let expected =
        [
            for i in 0..5 -> Ad.grad (fun w -> loss w (xs.Narrow(0, i, 1).Reshape [| 3 |])) w
        ]
        |> List.reduce (+)

    assertClose "grad of vmap" 1e-13 1e-14 expected g
    // And the gradient with respect to the mapped input, per row.
    let gx = Ad.grad (fun xs -> (Ad.vmap (loss w) xs).Sum()) xs

    for i in 0..5 do
        let x = xs.Narrow(0, i, 1).Reshape [| 3 |]
        assertClose $"row %d{i}" 1e-13 1e-14 (Ad.grad (loss w) x) (gx.Narrow(0, i, 1).Reshape [| 3 |])

[<Fact>]
let ``jacfwd equals jacrev and the closed form`` () =
    let rng = Random 6
    let a = randn rng [| 3; 4 |]
    let x = randn rng [| 4 |]

    let f (x: Tensor) =
        Tensor.tanh (Tensor.matmul a x) * x.Narrow(0, 0, 3)

    let jf, jr = Ad.jacfwd f x, Ad.jacrev f x
    Assert.Equal<int[]>([| 3; 4 |], jf.Shape)
    assertClose "jacfwd = jacrev" 1e-14 1e-15 jf jr
    // Closed form: J = diag(x[:3]) (1 - tanh^2) A + [diag(tanh(Ax)) | 0].
    let t = values (Tensor.tanh (Tensor.matmul a x))
    let av, xv = values a, values x

    let expected =
        Array.init 12 (fun k ->
            let i, j = k / 4, k % 4
            xv[i] * (1.0 - t[i] * t[i]) * av[i * 4 + j] + (if i = j then t[i] else 0.0))

    assertClose "closed form" 1e-14 1e-15 (Tensor.ofArray64 expected [| 3; 4 |]) jf
    // Matrix-shaped input and output.
    let g (m: Tensor) = Tensor.matmul m (Tensor.transpose m)
    let m = randn rng [| 2; 3 |]
    assertClose "matrix jacobian" 1e-14 1e-15 (Ad.jacfwd g m) (Ad.jacrev g m)
    Assert.Equal<int[]>([| 2; 2; 2; 3 |], (Ad.jacrev g m).Shape)

[<Fact>]
let ``stress: grad of vmap of jvp of grad matches finite differences`` () =
    let rng = Random 7
    let a = randn rng [| 3; 3 |]
    let vs = randn rng [| 4; 3 |]

    let f (w: Tensor) =
        (Tensor.tanh (Tensor.matmul a w) |> Tensor.square).Sum()
        + (Tensor.sin w * w).Sum()
    // F(w) = Σ_b Σ (H(w) v_b)², built from every transform at once.
    let bigF (w: Tensor) =
        (Ad.vmap (fun v -> snd (Ad.jvp (Ad.grad f) w v) |> Tensor.square |> Tensor.sum) vs).Sum()

    let w = randn rng [| 3 |]
    let g = Ad.grad bigF w
    // The same from the explicit Hessian (no vmap, no jvp): F = Σ_b |H v_b|².
    let viaHessian (w: Tensor) =
        (Tensor.matmul vs (Ad.hessian f w) |> Tensor.square).Sum()

    assertNear "F by two routes" 1e-12 ((viaHessian w).ToScalar()) ((bigF w).ToScalar())
    let d = randn rng [| 3 |]
    let h = 1e-5
    let fd = ((bigF (w + d * h)).ToScalar() - (bigF (w - d * h)).ToScalar()) / (2.0 * h)
    assertNear "<grad F, d> vs finite difference" 1e-7 fd (dot g d)
    assertClose "grad through vmap/jvp vs through hessian" 1e-11 1e-12 (Ad.grad viaHessian w) g

[<Fact>]
let ``linearize equals jvp and is linear`` () =
    let rng = Random 8
    let x = randn rng [| 2; 3 |]

    let f (x: Tensor) =
        Tensor.matmul (Tensor.tanh x) (Tensor.transpose (Tensor.exp x))

    let y, push = Ad.linearize f x
    assertEqualValues "primal" (f x) y

    for _ in 1..3 do
        let v = randn rng [| 2; 3 |]
        let _, jv = Ad.jvp f x v
        assertClose "linearize = jvp" 1e-14 1e-15 jv (push v)

    let v1, v2 = randn rng [| 2; 3 |], randn rng [| 2; 3 |]
    assertClose "linear" 1e-14 1e-15 (push v1 * 2.0 + push v2) (push (v1 * 2.0 + v2))

[<Fact>]
let ``valueAndGrad, valueAndGradAux and vjp agree`` () =
    let x = t64 [| 3 |] [ 0.5; 1.0; 2.0 ]
    let f (x: Tensor) = (x * x * x).Sum()
    let v, g = Ad.valueAndGrad f x
    Assert.Equal(0.125 + 1.0 + 8.0, v.ToScalar())
    assertEqualValues "3x^2" (t64 [| 3 |] [ 0.75; 3.0; 12.0 ]) g
    let (v2, aux), g2 = Ad.valueAndGradAux (fun x -> f x, (x.Max(), "label")) x
    Assert.Equal(v.ToScalar(), v2.ToScalar())
    Assert.Equal(2.0, (fst aux).ToScalar())
    Assert.Equal("label", snd aux)
    assertEqualValues "aux does not change the gradient" g g2

// ---------------------------------------------------------------------------------------------
// vmap

/// A function exercising many primitives per example: x is [4; 3], w an unbatched [3; 5].
let private manyPrims (w: Tensor) (x: Tensor) =
    let h = Tensor.matmul x w // [4; 5]
    let h = Tensor.maximum h (h * 0.1) + Tensor.abs (x.Sum(1, true))
    let s = h.Softmax(1)
    let g = s.Gather(1, [| 4; 0; 0 |]) // [4; 3]
    let c = Tensor.concat 0 [ g; x.Narrow(0, 1, 2) ] // [6; 3]
    let p = c.Pad([| 1; 0 |], [| 0; 2 |]) // [7; 5]
    let t = p.Permute([| 1; 0 |]).Reshape([| 35 |])
    let m = Tensor.where (t.Gt 0.1) (Tensor.sqrt (t + 1.0)) (Tensor.exp t)

    let r =
        m.Reshape([| 5; 7 |]).MaxAxes([| 1 |]) + m.Reshape([| 5; 7 |]).Min(1) + x.Max()

    let idx = x.ArgMax(1).Convert x.DType // [4] Int32 indices as values

    Tensor.concat 0 [ r; idx; x.Flatten().ScatterAdd(0, Array.init 12 (fun i -> i % 3), 3) ]
    |> Tensor.convert Float32
    |> Tensor.convert Float64

[<Fact>]
let ``vmap of a function using many primitives equals a loop over examples`` () =
    let rng = Random 9
    let w = randn rng [| 3; 5 |]
    let xs = randn rng [| 6; 4; 3 |]
    let batched = Ad.vmap (manyPrims w) xs
    Assert.Equal<int[]>([| 6; 12 |], batched.Shape)

    for i in 0..5 do
        let x = xs.Narrow(0, i, 1).Reshape [| 4; 3 |]
        assertClose $"example %d{i}" 1e-15 1e-15 (manyPrims w x) (batched.Narrow(0, i, 1).Reshape [| 12 |])

[<Fact>]
let ``vmapWith: unmapped arguments, in-axis 1 and out-axis 1 equal a loop`` () =
    let rng = Random 10
    let a = randn rng [| 3; 7 |] // mapped along axis 1 (7 examples of [3])
    let b = randn rng [| 3 |] // unmapped
    let c = randn rng [| 7; 2 |] // mapped along axis 0

    let f (a: Tensor, b: Tensor, c: Tensor) =
        Tensor.matmul (Tensor.unsqueeze 1 (a * b)) (Tensor.unsqueeze 0 c) // [3; 2]

    let r = Ad.vmapWith [| Some 1; None; Some -2 |] 1 f (a, b, c)
    Assert.Equal<int[]>([| 3; 7; 2 |], r.Shape)

    for i in 0..6 do
        let ai = a.Narrow(1, i, 1).Reshape [| 3 |]
        let ci = c.Narrow(0, i, 1).Reshape [| 2 |]
        assertClose $"example %d{i}" 1e-15 1e-15 (f (ai, b, ci)) (r.Narrow(1, i, 1).Reshape [| 3; 2 |])

    // An output that does not depend on the mapped input is broadcast along the batch axis.
    let constant =
        Ad.vmap (fun (_: Tensor) -> t64 [| 2 |] [ 1.0; 2.0 ]) (randn rng [| 4; 3 |])

    assertEqualValues "broadcast constant" (t64 [| 4; 2 |] [ 1.0; 2.0; 1.0; 2.0; 1.0; 2.0; 1.0; 2.0 ]) constant

[<Fact>]
let ``vmap of a matmul [m; k] x [k; n] is the batched [B; m; k] x [k; n] product`` () =
    let rng = Random 11
    let xs = randn rng [| 5; 2; 3 |]
    let w = randn rng [| 3; 4 |]
    let r = Ad.vmap (fun x -> Tensor.matmul x w) xs
    Assert.Equal<int[]>([| 5; 2; 4 |], r.Shape)
    // Same numbers as the direct broadcast product (one call) ...
    assertEqualValues "direct batched matmul" (Tensor.matmul xs w) r
    // ... and as a loop of plain products computed by hand.
    let xv, wv = values xs, values w

    let expected =
        Array.init 40 (fun k ->
            let b, i, j = k / 8, (k / 4) % 2, k % 4
            Seq.sum (seq { for l in 0..2 -> xv[b * 6 + i * 3 + l] * wv[l * 4 + j] }))

    assertClose "by hand" 1e-14 1e-15 (Tensor.ofArray64 expected [| 5; 2; 4 |]) r
    // The mapped operand on the right, and both mapped.
    let ys = randn rng [| 5; 3; 4 |]
    let a = randn rng [| 2; 3 |]
    assertEqualValues "unbatched left" (Tensor.matmul a ys) (Ad.vmap (fun y -> Tensor.matmul a y) ys)
    assertEqualValues "both batched" (Tensor.matmul xs ys) (Ad.vmap (fun (x, y) -> Tensor.matmul x y) (xs, ys))

[<Fact>]
let ``nested vmap equals a double loop`` () =
    let rng = Random 12
    let xs = randn rng [| 3; 4; 2 |]
    let r = Ad.vmap (Ad.vmap (fun (x: Tensor) -> (Tensor.sin x * x.Sum()).Sum())) xs
    Assert.Equal<int[]>([| 3; 4 |], r.Shape)

    for i in 0..2 do
        for j in 0..3 do
            let x = xs.Slice([| i; j; 0 |], [| 1; 1; 2 |]).Reshape [| 2 |]
            assertNear $"(%d{i}, %d{j})" 1e-15 ((Tensor.sin x * x.Sum()).Sum().ToScalar()) (r.Slice([| i; j |], [| 1; 1 |]).ToScalar())

// ---------------------------------------------------------------------------------------------
// Custom rules

/// Surrogate spike: Heaviside forward, fast-sigmoid (SuperSpike) derivative 1 / (1 + k|v|)^2.
let private k = 10.0
let private heaviside (v: Tensor) = v.Gt 0.0

let private surrogate (v: Tensor) =
    1.0 / Tensor.square (1.0 + k * Tensor.abs v)

let private spike =
    Ad.customJvp heaviside (fun v vdot -> heaviside v, vdot * surrogate v)

[<Fact>]
let ``customJvp surrogate spike: Heaviside forward, fast-sigmoid derivative, forward and reverse agree`` () =
    let v = t64 [| 4 |] [ -0.3; -0.01; 0.02; 0.5 ]
    assertEqualValues "forward is Heaviside" (t64 [| 4 |] [ 0.0; 0.0; 1.0; 1.0 ]) (spike v)
    let c = t64 [| 4 |] [ 1.0; 2.0; 3.0; 4.0 ]
    let g = Ad.grad (fun v -> (spike v * c).Sum()) v
    let expected = c * surrogate v
    assertClose "reverse" 1e-15 0.0 expected g
    let _, jv = Ad.jvp spike v c
    assertClose "forward" 1e-15 0.0 expected jv
    // Under vmap, and inside a second derivative (the rule's tangent is differentiated again).
    assertClose "vmap of grad" 1e-15 0.0 (surrogate v) (Ad.vmap (Ad.grad (fun v -> spike v)) v)
    let d2 = Ad.grad (fun v -> (Ad.grad (fun v -> (spike v).Sum()) v).Sum()) v
    let vv = values v

    let expected2 =
        vv |> Array.map (fun x -> -2.0 * k * float (sign x) / (1.0 + k * abs x) ** 3.0)

    assertClose "second derivative of the surrogate" 1e-13 0.0 (Tensor.ofArray64 expected2 [| 4 |]) d2

[<Fact>]
let ``customJvpN with two arguments: forward and reverse agree`` () =
    // f(a, b) = [a * b], with a rule that deliberately scales the b-derivative by 3 (to see it used).
    let f =
        Ad.customJvpN (fun xs -> [| xs[0] * xs[1] |]) (fun p t -> [| p[0] * p[1] |], [| t[0] * p[1] + t[1] * p[0] * 3.0 |])

    let a, b = t64 [| 2 |] [ 2.0; -1.0 ], t64 [| 2 |] [ 0.5; 4.0 ]
    let ga, gb = Ad.grad (fun (a, b) -> (Array.head (f [| a; b |])).Sum()) (a, b)
    assertEqualValues "d/da" b ga
    assertEqualValues "d/db (rule's 3a)" (a * 3.0) gb

    let _, jv =
        Ad.jvp (fun (a, b) -> Array.head (f [| a; b |])) (a, b) (Tensor.onesLike a, Tensor.zerosLike b)

    assertEqualValues "forward, a only" b jv

[<Fact>]
let ``customVjp: reverse mode uses bwd, forward mode its transpose`` () =
    let calls = ref 0

    let f =
        Ad.customVjp (fun (x: Tensor) -> x * x) (fun x -> x * x, x) (fun (r: Tensor) ct ->
            calls.Value <- calls.Value + 1
            ct * r * 3.0) // deliberately 3x instead of 2x: the test sees that bwd is used

    let x = t64 [| 3 |] [ 1.0; -2.0; 0.5 ]
    assertEqualValues "value" (x * x) (f x)
    assertEqualValues "grad = bwd" (x * 3.0) (Ad.grad (fun x -> (f x).Sum()) x)
    Assert.Equal(1, calls.Value)
    // Composed with other operations on both sides.
    assertClose "chain" 1e-15 0.0 (Tensor.cos x * Tensor.sin x * 3.0) (Ad.grad (fun x -> (f (Tensor.sin x)).Sum()) x)
    // Per-example gradients through it.
    assertEqualValues "vmap of grad" (x * 3.0) (Ad.vmap (Ad.grad f) x)
    // Forward mode applies the transpose of bwd, so it agrees with the custom rule (3x, not 2x).
    let v = t64 [| 3 |] [ 0.25; 1.0; -4.0 ]
    let y, jv = Ad.jvp f x v
    assertEqualValues "jvp primal" (x * x) y
    assertClose "jvp = transpose of bwd" 1e-15 0.0 (x * v * 3.0) jv
    assertClose "jacfwd = jacrev" 1e-15 0.0 (Ad.jacrev f x) (Ad.jacfwd f x)

    assertClose
        "hessian (bwd differentiated)"
        1e-15
        0.0
        (Tensor.eye 3 |> Tensor.convert Float64 |> (*) 3.0)
        (Ad.hessian (fun x -> (f x).Sum()) x)

[<Fact>]
let ``customVjp whose function closes over a differentiated value is a clear error`` () =
    // bwd only returns cotangents of the explicit argument; the closed-over scale would get no
    // gradient through the rule (or fail later in the backward pass). (When the explicit argument is
    // not differentiated, the rule is not used at all and the closure is traced normally.)
    let x = t64 [| 2 |] [ 1.0; 2.0 ]

    let ex =
        Assert.Throws<InvalidOperationException>(fun () ->
            Ad.grad
                (fun (x: Tensor, scale: Tensor) ->
                    let f =
                        Ad.customVjp (fun (x: Tensor) -> x * scale) (fun x -> x * scale, ()) (fun () ct -> ct * scale)

                    (f x).Sum())
                (x, s64 3.0)
            |> ignore)

    Assert.Contains("Ad.customVjp", ex.Message)
    Assert.Contains("closes over a value traced by 'grad'", ex.Message)

[<Fact>]
let ``customVjp and customJvp under grad of vmap`` () =
    let sq =
        Ad.customVjp (fun (x: Tensor) -> x * x) (fun x -> x * x, x) (fun (r: Tensor) ct -> ct * r * 2.0)

    let xs = t64 [| 3; 2 |] [ 1.0; 2.0; 3.0; 4.0; 5.0; 6.0 ]
    assertEqualValues "customVjp" (xs * 2.0) (Ad.grad (fun xs -> (Ad.vmap sq xs).Sum()) xs)
    assertClose "customJvp" 1e-15 0.0 (surrogate xs) (Ad.grad (fun xs -> (Ad.vmap spike xs).Sum()) xs)

[<Fact>]
let ``stopGradient has zero derivative in forward and reverse mode`` () =
    let x = t64 [| 3 |] [ 1.0; 2.0; 3.0 ]
    // d/dx [sg(x) * x] = sg(x) = x, not 2x.
    assertEqualValues "reverse" x (Ad.grad (fun x -> (Ad.stopGradient x * x).Sum()) x)
    assertEqualValues "forward" x (snd (Ad.jvp (fun x -> Ad.stopGradient x * x) x (Tensor.onesLike x)))
    assertEqualValues "forward, pure" (Tensor.zerosLike x) (snd (Ad.jvp Ad.stopGradient x (Tensor.onesLike x)))
    assertEqualValues "reverse, pure" (Tensor.zerosLike x) (Ad.grad (fun x -> (Ad.stopGradient x).Sum()) x)
    assertEqualValues "value unchanged" x (Ad.stopGradient x)
    // Under vmap and in a second derivative.
    assertEqualValues "vmap" x (Ad.vmap (Ad.grad (fun x -> Ad.stopGradient x * x)) x)
    // d/dx [sg(x) x²] = 2x sg(x); d/dx [2x sg(x)] = 2 sg(x) = 2x.
    assertEqualValues "second derivative" (x * 2.0) (Ad.grad (fun x -> (Ad.grad (fun x -> (Ad.stopGradient x * x * x).Sum()) x).Sum()) x)

[<Fact>]
let ``checkpoint gives the same gradient and jvp as the plain function`` () =
    let rng = Random 13
    let w = randn rng [| 3; 3 |]
    let f (x: Tensor, w: Tensor) = Tensor.tanh (Tensor.matmul w x) * x
    let x = randn rng [| 3 |]
    let loss g (x, w) = (g (x, w) |> Tensor.square).Sum()
    let gPlain = Ad.grad (loss f) (x, w)
    let gCk = Ad.grad (loss (Ad.checkpoint f)) (x, w)
    assertClose "d/dx" 1e-15 1e-15 (fst gPlain) (fst gCk)
    assertClose "d/dw" 1e-15 1e-15 (snd gPlain) (snd gCk)
    let v = randn rng [| 3 |]
    assertClose "jvp" 1e-15 1e-15 (snd (Ad.jvp (fun x -> f (x, w)) x v)) (snd (Ad.jvp (fun x -> Ad.checkpoint f (x, w)) x v))
    assertClose "hessian" 1e-13 1e-14 (Ad.hessian (fun x -> loss f (x, w)) x) (Ad.hessian (fun x -> loss (Ad.checkpoint f) (x, w)) x)

// ---------------------------------------------------------------------------------------------
// Errors

let private assertEscaped (transform: string) (use': unit -> unit) =
    let ex = Assert.Throws<InvalidOperationException>(use')
    Assert.Contains("escaped tracer", ex.Message)
    Assert.Contains($"'%s{transform}'", ex.Message)

[<Fact>]
let ``a tracer kept from inside grad, vjp, jvp or vmap and used outside is an escaped-tracer error`` () =
    let x = t64 [| 2 |] [ 1.0; 2.0 ]
    let leaked = ref null

    let keep (x: Tensor) =
        leaked.Value <- x * 2.0
        x.Sum()

    Ad.grad keep x |> ignore
    assertEscaped "grad" (fun () -> leaked.Value + 1.0 |> ignore)
    Ad.valueAndGrad keep x |> ignore
    assertEscaped "valueAndGrad" (fun () -> Tensor.sin leaked.Value |> ignore)
    Ad.vjp keep x |> ignore
    assertEscaped "vjp" (fun () -> leaked.Value.Sum() |> ignore)
    Ad.jvp keep x x |> ignore
    assertEscaped "jvp" (fun () -> leaked.Value * x |> ignore)
    Ad.vmap keep (t64 [| 2; 2 |] [ 1.0; 2.0; 3.0; 4.0 ]) |> ignore
    assertEscaped "vmap" (fun () -> Tensor.exp leaked.Value |> ignore)
    // Custom functions check too.
    Ad.grad keep x |> ignore
    assertEscaped "grad" (fun () -> Ad.stopGradient leaked.Value |> ignore)
    // Reading values of a leaked tracer names the transform.
    let ex =
        Assert.Throws<InvalidOperationException>(fun () -> leaked.Value.ToDoubleArray() |> ignore)

    Assert.Contains("traced", ex.Message)

[<Fact>]
let ``grad of a non-scalar output is an error naming the shape`` () =
    let ex =
        Assert.Throws<ArgumentException>(fun () -> Ad.grad (fun (x: Tensor) -> x * 2.0) (t64 [| 3 |] [ 1.0; 2.0; 3.0 ]) |> ignore)

    Assert.Contains("Ad.grad", ex.Message)
    Assert.Contains("scalar", ex.Message)
    Assert.Contains("[3]", ex.Message)

    let ex2 =
        Assert.Throws<ArgumentException>(fun () ->
            Ad.valueAndGrad (fun (x: Tensor) -> x.Reshape [| 1; 3 |]) (t64 [| 3 |] [ 1.0; 2.0; 3.0 ])
            |> ignore)

    Assert.Contains("[1; 3]", ex2.Message)

[<Fact>]
let ``vjp pullback rejects a cotangent of the wrong shape, dtype or structure`` () =
    let x = t64 [| 3 |] [ 1.0; 2.0; 3.0 ]
    let _, pullback = Ad.vjp (fun (x: Tensor) -> x * 2.0) x

    let ex =
        Assert.Throws<ArgumentException>(fun () -> pullback (Tensor.Zeros([| 4 |]).Convert Float64) |> ignore)

    Assert.Contains("cotangent", ex.Message)
    Assert.Contains("[4]", ex.Message)
    Assert.Contains("[3]", ex.Message)

    let ex2 =
        Assert.Throws<ArgumentException>(fun () -> pullback (Tensor.Zeros [| 3 |]) |> ignore)

    Assert.Contains("float32", ex2.Message.ToLowerInvariant())
    let _, pullbackList = Ad.vjp (fun (x: Tensor) -> [ x; x.Sum() ]) x
    let ex3 = Assert.Throws<ArgumentException>(fun () -> pullbackList [ x ] |> ignore)
    Assert.Contains("structure", ex3.Message)
    // The right cotangent still works after the failures.
    assertEqualValues "pullback" (t64 [| 3 |] [ 1.5; 1.5; 1.5 ]) (pullbackList [ Tensor.onesLike x; s64 0.5 ])

[<Fact>]
let ``vmap with mismatched batch sizes is an error naming the sizes`` () =
    let ex =
        Assert.Throws<ArgumentException>(fun () ->
            Ad.vmap (fun (a: Tensor, b: Tensor) -> a + b) (Tensor.Zeros [| 3; 2 |], Tensor.Zeros [| 4; 2 |])
            |> ignore)

    Assert.Contains("Ad.vmap", ex.Message)
    Assert.Contains("3", ex.Message)
    Assert.Contains("4", ex.Message)

    let ex2 =
        Assert.Throws<ArgumentException>(fun () ->
            Ad.vmapWith [| Some 0 |] 0 (fun (a: Tensor, b: Tensor) -> a + b) (Tensor.Zeros [| 3 |], Tensor.Zeros [| 3 |])
            |> ignore)

    Assert.Contains("in-axes", ex2.Message)

[<Fact>]
let ``jvp rejects tangents of the wrong shape`` () =
    let ex =
        Assert.Throws<ArgumentException>(fun () -> Ad.jvp Tensor.sin (Tensor.Zeros [| 3 |]) (Tensor.Zeros [| 2 |]) |> ignore)

    Assert.Contains("tangents", ex.Message)
    Assert.Contains("[2]", ex.Message)

[<Fact>]
let ``pow at its edges: d(x^0)/dx = 0 at 0 (was NaN), and the other one-sided limits as in JAX`` () =
    let x = t64 [| 3 |] [ 0.0; 2.0; -1.5 ]

    let d (b: float) =
        Ad.grad (fun (x: Tensor) -> (x ** b).Sum()) x

    assertEqualValues "x^0" (Tensor.zerosLike x) (d 0.0)
    assertEqualValues "x^1" (Tensor.onesLike x) (d 1.0)
    assertEqualValues "x^2" (x * 2.0) (d 2.0)
    assertEqualValues "x^0 forward" (Tensor.zerosLike x) (snd (Ad.jvp (fun (x: Tensor) -> x ** 0.0) x (Tensor.onesLike x)))
    // d/db 0^b = 0 for b > 0 (the limit), not 0 * log 0 = NaN.
    let gb =
        Ad.grad (fun (b: Tensor) -> (Tensor.zerosLike b ** b).Sum()) (t64 [| 2 |] [ 0.5; 2.0 ])

    assertEqualValues "d/db 0^b" (t64 [| 2 |] [ 0.0; 0.0 ]) gb
    // x^0.5 at 0: the derivative is infinite, as it is mathematically.
    Assert.Equal(infinity, (Ad.grad (fun (x: Tensor) -> (x ** 0.5).Sum()) (t64 [| 1 |] [ 0.0 ])).ToScalar())
