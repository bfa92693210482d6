/// Int32 data and the data-dependent indexing and ordering primitives (gather and scatter-add by
/// index tensors, take-along-axis, cumsum, stable argsort and sort, searchsorted, segment-sum):
/// against naive references written here, derivatives by the dot-product test and finite
/// differences in Float64, vmap against a loop with per-example indices, and their errors.
module SnnFunc.Tests.IndexingTests

open System
open Xunit
open SnnFunc
open SnnFunc.Tests.TestUtil
open SnnFunc.Tests.AdTestUtil

let private ints (shape: int[]) (data: int list) =
    Tensor.FromArray(Array.ofList data, shape)

let private randomInts (rng: Random) (lo: int) (hi: int) (shape: int[]) =
    Tensor.FromArray(Array.init (Shape.count shape) (fun _ -> rng.Next(lo, hi)), shape)

let private slice0 (t: Tensor) (i: int) = t.Narrow(0, i, 1).Squeeze 0

/// Asserts exact equality of values, shape and dtype.
let private assertSame (what: string) (expected: Tensor) (actual: Tensor) =
    Assert.True(expected.DType = actual.DType, $"%s{what}: dtype %s{actual.DType.Name}, expected %s{expected.DType.Name}")
    assertEqualValues what expected actual

// ---------------------------------------------------------------------------------------------
// Int32 arithmetic

/// Python's floor division and remainder, written from their definitions.
let private pyFloorDiv (a: int) (b: int) = int (Math.Floor(float a / float b))
let private pyRem (a: int) (b: int) = a - b * pyFloorDiv a b

[<Fact>]
let ``int32 arithmetic, comparisons and reductions equal a naive reference`` () =
    forAllSeeds 40 (fun seed ->
        let rng = Random seed
        let shape = randomShape rng 0 3 4
        let bShape = broadcastableTo rng shape
        let a = randomInts rng -50 50 shape

        let b =
            randomInts rng -9 10 bShape
            |> fun t -> Tensor.where (t.Eq 0.0) (Tensor.onesLike t) t

        let ra, rb = refOf a, refOf b
        let out = refBroadcastShape ra.Shape rb.Shape

        let binary (f: int -> int -> int) =
            let ba, bb = refBroadcastTo out ra, refBroadcastTo out rb
            Tensor.FromArray(Array.map2 (fun x y -> f (int x) (int y)) ba.Data bb.Data, out)

        let mask (f: int -> int -> bool) =
            binary (fun x y -> if f x y then 1 else 0)

        assertSame "add" (binary (+)) (a + b)
        assertSame "sub" (binary (-)) (a - b)
        assertSame "mul" (binary (*)) (a * b)
        assertSame "max" (binary max) (Tensor.maximum a b)
        assertSame "min" (binary min) (Tensor.minimum a b)
        assertSame "floorDiv" (binary pyFloorDiv) (Tensor.floorDiv a b)
        assertSame "rem" (binary pyRem) (a % b)
        assertSame "lt" (mask (<)) (Tensor.lt a b)
        assertSame "eq" (mask (=)) (Tensor.eq a b)
        assertSame "ge" (mask (>=)) (Tensor.ge a b)

        let unary (f: int -> int) =
            Tensor.FromArray(Array.map (int >> f) ra.Data, ra.Shape)

        assertSame "neg" (unary (fun v -> -v)) (-a)
        assertSame "abs" (unary abs) (Tensor.abs a)
        assertSame "sign" (unary sign) (Tensor.sign a)
        assertSame "relu" (unary (max 0)) (Tensor.relu a)
        assertSame "a + 3" (unary (fun v -> v + 3)) (a + 3.0)
        assertSame "sum" (Tensor.FromArray([| ra.Data |> Array.sumBy int |], [||])) (a.Sum())

        if a.Count > 0 then
            assertSame "max" (Tensor.FromArray([| ra.Data |> Array.map int |> Array.max |], [||])) (a.Max())

        Assert.Equal(Float32, a.Mean().DType)
        assertNear "mean" 1e-6 (if a.Count = 0 then nan else Array.average ra.Data) (if a.Count = 0 then nan else a.Mean().ToScalar()))

[<Fact>]
let ``float floorDiv and rem follow Python`` () =
    let a = t64 [| 6 |] [ 7.0; -7.0; 7.0; -7.0; 7.5; -0.5 ]
    let b = t64 [| 6 |] [ 2.0; 2.0; -2.0; -2.0; 2.0; 2.0 ]
    assertEqualValues "floorDiv" (t64 [| 6 |] [ 3.0; -4.0; -4.0; 3.0; 3.0; -1.0 ]) (Tensor.floorDiv a b)
    assertEqualValues "rem" (t64 [| 6 |] [ 1.0; 1.0; -1.0; -1.0; 1.5; 1.5 ]) (a % b)
    // d(a % b)/da = 1, d/db = -floor(a / b).
    let ga, gb = Ad.grad (fun (a: Tensor, b: Tensor) -> (a % b).Sum()) (a, b)
    assertEqualValues "d rem / da" (Tensor.onesLike a) ga
    assertEqualValues "d rem / db" (-(Tensor.floorDiv a b)) gb

[<Fact>]
let ``int32 errors name the operation, the dtype and the value`` () =
    let a = ints [| 3 |] [ 1; 2; 3 ]
    assertThrowsArg [ "Tensor.exp"; "floating-point"; "int32" ] (fun () -> a.Exp())
    assertThrowsArg [ "Tensor.div"; "int32" ] (fun () -> a / a)
    assertThrowsArg [ "Tensor.matmul"; "int32" ] (fun () -> (a.Reshape [| 1; 3 |]).MatMul(a.Reshape [| 3; 1 |]))
    assertThrowsArg [ "Tensor.floorDiv"; "division by zero"; "index 1" ] (fun () -> Tensor.floorDiv a (ints [| 3 |] [ 1; 0; 2 ]))
    assertThrowsArg [ "0.5"; "int32" ] (fun () -> a * 0.5)
    assertThrowsArg [ "Tensor.add"; "int32"; "float32" ] (fun () -> a + Tensor.ones [| 3 |])
    assertThrowsArg [ "Tensor.full"; "2.5"; "int32" ] (fun () -> Tensor.Full([| 2 |], 2.5, Int32))
    assertThrowsArg [ "Tensor.toInt32Array"; "float32" ] (fun () -> (Tensor.ones [| 2 |]).ToInt32Array())

[<Fact>]
let ``convert between int32 and floats truncates toward zero and rejects what has no int32`` () =
    let x = t64 [| 6 |] [ 2.9; -2.9; 0.0; -0.4; 2147483647.0; -2147483648.0 ]
    Assert.Equal<int[]>([| 2; -2; 0; 0; 2147483647; -2147483648 |], (x.Convert Int32).ToInt32Array())
    Assert.Equal<float[]>([| 1.0; -7.0 |], (ints [| 2 |] [ 1; -7 ]).Convert(Float64).ToDoubleArray())

    for bad, i in [ nan, 1; infinity, 1; 3e9, 1; -2147483649.0, 1 ] do
        assertThrowsArg [ "Tensor.convert"; $"flat index %d{i}"; "int32" ] (fun () -> (t64 [| 2 |] [ 0.0; bad ]).Convert Int32)

    // Int32 data carries no derivative: converting to float gives zero tangents and cotangents.
    let f (x: Tensor) =
        (x.Convert(Int32).Convert(Float64) * x).Sum()

    let x = t64 [| 2 |] [ 1.5; -2.5 ]
    assertEqualValues "grad through an int32 round trip" (t64 [| 2 |] [ 1.0; -2.0 ]) (Ad.grad f x)

[<Fact>]
let ``argmax and argmin return exact int32 indices past 2^24`` () =
    // 2^24 + 3 elements: a float32 index would round 16777217 to 16777216.
    let n = (1 <<< 24) + 3
    let data = Array.zeroCreate<float32> n
    data[n - 2] <- 1.0f
    data[3] <- -1.0f
    let t = Tensor.FromArray(data, n)
    let i = t.ArgMax 0
    Assert.Equal(Int32, i.DType)
    Assert.Equal(n - 2, (i.ToInt32Array())[0])
    Assert.Equal(3, (t.ArgMin(0).ToInt32Array())[0])

[<Fact>]
let ``gradients with respect to int32 leaves are zeros of the same shape, and jvp ignores their tangents`` () =
    let idx = ints [| 2 |] [ 2; 0 ]
    let x = t64 [| 3 |] [ 1.0; 2.0; 3.0 ]

    let f (x: Tensor, idx: Tensor) =
        (x.Gather(0, idx) * x.Gather(0, idx)).Sum()

    let gx, gi = Ad.grad f (x, idx)
    assertEqualValues "d/dx" (t64 [| 3 |] [ 2.0; 0.0; 6.0 ]) gx
    assertSame "d/d indices" (ints [| 2 |] [ 0; 0 ]) gi
    let _, t = Ad.jvp f (x, idx) (Tensor.onesLike x, ints [| 2 |] [ 5; 5 ])
    assertEqualValues "jvp" (s64 8.0) t
    // vmap over the int32 leaf as well.
    let perExample =
        Ad.vmap (fun (i: Tensor) -> x.Gather(0, i).Sum()) (ints [| 2; 2 |] [ 0; 1; 2; 2 ])

    assertEqualValues "vmap over int32 indices" (t64 [| 2 |] [ 3.0; 6.0 ]) perExample

// ---------------------------------------------------------------------------------------------
// Gather, scatter-add, take-along-axis, segment-sum against naive loops

/// Random shapes of a batched gather: batch B, pre P, gathered n, post Q, index J.
let private gatherShapes (rng: Random) =
    let b = randomShape rng 0 2 3
    let p = randomShape rng 0 1 3
    let n = rng.Next(1, 5)
    let q = randomShape rng 0 2 3
    let j = randomShape rng 0 2 3
    b, p, n, q, j

let private naiveGather (x: Tensor) (idx: Tensor) (axis: int) (batchDims: int) =
    let xr, ir = refOf x, refOf idx
    let b = x.Shape[.. batchDims - 1]

    let outShape =
        Array.concat [ x.Shape[.. axis - 1]; idx.Shape[batchDims..]; x.Shape[axis + 1 ..] ]

    let jRank = idx.Rank - batchDims

    let out =
        refInit outShape (fun o ->
            let bi = o[.. batchDims - 1]
            let pi = o[batchDims .. axis - 1]
            let ji = o[axis .. axis + jRank - 1]
            let qi = o[axis + jRank ..]
            let k = int (get ir (Array.append bi ji))
            get xr (Array.concat [ bi; pi; [| k |]; qi ]))

    ignore b
    tensorOf x.DType out

let private naiveScatterAdd (upd: Tensor) (idx: Tensor) (axis: int) (batchDims: int) (size: int) =
    let ur, ir = refOf upd, refOf idx
    let jRank = idx.Rank - batchDims

    let outShape =
        Array.concat [ upd.Shape[.. axis - 1]; [| size |]; upd.Shape[axis + jRank ..] ]

    let acc = Array.zeroCreate<float> (Shape.count outShape)

    for flat in 0 .. ur.Data.Length - 1 do
        let u = unravel ur.Shape flat
        let bi = u[.. batchDims - 1]
        let pi = u[batchDims .. axis - 1]
        let ji = u[axis .. axis + jRank - 1]
        let qi = u[axis + jRank ..]
        let k = int (get ir (Array.append bi ji))
        let o = ravel outShape (Array.concat [ bi; pi; [| k |]; qi ])
        acc[o] <- acc[o] + ur.Data[flat]

    tensorOf upd.DType { Shape = outShape; Data = acc }

[<Fact>]
let ``gather and scatterAdd with batch axes equal naive loops in every dtype`` () =
    forAllSeeds 60 (fun seed ->
        let rng = Random seed
        let b, p, n, q, j = gatherShapes rng
        let axis = b.Length + p.Length
        let xShape = Array.concat [ b; p; [| n |]; q ]
        let idx = randomInts rng 0 n (Array.append b j)

        for dtype in [ Float32; Float64; Int32 ] do
            let x = (randomInts rng -20 20 xShape).Convert dtype
            assertSame $"gather %s{dtype.Name}" (naiveGather x idx axis b.Length) (x.Gather(axis, idx, b.Length))
            let upd = (randomInts rng -20 20 (Array.concat [ b; p; j; q ])).Convert dtype

            assertSame $"scatterAdd %s{dtype.Name}" (naiveScatterAdd upd idx axis b.Length n) (upd.ScatterAdd(axis, idx, n, b.Length)))

[<Fact>]
let ``takeAlongAxis equals numpy's take_along_axis with broadcast axes`` () =
    // numpy.take_along_axis(np.arange(12).reshape(3, 4), [[0, 3], [1, 1], [2, 0]], axis=1)
    let x = Tensor.arange 12 |> Tensor.reshape [| 3; 4 |]
    let idx = ints [| 3; 2 |] [ 0; 3; 1; 1; 2; 0 ]
    assertEqualValues "axis 1" (Tensor.ofArray [| 0.f; 3.f; 5.f; 5.f; 10.f; 8.f |] [| 3; 2 |]) (x.TakeAlongAxis(idx, 1))
    // axis 0 with indices broadcast along axis 1: rows [2, 0] of every column.
    let idx0 = ints [| 2; 1 |] [ 2; 0 ]

    assertEqualValues
        "axis 0, broadcast"
        (Tensor.ofArray [| 8.f; 9.f; 10.f; 11.f; 0.f; 1.f; 2.f; 3.f |] [| 2; 4 |])
        (x.TakeAlongAxis(idx0, 0))

    forAllSeeds 30 (fun seed ->
        let rng = Random seed
        let shape = randomShape rng 1 3 4
        let axis = rng.Next shape.Length
        let m = rng.Next(0, 4)

        let idxShape =
            shape
            |> Array.mapi (fun i d ->
                if i = axis then m
                elif rng.Next 3 = 0 then 1
                else d)

        let x = randn rng shape
        let idx = randomInts rng 0 shape[axis] idxShape
        let got = x.TakeAlongAxis(idx, axis)
        let outShape = Array.mapi (fun i d -> if i = axis then m else d) shape
        let xr, ir = refOf x, refOf idx

        let expected =
            refInit outShape (fun o ->
                let io = o |> Array.mapi (fun i v -> if idxShape[i] = 1 && i <> axis then 0 else v)
                let k = int (get ir io)
                get xr (Array.mapi (fun i v -> if i = axis then k else v) o))

        assertEqualValues "takeAlongAxis" (tensorOf Float64 expected) got)

[<Fact>]
let ``segmentSum adds the rows of each segment, empty segments are zero`` () =
    let data = t64 [| 5; 2 |] [ 1.0; 2.0; 3.0; 4.0; 5.0; 6.0; 7.0; 8.0; 9.0; 10.0 ]
    let ids = ints [| 5 |] [ 2; 0; 2; 3; 0 ]
    let expected = t64 [| 4; 2 |] [ 12.0; 14.0; 0.0; 0.0; 6.0; 8.0; 7.0; 8.0 ]
    assertEqualValues "segmentSum" expected (Tensor.SegmentSum(data, ids, 4))
    assertThrowsArg [ "Tensor.scatterAdd"; "index 4"; "[0, 4)" ] (fun () -> Tensor.SegmentSum(data, ints [| 5 |] [ 0; 1; 4; 0; 0 ], 4))
    assertThrowsArg [ "Tensor.segmentSum"; "[5; 2]"; "[4]" ] (fun () -> Tensor.SegmentSum(data, ints [| 4 |] [ 0; 1; 2; 3 ], 4))

// ---------------------------------------------------------------------------------------------
// cumsum, argsort, sort, searchsorted against naive references

[<Fact>]
let ``cumsum in both directions equals a running sum`` () =
    forAllSeeds 40 (fun seed ->
        let rng = Random seed
        let shape = randomShape rng 1 3 4
        let axis = rng.Next shape.Length

        for dtype in [ Float64; Int32 ] do
            let x = (randomInts rng -9 10 shape).Convert dtype
            let xr = refOf x

            for reverse in [ false; true ] do
                let expected =
                    refInit shape (fun o ->
                        let range =
                            if reverse then
                                [ o[axis] .. shape[axis] - 1 ]
                            else
                                [ 0 .. o[axis] ]

                        range
                        |> List.sumBy (fun k -> get xr (Array.mapi (fun i v -> if i = axis then k else v) o)))

                assertSame $"cumsum %s{dtype.Name} reverse %b{reverse}" (tensorOf dtype expected) (x.Cumsum(axis, reverse)))

/// The stable sorting permutation of a list, NaN last (List.sortWith is stable).
let private naiveArgsort (descending: bool) (values: float[]) =
    let key (v: float) =
        if Double.IsNaN v then
            (1, 0.0)
        else
            (0, (if descending then -v else v))

    [ 0 .. values.Length - 1 ]
    |> List.sortWith (fun i j -> compare (key values[i]) (key values[j]))
    |> Array.ofList

[<Fact>]
let ``argsort is stable with NaN last, and sort gathers by it`` () =
    let x = t64 [| 7 |] [ 3.0; nan; 1.0; 3.0; -2.0; 1.0; nan ]
    Assert.Equal<int[]>([| 4; 2; 5; 0; 3; 1; 6 |], x.Argsort(0).ToInt32Array())
    Assert.Equal<int[]>([| 0; 3; 2; 5; 4; 1; 6 |], x.Argsort(0, true).ToInt32Array())

    forAllSeeds 40 (fun seed ->
        let rng = Random seed
        let shape = randomShape rng 1 3 5
        let axis = rng.Next shape.Length
        // Few distinct values: many ties, so stability is exercised.
        let x =
            (randomInts rng 0 4 shape).Convert Float64
            |> fun t -> Tensor.where (t.Eq 3.0) (t * nan) t

        let xr = refOf x

        for descending in [ false; true ] do
            let got = x.Argsort(axis, descending)
            Assert.Equal(Int32, got.DType)
            let gr = refOf got

            for flat in 0 .. xr.Data.Length - 1 do
                let o = unravel shape flat

                if o[axis] = 0 then
                    let lane =
                        Array.init shape[axis] (fun k -> get xr (Array.mapi (fun i v -> if i = axis then k else v) o))

                    let expected = naiveArgsort descending lane

                    let actual =
                        Array.init shape[axis] (fun k -> int (get gr (Array.mapi (fun i v -> if i = axis then k else v) o)))

                    Assert.Equal<int[]>(expected, actual)

            // NaN where expected (assertEqualValues treats NaN as unequal to itself).
            let sorted = x.Sort(axis, descending).ToDoubleArray()
            let expected = x.TakeAlongAxis(got, axis).ToDoubleArray()

            Assert.True(
                Array.forall2 (fun (e: float) a -> e = a || (Double.IsNaN e && Double.IsNaN a)) expected sorted,
                "sort = takeAlongAxis (argsort)"
            ))

[<Fact>]
let ``searchSorted counts the entries below (or at or below) each value`` () =
    let sorted = t64 [| 5 |] [ 1.0; 2.0; 2.0; 3.0; nan ]
    let values = t64 [| 2; 3 |] [ 0.0; 2.0; 2.5; 3.0; 9.0; nan ]
    Assert.Equal<int[]>([| 0; 1; 3; 3; 4; 4 |], sorted.SearchSorted(values).ToInt32Array())
    Assert.Equal<int[]>([| 0; 3; 3; 4; 4; 5 |], sorted.SearchSorted(values, true).ToInt32Array())
    Assert.Equal<int[]>([| 2; 3 |], sorted.SearchSorted(values).Shape)

    forAllSeeds 40 (fun seed ->
        let rng = Random seed
        let lead = randomShape rng 0 2 3
        let n, m = rng.Next(0, 6), rng.Next(0, 5)

        let rows =
            (randomInts rng -5 6 (Array.append lead [| n |])).Convert(Float64).Sort(-1)

        let values = (randomInts rng -6 7 (Array.append lead [| m |])).Convert Float64
        let rr, vr = refOf rows, refOf values

        for right in [ false; true ] do
            let expected =
                refInit (Array.append lead [| m |]) (fun o ->
                    let v = get vr o
                    let row = o[.. o.Length - 2]

                    [ 0 .. n - 1 ]
                    |> List.filter (fun k ->
                        let e = get rr (Array.append row [| k |])
                        if right then e <= v else e < v)
                    |> List.length
                    |> float)

            assertSame $"searchSorted right %b{right}" (tensorOf Int32 expected) (rows.SearchSorted(values, right)))

// ---------------------------------------------------------------------------------------------
// Derivatives: dot-product test and finite differences in Float64

let private derivativeChecks (what: string) (rng: Random) (f: Tensor[] -> Tensor) (xs: Tensor[]) =
    dotProductTest what rng f xs 1e-10 |> ignore
    finiteDifferenceTest what rng f xs

[<Fact>]
let ``gather, scatterAdd, takeAlongAxis, cumsum, sort and segmentSum pass the derivative tests`` () =
    forAllSeeds 25 (fun seed ->
        let rng = Random seed
        let b, p, n, q, j = gatherShapes rng
        let axis = b.Length + p.Length
        let idx = randomInts rng 0 n (Array.append b j)
        derivativeChecks "gather" rng (fun xs -> xs[0].Gather(axis, idx, b.Length)) [| randn rng (Array.concat [ b; p; [| n |]; q ]) |]

        derivativeChecks
            "scatterAdd"
            rng
            (fun xs -> xs[0].ScatterAdd(axis, idx, n, b.Length))
            [| randn rng (Array.concat [ b; p; j; q ]) |]

        let shape = randomShape rng 1 3 4
        let a = rng.Next shape.Length
        derivativeChecks "cumsum" rng (fun xs -> xs[0].Cumsum(a) + xs[0].Cumsum(a, true) * 0.5) [| randn rng shape |]
        // Distinct values: sort is differentiable away from ties.
        derivativeChecks "sort" rng (fun xs -> xs[0].Sort(a) * xs[0].Sort(a, true)) [| distinct rng shape |]
        let idxAlong = randomInts rng 0 shape[a] shape
        derivativeChecks "takeAlongAxis" rng (fun xs -> xs[0].TakeAlongAxis(idxAlong, a)) [| randn rng shape |]
        let ids = randomInts rng 0 3 [| shape[0] |]
        derivativeChecks "segmentSum" rng (fun xs -> Tensor.SegmentSum(xs[0], ids, 3)) [| randn rng shape |])

// ---------------------------------------------------------------------------------------------
// vmap against a loop, with per-example indices

/// Asserts vmap f over axis 0 of (x, idx) equals the loop over examples, for each combination of
/// which of the two is mapped.
let private vmapMatchesLoop (what: string) (f: Tensor -> Tensor -> Tensor) (xs: Tensor) (idxs: Tensor) =
    let batch = xs.Shape[0]

    for mapX, mapIdx in [ true, true; true, false; false, true ] do
        let x0, i0 = slice0 xs 0, slice0 idxs 0

        let got =
            Ad.vmapWith
                [| (if mapX then Some 0 else None); (if mapIdx then Some 0 else None) |]
                0
                (fun (x, i) -> f x i)
                ((if mapX then xs else x0), (if mapIdx then idxs else i0))

        let expected =
            Tensor.stack
                0
                [
                    for k in 0 .. batch - 1 -> f (if mapX then slice0 xs k else x0) (if mapIdx then slice0 idxs k else i0)
                ]

        assertSame $"%s{what} (x mapped %b{mapX}, indices mapped %b{mapIdx})" expected got

[<Fact>]
let ``vmap of every indexing primitive equals a loop over examples with per-example indices`` () =
    forAllSeeds 30 (fun seed ->
        let rng = Random seed
        let batch = rng.Next(1, 4)
        let b, p, n, q, j = gatherShapes rng
        let axis = b.Length + p.Length
        let k = b.Length
        let xs = randn rng (Array.concat [ [| batch |]; b; p; [| n |]; q ])
        let idxs = randomInts rng 0 n (Array.concat [ [| batch |]; b; j ])
        vmapMatchesLoop "gather" (fun x i -> x.Gather(axis, i, k)) xs idxs
        let upds = randn rng (Array.concat [ [| batch |]; b; p; j; q ])
        vmapMatchesLoop "scatterAdd" (fun u i -> u.ScatterAdd(axis, i, n, k)) upds idxs
        let shape = randomShape rng 1 3 4
        let a = rng.Next shape.Length
        let xs = randn rng (Array.append [| batch |] shape)
        let along = randomInts rng 0 shape[a] (Array.append [| batch |] shape)
        vmapMatchesLoop "takeAlongAxis" (fun x i -> x.TakeAlongAxis(i, a)) xs along
        let ids = randomInts rng 0 3 [| batch; shape[0] |]
        vmapMatchesLoop "segmentSum" (fun x i -> Tensor.SegmentSum(x, i, 3)) xs ids
        let sorted = (randomInts rng -4 5 [| batch; 2; 5 |]).Convert(Float64).Sort(-1)
        let values = (randomInts rng -5 6 [| batch; 2; 3 |]).Convert Float64
        vmapMatchesLoop "searchSorted" (fun s v -> s.SearchSorted(v, true)) sorted values

        let unary (name: string) (f: Tensor -> Tensor) =
            let got = Ad.vmap f xs
            assertSame name (Tensor.stack 0 [ for e in 0 .. batch - 1 -> f (slice0 xs e) ]) got

        unary "cumsum" (fun x -> x.Cumsum(a, true))
        unary "argsort" (fun x -> x.Argsort(a))
        unary "sort" (fun x -> x.Sort(a, true))
        unary "argmax" (fun x -> x.ArgMax(a)))

[<Fact>]
let ``per-example gradients through a gather with per-example indices`` () =
    // vmap of grad with indices computed from each example's data (its argmax).
    let rng = Random 11
    let xs = randn rng [| 4; 6 |]

    let f (x: Tensor) =
        x.Gather(0, x.ArgMax(0).Reshape [| 1 |]).Sum() * x.Sum()

    let got = Ad.vmap (Ad.grad f) xs
    let expected = Tensor.stack 0 [ for e in 0..3 -> Ad.grad f (slice0 xs e) ]
    assertClose "vmap of grad" 1e-15 0.0 expected got

    let j =
        Ad.jacrev (fun (x: Tensor) -> x.Gather(0, ints [| 3 |] [ 2; 2; 0 ])) (slice0 xs 0)

    assertEqualValues "jacrev = jacfwd" (Ad.jacfwd (fun (x: Tensor) -> x.Gather(0, ints [| 3 |] [ 2; 2; 0 ])) (slice0 xs 0)) j

// ---------------------------------------------------------------------------------------------
// Errors

[<Fact>]
let ``index errors name the operation, the index, its position and the shapes`` () =
    let x = Tensor.ones [| 3; 2 |]

    assertThrowsArg [ "Tensor.gather"; "index 5"; "position 1"; "[0, 3)"; "axis 0"; "[3; 2]" ] (fun () ->
        x.Gather(0, ints [| 2 |] [ 0; 5 ]))

    assertThrowsArg [ "Tensor.gather"; "index -1"; "flat position 2"; "[2; 2]" ] (fun () -> x.Gather(0, ints [| 2; 2 |] [ 0; 1; -1; 0 ]))
    assertThrowsArg [ "Tensor.gather"; "indices must be int32"; "float32" ] (fun () -> x.Gather(0, Tensor.zeros [| 2 |]))
    assertThrowsArg [ "Tensor.gather"; "batch"; "[3; 2]"; "[2; 1]" ] (fun () -> x.Gather(1, ints [| 2; 1 |] [ 0; 0 ], 1))
    assertThrowsArg [ "Tensor.scatterAdd"; "index 3"; "[0, 3)" ] (fun () -> x.ScatterAdd(0, ints [| 3 |] [ 0; 3; 1 ], 3))
    assertThrowsArg [ "Tensor.takeAlongAxis"; "rank" ] (fun () -> x.TakeAlongAxis(ints [| 2 |] [ 0; 1 ], 0))
    assertThrowsArg [ "Tensor.searchSorted"; "[3; 2]"; "[2; 2]" ] (fun () -> x.SearchSorted(Tensor.ones [| 2; 2 |]))
    assertThrowsArg [ "Tensor.cumsum"; "axis 2" ] (fun () -> x.Cumsum 2)
