/// The DelayedXor sample: its task generator (deterministic, balanced, cues where the layout says,
/// silence elsewhere), its network (the ablations change the graph and the learned parameters) and
/// a short training run whose loss falls.
module SnnFunc.Tests.DelayedXorTests

open Xunit
open SnnFunc
open DelayedXorTask

let private layout =
    {
        InputsPerCue = 3
        Delay = 12
        Gap = 4
        Window = 3
        Jitter = 2
        Noise = 0.0
    }

/// The spike of trial n, step t, input k.
let private at (d: Trials) n t k =
    let l = d.Layout
    d.Spikes[(n * steps l + t) * inputs l + k]

[<Fact>]
let ``the generator is deterministic, balanced and puts the cues where the layout says`` () =
    let key = Random.key 5L
    let a = generate layout key 103
    let b = generate layout key 103
    Assert.Equal<float32[]>(a.Spikes, b.Spikes)
    Assert.Equal<int[]>(a.Labels, b.Labels)
    Assert.Equal<int[]>(a.FirstAt, b.FirstAt)
    // Another key, other trials.
    let c = generate layout (Random.foldIn key 1) 103
    Assert.NotEqual<int[]>(a.Labels, c.Labels)
    // Balanced: each cue pair 103 / 4 times, rounded; the classes within one trial.
    let pairs =
        Array.map2 (fun f s -> f, s) a.First a.Second |> Array.countBy id |> Map.ofArray

    Assert.Equal(4, pairs.Count)

    for KeyValue(_, n) in pairs do
        Assert.True(n = 25 || n = 26, $"a cue pair occurs %d{n} times")

    let ones = a.Labels |> Array.sum
    Assert.True(abs (2 * ones - a.Count) <= 1, $"%d{ones} of %d{a.Count} trials differ")
    Assert.Equal<int[]>(Array.map2 (^^^) a.First a.Second, a.Labels)
    // Shuffled: not in the pair order i mod 4.
    Assert.NotEqual<int[]>(Array.init 103 (fun i -> (i % 4 / 2) ^^^ (i % 2)), a.Labels)
    // Without noise, exactly the cues: every neuron of the cue's group at its onset, nothing else.
    Assert.Equal(1 + 2 * 2 + 12 + 4 + 3, steps layout)
    let t, k = steps layout, inputs layout

    for n in 0 .. a.Count - 1 do
        Assert.InRange(a.FirstAt[n], 1, 1 + 2 * layout.Jitter)
        Assert.InRange(a.SecondAt[n], 1 + layout.Delay, 1 + 2 * layout.Jitter + layout.Delay)
        Assert.True(a.SecondAt[n] + layout.Gap <= windowStart layout)

        for s in 0 .. t - 1 do
            for j in 0 .. k - 1 do
                let group = j / layout.InputsPerCue

                let expected =
                    (s = a.FirstAt[n] && group = a.First[n])
                    || (s = a.SecondAt[n] && group = a.Second[n])

                Assert.Equal((if expected then 1.0f else 0.0f), at a n s j)
    // The jitter reaches both ends of its range.
    Assert.Equal(1, Array.min a.FirstAt)
    Assert.Equal(1 + 2 * layout.Jitter, Array.max a.FirstAt)
    // Noise: about rate · dt per step and neuron, on top of the cues.
    let noisy = generate { layout with Noise = 50.0; Delay = 40 } key 400

    let l = noisy.Layout
    let cues = 2 * l.InputsPerCue * noisy.Count
    let total = noisy.Spikes |> Array.sumBy float
    let expectedNoise = 50.0 * dt * float (noisy.Spikes.Length - cues)
    Assert.InRange(total - float cues, 0.9 * expectedNoise, 1.1 * expectedNoise)
    // A batch is time-major [T; B; 2K] with the trials in the order asked.
    let x, labels = batch a [| 7; 2 |]
    Assert.Equal<int[]>([| t; 2; k |], x.Shape)
    Assert.Equal<int[]>([| a.Labels[7]; a.Labels[2] |], labels)
    let xs = x.ToArray()

    for s in 0 .. t - 1 do
        for j in 0 .. k - 1 do
            Assert.Equal(at a 7 s j, xs[(s * 2) * k + j])
            Assert.Equal(at a 2 s j, xs[(s * 2 + 1) * k + j])

    Assert.Equal(1.0f, xs[(a.FirstAt[2] * 2 + 1) * k + a.First[2] * 3])
    // The splits of a seed differ from each other and are reproducible.
    let tr, te = splits layout 3L 64 64
    let tr2, _ = splits layout 3L 64 64
    Assert.Equal<float32[]>(tr.Spikes, tr2.Spikes)
    Assert.NotEqual<float32[]>(tr.Spikes, te.Spikes)

let private small: DelayedXorOptions.Settings =
    { DelayedXorOptions.defaults with
        Epochs = 8
        BatchSize = 32
        Hidden = 16
        InputsPerCue = 4
        Delay = 15
        Gap = 5
        Window = 5
        Jitter = 1
        TrainCount = 256
        TestCount = 64
        LearningRate = 0.02
    }

[<Fact>]
let ``the ablations change the graph and what learns: no recurrent edge, no delay parameter, frozen time constants`` () =
    let names (s: DelayedXorOptions.Settings) =
        (DelayedXorNet.graph s).Nodes |> List.map fst

    Assert.Contains("h->h", names small)

    Assert.DoesNotContain("h->h", names { small with Recurrence = false })

    let learned (s: DelayedXorOptions.Settings) =
        let l, _ = DelayedXorNet.split s (DelayedXorNet.init s (Random.key 0L))
        Tree.leavesWithPath l |> Array.map (fst >> KeyPath.toName) |> Set.ofArray

    Assert.Equal<Set<string>>(
        set
            [
                "h/tauMem"
                "x-%3Eh/weight"
                "x-%3Eh/delay"
                "h-%3Eh/weight"
                "h-%3Eout/weight"
            ],
        learned small
    )

    Assert.Equal<Set<string>>(
        set [ "x-%3Eh/weight"; "h-%3Eout/weight" ],
        learned
            { small with
                Recurrence = false
                Delays = false
                TauLearningRate = 0.0
            }
    )
    // Delays start spread over the trial, per input neuron; time constants per neuron in [5, 20) ms.
    let p = DelayedXorNet.init small (Random.key 0L)
    let d = p["x->h"].["delay"].ToDoubleArray()
    Assert.Equal(8, d.Length)
    Assert.True(d |> Array.forall (fun v -> v >= 0.0 && v <= float (steps (layoutOf small))))
    Assert.True(Array.max d - Array.min d > 5.0)
    let taus = p["h"].["tauMem"].ToDoubleArray()
    Assert.Equal(16, taus.Length)
    Assert.True(taus |> Array.forall (fun v -> v >= 5e-3 && v < 20e-3))

[<Fact>]
let ``a short training run lowers the loss and moves the time constants and delays`` () =
    let l = layoutOf small
    let train, test = splits l small.Seed small.TrainCount small.TestCount
    let before = DelayedXorNet.initial small
    let o = DelayedXorNet.train small train test ignore
    Assert.Equal(small.Epochs, o.Losses.Length)
    Assert.True(o.Losses |> List.forall System.Double.IsFinite)

    Assert.True(List.last o.Losses < 0.9 * List.head o.Losses, $"the loss falls: %A{o.Losses}")

    Assert.InRange(o.TestAccuracy, 0.0, 1.0)

    let moved (node: string) (name: string) =
        (o.Parameters[node].[name] - before[node].[name]).Abs().Max().ToScalar()

    Assert.True(moved "h" "tauMem" > 1e-5, "the time constants learn")
    Assert.True(moved "x->h" "delay" > 1e-2, "the delays learn")
    Assert.Equal(0.0, moved "h" "vTh")
    Assert.Equal(0.0, moved "out" "tauMem")
