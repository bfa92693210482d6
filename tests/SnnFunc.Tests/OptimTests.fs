/// Optimizers against updates computed by hand in scalar Float64 code.
module SnnFunc.Tests.OptimTests

open System
open Xunit
open SnnFunc
open SnnFunc.Tests.TestUtil
open SnnFunc.Tests.SnnCheck

/// Parameters as a small pytree: a record-like tuple of two tensors.
let private ps = t64 [| 1.0; -2.0; 0.5 |] [| 3 |], t64 [| 3.0; 0.25 |] [| 2 |]
let private grads1 = t64 [| 0.1; -0.4; 2.0 |] [| 3 |], t64 [| -1.0; 0.0 |] [| 2 |]
let private grads2 = t64 [| -0.3; 0.2; 1.0 |] [| 3 |], t64 [| 0.5; 0.7 |] [| 2 |]

let private flat (a: Tensor, b: Tensor) = Array.append (values a) (values b)

/// Runs an optimizer for the given gradients; returns the updates of each step.
let private updates (tx: GradientTransformation) (gs: (Tensor * Tensor) list) =
    let mutable state = Optim.init tx ps
    let mutable p = ps

    [
        for g in gs do
            let u, s = Optim.update tx g state p
            state <- s
            p <- Optim.applyUpdates p u
            yield flat u
    ],
    p

let private g1, g2 = flat grads1, flat grads2
let private p0 = flat ps

[<Fact>]
let ``sgd: u = -lr g`` () =
    let us, p = updates (Optim.sgd 0.1) [ grads1; grads2 ]
    assertAllClose "sgd step 1" 1e-15 0.0 (g1 |> Array.map (fun g -> -0.1 * g)) us[0]
    assertAllClose "sgd step 2" 1e-15 0.0 (g2 |> Array.map (fun g -> -0.1 * g)) us[1]
    assertAllClose "sgd parameters" 1e-15 1e-16 (Array.map3 (fun p a b -> p - 0.1 * a - 0.1 * b) p0 g1 g2) (flat p)

[<Fact>]
let ``momentum: v = beta v + g, u = -lr v`` () =
    let us, _ = updates (Optim.momentum 0.1 0.9) [ grads1; grads2 ]
    assertAllClose "momentum step 1" 1e-15 0.0 (g1 |> Array.map (fun g -> -0.1 * g)) us[0]
    assertAllClose "momentum step 2" 1e-15 1e-17 (Array.map2 (fun a b -> -0.1 * (0.9 * a + b)) g1 g2) us[1]
    // Nesterov: u = -(beta v + g).
    let nesterov = Optim.chain [ Optim.traceMomentum 0.9 true; Optim.scale -1.0 ]
    let us, _ = updates nesterov [ grads1; grads2 ]
    assertAllClose "nesterov step 2" 1e-15 1e-17 (Array.map2 (fun a b -> -(0.9 * (0.9 * a + b) + b)) g1 g2) us[1]

/// Adam by hand: bias-corrected moments.
let private adamByHand (lr: float) (steps: float[] list) =
    let n = p0.Length
    let m, v = Array.zeroCreate n, Array.zeroCreate n

    [
        for t, g in List.indexed steps do
            let t = float (t + 1)

            yield
                Array.init n (fun i ->
                    m[i] <- 0.9 * m[i] + 0.1 * g[i]
                    v[i] <- 0.999 * v[i] + 0.001 * g[i] * g[i]
                    let mHat, vHat = m[i] / (1.0 - 0.9 ** t), v[i] / (1.0 - 0.999 ** t)
                    -lr * mHat / (sqrt vHat + 1e-8))
    ]

[<Fact>]
let ``adam: first step is -lr sign(g) (up to eps), later steps by hand`` () =
    let us, _ = updates (Optim.adam 0.01) [ grads1; grads2; grads1 ]
    let expected = adamByHand 0.01 [ g1; g2; g1 ]
    assertAllClose "adam step 1 = -lr g / (|g| + eps)" 1e-12 0.0 (g1 |> Array.map (fun g -> -0.01 * g / (abs g + 1e-8))) us[0]

    for k in 0..2 do
        assertAllClose $"adam step %d{k + 1}" 1e-12 1e-18 expected[k] us[k]

[<Fact>]
let ``adam: the one-pass kernel of concrete leaves equals the equations bit for bit`` () =
    // Traced leaves (under jvp) take the tensor equations, concrete ones AdamKernels; Float32 and
    // Float64 leaves of 37 elements (whole vectors and a padded tail), three steps.
    for dtype in [ Float32; Float64 ] do
        let k1, k2 = Random.split (Random.key 7L)

        let p =
            (Random.normal k1 [| 37 |]).Convert dtype, (Random.normal k2 [| 5; 3 |]).Convert dtype

        let tx = Optim.adam 1e-3
        let mutable state = Optim.init tx p

        for step in 1..3 do
            let g = fst p * float step * 0.3 - 0.1, snd p * 1.7

            let direct, next = Optim.update tx g state p

            let traced, _ =
                Ad.jvp (fun (g1: Tensor, g2: Tensor) -> fst (Optim.update tx (g1, g2) state p)) g g

            for what, (a: Tensor), (b: Tensor) in [ "leaf 1", fst direct, fst traced; "leaf 2", snd direct, snd traced ] do
                Assert.Equal(dtype, a.DType)
                Assert.Equal<float[]>(b.ToDoubleArray(), a.ToDoubleArray())

            state <- next

[<Fact>]
let ``adamw: decoupled weight decay added to Adam's direction before the learning rate`` () =
    let us, _ = updates (Optim.adamw 0.01 0.1) [ grads1; grads2 ]
    let adam = adamByHand 1.0 [ g1; g2 ]
    // Step 1 at p0; step 2 at p0 + u1.
    let u1 = Array.map2 (fun a p -> 0.01 * (a - 0.1 * p)) adam[0] p0
    assertAllClose "adamw step 1" 1e-12 1e-18 u1 us[0]
    let p1 = Array.map2 (+) p0 us[0]
    assertAllClose "adamw step 2" 1e-12 1e-18 (Array.map2 (fun a p -> 0.01 * (a - 0.1 * p)) adam[1] p1) us[1]

[<Fact>]
let ``clipByGlobalNorm rescales all leaves together, only above the limit`` () =
    let g = t64 [| 3.0 |] [| 1 |], t64 [| 0.0; 4.0 |] [| 2 |]
    let clip = Optim.clipByGlobalNorm 1.0
    let u, _ = Optim.update clip g (Optim.init clip g) g
    assertAllClose "clipped to norm 1" 1e-15 0.0 [| 0.6; 0.0; 0.8 |] (flat u)
    let u, _ = Optim.update (Optim.clipByGlobalNorm 10.0) g (Optim.init clip g) g
    assertAllClose "under the limit: unchanged" 0.0 0.0 [| 3.0; 0.0; 4.0 |] (flat u)
    let zero = t64 [| 0.0 |] [| 1 |], t64 [| 0.0; 0.0 |] [| 2 |]
    let u, _ = Optim.update clip zero (Optim.init clip zero) zero
    Assert.Equal<float[]>([| 0.0; 0.0; 0.0 |], flat u)
    assertThrowsArg [ "clipByGlobalNorm"; "maxNorm must be positive" ] (fun () -> Optim.clipByGlobalNorm 0.0)

[<Fact>]
let ``schedules: exponential decay (continuous and staircase) and cosine decay`` () =
    let e = Optim.exponentialDecay 0.1 10 0.5 false
    Assert.Equal(0.1, Optim.learningRate e 0, 15)
    Assert.Equal(0.05, Optim.learningRate e 10, 15)
    Assert.Equal(0.1 * 0.5 ** 1.5, Optim.learningRate e 15, 15)
    let s = Optim.exponentialDecay 0.1 10 0.5 true
    Assert.Equal(0.1, Optim.learningRate s 9, 15)
    Assert.Equal(0.05, Optim.learningRate s 15, 15)
    Assert.Equal(0.025, Optim.learningRate s 20, 15)
    let c = Optim.cosineDecay 1.0 100 0.1
    Assert.Equal(1.0, Optim.learningRate c 0, 15)
    Assert.Equal(0.55, Optim.learningRate c 50, 15)
    Assert.Equal(0.1 + 0.9 * 0.5 * (1.0 + cos (Math.PI * 0.25)), Optim.learningRate c 25, 15)
    Assert.Equal(0.1, Optim.learningRate c 100, 15)
    Assert.Equal(0.1, Optim.learningRate c 1000, 15)
    assertThrowsArg [ "exponentialDecay"; "transitionSteps" ] (fun () -> Optim.exponentialDecay 0.1 0 0.5 false)
    assertThrowsArg [ "cosineDecay"; "decaySteps" ] (fun () -> Optim.cosineDecay 0.1 0 0.0)
    // sgdWith follows the schedule step by step.
    let us, _ = updates (Optim.sgdWith s) (List.replicate 12 grads1)
    assertAllClose "sgd with schedule, step 11" 1e-15 0.0 (g1 |> Array.map (fun g -> -0.05 * g)) us[10]
    let us, _ = updates (Optim.adamWith c 0.9 0.999 1e-8) [ grads1; grads2 ]
    let adam = adamByHand 1.0 [ g1; g2 ]
    assertAllClose "adam with schedule, step 2" 1e-12 1e-18 (adam[1] |> Array.map (fun a -> a * Optim.learningRate c 1)) us[1]

[<Fact>]
let ``chain applies transformations in order and concatenates their states`` () =
    let tx =
        Optim.chain [ Optim.clipByGlobalNorm 1.0; Optim.traceMomentum 0.5 false; Optim.scale -2.0 ]

    Assert.Equal(3, tx.Parts)
    let state = Optim.init tx ps
    Assert.Equal(3, state.Length)
    let norm1 = sqrt (g1 |> Array.sumBy (fun g -> g * g))
    let norm2 = sqrt (g2 |> Array.sumBy (fun g -> g * g))
    let us, _ = updates tx [ grads1; grads2 ]
    let c1 = g1 |> Array.map (fun g -> g / norm1)
    let c2 = g2 |> Array.map (fun g -> g / norm2)
    assertAllClose "chain step 1" 1e-15 0.0 (c1 |> Array.map (fun c -> -2.0 * c)) us[0]
    assertAllClose "chain step 2" 1e-14 1e-17 (Array.map2 (fun a b -> -2.0 * (0.5 * a + b)) c1 c2) us[1]
    // Nested chains count their parts.
    let nested = Optim.chain [ tx; Optim.adam 0.1 ]
    Assert.Equal(5, nested.Parts)
    Assert.Equal(5, (Optim.init nested ps).Length)

    assertThrowsArg [ "Optim.chain"; "state has 2 parts, expected 3" ] (fun () ->
        tx.Update (Array.map fst (Tree.leavesWithPath grads1)) (Tree.leaves grads1) (List.take 2 state) (Tree.leaves ps))

[<Fact>]
let ``update checks the tree structure; optimizer constants are validated`` () =
    let tx = Optim.sgd 0.1
    assertThrowsArg [ "Optim.update"; "structure" ] (fun () -> Optim.update tx [ fst grads1 ] (Optim.init tx [ fst ps ]) [ fst ps; snd ps ])
    assertThrowsArg [ "adam"; "b1 must lie in [0, 1)" ] (fun () -> Optim.adamWith (Optim.constant 0.1) 1.0 0.999 1e-8)
    assertThrowsArg [ "adam"; "eps must be positive" ] (fun () -> Optim.adamWith (Optim.constant 0.1) 0.9 0.999 0.0)
    assertThrowsArg [ "momentum"; "beta" ] (fun () -> Optim.momentum 0.1 1.5)
    // The step counter is part of the state (it goes into checkpoints) and counts exactly.
    let tx = Optim.adam 0.1
    let mutable s = Optim.init tx ps

    for _ in 1..7 do
        s <- snd (Optim.update tx grads1 s ps)

    Assert.Equal(7.0, (List.head s :?> AdamState).Count.ToScalar())

/// K trees of one structure as one tree whose leaves have a leading axis of length K.
let private stack (trees: 'T list) : 'T =
    let flat = trees |> List.map Tree.flatten
    let def = snd flat.Head
    let leaves = flat |> List.map fst |> Array.ofList

    Tree.unflatten def (Array.init leaves[0].Length (fun i -> Tensor.Stack(leaves |> Array.map (fun l -> l[i]))))

/// The k-th slice along the leading axis of every leaf.
let private lane (k: int) (tree: 'T) : 'T =
    Tree.map (fun t -> t.Narrow(0, k, 1).Squeeze 0) tree

[<Fact>]
let ``an ensemble trained under vmap matches separate runs (schedules, momentum, adam, adamw, clipping)`` () =
    let k, steps = 3, 4
    let inputs = List.init k (fun i -> randn (int64 (10 + i)) [| 5; 3 |] 1.0)

    let initial =
        List.init k (fun i -> randn (int64 (20 + i)) [| 3; 2 |] 1.0, randn (int64 (30 + i)) [| 2 |] 0.1)

    let loss (x: Tensor) (w: Tensor, b: Tensor) =
        ((x.MatMul w + b).Tanh() - 0.3).Square().Sum() * (1.0 + x.Sum().Abs())

    let optimizers =
        [
            "sgd with cosine decay", Optim.sgdWith (Optim.cosineDecay 0.1 3 0.1)
            "sgd with staircase decay", Optim.sgdWith (Optim.exponentialDecay 0.1 2 0.5 true)
            "momentum", Optim.momentum 0.1 0.9
            "adam", Optim.adam 0.05
            "adamw", Optim.adamw 0.05 1e-2
            // A limit between the models' gradient norms: some lanes are clipped, some not.
            "clipByGlobalNorm + sgd", Optim.chain [ Optim.clipByGlobalNorm 6.0; Optim.sgd 0.05 ]
            "clipByGlobalNorm + adam",
            Optim.chain
                [
                    Optim.clipByGlobalNorm 6.0
                    Optim.adamWith (Optim.cosineDecay 0.05 4 0.0) 0.9 0.999 1e-8
                ]
            // Per-leaf transformations: the parameters (w, b) have the key paths "0" and "1".
            "multiTransform (adam for w, sgd with a schedule for b)",
            Optim.multiTransform
                (fun p -> if KeyPath.toName p = "0" then "w" else "b")
                (Map [ "w", Optim.adam 0.05; "b", Optim.sgdWith (Optim.cosineDecay 0.1 3 0.1) ])
            "masked momentum for w, b frozen",
            Optim.chain
                [
                    Optim.masked (fun p -> KeyPath.toName p = "1") Optim.setToZero
                    Optim.masked (fun p -> KeyPath.toName p = "0") (Optim.momentum 0.1 0.9)
                ]
        ]

    let step tx (x: Tensor) (p: Tensor * Tensor, s: OptState) =
        let g = Ad.grad (loss x) p
        let u, s' = Optim.update tx g s p
        Optim.applyUpdates p u, s'

    let firstNorms =
        List.map2
            (fun x p ->
                sqrt (
                    Tree.leaves (Ad.grad (loss x) p)
                    |> Array.sumBy (fun g -> g.Square().Sum().ToScalar())
                ))
            inputs
            initial

    Assert.True(List.min firstNorms < 6.0 && List.max firstNorms > 6.0, $"first gradient norms %A{firstNorms} do not straddle the limit 6")

    for name, tx in optimizers do
        let separate =
            List.map2
                (fun x p0 ->
                    let mutable ps = p0, Optim.init tx p0

                    for _ in 1..steps do
                        ps <- step tx x ps

                    ps)
                inputs
                initial

        let mutable ensemble = stack initial, stack (initial |> List.map (Optim.init tx))

        let xs = stack inputs

        for _ in 1..steps do
            ensemble <- Ad.vmap (fun (x, ps) -> step tx x ps) (xs, ensemble)

        for i in 0 .. k - 1 do
            let expected = Tree.leaves separate[i]
            let actual = Tree.leaves (lane i ensemble)
            Assert.Equal(expected.Length, actual.Length)

            for j in 0 .. expected.Length - 1 do
                assertTensorClose $"%s{name}: model %d{i}, leaf %d{j}" 1e-12 1e-15 expected[j] actual[j]

// Per-leaf transformations -----------------------------------------------------------------------

/// Parameters with a time constant: the weights train, the time constant is frozen or has a rate
/// of its own.
type private Net =
    { W: Tensor; B: Tensor; TauMem: Tensor }

let private net =
    {
        W = t64 [| 1.0; -2.0; 0.5 |] [| 3 |]
        B = t64 [| 0.25 |] [| 1 |]
        TauMem = t64 [| 10e-3; 20e-3 |] [| 2 |]
    }

let private netGrads =
    [
        {
            W = t64 [| 0.1; -0.4; 2.0 |] [| 3 |]
            B = t64 [| -1.0 |] [| 1 |]
            TauMem = t64 [| 0.5; -3.0 |] [| 2 |]
        }
        {
            W = t64 [| -0.3; 0.2; 1.0 |] [| 3 |]
            B = t64 [| 0.5 |] [| 1 |]
            TauMem = t64 [| 0.25; 1.5 |] [| 2 |]
        }
        {
            W = t64 [| 0.7; 0.0; -1.0 |] [| 3 |]
            B = t64 [| 2.0 |] [| 1 |]
            TauMem = t64 [| -0.5; 0.125 |] [| 2 |]
        }
    ]

let private isTau (p: KeyPath) = KeyPath.contains "TauMem" p

/// Runs an optimizer from p0 through the gradients; the updates of each step, the final parameters
/// and the final state.
let private run (tx: GradientTransformation) (p0: 'P) (gs: 'P list) =
    let mutable state = Optim.init tx p0
    let mutable p = p0

    let us =
        [
            for g in gs do
                let u, s = Optim.update tx g state p
                state <- s
                p <- Optim.applyUpdates p u
                yield u
        ]

    us, p, state

/// The state's leaves by key path name.
let private stateNames (state: OptState) =
    Tree.leavesWithPath state |> Array.map (fst >> KeyPath.toName)

/// Adam alone on the weights (W, B): what the trained subset must get.
let private adamOnWeights (lr: float) =
    let us, _, _ =
        run (Optim.adam lr) (net.W, net.B) (netGrads |> List.map (fun g -> g.W, g.B))

    us

[<Fact>]
let ``freezing a subset: its updates are exactly zero (NaN gradients too) and its parameters never move`` () =
    // A NaN gradient of the frozen leaf must not leak into the updates.
    let gs =
        netGrads
        |> List.map (fun g ->
            { g with
                TauMem = t64 [| nan; 1e30 |] [| 2 |]
            })

    let byMask =
        Optim.chain
            [
                Optim.masked isTau Optim.setToZero
                Optim.masked (isTau >> not) (Optim.adam 0.01)
            ]

    let byLabel =
        Optim.multiTransform (fun p -> if isTau p then "frozen" else "train") (Map [ "frozen", Optim.setToZero; "train", Optim.adam 0.01 ])

    let expected = adamOnWeights 0.01

    for name, tx in [ "masked", byMask; "multiTransform", byLabel ] do
        let us, p, _ = run tx net gs

        for k, u in List.indexed us do
            Assert.Equal<float[]>([| 0.0; 0.0 |], values u.TauMem)
            // The trained leaves get exactly what Adam alone on them gives.
            assertSame $"%s{name} step %d{k + 1}: W" (fst expected[k]) u.W
            assertSame $"%s{name} step %d{k + 1}: B" (snd expected[k]) u.B

        assertSame $"%s{name}: TauMem after 3 steps" net.TauMem p.TauMem
        Assert.NotEqual<float[]>(values net.W, values p.W)

    // Adam's first step by hand: -lr g / (|g| + eps).
    let us, _, _ = run byMask net gs
    let g1 = netGrads.Head.W

    assertAllClose "first step of W" 1e-12 0.0 (values g1 |> Array.map (fun g -> -0.01 * g / (abs g + 1e-8))) (values us.Head.W)

[<Fact>]
let ``multiTransform: two learning rates, each subset updated as by its optimizer alone`` () =
    let tx =
        Optim.multiTransform (fun p -> if isTau p then "tau" else "weights") (Map [ "weights", Optim.adam 0.01; "tau", Optim.sgd 1e-4 ])

    let us, _, state = run tx net netGrads
    let expected = adamOnWeights 0.01

    for k, u in List.indexed us do
        // SGD by hand for the time constant: u = -lr g.
        assertAllClose $"TauMem step %d{k + 1}" 1e-15 0.0 (values netGrads[k].TauMem |> Array.map (fun g -> -1e-4 * g)) (values u.TauMem)
        assertSame $"W step %d{k + 1}" (fst expected[k]) u.W
        assertSame $"B step %d{k + 1}" (snd expected[k]) u.B

    // One state per label, each over its own leaves, named by the parameters' paths.
    Assert.Equal<string[]>(
        [|
            "0/tau/0/Count"
            "0/weights/0/Mu/W"
            "0/weights/0/Mu/B"
            "0/weights/0/Nu/W"
            "0/weights/0/Nu/B"
            "0/weights/0/Count"
            "0/weights/1/Count"
        |],
        stateNames state
    )

    let states = List.head state :?> Map<string, OptState>
    Assert.Equal(3.0, (states["tau"].Head :?> ScheduleState).Count.ToScalar())

[<Fact>]
let ``masked adam: state only for the selected leaves, the others keep their incoming updates`` () =
    let tx = Optim.masked isTau (Optim.adam 0.1)
    let us, _, state = run tx net netGrads

    let alone, _, _ =
        run (Optim.adam 0.1) net.TauMem (netGrads |> List.map (fun g -> g.TauMem))

    for k, u in List.indexed us do
        Assert.Same(netGrads[k].W, u.W)
        Assert.Same(netGrads[k].B, u.B)
        assertSame $"TauMem step %d{k + 1}" alone[k] u.TauMem

    Assert.Equal<string[]>([| "0/Mu/TauMem"; "0/Nu/TauMem"; "0/Count"; "1/Count" |], stateNames state)
    let adam = List.head state :?> AdamState
    Assert.Equal<KeyPath[]>([| KeyPath.ofKeys [ PathKey.Field "TauMem" ] |], adam.Mu.Paths)
    // Nothing selected: no moments at all, every update passes through.
    let none = Optim.masked (fun _ -> false) (Optim.adam 0.1)
    let u, s = Optim.update none netGrads.Head (Optim.init none net) net
    Assert.Same(netGrads.Head.TauMem, u.TauMem)
    Assert.Equal<string[]>([| "0/Count"; "1/Count" |], stateNames s)

[<Fact>]
let ``multiTransform: a label without a transformation is an error naming the leaf and the label`` () =
    let tx =
        Optim.multiTransform (fun p -> if isTau p then "tau" else "weights") (Map [ "weights", Optim.sgd 0.1 ])

    assertThrowsArg [ "Optim.multiTransform"; "leaf 'TauMem'"; "label 'tau'"; "'weights'" ] (fun () -> Optim.init tx net)
    // Also at update time (a state made for other labels).
    let full =
        Optim.multiTransform (fun _ -> "weights") (Map [ "weights", Optim.sgd 0.1 ])

    assertThrowsArg [ "Optim.multiTransform"; "label 'tau'" ] (fun () -> Optim.update tx netGrads.Head (Optim.init full net) net)

[<Fact>]
let ``movingAverage: two steps against the closed form; the decay is validated`` () =
    // a2 = d^2 a0 + d (1 - d) p1 + (1 - d) p2, leaf by leaf.
    let d = 0.75
    let a1 = Optim.movingAverage d ps grads1
    let a2 = Optim.movingAverage d a1 grads2

    let expected =
        Array.map3 (fun a p q -> d * d * a + d * (1.0 - d) * p + (1.0 - d) * q) p0 g1 g2

    assertAllClose "average after two steps" 1e-15 1e-17 expected (flat a2)
    // decay 0 is the last iterate itself.
    assertAllClose "decay 0" 0.0 0.0 g2 (flat (Optim.movingAverage 0.0 ps grads2))

    for bad in [ 1.0; -0.1; nan ] do
        assertThrowsArg [ "Optim.movingAverage"; "decay" ] (fun () -> Optim.movingAverage bad ps grads1)
