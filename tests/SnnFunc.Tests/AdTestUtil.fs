/// Helpers of the automatic-differentiation tests: deterministic random Float64 tensors, inner
/// products, finite differences and tolerance asserts that print what differed.
module SnnFunc.Tests.AdTestUtil

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open SnnFunc

/// A Float64 tensor with entries uniform in [lo, hi).
let uniform (rng: Random) (lo: float) (hi: float) (shape: int[]) =
    Tensor.ofArray64 (Array.init (Shape.count shape) (fun _ -> lo + (hi - lo) * rng.NextDouble())) shape

/// A Float64 tensor with entries uniform in [-1, 1).
let randn (rng: Random) (shape: int[]) = uniform rng -1.0 1.0 shape

/// Entries of magnitude in [lo, hi) with random sign: kept away from 0 (abs, relu, sign, division).
let awayFromZero (rng: Random) (lo: float) (hi: float) (shape: int[]) =
    Tensor.ofArray64
        (Array.init (Shape.count shape) (fun _ -> (if rng.Next 2 = 0 then -1.0 else 1.0) * (lo + (hi - lo) * rng.NextDouble())))
        shape

/// Distinct entries at least ~0.08 apart (no ties for max/min/argmax).
let distinct (rng: Random) (shape: int[]) =
    let n = Shape.count shape
    let perm = Array.init n id |> Array.sortBy (fun _ -> rng.Next())

    Tensor.ofArray64
        (perm
         |> Array.map (fun p -> 0.1 * float p - 0.05 * float n + 0.01 * rng.NextDouble()))
        shape

/// Multiples of 1/64 in [-4, 4]: exactly representable in Float32 (conversions are exact).
let dyadic (rng: Random) (dtype: DType) (shape: int[]) =
    let values =
        Array.init (Shape.count shape) (fun _ -> float (rng.Next(-256, 257)) / 64.0)

    (Tensor.ofArray64 values shape).Convert dtype

/// A random shape of rank in [minRank, maxRank] with dimensions in [1, maxDim].
let randomShape (rng: Random) (minRank: int) (maxRank: int) (maxDim: int) =
    Array.init (rng.Next(minRank, maxRank + 1)) (fun _ -> rng.Next(1, maxDim + 1))

/// A shape that broadcasts to `shape`: a random suffix of it with some dimensions set to 1.
let broadcastableTo (rng: Random) (shape: int[]) =
    let keep = rng.Next(0, shape.Length + 1)

    shape[shape.Length - keep ..]
    |> Array.map (fun d -> if rng.Next 3 = 0 then 1 else d)

let values (t: Tensor) = t.ToDoubleArray()

/// Σ a_i b_i of two tensors of the same shape.
let dot (a: Tensor) (b: Tensor) =
    Assert.Equal<int[]>(a.Shape, b.Shape)
    Array.fold2 (fun acc x y -> acc + x * y) 0.0 (values a) (values b)

/// Σ |a_i b_i|: the scale against which a dot product's rounding error is measured.
let absDot (a: Tensor) (b: Tensor) =
    Array.fold2 (fun acc x y -> acc + abs (x * y)) 0.0 (values a) (values b)

/// Sum of dots over matching arrays of tensors.
let dotAll (a: Tensor[]) (b: Tensor[]) =
    Array.fold2 (fun acc x y -> acc + dot x y) 0.0 a b

let absDotAll (a: Tensor[]) (b: Tensor[]) =
    Array.fold2 (fun acc x y -> acc + absDot x y) 0.0 a b

let maxAbs (t: Tensor) =
    values t |> Array.fold (fun m v -> max m (abs v)) 0.0

/// Asserts same shape and |a - e| <= atol + rtol |e| elementwise; the message names what differed.
let assertClose (what: string) (rtol: float) (atol: float) (expected: Tensor) (actual: Tensor) =
    Assert.True(expected.Shape = actual.Shape, $"%s{what}: shape %s{Shape.format actual.Shape}, expected %s{Shape.format expected.Shape}")

    let e, a = values expected, values actual

    for i in 0 .. e.Length - 1 do
        if not (abs (a[i] - e[i]) <= atol + rtol * abs e[i]) then
            Assert.Fail($"%s{what}: element %d{i} is %.17g{a[i]}, expected %.17g{e[i]} (rtol %g{rtol}, atol %g{atol})")

/// Same as assertClose for scalars.
let assertNear (what: string) (tol: float) (expected: float) (actual: float) =
    Assert.True(abs (actual - expected) <= tol * (1.0 + abs expected), $"%s{what}: got %.17g{actual}, expected %.17g{expected}")

/// Asserts that the values are exactly equal (same shape and bits of value).
let assertEqualValues (what: string) (expected: Tensor) (actual: Tensor) =
    assertClose what 0.0 0.0 expected actual

/// Builds a tensor from F# values.
let t64 (shape: int[]) (data: float list) =
    Tensor.ofArray64 (Array.ofList data) shape

let s64 (v: float) = Tensor.Scalar(v, Float64)

/// Central finite difference (f(x + h v) - f(x - h v)) / 2h over arrays of inputs.
let centralDifference (f: Tensor[] -> Tensor) (xs: Tensor[]) (vs: Tensor[]) (h: float) =
    let shifted (sign: float) =
        Array.map2 (fun (x: Tensor) (v: Tensor) -> x + v * (sign * h)) xs vs

    (f (shifted 1.0) - f (shifted -1.0)) / (2.0 * h)

/// The dot-product test <vjp(u), v> = <u, jvp(v)> at xs, with random u, v: exact up to rounding.
/// Returns the output tangent jvp(v) for further checks.
let dotProductTest (what: string) (rng: Random) (f: Tensor[] -> Tensor) (xs: Tensor[]) (rtol: float) =
    let y, pullback = Ad.vjp f xs
    let u = randn rng y.Shape |> Tensor.convert y.DType
    let vs = xs |> Array.map (fun x -> randn rng x.Shape |> Tensor.convert x.DType)
    let y2, jv = Ad.jvp f xs vs
    assertClose $"%s{what}: jvp primal = vjp primal" 0.0 0.0 y y2
    let ct = pullback u
    Assert.Equal(xs.Length, ct.Length)

    for i in 0 .. xs.Length - 1 do
        Assert.True(
            ct[i].Shape = xs[i].Shape,
            $"%s{what}: cotangent %d{i} has shape %s{Shape.format ct[i].Shape}, expected %s{Shape.format xs[i].Shape}"
        )

    let lhs = dotAll ct vs
    let rhs = dot u jv
    // Rounding scale: the magnitudes summed, plus a floor for derivatives that vanish analytically
    // (e.g. sum of a softmax) and are pure rounding noise.
    let norm (ts: Tensor[]) = sqrt (dotAll ts ts)
    let scale = max (absDotAll ct vs) (absDot u jv) + 1e-4 * norm [| u |] * norm vs
    Assert.True(abs (lhs - rhs) <= rtol * scale, $"%s{what}: <vjp(u), v> = %.17g{lhs} but <u, jvp(v)> = %.17g{rhs} (scale %g{scale})")
    vs, jv

/// Checks jvp against a central finite difference (step h) in a random direction.
let finiteDifferenceTestWith (h: float) (rtol: float) (what: string) (rng: Random) (f: Tensor[] -> Tensor) (xs: Tensor[]) =
    let vs = xs |> Array.map (fun x -> randn rng x.Shape |> Tensor.convert x.DType)
    let _, jv = Ad.jvp f xs vs
    let fd = centralDifference f xs vs h
    let tol = rtol * (1.0 + maxAbs jv)
    assertClose $"%s{what}: jvp vs central difference" 0.0 tol fd jv

/// Checks jvp against a central finite difference in Float64 (h = 1e-5, tolerance 1e-6).
let finiteDifferenceTest what rng f xs =
    finiteDifferenceTestWith 1e-5 1e-6 what rng f xs

/// Runs an FsCheck property over random seeds; each seed drives a System.Random.
/// Setting ADTEST_SEED replays one seed (as printed in a failure) in every property instead.
let forAllSeeds (maxTest: int) (property: int -> unit) =
    match Environment.GetEnvironmentVariable "ADTEST_SEED" with
    | null
    | "" ->
        let arb = Arb.fromGen (Gen.choose (0, Int32.MaxValue - 1))
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(maxTest), Prop.forAll arb property)
    | seed -> property (int seed)
