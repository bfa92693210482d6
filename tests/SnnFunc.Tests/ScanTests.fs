/// Ad.scan: equal to an unrolled loop in value and gradient (pytree carry, xs and ys), reverse
/// order, checkpointing (same gradient, less memory), a 10,000-step backward pass on a small stack,
/// composition with vmap/jvp, and the errors for carries that change between steps.
module SnnFunc.Tests.ScanTests

open System
open System.Threading
open Xunit
open SnnFunc
open SnnFunc.Tests.AdTestUtil

type State = { V: Tensor; I: Tensor }
type Params = { W: Tensor; Decay: Tensor }

/// A leaky-integrator step: carry is a record, xs a tuple, ys a tuple.
let private step (p: Params) (s: State) (x: Tensor, y: Tensor) =
    let i' = s.I * 0.8 + Tensor.matmul x p.W
    let v' = s.V * p.Decay + Tensor.tanh i' * 0.5 + y
    { V = v'; I = i' }, (Tensor.sigmoid v', v'.Sum())

let private unrolled (reverse: bool) (p: Params) (s0: State) (xs: Tensor, ys: Tensor) =
    let steps = xs.Shape[0]
    let outs = Array.zeroCreate steps
    let mutable s = s0

    for t in
        (if reverse then
             [ steps - 1 .. -1 .. 0 ]
         else
             [ 0 .. steps - 1 ]) do
        let x = xs.Narrow(0, t, 1).Squeeze 0
        let y = ys.Narrow(0, t, 1).Squeeze 0
        let s', o = step p s (x, y)
        outs[t] <- o
        s <- s'

    s, (Tensor.stack 0 (Array.map fst outs), Tensor.stack 0 (Array.map snd outs))

let private setup (seed: int) (steps: int) =
    let rng = Random seed

    let p =
        {
            W = randn rng [| 3; 4 |]
            Decay = uniform rng 0.5 0.9 [| 4 |]
        }

    let s0 =
        {
            V = randn rng [| 4 |]
            I = randn rng [| 4 |]
        }

    let xs = randn rng [| steps; 3 |], randn rng [| steps; 4 |]
    let c = randn rng [| steps; 4 |]
    p, s0, xs, c

/// A scalar loss of a scan's results (final carry and both outputs).
let private loss (c: Tensor) (s: State, (o: Tensor, sums: Tensor)) =
    (o * c).Sum() + (s.V * s.V).Sum() + (s.I * 0.3).Sum() + (sums * sums).Mean()

let private assertTreeClose what rtol atol (expected: 'T) (actual: 'T) =
    let e, de = Tree.flatten expected
    let a, da = Tree.flatten actual
    Assert.Equal(de, da)
    Array.iteri2 (fun i x y -> assertClose $"%s{what} leaf %d{i}" rtol atol x y) e a

[<Fact>]
let ``scan equals an unrolled loop in value and gradient, with record carry and tuple xs and ys`` () =
    for reverse in [ false; true ] do
        let p, s0, xs, c = setup 1 7

        let options =
            { ScanOptions.Default with
                Reverse = reverse
            }

        let scanned = Ad.scanWith options (step p) s0 xs
        let loop = unrolled reverse p s0 xs
        assertTreeClose $"value (reverse %b{reverse})" 1e-15 1e-15 loop scanned
        let f run (p, s0, xs) = loss c (run p s0 xs)

        let gScan =
            Ad.grad (f (fun p s0 xs -> Ad.scanWith options (step p) s0 xs)) (p, s0, xs)

        let gLoop = Ad.grad (f (unrolled reverse)) (p, s0, xs)
        assertTreeClose $"gradient (reverse %b{reverse})" 1e-13 1e-14 gLoop gScan
        // Forward mode agrees too.
        let rng = Random 2
        let dir = Tree.map (fun (t: Tensor) -> randn rng t.Shape) (p, s0, xs)

        let _, jScan =
            Ad.jvp (f (fun p s0 xs -> Ad.scanWith options (step p) s0 xs)) (p, s0, xs) dir

        let _, jLoop = Ad.jvp (f (unrolled reverse)) (p, s0, xs) dir
        assertNear "jvp" 1e-13 (jLoop.ToScalar()) (jScan.ToScalar())

[<Fact>]
let ``reverse scan runs from the last step and still stacks outputs in index order`` () =
    let xs = t64 [| 4 |] [ 1.0; 2.0; 3.0; 4.0 ]
    // carry' = 10 carry + x: forward gives 1234, reverse 4321; outputs are the carries per index.
    let run reverse =
        Ad.scanWith
            { ScanOptions.Default with
                Reverse = reverse
            }
            (fun (c: Tensor) (x: Tensor) -> let c' = c * 10.0 + x in c', c')
            (s64 0.0)
            xs

    let cF, yF = run false
    let cR, yR = run true
    Assert.Equal(1234.0, cF.ToScalar())
    Assert.Equal(4321.0, cR.ToScalar())
    assertEqualValues "forward outputs" (t64 [| 4 |] [ 1.0; 12.0; 123.0; 1234.0 ]) yF
    assertEqualValues "reverse outputs" (t64 [| 4 |] [ 4321.0; 432.0; 43.0; 4.0 ]) yR
    // d carry / d xs: 10^(steps after it) forward, 10^(steps before it) in reverse.
    assertEqualValues
        "forward grad"
        (t64 [| 4 |] [ 1000.0; 100.0; 10.0; 1.0 ])
        (Ad.grad (fun xs -> fst (Ad.scan (fun (c: Tensor) (x: Tensor) -> c * 10.0 + x, c) (s64 0.0) xs)) xs)

    assertEqualValues
        "reverse grad"
        (t64 [| 4 |] [ 1.0; 10.0; 100.0; 1000.0 ])
        (Ad.grad
            (fun xs ->
                fst (
                    Ad.scanWith
                        { ScanOptions.Default with
                            Reverse = true
                        }
                        (fun (c: Tensor) (x: Tensor) -> c * 10.0 + x, c)
                        (s64 0.0)
                        xs
                ))
            xs)

/// The step with its parameters passed through the carry (unchanged), as checkpointing requires
/// for values that are differentiated.
let private stepCarried ((p: Params), (s: State)) (x: Tensor, y: Tensor) =
    let s', o = step p s (x, y)
    (p, s'), o

[<Fact>]
let ``checkpointed scan (every 1, 3, 7 steps) has the gradient of the plain scan`` () =
    let p, s0, xs, c = setup 3 20

    let f (options: ScanOptions) (p, s0, xs) =
        let (_, s), ys = Ad.scanWith options stepCarried (p, s0) xs
        loss c (s, ys)

    for reverse in [ false; true ] do
        let plain =
            { ScanOptions.Default with
                Reverse = reverse
            }

        let v0, g0 = Ad.valueAndGrad (f plain) (p, s0, xs)

        for k in [ 1; 3; 7 ] do
            let options = { plain with CheckpointEvery = k }
            let v, g = Ad.valueAndGrad (f options) (p, s0, xs)
            Assert.Equal(v0.ToScalar(), v.ToScalar())
            assertTreeClose $"k = %d{k}, reverse %b{reverse}" 1e-13 1e-14 g0 g

[<Fact>]
let ``checkpointed scan whose step closes over a differentiated parameter gets its gradient`` () =
    // Checkpointing recomputes segments from their inputs in the backward pass; the parameters the
    // step closes over are found while a segment runs and become explicit inputs of the segment
    // (closure conversion), so they receive the same gradient as without checkpointing. (Before,
    // this failed in the backward pass with "escaped tracer ... 'grad'".)
    let p, s0, xs, c = setup 4 10

    let f (options: ScanOptions) (p: Params, s0: State) =
        loss c (Ad.scanWith options (step p) s0 xs)

    let v0, g0 = Ad.valueAndGrad (f ScanOptions.Default) (p, s0)
    Assert.Equal<int[]>([| 3; 4 |], (fst g0).W.Shape)

    for k in [ 1; 3; 4; 10 ] do
        for reverse in [ false; true ] do
            let options =
                { ScanOptions.Default with
                    CheckpointEvery = k
                    Reverse = reverse
                }

            let reference =
                Ad.grad
                    (f
                        { ScanOptions.Default with
                            Reverse = reverse
                        })
                    (p, s0)

            let v, g = Ad.valueAndGrad (f options) (p, s0)

            if not reverse then
                Assert.Equal(v0.ToScalar(), v.ToScalar())

            assertTreeClose $"closure, k = %d{k}, reverse %b{reverse}" 1e-13 1e-14 reference g

    // Forward mode and second order through the same closure.
    let options =
        { ScanOptions.Default with
            CheckpointEvery = 3
        }

    let dp = Tree.map Tensor.onesLike p
    let _, t0 = Ad.jvp (fun p -> f ScanOptions.Default (p, s0)) p dp
    let _, t = Ad.jvp (fun p -> f options (p, s0)) p dp
    assertClose "jvp through the closure" 1e-13 1e-14 t0 t
    let h0 = Ad.hvp (fun p -> f ScanOptions.Default (p, s0)) p dp
    let h = Ad.hvp (fun p -> f options (p, s0)) p dp
    assertTreeClose "hvp through the closure" 1e-12 1e-13 h0 h

[<Fact>]
let ``scan under vmap, grad of vmap of scan and vmap of grad of scan equal loops`` () =
    let p, s0, _, c = setup 5 6
    let rng = Random 6
    let batchX, batchY = randn rng [| 3; 6; 3 |], randn rng [| 3; 6; 4 |]
    let one (p: Params) (x: Tensor, y: Tensor) = loss c (Ad.scan (step p) s0 (x, y))

    let example i =
        batchX.Narrow(0, i, 1).Squeeze 0, batchY.Narrow(0, i, 1).Squeeze 0

    let values =
        Ad.vmapWith [| None; None; Some 0; Some 0 |] 0 (fun (p, xs) -> one p xs) (p, (batchX, batchY))

    for i in 0..2 do
        assertNear $"value %d{i}" 1e-14 ((one p (example i)).ToScalar()) (values.Narrow(0, i, 1).Squeeze(0).ToScalar())

    let g = Ad.grad (fun (p: Params) -> (Ad.vmap (one p) (batchX, batchY)).Sum()) p

    let expected =
        [ for i in 0..2 -> Ad.grad (fun p -> one p (example i)) p ]
        |> List.reduce (fun a b -> Tree.map2 (+) a b)

    assertTreeClose "grad of vmap" 1e-13 1e-14 expected g

    let perExample =
        Ad.vmapWith [| None; None; Some 0; Some 0 |] 0 (fun (p, xs) -> Ad.grad (fun p -> one p xs) p) (p, (batchX, batchY))

    for i in 0..2 do
        let gi = Ad.grad (fun p -> one p (example i)) p
        assertClose $"vmap of grad, W %d{i}" 1e-13 1e-14 gi.W (perExample.W.Narrow(0, i, 1).Squeeze 0)

[<Fact>]
let ``scan errors: a carry that changes shape or structure, mismatched xs lengths`` () =
    let xs = Tensor.Zeros [| 3; 2 |]

    let ex =
        Assert.Throws<InvalidOperationException>(fun () ->
            Ad.scan (fun (c: Tensor) (x: Tensor) -> Tensor.concat 0 [ c; x ], x) (Tensor.Zeros [| 2 |]) xs
            |> ignore)

    Assert.Contains("Ad.scan", ex.Message)
    Assert.Contains("carry", ex.Message)
    Assert.Contains("[2]", ex.Message)
    Assert.Contains("[4]", ex.Message)

    let ex2 =
        Assert.Throws<InvalidOperationException>(fun () ->
            Ad.scan (fun (c: Tensor list) (x: Tensor) -> x :: c, x) [ Tensor.Zeros [| 2 |] ] xs
            |> ignore)

    Assert.Contains("structure", ex2.Message)

    let ex3 =
        Assert.Throws<InvalidOperationException>(fun () ->
            Ad.scan (fun (c: Tensor) (x: Tensor) -> c.Convert Float64, x) (Tensor.Zeros [| 2 |]) xs
            |> ignore)

    Assert.Contains("float64", ex3.Message.ToLowerInvariant())

    let ex4 =
        Assert.Throws<ArgumentException>(fun () ->
            Ad.scan (fun (c: Tensor) (x: Tensor, y: Tensor) -> c, x + y) (Tensor.Zeros [| 2 |]) (xs, Tensor.Zeros [| 4; 2 |])
            |> ignore)

    Assert.Contains("steps", ex4.Message)

[<Fact>]
let ``a 10,000-step scan differentiates on a 256 KiB stack: the backward pass is iterative`` () =
    let mutable result: Choice<float * float, exn> = Choice2Of2(exn "not run")

    let work () =
        try
            // carry' = 0.9999 carry + 0.001 x: d carry_T / d carry_0 = 0.9999^T.
            let xs = Tensor.ones [| 10000; 4 |] |> Tensor.convert Float64

            let f options (c0: Tensor) =
                (fst (Ad.scanWith options (fun (c: Tensor) (x: Tensor) -> c * 0.9999 + x * 0.001, ()) c0 xs)).Sum()

            let c0 = t64 [| 4 |] [ 1.0; 2.0; 3.0; 4.0 ]
            let g = Ad.grad (f ScanOptions.Default) c0

            let gk =
                Ad.grad
                    (f
                        { ScanOptions.Default with
                            CheckpointEvery = 100
                        })
                    c0

            result <- Choice1Of2((g.ToDoubleArray()[2]), (gk.ToDoubleArray()[3]))
        with e ->
            result <- Choice2Of2 e

    let thread = Thread(work, 256 * 1024)
    thread.Start()
    thread.Join()

    match result with
    | Choice1Of2(g, gk) ->
        assertNear "plain" 1e-10 (0.9999 ** 10000.0) g
        assertNear "checkpointed" 1e-10 (0.9999 ** 10000.0) gk
    | Choice2Of2 e -> raise (Exception("the scan failed on a small stack", e))

/// Memory retained between forward and backward: measured alone (no tests in parallel).
[<Xunit.CollectionDefinition("SnnFunc.Tests.ScanMemory", DisableParallelization = true)>]
type ScanMemoryCollection() = class end

[<Xunit.Collection("SnnFunc.Tests.ScanMemory")>]
module Memory =

    /// Bytes still reachable after `forward` returns while its result (the pullback and outputs) is
    /// kept alive: the memory a reverse pass holds between its forward and backward halves.
    let private retainedBy (forward: unit -> 'T) =
        GC.Collect(2, GCCollectionMode.Forced, true, true)
        GC.WaitForPendingFinalizers()
        let before = GC.GetTotalMemory true
        let kept = forward ()
        let after = GC.GetTotalMemory true
        after - before, kept

    [<Fact>]
    let ``checkpointed scan retains far less memory between forward and backward`` () =
        // What is measured: T = 2000 steps of a carry [64] (Float64) through a step with several
        // nonlinear products. Ad.vjp runs the forward pass and returns the pullback; everything the
        // pullback keeps reachable (the tape and its residuals, i.e. the memory of backprop through
        // time) is the growth of the live heap across the call (full blocking GCs on both sides).
        // Plain scan keeps ~5 residual tensors [64] per step (O(T)); checkpointing every 45 steps keeps
        // one carry per segment (O(T/k)) and recomputes the rest in the backward pass. The outputs are
        // () so they do not count, and the test runs outside the parallel collections so other tests'
        // allocations cannot blur the measurement. The margin (checkpointed < 1/4 of plain) is wide: the
        // expected ratio is below 1/20.
        let steps = 2000
        let w = (Tensor.linspace 0.5 1.0 64).Convert Float64

        // Products only (cheap kernels); each product keeps its other operand as a residual.
        let stepF (c: Tensor) () =
            let h = (c * w) * (1.0 - c * c * 0.1) + c * c * 0.01
            h, ()

        let forward k steps () =
            let options =
                { ScanOptions.Default with
                    CheckpointEvery = k
                    Length = Some steps
                }

            let c0 = (Tensor.linspace -1.0 1.0 64).Convert Float64
            Ad.vjp (fun c0 -> (fst (Ad.scanWith options stepF c0 ())).Sum()) c0

        let run k =
            forward k 50 () |> ignore // warm up (JIT, caches)
            let retained, (_, pullback) = retainedBy (forward k steps)
            // The pullback that kept the memory alive still gives the gradient.
            retained, pullback (s64 1.0)

        let plain, gPlain = run 0
        let checkpointed, gCk = run 45
        assertClose "same gradient" 1e-12 1e-14 gPlain gCk
        // The measurement sees the tape at all: at least one residual [64] per step.
        Assert.True(plain > int64 (steps * 64 * 8), $"plain scan retained only %d{plain} bytes")
        Assert.True(checkpointed * 4L < plain, $"checkpointed scan retained %d{checkpointed} bytes, plain %d{plain}")

[<Fact>]
let ``scan over zero steps returns the initial carry and empty stacked outputs, like Fused.lif`` () =
    // Before, Ad.scan threw for zero steps while Fused.lif accepted T = 0.
    let p = { Snn.Lif.defaults with Dt = 1e-3 }
    let c = Tensor.zeros [| 0; 2; 3 |]
    let s0 = Snn.Lif.init [| 2; 3 |] Float32
    let last, (z, v) = Ad.scan (Snn.Lif.stepWithMembraneOf p) s0 c
    Assert.Equal<int[]>([| 0; 2; 3 |], z.Shape)
    Assert.Equal<int[]>([| 0; 2; 3 |], v.Shape)
    assertEqualValues "carry unchanged" s0.V last.V
    let zf, vf = Fused.lif p c
    Assert.Equal<int[]>(z.Shape, zf.Shape)
    Assert.Equal<int[]>(v.Shape, vf.Shape)
    // Outputs of a different structure and shape than the carry, and xs without leaves.
    let _, ys =
        Ad.scanWith
            { ScanOptions.Default with
                Length = Some 0
            }
            (fun (c: Tensor) () -> c, (c.Sum(), c.Unsqueeze 0))
            (Tensor.ones [| 4 |])
            ()

    Assert.Equal<int[]>([| 0 |], (fst ys).Shape)
    Assert.Equal<int[]>([| 0; 1; 4 |], (snd ys).Shape)
    // Derivatives: the carry passes through unchanged; checkpointing and reverse change nothing.
    let f (options: ScanOptions) (c0: Tensor) =
        let c, ys =
            Ad.scanWith options (fun (c: Tensor) (x: Tensor) -> c * x, c) c0 (Tensor.zeros [| 0; 3 |])

        c.Sum() + ys.Sum()

    let x = Tensor.ofArray [| 1.0f; 2.0f; 3.0f |] [| 3 |]

    for options in
        [
            ScanOptions.Default
            { ScanOptions.Default with
                CheckpointEvery = 2
            }
            { ScanOptions.Default with
                Reverse = true
            }
        ] do
        assertEqualValues "grad" (Tensor.onesLike x) (Ad.grad (f options) x)
        assertEqualValues "jvp" (Tensor.scalar 3.0) (snd (Ad.jvp (f options) x (Tensor.onesLike x)))
