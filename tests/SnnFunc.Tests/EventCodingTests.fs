/// Event buffers built, converted, encoded and decoded (EventBuffer module), event losses and
/// event data sets: against naive references written here, gradients by hand and by finite
/// differences in Float64, under grad, jvp and vmap, and their errors.
module SnnFunc.Tests.EventCodingTests

open System
open Xunit
open SnnFunc
open SnnFunc.Data
open SnnFunc.Tests.TestUtil
open SnnFunc.Tests.AdTestUtil

let private inf = Double.PositiveInfinity
let private nan = Double.NaN

/// Exact equality of values, +inf matching +inf.
let private assertSameValues (what: string) (expected: float[]) (actual: float[]) =
    Assert.True(expected.Length = actual.Length, $"%s{what}: %d{actual.Length} values, expected %d{expected.Length}")

    for i in 0 .. expected.Length - 1 do
        if not (expected[i] = actual[i]) then
            Assert.Fail($"%s{what}: element %d{i} is %.17g{actual[i]}, expected %.17g{expected[i]}")

let private assertCloseValues (what: string) (tol: float) (expected: float[]) (actual: float[]) =
    Assert.True(expected.Length = actual.Length, $"%s{what}: %d{actual.Length} values, expected %d{expected.Length}")

    for i in 0 .. expected.Length - 1 do
        let ok =
            expected[i] = actual[i]
            || abs (expected[i] - actual[i]) <= tol * (1.0 + abs expected[i])

        if not ok then
            Assert.Fail($"%s{what}: element %d{i} is %.17g{actual[i]}, expected %.17g{expected[i]}")

let private ints (shape: int[]) (data: int[]) = Tensor.FromArray(data, shape)

/// Random events [batch; m]: times on a coarse grid (so ties happen), neurons in [-1, n), some
/// times +inf.
let private randomEvents (rng: Random) (batch: int[]) (m: int) (n: int) =
    let count = Shape.count batch * m

    let times =
        Array.init count (fun _ -> if rng.Next 8 = 0 then inf else float (rng.Next 6) * 0.25)

    let neurons = Array.init count (fun _ -> rng.Next(-1, n))
    let shape = Array.append batch [| m |]
    Tensor.FromArray(times, shape), ints shape neurons

/// The reference of ofTimes per flat sample: present events sorted by (time, neuron, position),
/// the first `capacity` kept, and the number held and lost.
let private referenceSort (capacity: int) (m: int) (times: float[]) (neurons: int[]) (s: int) =
    let events =
        [
            for k in 0 .. m - 1 do
                let t, i = times[s * m + k], neurons[s * m + k]

                if i >= 0 && not (Double.IsPositiveInfinity t) then
                    yield t, i, k
        ]
        |> List.sort

    let kept = events |> List.truncate capacity
    kept, events.Length - kept.Length

let private checkAgainstReference (capacity: int) (m: int) (times: Tensor) (neurons: Tensor) (b: EventBuffer) =
    let ts, ns = times.ToDoubleArray(), neurons.ToInt32Array()
    let bt, bn = b.Times.ToDoubleArray(), b.Neurons.ToInt32Array()
    let counts, overflow = b.Count.ToInt32Array(), b.Overflow.ToInt32Array()

    for s in 0 .. counts.Length - 1 do
        let kept, lost = referenceSort capacity m ts ns s
        Assert.Equal(kept.Length, counts[s])
        Assert.Equal(lost, overflow[s])

        for k in 0 .. capacity - 1 do
            match List.tryItem k kept with
            | Some(t, i, _) ->
                Assert.Equal(t, bt[s * capacity + k])
                Assert.Equal(i, bn[s * capacity + k])
            | None ->
                Assert.Equal(inf, bt[s * capacity + k])
                Assert.Equal(-1, bn[s * capacity + k])

// ---------------------------------------------------------------------------------------------
// Building

[<Fact>]
let ``ofEvents sorts by time then neuron and keeps the earliest events`` () =
    let b =
        EventBuffer.ofEvents Float64 [| 3 |] 4 [| [| 0.3, 1; 0.1, 2; 0.1, 0; 0.2, 1; 0.5, 2 |]; [||]; [| 0.0, 2 |] |]

    assertSameValues "times" [| 0.1; 0.1; 0.2; 0.3; inf; inf; inf; inf; 0.0; inf; inf; inf |] (b.Times.ToDoubleArray())
    Assert.Equal<int[]>([| 0; 2; 1; 1; -1; -1; -1; -1; 2; -1; -1; -1 |], b.Neurons.ToInt32Array())
    Assert.Equal<int[]>([| 4; 0; 1 |], b.Count.ToInt32Array())
    Assert.Equal<int[]>([| 1; 0; 0 |], b.Overflow.ToInt32Array())
    Assert.Equal<int[]>([| 3 |], b.Shape)
    Assert.Equal<(float * int)[][]>([| [| 0.1, 0; 0.1, 2; 0.2, 1; 0.3, 1 |]; [||]; [| 0.0, 2 |] |], EventBuffer.toEvents b)

[<Fact>]
let ``ofTimes equals a naive sort for any batch shape, ties and capacity`` () =
    forAllSeeds 20 (fun seed ->
        let rng = Random seed
        let batch = [| rng.Next(1, 3); rng.Next(1, 4) |]
        let m = rng.Next(1, 9)
        let capacity = rng.Next(0, 10)
        let times, neurons = randomEvents rng batch m 4
        let b = EventBuffer.ofTimes [| 2; 2 |] capacity times neurons
        Assert.Equal<int[]>(Array.append batch [| capacity |], b.Times.Shape)
        Assert.Equal<int[]>(batch, b.Count.Shape)
        checkAgainstReference capacity m times neurons b)

[<Fact>]
let ``ofTimes under vmap equals ofTimes on the batch`` () =
    let rng = Random 7
    let times, neurons = randomEvents rng [| 4 |] 6 3
    let whole = EventBuffer.ofTimes [| 3 |] 5 times neurons

    let mapped =
        Ad.vmap (fun (tn: Tensor[]) -> EventBuffer.ofTimes [| 3 |] 5 tn[0] tn[1]) [| times; neurons |]

    assertSameValues "times" (whole.Times.ToDoubleArray()) (mapped.Times.ToDoubleArray())
    Assert.Equal<int[]>(whole.Neurons.ToInt32Array(), mapped.Neurons.ToInt32Array())
    Assert.Equal<int[]>(whole.Count.ToInt32Array(), mapped.Count.ToInt32Array())
    Assert.Equal<int[]>(whole.Overflow.ToInt32Array(), mapped.Overflow.ToInt32Array())

[<Fact>]
let ``ofTimes passes gradients to the input times through the sort`` () =
    let times = t64 [| 1; 4 |] [ 0.4; 0.1; 0.3; 0.2 ]
    let neurons = ints [| 1; 4 |] [| 0; 1; 2; 3 |]
    // Capacity 3 keeps 0.1, 0.2, 0.3; weight the slots 1, 10, 100.
    let w = t64 [| 1; 3 |] [ 1.0; 10.0; 100.0 ]

    let g =
        Ad.grad (fun (t: Tensor) -> ((EventBuffer.ofTimes [| 4 |] 3 t neurons).Times * w).Sum()) times

    assertSameValues "d/dt" [| 0.0; 1.0; 100.0; 10.0 |] (g.ToDoubleArray())

[<Fact>]
let ``ofTimes, ofEvents and empty reject bad input with the operation and the value`` () =
    let t = t64 [| 1; 2 |] [ 0.1; 0.2 ]
    assertThrowsArg [ "EventBuffer.ofTimes"; "index 5"; "[0, 3)" ] (fun () -> EventBuffer.ofTimes [| 3 |] 2 t (ints [| 1; 2 |] [| 0; 5 |]))
    assertThrowsArg [ "EventBuffer.ofTimes"; "index -2" ] (fun () -> EventBuffer.ofTimes [| 3 |] 2 t (ints [| 1; 2 |] [| -2; 0 |]))

    assertThrowsArg [ "EventBuffer.ofTimes"; "finite and >= 0"; "-0.5" ] (fun () ->
        EventBuffer.ofTimes [| 3 |] 2 (t64 [| 1; 2 |] [ -0.5; 0.2 ]) (ints [| 1; 2 |] [| 0; 1 |]))

    assertThrowsArg [ "EventBuffer.ofTimes"; "NaN" ] (fun () ->
        EventBuffer.ofTimes [| 3 |] 2 (t64 [| 1; 2 |] [ nan; 0.2 ]) (ints [| 1; 2 |] [| 0; 1 |]))

    assertThrowsArg [ "EventBuffer.ofTimes"; "[1; 2]"; "[2]" ] (fun () -> EventBuffer.ofTimes [| 3 |] 2 t (ints [| 2 |] [| 0; 1 |]))
    assertThrowsArg [ "EventBuffer.ofTimes"; "Int32" ] (fun () -> EventBuffer.ofTimes [| 3 |] 2 t t)
    assertThrowsArg [ "EventBuffer.ofTimes"; "capacity"; "-1" ] (fun () -> EventBuffer.ofTimes [| 3 |] -1 t (ints [| 1; 2 |] [| 0; 1 |]))

    assertThrowsArg [ "EventBuffer.ofTimes"; "positive dimensions" ] (fun () ->
        EventBuffer.ofTimes [| 0 |] 2 t (ints [| 1; 2 |] [| 0; 1 |]))

    assertThrowsArg [ "EventBuffer.ofEvents"; "index 3" ] (fun () -> EventBuffer.ofEvents Float32 [| 3 |] 2 [| [| 0.1, 3 |] |])
    assertThrowsArg [ "EventBuffer.empty"; "int32" ] (fun () -> EventBuffer.empty DType.Int32 [| 3 |] [| 2 |] 4)

    // +inf is "no event" and is allowed, whatever its neuron.
    let b =
        EventBuffer.ofTimes [| 3 |] 2 (t64 [| 1; 2 |] [ inf; 0.2 ]) (ints [| 1; 2 |] [| 0; 1 |])

    Assert.Equal<int[]>([| 1 |], b.Count.ToInt32Array())

[<Fact>]
let ``empty has no events`` () =
    let b = EventBuffer.empty Float32 [| 2; 3 |] [| 4 |] 5
    Assert.Equal<int[]>([| 4; 5 |], b.Times.Shape)
    Assert.True(b.Times.ToDoubleArray() |> Array.forall Double.IsPositiveInfinity)
    Assert.True(b.Neurons.ToInt32Array() |> Array.forall ((=) -1))
    Assert.Equal<int[]>([| 0; 0; 0; 0 |], b.Count.ToInt32Array())
    assertSameValues "first" (Array.create 24 inf) ((EventBuffer.firstSpikeTimes b).ToDoubleArray())

// ---------------------------------------------------------------------------------------------
// Dense conversion

[<Fact>]
let ``toDense of ofDense gives the spike counts back`` () =
    forAllSeeds 10 (fun seed ->
        let rng = Random seed
        let shape = [| rng.Next(1, 6); rng.Next(1, 4); 2; rng.Next(1, 3) |]

        let counts =
            Array.init (Shape.count shape) (fun _ -> if rng.Next 3 = 0 then float (rng.Next(1, 3)) else 0.0)

        let spikes = Tensor.FromArray(counts, shape)
        let dt = 1e-3
        let b = EventBuffer.ofDense spikes dt 64
        Assert.Equal<int[]>(shape[2..], b.Shape)
        Assert.True(b.Overflow.ToInt32Array() |> Array.forall ((=) 0))
        assertSameValues "round trip" counts ((EventBuffer.toDense b shape[0] dt).ToDoubleArray())

        // The times are k · dt, sorted.
        for row in EventBuffer.toEvents b do
            for t, _ in row do
                Assert.Equal(Math.Round(t / dt) * dt, t)

            Assert.True(row |> Array.pairwise |> Array.forall (fun (a, c) -> a <= c)))

[<Fact>]
let ``ofDense counts what does not fit and keeps the earliest`` () =
    // [T = 3; B = 1; N = 2]: step 0 neuron 1, step 1 neurons 0 and 1 (twice), step 2 neuron 0.
    let spikes = t64 [| 3; 1; 2 |] [ 0.0; 1.0; 1.0; 2.0; 1.0; 0.0 ]
    let b = EventBuffer.ofDense spikes 0.5 3
    Assert.Equal<(float * int)[][]>([| [| 0.0, 1; 0.5, 0; 0.5, 1 |] |], EventBuffer.toEvents b)
    Assert.Equal<int[]>([| 2 |], b.Overflow.ToInt32Array())

    assertThrowsArg [ "EventBuffer.ofDense"; "non-negative integers"; "0.5" ] (fun () ->
        EventBuffer.ofDense (t64 [| 1; 1; 1 |] [ 0.5 ]) 1.0 2)

    assertThrowsArg [ "EventBuffer.ofDense"; "[T; B; N...]" ] (fun () -> EventBuffer.ofDense (t64 [| 2; 1 |] [ 1.0; 0.0 ]) 1.0 2)
    assertThrowsArg [ "EventBuffer.ofDense"; "dt" ] (fun () -> EventBuffer.ofDense spikes 0.0 2)

[<Fact>]
let ``toDense bins to the nearest step and rejects events past the window`` () =
    let b =
        EventBuffer.ofEvents Float64 [| 2 |] 4 [| [| 0.0014, 0; 0.0016, 1; 0.0029, 1 |] |]
    // Steps of 1 ms: 1.4 ms -> step 1, 1.6 ms -> step 2, 2.9 ms -> step 3.
    let d = EventBuffer.toDense b 4 1e-3
    Assert.Equal<int[]>([| 4; 1; 2 |], d.Shape)
    assertSameValues "binned" [| 0.0; 0.0; 1.0; 0.0; 0.0; 1.0; 0.0; 1.0 |] (d.ToDoubleArray())
    assertThrowsArg [ "EventBuffer.toDense"; "sample [0]"; "step 3"; "3 steps" ] (fun () -> EventBuffer.toDense b 3 1e-3)

// ---------------------------------------------------------------------------------------------
// Decoders

/// The reference first-spike times and counts of a buffer, per flat sample and neuron.
let private referenceDecode (b: EventBuffer) =
    let n = Shape.count b.Shape
    let cap = b.Capacity
    let ts, ns = b.Times.ToDoubleArray(), b.Neurons.ToInt32Array()
    let rows = ts.Length / max 1 cap
    let first = Array.create (rows * n) inf
    let counts = Array.zeroCreate<float> (rows * n)
    let firstSlot = Array.create (rows * n) -1

    for s in 0 .. rows - 1 do
        for k in 0 .. cap - 1 do
            let i = ns[s * cap + k]

            if i >= 0 then
                counts[s * n + i] <- counts[s * n + i] + 1.0

                if ts[s * cap + k] < first[s * n + i] then
                    first[s * n + i] <- ts[s * cap + k]
                    firstSlot[s * n + i] <- s * cap + k

    first, counts, firstSlot

[<Fact>]
let ``firstSpikeTimes and spikeCounts equal a naive reference, silent neurons at +inf`` () =
    forAllSeeds 20 (fun seed ->
        let rng = Random seed
        let batch = [| rng.Next(1, 3); rng.Next(1, 3) |]
        let times, neurons = randomEvents rng batch (rng.Next(1, 10)) 5
        let b = EventBuffer.ofTimes [| 5 |] (rng.Next(1, 8)) times neurons
        let first, counts, _ = referenceDecode b
        let f = EventBuffer.firstSpikeTimes b
        Assert.Equal<int[]>(Array.append batch [| 5 |], f.Shape)
        assertSameValues "first" first (f.ToDoubleArray())
        assertSameValues "counts" counts ((EventBuffer.spikeCounts b).ToDoubleArray()))

[<Fact>]
let ``firstSpikeTimes takes the earliest event even when the slots are not in time order`` () =
    let b = EventBuffer.ofEvents Float64 [| 2 |] 4 [| [| 0.1, 0; 0.2, 0; 0.3, 1 |] |]
    let shuffled = b.WithTimes(t64 [| 1; 4 |] [ 0.5; 0.2; 0.3; inf ])
    assertSameValues "first" [| 0.2; 0.3 |] ((EventBuffer.firstSpikeTimes shuffled).ToDoubleArray())

/// A buffer with repeated and silent neurons: sample 0 has neuron 1 three times and neuron 0 twice,
/// neurons 2 and 3 silent; sample 1 only neuron 3.
let private repeatedBuffer () =
    EventBuffer.ofEvents Float64 [| 4 |] 6 [| [| 0.1, 1; 0.15, 0; 0.2, 1; 0.25, 0; 0.3, 1 |]; [| 0.05, 3 |] |]

/// Σ w · first over the neurons that spike (silent ones masked by a constant mask).
let private weightedFirst (b: EventBuffer) (w: Tensor) (times: Tensor) =
    let f = EventBuffer.firstSpikeTimes (b.WithTimes times)
    let spiking = Ad.stopGradient (f.Lt 1e30)
    Tensor.Where(spiking, f * w, Tensor.ZerosLike f).Sum()

[<Fact>]
let ``firstSpikeTimes' gradient reaches each neuron's first event only and is never NaN`` () =
    let b = repeatedBuffer ()
    let w = t64 [| 2; 4 |] [ 1.0; 2.0; 3.0; 4.0; 5.0; 6.0; 7.0; 8.0 ]
    let g = Ad.grad (weightedFirst b w) b.Times
    // Sample 0 slots: 0.1 (n1), 0.15 (n0), 0.2, 0.25, 0.3, empty; sample 1: 0.05 (n3), empties.
    assertSameValues "gradient" [| 2.0; 1.0; 0.0; 0.0; 0.0; 0.0; 8.0; 0.0; 0.0; 0.0; 0.0; 0.0 |] (g.ToDoubleArray())

    // The plain sum (with +inf entries in the output) still gives a finite gradient.
    let g2 =
        Ad.grad (fun (t: Tensor) -> (EventBuffer.firstSpikeTimes (b.WithTimes t)).Sum()) b.Times

    assertSameValues "gradient of the sum" [| 1.0; 1.0; 0.0; 0.0; 0.0; 0.0; 1.0; 0.0; 0.0; 0.0; 0.0; 0.0 |] (g2.ToDoubleArray())

[<Fact>]
let ``firstSpikeTimes under jvp and vmap equals the batched result and the first-slot tangents`` () =
    let b = repeatedBuffer ()

    let tangent =
        t64 [| 2; 6 |] [ 1.0; 2.0; 3.0; 4.0; 5.0; 6.0; 7.0; 8.0; 9.0; 10.0; 11.0; 12.0 ]

    let primal, tan =
        Ad.jvp (fun (t: Tensor) -> EventBuffer.firstSpikeTimes (b.WithTimes t)) b.Times tangent

    assertSameValues "primal" [| 0.15; 0.1; inf; inf; inf; inf; inf; 0.05 |] (primal.ToDoubleArray())
    assertSameValues "tangent" [| 2.0; 1.0; 0.0; 0.0; 0.0; 0.0; 0.0; 7.0 |] (tan.ToDoubleArray())

    let mapped = Ad.vmap EventBuffer.firstSpikeTimes b
    assertSameValues "vmap" (primal.ToDoubleArray()) (mapped.ToDoubleArray())
    let counts = Ad.vmap EventBuffer.spikeCounts b
    assertSameValues "vmap counts" [| 2.0; 3.0; 0.0; 0.0; 0.0; 0.0; 0.0; 1.0 |] (counts.ToDoubleArray())

    // Per-example gradients: vmap of grad.
    let w = t64 [| 4 |] [ 1.0; 2.0; 3.0; 4.0 ]

    let perExample =
        Ad.vmap (fun (bb: EventBuffer) -> Ad.grad (weightedFirst bb w) bb.Times) b

    assertSameValues "vmap of grad" [| 2.0; 1.0; 0.0; 0.0; 0.0; 0.0; 4.0; 0.0; 0.0; 0.0; 0.0; 0.0 |] (perExample.ToDoubleArray())

[<Fact>]
let ``firstSpikeTimes' derivative matches central differences in Float64`` () =
    let rng = Random 3
    // Distinct times 0.01 apart, so a step of 1e-6 keeps the order.
    let times =
        Array.init 12 (fun k -> 0.05 + 0.01 * float k)
        |> Array.sortBy (fun _ -> rng.Next())

    let neurons = Array.init 12 (fun _ -> rng.Next(-1, 4))

    let b =
        EventBuffer.ofTimes [| 4 |] 6 (Tensor.FromArray(times, 2, 6)) (ints [| 2; 6 |] neurons)

    let w = uniform rng 0.5 2.0 [| 2; 4 |] |> Tensor.convert Float64

    finiteDifferenceTest "firstSpikeTimes" rng (fun (xs: Tensor[]) -> weightedFirst b w xs[0]) [| b.Times |]

// ---------------------------------------------------------------------------------------------
// Encoders

[<Fact>]
let ``latency maps values linearly to times, with threshold, bias and inversion`` () =
    let x = t64 [| 2; 2 |] [ 0.0; 0.5; 1.0; 0.25 ]
    let b = EventBuffer.latency 0.0 0.03 x
    Assert.Equal<int[]>([| 2 |], b.Shape)
    Assert.Equal<(float * int)[][]>([| [| 0.0, 0; 0.015, 1 |]; [| 0.0075, 1; 0.03, 0 |] |], EventBuffer.toEvents b)

    let inverted = EventBuffer.latency 0.03 0.0 x
    assertSameValues "tMax (1 - u)" [| 0.03; 0.015; 0.0; 0.0225 |] ((EventBuffer.firstSpikeTimes inverted).ToDoubleArray())

    let yy =
        EventBuffer.latencyWith
            {
                TEarly = 0.002
                TLate = 0.012
                Threshold = Some 0.3
                BiasTime = Some 0.001
            }
            x

    Assert.Equal<int[]>([| 3 |], yy.Shape)
    Assert.Equal(3, yy.Capacity)
    // Values below 0.3 (0.0 and 0.25) send nothing; the bias neuron 2 spikes at 1 ms.
    assertCloseValues "first" 1e-15 [| inf; 0.007; 0.001; 0.012; inf; 0.001 |] ((EventBuffer.firstSpikeTimes yy).ToDoubleArray())
    Assert.Equal<int[]>([| 2; 2 |], yy.Count.ToInt32Array())

[<Fact>]
let ``latency on the Yin-Yang inputs gives W&P's code with the bias spike at 0`` () =
    let d = YinYang.generate (RandomBits.keyOfSeed 1L) 8
    let b = EventBuffer.latency 0.0 30e-3 d.X
    Assert.Equal<int[]>([| 8; 5 |], b.Times.Shape)
    let x = d.X.ToDoubleArray()
    let f = (EventBuffer.firstSpikeTimes b).ToDoubleArray()
    assertCloseValues "t = 30 ms · u" 1e-6 (x |> Array.map (fun u -> 30e-3 * u)) f
    Assert.True(f |> Array.chunkBySize 5 |> Array.forall (fun r -> r[4] = 0.0))

[<Fact>]
let ``latency times are differentiable in the values`` () =
    let rng = Random 5
    let x = uniform rng 0.1 0.9 [| 3; 4 |] |> Tensor.convert Float64
    let w = uniform rng 0.5 2.0 [| 3; 5 |] |> Tensor.convert Float64

    let f (xs: Tensor[]) =
        let b =
            EventBuffer.latencyWith
                {
                    TEarly = 0.03
                    TLate = 0.0
                    Threshold = None
                    BiasTime = Some 0.0
                }
                xs[0]

        (EventBuffer.firstSpikeTimes b * w).Sum()

    finiteDifferenceTest "latency" rng f [| x |]
    let g = Ad.grad (fun (x: Tensor) -> f [| x |]) x
    assertCloseValues "d/dx" 1e-12 ((w.Narrow(1, 0, 4) * -0.03).ToDoubleArray()) (g.ToDoubleArray())

[<Fact>]
let ``latency rejects values outside [0, 1] and bad times`` () =
    assertThrowsArg [ "EventBuffer.latency"; "[0, 1]"; "1.5" ] (fun () -> EventBuffer.latency 0.0 1.0 (t64 [| 1; 2 |] [ 0.5; 1.5 ]))
    assertThrowsArg [ "EventBuffer.latency"; "[0, 1]"; "NaN" ] (fun () -> EventBuffer.latency 0.0 1.0 (t64 [| 1; 1 |] [ nan ]))
    assertThrowsArg [ "EventBuffer.latency"; "tLate"; "-1" ] (fun () -> EventBuffer.latency 0.0 -1.0 (t64 [| 1; 1 |] [ 0.5 ]))
    assertThrowsArg [ "EventBuffer.latency"; "[batch...; N]" ] (fun () -> EventBuffer.latency 0.0 1.0 (s64 0.5))

// ---------------------------------------------------------------------------------------------
// Overflow, batch slicing, concatenation, merging

[<Fact>]
let ``checkNoOverflow names the samples that lost events`` () =
    let b =
        EventBuffer.ofEvents Float32 [| 2 |] 1 [| [| 0.1, 0 |]; [| 0.1, 0; 0.2, 1; 0.3, 1 |]; [||] |]

    let ex =
        Assert.Throws<InvalidOperationException>(fun () -> EventBuffer.checkNoOverflow b)

    Assert.Contains("1 of 3 samples", ex.Message)
    Assert.Contains("sample [1] lost 2", ex.Message)
    Assert.Contains("capacity 1", ex.Message)
    EventBuffer.checkNoOverflow (EventBuffer.take [| 0; 2 |] b)

[<Fact>]
let ``take, slice and concat cut and join along the batch axis`` () =
    let b = repeatedBuffer ()
    let t = EventBuffer.take [| 1; 0; 1 |] b
    Assert.Equal<int[]>([| 1; 5; 1 |], t.Count.ToInt32Array())
    Assert.Equal<(float * int)[]>((EventBuffer.toEvents b)[1], (EventBuffer.toEvents t)[0])
    let s = EventBuffer.slice 1 1 b
    Assert.Equal<(float * int)[][]>([| [| 0.05, 3 |] |], EventBuffer.toEvents s)

    let small = EventBuffer.ofEvents Float64 [| 4 |] 2 [| [| 0.5, 2 |] |]
    let c = EventBuffer.concat [ b; small ]
    Assert.Equal(6, c.Capacity)
    Assert.Equal<(float * int)[][]>(Array.append (EventBuffer.toEvents b) (EventBuffer.toEvents small), EventBuffer.toEvents c)

    assertThrowsArg [ "EventBuffer.take"; "index 2"; "batch of 2" ] (fun () -> EventBuffer.take [| 2 |] b)
    assertThrowsArg [ "EventBuffer.slice"; "outside a batch of 2" ] (fun () -> EventBuffer.slice 1 2 b)

    assertThrowsArg [ "EventBuffer.concat"; "populations differ"; "[4]"; "[3]" ] (fun () ->
        EventBuffer.concat [ b; EventBuffer.empty Float64 [| 3 |] [| 1 |] 2 ])

    assertThrowsArg [ "EventBuffer.concat"; "dtypes differ" ] (fun () ->
        EventBuffer.concat [ b; EventBuffer.empty Float32 [| 4 |] [| 1 |] 2 ])

    assertThrowsArg [ "EventBuffer.take"; "batch axis" ] (fun () -> EventBuffer.take [| 0 |] (EventBuffer.empty Float32 [| 4 |] [||] 2))

[<Fact>]
let ``merge is the sorted union and adds the overflows`` () =
    let a =
        EventBuffer.ofEvents Float64 [| 3 |] 2 [| [| 0.2, 0; 0.4, 1; 0.5, 2 |]; [| 0.1, 2 |] |]

    let b =
        EventBuffer.ofEvents Float64 [| 3 |] 3 [| [| 0.2, 1; 0.3, 2 |]; [| 0.1, 0; 0.0, 1 |] |]

    let m = EventBuffer.merge a b
    Assert.Equal(5, m.Capacity)

    Assert.Equal<(float * int)[][]>([| [| 0.2, 0; 0.2, 1; 0.3, 2; 0.4, 1 |]; [| 0.0, 1; 0.1, 0; 0.1, 2 |] |], EventBuffer.toEvents m)

    Assert.Equal<int[]>([| 1; 0 |], m.Overflow.ToInt32Array())

    // Gradients reach both inputs' times.
    let ga, gb =
        Ad.grad
            (fun (ab: Tensor[]) -> (EventBuffer.merge (a.WithTimes ab[0]) (b.WithTimes ab[1])).Times.Narrow(-1, 0, 1).Sum())
            [| a.Times; b.Times |]
        |> fun g -> g[0], g[1]

    assertSameValues "a" [| 1.0; 0.0; 0.0; 0.0 |] (ga.ToDoubleArray())
    assertSameValues "b" [| 0.0; 0.0; 0.0; 1.0; 0.0; 0.0 |] (gb.ToDoubleArray())
    assertThrowsArg [ "EventBuffer.merge"; "batch shapes differ" ] (fun () -> EventBuffer.merge a (EventBuffer.take [| 0 |] b))

// ---------------------------------------------------------------------------------------------
// Losses

/// −log softmax(−t/τ0)_l + α(exp(t_l/τ1) − 1) for one sample, written out.
let private ttfsByHand (tau0: float) (tau1: float) (alpha: float) (t: float[]) (l: int) =
    let z = t |> Array.map (fun ti -> exp (-ti / tau0))
    -log(z[l] / Array.sum z) + alpha * (exp (t[l] / tau1) - 1.0)

[<Fact>]
let ``ttfsCrossEntropy equals the hand formula and clips silent neurons to tMax`` () =
    let tau0, tau1, alpha, tMax = 0.5e-3, 6.4e-3, 3e-3, 30e-3
    // Sample 0 all spike; sample 1 has a silent non-label neuron; sample 2 a silent label.
    let rows =
        [| [| 2e-3; 3e-3; 2.5e-3 |]; [| 4e-3; inf; 3.5e-3 |]; [| inf; 1e-3; 2e-3 |] |]

    let labels = [| 0; 2; 0 |]
    let t = Tensor.FromArray(Array.concat rows, 3, 3)
    let loss = (EventLoss.ttfsCrossEntropy tau0 tau1 alpha tMax t labels).ToScalar()

    let expected =
        Array.map2 (fun (r: float[]) l -> ttfsByHand tau0 tau1 alpha (r |> Array.map (min tMax)) l) rows labels
        |> Array.average

    assertNear "loss" 1e-12 expected loss
    Assert.True(Double.IsFinite loss)

    // The gradient (§2.4d): −softmax_i/τ0, plus 1/τ0 + (α/τ1) e^{t_l/τ1} at the label, over B;
    // zero for the clipped (silent) entries.
    let g =
        Ad.grad (fun (t: Tensor) -> EventLoss.ttfsCrossEntropy tau0 tau1 alpha tMax t labels) t

    let expectedGrad =
        Array.map2
            (fun (r: float[]) l ->
                let c = r |> Array.map (min tMax)
                let z = c |> Array.map (fun ti -> exp (-ti / tau0))
                let s = Array.sum z

                r
                |> Array.mapi (fun i ti ->
                    if ti > tMax then
                        0.0
                    else
                        let d = -z[i] / s / tau0

                        let d =
                            if i = l then
                                d + 1.0 / tau0 + alpha / tau1 * exp (c[l] / tau1)
                            else
                                d

                        d / 3.0))
            rows
            labels
        |> Array.concat

    assertCloseValues "gradient" 1e-9 expectedGrad (g.ToDoubleArray())

[<Fact>]
let ``ttfsCrossEntropy's gradient matches central differences in Float64`` () =
    let rng = Random 11
    let t = uniform rng 1e-3 10e-3 [| 4; 3 |] |> Tensor.convert Float64
    let labels = [| 0; 2; 1; 1 |]

    finiteDifferenceTestWith 1e-8 1e-6 "ttfs" rng (fun xs -> EventLoss.ttfsCrossEntropy 0.5e-3 6.4e-3 3e-3 30e-3 xs[0] labels) [| t |]

[<Fact>]
let ``event losses and metrics equal hand computations`` () =
    let t =
        t64 [| 4; 3 |] [ 1.0; 2.0; 3.0; 2.0; 2.0; 5.0; inf; inf; inf; 4.0; inf; 0.5 ]
    // Sample 0: argmin 0; sample 1: a tie (wrong); sample 2: all silent (wrong); sample 3: argmin 2.
    Assert.Equal(0.5, EventLoss.ttfsAccuracy t [| 0; 0; 0; 2 |])
    Assert.Equal(0.25, EventLoss.ttfsAccuracy t [| 0; 1; 2; 0 |])

    let target = t64 [| 1; 3 |] [ 1.0; 1.0; 1.0 ]
    // Clipped at 4, squared errors: rows (0, 1, 4), (1, 1, 9), (9, 9, 9), (9, 9, 0.25) → 61.25 / 12.
    assertNear "mse" 1e-15 (61.25 / 12.0) ((EventLoss.spikeTimeMse 4.0 target t).ToScalar())

    let v = t64 [| 2; 3 |] [ 1.0; 2.0; 0.5; -1.0; 0.0; 3.0 ]
    let ce (r: float[]) l = -(r[l] - log (r |> Array.sumBy exp))

    assertNear
        "max voltage CE"
        1e-14
        ((ce [| 1.0; 2.0; 0.5 |] 1 + ce [| -1.0; 0.0; 3.0 |] 0) / 2.0)
        ((EventLoss.maxVoltageCrossEntropy v [| 1; 0 |]).ToScalar())

    let counts = t64 [| 2; 2 |] [ 0.0; 3.0; 6.0; 1.0 ]
    // lower 1, upper 4: (1, 0, 4, 0) → mean 5/4.
    assertNear "count penalty" 1e-15 1.25 ((EventLoss.spikeCountPenalty 1.0 4.0 counts).ToScalar())

    let g = Ad.grad (EventLoss.spikeCountPenalty 1.0 4.0) counts
    assertSameValues "count penalty gradient" [| -0.5; 0.0; 1.0; 0.0 |] (g.ToDoubleArray())

[<Fact>]
let ``event losses reject bad input`` () =
    let t = t64 [| 2; 3 |] [ 1.0; 2.0; 3.0; 2.0; 2.0; 5.0 ]

    assertThrowsArg [ "EventLoss.ttfsCrossEntropy"; "3 labels for a batch of 2" ] (fun () ->
        EventLoss.ttfsCrossEntropy 1.0 1.0 0.0 10.0 t [| 0; 1; 2 |])

    assertThrowsArg [ "EventLoss.ttfsCrossEntropy"; "label 3"; "[0, 3)" ] (fun () ->
        EventLoss.ttfsCrossEntropy 1.0 1.0 0.0 10.0 t [| 0; 3 |])

    assertThrowsArg [ "EventLoss.ttfsCrossEntropy"; "tau0"; "-1" ] (fun () -> EventLoss.ttfsCrossEntropy -1.0 1.0 0.0 10.0 t [| 0; 1 |])
    assertThrowsArg [ "EventLoss.ttfsCrossEntropy"; "tMax" ] (fun () -> EventLoss.ttfsCrossEntropy 1.0 1.0 0.0 inf t [| 0; 1 |])

    assertThrowsArg [ "EventLoss.ttfsCrossEntropy"; "[B; classes]"; "[6]" ] (fun () ->
        EventLoss.ttfsCrossEntropy 1.0 1.0 0.0 10.0 (t.Flatten()) [| 0; 1 |])

    assertThrowsArg [ "EventLoss.ttfsAccuracy"; "2 labels for a batch of 3" ] (fun () -> EventLoss.ttfsAccuracy (t.Transpose()) [| 0; 1 |])
    assertThrowsArg [ "EventLoss.spikeCountPenalty"; "lower" ] (fun () -> EventLoss.spikeCountPenalty 3.0 1.0 t)

[<Fact>]
let ``a TTFS loss of latency-coded events has a finite gradient in the input values`` () =
    let x = t64 [| 2; 3 |] [ 0.2; 0.9; 0.5; 0.7; 0.1; 0.05 ]

    let loss (x: Tensor) =
        let b =
            EventBuffer.latencyWith
                {
                    TEarly = 0.01
                    TLate = 0.0
                    Threshold = Some 0.08
                    BiasTime = None
                }
                x

        EventLoss.ttfsCrossEntropy 0.5e-3 6.4e-3 3e-3 0.02 (EventBuffer.firstSpikeTimes b) [| 1; 2 |]

    let g = Ad.grad loss x
    let gs = g.ToDoubleArray()
    Assert.True(gs |> Array.forall Double.IsFinite, $"%A{gs}")
    // The silent input (0.05 < 0.08) gets no gradient; the others do.
    Assert.Equal(0.0, gs[5])
    Assert.True(gs[..4] |> Array.forall (fun v -> v <> 0.0))

// ---------------------------------------------------------------------------------------------
// Event data sets

[<Fact>]
let ``EventDataset cuts the batches Batching cuts, with the right events and labels`` () =
    let dense = YinYang.generate (RandomBits.keyOfSeed 2L) 10
    let d = EventDataset.ofDataset (EventBuffer.latency 0.0 30e-3) dense
    Assert.Equal(10, d.Count)
    let key = RandomBits.keyOfSeed 9L
    let batches = EventDataset.batches key 4 d |> Seq.toArray
    let expected = Batching.batches key 4 dense |> Seq.toArray
    Assert.Equal<int[]>([| 4; 4; 2 |], batches |> Array.map (fun (b, _) -> b.BatchShape[0]))

    for (events, labels), (x, l) in Array.zip batches expected do
        Assert.Equal<int[]>(l, labels)

        assertSameValues
            "events"
            ((EventBuffer.firstSpikeTimes (EventBuffer.latency 0.0 30e-3 x)).ToDoubleArray())
            ((EventBuffer.firstSpikeTimes events).ToDoubleArray())

    let inOrder = EventDataset.inOrder 3 d |> Seq.map snd |> Seq.concat |> Seq.toArray
    Assert.Equal<int[]>(dense.Labels, inOrder)
    Assert.Equal(3, (EventDataset.take 3 d).Count)
    Assert.Equal<int[]>(Array.sort dense.Labels, Array.sort (EventDataset.shuffle key d).Labels)

    assertThrowsArg [ "EventDataset.create"; "10 examples"; "3 labels" ] (fun () -> EventDataset.create d.Events [| 0; 1; 2 |])
    assertThrowsArg [ "EventDataset.subset"; "index 10" ] (fun () -> EventDataset.subset [| 10 |] d)
