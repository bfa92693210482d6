/// Every Tensor primitive and composition against the naive Float64 references in TestUtil, over
/// random shapes (rank 0-4, dims 0-5) and both dtypes, plus the edge cases each one has.
module SnnFunc.Tests.TensorPropertyTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open SnnFunc
open SnnFunc.Tests.TestUtil

let private both = [ Float32; Float64 ]

/// A random tensor case: dtype and reference values.
let private genCase (shapeGen: Gen<int[]>) (value: Gen<float>) =
    gen {
        let! dtype = genDType
        let! shape = shapeGen
        let! r = genRefWith value shape
        return dtype, r
    }

// ---------------------------------------------------------------------------------------------
// Elementwise unary

let private sigmoid (x: float) = 1.0 / (1.0 + Math.Exp(-x))

let private sign (x: float) =
    if Double.IsNaN x then nan
    elif x > 0.0 then 1.0
    elif x < 0.0 then -1.0
    else 0.0

let private unaryOps: (string * (Tensor -> Tensor) * (float -> float)) list =
    [
        "neg", Tensor.neg, (fun x -> -x)
        "exp", Tensor.exp, Math.Exp
        "log", Tensor.log, Math.Log
        "sin", Tensor.sin, Math.Sin
        "cos", Tensor.cos, Math.Cos
        "tanh", Tensor.tanh, Math.Tanh
        "sigmoid", Tensor.sigmoid, sigmoid
        "relu", Tensor.relu, (fun x -> if Double.IsNaN x then x else max x 0.0)
        "abs", Tensor.abs, Math.Abs
        "sqrt", Tensor.sqrt, Math.Sqrt
        "sign", Tensor.sign, sign
        "floor", Tensor.floor, Math.Floor
        "ceil", Tensor.ceil, Math.Ceiling
        "round", Tensor.round, (fun x -> Math.Round(x, MidpointRounding.ToEven))
        "log1p", Tensor.log1p, refLog1p
        "expm1", Tensor.expm1, refExpm1
        "square", Tensor.square, (fun x -> x * x)
    ]

[<Fact>]
let ``unary ops match System.Math on random tensors`` () =
    for name, f, reference in unaryOps do
        check 40 (genCase genShape genValue) (fun (dtype, r) ->
            let expected = refMap reference r |> roundTo dtype
            assertClose name (tolFor dtype) dtype expected (f (tensorOf dtype r)))

[<Fact>]
let ``unary ops on special values (NaN, infinities, signed zeros, rounding ties)`` () =
    let specials =
        [|
            nan
            infinity
            -infinity
            0.0
            -0.0
            0.5
            1.5
            2.5
            -0.5
            -2.5
            1e-3
            -1.0
            100.0
            -100.0
        |]

    let r =
        {
            Shape = [| specials.Length |]
            Data = specials
        }

    for dtype in both do
        for name, f, reference in unaryOps do
            // Overflowing exp(100) is inf in float32 but finite in float64: round the reference.
            let expected = refMap reference r |> roundTo dtype
            assertClose $"%s{name} on specials" (tolFor dtype) dtype expected (f (tensorOf dtype r))

[<Fact>]
let ``log1p and expm1 are accurate for tiny arguments`` () =
    // Computed as log(1 + x) these lose every digit: 1 + 1e-10 rounds, and in float32 1 + 1e-8 = 1.
    let tiny = [| 1e-10; -1e-10; 1e-8; 3e-6; -2e-5; 1e-20; 5e-4; -5e-4 |]

    let r =
        {
            Shape = [| tiny.Length |]
            Data = tiny
        }

    for dtype in both do
        let r = roundTo dtype r

        let tol =
            if dtype = Float32 then
                { Rel = 1e-6; Abs = 0.0 }
            else
                { Rel = 1e-14; Abs = 0.0 }

        assertClose "log1p tiny" tol dtype (refMap refLog1p r |> roundTo dtype) (Tensor.log1p (tensorOf dtype r))
        assertClose "expm1 tiny" tol dtype (refMap refExpm1 r |> roundTo dtype) (Tensor.expm1 (tensorOf dtype r))

[<Fact>]
let ``log1p and expm1 at the edges of their domains`` () =
    let r =
        {
            Shape = [| 7 |]
            Data = [| -1.0; -2.0; infinity; -infinity; nan; 50.0; -50.0 |]
        }

    for dtype in both do
        let l = (Tensor.log1p (tensorOf dtype r)).ToDoubleArray()
        Assert.Equal(-infinity, l[0])
        Assert.True(Double.IsNaN l[1], "log1p(-2) should be NaN")
        Assert.Equal(infinity, l[2])
        Assert.True(Double.IsNaN l[3], "log1p(-inf) should be NaN")
        Assert.True(Double.IsNaN l[4])
        Assert.Equal(Math.Log 51.0, l[5], 5)
        let e = (Tensor.expm1 (tensorOf dtype r)).ToDoubleArray()
        Assert.Equal(Math.Exp(-1.0) - 1.0, e[0], 5)
        Assert.Equal(infinity, e[2])
        Assert.Equal(-1.0, e[3])
        Assert.True(Double.IsNaN e[4])
        Assert.Equal(-1.0, e[6], 6)

    // Near the top of the range: exp(x) - 1 is finite, no intermediate overflow.
    for dtype, x in [ Float32, 88.0; Float64, 709.0 ] do
        let e =
            (Tensor.expm1 (tensorOf dtype { Shape = [| 1 |]; Data = [| x |] })).ToDoubleArray()[0]

        let expected =
            if dtype = Float32 then
                float (MathF.Exp(float32 x))
            else
                Math.Exp x

        Assert.True(abs (e - expected) <= 1e-5 * expected, $"expm1(%g{x}) in %s{dtype.Name} = %g{e}, expected %g{expected}")

// ---------------------------------------------------------------------------------------------
// Elementwise binary and broadcasting

let private binaryOps: (string * (Tensor -> Tensor -> Tensor) * (float -> float -> float)) list =
    [
        "add", Tensor.add, (+)
        "sub", Tensor.sub, (-)
        "mul", Tensor.mul, (*)
        "div", Tensor.div, (/)
        "maximum", Tensor.maximum, nanMax
        "minimum", Tensor.minimum, nanMin
    ]

let private genBinaryCase (value: Gen<float>) =
    gen {
        let! dtype = genDType
        let! sa, sb = genBroadcastPair
        let! a = genRefWith value sa
        let! b = genRefWith value sb
        return dtype, a, b
    }

let private checkBinary name f reference tol dtype a b =
    let expected = refMap2 reference a b |> roundTo dtype
    let what = $"%s{name} %s{fmtShape a.Shape} %s{fmtShape b.Shape}"
    assertClose what tol dtype expected (f (tensorOf dtype a) (tensorOf dtype b))

[<Fact>]
let ``binary ops match the reference on random broadcast pairs`` () =
    for name, f, reference in binaryOps do
        check 60 (genBinaryCase genValue) (fun (dtype, a, b) -> checkBinary name f reference (tolFor dtype) dtype a b)

[<Fact>]
let ``binary ops propagate NaN and infinities through every broadcast path`` () =
    for name, f, reference in binaryOps do
        check 30 (genBinaryCase genSpecialValue) (fun (dtype, a, b) -> checkBinary name f reference (tolFor dtype) dtype a b)

[<Fact>]
let ``pow matches Math.Pow`` () =
    let genPow =
        gen {
            let! dtype = genDType
            let! sa, sb = genBroadcastPair
            let! a = genRefWith (Gen.choose (-1024, 1024) |> Gen.map (fun k -> float k / 128.0)) sa
            let! b = genRefWith (Gen.choose (-12, 12) |> Gen.map (fun k -> float k / 4.0)) sb
            return dtype, a, b
        }

    check 80 genPow (fun (dtype, a, b) ->
        let tol =
            if dtype = Float32 then
                { Rel = 1e-4; Abs = 1e-6 }
            else
                tolFor dtype

        checkBinary "pow" Tensor.pow (fun x y -> Math.Pow(x, y)) tol dtype a b)

let private compareOps: (string * (Tensor -> Tensor -> Tensor) * (float -> float -> bool)) list =
    [
        "eq", Tensor.eq, (=)
        "ne", Tensor.ne, (fun x y -> not (x = y))
        "lt", Tensor.lt, (<)
        "le", Tensor.le, (<=)
        "gt", Tensor.gt, (>)
        "ge", Tensor.ge, (>=)
    ]

[<Fact>]
let ``comparisons give 0-1 masks of the operands' dtype, NaN compares unequal`` () =
    for name, f, reference in compareOps do
        check 60 (genBinaryCase genSpecialValue) (fun (dtype, a, b) ->
            checkBinary name f (fun x y -> if reference x y then 1.0 else 0.0) exact dtype a b)

[<Fact>]
let ``comparisons on long runs use the SIMD path with a scalar tail, both operand orders`` () =
    // 37 elements: several 512/256-bit vectors plus a remainder; NaN lands in both.
    let values =
        Array.init 37 (fun i -> if i % 11 = 3 then nan else float (i % 5) - 2.0)

    let a = { Shape = [| 37 |]; Data = values }
    let s = { Shape = [||]; Data = [| 0.0 |] }

    let b =
        {
            Shape = [| 37 |]
            Data = Array.rev values
        }

    for dtype in both do
        for name, f, reference in compareOps do
            let mask x y = if reference x y then 1.0 else 0.0
            checkBinary name f mask exact dtype a s
            checkBinary name f mask exact dtype s a
            checkBinary name f mask exact dtype a b

[<Fact>]
let ``scalar float operands take the tensor's dtype`` () =
    for dtype in both do
        let t =
            tensorOf
                dtype
                {
                    Shape = [| 2 |]
                    Data = [| 1.0; 4.0 |]
                }

        let results =
            [
                t + 1.0
                1.0 + t
                t - 1.0
                10.0 - t
                t * 2.0
                2.0 * t
                t / 2.0
                8.0 / t
                t ** 2.0
                -t
            ]

        let expected =
            [
                [| 2.0; 5.0 |]
                [| 2.0; 5.0 |]
                [| 0.0; 3.0 |]
                [| 9.0; 6.0 |]
                [| 2.0; 8.0 |]
                [| 2.0; 8.0 |]
                [| 0.5; 2.0 |]
                [| 8.0; 2.0 |]
                [| 1.0; 16.0 |]
                [| -1.0; -4.0 |]
            ]

        for r, e in List.zip results expected do
            assertClose "scalar operand" (tolFor dtype) dtype { Shape = [| 2 |]; Data = e } r

        assertExact
            "gt scalar"
            dtype
            {
                Shape = [| 2 |]
                Data = [| 0.0; 1.0 |]
            }
            (t.Gt 2.0)

/// The explicit broadcasting cases: each is checked for every binary op, both orders, both dtypes.
let private broadcastCases =
    [
        [||], [| 3 |] // scalar
        [| 3; 1 |], [| 1; 4 |] // outer product: general
        [| 2; 1; 3 |], [| 4; 1 |] // general, rank difference
        [| 0; 3 |], [| 3 |] // empty result
        [| 0 |], [| 1 |] // empty with one
        [| 2; 3 |], [| 2; 3 |] // identical
        [| 4; 3 |], [| 3 |] // row: repeated block
        [| 4; 3 |], [| 4; 1 |] // column: stretched element
        [| 2; 3; 4 |], [| 3; 1 |] // neither: middle axis
        [| 2; 1; 4 |], [| 2; 3; 1 |] // both broadcast
        [| 1; 1 |], [||] // one element both
        [| 5; 1; 1 |], [| 5; 2; 3 |]
    ] // stretch over two axes

[<Fact>]
let ``broadcasting edge cases for every binary op`` () =
    for dtype in both do
        for sa, sb in broadcastCases do
            let a = refInit sa (fun idx -> float (Array.sum idx + 1) * 0.25)

            let b =
                refInit sb (fun idx -> float (Array.fold (fun acc i -> acc * 3 + i) 1 idx) * 0.5 - 1.0)

            for name, f, reference in binaryOps do
                checkBinary name f reference (tolFor dtype) dtype a b
                checkBinary name f reference (tolFor dtype) dtype b a

[<Fact>]
let ``broadcast results have the right shape`` () =
    let shapeOf a b = (Tensor.zeros a + Tensor.zeros b).Shape
    Assert.Equal<int[]>([| 3 |], shapeOf [||] [| 3 |])
    Assert.Equal<int[]>([| 3; 4 |], shapeOf [| 3; 1 |] [| 1; 4 |])
    Assert.Equal<int[]>([| 2; 4; 3 |], shapeOf [| 2; 1; 3 |] [| 4; 1 |])
    Assert.Equal<int[]>([| 0; 3 |], shapeOf [| 0; 3 |] [| 3 |])
    Assert.Equal<int[]>([| 0 |], shapeOf [| 0 |] [| 1 |])

// ---------------------------------------------------------------------------------------------
// where

[<Fact>]
let ``where selects with three-way broadcasting`` () =
    let genWhere =
        gen {
            let! dtype = genDType
            let! s = genShape
            let! sc = genBroadcastPartner s
            let! sa = genBroadcastPartner s
            let! sb = genBroadcastPartner s
            let! order = Gen.elements [ 0; 1; 2 ]
            // Put the full shape in a random position so every argument gets to be the largest.
            let sc, sa, sb =
                match order with
                | 0 -> s, sa, sb
                | 1 -> sc, s, sb
                | _ -> sc, sa, s

            let! c = genRefWith genSpecialValue sc
            let! a = genRef sa
            let! b = genRef sb
            return dtype, c, a, b
        }

    check 100 genWhere (fun (dtype, c, a, b) ->
        let expected = refWhere c a b
        assertExact "where" dtype expected (Tensor.where (tensorOf dtype c) (tensorOf dtype a) (tensorOf dtype b)))

[<Fact>]
let ``where treats NaN as true and negative zero as false`` () =
    for dtype in both do
        let n = 40 // long enough for the SIMD path and a tail

        let c =
            {
                Shape = [| n |]
                Data =
                    Array.init n (fun i ->
                        match i % 4 with
                        | 0 -> nan
                        | 1 -> -0.0
                        | 2 -> 0.0
                        | _ -> -3.0)
            }

        let a =
            {
                Shape = [| n |]
                Data = Array.init n float
            }

        let b =
            {
                Shape = [| n |]
                Data = Array.init n (fun i -> -float i - 1.0)
            }

        assertExact "where specials" dtype (refWhere c a b) (Tensor.where (tensorOf dtype c) (tensorOf dtype a) (tensorOf dtype b))

// ---------------------------------------------------------------------------------------------
// Reductions

let private genReduceCase =
    gen {
        let! dtype = genDType
        let! shape = genShapeWith genDim 1
        let! axes = genAxes shape.Length
        let! negate = Gen.arrayOfLength axes.Length (Gen.elements [ true; false ])
        let given = Array.map2 (fun a n -> if n then a - shape.Length else a) axes negate
        let! keep = Gen.elements [ true; false ]
        let! special = Gen.frequency [ 4, Gen.constant false; 1, Gen.constant true ]
        let! r = genRefWith (if special then genSpecialValue else genValue) shape
        return dtype, r, given, keep
    }

[<Fact>]
let ``sum over random axis subsets, keepDims or not`` () =
    check 100 genReduceCase (fun (dtype, r, axes, keep) ->
        let expected = refReduce RSum axes keep r |> roundTo dtype
        assertClose $"sum %A{axes} keep=%b{keep}" (tolFor dtype) dtype expected ((tensorOf dtype r).SumAxes(axes, keep)))

[<Fact>]
let ``max and min over random non-empty axis subsets propagate NaN`` () =
    let nonEmpty =
        genReduceCase
        |> Gen.filter (fun (_, r, axes, _) ->
            axes
            |> Array.forall (fun a -> r.Shape[(a + r.Shape.Length) % r.Shape.Length] > 0))

    check 100 nonEmpty (fun (dtype, r, axes, keep) ->
        assertExact $"max %A{axes}" dtype (refReduce RMax axes keep r) ((tensorOf dtype r).MaxAxes(axes, keep))
        assertExact $"min %A{axes}" dtype (refReduce RMin axes keep r) ((tensorOf dtype r).MinAxes(axes, keep)))

[<Fact>]
let ``full reductions and the empty-axis sum`` () =
    for dtype in both do
        let r = refInit [| 2; 3 |] (fun idx -> float (idx[0] * 3 + idx[1]) - 2.0)
        let t = tensorOf dtype r
        // Values -2 .. 3.
        Assert.Equal(3.0, t.Sum().ToScalar())
        Assert.Equal(3.0, t.Max().ToScalar())
        Assert.Equal(-2.0, t.Min().ToScalar())
        Assert.Equal(0.5, t.Mean().ToScalar())
        Assert.Empty(t.Sum().Shape)
        // Sum over an empty axis is 0 (NumPy); a rank-0 tensor reduces to itself.
        assertExact
            "sum empty"
            dtype
            {
                Shape = [| 3 |]
                Data = [| 0.0; 0.0; 0.0 |]
            }
            ((Tensor.zeros [| 0; 3 |] |> Tensor.convert dtype).Sum 0)

        Assert.Equal(0.0, (Tensor.zeros [| 0 |] |> Tensor.convert dtype).Sum().ToScalar())
        Assert.Equal(7.0, (Tensor.Scalar(7.0, dtype)).Sum().ToScalar())
        Assert.Equal(7.0, (Tensor.Scalar(7.0, dtype)).Max().ToScalar())

[<Fact>]
let ``long reductions along the last and a middle axis`` () =
    // Enough elements for the vectorised kernels; values k/8 keep the sums exact.
    for dtype in both do
        let r =
            refInit [| 3; 70; 5 |] (fun idx -> float ((idx[0] * 31 + idx[1] * 7 + idx[2] * 3) % 17 - 8) / 8.0)

        for axis in [ 0; 1; 2 ] do
            let t = tensorOf dtype r
            assertExact $"sum axis %d{axis}" dtype (refReduce RSum [| axis |] false r) (t.Sum axis)
            assertExact $"max axis %d{axis}" dtype (refReduce RMax [| axis |] false r) (t.Max axis)
            assertExact $"min axis %d{axis}" dtype (refReduce RMin [| axis |] false r) (t.Min axis)

[<Fact>]
let ``mean over random axes`` () =
    check 100 genReduceCase (fun (dtype, r, axes, keep) ->
        let n =
            axes
            |> Array.fold (fun acc a -> acc * r.Shape[(a + r.Shape.Length) % r.Shape.Length]) 1

        let expected =
            refReduce RSum axes keep r |> refMap (fun s -> s / float n) |> roundTo dtype

        assertClose $"mean %A{axes}" (tolFor dtype) dtype expected ((tensorOf dtype r).MeanAxes(axes, keep)))

[<Fact>]
let ``argmax and argmin take the first extremum, or the first NaN`` () =
    let genArg =
        gen {
            let! dtype = genDType
            let! shape = genShapeWith genDimNonEmpty 1
            let! axis = Gen.choose (-shape.Length, shape.Length - 1)
            let! r = genRefWith genSpecialValue shape
            return dtype, r, axis
        }

    check 100 genArg (fun (dtype, r, axis) ->
        let t = tensorOf dtype r
        assertExact $"argmax %d{axis}" Int32 (refArgExtremum false axis r) (t.ArgMax axis)
        assertExact $"argmin %d{axis}" Int32 (refArgExtremum true axis r) (t.ArgMin axis))

[<Fact>]
let ``argmax examples: ties, NaN, infinities`` () =
    for dtype in both do
        let row data =
            tensorOf
                dtype
                {
                    Shape = [| Array.length data |]
                    Data = data
                }

        Assert.Equal(1.0, (row [| 1.0; 3.0; 3.0; 2.0 |]).ArgMax(0).ToScalar())
        Assert.Equal(0.0, (row [| 1.0; 3.0; 3.0; 1.0 |]).ArgMin(0).ToScalar())
        Assert.Equal(2.0, (row [| 1.0; 3.0; nan; nan; 5.0 |]).ArgMax(0).ToScalar())
        Assert.Equal(2.0, (row [| 1.0; 3.0; nan; nan; -5.0 |]).ArgMin(0).ToScalar())
        Assert.Equal(3.0, (row [| -infinity; -infinity; 0.0; infinity |]).ArgMax(0).ToScalar())
        Assert.Equal(0.0, (row [| -infinity; -infinity |]).ArgMax(0).ToScalar())

// ---------------------------------------------------------------------------------------------
// Layout

[<Fact>]
let ``reshape keeps the row-major order, with -1 inferred`` () =
    let genReshape =
        gen {
            let! dtype = genDType
            let! shape = genShape
            let! r = genRef shape
            // A target of the same count: the dims shuffled, neighbours merged, ones inserted.
            let! perm = genPermutation shape.Length
            let! merges = Gen.arrayOfLength shape.Length (Gen.elements [ true; false ])
            let! ones = Gen.arrayOfLength (shape.Length + 1) (Gen.frequency [ 1, Gen.constant true; 4, Gen.constant false ])
            let target = ResizeArray<int>()

            if ones[shape.Length] then
                target.Add 1

            for i in 0 .. shape.Length - 1 do
                let d = shape[perm[i]]

                if merges[i] && target.Count > 0 then
                    target[target.Count - 1] <- target[target.Count - 1] * d
                else
                    target.Add d

                if ones[i] then
                    target.Add 1

            let target = target.ToArray()
            let! useMinusOne = Gen.elements [ true; false ]
            let! which = Gen.choose (0, max 0 (target.Length - 1))

            let given =
                if useMinusOne && target.Length > 0 && countOf target > 0 then
                    target |> Array.mapi (fun i d -> if i = which then -1 else d)
                else
                    target

            return dtype, r, target, given
        }

    check 100 genReshape (fun (dtype, r, target, given) ->
        assertExact $"reshape %A{given}" dtype { Shape = target; Data = r.Data } ((tensorOf dtype r).Reshape given))

[<Fact>]
let ``reshape examples`` () =
    let t = Tensor.arange 6
    Assert.Equal<int[]>([| 2; 3 |], (t.Reshape(-1, 3)).Shape)
    Assert.Equal<int[]>([| 3; 2 |], (t.Reshape(3, -1)).Shape)
    Assert.Equal<int[]>([| 1; 6; 1 |], (t.Reshape(1, -1, 1)).Shape)
    Assert.Equal<int[]>([||], (Tensor.ones [| 1; 1 |]).Reshape([||]).Shape)
    Assert.Equal<int[]>([| 0; 5 |], (Tensor.zeros [| 5; 0 |]).Reshape(0, 5).Shape)
    Assert.Equal<float32[]>([| 0.0f; 1.0f; 2.0f; 3.0f; 4.0f; 5.0f |], (t.Reshape(3, 2).Flatten()).ToArray())

[<Fact>]
let ``squeeze and unsqueeze`` () =
    let t = Tensor.zeros [| 2; 1; 3 |]
    Assert.Equal<int[]>([| 2; 3 |], (t.Squeeze 1).Shape)
    Assert.Equal<int[]>([| 2; 3 |], (t.Squeeze -2).Shape)
    Assert.Equal<int[]>([| 2; 1; 3; 1 |], (t.Unsqueeze -1).Shape)
    Assert.Equal<int[]>([| 1; 2; 1; 3 |], (t.Unsqueeze 0).Shape)
    Assert.Equal<int[]>([| 1 |], (Tensor.scalar 2.0).Unsqueeze(0).Shape)
    assertThrowsArg [ "Tensor.squeeze"; "[2; 1; 3]"; "extent 2" ] (fun () -> t.Squeeze 0)

[<Fact>]
let ``broadcastTo materialises NumPy broadcasting`` () =
    let genB =
        gen {
            let! dtype = genDType
            let! target = genShape
            let! source = genBroadcastPartner target
            let! r = genRef source
            return dtype, r, target
        }

    check 100 genB (fun (dtype, r, target) ->
        assertExact $"broadcastTo %s{fmtShape target}" dtype (refBroadcastTo target r) ((tensorOf dtype r).BroadcastTo target))

[<Fact>]
let ``permute by random permutations, and transpose`` () =
    let genP =
        gen {
            let! dtype = genDType
            let! shape = genShape
            let! perm = genPermutation shape.Length
            let! negate = Gen.arrayOfLength perm.Length (Gen.elements [ true; false ])
            let given = Array.map2 (fun p n -> if n then p - perm.Length else p) perm negate
            let! r = genRef shape
            return dtype, r, given
        }

    check 100 genP (fun (dtype, r, perm) ->
        let t = tensorOf dtype r
        assertExact $"permute %A{perm}" dtype (refPermute perm r) (t.Permute perm)

        if r.Shape.Length >= 2 then
            let n = r.Shape.Length

            let swap =
                Array.init n (fun i ->
                    if i = n - 2 then n - 1
                    elif i = n - 1 then n - 2
                    else i)

            assertExact "transpose" dtype (refPermute swap r) (t.Transpose()))

[<Fact>]
let ``slice and narrow pick the right box`` () =
    let genS =
        gen {
            let! dtype = genDType
            let! shape = genShape
            let! starts = shape |> Array.map (fun d -> Gen.choose (0, d)) |> Gen.sequenceToArray

            let! sizes =
                Array.map2 (fun d s -> Gen.choose (0, d - s)) shape starts
                |> Gen.sequenceToArray

            let! r = genRef shape
            return dtype, r, starts, sizes
        }

    check 100 genS (fun (dtype, r, starts, sizes) ->
        let t = tensorOf dtype r
        assertExact $"slice %A{starts} %A{sizes}" dtype (refSlice starts sizes r) (t.Slice(starts, sizes))

        for axis in 0 .. r.Shape.Length - 1 do
            let st = Array.init r.Shape.Length (fun i -> if i = axis then starts[i] else 0)

            let sz =
                Array.init r.Shape.Length (fun i -> if i = axis then sizes[i] else r.Shape[i])

            assertExact $"narrow %d{axis}" dtype (refSlice st sz r) (t.Narrow(axis - r.Shape.Length, starts[axis], sizes[axis])))

[<Fact>]
let ``pad surrounds with zeros`` () =
    let genPad =
        gen {
            let! dtype = genDType
            let! shape = genShape
            let! low = Gen.arrayOfLength shape.Length (Gen.choose (0, 2))
            let! high = Gen.arrayOfLength shape.Length (Gen.choose (0, 2))
            let! r = genRef shape
            return dtype, r, low, high
        }

    check 100 genPad (fun (dtype, r, low, high) ->
        assertExact $"pad %A{low} %A{high}" dtype (refPad low high r) ((tensorOf dtype r).Pad(low, high)))

[<Fact>]
let ``concat and stack along random axes`` () =
    let genC =
        gen {
            let! dtype = genDType
            let! shape = genShapeWith genDim 1
            let! axis = Gen.choose (0, shape.Length - 1)
            let! k = Gen.choose (1, 4)
            let! extents = Gen.arrayOfLength k genDim

            let! parts =
                extents
                |> Array.map (fun e -> genRef (Array.mapi (fun i d -> if i = axis then e else d) shape))
                |> Gen.sequenceToArray

            let! negative = Gen.elements [ true; false ]
            return dtype, parts, axis, negative
        }

    check 100 genC (fun (dtype, parts, axis, negative) ->
        let rank = parts[0].Shape.Length
        let given = if negative then axis - rank else axis
        let ts = parts |> Array.map (tensorOf dtype)
        assertExact $"concat %d{given}" dtype (refConcat axis parts) (Tensor.Concat(ts, given))

        // stack: equal shapes, new axis anywhere in [0, rank].
        let same =
            parts
            |> Array.map (fun p ->
                { p with
                    Shape = parts[0].Shape
                    Data = Array.init (countOf parts[0].Shape) (fun i -> float (i + p.Data.Length))
                })

        let newAxis = axis + (if negative then 1 else 0)

        let expanded =
            same
            |> Array.map (fun p ->
                { p with
                    Shape = Array.concat [ p.Shape[.. newAxis - 1]; [| 1 |]; p.Shape[newAxis..] ]
                })

        assertExact $"stack %d{newAxis}" dtype (refConcat newAxis expanded) (Tensor.Stack(same |> Array.map (tensorOf dtype), newAxis)))

[<Fact>]
let ``stack of scalars and negative stack axis`` () =
    let s = Tensor.stack 0 [ Tensor.scalar 1.0; Tensor.scalar 2.0; Tensor.scalar 3.0 ]
    Assert.Equal<float32[]>([| 1.0f; 2.0f; 3.0f |], s.ToArray())
    let a, b = Tensor.arange 3, Tensor.arange 3 + 10.0
    let st = Tensor.Stack([| a; b |], -1)
    Assert.Equal<int[]>([| 3; 2 |], st.Shape)
    Assert.Equal<float32[]>([| 0.0f; 10.0f; 1.0f; 11.0f; 2.0f; 12.0f |], st.ToArray())

// ---------------------------------------------------------------------------------------------
// gather / scatterAdd

let private genGather =
    gen {
        let! dtype = genDType
        let! shape = genShapeWith genDimNonEmpty 1
        let! axis = Gen.choose (0, shape.Length - 1)
        let! indexShape = genShapeWith genDim 0 |> Gen.map (fun s -> s[.. min 1 (s.Length - 1)])
        let! indices = Gen.arrayOfLength (countOf indexShape) (Gen.choose (0, shape[axis] - 1))
        let! r = genRef shape
        return dtype, r, axis, indices, indexShape
    }

[<Fact>]
let ``gather is numpy.take, with repeated indices and index shapes of rank 0-2`` () =
    check 100 genGather (fun (dtype, r, axis, indices, indexShape) ->
        let t = tensorOf dtype r

        assertExact
            $"gather %d{axis} %A{indices} %A{indexShape}"
            dtype
            (refGather axis indices indexShape r)
            (t.Gather(axis, indices, indexShape))

        if indexShape.Length = 1 then
            assertExact "gather negative axis" dtype (refGather axis indices indexShape r) (t.Gather(axis - r.Shape.Length, indices)))

[<Fact>]
let ``scatterAdd accumulates repeated indices and is the adjoint of gather`` () =
    check 100 genGather (fun (dtype, r, axis, indices, indexShape) ->
        let x = tensorOf dtype r
        let g = x.Gather(axis, indices, indexShape)
        // y has the gather's output shape; values k/256 keep both inner products exact.
        let y = refInit g.Shape (fun idx -> float ((Array.sum idx * 7 + 3) % 13 - 6) / 4.0)
        let s = (tensorOf dtype y).ScatterAdd(axis, indices, r.Shape[axis], indexShape)
        assertExact "scatterAdd" dtype (refScatterAdd axis indices indexShape r.Shape[axis] y) s
        let lhs = Array.fold2 (fun acc a b -> acc + a * b) 0.0 (g.ToDoubleArray()) y.Data
        let rhs = Array.fold2 (fun acc a b -> acc + a * b) 0.0 r.Data (s.ToDoubleArray())

        if abs (lhs - rhs) > 1e-9 * (1.0 + abs lhs) then
            failwithf "<gather(x), y> = %g but <x, scatterAdd(y)> = %g" lhs rhs)

[<Fact>]
let ``scatterAdd example with repeats`` () =
    let u = Tensor.ofArray [| 1.0f; 2.0f; 3.0f; 4.0f |] [| 4 |]
    Assert.Equal<float32[]>([| 0.0f; 4.0f; 0.0f; 6.0f; 0.0f |], (u.ScatterAdd(0, [| 1; 3; 1; 3 |], 5)).ToArray())
    let m = Tensor.ofArray [| 1.0f; 2.0f; 3.0f; 4.0f; 5.0f; 6.0f |] [| 3; 2 |]
    // Along axis 1 of [3; 2]: column 0 -> 2, column 1 -> 0.
    Assert.Equal<float32[]>([| 2.0f; 0.0f; 1.0f; 4.0f; 0.0f; 3.0f; 6.0f; 0.0f; 5.0f |], (m.ScatterAdd(1, [| 2; 0 |], 3)).ToArray())

// ---------------------------------------------------------------------------------------------
// convert

[<Fact>]
let ``convert round-trips and rounds to float32`` () =
    check 100 (genCase genShape genValue) (fun (dtype, r) ->
        let t = tensorOf dtype r
        let other = if dtype = Float32 then Float64 else Float32
        assertExact "convert" other r (t.Convert other)
        assertExact "convert back" dtype r (t.Convert(other).Convert dtype))

    let x = Tensor.FromArray([| 0.1; 1e300; -1e-300; nan |], 4)
    let y = x.Convert Float32
    Assert.Equal(Float32, y.DType)
    Assert.Equal<float32[]>([| 0.1f; infinity |> float32; -0.0f; nanf |], y.ToArray())
    Assert.Same(x, x.Convert Float64)

// ---------------------------------------------------------------------------------------------
// Compositions

let private genSoftmaxCase =
    gen {
        let! dtype = genDType
        let! shape = genShapeWith genDimNonEmpty 1
        let! axis = Gen.choose (-shape.Length, shape.Length - 1)
        let! r = genRef shape
        let! scale = Gen.elements [ 1.0; 1.0; 100.0 ]
        return dtype, refMap (fun v -> v * scale) r, axis
    }

[<Fact>]
let ``logSumExp, logSoftmax and softmax match the Float64 reference`` () =
    check 100 genSoftmaxCase (fun (dtype, r, axis) ->
        let t = tensorOf dtype r
        // float32 holds x (up to 1600) to 6e-5: x - logSumExp(x) carries that absolute error.
        let scale = r.Data |> Array.fold (fun acc v -> max acc (abs v)) 1.0

        let tol =
            if dtype = Float32 then
                {
                    Rel = 1e-5
                    Abs = 2e-5 + 2.5e-7 * scale
                }
            else
                { Rel = 1e-12; Abs = 1e-12 * scale }

        let lse = refLogSumExp axis true r
        assertClose "logSumExp" tol dtype (refLogSumExp axis false r |> roundTo dtype) (t.LogSumExp axis)
        assertClose "logSumExp keepDims" tol dtype (lse |> roundTo dtype) (t.LogSumExp(axis, true))
        let logSoftmax = refMap2 (-) r lse
        assertClose "logSoftmax" tol dtype (logSoftmax |> roundTo dtype) (t.LogSoftmax axis)
        assertClose "softmax" tol dtype (refMap Math.Exp logSoftmax |> roundTo dtype) (t.Softmax axis)
        // Rows of a softmax sum to one.
        let ones = refReduce RSum [| axis |] false r |> refMap (fun _ -> 1.0)
        assertClose "softmax rows" tol dtype ones (t.Softmax(axis).Sum axis))

[<Fact>]
let ``logSumExp and softmax survive large values and rows of -inf`` () =
    for dtype in both do
        let r =
            {
                Shape = [| 4; 3 |]
                Data =
                    [|
                        1000.0
                        1000.0
                        999.0 // naive exp overflows
                        -infinity
                        -infinity
                        -infinity // all -inf: logSumExp = -inf
                        -infinity
                        0.0
                        -infinity // one finite entry
                        -1000.0
                        -1001.0
                        -1000.0
                    |]
            } // naive exp underflows to 0

        let t = tensorOf dtype r

        let tol =
            if dtype = Float32 then
                { Rel = 1e-6; Abs = 1e-6 }
            else
                tolFor dtype
        // float32 resolves 1000 to 6e-5, which becomes the absolute error of x - logSumExp(x).
        let smTol = if dtype = Float32 then 1e-4 else 1e-12
        let l = Math.Log(2.0 + Math.Exp(-1.0))

        let expected =
            {
                Shape = [| 4 |]
                Data = [| 1000.0 + l; -infinity; 0.0; -1000.0 + l |]
            }

        assertClose "logSumExp extremes" tol dtype (expected |> roundTo dtype) (t.LogSumExp 1)

        let sm = (t.Softmax 1).ToDoubleArray()
        let p = 1.0 / (2.0 + Math.Exp(-1.0))

        let expectedSm =
            [|
                p
                p
                p * Math.Exp(-1.0)
                nan
                nan
                nan
                0.0
                1.0
                0.0
                p
                p * Math.Exp(-1.0)
                p
            |]

        for i in [ 0; 1; 2; 6; 7; 8; 9; 10; 11 ] do
            Assert.True(abs (sm[i] - expectedSm[i]) < smTol, $"softmax[%d{i}] = %g{sm[i]}, expected %g{expectedSm[i]}")

        // softmax of an all -inf row is 0/0: NaN, as in NumPy and JAX.
        Assert.True(sm[3..5] |> Array.forall Double.IsNaN, $"softmax of a -inf row: %A{sm[3..5]}")

[<Fact>]
let ``logSumExp with +inf or NaN in a row`` () =
    for dtype in both do
        let r =
            {
                Shape = [| 3; 2 |]
                Data = [| infinity; 1.0; infinity; -infinity; nan; 1.0 |]
            }
        // log(exp(inf) + exp(1)) = inf (scipy and JAX agree); NaN propagates.
        assertExact
            "logSumExp +inf"
            dtype
            {
                Shape = [| 3 |]
                Data = [| infinity; infinity; nan |]
            }
            ((tensorOf dtype r).LogSumExp 1)

[<Fact>]
let ``oneHot rows`` () =
    check
        50
        (gen {
            let! classes = Gen.choose (1, 5)
            let! labels = Gen.arrayOf (Gen.choose (0, classes - 1))
            let! dtype = genDType
            return classes, labels, dtype
        })
        (fun (classes, labels, dtype) ->
            let expected =
                refInit [| labels.Length; classes |] (fun idx -> if labels[idx[0]] = idx[1] then 1.0 else 0.0)

            assertExact "oneHot" dtype expected (Tensor.OneHot(labels, classes, dtype)))

    Assert.Equal<int[]>([| 0; 3 |], (Tensor.oneHot 3 [||]).Shape)
    Assert.Equal(Float32, (Tensor.oneHot 3 [| 1 |]).DType)

[<Fact>]
let ``arange matches NumPy's count and values`` () =
    let cases =
        [
            0.0, 5.0, 1.0
            0.0, 1.0, 0.25
            1.0, 0.0, -0.25
            5.0, 5.0, 1.0
            5.0, 0.0, 1.0
            -3.0, 3.0, 2.5
            0.0, 1.0, 0.3
        ]

    for start, stop, step in cases do
        let n = max 0 (int (Math.Ceiling((stop - start) / step)))

        for dtype in both do
            let expected =
                {
                    Shape = [| n |]
                    Data = Array.init n (fun i -> start + float i * step)
                }
                |> roundTo dtype

            assertClose $"arange %g{start} %g{stop} %g{step}" (tolFor dtype) dtype expected (Tensor.Arange(start, stop, step, dtype))

    assertExact
        "arange 4"
        Float32
        {
            Shape = [| 4 |]
            Data = [| 0.0; 1.0; 2.0; 3.0 |]
        }
        (Tensor.arange 4)

    assertExact "arange 0" Float32 { Shape = [| 0 |]; Data = [||] } (Tensor.arange 0)
    assertExact "arange -2" Float32 { Shape = [| 0 |]; Data = [||] } (Tensor.arange -2)

[<Fact>]
let ``linspace includes both ends exactly`` () =
    for dtype in both do
        assertExact
            "linspace 5"
            dtype
            {
                Shape = [| 5 |]
                Data = [| 0.0; 0.25; 0.5; 0.75; 1.0 |]
            }
            (Tensor.Linspace(0.0, 1.0, 5, dtype))

        assertExact "linspace 1" dtype { Shape = [| 1 |]; Data = [| 2.0 |] } (Tensor.Linspace(2.0, 3.0, 1, dtype))
        assertExact "linspace 0" dtype { Shape = [| 0 |]; Data = [||] } (Tensor.Linspace(2.0, 3.0, 0, dtype))

        assertExact
            "linspace down"
            dtype
            {
                Shape = [| 3 |]
                Data = [| 1.0; 0.0; -1.0 |]
            }
            (Tensor.Linspace(1.0, -1.0, 3, dtype))

    // The last element is `stop` itself, not start + (stop - start) rounded (NumPy sets it).
    for start, stop, n in [ 0.1, 0.7, 7; 0.3, 0.9, 3; -0.7, 0.1, 5; 1.1, 2.3, 13 ] do
        let v = Tensor.Linspace(start, stop, n, Float64).ToDoubleArray()
        Assert.Equal(start, v[0])
        Assert.True((v[n - 1] = stop), $"linspace(%g{start}, %g{stop}, %d{n}) ends at %.17g{v[n - 1]}")

        for i in 0 .. n - 1 do
            Assert.Equal(start + (stop - start) * float i / float (n - 1), v[i], 14)

[<Fact>]
let ``eye is the identity`` () =
    for n in 0..4 do
        for dtype in both do
            assertExact $"eye %d{n}" dtype (refInit [| n; n |] (fun idx -> if idx[0] = idx[1] then 1.0 else 0.0)) (Tensor.Eye(n, dtype))

[<Fact>]
let ``zeros ones full scalar and the like-creators`` () =
    for dtype in both do
        let f = Tensor.Full([| 2; 3 |], 2.5, dtype)
        assertExact "full" dtype (refInit [| 2; 3 |] (fun _ -> 2.5)) f
        assertExact "zerosLike" dtype (refInit [| 2; 3 |] (fun _ -> 0.0)) (Tensor.zerosLike f)
        assertExact "onesLike" dtype (refInit [| 2; 3 |] (fun _ -> 1.0)) (Tensor.onesLike f)
        assertExact "scalar" dtype { Shape = [||]; Data = [| -1.5 |] } (Tensor.Scalar(-1.5, dtype))

    assertExact "zeros" Float32 (refInit [| 0; 2 |] (fun _ -> 0.0)) (Tensor.zeros [| 0; 2 |])
    assertExact "ones" Float32 (refInit [| 3 |] (fun _ -> 1.0)) (Tensor.ones [| 3 |])

    let m =
        Tensor.ofArray2D (array2D [ [ 1.0f; 2.0f ]; [ 3.0f; 4.0f ]; [ 5.0f; 6.0f ] ])

    assertExact
        "ofArray2D"
        Float32
        {
            Shape = [| 3; 2 |]
            Data = [| 1.0; 2.0; 3.0; 4.0; 5.0; 6.0 |]
        }
        m

[<Fact>]
let ``FromArray copies its input and ToArray returns a copy`` () =
    let data = [| 1.0f; 2.0f |]
    let t = Tensor.FromArray(data, 2)
    data[0] <- 99.0f
    let out = t.ToArray()
    out[1] <- 99.0f
    Assert.Equal<float32[]>([| 1.0f; 2.0f |], t.ToArray())
    let shape = t.Shape
    shape[0] <- 5
    Assert.Equal<int[]>([| 2 |], t.Shape)
    Assert.Equal(2.5, (Tensor.ofArray [| 2.5f |] [||]).ToScalar())
    Assert.Equal(2.5, Tensor.item (Tensor.ofArray64 [| 2.5 |] [| 1; 1 |]))

// ---------------------------------------------------------------------------------------------
// matmul

let private genMatMul =
    gen {
        let! dtype = genDType
        let! m = Gen.choose (0, 3)
        let! k = Gen.choose (0, 3)
        let! n = Gen.choose (0, 3)

        let! batch =
            genShapeWith (Gen.choose (1, 3)) 0
            |> Gen.map (fun s -> s[.. min 1 (s.Length - 1)])

        let! batchB = genBroadcastPartner batch
        let! swap = Gen.elements [ true; false ]
        let batchA, batchB = if swap then batchB, batch else batch, batchB
        // 0: matrix-matrix, 1: vector on the left, 2: vector on the right, 3: both vectors.
        let! kind = Gen.elements [ 0; 0; 1; 2; 3 ]

        let sa =
            if kind = 1 || kind = 3 then
                [| k |]
            else
                Array.append batchA [| m; k |]

        let sb =
            if kind = 2 || kind = 3 then
                [| k |]
            else
                Array.append batchB [| k; n |]

        let! a = genRef sa
        let! b = genRef sb
        return dtype, a, b
    }

[<Fact>]
let ``matmul follows numpy.matmul: rank-1 operands and broadcast batch axes`` () =
    check 100 genMatMul (fun (dtype, a, b) ->
        let expected = refMatMul a b |> roundTo dtype

        assertClose
            $"matmul %s{fmtShape a.Shape} %s{fmtShape b.Shape}"
            (tolFor dtype)
            dtype
            expected
            (Tensor.matmul (tensorOf dtype a) (tensorOf dtype b)))

[<Fact>]
let ``matmul with transposed operands equals matmul of the transposes`` () =
    check
        60
        (genMatMul
         |> Gen.filter (fun (_, a, b) -> a.Shape.Length >= 2 && b.Shape.Length >= 2))
        (fun (dtype, a, b) ->
            let ta, tb = tensorOf dtype a, tensorOf dtype b
            let expected = refMatMul a b |> roundTo dtype
            let at, bt = ta.Transpose(), tb.Transpose()
            assertClose "matmul(T, N)" (tolFor dtype) dtype expected (at.MatMul(tb, true, false))
            assertClose "matmul(N, T)" (tolFor dtype) dtype expected (ta.MatMul(bt, false, true))
            assertClose "matmul(T, T)" (tolFor dtype) dtype expected (at.MatMul(bt, true, true))
            assertClose "matmulNT" (tolFor dtype) dtype expected (Tensor.matmulNT ta bt)
            assertClose "matmulTN" (tolFor dtype) dtype expected (Tensor.matmulTN at tb))

[<Fact>]
let ``matmul result shapes`` () =
    let shapeOf a b =
        (Tensor.matmul (Tensor.zeros a) (Tensor.zeros b)).Shape

    Assert.Equal<int[]>([||], shapeOf [| 3 |] [| 3 |])
    Assert.Equal<int[]>([| 4 |], shapeOf [| 3 |] [| 3; 4 |])
    Assert.Equal<int[]>([| 2 |], shapeOf [| 2; 3 |] [| 3 |])
    Assert.Equal<int[]>([| 5; 4 |], shapeOf [| 3 |] [| 5; 3; 4 |])
    Assert.Equal<int[]>([| 5; 2 |], shapeOf [| 5; 2; 3 |] [| 3 |])
    Assert.Equal<int[]>([| 2; 5; 3; 4 |], shapeOf [| 2; 1; 3; 6 |] [| 5; 6; 4 |])
    Assert.Equal<int[]>([| 0; 2; 4 |], shapeOf [| 0; 2; 3 |] [| 3; 4 |])

    assertExact
        "k = 0 gives zeros"
        Float32
        (refInit [| 2; 3 |] (fun _ -> 0.0))
        (Tensor.matmul (Tensor.ones [| 2; 0 |]) (Tensor.ones [| 0; 3 |]))

// ---------------------------------------------------------------------------------------------
// Chains: random compositions stay consistent with the reference

[<Fact>]
let ``results do not alias their inputs`` () =
    // Buffers are immutable; a reshape shares, but nothing visible can change an input.
    let x = Tensor.ofArray [| 1.0f; 2.0f; 3.0f; 4.0f |] [| 2; 2 |]
    let r = x.Reshape 4
    let y = r.ToArray()
    y[0] <- 100.0f
    Assert.Equal<float32[]>([| 1.0f; 2.0f; 3.0f; 4.0f |], x.ToArray())
    Assert.Equal<float32[]>([| 1.0f; 2.0f; 3.0f; 4.0f |], (x.SumAxes [||]).ToArray())
    Assert.Equal<int[]>([| 2; 2 |], (x.SumAxes [||]).Shape)
