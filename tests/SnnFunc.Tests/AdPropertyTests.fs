/// Per-primitive derivative tests over random shapes (FsCheck drives the seeds): the dot-product
/// test <vjp(u), v> = <u, jvp(v)> in Float64 (reverse mode is the transpose of forward mode, exact up
/// to rounding) and jvp against central finite differences. Inputs are drawn away from the points
/// where a primitive is not differentiable (0 for abs/relu, ties for max/min, integers for floor...).
module SnnFunc.Tests.AdPropertyTests

open System
open Xunit
open SnnFunc
open SnnFunc.Tests.AdTestUtil

/// A primitive under test: random inputs and the function of them, for one seed.
type Case =
    {
        Inputs: Tensor[]
        F: Tensor[] -> Tensor
        /// The derivative is zero everywhere (comparisons, sign, floor, argmax ...).
        ZeroDerivative: bool
    }

let private case inputs f =
    {
        Inputs = inputs
        F = f
        ZeroDerivative = false
    }

let private constCase inputs f =
    {
        Inputs = inputs
        F = f
        ZeroDerivative = true
    }

/// Runs both checks for every seed; `fd = false` skips finite differences (used for Convert, whose
/// Float32 rounding needs its own step).
let private check (name: string) (maxTest: int) (make: Random -> Case) =
    forAllSeeds maxTest (fun seed ->
        let what = $"%s{name} (seed %d{seed})"
        let c = make (Random seed)
        let rng = Random(seed + 1)
        let _, jv = dotProductTest what rng c.F c.Inputs 1e-10

        if c.ZeroDerivative then
            Assert.True(maxAbs jv = 0.0, $"%s{what}: the jvp should be exactly zero, got max |jvp| = %g{maxAbs jv}")

        finiteDifferenceTest what rng c.F c.Inputs)

// ---------------------------------------------------------------------------------------------
// Unary

let private unaryDomain (op: UnaryOp) (rng: Random) (shape: int[]) =
    match op with
    | UnaryOp.Log
    | UnaryOp.Sqrt -> uniform rng 0.3 3.0 shape
    | UnaryOp.Log1p -> uniform rng -0.7 3.0 shape
    | UnaryOp.Relu
    | UnaryOp.Abs
    | UnaryOp.Sign -> awayFromZero rng 0.1 2.0 shape
    | UnaryOp.Floor
    | UnaryOp.Ceil ->
        // Keep x at least 0.1 from an integer.
        let k = uniform rng -3.0 3.0 shape |> Tensor.floor
        k + uniform rng 0.1 0.9 shape
    | UnaryOp.Round ->
        // Keep x at least 0.1 from a half-integer.
        let k = uniform rng -3.0 3.0 shape |> Tensor.floor
        k + uniform rng -0.4 0.4 shape
    | _ -> uniform rng -2.0 2.0 shape

let private unaryOps =
    [
        UnaryOp.Neg
        UnaryOp.Exp
        UnaryOp.Log
        UnaryOp.Sin
        UnaryOp.Cos
        UnaryOp.Tanh
        UnaryOp.Sigmoid
        UnaryOp.Relu
        UnaryOp.Abs
        UnaryOp.Sqrt
        UnaryOp.Sign
        UnaryOp.Floor
        UnaryOp.Ceil
        UnaryOp.Round
        UnaryOp.Log1p
        UnaryOp.Expm1
    ]

[<Fact>]
let ``every unary primitive passes the dot-product and finite-difference tests`` () =
    Assert.Equal(16, unaryOps.Length) // one entry per UnaryOp case (update when the set grows)

    for op in unaryOps do
        let zero =
            op = UnaryOp.Sign
            || op = UnaryOp.Floor
            || op = UnaryOp.Ceil
            || op = UnaryOp.Round

        check $"unary %A{op}" 25 (fun rng ->
            let x = unaryDomain op rng (randomShape rng 0 3 4)
            let f (xs: Tensor[]) = Tensor.Apply(Prim.Unary op, xs[0])
            if zero then constCase [| x |] f else case [| x |] f)

[<Fact>]
let ``Float64 sin and cos give the same bits on every call, whatever the arrays' alignment`` () =
    // TensorPrimitives' Float64 Sin/Cos chose per vector between its polynomial and the scalar
    // function, so the jvp and vjp primals of one cos differed by an ulp now and then (the dot-product
    // test above failed on seeds where the arrays fell differently).
    let x = Random.uniformRangeAs Float64 (Random.key 3L) -2.0 2.0 [| 4099 |]
    let xs = x.ToDoubleArray()

    for name, f, scalar in
        [
            "cos", (fun (t: Tensor) -> t.Cos()), Math.Cos
            "sin", (fun t -> t.Sin()), Math.Sin
        ] do
        for call in 1..40 do
            // A small allocation between calls moves the next arrays' alignment.
            GC.KeepAlive(Array.zeroCreate<byte> (1 + call % 48))
            let y = (f x).ToDoubleArray()

            for i in 0 .. xs.Length - 1 do
                if y[i] <> scalar xs[i] then
                    failwithf "%s call %d: element %d is %.17g, Math.%s gives %.17g" name call i y[i] name (scalar xs[i])

[<Fact>]
let ``unary derivatives match their closed forms`` () =
    // Independent of the JVP rules' own formulas: d/dx of each unary at a few points.
    let xs = [| 0.3; 0.7; 1.9 |]
    let x = t64 [| 3 |] (List.ofArray xs)

    let expected =
        [
            UnaryOp.Neg, (fun _ -> -1.0)
            UnaryOp.Exp, exp
            UnaryOp.Log, (fun x -> 1.0 / x)
            UnaryOp.Sin, cos
            UnaryOp.Cos, (fun x -> -(sin x))
            UnaryOp.Tanh, (fun x -> 1.0 - tanh x ** 2.0)
            UnaryOp.Sigmoid, (fun x -> let s = 1.0 / (1.0 + exp -x) in s * (1.0 - s))
            UnaryOp.Relu, (fun _ -> 1.0)
            UnaryOp.Abs, (fun _ -> 1.0)
            UnaryOp.Sqrt, (fun x -> 0.5 / sqrt x)
            UnaryOp.Log1p, (fun x -> 1.0 / (1.0 + x))
            UnaryOp.Expm1, exp
        ]

    for op, d in expected do
        let g = Ad.grad (fun (x: Tensor) -> Tensor.Apply(Prim.Unary op, x).Sum()) x
        assertClose $"d %A{op}" 1e-14 1e-15 (t64 [| 3 |] (xs |> Array.map d |> List.ofArray)) g

// ---------------------------------------------------------------------------------------------
// Binary

let private binaryOps =
    [
        BinaryOp.Add
        BinaryOp.Sub
        BinaryOp.Mul
        BinaryOp.Div
        BinaryOp.Pow
        BinaryOp.Max
        BinaryOp.Min
        BinaryOp.Eq
        BinaryOp.Ne
        BinaryOp.Lt
        BinaryOp.Le
        BinaryOp.Gt
        BinaryOp.Ge
    ]

/// Operands of broadcast-compatible shapes (either may be the smaller one).
let private binaryInputs (op: BinaryOp) (rng: Random) =
    let full = randomShape rng 0 3 4
    let small = broadcastableTo rng full
    let sa, sb = if rng.Next 2 = 0 then full, small else small, full

    match op with
    | BinaryOp.Div -> randn rng sa, awayFromZero rng 0.3 2.0 sb
    | BinaryOp.Pow -> uniform rng 0.4 2.5 sa, uniform rng -2.0 2.0 sb
    | BinaryOp.Max
    | BinaryOp.Min
    | BinaryOp.Eq
    | BinaryOp.Ne
    | BinaryOp.Lt
    | BinaryOp.Le
    | BinaryOp.Gt
    | BinaryOp.Ge ->
        // The operand of the output's shape is the other one broadcast plus d, |d| >= 0.1: no ties
        // between any pair of elements that meet.
        let outShape = Shape.broadcast "test" sa sb
        let d () = awayFromZero rng 0.1 1.0 outShape

        if sa = outShape then
            let b = randn rng sb
            b.BroadcastTo outShape + d (), b
        else
            let a = randn rng sa
            a, a.BroadcastTo outShape + d ()
    | _ -> randn rng sa, randn rng sb

[<Fact>]
let ``every binary primitive passes the dot-product and finite-difference tests, with broadcasting`` () =
    Assert.Equal(13, binaryOps.Length)

    for op in binaryOps do
        let zero =
            match op with
            | BinaryOp.Eq
            | BinaryOp.Ne
            | BinaryOp.Lt
            | BinaryOp.Le
            | BinaryOp.Gt
            | BinaryOp.Ge -> true
            | _ -> false

        check $"binary %A{op}" 30 (fun rng ->
            let a, b = binaryInputs op rng

            let f (xs: Tensor[]) =
                Tensor.Apply(Prim.Binary op, xs[0], xs[1])

            if zero then constCase [| a; b |] f else case [| a; b |] f)

[<Fact>]
let ``binary derivatives match closed forms, including pow in both arguments`` () =
    let a = t64 [| 2 |] [ 1.5; 0.7 ]
    let b = t64 [| 2 |] [ 2.5; -1.2 ]
    let ga, gb = Ad.grad (fun (a: Tensor, b: Tensor) -> (a ** b).Sum()) (a, b)
    let av, bv = values a, values b
    assertClose "d/da a^b" 1e-14 0.0 (t64 [| 2 |] [ for i in 0..1 -> bv[i] * av[i] ** (bv[i] - 1.0) ]) ga
    assertClose "d/db a^b" 1e-14 0.0 (t64 [| 2 |] [ for i in 0..1 -> av[i] ** bv[i] * log av[i] ]) gb
    // Ties of maximum/minimum split the derivative evenly.
    let gm1, gm2 =
        Ad.grad (fun (x: Tensor, y: Tensor) -> (Tensor.maximum x y).Sum()) (s64 2.0, s64 2.0)

    Assert.Equal(0.5, gm1.ToScalar())
    Assert.Equal(0.5, gm2.ToScalar())

// ---------------------------------------------------------------------------------------------
// Where, reductions, arg-extrema

[<Fact>]
let ``where passes the dot-product and finite-difference tests, with broadcasting`` () =
    check "where" 40 (fun rng ->
        let full = randomShape rng 0 3 4

        let shapes =
            Array.init 3 (fun i -> if rng.Next 3 = i then full else broadcastableTo rng full)

        shapes[rng.Next 3] <- full
        let cond = uniform rng 0.0 1.0 shapes[0] |> Tensor.gt (s64 0.5)
        case [| randn rng shapes[1]; randn rng shapes[2] |] (fun xs -> Tensor.where cond xs[0] xs[1]))

let private randomAxes (rng: Random) (rank: int) =
    [|
        for i in 0 .. rank - 1 do
            if rng.Next 2 = 0 then
                i
    |]

[<Fact>]
let ``sum, max and min reductions over random axes pass the dot-product and finite-difference tests`` () =
    for op in [ ReduceOp.Sum; ReduceOp.Max; ReduceOp.Min ] do
        check $"reduce %A{op}" 40 (fun rng ->
            let shape = randomShape rng 0 4 4
            let axes = randomAxes rng shape.Length

            let x =
                if op = ReduceOp.Sum then
                    randn rng shape
                else
                    distinct rng shape

            case [| x |] (fun xs -> Tensor.Apply(Prim.Reduce(op, axes), xs[0])))

[<Fact>]
let ``max reduction gives its derivative to the largest element and splits ties`` () =
    let g = Ad.grad (fun (x: Tensor) -> x.Max()) (t64 [| 4 |] [ 1.0; 3.0; -2.0; 0.5 ])
    assertEqualValues "argmax gets 1" (t64 [| 4 |] [ 0.0; 1.0; 0.0; 0.0 ]) g
    let g2 = Ad.grad (fun (x: Tensor) -> x.Min()) (t64 [| 4 |] [ 1.0; -3.0; 2.0; -3.0 ])
    assertEqualValues "tied minima share" (t64 [| 4 |] [ 0.0; 0.5; 0.0; 0.5 ]) g2

[<Fact>]
let ``argmax and argmin have zero derivative`` () =
    for argMax in [ true; false ] do
        check (if argMax then "argmax" else "argmin") 25 (fun rng ->
            let shape = randomShape rng 1 3 4
            let axis = rng.Next shape.Length
            let prim = if argMax then Prim.ArgMax axis else Prim.ArgMin axis
            // Int32 indices, converted so that the checks can weigh and difference them.
            constCase [| distinct rng shape |] (fun xs -> Tensor.Apply(prim, xs[0]).Convert Float64))

// ---------------------------------------------------------------------------------------------
// MatMul

[<Fact>]
let ``matmul with every transpose flag and broadcast batch axes passes both tests`` () =
    for transA in [ false; true ] do
        for transB in [ false; true ] do
            check $"matmul transA=%b{transA} transB=%b{transB}" 25 (fun rng ->
                let m, k, n = rng.Next(1, 5), rng.Next(1, 5), rng.Next(1, 5)
                let batch = randomShape rng 0 2 3
                let ba, bb = broadcastableTo rng batch, broadcastableTo rng batch
                let sa = Array.append ba (if transA then [| k; m |] else [| m; k |])
                let sb = Array.append bb (if transB then [| n; k |] else [| k; n |])
                case [| randn rng sa; randn rng sb |] (fun xs -> Tensor.Apply(Prim.MatMul(transA, transB), xs[0], xs[1])))

[<Fact>]
let ``matmul gradients match the closed forms dA = G B^T and dB = A^T G`` () =
    let rng = Random 7
    let a, b, g = randn rng [| 3; 4 |], randn rng [| 4; 2 |], randn rng [| 3; 2 |]
    let _, pullback = Ad.vjp (fun (a: Tensor, b: Tensor) -> Tensor.matmul a b) (a, b)
    let da, db = pullback g
    assertClose "dA" 1e-13 1e-14 (Tensor.matmul g (Tensor.transpose b)) da
    assertClose "dB" 1e-13 1e-14 (Tensor.matmul (Tensor.transpose a) g) db

// ---------------------------------------------------------------------------------------------
// Layout primitives

[<Fact>]
let ``reshape, broadcastTo and permute pass both tests`` () =
    check "reshape" 25 (fun rng ->
        let shape = randomShape rng 0 3 4
        case [| randn rng shape |] (fun xs -> Tensor.Apply(Prim.Reshape(Array.rev shape |> Array.append [| 1 |]), xs[0])))

    check "broadcastTo" 25 (fun rng ->
        let target = randomShape rng 0 3 4
        let shape = broadcastableTo rng target
        case [| randn rng shape |] (fun xs -> Tensor.Apply(Prim.BroadcastTo target, xs[0])))

    check "permute" 25 (fun rng ->
        let shape = randomShape rng 0 4 4
        let perm = Array.init shape.Length id |> Array.sortBy (fun _ -> rng.Next())
        case [| randn rng shape |] (fun xs -> Tensor.Apply(Prim.Permute perm, xs[0])))

[<Fact>]
let ``slice and pad pass both tests`` () =
    check "slice" 25 (fun rng ->
        let shape = randomShape rng 1 3 5
        let starts = shape |> Array.map (fun d -> rng.Next d)
        let sizes = Array.init shape.Length (fun i -> rng.Next(0, shape[i] - starts[i] + 1))
        case [| randn rng shape |] (fun xs -> Tensor.Apply(Prim.Slice(starts, sizes), xs[0])))

    check "pad" 25 (fun rng ->
        let shape = randomShape rng 1 3 4
        let low = shape |> Array.map (fun _ -> rng.Next 3)
        let high = shape |> Array.map (fun _ -> rng.Next 3)
        case [| randn rng shape |] (fun xs -> Tensor.Apply(Prim.Pad(low, high), xs[0])))

[<Fact>]
let ``concat of one to three tensors passes both tests`` () =
    check "concat" 30 (fun rng ->
        let shape = randomShape rng 1 3 4
        let axis = rng.Next shape.Length

        let parts =
            Array.init (rng.Next(1, 4)) (fun _ -> randn rng (shape |> Array.mapi (fun i d -> if i = axis then rng.Next(0, 4) else d)))

        case parts (fun xs -> Tensor.Apply(Prim.Concat axis, xs)))

[<Fact>]
let ``gather and scatterAdd with repeated indices pass both tests`` () =
    check "gather" 30 (fun rng ->
        let shape = randomShape rng 1 3 4
        let axis = rng.Next shape.Length
        let indexShape = randomShape rng 0 2 3
        let indices = Array.init (Shape.count indexShape) (fun _ -> rng.Next shape[axis])
        let idx = Tensor.FromArray(indices, indexShape)
        case [| randn rng shape |] (fun xs -> Tensor.Apply(Prim.Gather(axis, 0), xs[0], idx)))

    check "scatterAdd" 30 (fun rng ->
        let pre, post = randomShape rng 0 1 3, randomShape rng 0 1 3
        let indexShape = randomShape rng 0 2 3
        let size = rng.Next(1, 4)
        let indices = Array.init (Shape.count indexShape) (fun _ -> rng.Next size)
        let shape = Array.concat [ pre; indexShape; post ]
        let idx = Tensor.FromArray(indices, indexShape)
        case [| randn rng shape |] (fun xs -> Tensor.Apply(Prim.ScatterAdd(pre.Length, 0, size), xs[0], idx)))

[<Fact>]
let ``convert between Float32 and Float64 passes the dot-product test exactly and finite differences`` () =
    // Values are multiples of 1/64, exact in both dtypes, so the transposed conversion is exact too.
    for source, target in [ Float64, Float32; Float32, Float64 ] do
        forAllSeeds 20 (fun seed ->
            let rng = Random seed
            let shape = randomShape rng 0 3 4
            let x = dyadic rng source shape

            let f (xs: Tensor[]) =
                Tensor.Apply(Prim.Convert target, xs[0]) * 0.5

            let y, pullback = Ad.vjp f [| x |]
            Assert.Equal(target, y.DType)
            let u, v = dyadic rng target shape, dyadic rng source shape
            let ct = (pullback u)[0]
            Assert.Equal(source, ct.DType)
            let _, jv = Ad.jvp f [| x |] [| v |]
            Assert.Equal(target, jv.DType)
            Assert.Equal(dot ct v, dot u jv)
            // The direction is not dyadic: x ± h v rounds to Float32 (relative error 2^-24).
            finiteDifferenceTestWith 0.25 1e-6 $"convert %A{source}->%A{target}" rng (fun xs -> f xs |> Tensor.convert Float64) [| x |])

// ---------------------------------------------------------------------------------------------
// Random chains of primitives

[<Fact>]
let ``random chains of primitives pass the dot-product test and grad matches jvp`` () =
    // A random composition of smooth elementwise and layout ops on a [3; 4] input, reduced to a
    // scalar: <grad, v> must equal the directional derivative.
    let ops: (Tensor -> Tensor)[] =
        [|
            Tensor.sin
            Tensor.tanh
            (fun x -> x * x)
            (fun x -> Tensor.exp (x * 0.3))
            (fun x -> Tensor.sigmoid x)
            (fun x -> x.Transpose().Reshape([| 3; 4 |]))
            (fun x -> x + x.Sum(1, true))
            (fun x -> x * x.Mean(0, true))
            (fun x ->
                Tensor.matmul x (Tensor.transpose x)
                |> Tensor.narrow 1 0 1
                |> Tensor.broadcastTo [| 3; 4 |])
            (fun x -> Tensor.concat 1 [ x.Narrow(1, 2, 2); x.Narrow(1, 0, 2) ])
            (fun x -> x.Softmax(1))
        |]

    forAllSeeds 40 (fun seed ->
        let rng = Random seed
        let chain = Array.init (rng.Next(1, 6)) (fun _ -> ops[rng.Next ops.Length])

        let f (xs: Tensor[]) =
            (chain |> Array.fold (fun x op -> op x) xs[0]).Sum()

        let x = randn rng [| 3; 4 |]
        dotProductTest $"chain (seed %d{seed})" rng f [| x |] 1e-10 |> ignore
        let v = randn rng [| 3; 4 |]
        let g = Ad.grad (fun x -> f [| x |]) x
        let _, jv = Ad.jvp (fun x -> f [| x |]) x v
        assertNear $"chain (seed %d{seed}): <grad, v> = jvp" 1e-10 (jv.ToScalar()) (dot g v)
        // Chains of squares reach large values with large third derivatives: a smaller step and a
        // looser tolerance for the difference quotient's truncation error (the dot-product test above
        // is the exact check).
        finiteDifferenceTestWith 1e-6 1e-5 $"chain (seed %d{seed})" rng f [| x |])
