/// Graph.infer, the step-by-step inference loop, against Graph.run (layer by layer over the whole
/// time axis, the fused kernels and spike products): bit for bit where run takes its sparse
/// products, to rounding on random graphs of every covered feature, equal on the graphs it hands
/// to run, under transforms (traced values take run), and with run's errors.
module SnnFunc.Tests.GraphInferTests

open System
open Xunit
open SnnFunc
open SnnFunc.Tests.AdTestUtil

let private dt = 1e-3

let private lif (vTh: float) =
    Neuron.lif
        { Snn.Lif.defaults with
            Dt = dt
            VTh = vTh
        }

let private li = Neuron.li { Snn.Li.defaults with Dt = dt }

/// 0/1 spikes [T; batch...; n] with about `density` ones, or uniform values in [-1, 1).
let private inputs (rng: Random) (shape: int[]) (density: float) (binary: bool) (dtype: DType) =
    let data =
        Array.init (Array.fold (*) 1 shape) (fun _ ->
            if binary then
                (if rng.NextDouble() < density then 1.0 else 0.0)
            elif rng.NextDouble() < density then
                2.0 * rng.NextDouble() - 1.0
            else
                0.0)

    Tensor.FromArray(data, shape).Convert dtype

let private toF64 (t: Tensor) : float[] = t.ToDoubleArray()

let private covers g p config xs =
    GraphInfer.covers (GraphCheck.analyse g) p config xs

/// Every observable and final state of `actual` equal to `expected`'s: exactly, or within rtol.
let private assertSame (what: string) (rtol: float) (expected: RunResult) (actual: RunResult) =
    Assert.Equal<string list>(List.ofSeq expected.Observed.Keys, List.ofSeq actual.Observed.Keys)

    let compare (name: string) (e: Tensor) (a: Tensor) =
        if isNull e then
            Assert.True(isNull a, $"%s{what}: %s{name} should be null")
        else
            Assert.Equal<int[]>(e.Shape, a.Shape)
            let e, a = toF64 e, toF64 a

            for k in 0 .. e.Length - 1 do
                let ok =
                    if rtol = 0.0 then
                        e[k] = a[k]
                    else
                        abs (e[k] - a[k]) <= rtol * (1.0 + abs e[k])

                if not ok then
                    Assert.Fail($"%s{what}: %s{name}[%d{k}] is %.17g{a[k]}, Graph.run gives %.17g{e[k]}")

    for KeyValue(n, o) in expected.Observed do
        let q = actual.Observed[n]
        compare $"{n}.Output" o.Output q.Output
        compare $"{n}.Spikes" o.Spikes q.Spikes
        compare $"{n}.Membrane" o.Membrane q.Membrane
        compare $"{n}.Current" o.Current q.Current

    Assert.Equal<string list>(List.ofSeq expected.Final.Keys, List.ofSeq actual.Final.Keys)

    for KeyValue(n, m) in expected.Final do
        Assert.Equal<string list>(List.ofSeq m.Keys, List.ofSeq actual.Final[n].Keys)

        for KeyValue(k, e) in m do
            compare $"final {n}.{k}" e (actual.Final[n][k])

[<Fact>]
let ``infer equals run bit for bit on a sparse Float32 network (the MNIST16 shape)`` () =
    let g =
        Graph.empty
        |> Graph.input "x" 64
        |> Graph.population "hidden" 37 (lif 0.6)
        |> Graph.population "out" 10 li
        |> Graph.connect "x" "hidden" (Projection.dense (Init.normalWith 5.0))
        |> Graph.connect "hidden" "out" (Projection.dense (Init.normalWith 2.0))

    let p = Graph.init (Random.key 3L) g
    let x = inputs (Random 1) [| 30; 20; 64 |] 0.04 true Float32
    let config = RunConfig.steps 30 dt |> RunConfig.recording [ "x"; "hidden"; "out" ]
    let expected = Graph.run g p config (Map [ "x", x ])
    let actual = Graph.infer g p config (Map [ "x", x ])
    Assert.True(covers g p config (Map [ "x", x ]), "the step loop should cover this graph")
    Assert.True((toF64 expected["hidden"].Spikes |> Array.sum) > 20.0, "the hidden layer should spike")
    assertSame "MNIST16-shaped" 0.0 expected actual

[<Fact>]
let ``infer agrees with run on random feed-forward graphs of every covered feature`` () =
    let rng = Random 7

    for draw in 1..60 do
        let pick (xs: 'a[]) = xs[rng.Next xs.Length]
        let n1, n2, n3 = rng.Next(1, 14), rng.Next(1, 11), rng.Next(1, 6)
        let reset = pick [| Snn.ToValue; Snn.BySubtraction |]

        let hidden =
            Neuron.lif
                { Snn.Lif.defaults with
                    Dt = dt
                    VTh = 0.4
                    VReset = -0.1
                    VLeak = 0.05
                    Reset = reset
                }
            |> (if rng.Next 2 = 0 then
                    Neuron.withInit "tauMem" (Init.uniform 4e-3 20e-3)
                else
                    id)
            |> (if rng.Next 2 = 0 then
                    Neuron.withInit "vTh" (Init.uniform 0.2 0.6)
                else
                    id)

        // The second population: LIF, or LI (whose membrane then feeds the readout).
        let second = if rng.Next 3 = 0 then li else lif 0.3

        let mask =
            Tensor.FromArray(Array.init (4 * n2) (fun _ -> if rng.Next 3 = 0 then 0.0 else 1.0), [| 4; n2 |])

        let binary = rng.Next 4 > 0

        let g =
            Graph.empty
            |> Graph.input "x" 6
            |> Graph.input "y" 4
            |> Graph.population "a" n1 hidden
            |> Graph.population "b" n2 second
            |> Graph.population "out" n3 li
            |> Graph.connect "x" "a" (Projection.dense (Init.normalWith 4.0))
            |> Graph.connect
                "a"
                "b"
                (Projection.dense (Init.normalWith 3.0)
                 |> Projection.withBias (Init.uniform -0.1 0.1))
            |> Graph.connect "y" "b" (Projection.sparse mask (Init.normalWith 3.0) |> Projection.excitatory)
            |> Graph.connect "b" "out" (Projection.dense (Init.normalWith 2.0))
            |> Graph.connect "x" "out" (Projection.dense (Init.normalWith 1.0))

        let p = Graph.initAs Float64 (Random.key (int64 draw)) g
        let steps = pick [| 0; 1; 5; 17 |]
        let batch = pick [| [| 3 |]; [| 2; 2 |]; [||] |]

        let shape n =
            Array.concat [ [| steps |]; batch; [| n |] ]

        let density = pick [| 0.05; 0.3; 0.8 |]

        let xs =
            Map
                [
                    "x", inputs rng (shape 6) density binary Float64
                    "y", inputs rng (shape 4) density binary Float64
                ]

        let record = pick [| None; Some [ "out" ]; Some [ "a"; "out"; "y" ] |]

        let config =
            { RunConfig.steps steps dt with
                Record = record
            }

        Assert.True(covers g p config xs, $"draw %d{draw}: the step loop should cover this graph")
        assertSame $"draw %d{draw}" 1e-12 (Graph.run g p config xs) (Graph.infer g p config xs)

[<Fact>]
let ``the graphs infer does not cover run as in Graph.run`` () =
    let rng = Random 11
    let x = inputs rng [| 12; 2; 5 |] 0.3 true Float64
    let base' = Graph.empty |> Graph.input "x" 5

    let recurrent =
        base'
        |> Graph.population "h" 6 (lif 0.3)
        |> Graph.connect "x" "h" (Projection.dense (Init.normalWith 4.0))
        |> Graph.connect "h" "h" (Projection.dense (Init.normalWith 1.0))

    let refractory =
        base'
        |> Graph.population
            "h"
            6
            (Neuron.lif
                { Snn.Lif.defaults with
                    Dt = dt
                    VTh = 0.3
                    RefractorySteps = 2
                })
        |> Graph.connect "x" "h" (Projection.dense (Init.normalWith 4.0))

    let delayed =
        base'
        |> Graph.population "h" 6 (lif 0.3)
        |> Graph.connect "x" "h" (Projection.dense (Init.normalWith 4.0) |> Projection.delayed 2)

    for name, g in [ "recurrent", recurrent; "refractory", refractory; "delayed", delayed ] do
        let p = Graph.initAs Float64 (Random.key 2L) g
        let config = RunConfig.steps 12 dt
        Assert.False(covers g p config (Map [ "x", x ]), $"%s{name}: run should take this graph")
        assertSame name 0.0 (Graph.run g p config (Map [ "x", x ])) (Graph.infer g p config (Map [ "x", x ]))

    // A run continued from a final state.
    let g =
        base'
        |> Graph.population "h" 6 (lif 0.3)
        |> Graph.connect "x" "h" (Projection.dense (Init.normalWith 4.0))

    let p = Graph.initAs Float64 (Random.key 2L) g
    let first = Graph.run g p (RunConfig.steps 12 dt) (Map [ "x", x ])
    let config = RunConfig.steps 12 dt |> RunConfig.from first.Final
    Assert.True(covers g p (RunConfig.steps 12 dt) (Map [ "x", x ]))
    Assert.False(covers g p config (Map [ "x", x ]), "a run from a state should take Graph.run")
    assertSame "continued" 0.0 (Graph.run g p config (Map [ "x", x ])) (Graph.infer g p config (Map [ "x", x ]))

[<Fact>]
let ``gradients and tangents through infer are run's (traced values take run)`` () =
    let g =
        Graph.empty
        |> Graph.input "x" 5
        |> Graph.population "h" 7 (lif 0.3)
        |> Graph.population "out" 3 li
        |> Graph.connect "x" "h" (Projection.dense (Init.normalWith 4.0))
        |> Graph.connect "h" "out" (Projection.dense (Init.normalWith 2.0))

    let p = Graph.initAs Float64 (Random.key 5L) g
    let x = inputs (Random 3) [| 15; 2; 5 |] 0.3 true Float64
    let config = RunConfig.steps 15 dt |> RunConfig.recording [ "out" ]

    let loss (run: Graph -> GraphParams -> RunConfig -> Map<string, Tensor> -> RunResult) (w: Tensor) =
        let q = p |> Map.add "h->out" (Map [ "weight", w ])
        ((run g q config (Map [ "x", x ])).["out"].Membrane ** 2.0).Sum()

    let w = p["h->out"]["weight"]
    assertClose "grad" 0.0 0.0 (Ad.grad (loss Graph.run) w) (Ad.grad (loss Graph.infer) w)
    let v = Tensor.OnesLike w
    let _, t1 = Ad.jvp (loss Graph.run) w v
    let _, t2 = Ad.jvp (loss Graph.infer) w v
    assertClose "jvp" 0.0 0.0 t1 t2
    // And the concrete value is the fast loop's, equal to run's.
    assertClose "value" 1e-12 1e-12 (loss Graph.run w) (loss Graph.infer w)

[<Fact>]
let ``infer reports run's errors`` () =
    let g =
        Graph.empty
        |> Graph.input "x" 5
        |> Graph.population "h" 4 (lif 0.3)
        |> Graph.connect "x" "h" (Projection.dense Init.normal)

    let p = Graph.initAs Float64 (Random.key 1L) g
    let bad = Tensor.Full([| 10; 2; 6 |], 0.0, Float64)

    let e =
        Assert.Throws<ArgumentException>(fun () -> Graph.infer g p (RunConfig.steps 10 dt) (Map [ "x", bad ]) |> ignore)

    Assert.Contains("the input of 'x' has shape [10; 2; 6]", e.Message)

    let e2 =
        Assert.Throws<ArgumentException>(fun () ->
            Graph.infer g p (RunConfig.steps 10 2e-3) (Map [ "x", Tensor.Full([| 10; 2; 5 |], 0.0, Float64) ])
            |> ignore)

    Assert.Contains("the population 'h' has the step", e2.Message)

[<Fact>]
let ``infer converts Float32 parameters to Float64 inputs as run does`` () =
    let g =
        Graph.empty
        |> Graph.input "x" 9
        |> Graph.population "h" 12 (lif 0.4 |> Neuron.withInit "vTh" (Init.uniform 0.3 0.5))
        |> Graph.population "out" 4 li
        |> Graph.connect "x" "h" (Projection.dense (Init.normalWith 4.0))
        |> Graph.connect "h" "out" (Projection.dense (Init.normalWith 2.0))

    let p = Graph.init (Random.key 9L) g // Float32
    let xs = Map [ "x", inputs (Random 5) [| 20; 3; 9 |] 0.2 true Float64 ]
    let config = RunConfig.steps 20 dt
    Assert.True(covers g p config xs)
    let expected = Graph.run g p config xs
    Assert.Equal(Float64, expected["out"].Membrane.DType)
    assertSame "mixed precision" 1e-12 expected (Graph.infer g p config xs)
