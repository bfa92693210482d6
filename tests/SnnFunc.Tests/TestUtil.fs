/// Shared test helpers: a Float64 reference n-d array with naive (nested-loop, multi-index)
/// implementations of every Tensor primitive, FsCheck generators of shapes and tensors, and
/// approximate-equality asserts whose failure messages show where and by how much values differ.
/// The reference code is written independently of the library (it never calls a Tensor operation).
module SnnFunc.Tests.TestUtil

open System
open FsCheck
open FsCheck.FSharp
open SnnFunc

// ---------------------------------------------------------------------------------------------
// Reference arrays

/// A Float64 n-d array in row-major order: the reference every tensor result is compared with.
type Ref = { Shape: int[]; Data: float[] }

let fmtShape (shape: int[]) = "[" + String.Join("; ", shape) + "]"

let countOf (shape: int[]) = Array.fold (*) 1 shape

/// Row-major multi-index of flat position i.
let unravel (shape: int[]) (i: int) =
    let idx = Array.zeroCreate shape.Length
    let mutable rest = i

    for d in shape.Length - 1 .. -1 .. 0 do
        idx[d] <- rest % shape[d]
        rest <- rest / shape[d]

    idx

/// Flat position of a multi-index.
let ravel (shape: int[]) (idx: int[]) =
    let mutable p = 0

    for d in 0 .. shape.Length - 1 do
        p <- p * shape[d] + idx[d]

    p

let refOf (t: Tensor) =
    {
        Shape = t.Shape
        Data = t.ToDoubleArray()
    }

let refInit (shape: int[]) (f: int[] -> float) =
    {
        Shape = shape
        Data = Array.init (countOf shape) (fun i -> f (unravel shape i))
    }

let get (r: Ref) (idx: int[]) = r.Data[ravel r.Shape idx]

/// A tensor of the given dtype holding the reference's values (rounded to float32 if asked).
let tensorOf (dtype: DType) (r: Ref) =
    match dtype with
    | Float64 -> Tensor.FromArray(Array.copy r.Data, Array.copy r.Shape)
    | Float32 -> Tensor.FromArray(Array.map float32 r.Data, Array.copy r.Shape)
    | Int32 -> Tensor.FromArray(Array.map int r.Data, Array.copy r.Shape)

/// Rounds the reference's values to the dtype (what a tensor of that dtype can hold).
let roundTo (dtype: DType) (r: Ref) =
    match dtype with
    | Float64
    | Int32 -> r
    | Float32 ->
        { r with
            Data = r.Data |> Array.map (fun v -> float (float32 v))
        }

/// NumPy's broadcast rule, written from its definition: align right, equal or 1.
let refBroadcastShape (a: int[]) (b: int[]) =
    let rank = max a.Length b.Length

    Array.init rank (fun i ->
        let da = if i < rank - a.Length then 1 else a[i - (rank - a.Length)]
        let db = if i < rank - b.Length then 1 else b[i - (rank - b.Length)]

        if da = db then
            da
        elif da = 1 then
            db
        elif db = 1 then
            da
        else
            failwithf "reference: %s and %s do not broadcast" (fmtShape a) (fmtShape b))

/// The element of `r` seen at output multi-index `outIdx` when `r` is broadcast to a larger shape.
let getBroadcast (r: Ref) (outIdx: int[]) =
    let offset = outIdx.Length - r.Shape.Length
    get r (Array.init r.Shape.Length (fun j -> if r.Shape[j] = 1 then 0 else outIdx[offset + j]))

let refMap (f: float -> float) (r: Ref) = { r with Data = Array.map f r.Data }

let refMap2 (f: float -> float -> float) (a: Ref) (b: Ref) =
    let shape = refBroadcastShape a.Shape b.Shape
    refInit shape (fun idx -> f (getBroadcast a idx) (getBroadcast b idx))

let refWhere (c: Ref) (a: Ref) (b: Ref) =
    let shape = refBroadcastShape (refBroadcastShape c.Shape a.Shape) b.Shape

    refInit shape (fun idx ->
        if getBroadcast c idx <> 0.0 then
            getBroadcast a idx
        else
            getBroadcast b idx)

let refBroadcastTo (shape: int[]) (r: Ref) = refInit shape (getBroadcast r)

/// NaN-propagating max and min (IEEE 754-2019 maximum/minimum, like NumPy's maximum).
let nanMax (a: float) (b: float) =
    if Double.IsNaN a || Double.IsNaN b then nan else max a b

let nanMin (a: float) (b: float) =
    if Double.IsNaN a || Double.IsNaN b then nan else min a b

type RefReduce =
    | RSum
    | RMax
    | RMin

/// Reduction over a set of axes, by visiting every input multi-index.
let refReduce (op: RefReduce) (axes: int[]) (keepDims: bool) (r: Ref) =
    let rank = r.Shape.Length
    let axes = axes |> Array.map (fun a -> if a < 0 then a + rank else a)

    let keptShape =
        r.Shape |> Array.mapi (fun i d -> if Array.contains i axes then 1 else d)

    let out = Array.create (countOf keptShape) (if op = RSum then 0.0 else nan)
    let seen = Array.zeroCreate (countOf keptShape)

    for i in 0 .. r.Data.Length - 1 do
        let idx = unravel r.Shape i

        let o =
            ravel keptShape (idx |> Array.mapi (fun d v -> if Array.contains d axes then 0 else v))

        let v = r.Data[i]

        out[o] <-
            match op with
            | RSum -> out[o] + v
            | RMax -> if seen[o] then nanMax out[o] v else v
            | RMin -> if seen[o] then nanMin out[o] v else v

        seen[o] <- true

    let shape =
        if keepDims then
            keptShape
        else
            r.Shape
            |> Array.indexed
            |> Array.filter (fun (i, _) -> not (Array.contains i axes))
            |> Array.map snd

    { Shape = shape; Data = out }

/// Index of the first maximum (or minimum) along an axis; the first NaN wins (NumPy).
let refArgExtremum (smallest: bool) (axis: int) (r: Ref) =
    let axis = if axis < 0 then axis + r.Shape.Length else axis
    let outShape = Array.append r.Shape[.. axis - 1] r.Shape[axis + 1 ..]

    refInit outShape (fun o ->
        let at j =
            get r (Array.concat [ o[.. axis - 1]; [| j |]; o[axis..] ])

        let mutable best = 0

        for j in 1 .. r.Shape[axis] - 1 do
            let v, b = at j, at best

            if not (Double.IsNaN b) && (Double.IsNaN v || (if smallest then v < b else v > b)) then
                best <- j

        float best)

let refPermute (perm: int[]) (r: Ref) =
    let perm = perm |> Array.map (fun p -> if p < 0 then p + r.Shape.Length else p)
    let outShape = perm |> Array.map (fun p -> r.Shape[p])

    refInit outShape (fun o ->
        let src = Array.zeroCreate r.Shape.Length

        for i in 0 .. perm.Length - 1 do
            src[perm[i]] <- o[i]

        get r src)

let refSlice (starts: int[]) (sizes: int[]) (r: Ref) =
    refInit sizes (fun o -> get r (Array.map2 (+) o starts))

let refPad (low: int[]) (high: int[]) (r: Ref) =
    let outShape = Array.init r.Shape.Length (fun i -> low[i] + r.Shape[i] + high[i])

    refInit outShape (fun o ->
        let src = Array.map2 (-) o low

        if Array.forall2 (fun s d -> s >= 0 && s < d) src r.Shape then
            get r src
        else
            0.0)

let refConcat (axis: int) (parts: Ref[]) =
    let axis = if axis < 0 then axis + parts[0].Shape.Length else axis
    let outShape = Array.copy parts[0].Shape
    outShape[axis] <- parts |> Array.sumBy (fun p -> p.Shape[axis])

    refInit outShape (fun o ->
        let mutable k = 0
        let mutable pos = o[axis]

        while pos >= parts[k].Shape[axis] do
            pos <- pos - parts[k].Shape[axis]
            k <- k + 1

        get parts[k] (Array.mapi (fun d v -> if d = axis then pos else v) o))

/// numpy.take(r, indices.reshape(indexShape), axis).
let refGather (axis: int) (indices: int[]) (indexShape: int[]) (r: Ref) =
    let axis = if axis < 0 then axis + r.Shape.Length else axis
    let q = indexShape.Length

    let outShape =
        Array.concat [ r.Shape[.. axis - 1]; indexShape; r.Shape[axis + 1 ..] ]

    refInit outShape (fun o ->
        let j = indices[ravel indexShape o[axis .. axis + q - 1]]
        get r (Array.concat [ o[.. axis - 1]; [| j |]; o[axis + q ..] ]))

/// Adds each slice of r (whose axes [axis, axis + rank indexShape) run over the indices) into a
/// zero array whose `axis` has extent `size`.
let refScatterAdd (axis: int) (indices: int[]) (indexShape: int[]) (size: int) (r: Ref) =
    let q = indexShape.Length

    let outShape =
        Array.concat [ r.Shape[.. axis - 1]; [| size |]; r.Shape[axis + q ..] ]

    let out = Array.zeroCreate (countOf outShape)

    for i in 0 .. r.Data.Length - 1 do
        let idx = unravel r.Shape i
        let j = indices[ravel indexShape idx[axis .. axis + q - 1]]

        let o =
            ravel outShape (Array.concat [ idx[.. axis - 1]; [| j |]; idx[axis + q ..] ])

        out[o] <- out[o] + r.Data[i]

    { Shape = outShape; Data = out }

/// numpy.matmul, from its definition: rank-1 operands promoted then their axis removed, batch axes
/// broadcast, each product an explicit triple loop.
let refMatMul (a: Ref) (b: Ref) =
    let a2 =
        if a.Shape.Length = 1 then
            { a with Shape = [| 1; a.Shape[0] |] }
        else
            a

    let b2 =
        if b.Shape.Length = 1 then
            { b with Shape = [| b.Shape[0]; 1 |] }
        else
            b

    let ra, rb = a2.Shape.Length, b2.Shape.Length
    let m, k = a2.Shape[ra - 2], a2.Shape[ra - 1]
    let n = b2.Shape[rb - 1]

    if b2.Shape[rb - 2] <> k then
        failwith "reference: inner dimensions differ"

    let batch = refBroadcastShape a2.Shape[.. ra - 3] b2.Shape[.. rb - 3]
    let full = Array.append batch [| m; n |]

    let result =
        refInit full (fun o ->
            let bi = o[.. o.Length - 3]
            let i, j = o[o.Length - 2], o[o.Length - 1]
            let mutable s = 0.0

            for p in 0 .. k - 1 do
                s <-
                    s
                    + getBroadcast a2 (Array.append bi [| i; p |])
                      * getBroadcast b2 (Array.append bi [| p; j |])

            s)

    let shape =
        full
        |> Array.indexed
        |> Array.filter (fun (d, _) ->
            not (
                (a.Shape.Length = 1 && d = full.Length - 2)
                || (b.Shape.Length = 1 && d = full.Length - 1)
            ))
        |> Array.map snd

    { result with Shape = shape }

/// log(sum(exp(x))) along an axis, computed in Float64 with the special rows handled explicitly.
let refLogSumExp (axis: int) (keepDims: bool) (r: Ref) =
    let rank = r.Shape.Length
    let axis = if axis < 0 then axis + rank else axis
    let m = refReduce RMax [| axis |] true r

    let shifted =
        refInit r.Shape (fun idx ->
            let mi = get m (Array.mapi (fun d v -> if d = axis then 0 else v) idx)

            if Double.IsInfinity mi then
                0.0
            else
                Math.Exp(get r idx - mi))

    let s = refReduce RSum [| axis |] true shifted

    let kept =
        refInit m.Shape (fun idx ->
            let mi = get m idx

            if Double.IsNaN mi then nan
            elif Double.IsInfinity mi then mi
            else mi + Math.Log(get s idx))

    if keepDims then
        kept
    else
        { kept with
            Shape = Array.append r.Shape[.. axis - 1] r.Shape[axis + 1 ..]
        }

// ---------------------------------------------------------------------------------------------
// Accurate scalar references that System.Math lacks

/// log(1 + x) accurate for small |x| (Taylor series below 1e-3, else the direct formula).
let refLog1p (x: float) =
    if abs x < 1e-3 then
        x - x * x / 2.0 + x * x * x / 3.0 - x ** 4.0 / 4.0 + x ** 5.0 / 5.0
    else
        Math.Log(1.0 + x)

/// exp(x) - 1 accurate for small |x|.
let refExpm1 (x: float) =
    if abs x < 1e-3 then
        x + x * x / 2.0 + x * x * x / 6.0 + x ** 4.0 / 24.0 + x ** 5.0 / 120.0
    else
        Math.Exp x - 1.0

// ---------------------------------------------------------------------------------------------
// Approximate equality with messages that say where and by how much

/// Relative and absolute tolerance of a comparison.
type Tol = { Rel: float; Abs: float }

/// Tight enough to catch a wrong formula, loose enough for float32 SIMD approximations.
let tolFor (dtype: DType) =
    match dtype with
    | Float32 -> { Rel = 2e-5; Abs = 1e-6 }
    | Float64 -> { Rel = 1e-12; Abs = 1e-14 }
    | Int32 -> { Rel = 0.0; Abs = 0.0 }

let exact = { Rel = 0.0; Abs = 0.0 }

let private close (tol: Tol) (e: float) (a: float) =
    (Double.IsNaN e && Double.IsNaN a)
    || e = a
    || (Double.IsFinite e && abs (e - a) <= tol.Abs + tol.Rel * abs e)

/// Asserts that `actual` has the expected shape and dtype and every element is within `tol` of the
/// reference (NaN matches NaN, infinities must match exactly).
let assertClose (what: string) (tol: Tol) (dtype: DType) (expected: Ref) (actual: Tensor) =
    if actual.DType <> dtype then
        failwithf "%s: dtype %s, expected %s" what actual.DType.Name dtype.Name

    if actual.Shape <> expected.Shape then
        failwithf "%s: shape %s, expected %s" what (fmtShape actual.Shape) (fmtShape expected.Shape)

    let values = actual.ToDoubleArray()

    for i in 0 .. values.Length - 1 do
        if not (close tol expected.Data[i] values[i]) then
            failwithf
                "%s (%s, shape %s): at index %s got %.17g, expected %.17g (difference %.3g; tolerance rel %g abs %g)"
                what
                dtype.Name
                (fmtShape expected.Shape)
                (fmtShape (unravel expected.Shape i))
                values[i]
                expected.Data[i]
                (values[i] - expected.Data[i])
                tol.Rel
                tol.Abs

/// Asserts exact equality of shape and values (NaN matches NaN).
let assertExact (what: string) (dtype: DType) (expected: Ref) (actual: Tensor) =
    assertClose what exact dtype expected actual

/// Asserts that `f` raises ArgumentException (or a subclass) whose message contains every fragment.
let assertThrowsArg (fragments: string list) (f: unit -> 'a) =
    let ex =
        try
            f () |> ignore
            None
        with e ->
            Some e

    match ex with
    | None -> failwithf "expected an ArgumentException mentioning %A, but nothing was raised" fragments
    | Some(:? ArgumentException as e) ->
        for frag in fragments do
            if not (e.Message.Contains(frag: string)) then
                failwithf "ArgumentException message %A does not contain %A" e.Message frag
    | Some e -> failwithf "expected an ArgumentException mentioning %A, got %s: %s" fragments (e.GetType().Name) e.Message

// ---------------------------------------------------------------------------------------------
// Generators

/// A dimension in 0..5, mostly non-empty.
let genDim =
    Gen.frequency [ 1, Gen.constant 0; 3, Gen.constant 1; 8, Gen.choose (2, 5) ]

/// A dimension in 1..5.
let genDimNonEmpty = Gen.frequency [ 2, Gen.constant 1; 8, Gen.choose (2, 5) ]

/// A shape of rank minRank..4 with dimensions from `dim`.
let genShapeWith (dim: Gen<int>) (minRank: int) =
    gen {
        let! rank = Gen.choose (minRank, 4)
        return! Gen.arrayOfLength rank dim
    }

/// A shape of rank 0..4 (dims 0..5).
let genShape = genShapeWith genDim 0

let genDType = Gen.elements [ Float32; Float64 ]

/// Values k/256 in [-16, 16]: exactly representable in float32, so both dtypes hold the same
/// numbers and sums of a few of them are exact.
let genValue = Gen.choose (-4096, 4096) |> Gen.map (fun k -> float k / 256.0)

/// Values from a small set (ties and equalities are frequent), with NaN, ±0 and ±inf.
let genSpecialValue =
    Gen.frequency
        [
            6, Gen.elements [ -1.0; 0.0; 0.5; 1.0; 2.0 ]
            1, Gen.elements [ nan; -0.0; infinity; -infinity ]
        ]

let genRefWith (value: Gen<float>) (shape: int[]) =
    Gen.arrayOfLength (countOf shape) value
    |> Gen.map (fun data -> { Shape = shape; Data = data })

let genRef (shape: int[]) = genRefWith genValue shape

/// A shape that broadcasts with `shape`: leading axes dropped, random axes set to 1.
let genBroadcastPartner (shape: int[]) =
    gen {
        let! drop = Gen.choose (0, shape.Length)
        let kept = shape[drop..]
        let! ones = Gen.arrayOfLength kept.Length (Gen.frequency [ 2, Gen.constant true; 3, Gen.constant false ])
        return Array.map2 (fun d one -> if one then 1 else d) kept ones
    }

/// Two broadcast-compatible shapes in random order: same shape, scalar, row, column and general
/// cases all occur.
let genBroadcastPair =
    gen {
        let! s = genShape
        let! mask = Gen.arrayOfLength s.Length (Gen.frequency [ 1, Gen.constant true; 4, Gen.constant false ])
        let a = Array.map2 (fun d one -> if one then 1 else d) s mask
        let! b = genBroadcastPartner s
        let! swap = Gen.elements [ true; false ]
        return if swap then b, a else a, b
    }

/// A random permutation of 0..n-1.
let genPermutation (n: int) =
    Gen.arrayOfLength n (Gen.choose (0, 1000000))
    |> Gen.map (fun keys -> Array.init n id |> Array.sortBy (fun i -> keys[i], i))

/// A random subset of the axes of a rank, sorted.
let genAxes (rank: int) =
    Gen.arrayOfLength rank (Gen.elements [ true; false ])
    |> Gen.map (fun pick -> Array.init rank id |> Array.filter (fun i -> pick[i]))

/// Runs a property over `n` generated cases; any exception is a failure (the case is printed).
let check (n: int) (g: Gen<'a>) (body: 'a -> unit) =
    Check.One(Config.QuickThrowOnFailure.WithMaxTest(n), Prop.forAll (Arb.fromGen g) body)

/// Exact equality of values, +inf matching +inf.
let assertSameValues (what: string) (expected: float[]) (actual: float[]) =
    Xunit.Assert.True(expected.Length = actual.Length, $"%s{what}: %d{actual.Length} values, expected %d{expected.Length}")

    for i in 0 .. expected.Length - 1 do
        if not (expected[i] = actual[i]) then
            Xunit.Assert.Fail($"%s{what}: element %d{i} is %.17g{actual[i]}, expected %.17g{expected[i]}")

/// Elementwise closeness: equal (also +inf), or within tol · (1 + |expected|).
let assertCloseValues (what: string) (tol: float) (expected: float[]) (actual: float[]) =
    Xunit.Assert.True(expected.Length = actual.Length, $"%s{what}: %d{actual.Length} values, expected %d{expected.Length}")

    for i in 0 .. expected.Length - 1 do
        let ok =
            expected[i] = actual[i]
            || abs (expected[i] - actual[i]) <= tol * (1.0 + abs expected[i])

        if not ok then
            Xunit.Assert.Fail($"%s{what}: element %d{i} is %.17g{actual[i]}, expected %.17g{expected[i]}")
